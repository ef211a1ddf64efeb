/* PORTS on the guest (ports.c): listening sockets and their processes. */
#pragma once

#include "protocol.h"

#include <stdbool.h>

/* Fills @payload; false with errno set on failure. */
bool ports_collect (BngrBuf *payload);
