/* BangerJobList: the running jobs, by kind and key (job-list.h). */
#include "job-list.h"

struct _BangerJobList {
  GObject parent_instance;
  GHashTable *kinds;  /* kind → (key → BangerEngineJob) */
  GPtrArray *running; /* BangerEngineJob, oldest first */
};

G_DEFINE_TYPE (BangerJobList, banger_job_list, G_TYPE_OBJECT)

enum { SIGNAL_JOB_ADDED, SIGNAL_LAST };
static guint signals[SIGNAL_LAST];

/* Where a listed job is, for its removal when it completes. */
typedef struct {
  BangerJobList *self;
  char *kind;
  char *key;
} Listing;

static void
listing_free (gpointer data, GClosure *closure)
{
  Listing *l = data;

  g_free (l->kind);
  g_free (l->key);
  g_free (l);
}

static void job_completed_cb (BangerEngineJob *job, gboolean success, const char *message,
                              Listing *l);

static void
banger_job_list_finalize (GObject *object)
{
  BangerJobList *self = BANGER_JOB_LIST (object);

  /* A job still running (its thread holds it) must not call back into a
   * list that is gone. */
  for (guint i = 0; i < self->running->len; i++)
    g_signal_handlers_disconnect_matched (self->running->pdata[i], G_SIGNAL_MATCH_FUNC, 0, 0, NULL,
                                          job_completed_cb, NULL);
  g_hash_table_unref (self->kinds);
  g_ptr_array_unref (self->running);
  G_OBJECT_CLASS (banger_job_list_parent_class)->finalize (object);
}

static void
banger_job_list_class_init (BangerJobListClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->finalize = banger_job_list_finalize;
  signals[SIGNAL_JOB_ADDED]
      = g_signal_new ("job-added", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
                      NULL, G_TYPE_NONE, 1, BANGER_TYPE_ENGINE_JOB);
}

static void
banger_job_list_init (BangerJobList *self)
{
  self->kinds
      = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify)g_hash_table_unref);
  self->running = g_ptr_array_new_with_free_func (g_object_unref);
}

BangerJobList *
banger_job_list_new (void)
{
  return g_object_new (BANGER_TYPE_JOB_LIST, NULL);
}

static GHashTable *
jobs_of_kind (BangerJobList *self, const char *kind)
{
  GHashTable *t = g_hash_table_lookup (self->kinds, kind);

  if (t == NULL) {
    t = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_object_unref);
    g_hash_table_insert (self->kinds, g_strdup (kind), t);
  }
  return t;
}

BangerEngineJob *
banger_job_list_find (BangerJobList *self, const char *kind, const char *key)
{
  return g_hash_table_lookup (jobs_of_kind (self, kind), key);
}

static void
job_completed_cb (BangerEngineJob *job, gboolean success, const char *message, Listing *l)
{
  GHashTable *t = jobs_of_kind (l->self, l->kind);

  /* A later job may have taken the key over already. */
  if (g_hash_table_lookup (t, l->key) == job)
    g_hash_table_remove (t, l->key);
  g_ptr_array_remove (l->self->running, job);
}

void
banger_job_list_start (BangerJobList *self, BangerEngineJob *job, const char *kind,
                       const char *key, BangerEngineJobThreadFunc thread_func,
                       BangerEngineJobFinishFunc finish_func, gpointer data,
                       GDestroyNotify data_free, GDestroyNotify result_free)
{
  Listing *l = g_new0 (Listing, 1);

  l->self = self;
  l->kind = g_strdup (kind);
  l->key = g_strdup (key);
  g_hash_table_insert (jobs_of_kind (self, kind), g_strdup (key), g_object_ref (job));
  g_ptr_array_add (self->running, g_object_ref (job));
  /* No reference on the list: it disconnects itself when it goes. */
  g_signal_connect_data (job, "completed", G_CALLBACK (job_completed_cb), l, listing_free, 0);
  g_signal_emit (self, signals[SIGNAL_JOB_ADDED], 0, job);
  banger_engine_job_start (job, thread_func, finish_func, data, data_free, result_free);
}

GPtrArray *
banger_job_list_list_running (BangerJobList *self)
{
  GPtrArray *jobs = g_ptr_array_new_with_free_func (g_object_unref);

  for (guint i = 0; i < self->running->len; i++)
    g_ptr_array_add (jobs, g_object_ref (self->running->pdata[i]));
  return jobs;
}
