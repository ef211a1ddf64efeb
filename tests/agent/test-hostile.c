/* The host library against a hostile guest agent: a FAKE agent played by a
 * thread of this test on the other end of a socketpair, speaking the real
 * frame format (frame.c) but ignoring flow control and sending damaged
 * frames on purpose (issue 10, finding 8). */
#define G_LOG_DOMAIN "test-hostile"

#include "agent-client-private.h"
#include "banger-error.h"
#include "protocol.h"

#include <glib-unix.h>

#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <fcntl.h>
#include <unistd.h>

#define TIMEOUT_S 60
#include "agent-test-wait.h"

/* What the client may hold for one connection: its sinks' high mark, one
 * frame and one read buffer (agent-client.c). */
#define QUEUE_BOUND (SINK_HIGH + BNGR_MAX_PAYLOAD + 64 * 1024)

static double
cpu_seconds (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static gsize
rss_bytes (void)
{
  g_autofree char *text = NULL;
  g_file_get_contents ("/proc/self/statm", &text, NULL, NULL);
  g_assert_nonnull (text);
  g_auto (GStrv) f = g_strsplit (text, " ", -1);
  return (gsize)g_ascii_strtoull (f[1], NULL, 10) * (gsize)sysconf (_SC_PAGESIZE);
}

/* ---- the fake hostile agent (a thread) --------------------------------------- */

typedef enum {
  HOSTILE_JUNK_IN_HANDSHAKE,
  HOSTILE_JUNK_AFTER_HANDSHAKE,
  HOSTILE_EXEC_FLOOD,
} HostileMode;

typedef struct {
  int fd;
  HostileMode mode;
  gsize flood_bytes;     /* EXEC_FLOOD: DATA bytes to send on stdout */
  volatile gint written; /* bytes of DATA written so far (in KiB) */
  volatile gint stalled; /* the client stopped reading for STALL_MS */
  volatile gint finished;
  GByteArray *in;
} Hostile;

#define STALL_MS 2000

/* Writes everything; notes a stall when the peer does not read for STALL_MS. */
static gboolean
hostile_write (Hostile *h, const guint8 *data, gsize len)
{
  while (len > 0) {
    struct pollfd p = { .fd = h->fd, .events = POLLOUT };
    int r = poll (&p, 1, STALL_MS);
    if (r == 0) {
      g_atomic_int_set (&h->stalled, 1);
      g_main_context_wakeup (NULL);
      continue;
    }
    ssize_t n = send (h->fd, data, len, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
      continue;
    if (n <= 0)
      return FALSE;
    data += n;
    len -= (gsize)n;
  }
  return TRUE;
}

static gboolean
hostile_frame (Hostile *h, guint8 type, guint16 flags, guint32 stream, const void *p, gsize len)
{
  BngrBuf b;
  bngr_buf_init (&b);
  g_assert_true (bngr_frame_append (&b, type, flags, stream, p, len));
  gboolean ok = hostile_write (h, b.data, b.len);
  bngr_buf_clear (&b);
  return ok;
}

/* Reads one request frame from the client. */
static gboolean
hostile_read (Hostile *h, BngrHeader *hdr, GBytes **payload)
{
  for (;;) {
    const uint8_t *pl;
    size_t consumed;
    const char *reason;
    if (h->in->len > 0) {
      BngrParseResult r = bngr_parse (h->in->data, h->in->len, hdr, &pl, &consumed, &reason);
      if (r == BNGR_PARSE_FRAME) {
        *payload = g_bytes_new (pl, hdr->length);
        g_byte_array_remove_range (h->in, 0, consumed);
        return TRUE;
      }
      if (r == BNGR_PARSE_SKIPPED) {
        g_byte_array_remove_range (h->in, 0, consumed);
        continue;
      }
    }
    guint8 tmp[4096];
    ssize_t n = read (h->fd, tmp, sizeof tmp);
    if (n <= 0)
      return FALSE;
    g_byte_array_append (h->in, tmp, n);
  }
}

/* Valid headers claiming 1 MiB with a wrong payload CRC, one every 24 bytes
 * for @span bytes, then enough filler for each claim to be complete: the
 * scan cost of the old parser was span/24 CRCs of 1 MiB each. */
static GByteArray *
packed_bad_headers (gsize span)
{
  GByteArray *junk = g_byte_array_new ();
  for (gsize off = 0; off < span; off += BNGR_HEADER_SIZE) {
    guint8 hdr[BNGR_HEADER_SIZE];
    guint32 v = GUINT32_TO_LE (BNGR_MAGIC);
    memcpy (hdr, &v, 4);
    hdr[4] = BNGR_PROTOCOL_VERSION;
    hdr[5] = BNGR_T_DATA;
    hdr[6] = 1;
    hdr[7] = 0;
    v = GUINT32_TO_LE (7);
    memcpy (hdr + 8, &v, 4);
    v = GUINT32_TO_LE (BNGR_MAX_PAYLOAD);
    memcpy (hdr + 12, &v, 4);
    v = GUINT32_TO_LE (0xdeadbeef);
    memcpy (hdr + 16, &v, 4);
    v = GUINT32_TO_LE (bngr_crc32 (0, hdr, 20));
    memcpy (hdr + 20, &v, 4);
    g_byte_array_append (junk, hdr, sizeof hdr);
  }
  gsize filler = BNGR_MAX_PAYLOAD + BNGR_HEADER_SIZE;
  g_byte_array_set_size (junk, junk->len + filler);
  memset (junk->data + junk->len - filler, 'x', filler);
  return junk;
}

static gpointer
hostile_thread (gpointer data)
{
  Hostile *h = data;
  BngrHeader hdr;
  GBytes *payload = NULL;
  g_autoptr (GByteArray) junk = packed_bad_headers (1024 * 1024);

  while (hostile_read (h, &hdr, &payload)) {
    gsize plen;
    const guint8 *pl = g_bytes_get_data (payload, &plen);
    if (hdr.type == BNGR_T_HELLO) {
      guint64 nonce = 0;
      BngrBuf p;
      bngr_find_u64 (pl, plen, BNGR_F_NONCE, &nonce);
      if (h->mode == HOSTILE_JUNK_IN_HANDSHAKE)
        hostile_write (h, junk->data, junk->len);
      bngr_buf_init (&p);
      bngr_put_u32 (&p, BNGR_F_PROTO_VERSION, BNGR_PROTOCOL_VERSION);
      bngr_put_str (&p, BNGR_F_AGENT_VERSION, "hostile");
      bngr_put_str (&p, BNGR_F_BOOT_ID, "hostile-boot");
      bngr_put_u64 (&p, BNGR_F_NONCE, nonce);
      hostile_frame (h, BNGR_T_HELLO, 0, 0, p.data, p.len);
      bngr_buf_clear (&p);
    } else if (hdr.type == BNGR_T_PING) {
      if (h->mode == HOSTILE_JUNK_AFTER_HANDSHAKE)
        hostile_write (h, junk->data, junk->len);
      hostile_frame (h, BNGR_T_OK, 0, hdr.stream, NULL, 0);
    } else if (hdr.type == BNGR_T_EXEC) {
      BngrBuf p;
      bngr_buf_init (&p);
      bngr_put_u32 (&p, BNGR_F_PID, 4242);
      hostile_frame (h, BNGR_T_EXEC_STARTED, 0, hdr.stream, p.data, p.len);
      bngr_buf_clear (&p);
      /* DATA as fast as the socket takes it, whatever the host's readers do:
       * the agent's own flow control is exactly what a hostile one skips. */
      g_autofree guint8 *chunk = g_malloc (BNGR_MAX_PAYLOAD);
      memset (chunk, 'o', BNGR_MAX_PAYLOAD);
      for (gsize sent = 0; sent < h->flood_bytes; sent += BNGR_MAX_PAYLOAD) {
        if (!hostile_frame (h, BNGR_T_DATA, BNGR_CHAN_STDOUT, hdr.stream, chunk, BNGR_MAX_PAYLOAD))
          break;
        g_atomic_int_set (&h->written, (gint)((sent + BNGR_MAX_PAYLOAD) / 1024));
      }
      hostile_frame (h, BNGR_T_DATA, BNGR_CHAN_STDOUT | BNGR_FLAG_EOF, hdr.stream, NULL, 0);
      hostile_frame (h, BNGR_T_DATA, BNGR_CHAN_STDERR | BNGR_FLAG_EOF, hdr.stream, NULL, 0);
      bngr_buf_init (&p);
      bngr_put_u32 (&p, BNGR_F_EXIT_CODE, 7);
      bngr_put_u32 (&p, BNGR_F_EXIT_SIGNAL, 0);
      hostile_frame (h, BNGR_T_EXIT, 0, hdr.stream, p.data, p.len);
      bngr_buf_clear (&p);
    }
    g_clear_pointer (&payload, g_bytes_unref);
  }
  g_atomic_int_set (&h->finished, 1);
  g_main_context_wakeup (NULL);
  return NULL;
}

typedef struct {
  Hostile h;
  GThread *thread;
  BangerAgentClient *client;
} Fixture;

static void
fixture_start (Fixture *f, HostileMode mode, guint handshake_ms, GError **error)
{
  int sv[2];
  g_assert_no_errno (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
  g_autoptr (GSocket) sock = g_socket_new_from_fd (sv[0], NULL);
  g_assert_nonnull (sock);
  g_autoptr (GSocketConnection) conn = g_socket_connection_factory_create_connection (sock);
  f->h.fd = sv[1];
  f->h.mode = mode;
  f->h.in = g_byte_array_new ();
  f->thread = g_thread_new ("hostile-agent", hostile_thread, &f->h);
  f->client = banger_agent_client_new (G_IO_STREAM (conn));
  Wait w = { 0 };
  banger_agent_client_handshake_async (f->client, handshake_ms, NULL, store_result_cb, &w);
  g_autoptr (GAsyncResult) res = wait_result (&w, "handshake");
  banger_agent_client_handshake_finish (f->client, res, error);
}

static void
fixture_stop (Fixture *f)
{
  banger_agent_client_close (f->client);
  g_clear_object (&f->client);
  shutdown (f->h.fd, SHUT_RDWR);
  g_thread_join (f->thread);
  close (f->h.fd);
  g_byte_array_unref (f->h.in);
}

/* 1 MiB of headers claiming 1 MiB each cost the old parser ~44 000 CRCs of
 * 1 MiB (minutes of CPU on the main loop); now the scan must be linear. */
static void
test_resync_in_handshake (void)
{
  Fixture f = { 0 };
  g_autoptr (GError) error = NULL;
  double t0 = cpu_seconds ();
  fixture_start (&f, HOSTILE_JUNK_IN_HANDSHAKE, 30000, &error);
  g_assert_no_error (error);
  double spent = cpu_seconds () - t0;
  g_test_message ("handshake through the junk: %.2f s of CPU", spent);
  g_assert_cmpfloat (spent, <, 3.0);
  g_assert_cmpstr (banger_agent_client_get_agent_version (f.client), ==, "hostile");
  fixture_stop (&f);
}

static void
test_resync_after_handshake (void)
{
  Fixture f = { 0 };
  g_autoptr (GError) error = NULL;
  fixture_start (&f, HOSTILE_JUNK_AFTER_HANDSHAKE, 5000, &error);
  g_assert_no_error (error);
  double t0 = cpu_seconds ();
  Wait w = { 0 };
  banger_agent_client_ping_async (f.client, NULL, store_result_cb, &w);
  g_autoptr (GAsyncResult) res = wait_result (&w, "ping through the junk");
  g_assert_true (banger_agent_client_ping_finish (f.client, res, &error));
  g_assert_no_error (error);
  double spent = cpu_seconds () - t0;
  g_test_message ("ping through the junk: %.2f s of CPU", spent);
  g_assert_cmpfloat (spent, <, 3.0);
  fixture_stop (&f);
}

typedef struct {
  int fd;
  char *buf;
  gsize got;
  gint eof;
} Drain;

static gboolean
drain_cb (int fd, GIOCondition cond, gpointer data)
{
  Drain *d = data;
  gssize n = read (fd, d->buf, 256 * 1024);
  g_assert_cmpint (n, >=, 0);
  if (n == 0)
    g_atomic_int_set (&d->eof, 1);
  d->got += (gsize)n;
  return G_SOURCE_CONTINUE;
}

/* A guest that floods stdout while the caller does not read: the client
 * stops reading the connection, so the fake agent stalls with most of its
 * flood unsent and bangerd's memory stays bounded; once the caller reads,
 * everything arrives and the exit status with it. */
static void
test_exec_flood (void)
{
  Fixture f = { 0 };
  g_autoptr (GError) error = NULL;
  const gsize flood = 64u * 1024 * 1024;
  int out_p[2];

  f.h.flood_bytes = flood;
  fixture_start (&f, HOSTILE_EXEC_FLOOD, 5000, &error);
  g_assert_no_error (error);
  gsize rss0 = rss_bytes ();
  g_assert_no_errno (pipe2 (out_p, O_CLOEXEC));
  const char *argv[] = { "yes", NULL };
  g_autoptr (BangerAgentExec) exec
      = banger_agent_client_exec (f.client, argv, NULL, -1, out_p[1], -1, &error);
  g_assert_no_error (error);
  close (out_p[1]);

  run_until (&f.h.stalled, "the flood to stall");
  gsize written = (gsize)g_atomic_int_get (&f.h.written) * 1024;
  gsize rss = rss_bytes ();
  g_test_message ("flood stalled after %" G_GSIZE_FORMAT " KiB; RSS grew by %" G_GSSIZE_FORMAT
                  " KiB",
                  written / 1024, ((gssize)rss - (gssize)rss0) / 1024);
  g_assert_cmpuint (written, <, 16u * 1024 * 1024);
#ifndef __SANITIZE_ADDRESS__
  /* (ASan's quarantine keeps freed frames resident: RSS says nothing there.) */
  g_assert_cmpint ((gssize)rss - (gssize)rss0, <, 2 * QUEUE_BOUND);
#endif

  /* Now the caller reads: everything arrives, then the exit status. */
  Wait w = { 0 };
  banger_agent_exec_wait_async (exec, NULL, store_result_cb, &w);
  Drain d = { .fd = out_p[0], .buf = g_malloc (256 * 1024) };
  guint src = g_unix_fd_add (out_p[0], G_IO_IN | G_IO_HUP, drain_cb, &d);
  run_until (&d.eof, "the flood's output");
  g_source_remove (src);
  g_free (d.buf);
  gsize got = d.got;
  close (out_p[0]);
  g_assert_cmpuint (got, ==, flood);
  g_autoptr (GAsyncResult) res = wait_result (&w, "exit status");
  g_assert_cmpint (banger_agent_exec_wait_finish (exec, res, &error), ==, 7);
  g_assert_no_error (error);
  fixture_stop (&f);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  signal (SIGPIPE, SIG_IGN);
  g_test_add_func ("/agent/hostile/resync-in-handshake", test_resync_in_handshake);
  g_test_add_func ("/agent/hostile/resync-after-handshake", test_resync_after_handshake);
  g_test_add_func ("/agent/hostile/exec-flood", test_exec_flood);
  return g_test_run ();
}
