/* Internals shared by the files of the host-side agent client. */
#pragma once

#include "agent-client.h"
#include "protocol.h"

G_BEGIN_DECLS

/* Pause producers (stdin, file uploads) while this much is queued for the
 * agent, resume them below the low mark. */
#define CLIENT_QUEUE_HIGH (1024 * 1024)
#define CLIENT_QUEUE_LOW  (256 * 1024)

/* An ordered asynchronous writer of GBytes into a GOutputStream (the
 * caller's stdout/stderr, or a download's destination). */
/* Stop reading from the agent while this much output waits in a client's
 * sinks for slow readers, resume below the low mark (see
 * banger_agent_client_sink_account). */
#define SINK_HIGH (4 * 1024 * 1024)
#define SINK_LOW  (1024 * 1024)

typedef struct {
  BangerAgentClient *client; /* not owned: the exec or download holds a reference */
  GOutputStream *stream;     /* NULL: discard */
  GQueue queue;              /* GBytes */
  gsize queued;              /* bytes in queue */
  gboolean writing;
  GError *error;         /* the first write error; later data is dropped */
  gboolean close_stream; /* the stream is ours (a caller's fd): close it when done, and
                          * write from a worker thread (see sink_write_thread) */
  gboolean in_thread;
  GObject *owner; /* kept alive while a write runs */
  void (*on_idle) (GObject *owner);
} BangerSink;

void banger_sink_init (BangerSink *sink, BangerAgentClient *client, GOutputStream *stream,
                       gboolean close_stream, GObject *owner, void (*on_idle) (GObject *owner));
void banger_sink_push (BangerSink *sink, const guint8 *data, gsize len);
gboolean banger_sink_idle (BangerSink *sink);
void banger_sink_clear (BangerSink *sink);

/* Something waiting for frames on one stream id: a simple request
 * (agent-client.c), an exec (agent-exec.c), a file upload or download
 * (agent-client-files.c). Each registers itself with its own operations, so
 * the client routes frames and failures without knowing the kinds. */
typedef struct _Pending Pending;

typedef struct {
  /* A frame on the stream. The owner unregisters the stream once it is
   * done (which frees @pending: read what is needed from it first). */
  void (*handle_frame) (Pending *pending, const BngrHeader *hdr, const guint8 *payload);
  /* The connection is gone: finish with @error. The client's table is
   * being torn down by the caller: do not unregister. */
  void (*fail) (Pending *pending, const GError *error);
} PendingOps;

struct _Pending {
  const PendingOps *ops;
  guint32 id;
  guint8 type;    /* the request's frame type */
  GObject *owner; /* the request's GTask or BangerAgentExec, referenced while registered */
};

/* Registers @owner for the frames of a new stream, whose id it returns. */
guint32 banger_agent_client_register (BangerAgentClient *self, guint8 type, const PendingOps *ops,
                                      gpointer owner);
void banger_agent_client_unregister (BangerAgentClient *self, guint32 id);
void banger_agent_client_send (BangerAgentClient *self, guint8 type, guint16 flags, guint32 stream,
                               const guint8 *payload, gsize len);
/* Calls @resume (owner) once the queue to the agent is below the low mark. */
void banger_agent_client_when_drained (BangerAgentClient *self, GObject *owner,
                                       void (*resume) (GObject *owner));
gboolean banger_agent_client_check_ready (BangerAgentClient *self, GError **error);
gboolean banger_agent_client_queue_full (BangerAgentClient *self);
gboolean banger_agent_client_sinks_full (BangerAgentClient *self);
/* A sink grew (delta > 0) or shrank; resumes reading below SINK_LOW. */
void banger_agent_client_sink_account (BangerAgentClient *self, gssize delta);
/* For the fuzz target: feed bytes as if read from the connection. */
void banger_agent_client_feed (BangerAgentClient *self, const guint8 *data, gsize len);
/* A request's task ends with an int (a mode, a flag, an exit status) that
 * may itself be -1, so g_task_propagate_int()'s -1 alone does not say it
 * failed: this returns FALSE with @error when it did, and otherwise stores
 * the int in @value (when not NULL). */
gboolean banger_agent_task_propagate_int (GAsyncResult *result, gssize *value, GError **error);
GError *banger_agent_client_error_from_frame (const guint8 *payload, gsize len);

/* agent-exec.c */
BangerAgentExec *banger_agent_exec_new (BangerAgentClient *client);

G_END_DECLS
