/* The host side of the agent protocol: one connection, the handshake with
 * resynchronisation, the frame reader and the ordered writer, and the simple
 * request/reply calls (stats, ports, boot id, ping, setup, power-off).
 *
 * One file (~1200 lines) on purpose: the reader, the resynchronisation and
 * the writer's ordering and back-pressure are one state machine over one
 * connection; exec and file streams register themselves (agent-exec.c,
 * agent-client-files.c) instead. */
#include "agent-client-private.h"

#include "banger-error.h"
#include "config.h"

#include <gio/gunixsocketaddress.h>

#define DEFAULT_TIMEOUT_MS 10000
/* HELLO is sent again after 250 ms, then twice as long each time up to 3 s:
 * a guest restored from a snapshot (docs/warm-start.md) can drop the first
 * one with the stale "host closed" of its template's session, and must not
 * cost a whole 3 s for it; a booting guest gets a few more HELLOs queued,
 * all answered before our first request (see below). */
#define HELLO_RESEND_FIRST_MS 250
#define HELLO_RESEND_MS       3000
#define READ_SIZE          (64 * 1024)
/* SETUP's reply, as the int its task returns. */
#define SETUP_SSHD     0x1
#define SETUP_IDENTITY 0x2

struct _BangerAgentClient {
  GObject parent_instance;

  GIOStream *stream;
  GInputStream *in;
  GOutputStream *out;
  GCancellable *cancel; /* cancelled on close: stops the read and write loops */
  gboolean closed;
  gboolean reading;

  GByteArray *inbuf;
  guint8 *readbuf; /* READ_SIZE bytes */
  gboolean processing;
  guint64 rescan_budget; /* see process_input */
  gsize sink_bytes;      /* queued in the sinks of this client's execs and downloads */
  gboolean read_paused;  /* because of sink_bytes */
  GSource *resume_source;

  GQueue outq; /* GBytes, whole frames */
  gsize queued_bytes;
  gboolean writing;
  GQueue drain_waiters; /* DrainWaiter */

  /* handshake */
  guint64 nonce;
  gboolean handshaken;
  guint64 discarded; /* bytes dropped before our HELLO's answer */
  GTask *hello_task;
  GSource *hello_timeout;
  GSource *hello_resend;
  guint hello_resend_ms;
  GSource *hello_cancel; /* the caller's cancellable, as a source */
  guint protocol_version;
  char *agent_version;
  char *boot_id;
  gboolean has_identity;

  guint32 next_id;
  GHashTable *pending; /* id → Pending */
};

G_DEFINE_TYPE (BangerAgentClient, banger_agent_client, G_TYPE_OBJECT)

enum { SIGNAL_CLOSED, N_SIGNALS };
static guint signals[N_SIGNALS];

typedef struct {
  GObject *owner;
  void (*resume) (GObject *owner);
} DrainWaiter;

static void client_shutdown (BangerAgentClient *self, GError *error);
static void start_read (BangerAgentClient *self);

/* ---- sink ---------------------------------------------------------------- */

void
banger_sink_init (BangerSink *sink, BangerAgentClient *client, GOutputStream *stream,
                  gboolean close_stream, GObject *owner, void (*on_idle) (GObject *owner))
{
  sink->client = client;
  sink->queued = 0;
  sink->stream = stream;
  sink->close_stream = close_stream;
  sink->in_thread = close_stream;
  g_queue_init (&sink->queue);
  sink->writing = FALSE;
  sink->error = NULL;
  sink->owner = owner;
  sink->on_idle = on_idle;
}

typedef struct {
  BangerSink *sink;
  GObject *owner;
} SinkWrite;

static void sink_kick (BangerSink *sink);

static void
sink_pop (BangerSink *sink)
{
  GBytes *bytes = g_queue_pop_head (&sink->queue);
  gsize len = g_bytes_get_size (bytes);
  g_bytes_unref (bytes);
  sink->queued -= MIN (sink->queued, len);
  if (sink->client != NULL)
    banger_agent_client_sink_account (sink->client, -(gssize)len);
}

static void
sink_drop_all (BangerSink *sink)
{
  gsize len = sink->queued;
  g_queue_clear_full (&sink->queue, (GDestroyNotify)g_bytes_unref);
  sink->queued = 0;
  if (sink->client != NULL && len > 0)
    banger_agent_client_sink_account (sink->client, -(gssize)len);
}

/* The caller's descriptors are blocking and their O_NONBLOCK flag is shared
 * with the caller (it is one open file description), so it must not be
 * changed; a blocking write to a full pipe must not stall the main loop
 * either. So such writes run in a worker thread, one at a time per sink. */
static void
sink_write_thread (GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
  GError *error = NULL;
  gsize len;
  const guint8 *data = g_bytes_get_data (task_data, &len);
  if (!g_output_stream_write_all (G_OUTPUT_STREAM (source), data, len, NULL, NULL, &error))
    g_task_return_error (task, error);
  else
    g_task_return_boolean (task, TRUE);
}

static void
sink_written_cb (GObject *source, GAsyncResult *res, gpointer user_data)
{
  SinkWrite *w = user_data;
  BangerSink *sink = w->sink;
  g_autoptr (GError) error = NULL;
  g_autoptr (GObject) owner = w->owner;

  g_free (w);
  sink->writing = FALSE;
  sink_pop (sink);
  gboolean ok = sink->in_thread ? g_task_propagate_boolean (G_TASK (res), &error)
                                : g_output_stream_write_all_finish (G_OUTPUT_STREAM (source), res,
                                                                    NULL, &error);
  if (!ok) {
    /* The reader of the caller's descriptor went away (EPIPE): keep
     * draining the protocol but drop the output, as a terminal would. */
    g_debug ("writing command output: %s", error->message);
    if (sink->error == NULL)
      sink->error = g_steal_pointer (&error);
    sink_drop_all (sink);
  }
  sink_kick (sink);
}

static void
sink_kick (BangerSink *sink)
{
  if (sink->writing)
    return;
  if (g_queue_is_empty (&sink->queue)) {
    if (sink->on_idle != NULL)
      sink->on_idle (sink->owner);
    return;
  }
  GBytes *bytes = g_queue_peek_head (&sink->queue);
  SinkWrite *w = g_new0 (SinkWrite, 1);
  gsize len;
  const guint8 *data = g_bytes_get_data (bytes, &len);
  w->sink = sink;
  w->owner = g_object_ref (sink->owner);
  sink->writing = TRUE;
  if (sink->in_thread) {
    GTask *task = g_task_new (sink->stream, NULL, sink_written_cb, w);
    g_task_set_task_data (task, g_bytes_ref (bytes), (GDestroyNotify)g_bytes_unref);
    g_task_run_in_thread (task, sink_write_thread);
    g_object_unref (task);
    return;
  }
  g_output_stream_write_all_async (sink->stream, data, len, G_PRIORITY_DEFAULT, NULL,
                                   sink_written_cb, w);
}

void
banger_sink_push (BangerSink *sink, const guint8 *data, gsize len)
{
  if (sink->stream == NULL || sink->error != NULL || len == 0)
    return;
  g_queue_push_tail (&sink->queue, g_bytes_new (data, len));
  sink->queued += len;
  if (sink->client != NULL)
    banger_agent_client_sink_account (sink->client, (gssize)len);
  sink_kick (sink);
}

gboolean
banger_sink_idle (BangerSink *sink)
{
  return !sink->writing && g_queue_is_empty (&sink->queue);
}

void
banger_sink_clear (BangerSink *sink)
{
  sink_drop_all (sink);
  g_clear_error (&sink->error);
  if (sink->stream != NULL && sink->close_stream)
    g_output_stream_close (sink->stream, NULL, NULL);
  g_clear_object (&sink->stream);
}

/* ---- errors --------------------------------------------------------------- */

GError *
banger_agent_client_error_from_frame (const guint8 *payload, gsize len)
{
  guint32 code = BNGR_ERR_FAILED;
  g_autofree char *msg = NULL;
  char *m = bngr_find_str (payload, len, BNGR_F_ERR_MESSAGE);
  BangerError berr;

  /* bngr_find_str allocates with malloc; take a GLib copy. */
  msg = g_strdup (m != NULL ? m : "the agent reported an error without a message");
  free (m);
  bngr_find_u32 (payload, len, BNGR_F_ERR_CODE, &code);
  switch (code) {
  case BNGR_ERR_NOT_FOUND:
    berr = BANGER_ERROR_NOT_FOUND;
    break;
  case BNGR_ERR_INVALID:
  case BNGR_ERR_BAD_FRAME:
    berr = BANGER_ERROR_INVALID_ARGUMENT;
    break;
  case BNGR_ERR_PERMISSION:
    berr = BANGER_ERROR_NOT_AUTHORIZED;
    break;
  case BNGR_ERR_BUSY:
    berr = BANGER_ERROR_BUSY;
    break;
  case BNGR_ERR_VERSION:
  case BNGR_ERR_UNKNOWN:
    berr = BANGER_ERROR_UNSUPPORTED;
    break;
  default:
    berr = BANGER_ERROR_FAILED;
    break;
  }
  return g_error_new (BANGER_ERROR, berr, "guest agent: %s", msg);
}

/* ---- writer --------------------------------------------------------------- */

static void kick_writer (BangerAgentClient *self);

static void
run_drain_waiters (BangerAgentClient *self)
{
  while (self->queued_bytes < CLIENT_QUEUE_LOW && !g_queue_is_empty (&self->drain_waiters)) {
    DrainWaiter *w = g_queue_pop_head (&self->drain_waiters);
    w->resume (w->owner);
    g_object_unref (w->owner);
    g_free (w);
  }
}

static void
frame_written_cb (GObject *source, GAsyncResult *res, gpointer user_data)
{
  g_autoptr (BangerAgentClient) self = user_data;
  g_autoptr (GError) error = NULL;
  GBytes *bytes = g_queue_pop_head (&self->outq);

  self->writing = FALSE;
  if (bytes != NULL) {
    self->queued_bytes -= g_bytes_get_size (bytes);
    g_bytes_unref (bytes);
  }
  if (!g_output_stream_write_all_finish (G_OUTPUT_STREAM (source), res, NULL, &error)) {
    if (!self->closed)
      client_shutdown (self, g_error_new (G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED,
                                          "writing to the guest agent: %s", error->message));
    return;
  }
  run_drain_waiters (self);
  kick_writer (self);
}

static void
kick_writer (BangerAgentClient *self)
{
  if (self->writing || self->closed || g_queue_is_empty (&self->outq))
    return;
  GBytes *bytes = g_queue_peek_head (&self->outq);
  gsize len;
  const guint8 *data = g_bytes_get_data (bytes, &len);
  self->writing = TRUE;
  g_output_stream_write_all_async (self->out, data, len, G_PRIORITY_DEFAULT, self->cancel,
                                   frame_written_cb, g_object_ref (self));
}

void
banger_agent_client_send (BangerAgentClient *self, guint8 type, guint16 flags, guint32 stream,
                          const guint8 *payload, gsize len)
{
  BngrBuf buf;
  if (self->closed)
    return;
  bngr_buf_init (&buf);
  if (!bngr_frame_append (&buf, type, flags, stream, payload, len)) {
    /* Only an oversized payload gets here: every caller chunks its data. */
    g_critical ("cannot encode a %s frame of %" G_GSIZE_FORMAT " bytes", bngr_type_name (type),
                len);
    bngr_buf_clear (&buf);
    return;
  }
  g_queue_push_tail (&self->outq, g_bytes_new_with_free_func (buf.data, buf.len, free, buf.data));
  self->queued_bytes += buf.len;
  kick_writer (self);
}

void
banger_agent_client_when_drained (BangerAgentClient *self, GObject *owner,
                                  void (*resume) (GObject *owner))
{
  DrainWaiter *w = g_new0 (DrainWaiter, 1);
  w->owner = g_object_ref (owner);
  w->resume = resume;
  g_queue_push_tail (&self->drain_waiters, w);
  run_drain_waiters (self);
}

gboolean
banger_agent_client_queue_full (BangerAgentClient *self)
{
  return self->queued_bytes >= CLIENT_QUEUE_HIGH;
}

/* ---- pending requests ------------------------------------------------------ */

static void
pending_free (Pending *p)
{
  g_clear_object (&p->owner);
  g_free (p);
}

guint32
banger_agent_client_register (BangerAgentClient *self, guint8 type, const PendingOps *ops,
                              gpointer owner)
{
  Pending *pending = g_new0 (Pending, 1);
  pending->ops = ops;
  pending->type = type;
  pending->owner = g_object_ref (owner);
  do {
    self->next_id++;
  } while (self->next_id == 0
           || g_hash_table_contains (self->pending, GUINT_TO_POINTER (self->next_id)));
  pending->id = self->next_id;
  g_hash_table_insert (self->pending, GUINT_TO_POINTER (pending->id), pending);
  return pending->id;
}

void
banger_agent_client_unregister (BangerAgentClient *self, guint32 id)
{
  g_hash_table_remove (self->pending, GUINT_TO_POINTER (id));
}

gboolean
banger_agent_client_check_ready (BangerAgentClient *self, GError **error)
{
  if (self->closed) {
    g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED,
                         "the connection to the guest agent is closed");
    return FALSE;
  }
  if (!self->handshaken) {
    g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_NOT_CONNECTED,
                         "the guest agent handshake has not completed");
    return FALSE;
  }
  return TRUE;
}

/* ---- simple replies ------------------------------------------------------- */

static GVariant *
parse_stats (const guint8 *payload, gsize len)
{
  static const struct {
    guint16 tag;
    const char *key;
    gboolean is_double;
  } map[] = {
    { BNGR_F_MEM_TOTAL, "mem_total_bytes", FALSE },
    { BNGR_F_MEM_AVAILABLE, "mem_available_bytes", FALSE },
    { BNGR_F_DISK_TOTAL, "disk_total_bytes", FALSE },
    { BNGR_F_DISK_FREE, "disk_free_bytes", FALSE },
    { BNGR_F_LOAD1, "load1", TRUE },
    { BNGR_F_LOAD5, "load5", TRUE },
    { BNGR_F_LOAD15, "load15", TRUE },
    { BNGR_F_UPTIME, "uptime_seconds", TRUE },
  };
  g_auto (GVariantBuilder) b = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE_VARDICT);
  for (gsize i = 0; i < G_N_ELEMENTS (map); i++) {
    const guint8 *v;
    size_t vl;
    guint64 u;
    double d;
    if (!bngr_find (payload, len, map[i].tag, &v, &vl))
      continue;
    if (map[i].is_double && bngr_value_double (v, vl, &d))
      g_variant_builder_add (&b, "{sv}", map[i].key, g_variant_new_double (d));
    else if (!map[i].is_double && bngr_value_u64 (v, vl, &u))
      g_variant_builder_add (&b, "{sv}", map[i].key, g_variant_new_uint64 (u));
  }
  return g_variant_ref_sink (g_variant_builder_end (&b));
}

static GVariant *
parse_ports (const guint8 *payload, gsize len, GError **error)
{
  g_auto (GVariantBuilder) b = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE ("a(ssqus)"));
  BngrFieldIter it;
  guint16 tag;
  const guint8 *v;
  size_t vl;
  g_autofree char *proto = NULL, *addr = NULL;
  guint32 port = 0, pid = 0;

  bngr_iter_init (&it, payload, len);
  while (bngr_iter_next (&it, &tag, &v, &vl)) {
    char *s;
    switch (tag) {
    case BNGR_F_PORT_PROTO:
    case BNGR_F_PORT_ADDR:
    case BNGR_F_PORT_COMM:
      s = bngr_value_strdup (v, vl);
      if (s == NULL || !g_utf8_validate (s, -1, NULL)) {
        free (s);
        g_set_error_literal (error, BANGER_ERROR, BANGER_ERROR_FAILED,
                             "guest agent sent an invalid port entry");
        return NULL;
      }
      if (tag == BNGR_F_PORT_PROTO) {
        g_free (proto);
        proto = g_strdup (s);
      } else if (tag == BNGR_F_PORT_ADDR) {
        g_free (addr);
        addr = g_strdup (s);
      } else if (proto != NULL && addr != NULL) {
        /* COMM closes one entry. */
        g_variant_builder_add (&b, "(ssqus)", proto, addr, (guint16)port, pid, s);
      }
      free (s);
      break;
    case BNGR_F_PORT_NUM:
      bngr_value_u32 (v, vl, &port);
      break;
    case BNGR_F_PORT_PID:
      bngr_value_u32 (v, vl, &pid);
      break;
    default:
      break;
    }
  }
  return g_variant_ref_sink (g_variant_builder_end (&b));
}

static void
simple_reply (Pending *p, const BngrHeader *hdr, const guint8 *payload)
{
  GTask *task = G_TASK (p->owner);
  GError *error = NULL;
  if (hdr->type == BNGR_T_ERROR) {
    g_task_return_error (task, banger_agent_client_error_from_frame (payload, hdr->length));
    return;
  }
  if (hdr->type != BNGR_T_OK) {
    g_task_return_new_error (task, BANGER_ERROR, BANGER_ERROR_FAILED,
                             "guest agent answered %s with %s", bngr_type_name (p->type),
                             bngr_type_name (hdr->type));
    return;
  }
  switch (p->type) {
  case BNGR_T_STATS:
    g_task_return_pointer (task, parse_stats (payload, hdr->length),
                           (GDestroyNotify)g_variant_unref);
    break;
  case BNGR_T_PORTS: {
    GVariant *v = parse_ports (payload, hdr->length, &error);
    if (v == NULL)
      g_task_return_error (task, error);
    else
      g_task_return_pointer (task, v, (GDestroyNotify)g_variant_unref);
    break;
  }
  case BNGR_T_BOOT_ID: {
    char *s = bngr_find_str (payload, hdr->length, BNGR_F_BOOT_ID);
    g_task_return_pointer (task, g_strdup (s != NULL ? s : ""), g_free);
    free (s);
    break;
  }
  case BNGR_T_SETUP: {
    guint32 sshd = 0, identity = 0;
    bngr_find_u32 (payload, hdr->length, BNGR_F_SSHD, &sshd);
    bngr_find_u32 (payload, hdr->length, BNGR_F_IDENTITY, &identity);
    g_task_return_int (task, (sshd ? SETUP_SSHD : 0) | (identity ? SETUP_IDENTITY : 0));
    break;
  }
  default:
    g_task_return_boolean (task, TRUE);
    break;
  }
}

static void
simple_handle_frame (Pending *p, const BngrHeader *hdr, const guint8 *payload)
{
  /* The reply's callback may close the client, which frees @p. */
  BangerAgentClient *client = g_task_get_source_object (G_TASK (p->owner));
  guint32 id = p->id;
  simple_reply (p, hdr, payload);
  banger_agent_client_unregister (client, id);
}

static void
simple_fail (Pending *p, const GError *error)
{
  g_task_return_error (G_TASK (p->owner), g_error_copy (error));
}

static const PendingOps simple_ops = {
  .handle_frame = simple_handle_frame,
  .fail = simple_fail,
};

/* ---- reader ---------------------------------------------------------------- */

static void
hello_done (BangerAgentClient *self, GError *error)
{
  g_autoptr (GTask) task = g_steal_pointer (&self->hello_task);
  if (self->hello_timeout != NULL) {
    g_source_destroy (self->hello_timeout);
    g_clear_pointer (&self->hello_timeout, g_source_unref);
  }
  if (self->hello_resend != NULL) {
    g_source_destroy (self->hello_resend);
    g_clear_pointer (&self->hello_resend, g_source_unref);
  }
  if (self->hello_cancel != NULL) {
    g_source_destroy (self->hello_cancel);
    g_clear_pointer (&self->hello_cancel, g_source_unref);
  }
  if (task == NULL) {
    g_clear_error (&error);
    return;
  }
  if (error != NULL)
    g_task_return_error (task, error);
  else
    g_task_return_boolean (task, TRUE);
}

static void
handle_hello (BangerAgentClient *self, const BngrHeader *hdr, const guint8 *payload)
{
  guint64 nonce = 0;
  guint32 version = 0;
  char *s;

  if (!bngr_find_u64 (payload, hdr->length, BNGR_F_NONCE, &nonce) || nonce != self->nonce) {
    g_debug ("ignoring a HELLO from an earlier session");
    return;
  }
  bngr_find_u32 (payload, hdr->length, BNGR_F_PROTO_VERSION, &version);
  self->protocol_version = version;
  s = bngr_find_str (payload, hdr->length, BNGR_F_AGENT_VERSION);
  g_free (self->agent_version);
  self->agent_version = g_strdup (s != NULL && g_utf8_validate (s, -1, NULL) ? s : "");
  free (s);
  {
    guint32 identity = 0;
    bngr_find_u32 (payload, hdr->length, BNGR_F_IDENTITY, &identity);
    self->has_identity = identity != 0;
  }
  s = bngr_find_str (payload, hdr->length, BNGR_F_BOOT_ID);
  g_free (self->boot_id);
  self->boot_id = g_strdup (s != NULL && g_utf8_validate (s, -1, NULL) ? s : "");
  free (s);
  /* Older agents within the compatible range are served (the VM starts,
   * stops and execs; the doctor warns); only a version outside it is
   * refused (docs/agent-protocol.md, "Versioning"). */
  if (version < BNGR_PROTOCOL_VERSION_MIN || version > BNGR_PROTOCOL_VERSION) {
    GError *error = g_error_new (
        BANGER_ERROR, BANGER_ERROR_UNSUPPORTED,
        "guest agent speaks protocol version %u, banger speaks %d to %d: rebuild the VM's image",
        version, BNGR_PROTOCOL_VERSION_MIN, BNGR_PROTOCOL_VERSION);
    hello_done (self, g_error_copy (error));
    client_shutdown (self, error);
    return;
  }
  self->handshaken = TRUE;
  g_debug ("agent %s (protocol %u), boot id %s; %" G_GUINT64_FORMAT
           " bytes of an earlier session discarded",
           self->agent_version, version, self->boot_id, self->discarded);
  hello_done (self, NULL);
}

static void
handle_frame (BangerAgentClient *self, const BngrHeader *hdr, const guint8 *payload)
{
  Pending *p;

  if (!self->handshaken) {
    /* Everything before our HELLO's answer is a previous session's. */
    if (hdr->type == BNGR_T_HELLO)
      handle_hello (self, hdr, payload);
    if (!self->handshaken)
      self->discarded += BNGR_HEADER_SIZE + hdr->length;
    return;
  }
  if (hdr->type == BNGR_T_HELLO)
    return;
  if (hdr->stream == 0) {
    if (hdr->type == BNGR_T_ERROR) {
      g_autoptr (GError) error = banger_agent_client_error_from_frame (payload, hdr->length);
      g_debug ("%s", error->message);
    }
    return;
  }
  p = g_hash_table_lookup (self->pending, GUINT_TO_POINTER (hdr->stream));
  if (p == NULL) {
    g_debug ("ignoring %s for unknown stream %u", bngr_type_name (hdr->type), hdr->stream);
    return;
  }
  p->ops->handle_frame (p, hdr, payload);
}

/* Frames with an intact header and a damaged payload are re-scanned one
 * byte further (a frame may start inside them) only while this budget of
 * CRC work lasts: it starts at RESCAN_BUDGET_START bytes and every byte
 * consumed adds RESCAN_BUDGET_PER_BYTE, so the CRC work stays linear in
 * what the guest sends. Past it, and always after the handshake (an agent
 * in sync never sends a damaged frame), the whole frame is dropped. */
#define RESCAN_BUDGET_START    (32u * 1024 * 1024)
#define RESCAN_BUDGET_PER_BYTE 16u

static void
process_input (BangerAgentClient *self)
{
  gsize pos = 0;

  /* Handlers may end in callbacks that resume reading: one parser at a time. */
  if (self->processing)
    return;
  self->processing = TRUE;
  /* The buffer is consumed from an offset and compacted once at the end:
   * removing each skipped byte from its front would cost a copy of the
   * whole buffer per byte. */
  while (pos < self->inbuf->len && !self->closed && !banger_agent_client_sinks_full (self)) {
    BngrHeader hdr;
    const uint8_t *payload = NULL;
    size_t consumed = 0;
    const char *reason = NULL;
    unsigned options = 0;
    if (self->handshaken || self->rescan_budget < BNGR_MAX_PAYLOAD)
      options |= BNGR_PARSE_DROP_BAD_PAYLOAD;
    BngrParseResult r = bngr_parse_ex (self->inbuf->data + pos, self->inbuf->len - pos, options,
                                       &hdr, &payload, &consumed, &reason);
    if (r == BNGR_PARSE_NEED_MORE)
      break;
    pos += consumed;
    self->rescan_budget = MIN ((guint64)G_MAXUINT32,
                               self->rescan_budget + (guint64)consumed * RESCAN_BUDGET_PER_BYTE);
    if (r == BNGR_PARSE_FRAME) {
      /* Copy: handlers may re-enter and the buffer moves when we consume. */
      g_autofree guint8 *copy = g_memdup2 (payload, hdr.length);
      handle_frame (self, &hdr, copy);
      continue;
    }
    if (consumed == 1 && reason != NULL && g_str_has_prefix (reason, "frame payload"))
      self->rescan_budget -= MIN (self->rescan_budget, (guint64)hdr.length);
    if (self->handshaken)
      g_debug ("skipping %" G_GSIZE_FORMAT " bytes from the agent: %s", consumed, reason);
    else
      self->discarded += consumed;
  }
  if (pos > 0)
    g_byte_array_remove_range (self->inbuf, 0, (guint)pos);
  self->processing = FALSE;
}

static void
read_cb (GObject *source, GAsyncResult *res, gpointer user_data)
{
  g_autoptr (BangerAgentClient) self = user_data;
  g_autoptr (GError) error = NULL;
  gssize n = g_input_stream_read_finish (G_INPUT_STREAM (source), res, &error);

  self->reading = FALSE;
  if (self->closed)
    return;
  if (n < 0) {
    client_shutdown (self, g_error_new (G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED,
                                        "reading from the guest agent: %s", error->message));
    return;
  }
  if (n == 0) {
    client_shutdown (self, g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED,
                                                "the guest agent closed the connection"));
    return;
  }
  g_byte_array_append (self->inbuf, self->readbuf, (guint)n);
  process_input (self);
  start_read (self);
}

/* ---- back-pressure from the sinks -------------------------------------------- */

static gboolean resume_reading_cb (gpointer user_data);

/* A guest may send output faster than the caller reads it (or ignore flow
 * control on purpose): while the sinks hold more than SINK_HIGH bytes the
 * client stops reading the connection, which stops the agent in turn, and
 * resumes below SINK_LOW. So what bangerd holds per connection is bounded
 * by SINK_HIGH plus one read buffer and one frame. */
gboolean
banger_agent_client_sinks_full (BangerAgentClient *self)
{
  return self->sink_bytes > SINK_HIGH;
}

void
banger_agent_client_sink_account (BangerAgentClient *self, gssize delta)
{
  if (delta < 0)
    self->sink_bytes -= MIN (self->sink_bytes, (gsize)-delta);
  else
    self->sink_bytes += (gsize)delta;
  /* Resumed from an idle callback: this runs inside sink and exec
   * teardown, where parsing more frames must not happen. */
  if (delta < 0 && self->read_paused && self->sink_bytes < SINK_LOW && !self->closed
      && self->resume_source == NULL) {
    self->resume_source = g_idle_source_new ();
    g_source_set_callback (self->resume_source, resume_reading_cb, g_object_ref (self),
                           g_object_unref);
    g_source_attach (self->resume_source, g_main_context_get_thread_default ());
  }
}

static gboolean
resume_reading_cb (gpointer user_data)
{
  BangerAgentClient *self = user_data;
  g_clear_pointer (&self->resume_source, g_source_unref);
  if (self->closed || self->sink_bytes >= SINK_LOW)
    return G_SOURCE_REMOVE;
  self->read_paused = FALSE;
  g_debug ("resuming reads from the agent (%" G_GSIZE_FORMAT " bytes queued)", self->sink_bytes);
  process_input (self);
  start_read (self);
  return G_SOURCE_REMOVE;
}

void
banger_agent_client_feed (BangerAgentClient *self, const guint8 *data, gsize len)
{
  g_byte_array_append (self->inbuf, data, (guint)len);
  process_input (self);
}

static void
start_read (BangerAgentClient *self)
{
  if (self->reading || self->closed)
    return;
  if (banger_agent_client_sinks_full (self)) {
    if (!self->read_paused)
      g_debug ("pausing reads from the agent: %" G_GSIZE_FORMAT " bytes wait for their readers",
               self->sink_bytes);
    self->read_paused = TRUE;
    return;
  }
  self->reading = TRUE;
  g_input_stream_read_async (self->in, self->readbuf, READ_SIZE, G_PRIORITY_DEFAULT, self->cancel,
                             read_cb, g_object_ref (self));
}

/* ---- shutdown --------------------------------------------------------------- */

static void
client_shutdown (BangerAgentClient *self, GError *error)
{
  g_autoptr (GError) err = error;
  g_autoptr (GList) values = NULL;
  GHashTableIter iter;
  gpointer value;

  if (self->closed)
    return;
  g_object_ref (self);
  self->closed = TRUE;
  g_debug ("closing the agent connection: %s", err->message);
  g_cancellable_cancel (self->cancel);
  /* Close the socket itself at once: the GIO streams still have a read
   * pending until the cancellation is dispatched, so g_io_stream_close()
   * would refuse. */
  if (G_IS_SOCKET_CONNECTION (self->stream))
    g_socket_close (g_socket_connection_get_socket (G_SOCKET_CONNECTION (self->stream)), NULL);
  hello_done (self, g_error_copy (err));

  /* Steal the table first: failing an exec may drop the last references. */
  GHashTable *pending = g_steal_pointer (&self->pending);
  self->pending = g_hash_table_new_full (NULL, NULL, NULL, (GDestroyNotify)pending_free);
  g_hash_table_iter_init (&iter, pending);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    ((Pending *)value)->ops->fail (value, err);
  g_hash_table_unref (pending);

  g_queue_clear_full (&self->outq, (GDestroyNotify)g_bytes_unref);
  self->queued_bytes = 0;
  if (self->resume_source != NULL) {
    g_source_destroy (self->resume_source);
    g_clear_pointer (&self->resume_source, g_source_unref);
  }
  while (!g_queue_is_empty (&self->drain_waiters)) {
    DrainWaiter *w = g_queue_pop_head (&self->drain_waiters);
    g_object_unref (w->owner);
    g_free (w);
  }
  g_signal_emit (self, signals[SIGNAL_CLOSED], 0, err);
  g_object_unref (self);
}

void
banger_agent_client_close (BangerAgentClient *self)
{
  g_return_if_fail (BANGER_IS_AGENT_CLIENT (self));
  client_shutdown (self, g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED,
                                              "the connection to the guest agent was closed"));
}

gboolean
banger_agent_client_is_connected (BangerAgentClient *self)
{
  return !self->closed && self->handshaken;
}

/* ---- object ---------------------------------------------------------------- */

static void
banger_agent_client_dispose (GObject *object)
{
  BangerAgentClient *self = BANGER_AGENT_CLIENT (object);
  if (!self->closed)
    banger_agent_client_close (self);
  G_OBJECT_CLASS (banger_agent_client_parent_class)->dispose (object);
}

static void
banger_agent_client_finalize (GObject *object)
{
  BangerAgentClient *self = BANGER_AGENT_CLIENT (object);
  if (self->stream != NULL && !G_IS_SOCKET_CONNECTION (self->stream))
    g_io_stream_close (self->stream, NULL, NULL);
  g_clear_object (&self->stream);
  g_clear_object (&self->cancel);
  g_byte_array_unref (self->inbuf);
  g_free (self->readbuf);
  g_clear_pointer (&self->pending, g_hash_table_unref);
  g_free (self->agent_version);
  g_free (self->boot_id);
  G_OBJECT_CLASS (banger_agent_client_parent_class)->finalize (object);
}

static void
banger_agent_client_class_init (BangerAgentClientClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  object_class->dispose = banger_agent_client_dispose;
  object_class->finalize = banger_agent_client_finalize;

  /* ::closed: the connection ended (the GError says why); a new connection
   * and a new client are needed. */
  signals[SIGNAL_CLOSED] = g_signal_new ("closed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                                         NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_ERROR);
}

static void
banger_agent_client_init (BangerAgentClient *self)
{
  self->cancel = g_cancellable_new ();
  self->inbuf = g_byte_array_new ();
  self->rescan_budget = RESCAN_BUDGET_START;
  self->readbuf = g_malloc (READ_SIZE);
  g_queue_init (&self->outq);
  g_queue_init (&self->drain_waiters);
  self->pending = g_hash_table_new_full (NULL, NULL, NULL, (GDestroyNotify)pending_free);
}

BangerAgentClient *
banger_agent_client_new (GIOStream *stream)
{
  g_return_val_if_fail (G_IS_IO_STREAM (stream), NULL);
  BangerAgentClient *self = g_object_new (BANGER_TYPE_AGENT_CLIENT, NULL);
  self->stream = g_object_ref (stream);
  self->in = g_io_stream_get_input_stream (stream);
  self->out = g_io_stream_get_output_stream (stream);
  return self;
}

/* ---- handshake --------------------------------------------------------------- */

static gboolean
hello_timeout_cb (gpointer user_data)
{
  BangerAgentClient *self = user_data;
  g_clear_pointer (&self->hello_timeout, g_source_unref);
  if (self->hello_resend != NULL) {
    g_source_destroy (self->hello_resend);
    g_clear_pointer (&self->hello_resend, g_source_unref);
  }
  /* Without a handshake the stream is of no use: close it. */
  client_shutdown (self, g_error_new_literal (G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                                              "the guest agent did not answer the handshake"));
  return G_SOURCE_REMOVE;
}

/* The caller gave up (bangerd saw the guest's boot stall, or the VM was
 * killed): end the handshake now rather than at its timeout. */
static gboolean
hello_cancelled_cb (GCancellable *cancellable, gpointer user_data)
{
  BangerAgentClient *self = user_data;

  g_clear_pointer (&self->hello_cancel, g_source_unref);
  client_shutdown (
      self, g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CANCELLED, "the handshake was cancelled"));
  return G_SOURCE_REMOVE;
}

static void
send_hello (BangerAgentClient *self)
{
  BngrBuf p;

  bngr_buf_init (&p);
  bngr_put_u32 (&p, BNGR_F_PROTO_VERSION, BNGR_PROTOCOL_VERSION);
  bngr_put_str (&p, BNGR_F_AGENT_VERSION, PACKAGE_VERSION);
  bngr_put_u64 (&p, BNGR_F_NONCE, self->nonce);
  banger_agent_client_send (self, BNGR_T_HELLO, 0, 0, p.data, p.len);
  bngr_buf_clear (&p);
}

static gboolean hello_resend_cb (gpointer user_data);

static void
hello_resend_schedule (BangerAgentClient *self)
{
  if (self->hello_resend != NULL) {
    g_source_destroy (self->hello_resend);
    g_source_unref (self->hello_resend);
  }
  self->hello_resend = g_timeout_source_new (self->hello_resend_ms);
  g_source_set_callback (self->hello_resend, hello_resend_cb, self, NULL);
  g_source_attach (self->hello_resend, g_main_context_get_thread_default ());
}

static gboolean
hello_resend_cb (gpointer user_data)
{
  BangerAgentClient *self = user_data;

  if (self->closed || self->handshaken)
    return G_SOURCE_CONTINUE; /* hello_done removes this source */
  g_debug ("no HELLO answer yet: sending it again");
  send_hello (self);
  self->hello_resend_ms = MIN (self->hello_resend_ms * 2, HELLO_RESEND_MS);
  /* Replaces (and destroys) this source: the callback's return is moot. */
  hello_resend_schedule (self);
  return G_SOURCE_REMOVE;
}

void
banger_agent_client_handshake_async (BangerAgentClient *self, guint timeout_ms,
                                     GCancellable *cancellable, GAsyncReadyCallback callback,
                                     gpointer user_data)
{
  g_autoptr (GTask) task = g_task_new (self, cancellable, callback, user_data);

  g_task_set_source_tag (task, banger_agent_client_handshake_async);
  if (self->closed || self->hello_task != NULL || self->handshaken) {
    g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_FAILED,
                             "a handshake on this connection is done or running");
    return;
  }
  self->hello_task = g_steal_pointer (&task);
  self->nonce = ((guint64)g_random_int () << 32) | g_random_int ();
  self->hello_timeout = g_timeout_source_new (timeout_ms ? timeout_ms : DEFAULT_TIMEOUT_MS);
  g_source_set_callback (self->hello_timeout, hello_timeout_cb, self, NULL);
  g_source_attach (self->hello_timeout, g_main_context_get_thread_default ());

  send_hello (self);
  /* The same HELLO again every few seconds until answered: a guest that
   * opened its port late, or a host write that raced the guest's open, must
   * not cost the whole timeout. The agent handles frames in order, so a
   * repeated HELLO always precedes our first request. */
  self->hello_resend_ms = HELLO_RESEND_FIRST_MS;
  hello_resend_schedule (self);
  if (cancellable != NULL) {
    self->hello_cancel = g_cancellable_source_new (cancellable);
    g_source_set_callback (self->hello_cancel, G_SOURCE_FUNC (hello_cancelled_cb), self, NULL);
    g_source_attach (self->hello_cancel, g_main_context_get_thread_default ());
  }
  start_read (self);
}

gboolean
banger_agent_client_handshake_finish (BangerAgentClient *self, GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}

guint
banger_agent_client_get_protocol_version (BangerAgentClient *self)
{
  return self->protocol_version;
}

const char *
banger_agent_client_get_agent_version (BangerAgentClient *self)
{
  return self->agent_version;
}

gboolean
banger_agent_client_get_has_identity (BangerAgentClient *self)
{
  return self->has_identity;
}

guint64
banger_agent_client_get_discarded_bytes (BangerAgentClient *self)
{
  return self->discarded;
}

const char *
banger_agent_client_get_boot_id (BangerAgentClient *self)
{
  return self->boot_id;
}

static void
connect_handshake_cb (GObject *source, GAsyncResult *res, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  g_autoptr (GError) error = NULL;
  BangerAgentClient *client = BANGER_AGENT_CLIENT (source);
  if (!banger_agent_client_handshake_finish (client, res, &error)) {
    g_task_return_error (task, g_steal_pointer (&error));
    return;
  }
  g_task_return_pointer (task, g_object_ref (client), g_object_unref);
}

static void
connect_cb (GObject *source, GAsyncResult *res, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  g_autoptr (GError) error = NULL;
  g_autoptr (GSocketConnection) conn
      = g_socket_client_connect_finish (G_SOCKET_CLIENT (source), res, &error);
  if (conn == NULL) {
    g_task_return_error (task, g_steal_pointer (&error));
    return;
  }
  g_autoptr (BangerAgentClient) client = banger_agent_client_new (G_IO_STREAM (conn));
  guint timeout = GPOINTER_TO_UINT (g_task_get_task_data (task));
  GCancellable *cancellable = g_task_get_cancellable (task);
  banger_agent_client_handshake_async (client, timeout, cancellable, connect_handshake_cb,
                                       g_steal_pointer (&task));
}

void
banger_agent_client_connect_unix_async (const char *path, guint timeout_ms,
                                        GCancellable *cancellable, GAsyncReadyCallback callback,
                                        gpointer user_data)
{
  g_autoptr (GTask) task = g_task_new (NULL, cancellable, callback, user_data);
  g_autoptr (GSocketClient) sc = g_socket_client_new ();
  g_autoptr (GSocketAddress) addr = g_unix_socket_address_new (path);
  g_task_set_source_tag (task, banger_agent_client_connect_unix_async);
  g_task_set_task_data (task, GUINT_TO_POINTER (timeout_ms), NULL);
  g_socket_client_connect_async (sc, G_SOCKET_CONNECTABLE (addr), cancellable, connect_cb,
                                 g_steal_pointer (&task));
}

BangerAgentClient *
banger_agent_client_connect_unix_finish (GAsyncResult *result, GError **error)
{
  return g_task_propagate_pointer (G_TASK (result), error);
}

/* ---- simple requests ------------------------------------------------------------ */

static void
simple_request (BangerAgentClient *self, guint8 type, const BngrBuf *payload, gpointer source_tag,
                GCancellable *cancellable, GAsyncReadyCallback callback, gpointer user_data)
{
  g_autoptr (GTask) task = g_task_new (self, cancellable, callback, user_data);
  GError *error = NULL;

  g_task_set_source_tag (task, source_tag);
  if (!banger_agent_client_check_ready (self, &error)) {
    g_task_return_error (task, error);
    return;
  }
  guint32 id = banger_agent_client_register (self, type, &simple_ops, task);
  banger_agent_client_send (self, type, 0, id, payload ? payload->data : NULL,
                            payload ? payload->len : 0);
}

void
banger_agent_client_get_stats_async (BangerAgentClient *self, GCancellable *cancellable,
                                     GAsyncReadyCallback callback, gpointer user_data)
{
  simple_request (self, BNGR_T_STATS, NULL, banger_agent_client_get_stats_async, cancellable,
                  callback, user_data);
}

GVariant *
banger_agent_client_get_stats_finish (BangerAgentClient *self, GAsyncResult *result, GError **error)
{
  return g_task_propagate_pointer (G_TASK (result), error);
}

void
banger_agent_client_list_ports_async (BangerAgentClient *self, GCancellable *cancellable,
                                      GAsyncReadyCallback callback, gpointer user_data)
{
  simple_request (self, BNGR_T_PORTS, NULL, banger_agent_client_list_ports_async, cancellable,
                  callback, user_data);
}

GVariant *
banger_agent_client_list_ports_finish (BangerAgentClient *self, GAsyncResult *result,
                                       GError **error)
{
  return g_task_propagate_pointer (G_TASK (result), error);
}

void
banger_agent_client_get_boot_id_async (BangerAgentClient *self, GCancellable *cancellable,
                                       GAsyncReadyCallback callback, gpointer user_data)
{
  simple_request (self, BNGR_T_BOOT_ID, NULL, banger_agent_client_get_boot_id_async, cancellable,
                  callback, user_data);
}

char *
banger_agent_client_get_boot_id_finish (BangerAgentClient *self, GAsyncResult *result,
                                        GError **error)
{
  return g_task_propagate_pointer (G_TASK (result), error);
}

void
banger_agent_client_ping_async (BangerAgentClient *self, GCancellable *cancellable,
                                GAsyncReadyCallback callback, gpointer user_data)
{
  simple_request (self, BNGR_T_PING, NULL, banger_agent_client_ping_async, cancellable, callback,
                  user_data);
}

gboolean
banger_agent_client_ping_finish (BangerAgentClient *self, GAsyncResult *result, GError **error)
{
  return g_task_propagate_boolean (G_TASK (result), error);
}

void
banger_agent_client_setup_async (BangerAgentClient *self, const char *authorized_keys,
                                 const char *host_key, const char *host_key_pub,
                                 GCancellable *cancellable, GAsyncReadyCallback callback,
                                 gpointer user_data)
{
  banger_agent_client_setup_identity_async (self, authorized_keys, host_key, host_key_pub, NULL,
                                            cancellable, callback, user_data);
}

static void
put_opt_str (BngrBuf *p, guint16 tag, const char *value)
{
  if (value != NULL && *value)
    bngr_put_str (p, tag, value);
}

void
banger_agent_client_setup_identity_async (BangerAgentClient *self, const char *authorized_keys,
                                          const char *host_key, const char *host_key_pub,
                                          const BangerAgentIdentity *identity,
                                          GCancellable *cancellable, GAsyncReadyCallback callback,
                                          gpointer user_data)
{
  BngrBuf p;
  bngr_buf_init (&p);
  if (authorized_keys != NULL)
    bngr_put_str (&p, BNGR_F_AUTHORIZED_KEYS, authorized_keys);
  if (host_key != NULL)
    bngr_put_str (&p, BNGR_F_HOST_KEY, host_key);
  if (host_key_pub != NULL)
    bngr_put_str (&p, BNGR_F_HOST_KEY_PUB, host_key_pub);
  if (identity != NULL) {
    put_opt_str (&p, BNGR_F_MAC, identity->mac);
    put_opt_str (&p, BNGR_F_IP, identity->ip_cidr);
    put_opt_str (&p, BNGR_F_GW, identity->gw);
    put_opt_str (&p, BNGR_F_DNS, identity->dns);
    put_opt_str (&p, BNGR_F_HOSTNAME, identity->hostname);
    put_opt_str (&p, BNGR_F_MACHINE_ID, identity->machine_id);
    if (identity->entropy != NULL && g_bytes_get_size (identity->entropy) > 0)
      bngr_put_bytes (&p, BNGR_F_ENTROPY, g_bytes_get_data (identity->entropy, NULL),
                      g_bytes_get_size (identity->entropy));
    if (identity->clock_ns != 0)
      bngr_put_u64 (&p, BNGR_F_CLOCK_NS, identity->clock_ns);
  }
  simple_request (self, BNGR_T_SETUP, &p, banger_agent_client_setup_async, cancellable, callback,
                  user_data);
  /* The entropy is the clone's RNG seed: not left in freed memory. */
  if (p.data != NULL)
    memset (p.data, 0, p.alloc);
  bngr_buf_clear (&p);
}

gboolean
banger_agent_task_propagate_int (GAsyncResult *result, gssize *value, GError **error)
{
  GError *local = NULL;
  gssize r = g_task_propagate_int (G_TASK (result), &local);

  if (local != NULL) {
    g_propagate_error (error, local);
    return FALSE;
  }
  if (value != NULL)
    *value = r;
  return TRUE;
}

gboolean
banger_agent_client_setup_finish (BangerAgentClient *self, GAsyncResult *result, gboolean *has_sshd,
                                  GError **error)
{
  gssize r;

  if (!banger_agent_task_propagate_int (result, &r, error))
    return FALSE;
  if (has_sshd != NULL)
    *has_sshd = (r & SETUP_SSHD) != 0;
  return TRUE;
}

gboolean
banger_agent_client_setup_identity_finish (BangerAgentClient *self, GAsyncResult *result,
                                           gboolean *has_sshd, gboolean *identity_applied,
                                           GError **error)
{
  gssize r;

  if (!banger_agent_task_propagate_int (result, &r, error))
    return FALSE;
  if (has_sshd != NULL)
    *has_sshd = (r & SETUP_SSHD) != 0;
  if (identity_applied != NULL)
    *identity_applied = (r & SETUP_IDENTITY) != 0;
  return TRUE;
}

void
banger_agent_client_poweroff_async (BangerAgentClient *self, GCancellable *cancellable,
                                    GAsyncReadyCallback callback, gpointer user_data)
{
  simple_request (self, BNGR_T_POWEROFF, NULL, banger_agent_client_poweroff_async, cancellable,
                  callback, user_data);
}

gboolean
banger_agent_client_poweroff_finish (BangerAgentClient *self, GAsyncResult *result, GError **error)
{
  return g_task_propagate_boolean (G_TASK (result), error);
}
