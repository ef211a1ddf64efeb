/* STATS and BOOT_ID on the guest (stats.c): numbers from /proc and statvfs. */
#pragma once

#include "protocol.h"

#include <stdbool.h>
#include <stddef.h>

/* Fills @payload; false with errno set on failure. */
bool stats_collect (BngrBuf *payload);
bool read_boot_id (char *buf, size_t size);
