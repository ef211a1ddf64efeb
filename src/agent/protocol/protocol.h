/* Wire definitions of the banger agent protocol, shared by the guest agent
 * (plain C, no GLib) and the host library. See docs/agent-protocol.md. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define BNGR_MAGIC            0x52474E42u /* "BNGR" read as a little-endian u32 */
#define BNGR_PROTOCOL_VERSION 1
/* The oldest protocol version the host still speaks: an agent reporting any
 * version from this one to BNGR_PROTOCOL_VERSION is served
 * (docs/agent-protocol.md, "Versioning"). */
#define BNGR_PROTOCOL_VERSION_MIN 1
#define BNGR_HEADER_SIZE          24
#define BNGR_MAX_PAYLOAD          (1024u * 1024u)
#define BNGR_DATA_CHUNK           (64u * 1024u)
#define BNGR_MAX_STRING           (64u * 1024u)
#define BNGR_MAX_ARGS             4096u
#define BNGR_VSOCK_PORT           1024u
#define BNGR_VIRTIO_PORT_NAME     "org.banger.agent.0"

enum {
  BNGR_T_HELLO = 0x01,
  BNGR_T_ERROR = 0x02,
  BNGR_T_OK = 0x03,
  BNGR_T_EXEC = 0x10,
  BNGR_T_EXEC_STARTED = 0x11,
  BNGR_T_DATA = 0x12,
  BNGR_T_RESIZE = 0x13,
  BNGR_T_SIGNAL = 0x14,
  BNGR_T_EXIT = 0x15,
  BNGR_T_FILE_PUT = 0x20,
  BNGR_T_FILE_GET = 0x21,
  BNGR_T_STATS = 0x30,
  BNGR_T_PORTS = 0x31,
  BNGR_T_BOOT_ID = 0x32,
  BNGR_T_PING = 0x33,
  BNGR_T_SETUP = 0x40,
  BNGR_T_POWEROFF = 0x41,
};

/* DATA flags: the low byte is the channel. */
#define BNGR_CHAN_STDIN  0
#define BNGR_CHAN_STDOUT 1
#define BNGR_CHAN_STDERR 2
#define BNGR_CHAN_MASK   0xffu
#define BNGR_FLAG_EOF    0x100u

enum {
  BNGR_F_PROTO_VERSION = 1,
  BNGR_F_AGENT_VERSION = 2,
  BNGR_F_BOOT_ID = 3,
  BNGR_F_NONCE = 4,
  BNGR_F_ARGV = 10,
  BNGR_F_ENV = 11,
  BNGR_F_CWD = 12,
  BNGR_F_TTY = 13,
  BNGR_F_ROWS = 14,
  BNGR_F_COLS = 15,
  BNGR_F_SIGNAL = 16,
  BNGR_F_PID = 17,
  BNGR_F_EXIT_CODE = 18,
  BNGR_F_EXIT_SIGNAL = 19,
  BNGR_F_PATH = 20,
  BNGR_F_MODE = 21,
  BNGR_F_SIZE = 22,
  BNGR_F_ERR_CODE = 30,
  BNGR_F_ERR_MESSAGE = 31,
  BNGR_F_MEM_TOTAL = 40,
  BNGR_F_MEM_AVAILABLE = 41,
  BNGR_F_LOAD1 = 42,
  BNGR_F_LOAD5 = 43,
  BNGR_F_LOAD15 = 44,
  BNGR_F_DISK_TOTAL = 45,
  BNGR_F_DISK_FREE = 46,
  BNGR_F_UPTIME = 47,
  BNGR_F_PORT_PROTO = 50,
  BNGR_F_PORT_ADDR = 51,
  BNGR_F_PORT_NUM = 52,
  BNGR_F_PORT_PID = 53,
  BNGR_F_PORT_COMM = 54,
  BNGR_F_AUTHORIZED_KEYS = 60,
  BNGR_F_HOST_KEY = 61,
  BNGR_F_HOST_KEY_PUB = 62,
  BNGR_F_SSHD = 63,
  /* SETUP's optional identity of a VM restored from a snapshot of another
   * (docs/warm-start.md): an agent that applied them answers IDENTITY = 1,
   * an older one ignores them (rule 1 of "Versioning") and the host sees
   * that from the missing IDENTITY. */
  BNGR_F_MAC = 64,        /* string, aa:bb:cc:dd:ee:ff: eth0's new address */
  BNGR_F_IP = 65,         /* string, a.b.c.d/prefix */
  BNGR_F_GW = 66,         /* string, a.b.c.d */
  BNGR_F_DNS = 67,        /* string, a.b.c.d */
  BNGR_F_HOSTNAME = 68,   /* string */
  BNGR_F_MACHINE_ID = 69, /* string, 32 lowercase hex digits */
  BNGR_F_ENTROPY = 70,    /* bytes from the host's RNG, credited to the guest's */
  BNGR_F_CLOCK_NS = 71,   /* u64, the host's CLOCK_REALTIME in ns */
  /* u32: in the agent's HELLO, 1 if it knows the identity fields; in
   * SETUP's OK, 1 if it applied them. */
  BNGR_F_IDENTITY = 72,
};

/* ERR_CODE values. */
enum {
  BNGR_ERR_FAILED = 1,     /* generic; the message says what */
  BNGR_ERR_BAD_FRAME = 2,  /* CRC, length or field encoding */
  BNGR_ERR_VERSION = 3,    /* unsupported protocol version */
  BNGR_ERR_UNKNOWN = 4,    /* unknown frame type or stream */
  BNGR_ERR_INVALID = 5,    /* a required field is missing or out of range */
  BNGR_ERR_NOT_FOUND = 6,  /* file or command not found */
  BNGR_ERR_PERMISSION = 7, /* EACCES / EPERM */
  BNGR_ERR_BUSY = 8,       /* too many streams */
};

typedef struct {
  uint8_t version;
  uint8_t type;
  uint16_t flags;
  uint32_t stream;
  uint32_t length;
} BngrHeader;

/* A growable byte buffer (malloc-based so the guest needs no GLib). */
typedef struct {
  uint8_t *data;
  size_t len;
  size_t alloc;
} BngrBuf;

uint32_t bngr_crc32 (uint32_t crc, const void *data, size_t len);

void bngr_buf_init (BngrBuf *buf);
void bngr_buf_clear (BngrBuf *buf);
bool bngr_buf_append (BngrBuf *buf, const void *data, size_t len);
void bngr_buf_consume (BngrBuf *buf, size_t len);

/* Payload building. Each returns false on allocation failure. */
bool bngr_put_bytes (BngrBuf *payload, uint16_t tag, const void *data, size_t len);
bool bngr_put_str (BngrBuf *payload, uint16_t tag, const char *str);
bool bngr_put_u32 (BngrBuf *payload, uint16_t tag, uint32_t value);
bool bngr_put_u64 (BngrBuf *payload, uint16_t tag, uint64_t value);
bool bngr_put_double (BngrBuf *payload, uint16_t tag, double value);

/* Appends a whole frame (header + payload) to @out. */
bool bngr_frame_append (BngrBuf *out, uint8_t type, uint16_t flags, uint32_t stream,
                        const void *payload, size_t len);

typedef enum {
  BNGR_PARSE_FRAME,     /* *hdr and *payload are set; consume *consumed bytes */
  BNGR_PARSE_NEED_MORE, /* a frame has started but is incomplete */
  BNGR_PARSE_SKIPPED,   /* *consumed bytes were garbage; *reason says why (may be NULL) */
} BngrParseResult;

/* Looks at the start of @data. Garbage before a magic, a header with a bad
 * CRC, an oversized length or a payload with a bad CRC are reported as
 * SKIPPED with the number of bytes to drop (the caller may report @reason). */
BngrParseResult bngr_parse (const uint8_t *data, size_t len, BngrHeader *hdr,
                            const uint8_t **payload, size_t *consumed, const char **reason);

/* bngr_parse with options. BNGR_PARSE_DROP_BAD_PAYLOAD: a frame whose header
 * is intact but whose payload CRC is wrong is dropped whole (header and
 * claimed length) instead of one byte. Skipping one byte finds a frame that
 * starts inside a damaged one, but each such candidate costs a CRC over its
 * claimed length, so a peer that packs valid headers claiming 1 MiB every
 * few bytes makes the scan cost bytes × length; dropping the whole frame
 * keeps it linear. On SKIPPED for a bad payload CRC, *hdr is filled in. */
#define BNGR_PARSE_DROP_BAD_PAYLOAD 0x1u
BngrParseResult bngr_parse_ex (const uint8_t *data, size_t len, unsigned options, BngrHeader *hdr,
                               const uint8_t **payload, size_t *consumed, const char **reason);

/* Field iteration over a payload. */
typedef struct {
  const uint8_t *p;
  size_t left;
  bool error; /* a truncated field was found */
} BngrFieldIter;

void bngr_iter_init (BngrFieldIter *it, const uint8_t *payload, size_t len);
bool bngr_iter_next (BngrFieldIter *it, uint16_t *tag, const uint8_t **value, size_t *len);

/* Typed access to a field value; false when the size is wrong. */
bool bngr_value_u32 (const uint8_t *value, size_t len, uint32_t *out);
bool bngr_value_u64 (const uint8_t *value, size_t len, uint64_t *out);
bool bngr_value_double (const uint8_t *value, size_t len, double *out);
/* Returns a malloc'd NUL-terminated copy, or NULL if it holds a NUL or is too long. */
char *bngr_value_strdup (const uint8_t *value, size_t len);

/* Convenience: the first field @tag in @payload. */
bool bngr_find (const uint8_t *payload, size_t len, uint16_t tag, const uint8_t **value,
                size_t *vlen);
bool bngr_find_u32 (const uint8_t *payload, size_t len, uint16_t tag, uint32_t *out);
bool bngr_find_u64 (const uint8_t *payload, size_t len, uint16_t tag, uint64_t *out);
char *bngr_find_str (const uint8_t *payload, size_t len, uint16_t tag);

const char *bngr_type_name (uint8_t type);

#ifdef __cplusplus
}
#endif
