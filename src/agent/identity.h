/* SETUP's identity fields (identity.c): a guest restored from a snapshot of
 * another one takes its own MAC, address, hostname, machine-id, clock and a
 * reseeded RNG (docs/warm-start.md). Called by setup.c. */
#pragma once

#include "connection.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Whether @payload holds any identity field. */
bool identity_requested (const uint8_t *payload, size_t len);

/* Applies the identity fields of @payload. Outside a guest (test mode) only
 * the files under agent->root are written: the clock, the hostname, the
 * network and the RNG are the host's. False with @err on the first failure. */
bool identity_apply (Agent *agent, const uint8_t *payload, size_t len, char *err, size_t errlen);
