/* One command running in the guest: relays the caller's stdin to DATA
 * frames and DATA frames to the caller's stdout/stderr, and reports the
 * exit status once the output is flushed. */
#include "agent-client-private.h"

#include "banger-error.h"

#include <gio/gunixinputstream.h>
#include <gio/gunixoutputstream.h>
#include <unistd.h>

struct _BangerAgentExec {
  GObject parent_instance;

  BangerAgentClient *client;
  guint32 id;
  gboolean tty;
  guint pid;

  GInputStream *stdin_stream; /* NULL: no input */
  GCancellable *stdin_cancel;
  guint8 *stdin_buf;
  gboolean stdin_done;

  BangerSink sinks[3]; /* [1] stdout, [2] stderr */

  gboolean ended; /* EXIT or ERROR arrived, or the connection was lost */
  int status;
  GError *error;
  gboolean done; /* ended and output flushed */
  GTask *wait_task;
};

G_DEFINE_TYPE (BangerAgentExec, banger_agent_exec, G_TYPE_OBJECT)

#define STDIN_CHUNK (64 * 1024)

static void
exec_check_done (BangerAgentExec *self)
{
  if (self->done || !self->ended)
    return;
  if (!banger_sink_idle (&self->sinks[1]) || !banger_sink_idle (&self->sinks[2]))
    return;
  self->done = TRUE;
  /* Close our copies so a reader of the caller's pipe can see EOF. */
  banger_sink_clear (&self->sinks[1]);
  banger_sink_clear (&self->sinks[2]);
  if (self->wait_task != NULL) {
    g_autoptr (GTask) task = g_steal_pointer (&self->wait_task);
    if (self->error != NULL)
      g_task_return_error (task, g_error_copy (self->error));
    else
      g_task_return_int (task, self->status);
  }
}

static void
sink_idle_cb (GObject *owner)
{
  exec_check_done (BANGER_AGENT_EXEC (owner));
}

static void
exec_end (BangerAgentExec *self)
{
  self->ended = TRUE;
  g_cancellable_cancel (self->stdin_cancel);
  /* Drops the client's reference to us, and with it the reference cycle. */
  if (self->id != 0)
    banger_agent_client_unregister (self->client, self->id);
  exec_check_done (self);
}

static void
exec_fail (BangerAgentExec *self, const GError *error)
{
  g_autoptr (BangerAgentExec) keep = g_object_ref (self);
  if (self->ended)
    return;
  if (self->error == NULL)
    self->error = g_error_copy (error);
  /* The client's table is being torn down by the caller: do not touch it. */
  self->id = 0;
  exec_end (self);
}

static void
exec_handle_frame (BangerAgentExec *self, const BngrHeader *hdr, const guint8 *payload)
{
  g_autoptr (BangerAgentExec) keep = g_object_ref (self);
  guint32 code = 0, sig = 0, pid = 0;

  switch (hdr->type) {
  case BNGR_T_EXEC_STARTED:
    if (bngr_find_u32 (payload, hdr->length, BNGR_F_PID, &pid))
      self->pid = pid;
    break;
  case BNGR_T_DATA: {
    guint ch = hdr->flags & BNGR_CHAN_MASK;
    if (ch == BNGR_CHAN_STDOUT || ch == BNGR_CHAN_STDERR)
      banger_sink_push (&self->sinks[ch], payload, hdr->length);
    break;
  }
  case BNGR_T_EXIT:
    bngr_find_u32 (payload, hdr->length, BNGR_F_EXIT_CODE, &code);
    bngr_find_u32 (payload, hdr->length, BNGR_F_EXIT_SIGNAL, &sig);
    /* The shell convention, which is what a user of `vm exec` expects. */
    self->status = sig != 0 ? 128 + (int)sig : (int)(code & 0xff);
    exec_end (self);
    break;
  case BNGR_T_ERROR:
    if (self->pid != 0) {
      /* A SIGNAL or RESIZE that came too late: not fatal to the exec. */
      g_autoptr (GError) error = banger_agent_client_error_from_frame (payload, hdr->length);
      g_debug ("exec %u: %s", self->id, error->message);
      break;
    }
    self->error = banger_agent_client_error_from_frame (payload, hdr->length);
    exec_end (self);
    break;
  default:
    g_debug ("exec %u: unexpected %s frame", self->id, bngr_type_name (hdr->type));
    break;
  }
}

/* The exec's side of the client's stream table (agent-client-private.h). */
static void
exec_pending_frame (Pending *pending, const BngrHeader *hdr, const guint8 *payload)
{
  exec_handle_frame (BANGER_AGENT_EXEC (pending->owner), hdr, payload);
}

static void
exec_pending_fail (Pending *pending, const GError *error)
{
  exec_fail (BANGER_AGENT_EXEC (pending->owner), error);
}

static const PendingOps exec_pending_ops = {
  .handle_frame = exec_pending_frame,
  .fail = exec_pending_fail,
};

/* ---- stdin ----------------------------------------------------------------- */

static void read_stdin (BangerAgentExec *self);

static void
resume_stdin_cb (GObject *owner)
{
  read_stdin (BANGER_AGENT_EXEC (owner));
}

static void
stdin_read_cb (GObject *source, GAsyncResult *res, gpointer user_data)
{
  g_autoptr (BangerAgentExec) self = user_data;
  g_autoptr (GError) error = NULL;
  gssize n = g_input_stream_read_finish (G_INPUT_STREAM (source), res, &error);

  if (self->ended)
    return;
  if (n <= 0) {
    if (n < 0)
      g_debug ("exec %u: reading stdin: %s", self->id, error->message);
    self->stdin_done = TRUE;
    banger_agent_client_send (self->client, BNGR_T_DATA, BNGR_CHAN_STDIN | BNGR_FLAG_EOF, self->id,
                              NULL, 0);
    return;
  }
  banger_agent_client_send (self->client, BNGR_T_DATA, BNGR_CHAN_STDIN, self->id, self->stdin_buf,
                            (gsize)n);
  if (banger_agent_client_queue_full (self->client))
    banger_agent_client_when_drained (self->client, G_OBJECT (self), resume_stdin_cb);
  else
    read_stdin (self);
}

static void
read_stdin (BangerAgentExec *self)
{
  if (self->ended || self->stdin_done)
    return;
  g_input_stream_read_async (self->stdin_stream, self->stdin_buf, STDIN_CHUNK, G_PRIORITY_DEFAULT,
                             self->stdin_cancel, stdin_read_cb, g_object_ref (self));
}

/* ---- public ------------------------------------------------------------------- */

static GOutputStream *
output_for_fd (int fd, GError **error)
{
  if (fd < 0)
    return NULL;
  int dup_fd = dup (fd);
  if (dup_fd < 0) {
    g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errno), "duplicating fd %d: %s", fd,
                 g_strerror (errno));
    return NULL;
  }
  return g_unix_output_stream_new (dup_fd, TRUE);
}

static gboolean
append_options (GVariant *options, BngrBuf *p, gboolean *tty, GError **error)
{
  static const struct {
    const char *key;
    const char *type;
  } known[] = { { "env", "as" }, { "cwd", "s" }, { "tty", "b" }, { "rows", "u" }, { "cols", "u" } };
  GVariant *v;

  *tty = FALSE;
  if (options == NULL)
    return TRUE;
  for (gsize i = 0; i < G_N_ELEMENTS (known); i++) {
    g_autoptr (GVariant) value = g_variant_lookup_value (options, known[i].key, NULL);
    if (value == NULL)
      continue;
    if (!g_variant_is_of_type (value, G_VARIANT_TYPE (known[i].type))) {
      g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
                   "exec option “%s” must have type %s, not %s", known[i].key, known[i].type,
                   g_variant_get_type_string (value));
      return FALSE;
    }
  }
  if ((v = g_variant_lookup_value (options, "env", G_VARIANT_TYPE_STRING_ARRAY)) != NULL) {
    g_autoptr (GVariant) env = v;
    g_autofree const char **strv = g_variant_get_strv (env, NULL);
    for (gsize i = 0; strv[i] != NULL; i++) {
      if (strchr (strv[i], '=') == NULL || strv[i][0] == '=') {
        g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
                     "exec env entry “%s” is not KEY=VALUE", strv[i]);
        return FALSE;
      }
      bngr_put_str (p, BNGR_F_ENV, strv[i]);
    }
  }
  const char *cwd;
  if (g_variant_lookup (options, "cwd", "&s", &cwd))
    bngr_put_str (p, BNGR_F_CWD, cwd);
  g_variant_lookup (options, "tty", "b", tty);
  bngr_put_u32 (p, BNGR_F_TTY, *tty);
  guint32 rows, cols;
  if (g_variant_lookup (options, "rows", "u", &rows) && rows > 0)
    bngr_put_u32 (p, BNGR_F_ROWS, rows);
  if (g_variant_lookup (options, "cols", "u", &cols) && cols > 0)
    bngr_put_u32 (p, BNGR_F_COLS, cols);
  return TRUE;
}

BangerAgentExec *
banger_agent_client_exec (BangerAgentClient *client, const char *const *argv, GVariant *options,
                          int stdin_fd, int stdout_fd, int stderr_fd, GError **error)
{
  g_autoptr (BangerAgentExec) self = NULL;
  g_autoptr (GOutputStream) out = NULL;
  g_autoptr (GOutputStream) err = NULL;
  BngrBuf p;
  gboolean tty;

  g_return_val_if_fail (BANGER_IS_AGENT_CLIENT (client), NULL);
  if (!banger_agent_client_check_ready (client, error))
    return NULL;
  if (argv == NULL || argv[0] == NULL) {
    g_set_error_literal (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
                         "exec needs a command (argv is empty)");
    return NULL;
  }
  bngr_buf_init (&p);
  for (gsize i = 0; argv[i] != NULL; i++)
    bngr_put_str (&p, BNGR_F_ARGV, argv[i]);
  if (!append_options (options, &p, &tty, error)
      || (stdout_fd >= 0 && (out = output_for_fd (stdout_fd, error)) == NULL)
      || (stderr_fd >= 0 && !tty && (err = output_for_fd (stderr_fd, error)) == NULL)) {
    bngr_buf_clear (&p);
    return NULL;
  }
  if (p.len > BNGR_MAX_PAYLOAD) {
    bngr_buf_clear (&p);
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
                 "exec arguments and environment exceed %u bytes", BNGR_MAX_PAYLOAD);
    return NULL;
  }
  if (stdin_fd >= 0) {
    int dup_fd = dup (stdin_fd);
    if (dup_fd < 0) {
      bngr_buf_clear (&p);
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errno), "duplicating fd %d: %s",
                   stdin_fd, g_strerror (errno));
      return NULL;
    }
    self = banger_agent_exec_new (client);
    self->stdin_stream = g_unix_input_stream_new (dup_fd, TRUE);
  } else {
    self = banger_agent_exec_new (client);
  }
  self->tty = tty;
  banger_sink_init (&self->sinks[1], self->client, g_steal_pointer (&out), TRUE, G_OBJECT (self),
                    sink_idle_cb);
  banger_sink_init (&self->sinks[2], self->client, g_steal_pointer (&err), TRUE, G_OBJECT (self),
                    sink_idle_cb);

  self->id = banger_agent_client_register (client, BNGR_T_EXEC, &exec_pending_ops, self);
  banger_agent_client_send (client, BNGR_T_EXEC, 0, self->id, p.data, p.len);
  bngr_buf_clear (&p);

  if (self->stdin_stream != NULL) {
    read_stdin (self);
  } else {
    self->stdin_done = TRUE;
    banger_agent_client_send (client, BNGR_T_DATA, BNGR_CHAN_STDIN | BNGR_FLAG_EOF, self->id, NULL,
                              0);
  }
  return g_steal_pointer (&self);
}

void
banger_agent_exec_wait_async (BangerAgentExec *self, GCancellable *cancellable,
                              GAsyncReadyCallback callback, gpointer user_data)
{
  g_autoptr (GTask) task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, banger_agent_exec_wait_async);
  if (self->wait_task != NULL) {
    g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_PENDING, "already waiting on this exec");
    return;
  }
  if (self->done) {
    if (self->error != NULL)
      g_task_return_error (task, g_error_copy (self->error));
    else
      g_task_return_int (task, self->status);
    return;
  }
  self->wait_task = g_steal_pointer (&task);
}

int
banger_agent_exec_wait_finish (BangerAgentExec *self, GAsyncResult *result, GError **error)
{
  gssize r;

  return banger_agent_task_propagate_int (result, &r, error) ? (int)r : -1;
}

static gboolean
exec_running (BangerAgentExec *self, GError **error)
{
  if (self->ended) {
    g_set_error_literal (error, BANGER_ERROR, BANGER_ERROR_BAD_STATE, "the command has ended");
    return FALSE;
  }
  return banger_agent_client_check_ready (self->client, error);
}

gboolean
banger_agent_exec_signal (BangerAgentExec *self, int signum, GError **error)
{
  BngrBuf p;
  if (signum <= 0 || signum >= 65) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT, "%d is not a signal number",
                 signum);
    return FALSE;
  }
  if (!exec_running (self, error))
    return FALSE;
  bngr_buf_init (&p);
  bngr_put_u32 (&p, BNGR_F_SIGNAL, (guint32)signum);
  banger_agent_client_send (self->client, BNGR_T_SIGNAL, 0, self->id, p.data, p.len);
  bngr_buf_clear (&p);
  return TRUE;
}

gboolean
banger_agent_exec_resize (BangerAgentExec *self, guint rows, guint cols, GError **error)
{
  BngrBuf p;
  if (rows == 0 || cols == 0 || rows > 0xffff || cols > 0xffff) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
                 "window size %ux%u is out of range", rows, cols);
    return FALSE;
  }
  if (!self->tty) {
    g_set_error_literal (error, BANGER_ERROR, BANGER_ERROR_BAD_STATE,
                         "the command was not started with a tty");
    return FALSE;
  }
  if (!exec_running (self, error))
    return FALSE;
  bngr_buf_init (&p);
  bngr_put_u32 (&p, BNGR_F_ROWS, rows);
  bngr_put_u32 (&p, BNGR_F_COLS, cols);
  banger_agent_client_send (self->client, BNGR_T_RESIZE, 0, self->id, p.data, p.len);
  bngr_buf_clear (&p);
  return TRUE;
}

guint
banger_agent_exec_get_pid (BangerAgentExec *self)
{
  return self->pid;
}

static void
banger_agent_exec_finalize (GObject *object)
{
  BangerAgentExec *self = BANGER_AGENT_EXEC (object);
  banger_sink_clear (&self->sinks[1]);
  banger_sink_clear (&self->sinks[2]);
  g_clear_object (&self->stdin_stream);
  g_clear_object (&self->stdin_cancel);
  g_free (self->stdin_buf);
  g_clear_error (&self->error);
  g_clear_object (&self->wait_task);
  g_clear_object (&self->client);
  G_OBJECT_CLASS (banger_agent_exec_parent_class)->finalize (object);
}

static void
banger_agent_exec_class_init (BangerAgentExecClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = banger_agent_exec_finalize;
}

static void
banger_agent_exec_init (BangerAgentExec *self)
{
  self->stdin_cancel = g_cancellable_new ();
  self->stdin_buf = g_malloc (STDIN_CHUNK);
}

BangerAgentExec *
banger_agent_exec_new (BangerAgentClient *client)
{
  BangerAgentExec *self = g_object_new (BANGER_TYPE_AGENT_EXEC, NULL);
  self->client = g_object_ref (client);
  return self;
}
