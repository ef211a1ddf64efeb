/* EXEC on the guest (exec.c): a command with pipes or a pty, its streams
 * relayed as DATA frames, RESIZE, SIGNAL, EXIT once reaped and drained.
 * Called by the event loop (server.c). */
#pragma once

#include "connection.h"

#include <stddef.h>
#include <stdint.h>

void exec_start (Agent *agent, uint32_t id, const uint8_t *payload, size_t len);
void exec_stdin (Agent *agent, Stream *s, uint16_t flags, const uint8_t *data, size_t len);
void exec_signal (Agent *agent, Stream *s, const uint8_t *payload, size_t len);
void exec_resize (Agent *agent, Stream *s, const uint8_t *payload, size_t len);
void exec_read_output (Agent *agent, Stream *s, int which);
void exec_write_stdin (Agent *agent, Stream *s);
void exec_child_exited (Agent *agent, Stream *s, int status);
void exec_maybe_finish (Agent *agent, Stream *s);
/* The abort hook of an exec stream: kills the command, closes its fds. */
void exec_abort (Stream *s);
