/* A FAKE, hostile guest agent for bangerd-level tests (issue 10, finding
 * 8): it speaks the real frame format (frame.c) on --listen-unix PATH and
 * answers the handshake, SETUP and the simple requests like the real agent,
 * so a VM boots; then, on the first EXEC, it attacks:
 *   - DATA frames of 1 MiB on stdout as fast as the connection takes them,
 *     ignoring flow control (the real agent stops at 1 MiB unread);
 *   - between them, valid headers claiming 1 MiB with a wrong payload CRC,
 *     headers claiming 512 MiB, and garbage;
 *   - a console flood: it appends to console.log next to its socket (the VM
 *     directory) at ~50 MB/s, as a guest printing without end would.
 * The floods stop after HOSTILE_MAX_* bytes, so a broken bangerd cannot fill
 * the machine. It runs until killed (the fake Firecracker's end). */
#include "protocol.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define HOSTILE_MAX_DATA    (2ULL << 30)
#define HOSTILE_MAX_CONSOLE (1ULL << 30)

static pthread_mutex_t write_lock = PTHREAD_MUTEX_INITIALIZER;
static char console_path[4096];

static int
write_all (int fd, const void *data, size_t len)
{
  const uint8_t *p = data;
  while (len > 0) {
    ssize_t n = write (fd, p, len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return -1;
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

static int
send_frame (int fd, uint8_t type, uint16_t flags, uint32_t stream, const BngrBuf *payload)
{
  BngrBuf b;
  int r;
  bngr_buf_init (&b);
  bngr_frame_append (&b, type, flags, stream, payload ? payload->data : NULL,
                     payload ? payload->len : 0);
  pthread_mutex_lock (&write_lock);
  r = write_all (fd, b.data, b.len);
  pthread_mutex_unlock (&write_lock);
  bngr_buf_clear (&b);
  return r;
}

/* A valid header (its CRC right) for @length bytes whose payload CRC is wrong. */
static void
bad_header (uint8_t hdr[BNGR_HEADER_SIZE], uint32_t stream, uint32_t length)
{
  uint32_t v;
  v = BNGR_MAGIC;
  memcpy (hdr, &v, 4);
  hdr[4] = BNGR_PROTOCOL_VERSION;
  hdr[5] = BNGR_T_DATA;
  hdr[6] = BNGR_CHAN_STDOUT;
  hdr[7] = 0;
  memcpy (hdr + 8, &stream, 4);
  memcpy (hdr + 12, &length, 4);
  v = 0xdeadbeef;
  memcpy (hdr + 16, &v, 4);
  v = bngr_crc32 (0, hdr, 20);
  memcpy (hdr + 20, &v, 4);
}

typedef struct {
  int fd;
  uint32_t stream;
} Flood;

static void *
data_flood (void *data)
{
  Flood *f = data;
  uint8_t *chunk = malloc (BNGR_MAX_PAYLOAD);
  uint8_t *junk = malloc (256 * 1024);
  BngrBuf p = { .data = chunk, .len = BNGR_MAX_PAYLOAD, .alloc = BNGR_MAX_PAYLOAD };
  unsigned long long sent = 0;

  memset (chunk, 'o', BNGR_MAX_PAYLOAD);
  /* Headers claiming 1 MiB with a bad payload CRC, packed every 24 bytes. */
  for (size_t off = 0; off + BNGR_HEADER_SIZE <= 256 * 1024; off += BNGR_HEADER_SIZE)
    bad_header (junk + off, f->stream, BNGR_MAX_PAYLOAD);
  for (unsigned i = 0; sent < HOSTILE_MAX_DATA; i++) {
    if (send_frame (f->fd, BNGR_T_DATA, BNGR_CHAN_STDOUT, f->stream, &p) < 0)
      break;
    sent += BNGR_MAX_PAYLOAD;
    if (i % 4 == 0) {
      uint8_t hdr[BNGR_HEADER_SIZE];
      pthread_mutex_lock (&write_lock);
      /* absurd length, then packed bad headers, then garbage */
      bad_header (hdr, f->stream, 512u * 1024 * 1024);
      int r = write_all (f->fd, hdr, sizeof hdr);
      r = r < 0 ? r : write_all (f->fd, junk, 256 * 1024);
      r = r < 0 ? r : write_all (f->fd, chunk, BNGR_MAX_PAYLOAD);
      pthread_mutex_unlock (&write_lock);
      if (r < 0)
        break;
      sent += 256 * 1024 + BNGR_MAX_PAYLOAD;
    }
  }
  free (chunk);
  free (junk);
  return NULL;
}

static void *
console_flood (void *data)
{
  char *line = malloc (1024 * 1024);
  unsigned long long written = 0;
  int fd = open (console_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0)
    return NULL;
  for (size_t i = 0; i < 1024 * 1024; i++)
    line[i] = (i % 80 == 79) ? '\n' : 'c';
  while (written < HOSTILE_MAX_CONSOLE) {
    struct timespec ts = { 0, 20 * 1000 * 1000 };
    if (write_all (fd, line, 1024 * 1024) < 0)
      break;
    written += 1024 * 1024;
    nanosleep (&ts, NULL); /* a pace, not a synchronisation: ~50 MB/s */
  }
  close (fd);
  free (line);
  return NULL;
}

static void
serve (int fd)
{
  BngrBuf in;
  uint8_t buf[65536];
  bool attacking = false;

  bngr_buf_init (&in);
  for (;;) {
    ssize_t n = read (fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    bngr_buf_append (&in, buf, (size_t)n);
    for (;;) {
      BngrHeader hdr;
      const uint8_t *payload;
      size_t consumed;
      const char *reason;
      BngrParseResult r = bngr_parse (in.data, in.len, &hdr, &payload, &consumed, &reason);
      if (r == BNGR_PARSE_NEED_MORE)
        break;
      if (r == BNGR_PARSE_SKIPPED) {
        bngr_buf_consume (&in, consumed);
        continue;
      }
      BngrBuf p;
      bngr_buf_init (&p);
      uint64_t nonce = 0;
      switch (hdr.type) {
      case BNGR_T_HELLO:
        bngr_find_u64 (payload, hdr.length, BNGR_F_NONCE, &nonce);
        bngr_put_u32 (&p, BNGR_F_PROTO_VERSION, BNGR_PROTOCOL_VERSION);
        bngr_put_str (&p, BNGR_F_AGENT_VERSION, "hostile");
        bngr_put_str (&p, BNGR_F_BOOT_ID, "hostile-boot");
        bngr_put_u64 (&p, BNGR_F_NONCE, nonce);
        send_frame (fd, BNGR_T_HELLO, 0, 0, &p);
        break;
      case BNGR_T_SETUP:
        bngr_put_u32 (&p, BNGR_F_SSHD, 0);
        send_frame (fd, BNGR_T_OK, 0, hdr.stream, &p);
        break;
      case BNGR_T_BOOT_ID:
        bngr_put_str (&p, BNGR_F_BOOT_ID, "hostile-boot");
        send_frame (fd, BNGR_T_OK, 0, hdr.stream, &p);
        break;
      case BNGR_T_EXEC:
        bngr_put_u32 (&p, BNGR_F_PID, 4242);
        send_frame (fd, BNGR_T_EXEC_STARTED, 0, hdr.stream, &p);
        if (!attacking) {
          static Flood flood;
          pthread_t t;
          attacking = true;
          flood.fd = fd;
          flood.stream = hdr.stream;
          pthread_create (&t, NULL, data_flood, &flood);
          pthread_detach (t);
          pthread_create (&t, NULL, console_flood, NULL);
          pthread_detach (t);
        }
        break;
      case BNGR_T_DATA:
      case BNGR_T_SIGNAL:
      case BNGR_T_RESIZE:
      case BNGR_T_ERROR:
        break;
      default: /* PING, STATS, PORTS, POWEROFF …: an empty OK */
        send_frame (fd, BNGR_T_OK, 0, hdr.stream, NULL);
        break;
      }
      bngr_buf_clear (&p);
      bngr_buf_consume (&in, consumed);
    }
  }
  bngr_buf_clear (&in);
}

int
main (int argc, char **argv)
{
  const char *path = NULL;
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  char dir[4096];

  for (int i = 1; i + 1 < argc; i++)
    if (strcmp (argv[i], "--listen-unix") == 0)
      path = argv[i + 1];
  if (path == NULL || strlen (path) >= sizeof addr.sun_path) {
    fprintf (stderr, "usage: hostile-agent --listen-unix PATH\n");
    return 2;
  }
  signal (SIGPIPE, SIG_IGN);
  snprintf (dir, sizeof dir, "%s", path);
  snprintf (console_path, sizeof console_path, "%s/console.log", dirname (dir));
  strcpy (addr.sun_path, path);
  unlink (path);
  int lfd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (lfd < 0 || bind (lfd, (struct sockaddr *)&addr, sizeof addr) < 0 || listen (lfd, 4) < 0) {
    perror ("hostile-agent: listen");
    return 1;
  }
  printf ("listening on %s\n", path);
  fflush (stdout);
  for (;;) {
    int fd = accept4 (lfd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR)
        continue;
      return 1;
    }
    serve (fd);
    close (fd);
  }
}
