#include "engine-job.h"

#include "banger-error.h"

/* PackageKit and udisks clients redraw on every PropertiesChanged: more
 * than ten a second only costs bus traffic. */
#define JOB_UPDATE_INTERVAL_US (100 * G_TIME_SPAN_MILLISECOND)

struct _BangerEngineJob {
  GObject parent_instance;
  guint number;
  char *operation;
  char *target;
  guint uid;
  GMainContext *context; /* where signals are emitted */
  GCancellable *cancellable;

  /* Written by the worker, read by the flush on the main context. */
  GMutex lock;
  double pending_progress;
  guint64 pending_done, pending_total;
  char *pending_message;
  GSource *flush_source;
  gint64 last_flush_us;

  /* Main context only (the mutex guards the reads from waiting threads). */
  double progress;
  guint64 bytes_done, bytes_total;
  char *message;
  char *state;
  char *result_kind;
  char *result_name;
  GError *error;
  gboolean finished;
  GCond finished_cond;

  BangerEngineJobThreadFunc thread_func;
  BangerEngineJobFinishFunc finish_func;
  gpointer data;
  GDestroyNotify data_free;
  GDestroyNotify result_free;
};

G_DEFINE_TYPE (BangerEngineJob, banger_engine_job, G_TYPE_OBJECT)

enum { SIGNAL_CHANGED, SIGNAL_COMPLETED, SIGNAL_LAST };
static guint signals[SIGNAL_LAST];
static guint next_number = 1;

static void
banger_engine_job_finalize (GObject *object)
{
  BangerEngineJob *self = BANGER_ENGINE_JOB (object);

  if (self->flush_source != NULL) {
    g_source_destroy (self->flush_source);
    g_source_unref (self->flush_source);
  }
  if (self->data_free != NULL && self->data != NULL)
    self->data_free (self->data);
  g_free (self->operation);
  g_free (self->target);
  g_free (self->pending_message);
  g_free (self->message);
  g_free (self->state);
  g_free (self->result_kind);
  g_free (self->result_name);
  g_clear_error (&self->error);
  g_clear_object (&self->cancellable);
  g_main_context_unref (self->context);
  g_mutex_clear (&self->lock);
  g_cond_clear (&self->finished_cond);
  G_OBJECT_CLASS (banger_engine_job_parent_class)->finalize (object);
}

static void
banger_engine_job_class_init (BangerEngineJobClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->finalize = banger_engine_job_finalize;
  signals[SIGNAL_CHANGED] = g_signal_new ("changed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                                          0, NULL, NULL, NULL, G_TYPE_NONE, 0);
  signals[SIGNAL_COMPLETED]
      = g_signal_new ("completed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
                      NULL, G_TYPE_NONE, 2, G_TYPE_BOOLEAN, G_TYPE_STRING);
}

static void
banger_engine_job_init (BangerEngineJob *self)
{
  g_mutex_init (&self->lock);
  g_cond_init (&self->finished_cond);
  self->progress = 0.0;
  self->pending_progress = 0.0;
  self->message = g_strdup ("");
  self->state = g_strdup ("running");
  self->cancellable = g_cancellable_new ();
}

BangerEngineJob *
banger_engine_job_new (const char *operation, const char *target, guint started_by_uid)
{
  BangerEngineJob *self = g_object_new (BANGER_TYPE_ENGINE_JOB, NULL);

  self->number = g_atomic_int_add (&next_number, 1);
  self->operation = g_strdup (operation);
  self->target = g_strdup (target);
  self->uid = started_by_uid;
  self->context = g_main_context_ref_thread_default ();
  return self;
}

guint
banger_engine_job_get_number (BangerEngineJob *self)
{
  return self->number;
}

const char *
banger_engine_job_get_operation (BangerEngineJob *self)
{
  return self->operation;
}

const char *
banger_engine_job_get_target (BangerEngineJob *self)
{
  return self->target;
}

guint
banger_engine_job_get_started_by_uid (BangerEngineJob *self)
{
  return self->uid;
}

const char *
banger_engine_job_get_state (BangerEngineJob *self)
{
  return self->state;
}

gboolean
banger_engine_job_is_finished (BangerEngineJob *self)
{
  return self->finished;
}

void
banger_engine_job_get_progress (BangerEngineJob *self, double *progress, guint64 *done,
                                guint64 *total)
{
  if (progress)
    *progress = self->progress;
  if (done)
    *done = self->bytes_done;
  if (total)
    *total = self->bytes_total;
}

char *
banger_engine_job_dup_message (BangerEngineJob *self)
{
  return g_strdup (self->message);
}

const char *
banger_engine_job_get_result_kind (BangerEngineJob *self)
{
  return self->result_kind;
}

const char *
banger_engine_job_get_result_name (BangerEngineJob *self)
{
  return self->result_name;
}

void
banger_engine_job_set_result (BangerEngineJob *self, const char *kind, const char *name)
{
  g_free (self->result_kind);
  self->result_kind = g_strdup (kind);
  g_free (self->result_name);
  self->result_name = g_strdup (name);
}

/* Main context: copies the worker's latest values and announces them. */
static void
flush_pending (BangerEngineJob *self)
{
  gboolean changed = FALSE;

  g_mutex_lock (&self->lock);
  g_clear_pointer (&self->flush_source, g_source_unref);
  self->last_flush_us = g_get_monotonic_time ();
  if (self->pending_progress != self->progress || self->pending_done != self->bytes_done
      || self->pending_total != self->bytes_total) {
    self->progress = self->pending_progress;
    self->bytes_done = self->pending_done;
    self->bytes_total = self->pending_total;
    changed = TRUE;
  }
  if (self->pending_message != NULL) {
    g_free (self->message);
    self->message = g_steal_pointer (&self->pending_message);
    changed = TRUE;
  }
  g_mutex_unlock (&self->lock);
  if (changed)
    g_signal_emit (self, signals[SIGNAL_CHANGED], 0);
}

static gboolean
flush_cb (gpointer user_data)
{
  flush_pending (BANGER_ENGINE_JOB (user_data));
  return G_SOURCE_REMOVE;
}

void
banger_engine_job_update (BangerEngineJob *self, double progress, guint64 bytes_done,
                          guint64 bytes_total, const char *message)
{
  g_mutex_lock (&self->lock);
  if (progress >= 0)
    self->pending_progress = MIN (progress, 1.0);
  self->pending_done = bytes_done;
  self->pending_total = bytes_total;
  if (message != NULL) {
    g_free (self->pending_message);
    self->pending_message = g_strdup (message);
  }
  /* One flush at a time, never sooner than 100 ms after the last one. */
  if (self->flush_source == NULL) {
    gint64 due = self->last_flush_us + JOB_UPDATE_INTERVAL_US - g_get_monotonic_time ();
    self->flush_source = g_timeout_source_new (due > 0 ? (guint)(due / 1000) : 0);
    g_source_set_callback (self->flush_source, flush_cb, g_object_ref (self), g_object_unref);
    g_source_attach (self->flush_source, self->context);
  }
  g_mutex_unlock (&self->lock);
}

static void
finish (BangerEngineJob *self, const char *state, GError *error)
{
  /* The last progress goes out before "completed", whatever the rate limit. */
  g_mutex_lock (&self->lock);
  if (self->flush_source != NULL) {
    g_source_destroy (self->flush_source);
    g_clear_pointer (&self->flush_source, g_source_unref);
  }
  if (g_str_equal (state, "succeeded")) {
    self->pending_progress = 1.0;
    if (self->pending_total > 0)
      self->pending_done = self->pending_total;
  }
  g_free (self->pending_message);
  self->pending_message = g_strdup (error != NULL ? error->message : "done");
  g_mutex_unlock (&self->lock);
  flush_pending (self);

  g_mutex_lock (&self->lock);
  g_free (self->state);
  self->state = g_strdup (state);
  self->error = error;
  self->finished = TRUE;
  g_cond_broadcast (&self->finished_cond);
  g_mutex_unlock (&self->lock);
  g_info ("job %u (%s %s) %s: %s", self->number, self->operation, self->target, state,
          self->message);
  g_signal_emit (self, signals[SIGNAL_CHANGED], 0);
  g_signal_emit (self, signals[SIGNAL_COMPLETED], 0, error == NULL, self->message);
}

static void
thread_cb (GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
  BangerEngineJob *self = BANGER_ENGINE_JOB (source);
  GError *error = NULL;
  gpointer result = self->thread_func (self, self->data, cancellable, &error);

  if (result == NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, result, self->result_free);
}

static void
done_cb (GObject *source, GAsyncResult *res, gpointer user_data)
{
  BangerEngineJob *self = BANGER_ENGINE_JOB (source);
  GError *error = NULL;
  gpointer result = g_task_propagate_pointer (G_TASK (res), &error);

  /* A Cancel that arrived after the work ended but before this callback
   * still wins: nothing is registered and the result's free function
   * removes what the worker made. */
  if (result != NULL && g_cancellable_is_cancelled (self->cancellable))
    g_set_error_literal (&error, BANGER_ERROR, BANGER_ERROR_CANCELLED, "cancelled");
  else if (result != NULL && self->finish_func != NULL)
    self->finish_func (self, result, self->data, &error);
  if (result != NULL && self->result_free != NULL)
    self->result_free (result);

  if (error == NULL) {
    finish (self, "succeeded", NULL);
  } else if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED)
             || g_error_matches (error, BANGER_ERROR, BANGER_ERROR_CANCELLED)) {
    g_clear_error (&error);
    g_set_error_literal (&error, BANGER_ERROR, BANGER_ERROR_CANCELLED, "cancelled");
    finish (self, "cancelled", error);
  } else {
    banger_error_convert (&error);
    finish (self, "failed", error);
  }
  g_object_unref (self); /* taken in banger_engine_job_start */
}

void
banger_engine_job_start (BangerEngineJob *self, BangerEngineJobThreadFunc thread_func,
                         BangerEngineJobFinishFunc finish_func, gpointer data,
                         GDestroyNotify data_free, GDestroyNotify result_free)
{
  g_autoptr (GTask) task = NULL;

  self->thread_func = thread_func;
  self->finish_func = finish_func;
  self->data = data;
  self->data_free = data_free;
  self->result_free = result_free;
  self->last_flush_us = g_get_monotonic_time ();
  /* The GTask's callback runs in the thread-default context of this call,
   * which is the job's context. */
  g_main_context_push_thread_default (self->context);
  task = g_task_new (self, self->cancellable, done_cb, g_object_ref (self));
  g_main_context_pop_thread_default (self->context);
  g_task_set_name (task, self->operation);
  g_task_set_return_on_cancel (task, FALSE);
  g_task_run_in_thread (task, thread_cb);
}

gboolean
banger_engine_job_cancel (BangerEngineJob *self, GError **error)
{
  if (self->finished) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_BAD_STATE, "job %u (%s %s) has already %s",
                 self->number, self->operation, self->target, self->state);
    return FALSE;
  }
  g_info ("cancelling job %u (%s %s)", self->number, self->operation, self->target);
  g_cancellable_cancel (self->cancellable);
  return TRUE;
}

gboolean
banger_engine_job_wait (BangerEngineJob *self, GError **error)
{
  if (g_main_context_acquire (self->context)) {
    /* We own the job's context: nobody else will run its callbacks. */
    while (!self->finished)
      g_main_context_iteration (self->context, TRUE);
    g_main_context_release (self->context);
  } else {
    g_mutex_lock (&self->lock);
    while (!self->finished)
      g_cond_wait (&self->finished_cond, &self->lock);
    g_mutex_unlock (&self->lock);
  }
  if (self->error != NULL) {
    g_propagate_error (error, g_error_copy (self->error));
    return FALSE;
  }
  return TRUE;
}
