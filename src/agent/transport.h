/* The byte streams the guest agent serves on (transport.c): the
 * virtio-serial port, AF_VSOCK, or a unix socket (tests). */
#pragma once

#include "connection.h"

#include <stdbool.h>

int transport_open_port (void);
/* PID 1 looking for its channel: attaches the port or vsock listener to
 * @agent once one shows up. */
bool transport_attach_guest (Agent *agent);
int transport_listen_vsock (void);
int transport_listen_unix (const char *path);
