/* PID 1 duties of the guest agent (init.c): API filesystems, the kernel
 * command line, the initramfs stage, handing PID 1 to an image's init,
 * power-off. */
#pragma once

#include "connection.h"

#include <stdbool.h>

bool init_is_initramfs (void);
int init_initramfs (void);
void init_early (void);
const char *init_cmdline_get (const char *key); /* from /proc/cmdline, static storage */
void init_poweroff (Agent *agent);
void init_handoff (const char *init_path, Agent *agent);
