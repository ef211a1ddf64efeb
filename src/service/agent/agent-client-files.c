/* FILE_PUT and FILE_GET on the host side: a GInputStream streamed to the
 * guest in DATA frames, and DATA frames written into a GOutputStream. */
#include "agent-client-private.h"

#include "banger-error.h"

typedef struct {
  BangerAgentClient *client;
  guint32 id;
  gboolean finished;
  /* put */
  GInputStream *source;
  guint8 *buf;
  /* get */
  BangerSink sink;
  guint mode;
  gboolean got_eof;
} FileOp;

#define CHUNK BNGR_DATA_CHUNK

static void
file_op_free (FileOp *op)
{
  banger_sink_clear (&op->sink);
  g_clear_object (&op->sink.stream);
  g_clear_object (&op->source);
  g_free (op->buf);
  g_clear_object (&op->client);
  g_free (op);
}

static void
finish (GTask *task, GError *error)
{
  FileOp *op = g_task_get_task_data (task);
  if (op->finished) {
    g_clear_error (&error);
    return;
  }
  op->finished = TRUE;
  if (error != NULL)
    g_task_return_error (task, error);
  else
    g_task_return_int (task, op->mode);
}

/* The connection is gone (either direction's PendingOps.fail). */
static void
files_fail (Pending *pending, const GError *error)
{
  finish (G_TASK (pending->owner), g_error_copy (error));
}

/* An upload's and a download's side of the client's stream table
 * (agent-client-private.h). */
static void put_frame (Pending *pending, const BngrHeader *hdr, const guint8 *payload);
static void get_frame (Pending *pending, const BngrHeader *hdr, const guint8 *payload);

static const PendingOps put_ops = {
  .handle_frame = put_frame,
  .fail = files_fail,
};

static const PendingOps get_ops = {
  .handle_frame = get_frame,
  .fail = files_fail,
};

static GTask *
start_op (BangerAgentClient *self, guint8 type, const PendingOps *ops, gpointer tag,
          GCancellable *cancellable, GAsyncReadyCallback callback, gpointer user_data)
{
  g_autoptr (GTask) task = g_task_new (self, cancellable, callback, user_data);
  GError *error = NULL;
  FileOp *op = g_new0 (FileOp, 1);

  g_task_set_source_tag (task, tag);
  g_task_set_task_data (task, op, (GDestroyNotify)file_op_free);
  if (!banger_agent_client_check_ready (self, &error)) {
    op->finished = TRUE;
    g_task_return_error (task, error);
    return NULL;
  }
  op->client = g_object_ref (self);
  op->id = banger_agent_client_register (self, type, ops, task);
  return g_steal_pointer (&task);
}

/* ---- put ---------------------------------------------------------------- */

static void read_source (GTask *task);

static void
resume_cb (GObject *owner)
{
  read_source (G_TASK (owner));
}

static void
source_read_cb (GObject *source, GAsyncResult *res, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  FileOp *op = g_task_get_task_data (task);
  g_autoptr (GError) error = NULL;
  gssize n = g_input_stream_read_finish (G_INPUT_STREAM (source), res, &error);

  if (op->finished)
    return;
  if (n < 0) {
    /* An ERROR frame from the host abandons the upload: the agent removes
     * its temporary file and the target stays as it was. */
    BngrBuf p;
    bngr_buf_init (&p);
    bngr_put_u32 (&p, BNGR_F_ERR_CODE, BNGR_ERR_FAILED);
    bngr_put_str (&p, BNGR_F_ERR_MESSAGE, "host aborted the upload");
    banger_agent_client_send (op->client, BNGR_T_ERROR, 0, op->id, p.data, p.len);
    bngr_buf_clear (&p);
    banger_agent_client_unregister (op->client, op->id);
    finish (task, g_error_new (G_IO_ERROR, error->code, "reading the file to upload: %s",
                               error->message));
    return;
  }
  if (n == 0) {
    banger_agent_client_send (op->client, BNGR_T_DATA, BNGR_CHAN_STDIN | BNGR_FLAG_EOF, op->id,
                              NULL, 0);
    return; /* the agent's OK or ERROR finishes it */
  }
  banger_agent_client_send (op->client, BNGR_T_DATA, BNGR_CHAN_STDIN, op->id, op->buf, (gsize)n);
  if (banger_agent_client_queue_full (op->client))
    banger_agent_client_when_drained (op->client, G_OBJECT (task), resume_cb);
  else
    read_source (task);
}

static void
read_source (GTask *task)
{
  FileOp *op = g_task_get_task_data (task);
  if (op->finished)
    return;
  g_input_stream_read_async (op->source, op->buf, CHUNK, G_PRIORITY_DEFAULT, NULL, source_read_cb,
                             g_object_ref (task));
}

void
banger_agent_client_put_file_async (BangerAgentClient *self, const char *path, guint mode,
                                    GInputStream *source, GCancellable *cancellable,
                                    GAsyncReadyCallback callback, gpointer user_data)
{
  g_autoptr (GTask) task = start_op (self, BNGR_T_FILE_PUT, &put_ops,
                                     banger_agent_client_put_file_async, cancellable, callback,
                                     user_data);
  BngrBuf p;
  if (task == NULL)
    return;
  FileOp *op = g_task_get_task_data (task);
  op->source = g_object_ref (source);
  op->buf = g_malloc (CHUNK);
  bngr_buf_init (&p);
  bngr_put_str (&p, BNGR_F_PATH, path);
  bngr_put_u32 (&p, BNGR_F_MODE, mode & 07777);
  banger_agent_client_send (self, BNGR_T_FILE_PUT, 0, op->id, p.data, p.len);
  bngr_buf_clear (&p);
  read_source (task);
}

gboolean
banger_agent_client_put_file_finish (BangerAgentClient *self, GAsyncResult *result, GError **error)
{
  return banger_agent_task_propagate_int (result, NULL, error);
}

static void
put_frame (Pending *pending, const BngrHeader *hdr, const guint8 *payload)
{
  GTask *task = G_TASK (pending->owner);
  g_autoptr (GTask) keep = g_object_ref (task);
  FileOp *op = g_task_get_task_data (task);
  if (hdr->type != BNGR_T_OK && hdr->type != BNGR_T_ERROR)
    return;
  banger_agent_client_unregister (op->client, op->id);
  if (hdr->type == BNGR_T_OK)
    finish (keep, NULL);
  else
    finish (keep, banger_agent_client_error_from_frame (payload, hdr->length));
}

/* ---- get ---------------------------------------------------------------- */

static void
get_check_done (GObject *owner)
{
  GTask *task = G_TASK (owner);
  FileOp *op = g_task_get_task_data (task);
  if (!op->got_eof || !banger_sink_idle (&op->sink))
    return;
  if (op->sink.error != NULL)
    finish (task, g_error_new (G_IO_ERROR, op->sink.error->code, "writing the downloaded file: %s",
                               op->sink.error->message));
  else
    finish (task, NULL);
}

void
banger_agent_client_get_file_async (BangerAgentClient *self, const char *path, GOutputStream *dest,
                                    GCancellable *cancellable, GAsyncReadyCallback callback,
                                    gpointer user_data)
{
  g_autoptr (GTask) task = start_op (self, BNGR_T_FILE_GET, &get_ops,
                                     banger_agent_client_get_file_async, cancellable, callback,
                                     user_data);
  BngrBuf p;
  if (task == NULL)
    return;
  FileOp *op = g_task_get_task_data (task);
  /* The task's data holds the sink; the sink refers to the task only while
   * a write runs, so there is no cycle. */
  banger_sink_init (&op->sink, op->client, g_object_ref (dest), FALSE, G_OBJECT (task), get_check_done);
  bngr_buf_init (&p);
  bngr_put_str (&p, BNGR_F_PATH, path);
  banger_agent_client_send (self, BNGR_T_FILE_GET, 0, op->id, p.data, p.len);
  bngr_buf_clear (&p);
}

gboolean
banger_agent_client_get_file_finish (BangerAgentClient *self, GAsyncResult *result, guint *mode,
                                     GError **error)
{
  gssize r;

  if (!banger_agent_task_propagate_int (result, &r, error))
    return FALSE;
  if (mode != NULL)
    *mode = (guint)r;
  return TRUE;
}

static void
get_frame (Pending *pending, const BngrHeader *hdr, const guint8 *payload)
{
  GTask *task = G_TASK (pending->owner);
  g_autoptr (GTask) keep = g_object_ref (task);
  FileOp *op = g_task_get_task_data (task);
  guint32 mode;

  switch (hdr->type) {
  case BNGR_T_OK:
    if (bngr_find_u32 (payload, hdr->length, BNGR_F_MODE, &mode))
      op->mode = mode & 07777;
    break;
  case BNGR_T_DATA:
    banger_sink_push (&op->sink, payload, hdr->length);
    if (hdr->flags & BNGR_FLAG_EOF) {
      op->got_eof = TRUE;
      banger_agent_client_unregister (op->client, op->id);
      get_check_done (G_OBJECT (keep));
    }
    break;
  case BNGR_T_ERROR:
    banger_agent_client_unregister (op->client, op->id);
    finish (keep, banger_agent_client_error_from_frame (payload, hdr->length));
    break;
  default:
    break;
  }
}
