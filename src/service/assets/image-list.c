#define G_LOG_DOMAIN "bangerd-images"

#include "image-list.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "banger-error.h"
#include "boot-assets.h"
#include "image-recipes.h"
#include "kernel-list.h"
#include "paths.h"
#include "remove-tree.h"
#include "validate.h"

#define ROOTFS_NAME     "rootfs.ext4"
#define HAS_SSHD_KEY    "banger.has_sshd"
#define EXT4_MAGIC_OFFS 1080

struct _BangerCatalog {
  GObject parent_instance;
  BangerEngine *engine; /* owns us (qdata), so never outlived */
  GMainContext *context;
  GHashTable *jobs; /* kind → (key → BangerEngineJob) while running */
  GMutex default_image_lock;
  GMutex default_kernel_lock;
};

G_DEFINE_TYPE (BangerCatalog, banger_catalog, G_TYPE_OBJECT)

enum {
  SIGNAL_IMAGE_ADDED,
  SIGNAL_IMAGE_REMOVED,
  SIGNAL_KERNEL_ADDED,
  SIGNAL_KERNEL_REMOVED,
  SIGNAL_JOB_ADDED,
  SIGNAL_LAST
};
static guint signals[SIGNAL_LAST];

static void
banger_catalog_finalize (GObject *object)
{
  BangerCatalog *self = BANGER_CATALOG (object);

  g_hash_table_unref (self->jobs);
  g_main_context_unref (self->context);
  g_mutex_clear (&self->default_image_lock);
  g_mutex_clear (&self->default_kernel_lock);
  G_OBJECT_CLASS (banger_catalog_parent_class)->finalize (object);
}

static void
banger_catalog_class_init (BangerCatalogClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GType t = G_TYPE_FROM_CLASS (klass);

  object_class->finalize = banger_catalog_finalize;
  signals[SIGNAL_IMAGE_ADDED] = g_signal_new ("image-added", t, G_SIGNAL_RUN_LAST, 0, NULL, NULL,
                                              NULL, G_TYPE_NONE, 1, G_TYPE_POINTER);
  signals[SIGNAL_IMAGE_REMOVED] = g_signal_new ("image-removed", t, G_SIGNAL_RUN_LAST, 0, NULL,
                                                NULL, NULL, G_TYPE_NONE, 1, G_TYPE_STRING);
  signals[SIGNAL_KERNEL_ADDED] = g_signal_new ("kernel-added", t, G_SIGNAL_RUN_LAST, 0, NULL, NULL,
                                               NULL, G_TYPE_NONE, 1, G_TYPE_POINTER);
  signals[SIGNAL_KERNEL_REMOVED] = g_signal_new ("kernel-removed", t, G_SIGNAL_RUN_LAST, 0, NULL,
                                                 NULL, NULL, G_TYPE_NONE, 1, G_TYPE_STRING);
  signals[SIGNAL_JOB_ADDED] = g_signal_new ("job-added", t, G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                                            G_TYPE_NONE, 1, BANGER_TYPE_ENGINE_JOB);
}

static void
banger_catalog_init (BangerCatalog *self)
{
  self->jobs
      = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify)g_hash_table_unref);
  g_mutex_init (&self->default_image_lock);
  g_mutex_init (&self->default_kernel_lock);
}

/* Kept on the engine as object data rather than a field, so the engine
 * (manager.c) needs no knowledge of images to carry it. */
BangerCatalog *
banger_catalog_get (BangerEngine *engine)
{
  static GMutex lock;
  BangerCatalog *self;

  g_mutex_lock (&lock);
  self = g_object_get_data (G_OBJECT (engine), "banger-catalog");
  if (self == NULL) {
    self = g_object_new (BANGER_TYPE_CATALOG, NULL);
    self->engine = engine;
    self->context = g_main_context_ref_thread_default ();
    g_object_set_data_full (G_OBJECT (engine), "banger-catalog", self, g_object_unref);
  }
  g_mutex_unlock (&lock);
  return self;
}

BangerEngine *
banger_catalog_get_engine (BangerCatalog *self)
{
  return self->engine;
}

BangerStore *
banger_catalog_get_store (BangerCatalog *self)
{
  return banger_engine_get_store (self->engine);
}

/* ---- running on the main context ---- */

typedef struct {
  BangerCatalog *self;
  BangerCatalogMainFunc func;
  gpointer data;
  gpointer result;
  GError *error;
  gboolean done;
  GMutex lock;
  GCond cond;
} MainCall;

static gboolean
main_call_cb (gpointer user_data)
{
  MainCall *call = user_data;
  gpointer result = call->func (call->self, call->data, &call->error);

  g_mutex_lock (&call->lock);
  call->result = result;
  call->done = TRUE;
  g_cond_signal (&call->cond);
  g_mutex_unlock (&call->lock);
  return G_SOURCE_REMOVE;
}

gpointer
banger_catalog_call_main (BangerCatalog *self, BangerCatalogMainFunc func, gpointer data,
                          GError **error)
{
  MainCall call = { self, func, data, NULL, NULL, FALSE };
  gpointer result;

  /* Whoever can acquire the context is the only one running it, so the
   * store is not used by two threads at once. */
  if (g_main_context_acquire (self->context)) {
    result = func (self, data, error);
    g_main_context_release (self->context);
    return result;
  }
  g_mutex_init (&call.lock);
  g_cond_init (&call.cond);
  g_main_context_invoke (self->context, main_call_cb, &call);
  g_mutex_lock (&call.lock);
  while (!call.done)
    g_cond_wait (&call.cond, &call.lock);
  g_mutex_unlock (&call.lock);
  g_mutex_clear (&call.lock);
  g_cond_clear (&call.cond);
  if (call.error != NULL)
    g_propagate_error (error, call.error);
  return call.result;
}

void
banger_catalog_emit_kernel_added (BangerCatalog *self, const BangerKernelRecord *rec)
{
  g_signal_emit (self, signals[SIGNAL_KERNEL_ADDED], 0, rec);
}

void
banger_catalog_emit_kernel_removed (BangerCatalog *self, const char *name)
{
  g_signal_emit (self, signals[SIGNAL_KERNEL_REMOVED], 0, name);
}

void
banger_catalog_remove_dir (const char *dir)
{
  g_autoptr (GError) error = NULL;

  if (!banger_remove_tree (dir, &error))
    g_warning ("%s", error->message);
}

/* ---- jobs ---- */

static GHashTable *
jobs_of_kind (BangerCatalog *self, const char *kind)
{
  GHashTable *t = g_hash_table_lookup (self->jobs, kind);

  if (t == NULL) {
    t = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_object_unref);
    g_hash_table_insert (self->jobs, g_strdup (kind), t);
  }
  return t;
}

BangerEngineJob *
banger_catalog_find_job (BangerCatalog *self, const char *kind, const char *key)
{
  return g_hash_table_lookup (jobs_of_kind (self, kind), key);
}

BangerCatalog *
banger_catalog_from_job (BangerEngineJob *job)
{
  return g_object_get_data (G_OBJECT (job), "banger-catalog");
}

static void
job_completed_cb (BangerEngineJob *job, gboolean success, const char *message, gpointer user_data)
{
  BangerCatalog *self = BANGER_CATALOG (user_data);
  GHashTable *t = jobs_of_kind (self, g_object_get_data (G_OBJECT (job), "banger-job-kind"));
  const char *key = g_object_get_data (G_OBJECT (job), "banger-job-key");

  /* A later job may have taken the key over already. */
  if (g_hash_table_lookup (t, key) == job)
    g_hash_table_remove (t, key);
}

void
banger_catalog_start_job (BangerCatalog *self, BangerEngineJob *job, const char *kind,
                          const char *key, BangerEngineJobThreadFunc thread_func,
                          BangerEngineJobFinishFunc finish_func, gpointer data,
                          GDestroyNotify data_free, GDestroyNotify result_free)
{
  g_object_set_data (G_OBJECT (job), "banger-catalog", self);
  g_object_set_data_full (G_OBJECT (job), "banger-job-kind", g_strdup (kind), g_free);
  g_object_set_data_full (G_OBJECT (job), "banger-job-key", g_strdup (key), g_free);
  g_hash_table_insert (jobs_of_kind (self, kind), g_strdup (key), g_object_ref (job));
  g_signal_connect_object (job, "completed", G_CALLBACK (job_completed_cb), self, 0);
  g_signal_emit (self, signals[SIGNAL_JOB_ADDED], 0, job);
  banger_engine_job_start (job, thread_func, finish_func, data, data_free, result_free);
}

/* ---- checks ---- */

/* The tail of both checks: whether the look-up @found the name, or else
 * failed with @lookup_error. */
static gboolean
check_free (gboolean found, const GError *lookup_error, const char *what, const char *name,
            const char *hint, GError **error)
{
  if (found) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_EXISTS, "%s called “%s” already exists%s%s",
                 what, name, hint != NULL ? " " : "", hint != NULL ? hint : "");
    return FALSE;
  }
  if (!g_error_matches (lookup_error, BANGER_ERROR, BANGER_ERROR_NOT_FOUND)) {
    g_propagate_error (error, g_error_copy (lookup_error));
    return FALSE;
  }
  return TRUE;
}

gboolean
banger_catalog_check_image_free (BangerCatalog *self, const char *name, const char *hint,
                                 GError **error)
{
  g_autoptr (GError) lookup_error = NULL;
  g_autoptr (BangerImageRecord) existing
      = banger_store_image_get_by_name (banger_catalog_get_store (self), name, &lookup_error);

  return check_free (existing != NULL, lookup_error, "an image", name, hint, error);
}

gboolean
banger_catalog_check_kernel_free (BangerCatalog *self, const char *name, const char *hint,
                                  GError **error)
{
  g_autoptr (GError) lookup_error = NULL;
  g_autoptr (BangerKernelRecord) existing
      = banger_store_kernel_get_by_name (banger_catalog_get_store (self), name, &lookup_error);

  return check_free (existing != NULL, lookup_error, "a kernel", name, hint, error);
}

/* ---- images ---- */

static char *
images_dir (BangerCatalog *self)
{
  return g_build_filename (banger_engine_get_data_dir (self->engine), "images", NULL);
}

GPtrArray *
banger_catalog_list_images (BangerCatalog *self, GError **error)
{
  return banger_store_image_list (banger_catalog_get_store (self), error);
}

BangerImageRecord *
banger_catalog_find_image (BangerCatalog *self, const char *name, GError **error)
{
  if (!banger_validate_name ("image", name, error))
    return NULL;
  return banger_store_image_get_by_name (banger_catalog_get_store (self), name, error);
}

char *
banger_catalog_image_rootfs (BangerCatalog *self, const BangerImageRecord *rec)
{
  g_autofree char *dir = images_dir (self);
  return g_build_filename (dir, rec->id, ROOTFS_NAME, NULL);
}

GStrv
banger_catalog_image_used_by (BangerCatalog *self, const char *name)
{
  g_autoptr (GPtrArray) vms = banger_engine_list_vms (self->engine, NULL);
  g_autoptr (GStrvBuilder) b = g_strv_builder_new ();

  for (guint i = 0; vms != NULL && i < vms->len; i++) {
    BangerVmRecord *vm = g_ptr_array_index (vms, i);
    if (g_strcmp0 (vm->image, name) == 0)
      g_strv_builder_add (b, vm->name);
  }
  return g_strv_builder_end (b);
}

gboolean
banger_catalog_delete_image (BangerCatalog *self, const char *name, gboolean force, GError **error)
{
  g_autoptr (BangerImageRecord) rec = banger_catalog_find_image (self, name, error);
  g_auto (GStrv) users = NULL;
  g_autofree char *dir = NULL;
  g_autofree char *base = NULL;

  if (rec == NULL)
    return FALSE;
  users = banger_catalog_image_used_by (self, name);
  if (users[0] != NULL && !force) {
    g_autofree char *list = g_strjoinv (", ", users);
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_BUSY,
                 "image “%s” is used by VM %s; delete the VM first or use “force”", name, list);
    return FALSE;
  }
  if (!banger_store_image_delete (banger_catalog_get_store (self), name, error))
    return FALSE;
  base = images_dir (self);
  dir = g_build_filename (base, rec->id, NULL);
  banger_catalog_remove_dir (dir);
  g_info ("deleted image %s (id %s)", name, rec->id);
  g_signal_emit (self, signals[SIGNAL_IMAGE_REMOVED], 0, name);
  return TRUE;
}

gboolean
banger_image_record_has_sshd (const BangerImageRecord *rec)
{
  g_autoptr (JsonParser) parser = json_parser_new ();
  JsonNode *root;

  if (!json_parser_load_from_data (parser, rec->config, -1, NULL))
    return FALSE;
  root = json_parser_get_root (parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    return FALSE;
  return json_object_get_boolean_member_with_default (json_node_get_object (root), HAS_SSHD_KEY,
                                                      FALSE);
}

gboolean
banger_catalog_add_image (BangerCatalog *self, BangerImageRecord *rec, const char *rootfs,
                          GError **error)
{
  GStatBuf st;

  rec->size_bytes = g_stat (rootfs, &st) == 0 ? (guint64)st.st_size : 0;
  rec->created_at = g_get_real_time () / G_USEC_PER_SEC;
  if (!banger_store_image_insert (banger_catalog_get_store (self), rec, error))
    return FALSE;
  g_info ("registered image %s (id %s, %s, %" G_GUINT64_FORMAT " bytes)", rec->name, rec->id,
          rec->source, rec->size_bytes);
  g_signal_emit (self, signals[SIGNAL_IMAGE_ADDED], 0, rec);
  return TRUE;
}

/* -- jobs that make an image -- */

typedef struct {
  char *name;
  char *id;
  char *dir; /* <data>/images/<id> */
  BangerCatalogImageFunc make;
  gpointer data;
  GDestroyNotify data_free;
} ImageJobData;

static void
image_job_data_free (ImageJobData *d)
{
  if (d->data_free != NULL)
    d->data_free (d->data);
  g_free (d->name);
  g_free (d->id);
  g_free (d->dir);
  g_free (d);
}

typedef struct {
  BangerImageRecord *rec;
  char *dir; /* removed on free unless claimed */
  char *rootfs;
  gboolean claimed;
} ImageJobResult;

static void
image_job_result_free (ImageJobResult *r)
{
  if (!r->claimed)
    banger_catalog_remove_dir (r->dir);
  banger_image_record_free (r->rec);
  g_free (r->dir);
  g_free (r->rootfs);
  g_free (r);
}

static gpointer
image_job_thread (BangerEngineJob *job, gpointer data, GCancellable *cancellable, GError **error)
{
  ImageJobData *d = data;
  ImageJobResult *r = g_new0 (ImageJobResult, 1);

  r->dir = g_strdup (d->dir);
  r->rootfs = g_build_filename (d->dir, ROOTFS_NAME, NULL);
  r->rec = banger_image_record_new ();
  g_free (r->rec->id);
  r->rec->id = g_strdup (d->id);
  g_free (r->rec->name);
  r->rec->name = g_strdup (d->name);
  if (!banger_ensure_dir (d->dir, error)
      || !d->make (job, d->data, r->rootfs, r->rec, cancellable, error)) {
    image_job_result_free (r);
    return NULL;
  }
  return r;
}

static gboolean
image_job_finish (BangerEngineJob *job, gpointer result, gpointer data, GError **error)
{
  ImageJobResult *r = result;

  if (!banger_catalog_add_image (banger_catalog_from_job (job), r->rec, r->rootfs, error))
    return FALSE;
  r->claimed = TRUE;
  banger_engine_job_set_result (job, "image", r->rec->name);
  return TRUE;
}

void
banger_catalog_start_image_job (BangerCatalog *self, BangerEngineJob *job, const char *kind,
                                const char *key, const char *name, BangerCatalogImageFunc make,
                                gpointer data, GDestroyNotify data_free)
{
  g_autofree char *base = images_dir (self);
  ImageJobData *d = g_new0 (ImageJobData, 1);

  d->name = g_strdup (name);
  d->id = banger_vm_id_new ();
  d->dir = g_build_filename (base, d->id, NULL);
  d->make = make;
  d->data = data;
  d->data_free = data_free;
  banger_catalog_start_job (self, job, kind, key, image_job_thread, image_job_finish, d,
                            (GDestroyNotify)image_job_data_free,
                            (GDestroyNotify)image_job_result_free);
}

/* -- building -- */

typedef struct {
  char *recipe;
  char *agent;
} BuildData;

static void
build_data_free (BuildData *d)
{
  g_free (d->recipe);
  g_free (d->agent);
  g_free (d);
}

static void
build_progress_cb (double fraction, const char *message, gpointer user_data)
{
  banger_engine_job_update (BANGER_ENGINE_JOB (user_data), fraction, 0, 0, message);
}

static gboolean
build_make (BangerEngineJob *job, gpointer data, const char *rootfs, BangerImageRecord *rec,
            GCancellable *cancellable, GError **error)
{
  BuildData *d = data;
  gboolean has_sshd = FALSE;

  if (!banger_image_recipe_build (d->recipe, rootfs, d->agent, build_progress_cb, job, &has_sshd,
                                  cancellable, error))
    return FALSE;
  g_free (rec->source);
  rec->source = g_strconcat ("recipe:", d->recipe, NULL);
  g_free (rec->config);
  rec->config = g_strdup_printf ("{\"" HAS_SSHD_KEY "\": %s}", has_sshd ? "true" : "false");
  return TRUE;
}

BangerEngineJob *
banger_catalog_build_image (BangerCatalog *self, const char *recipe, const char *name, guint uid,
                            GError **error)
{
  g_autoptr (BangerEngineJob) job = NULL;
  BangerEngineJob *running;
  BuildData *d;

  if (!banger_image_recipe_is_known (recipe)) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_NOT_FOUND, "no recipe called “%s” (known: %s)",
                 recipe, banger_image_recipe_names ());
    return NULL;
  }
  if (name == NULL || *name == '\0')
    name = recipe;
  if (!banger_validate_name ("image", name, error))
    return NULL;
  running = banger_catalog_find_job (self, "build", name);
  if (running != NULL) {
    if (g_strcmp0 (g_object_get_data (G_OBJECT (running), "banger-recipe"), recipe) == 0)
      return g_object_ref (running);
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_BUSY, "image “%s” is being built already", name);
    return NULL;
  }
  if (!banger_catalog_check_image_free (self, name, NULL, error))
    return NULL;

  d = g_new0 (BuildData, 1);
  d->recipe = g_strdup (recipe);
  d->agent = g_strdup (banger_agent_binary_path ());
  job = banger_engine_job_new ("build-image", recipe, uid);
  g_object_set_data_full (G_OBJECT (job), "banger-recipe", g_strdup (recipe), g_free);
  g_info ("building image %s from recipe %s (job %u)", name, recipe,
          banger_engine_job_get_number (job));
  banger_catalog_start_image_job (self, job, "build", name, name, build_make, d,
                                  (GDestroyNotify)build_data_free);
  return g_steal_pointer (&job);
}

/* -- registering a file -- */

static gboolean
check_ext4 (const char *path, GError **error)
{
  guint8 magic[2] = { 0 };
  int fd = open (path, O_RDONLY | O_CLOEXEC);
  struct stat st;
  gboolean ok;

  if (fd < 0) {
    int saved = errno;
    g_set_error (error, BANGER_ERROR,
                 saved == ENOENT ? BANGER_ERROR_NOT_FOUND : BANGER_ERROR_FAILED,
                 "cannot open %s: %s", path, g_strerror (saved));
    return FALSE;
  }
  ok = fstat (fd, &st) == 0 && S_ISREG (st.st_mode)
       && pread (fd, magic, sizeof magic, EXT4_MAGIC_OFFS) == sizeof magic && magic[0] == 0x53
       && magic[1] == 0xef;
  close (fd);
  if (!ok)
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
                 "%s is not a raw ext4 file system image", path);
  return ok;
}

/* A reflink where the file system can (instant, no extra space), else a
 * plain copy: the image must not change when the user's file does. */
static gboolean
copy_file (const char *src, const char *dest, GCancellable *cancellable, GError **error)
{
  g_autofree char *tmp = g_strconcat (dest, ".tmp", NULL);
  int in = open (src, O_RDONLY | O_CLOEXEC);
  int out;
  gboolean ok = FALSE;

  if (in < 0) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "cannot open %s: %s", src,
                 g_strerror (errno));
    return FALSE;
  }
  out = open (tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (out < 0) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "cannot create %s: %s", tmp,
                 g_strerror (errno));
    close (in);
    return FALSE;
  }
  if (ioctl (out, FICLONE, in) == 0) {
    ok = TRUE;
  } else {
    g_autoptr (GFile) s = g_file_new_for_path (src);
    g_autoptr (GFile) d = g_file_new_for_path (tmp);
    ok = g_file_copy (s, d, G_FILE_COPY_OVERWRITE, cancellable, NULL, NULL, error);
  }
  close (in);
  close (out);
  if (ok && g_rename (tmp, dest) < 0) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "cannot create %s: %s", dest,
                 g_strerror (errno));
    ok = FALSE;
  }
  if (!ok)
    g_unlink (tmp);
  return ok;
}

typedef struct {
  BangerImageRecord *rec;
  char *rootfs; /* the user's file */
  char *dir;
} RegisterData;

static void
register_data_free (RegisterData *d)
{
  banger_image_record_free (d->rec);
  g_free (d->rootfs);
  g_free (d->dir);
  g_free (d);
}

static void
register_thread (GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
  RegisterData *d = task_data;
  g_autofree char *dest = g_build_filename (d->dir, ROOTFS_NAME, NULL);
  GError *error = NULL;

  if (!banger_ensure_dir (d->dir, &error) || !copy_file (d->rootfs, dest, cancellable, &error)) {
    banger_catalog_remove_dir (d->dir);
    g_task_return_error (task, error);
    return;
  }
  g_task_return_boolean (task, TRUE);
}

void
banger_catalog_register_image_async (BangerCatalog *self, const char *name, const char *rootfs,
                                     const char *kernel, GCancellable *cancellable,
                                     GAsyncReadyCallback callback, gpointer user_data)
{
  g_autoptr (GTask) task = g_task_new (self, cancellable, callback, user_data);
  g_autoptr (BangerImageRecord) existing = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *base = images_dir (self);
  RegisterData *d;

  if (!banger_validate_name ("image", name, &error)) {
    g_task_return_error (task, g_steal_pointer (&error));
    return;
  }
  existing = banger_store_image_get_by_name (banger_catalog_get_store (self), name, NULL);
  if (existing != NULL) {
    g_task_return_new_error (task, BANGER_ERROR, BANGER_ERROR_EXISTS,
                             "an image called “%s” already exists", name);
    return;
  }
  if (kernel != NULL && *kernel != '\0'
      && !banger_catalog_check_vm_assets (self, NULL, kernel, &error)) {
    g_task_return_error (task, g_steal_pointer (&error));
    return;
  }
  if (rootfs == NULL || !g_path_is_absolute (rootfs)) {
    g_task_return_new_error (task, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
                             "the rootfs must be an absolute path, not “%s”", rootfs ? rootfs : "");
    return;
  }
  if (!check_ext4 (rootfs, &error)) {
    g_task_return_error (task, g_steal_pointer (&error));
    return;
  }
  d = g_new0 (RegisterData, 1);
  d->rec = banger_image_record_new ();
  g_free (d->rec->id);
  d->rec->id = banger_vm_id_new ();
  g_free (d->rec->name);
  d->rec->name = g_strdup (name);
  g_free (d->rec->source);
  d->rec->source = g_strconcat ("file:", rootfs, NULL);
  g_free (d->rec->kernel);
  d->rec->kernel = g_strdup (kernel ? kernel : "");
  d->rootfs = g_strdup (rootfs);
  d->dir = g_build_filename (base, d->rec->id, NULL);
  g_task_set_task_data (task, d, (GDestroyNotify)register_data_free);
  g_task_run_in_thread (task, register_thread);
}

BangerImageRecord *
banger_catalog_register_image_finish (BangerCatalog *self, GAsyncResult *result, GError **error)
{
  RegisterData *d = g_task_get_task_data (G_TASK (result));
  g_autofree char *dest = g_build_filename (d->dir, ROOTFS_NAME, NULL);

  if (!g_task_propagate_boolean (G_TASK (result), error))
    return NULL;
  if (!banger_catalog_add_image (self, d->rec, dest, error)) {
    banger_catalog_remove_dir (d->dir);
    return NULL;
  }
  return banger_image_record_copy (d->rec);
}

gboolean
banger_catalog_check_vm_assets (BangerCatalog *self, const char *image, const char *kernel,
                                GError **error)
{
  BangerStore *store = banger_catalog_get_store (self);

  if (image != NULL && *image != '\0'
      && g_strcmp0 (image, banger_engine_get_default_image (self->engine)) != 0) {
    g_autoptr (BangerImageRecord) rec = banger_store_image_get_by_name (store, image, error);
    if (rec == NULL)
      return FALSE;
  }
  if (kernel != NULL && *kernel != '\0'
      && g_strcmp0 (kernel, banger_engine_get_default_kernel (self->engine)) != 0) {
    g_autoptr (BangerKernelRecord) rec = banger_store_kernel_get_by_name (store, kernel, error);
    if (rec == NULL)
      return FALSE;
  }
  return TRUE;
}
