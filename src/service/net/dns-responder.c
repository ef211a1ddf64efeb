/* BangerDnsResponder: the .vm server (dns-responder.h). UDP, the traffic
 * a resolver sends, is served by a thread of its own with recvmmsg and
 * sendmmsg on a blocking loop, no GMainContext and no allocation per query:
 * it answers while the main loop is busy (a long D-Bus call, a VM start),
 * and a batch of datagrams costs two system calls. TCP, which a resolver
 * only falls back to, stays a GSocket source on the main loop. Both answer
 * from the BangerDnsCache, never from SQLite. */
#include "dns-responder.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "banger-error.h"
#include "dns-cache.h"
#include "dns-wire.h"

#define LISTEN_ADDRESS "127.0.0.1"
/* A taken port is tried again this often, so a bangerd started with
 * --replace (the old one still holds the port for a moment) or one that
 * waited for another program to let go ends up answering. */
#define RETRY_SECONDS 5
/* TCP clients that go quiet are dropped after this, and at most this many
 * are served at once: the responder is for this host's resolver, not a
 * crowd. */
#define TCP_IDLE_SECONDS 10
#define TCP_MAX_CLIENTS  64
/* Datagrams taken (and answers sent) per system call by the UDP thread. */
#define UDP_BATCH 64
/* The largest UDP query read whole. A question is at most 271 bytes; with
 * an OPT record, a cookie and RFC 7830 padding a real query stays well
 * under this. A longer datagram is dropped (MSG_TRUNC), as dnsmasq does:
 * parsing half of it could only give a wrong FORMERR. */
#define UDP_QUERY_MAX 2048
#define MESSAGE_MAX   65535

typedef struct _TcpClient TcpClient;

struct _BangerDnsResponder {
  BangerDnsCache *cache; /* NULL when disabled */
  guint port;
  gboolean running;
  char *problem;
  GSocket *udp;
  GThread *udp_thread;
  gint udp_stopping; /* set by udp_thread_stop() */
  GSocket *tcp;
  GSource *tcp_source;
  guint retry_id;
  GList *clients; /* TcpClient */
  guint n_clients;
};

/* The UDP thread's buffers, allocated once when it starts. */
typedef struct {
  struct mmsghdr in_msgs[UDP_BATCH];
  struct iovec in_iov[UDP_BATCH];
  struct sockaddr_storage from[UDP_BATCH];
  guint8 in[UDP_BATCH][UDP_QUERY_MAX];
  struct mmsghdr out_msgs[UDP_BATCH];
  struct iovec out_iov[UDP_BATCH];
  guint8 out[UDP_BATCH][BANGER_DNS_REPLY_MAX];
} UdpBuffers;

/* One TCP connection: 2-byte length prefix and message in, the same out
 * (RFC 1035 4.2.2, RFC 7766 pipelining: several queries per connection). */
struct _TcpClient {
  BangerDnsResponder *owner;
  GSocket *socket;
  GSource *source;
  guint8 *in; /* 2 + MESSAGE_MAX bytes */
  gsize in_len;
  guint8 out[2 + BANGER_DNS_REPLY_MAX];
  gsize out_len;
  gsize out_sent;
};

/* ---- UDP (its own thread) ------------------------------------------------------------------- */

/* Answers one batch of received datagrams; returns how many replies are
 * ready in out_msgs. */
static guint
udp_answer_batch (BangerDnsCache *cache, UdpBuffers *b, guint n)
{
  guint out = 0;

  for (guint i = 0; i < n; i++) {
    struct msghdr *in = &b->in_msgs[i].msg_hdr;
    gsize len;

    if (in->msg_flags & MSG_TRUNC)
      continue;
    len = banger_dns_answer (b->in[i], b->in_msgs[i].msg_len, banger_dns_cache_lookup, cache,
                             b->out[out], BANGER_DNS_REPLY_MAX, NULL);
    if (len == 0)
      continue;
    b->out_iov[out].iov_base = b->out[out];
    b->out_iov[out].iov_len = len;
    memset (&b->out_msgs[out], 0, sizeof b->out_msgs[out]);
    b->out_msgs[out].msg_hdr.msg_name = &b->from[i];
    b->out_msgs[out].msg_hdr.msg_namelen = in->msg_namelen;
    b->out_msgs[out].msg_hdr.msg_iov = &b->out_iov[out];
    b->out_msgs[out].msg_hdr.msg_iovlen = 1;
    out++;
  }
  return out;
}

static void
udp_send_batch (int fd, UdpBuffers *b, guint n)
{
  guint sent = 0;

  while (sent < n) {
    int r = sendmmsg (fd, b->out_msgs + sent, n - sent, 0);

    if (r < 0) {
      if (errno == EINTR)
        continue;
      /* The first reply left could not go (a firewall's EPERM, ENOBUFS;
       * a full send buffer only makes this blocking socket wait): lost,
       * as a datagram may be; the rest can go. */
      g_debug ("DNS/UDP: send: %s", g_strerror (errno));
      sent++;
      continue;
    }
    sent += (guint)r;
  }
}

static gpointer
udp_thread (gpointer user_data)
{
  BangerDnsResponder *self = user_data;
  int fd = g_socket_get_fd (self->udp);
  g_autofree UdpBuffers *b = g_new (UdpBuffers, 1);

  while (!g_atomic_int_get (&self->udp_stopping)) {
    int n;

    for (guint i = 0; i < UDP_BATCH; i++) {
      b->in_iov[i].iov_base = b->in[i];
      b->in_iov[i].iov_len = UDP_QUERY_MAX;
      memset (&b->in_msgs[i], 0, sizeof b->in_msgs[i]);
      b->in_msgs[i].msg_hdr.msg_name = &b->from[i];
      b->in_msgs[i].msg_hdr.msg_namelen = sizeof b->from[i];
      b->in_msgs[i].msg_hdr.msg_iov = &b->in_iov[i];
      b->in_msgs[i].msg_hdr.msg_iovlen = 1;
    }
    /* Blocks for the first datagram, then takes what else is queued
     * without waiting: one system call per batch, none when idle. */
    n = recvmmsg (fd, b->in_msgs, UDP_BATCH, MSG_WAITFORONE, NULL);
    if (n > 0) {
      udp_send_batch (fd, b, udp_answer_batch (self->cache, b, (guint)n));
      continue;
    }
    if (n < 0 && errno != EINTR) {
      /* EBADF, ENOTSOCK, EFAULT, EINVAL: a bug, which would only spin. */
      if (errno == EBADF || errno == ENOTSOCK || errno == EFAULT || errno == EINVAL) {
        g_warning ("DNS/UDP: receive: %s; UDP answers stop", g_strerror (errno));
        break;
      }
      g_debug ("DNS/UDP: receive: %s", g_strerror (errno));
    }
    /* n == 0: the socket was shut down by udp_thread_stop(). */
  }
  return NULL;
}

/* Ends the UDP thread: the flag, then a wake-up for a thread blocked in
 * recvmmsg(). An empty datagram to the socket itself wakes it (and is
 * dropped as shorter than a header); shutdown() is the backstop, since on
 * Linux it wakes a blocked receiver of even an unconnected UDP socket (its
 * ENOTCONN is expected). A thread that is not blocked sees the flag
 * before its next read. */
static void
udp_thread_stop (BangerDnsResponder *self)
{
  if (self->udp_thread != NULL) {
    int fd = g_socket_get_fd (self->udp);
    struct sockaddr_storage self_addr;
    socklen_t len = sizeof self_addr;

    g_atomic_int_set (&self->udp_stopping, 1);
    if (getsockname (fd, (struct sockaddr *)&self_addr, &len) == 0)
      (void)sendto (fd, "", 0, MSG_DONTWAIT, (struct sockaddr *)&self_addr, len);
    (void)shutdown (fd, SHUT_RDWR);
    g_thread_join (g_steal_pointer (&self->udp_thread));
  }
}

static gboolean
udp_thread_start (BangerDnsResponder *self, GError **error)
{
  int fd = g_socket_get_fd (self->udp);
  int flags = fcntl (fd, F_GETFL);

  /* GSocket made the descriptor non-blocking; the thread blocks in
   * recvmmsg() instead (nothing else reads this socket). */
  if (flags < 0 || fcntl (fd, F_SETFL, flags & ~O_NONBLOCK) < 0) {
    int saved = errno;
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "fcntl: %s", g_strerror (saved));
    return FALSE;
  }
  g_atomic_int_set (&self->udp_stopping, 0);
  self->udp_thread = g_thread_try_new ("dns-udp", udp_thread, self, error);
  return self->udp_thread != NULL;
}

/* ---- TCP ---------------------------------------------------------------------------------- */

static gboolean tcp_client_cb (GSocket *socket, GIOCondition condition, gpointer user_data);

static void
tcp_client_free (TcpClient *c)
{
  if (c->source != NULL) {
    g_source_destroy (c->source);
    g_source_unref (c->source);
  }
  g_socket_close (c->socket, NULL);
  g_object_unref (c->socket);
  g_free (c->in);
  g_free (c);
}

static void
tcp_client_drop (TcpClient *c)
{
  BangerDnsResponder *self = c->owner;

  self->clients = g_list_remove (self->clients, c);
  self->n_clients--;
  tcp_client_free (c);
}

/* Waits for @condition: reading while no reply is pending, writing while
 * one is (so a client that never reads cannot make us buffer). */
static void
tcp_client_watch (TcpClient *c, GIOCondition condition)
{
  if (c->source != NULL) {
    g_source_destroy (c->source);
    g_source_unref (c->source);
  }
  c->source = g_socket_create_source (c->socket, condition | G_IO_HUP | G_IO_ERR, NULL);
  g_source_set_callback (c->source, G_SOURCE_FUNC (tcp_client_cb), c, NULL);
  g_source_attach (c->source, NULL);
}

/* Sends what is pending; FALSE if the connection is to go. */
static gboolean
tcp_client_flush (TcpClient *c, gboolean *done)
{
  g_autoptr (GError) error = NULL;

  while (c->out_sent < c->out_len) {
    gssize n = g_socket_send (c->socket, (const char *)c->out + c->out_sent,
                              c->out_len - c->out_sent, NULL, &error);
    if (n < 0) {
      if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK)) {
        *done = FALSE;
        return TRUE;
      }
      g_debug ("DNS/TCP: send: %s", error->message);
      return FALSE;
    }
    c->out_sent += (gsize)n;
  }
  c->out_len = c->out_sent = 0;
  *done = TRUE;
  return TRUE;
}

/* Reads and answers queries until the socket has no more; FALSE if the
 * connection is to go (end of stream, error, idle timeout, a message that
 * deserves no answer). */
static gboolean
tcp_client_serve (TcpClient *c, gboolean *want_write)
{
  *want_write = FALSE;
  for (;;) {
    g_autoptr (GError) error = NULL;
    gsize need = c->in_len < 2 ? 2 : 2 + ((gsize)c->in[0] << 8 | c->in[1]);
    gssize n;

    if (c->in_len == need) {
      gsize len = banger_dns_answer (c->in + 2, need - 2, banger_dns_cache_lookup, c->owner->cache,
                                     c->out + 2, sizeof c->out - 2, NULL);
      gboolean done = FALSE;

      c->in_len = 0;
      if (len == 0)
        return FALSE;
      c->out[0] = len >> 8;
      c->out[1] = len & 0xff;
      c->out_len = 2 + len;
      c->out_sent = 0;
      if (!tcp_client_flush (c, &done))
        return FALSE;
      if (!done) {
        *want_write = TRUE;
        return TRUE;
      }
      continue;
    }
    n = g_socket_receive (c->socket, (char *)c->in + c->in_len, need - c->in_len, NULL, &error);
    if (n < 0) {
      if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
        return TRUE;
      g_debug ("DNS/TCP: receive: %s", error->message);
      return FALSE;
    }
    if (n == 0)
      return FALSE;
    c->in_len += (gsize)n;
  }
}

static gboolean
tcp_client_cb (GSocket *socket, GIOCondition condition, gpointer user_data)
{
  TcpClient *c = user_data;
  gboolean want_write = FALSE;

  if (c->out_len > 0) {
    gboolean done = FALSE;

    if (!tcp_client_flush (c, &done)) {
      tcp_client_drop (c);
      return G_SOURCE_REMOVE;
    }
    if (!done)
      return G_SOURCE_CONTINUE;
    if (!tcp_client_serve (c, &want_write)) {
      tcp_client_drop (c);
      return G_SOURCE_REMOVE;
    }
    tcp_client_watch (c, want_write ? G_IO_OUT : G_IO_IN);
    return G_SOURCE_REMOVE;
  }
  if (!tcp_client_serve (c, &want_write)) {
    tcp_client_drop (c);
    return G_SOURCE_REMOVE;
  }
  if (want_write) {
    tcp_client_watch (c, G_IO_OUT);
    return G_SOURCE_REMOVE;
  }
  return G_SOURCE_CONTINUE;
}

static gboolean
tcp_accept_cb (GSocket *listener, GIOCondition condition, gpointer user_data)
{
  BangerDnsResponder *self = user_data;

  for (;;) {
    g_autoptr (GError) error = NULL;
    g_autoptr (GSocket) socket = g_socket_accept (listener, NULL, &error);
    TcpClient *c;

    if (socket == NULL) {
      if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
        g_debug ("DNS/TCP: accept: %s", error->message);
      break;
    }
    if (self->n_clients >= TCP_MAX_CLIENTS) {
      g_debug ("DNS/TCP: %u clients already, closing a new one", self->n_clients);
      g_socket_close (socket, NULL);
      continue;
    }
    g_socket_set_blocking (socket, FALSE);
    /* The source fires once the idle time is up, and the next read fails
     * with TIMED_OUT, which drops the client. */
    g_socket_set_timeout (socket, TCP_IDLE_SECONDS);
    c = g_new0 (TcpClient, 1);
    c->owner = self;
    c->socket = g_steal_pointer (&socket);
    c->in = g_malloc (2 + MESSAGE_MAX);
    self->clients = g_list_prepend (self->clients, c);
    self->n_clients++;
    tcp_client_watch (c, G_IO_IN);
  }
  return G_SOURCE_CONTINUE;
}

/* ---- listening ---------------------------------------------------------------------------- */

static void
stop_listening (BangerDnsResponder *self)
{
  g_list_free_full (g_steal_pointer (&self->clients), (GDestroyNotify)tcp_client_free);
  self->n_clients = 0;
  /* The thread goes before the socket it reads. */
  udp_thread_stop (self);
  if (self->tcp_source != NULL) {
    g_source_destroy (self->tcp_source);
    g_clear_pointer (&self->tcp_source, g_source_unref);
  }
  if (self->udp != NULL)
    g_socket_close (self->udp, NULL);
  if (self->tcp != NULL)
    g_socket_close (self->tcp, NULL);
  g_clear_object (&self->udp);
  g_clear_object (&self->tcp);
  self->running = FALSE;
}

static GSocket *
bind_socket (guint port, GSocketType type, GError **error)
{
  g_autoptr (GSocket) socket = NULL;
  g_autoptr (GSocketAddress) address = g_inet_socket_address_new_from_string (LISTEN_ADDRESS, port);
  gboolean tcp = type == G_SOCKET_TYPE_STREAM;

  socket = g_socket_new (G_SOCKET_FAMILY_IPV4, type,
                         tcp ? G_SOCKET_PROTOCOL_TCP : G_SOCKET_PROTOCOL_UDP, error);
  if (socket == NULL)
    return NULL;
  g_socket_set_blocking (socket, FALSE);
  /* TCP: SO_REUSEADDR so a restarted bangerd binds despite connections in
   * TIME_WAIT (two listeners still conflict). UDP: never, since there it
   * would let two bangerds share the port and split the queries. */
  if (!g_socket_bind (socket, address, tcp, error))
    return NULL;
  if (tcp) {
    g_socket_set_listen_backlog (socket, TCP_MAX_CLIENTS);
    if (!g_socket_listen (socket, error))
      return NULL;
  }
  return g_steal_pointer (&socket);
}

static gboolean
try_listen (BangerDnsResponder *self, GError **error)
{
  self->udp = bind_socket (self->port, G_SOCKET_TYPE_DATAGRAM, error);
  if (self->udp == NULL) {
    g_prefix_error (error, "UDP: ");
    return FALSE;
  }
  self->tcp = bind_socket (self->port, G_SOCKET_TYPE_STREAM, error);
  if (self->tcp == NULL) {
    /* Both or neither: a resolver that gets UDP answers but no TCP for a
     * truncated one would be harder to diagnose than no answers. */
    g_prefix_error (error, "TCP: ");
    stop_listening (self);
    return FALSE;
  }
  if (!udp_thread_start (self, error)) {
    g_prefix_error (error, "UDP: ");
    stop_listening (self);
    return FALSE;
  }
  self->tcp_source = g_socket_create_source (self->tcp, G_IO_IN, NULL);
  g_source_set_callback (self->tcp_source, G_SOURCE_FUNC (tcp_accept_cb), self, NULL);
  g_source_attach (self->tcp_source, NULL);
  self->running = TRUE;
  return TRUE;
}

static gboolean
retry_cb (gpointer user_data)
{
  BangerDnsResponder *self = user_data;
  g_autoptr (GError) error = NULL;

  if (!try_listen (self, &error))
    return G_SOURCE_CONTINUE;
  g_message ("DNS responder answers <name>.vm on %s:%u (UDP and TCP)", LISTEN_ADDRESS, self->port);
  g_clear_pointer (&self->problem, g_free);
  self->retry_id = 0;
  return G_SOURCE_REMOVE;
}

void
banger_dns_responder_free (BangerDnsResponder *self)
{
  if (self == NULL)
    return;
  if (self->retry_id != 0)
    g_source_remove (self->retry_id);
  stop_listening (self);
  g_clear_pointer (&self->cache, banger_dns_cache_free);
  g_free (self->problem);
  g_free (self);
}

/* ---- life ------------------------------------------------------------------------------ */

BangerDnsResponder *
banger_dns_responder_new (BangerConfig *config, BangerStore *store)
{
  BangerDnsResponder *self = g_new0 (BangerDnsResponder, 1);

  self->port = banger_config_get_dns_port (config);
  self->problem = g_strdup ("not started");
  /* Loaded now, before reconcile or any call changes the store, and kept
   * in step from here on; not needed when nothing will ask. */
  if (self->port != 0)
    self->cache = banger_dns_cache_new (store);
  return self;
}

void
banger_dns_responder_listen (BangerDnsResponder *self)
{
  g_autoptr (GError) error = NULL;

  if (self->running || self->retry_id != 0)
    return;
  g_clear_pointer (&self->problem, g_free);
  if (self->port == 0) {
    g_info ("DNS responder disabled ([dns] port=0)");
    self->problem = g_strdup ("disabled in the configuration ([dns] port=0)");
    return;
  }
  if (try_listen (self, &error)) {
    g_info ("DNS responder answers <name>.vm on %s:%u (UDP and TCP)", LISTEN_ADDRESS, self->port);
    return;
  }
  self->problem
      = g_strdup_printf ("cannot listen on %s:%u: %s", LISTEN_ADDRESS, self->port, error->message);
  g_warning ("DNS responder is off: %s; trying again every %u s", self->problem, RETRY_SECONDS);
  self->retry_id = g_timeout_add_seconds (RETRY_SECONDS, retry_cb, self);
}

guint
banger_dns_responder_get_port (BangerDnsResponder *self)
{
  return self->port;
}

gboolean
banger_dns_responder_is_running (BangerDnsResponder *self)
{
  return self->running;
}

const char *
banger_dns_responder_get_problem (BangerDnsResponder *self)
{
  return self->problem;
}
