/* PullKernel's engine side: a kernel from the remote catalog index,
 * downloaded, checked and imported into the kernel list (kernel-pull.h). */
#include "kernel-pull.h"

#include "banger-error.h"
#include "catalog-index.h"
#include "paths.h"
#include "remove-tree.h"
#include "validate.h"

/* Pulls of the same kernel of the catalog index coalesce into one job. */
#define PULL_JOBS "kernel-pull"

typedef struct {
  BangerKernelList *self; /* the engine's, which outlives the job */
  char *name;             /* in the catalog index */
  char *as_name;          /* registered as */
  char *work_dir;         /* <data>/kernels/<id>: the download, removed at the end */
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
    banger_remove_tree_or_warn (r->dir);
  banger_kernel_record_free (r->rec);
  g_free (r->dir);
  g_free (r);
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
  BangerKernelList *self = d->self;
  BangerConfig *config = banger_kernel_list_get_config (self);
  g_autofree char *url = banger_catalog_index_url (config);
  g_autoptr (BangerCatalogIndex) index = NULL;
  g_autofree char *download = NULL;
  g_autofree char *source = NULL;
  const BangerCatalogKernel *entry;
  BangerKernelRecord *rec;
  PullResult *r;

  banger_engine_job_update (job, 0, 0, 0, "reading the catalog");
  index = banger_catalog_index_fetch (config, url, cancellable, error);
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
  if (!banger_download_verified (config, entry->url, entry->sha256, download, download_progress_cb,
                                 job, cancellable, error)) {
    banger_remove_tree_or_warn (d->work_dir);
    return NULL;
  }
  banger_engine_job_update (job, 0.9, 0, 0, "unpacking the kernel");
  source = g_strconcat ("catalog:", d->name, NULL);
  rec = banger_kernel_list_prepare (self, download, d->as_name, NULL, source, cancellable, error);
  banger_remove_tree_or_warn (d->work_dir);
  if (rec == NULL)
    return NULL;
  if (entry->version != NULL && *entry->version != '\0' && *rec->version == '\0') {
    g_free (rec->version);
    rec->version = g_strdup (entry->version);
  }
  r = g_new0 (PullResult, 1);
  r->dir = banger_kernel_list_dir (self, rec);
  r->rec = rec;
  return r;
}

static gboolean
pull_finish (BangerEngineJob *job, gpointer result, gpointer data, GError **error)
{
  PullResult *r = result;
  BangerKernelList *self = ((PullData *)data)->self;

  if (!banger_kernel_list_insert (self, r->rec, error))
    return FALSE;
  r->claimed = TRUE;
  banger_engine_job_set_result (job, "kernel", r->rec->name);
  return TRUE;
}

BangerEngineJob *
banger_kernel_list_pull (BangerKernelList *self, const char *name, const char *as_name, guint uid,
                         GError **error)
{
  g_autoptr (BangerEngineJob) job = NULL;
  g_autofree char *id = NULL;
  const char *chosen;
  BangerEngineJob *running;
  PullData *d;

  if (!banger_validate_name ("kernel", name, error))
    return NULL;
  running = banger_job_list_find (banger_kernel_list_get_jobs (self), PULL_JOBS, name);
  if (running != NULL)
    return g_object_ref (running);
  chosen = (as_name != NULL && *as_name != '\0') ? as_name : name;
  if (!banger_validate_name ("kernel", chosen, error))
    return NULL;
  if (!banger_kernel_list_check_free (self, chosen, "(pick another with the name option)", error))
    return NULL;

  d = g_new0 (PullData, 1);
  d->self = self;
  d->name = g_strdup (name);
  d->as_name = g_strdup (chosen);
  /* The download gets a directory of its own, shaped like a kernel's, so
   * a bangerd killed mid-download leaves an orphan that orphans.c removes. */
  id = banger_vm_id_new ();
  d->work_dir = g_build_filename (banger_config_get_data_dir (banger_kernel_list_get_config (self)),
                                  "kernels", id, NULL);

  job = banger_engine_job_new ("pull-kernel", name, uid);
  g_info ("pulling kernel %s from the catalog as %s (job %u)", name, chosen,
          banger_engine_job_get_number (job));
  banger_job_list_start (banger_kernel_list_get_jobs (self), job, PULL_JOBS, name, pull_thread,
                         pull_finish, d, (GDestroyNotify)pull_data_free,
                         (GDestroyNotify)pull_result_free);
  return g_steal_pointer (&job);
}
