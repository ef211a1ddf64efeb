#define G_LOG_DOMAIN "bangerd-kernels"

#include "kernel-pull.h"

#include "banger-error.h"
#include "catalog-index.h"
#include "kernels.h"
#include "paths.h"
#include "validate.h"

#define PULLS_KEY "banger-kernel-pulls"

typedef struct {
  char *name;     /* in the catalog */
  char *as_name;  /* registered as */
  char *work_dir; /* <data>/kernels/<id>: the download, removed at the end */
} PullData;

static void
pull_data_free (PullData *d)
{
  g_free (d->name);
  g_free (d->as_name);
  g_free (d->work_dir);
  g_free (d);
}

typedef struct {
  BangerKernelRecord *rec;
  char *dir; /* the kernel's directory, removed on free unless claimed */
  gboolean claimed;
} PullResult;

static void
pull_result_free (PullResult *r)
{
  if (!r->claimed)
    banger_catalog_remove_dir (r->dir);
  banger_kernel_record_free (r->rec);
  g_free (r->dir);
  g_free (r);
}

static GHashTable *
running_pulls (BangerCatalog *self)
{
  GHashTable *t = g_object_get_data (G_OBJECT (self), PULLS_KEY);
  if (t == NULL) {
    t = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_object_unref);
    g_object_set_data_full (G_OBJECT (self), PULLS_KEY, t, (GDestroyNotify)g_hash_table_unref);
  }
  return t;
}

static void
download_progress_cb (guint64 done, guint64 total, gpointer user_data)
{
  double fraction = total > 0 ? 0.9 * (double)done / (double)total : -1;
  banger_engine_job_update (BANGER_ENGINE_JOB (user_data), fraction, done, total,
                            "downloading the kernel");
}

static gpointer
pull_thread (BangerEngineJob *job, gpointer data, GCancellable *cancellable, GError **error)
{
  PullData *d = data;
  BangerCatalog *self = g_object_get_data (G_OBJECT (job), "banger-catalog");
  g_autofree char *url = banger_catalog_index_url ();
  g_autoptr (BangerCatalogIndex) index = NULL;
  g_autofree char *download = NULL;
  g_autofree char *source = NULL;
  const BangerCatalogKernel *entry;
  BangerKernelRecord *rec;
  PullResult *r;

  banger_engine_job_update (job, 0, 0, 0, "reading the catalog");
  index = banger_catalog_index_fetch (url, cancellable, error);
  if (index == NULL)
    return NULL;
  entry = banger_catalog_index_find_kernel (index, d->name);
  if (entry == NULL) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_NOT_FOUND,
                 "the catalog at %s has no kernel called “%s”", url, d->name);
    return NULL;
  }
  if (!banger_ensure_dir (d->work_dir, error))
    return NULL;
  download = g_build_filename (d->work_dir, "download", NULL);
  if (!banger_download_verified (entry->url, entry->sha256, download, download_progress_cb, job,
                                 cancellable, error)) {
    banger_catalog_remove_dir (d->work_dir);
    return NULL;
  }
  banger_engine_job_update (job, 0.9, 0, 0, "unpacking the kernel");
  source = g_strconcat ("catalog:", d->name, NULL);
  rec = banger_catalog_prepare_kernel (self, download, d->as_name, NULL, source, cancellable,
                                       error);
  banger_catalog_remove_dir (d->work_dir);
  if (rec == NULL)
    return NULL;
  if (entry->version != NULL && *entry->version != '\0' && *rec->version == '\0') {
    g_free (rec->version);
    rec->version = g_strdup (entry->version);
  }
  r = g_new0 (PullResult, 1);
  r->dir = banger_catalog_kernel_dir (self, rec);
  r->rec = rec;
  return r;
}

static gboolean
pull_finish (BangerEngineJob *job, gpointer result, gpointer data, GError **error)
{
  PullResult *r = result;
  BangerCatalog *self = g_object_get_data (G_OBJECT (job), "banger-catalog");

  if (!banger_catalog_insert_kernel (self, r->rec, error))
    return FALSE;
  r->claimed = TRUE;
  banger_engine_job_set_result (job, "kernel", r->rec->name);
  return TRUE;
}

static void
pull_completed_cb (BangerEngineJob *job, gboolean success, const char *message, gpointer user_data)
{
  BangerCatalog *self = BANGER_CATALOG (user_data);
  const char *key = g_object_get_data (G_OBJECT (job), "banger-pull-key");
  GHashTable *t = running_pulls (self);

  if (g_hash_table_lookup (t, key) == job)
    g_hash_table_remove (t, key);
}

BangerEngineJob *
banger_catalog_pull_kernel (BangerCatalog *self, const char *name, const char *as_name, guint uid,
                            GError **error)
{
  g_autoptr (BangerKernelRecord) existing = NULL;
  g_autoptr (GError) lookup_error = NULL;
  g_autoptr (BangerEngineJob) job = NULL;
  g_autofree char *id = NULL;
  const char *chosen;
  BangerEngineJob *running;
  PullData *d;

  if (!banger_validate_name ("kernel", name, error))
    return NULL;
  running = g_hash_table_lookup (running_pulls (self), name);
  if (running != NULL)
    return g_object_ref (running);
  chosen = (as_name != NULL && *as_name != '\0') ? as_name : name;
  if (!banger_validate_name ("kernel", chosen, error))
    return NULL;
  existing
      = banger_store_kernel_get_by_name (banger_catalog_get_store (self), chosen, &lookup_error);
  if (existing != NULL) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_EXISTS,
                 "a kernel called “%s” already exists (pick another with the name option)", chosen);
    return NULL;
  }
  if (!g_error_matches (lookup_error, BANGER_ERROR, BANGER_ERROR_NOT_FOUND)) {
    g_propagate_error (error, g_steal_pointer (&lookup_error));
    return NULL;
  }

  d = g_new0 (PullData, 1);
  d->name = g_strdup (name);
  d->as_name = g_strdup (chosen);
  /* The download gets a directory of its own, shaped like a kernel's, so
   * a bangerd killed mid-download leaves an orphan that orphans.c removes. */
  id = banger_vm_id_new ();
  d->work_dir = g_build_filename (banger_engine_get_data_dir (banger_catalog_get_engine (self)),
                                  "kernels", id, NULL);

  job = banger_engine_job_new ("pull-kernel", name, uid);
  g_object_set_data (G_OBJECT (job), "banger-catalog", self);
  g_object_set_data_full (G_OBJECT (job), "banger-pull-key", g_strdup (name), g_free);
  g_hash_table_insert (running_pulls (self), g_strdup (name), g_object_ref (job));
  g_signal_connect_object (job, "completed", G_CALLBACK (pull_completed_cb), self, 0);
  g_info ("pulling kernel %s from the catalog as %s (job %u)", name, chosen,
          banger_engine_job_get_number (job));
  g_signal_emit_by_name (self, "job-added", job);
  banger_engine_job_start (job, pull_thread, pull_finish, d, (GDestroyNotify)pull_data_free,
                           (GDestroyNotify)pull_result_free);
  return g_steal_pointer (&job);
}
