/* SETUP on the guest (setup.c): the user's ssh key and the VM's host key
 * written under the agent's root, then sshd started. Called by the event
 * loop (server.c). */
#pragma once

#include "connection.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

void setup_handle (Agent *agent, uint32_t id, const uint8_t *payload, size_t len);
/* A child the event loop reaped that is no exec's: sshd, perhaps. */
void setup_child_exited (Agent *agent, pid_t pid);
