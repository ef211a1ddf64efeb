/* Frame and field encoding of the agent protocol. Plain C: the library
 * banger-agent-protocol (meson.build here) is linked by the static guest
 * agent (no GLib) and by bangerd's client of it alike, so both sides share
 * one implementation of the format. */

#include "protocol.h"

#include <stdlib.h>
#include <string.h>

/* CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320, same as zlib.crc32).
 * Written by hand because the guest agent is a static binary without zlib;
 * a 1 KiB table built on first use is all it takes. */
static uint32_t crc_table[256];
static bool crc_table_ready;

static void
crc_table_init (void)
{
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t c = i;
    for (int k = 0; k < 8; k++)
      c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    crc_table[i] = c;
  }
  __atomic_store_n (&crc_table_ready, true, __ATOMIC_RELEASE);
}

uint32_t
bngr_crc32 (uint32_t crc, const void *data, size_t len)
{
  const uint8_t *p = data;
  /* Racing initialisations write identical values, so no lock is needed. */
  if (!__atomic_load_n (&crc_table_ready, __ATOMIC_ACQUIRE))
    crc_table_init ();
  crc = ~crc;
  for (size_t i = 0; i < len; i++)
    crc = crc_table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
  return ~crc;
}

static void
put_le16 (uint8_t *p, uint16_t v)
{
  p[0] = v & 0xff;
  p[1] = v >> 8;
}

static void
put_le32 (uint8_t *p, uint32_t v)
{
  for (int i = 0; i < 4; i++)
    p[i] = (v >> (8 * i)) & 0xff;
}

static void
put_le64 (uint8_t *p, uint64_t v)
{
  for (int i = 0; i < 8; i++)
    p[i] = (v >> (8 * i)) & 0xff;
}

static uint16_t
get_le16 (const uint8_t *p)
{
  return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t
get_le32 (const uint8_t *p)
{
  return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static uint64_t
get_le64 (const uint8_t *p)
{
  return (uint64_t)get_le32 (p) | ((uint64_t)get_le32 (p + 4) << 32);
}

void
bngr_buf_init (BngrBuf *buf)
{
  buf->data = NULL;
  buf->len = 0;
  buf->alloc = 0;
}

void
bngr_buf_clear (BngrBuf *buf)
{
  free (buf->data);
  bngr_buf_init (buf);
}

static bool
buf_reserve (BngrBuf *buf, size_t extra)
{
  size_t need = buf->len + extra;
  if (need < buf->len)
    return false;
  if (need <= buf->alloc)
    return true;
  size_t alloc = buf->alloc ? buf->alloc : 256;
  while (alloc < need)
    alloc *= 2;
  uint8_t *data = realloc (buf->data, alloc);
  if (data == NULL)
    return false;
  buf->data = data;
  buf->alloc = alloc;
  return true;
}

bool
bngr_buf_append (BngrBuf *buf, const void *data, size_t len)
{
  if (len == 0)
    return true;
  if (!buf_reserve (buf, len))
    return false;
  memcpy (buf->data + buf->len, data, len);
  buf->len += len;
  return true;
}

void
bngr_buf_consume (BngrBuf *buf, size_t len)
{
  if (len >= buf->len) {
    buf->len = 0;
    return;
  }
  memmove (buf->data, buf->data + len, buf->len - len);
  buf->len -= len;
}

bool
bngr_put_bytes (BngrBuf *payload, uint16_t tag, const void *data, size_t len)
{
  uint8_t hdr[6];
  if (len > UINT32_MAX)
    return false;
  put_le16 (hdr, tag);
  put_le32 (hdr + 2, (uint32_t)len);
  return bngr_buf_append (payload, hdr, sizeof hdr) && bngr_buf_append (payload, data, len);
}

bool
bngr_put_str (BngrBuf *payload, uint16_t tag, const char *str)
{
  return bngr_put_bytes (payload, tag, str, strlen (str));
}

bool
bngr_put_u32 (BngrBuf *payload, uint16_t tag, uint32_t value)
{
  uint8_t v[4];
  put_le32 (v, value);
  return bngr_put_bytes (payload, tag, v, sizeof v);
}

bool
bngr_put_u64 (BngrBuf *payload, uint16_t tag, uint64_t value)
{
  uint8_t v[8];
  put_le64 (v, value);
  return bngr_put_bytes (payload, tag, v, sizeof v);
}

bool
bngr_put_double (BngrBuf *payload, uint16_t tag, double value)
{
  uint64_t bits;
  memcpy (&bits, &value, sizeof bits);
  return bngr_put_u64 (payload, tag, bits);
}

bool
bngr_frame_append (BngrBuf *out, uint8_t type, uint16_t flags, uint32_t stream, const void *payload,
                   size_t len)
{
  uint8_t hdr[BNGR_HEADER_SIZE];
  if (len > BNGR_MAX_PAYLOAD)
    return false;
  put_le32 (hdr, BNGR_MAGIC);
  hdr[4] = BNGR_PROTOCOL_VERSION;
  hdr[5] = type;
  put_le16 (hdr + 6, flags);
  put_le32 (hdr + 8, stream);
  put_le32 (hdr + 12, (uint32_t)len);
  put_le32 (hdr + 16, bngr_crc32 (0, payload, len));
  put_le32 (hdr + 20, bngr_crc32 (0, hdr, 20));
  return bngr_buf_append (out, hdr, sizeof hdr) && bngr_buf_append (out, payload, len);
}

BngrParseResult
bngr_parse (const uint8_t *data, size_t len, BngrHeader *hdr, const uint8_t **payload,
            size_t *consumed, const char **reason)
{
  return bngr_parse_ex (data, len, 0, hdr, payload, consumed, reason);
}

BngrParseResult
bngr_parse_ex (const uint8_t *data, size_t len, unsigned options, BngrHeader *hdr,
               const uint8_t **payload, size_t *consumed, const char **reason)
{
  static const uint8_t magic[4] = { 'B', 'N', 'G', 'R' };
  size_t skip = 0;

  *reason = NULL;
  /* Skip to the first byte that could start a magic. */
  while (skip < len) {
    size_t n = len - skip < 4 ? len - skip : 4;
    if (memcmp (data + skip, magic, n) == 0)
      break;
    skip++;
  }
  if (skip > 0) {
    *consumed = skip;
    *reason = "bytes before a frame magic";
    return BNGR_PARSE_SKIPPED;
  }
  if (len < BNGR_HEADER_SIZE)
    return BNGR_PARSE_NEED_MORE;

  if (get_le32 (data + 20) != bngr_crc32 (0, data, 20)) {
    *consumed = 1;
    *reason = "frame header CRC mismatch";
    return BNGR_PARSE_SKIPPED;
  }
  hdr->version = data[4];
  hdr->type = data[5];
  hdr->flags = get_le16 (data + 6);
  hdr->stream = get_le32 (data + 8);
  hdr->length = get_le32 (data + 12);
  if (hdr->length > BNGR_MAX_PAYLOAD) {
    /* The header itself is intact, so drop all of it. */
    *consumed = BNGR_HEADER_SIZE;
    *reason = "frame length exceeds the limit";
    return BNGR_PARSE_SKIPPED;
  }
  if (len - BNGR_HEADER_SIZE < hdr->length)
    return BNGR_PARSE_NEED_MORE;
  if (get_le32 (data + 16) != bngr_crc32 (0, data + BNGR_HEADER_SIZE, hdr->length)) {
    *consumed = (options & BNGR_PARSE_DROP_BAD_PAYLOAD) ? BNGR_HEADER_SIZE + hdr->length : 1;
    *reason = "frame payload CRC mismatch";
    return BNGR_PARSE_SKIPPED;
  }
  *payload = data + BNGR_HEADER_SIZE;
  *consumed = BNGR_HEADER_SIZE + hdr->length;
  return BNGR_PARSE_FRAME;
}

void
bngr_iter_init (BngrFieldIter *it, const uint8_t *payload, size_t len)
{
  it->p = payload;
  it->left = len;
  it->error = false;
}

bool
bngr_iter_next (BngrFieldIter *it, uint16_t *tag, const uint8_t **value, size_t *len)
{
  if (it->left == 0)
    return false;
  if (it->left < 6) {
    it->error = true;
    return false;
  }
  uint32_t l = get_le32 (it->p + 2);
  if (l > it->left - 6) {
    it->error = true;
    return false;
  }
  *tag = get_le16 (it->p);
  *value = it->p + 6;
  *len = l;
  it->p += 6 + l;
  it->left -= 6 + l;
  return true;
}

bool
bngr_value_u32 (const uint8_t *value, size_t len, uint32_t *out)
{
  if (len != 4)
    return false;
  *out = get_le32 (value);
  return true;
}

bool
bngr_value_u64 (const uint8_t *value, size_t len, uint64_t *out)
{
  if (len != 8)
    return false;
  *out = get_le64 (value);
  return true;
}

bool
bngr_value_double (const uint8_t *value, size_t len, double *out)
{
  uint64_t bits;
  if (!bngr_value_u64 (value, len, &bits))
    return false;
  memcpy (out, &bits, sizeof bits);
  return true;
}

char *
bngr_value_strdup (const uint8_t *value, size_t len)
{
  if (len > BNGR_MAX_STRING || memchr (value, 0, len) != NULL)
    return NULL;
  char *s = malloc (len + 1);
  if (s == NULL)
    return NULL;
  memcpy (s, value, len);
  s[len] = 0;
  return s;
}

bool
bngr_find (const uint8_t *payload, size_t len, uint16_t tag, const uint8_t **value, size_t *vlen)
{
  BngrFieldIter it;
  uint16_t t;
  bngr_iter_init (&it, payload, len);
  while (bngr_iter_next (&it, &t, value, vlen)) {
    if (t == tag)
      return true;
  }
  return false;
}

bool
bngr_find_u32 (const uint8_t *payload, size_t len, uint16_t tag, uint32_t *out)
{
  const uint8_t *v;
  size_t vl;
  return bngr_find (payload, len, tag, &v, &vl) && bngr_value_u32 (v, vl, out);
}

bool
bngr_find_u64 (const uint8_t *payload, size_t len, uint16_t tag, uint64_t *out)
{
  const uint8_t *v;
  size_t vl;
  return bngr_find (payload, len, tag, &v, &vl) && bngr_value_u64 (v, vl, out);
}

char *
bngr_find_str (const uint8_t *payload, size_t len, uint16_t tag)
{
  const uint8_t *v;
  size_t vl;
  if (!bngr_find (payload, len, tag, &v, &vl))
    return NULL;
  return bngr_value_strdup (v, vl);
}

const char *
bngr_type_name (uint8_t type)
{
  switch (type) {
  case BNGR_T_HELLO:
    return "HELLO";
  case BNGR_T_ERROR:
    return "ERROR";
  case BNGR_T_OK:
    return "OK";
  case BNGR_T_EXEC:
    return "EXEC";
  case BNGR_T_EXEC_STARTED:
    return "EXEC_STARTED";
  case BNGR_T_DATA:
    return "DATA";
  case BNGR_T_RESIZE:
    return "RESIZE";
  case BNGR_T_SIGNAL:
    return "SIGNAL";
  case BNGR_T_EXIT:
    return "EXIT";
  case BNGR_T_FILE_PUT:
    return "FILE_PUT";
  case BNGR_T_FILE_GET:
    return "FILE_GET";
  case BNGR_T_STATS:
    return "STATS";
  case BNGR_T_PORTS:
    return "PORTS";
  case BNGR_T_BOOT_ID:
    return "BOOT_ID";
  case BNGR_T_PING:
    return "PING";
  case BNGR_T_SETUP:
    return "SETUP";
  case BNGR_T_POWEROFF:
    return "POWEROFF";
  default:
    return "unknown";
  }
}
