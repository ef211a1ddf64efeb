/* FILE_PUT and FILE_GET on the guest (files.c): whole files streamed as
 * DATA frames. Called by the event loop (server.c). */
#pragma once

#include "connection.h"

#include <stddef.h>
#include <stdint.h>

void files_put_start (Agent *agent, uint32_t id, const uint8_t *payload, size_t len);
void files_put_data (Agent *agent, Stream *s, uint16_t flags, const uint8_t *data, size_t len);
void files_get_start (Agent *agent, uint32_t id, const uint8_t *payload, size_t len);
void files_get_pump (Agent *agent, Stream *s);
/* The abort hook of a file stream: closes the file, removes an unfinished
 * upload's temporary file. */
void files_abort (Stream *s);
