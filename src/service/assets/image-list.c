/* BangerImageList: the engine's images, their files under
 * <data>/images/<id>/, the jobs that make them, building from a recipe and
 * registering a file (image-list.h); pulls are image-pull.c, what a VM
 * boots is boot-assets.c. */
#include "image-list.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "banger-error.h"
#include "file-copy.h"
#include "guest-agent.h"
#include "boot-assets.h"
#include "image-recipes.h"
#include "main-call.h"
#include "paths.h"
#include "remove-tree.h"
#include "validate.h"

#define ROOTFS_NAME     "rootfs.ext4"
#define HAS_SSHD_KEY    "banger.has_sshd"
#define EXT4_MAGIC_OFFS 1080

struct _BangerImageList {
  GObject parent_instance;
  BangerConfig *config;
  BangerStore *store; /* the engine's, which outlives us */
  GMainContext *context;
  BangerJobList *jobs;
  BangerKernelList *kernels;
};

G_DEFINE_TYPE (BangerImageList, banger_image_list, G_TYPE_OBJECT)

enum { SIGNAL_IMAGE_ADDED, SIGNAL_IMAGE_REMOVED, SIGNAL_LAST };
static guint signals[SIGNAL_LAST];

static void
banger_image_list_finalize (GObject *object)
{
  BangerImageList *self = BANGER_IMAGE_LIST (object);

  g_object_unref (self->kernels);
  g_object_unref (self->jobs);
  g_main_context_unref (self->context);
  banger_config_unref (self->config);
  G_OBJECT_CLASS (banger_image_list_parent_class)->finalize (object);
}

static void
banger_image_list_class_init (BangerImageListClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GType t = G_TYPE_FROM_CLASS (klass);

  object_class->finalize = banger_image_list_finalize;
  signals[SIGNAL_IMAGE_ADDED] = g_signal_new ("image-added", t, G_SIGNAL_RUN_LAST, 0, NULL, NULL,
                                              NULL, G_TYPE_NONE, 1, G_TYPE_POINTER);
  signals[SIGNAL_IMAGE_REMOVED] = g_signal_new ("image-removed", t, G_SIGNAL_RUN_LAST, 0, NULL,
                                                NULL, NULL, G_TYPE_NONE, 1, G_TYPE_STRING);
}

static void
banger_image_list_init (BangerImageList *self)
{
}

BangerImageList *
banger_image_list_new (BangerConfig *config, BangerStore *store, BangerJobList *jobs,
                       BangerKernelList *kernels)
{
  BangerImageList *self = g_object_new (BANGER_TYPE_IMAGE_LIST, NULL);

  self->kernels = g_object_ref (kernels);
  self->jobs = g_object_ref (jobs);
  self->config = banger_config_ref (config);
  self->store = store;
  self->context = g_main_context_ref_thread_default ();
  return self;
}

BangerConfig *
banger_image_list_get_config (BangerImageList *self)
{
  return self->config;
}

const char *
banger_image_list_get_data_dir (BangerImageList *self)
{
  return banger_config_get_data_dir (self->config);
}

BangerStore *
banger_image_list_get_store (BangerImageList *self)
{
  return self->store;
}

BangerKernelList *
banger_image_list_get_kernels (BangerImageList *self)
{
  return self->kernels;
}

gpointer
banger_image_list_call_main (BangerImageList *self, BangerImageListMainFunc func, gpointer data,
                             GError **error)
{
  return banger_main_call (self->context, (BangerMainCallFunc)func, self, data, error);
}

/* ---- jobs (the engine's one job list) ---- */

BangerEngineJob *
banger_image_list_find_job (BangerImageList *self, const char *kind, const char *key)
{
  return banger_job_list_find (self->jobs, kind, key);
}

void
banger_image_list_start_job (BangerImageList *self, BangerEngineJob *job, const char *kind,
                             const char *key, BangerEngineJobThreadFunc thread_func,
                             BangerEngineJobFinishFunc finish_func, gpointer data,
                             GDestroyNotify data_free, GDestroyNotify result_free)
{
  banger_job_list_start (self->jobs, job, kind, key, thread_func, finish_func, data, data_free,
                         result_free);
}

/* ---- checks ---- */

gboolean
banger_image_list_check_image_free (BangerImageList *self, const char *name, const char *hint,
                                    GError **error)
{
  g_autoptr (GError) lookup_error = NULL;
  g_autoptr (BangerImageRecord) existing
      = banger_store_image_get_by_name (self->store, name, &lookup_error);

  if (existing != NULL) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_EXISTS,
                 "an image called “%s” already exists%s%s", name, hint != NULL ? " " : "",
                 hint != NULL ? hint : "");
    return FALSE;
  }
  if (!g_error_matches (lookup_error, BANGER_ERROR, BANGER_ERROR_NOT_FOUND)) {
    g_propagate_error (error, g_steal_pointer (&lookup_error));
    return FALSE;
  }
  return TRUE;
}

/* ---- images ---- */

static char *
images_dir (BangerImageList *self)
{
  return g_build_filename (banger_config_get_data_dir (self->config), "images", NULL);
}

GPtrArray *
banger_image_list_list_images (BangerImageList *self, GError **error)
{
  return banger_store_image_list (banger_image_list_get_store (self), error);
}

BangerImageRecord *
banger_image_list_find_image (BangerImageList *self, const char *name, GError **error)
{
  if (!banger_validate_name ("image", name, error))
    return NULL;
  return banger_store_image_get_by_name (banger_image_list_get_store (self), name, error);
}

char *
banger_image_list_image_rootfs (BangerImageList *self, const BangerImageRecord *rec)
{
  g_autofree char *dir = images_dir (self);
  return g_build_filename (dir, rec->id, ROOTFS_NAME, NULL);
}

GStrv
banger_image_list_image_used_by (BangerImageList *self, const char *name)
{
  GStrv users = banger_store_vm_names_using_image (self->store, name, NULL);

  /* A store that cannot answer reads as "no users", as it always did. */
  return users != NULL ? users : g_new0 (char *, 1);
}

gboolean
banger_image_list_delete_image (BangerImageList *self, const char *name, gboolean force,
                                GError **error)
{
  g_autoptr (BangerImageRecord) rec = banger_image_list_find_image (self, name, error);
  g_auto (GStrv) users = NULL;
  g_autofree char *dir = NULL;
  g_autofree char *base = NULL;

  if (rec == NULL)
    return FALSE;
  users = banger_image_list_image_used_by (self, name);
  if (users[0] != NULL && !force) {
    g_autofree char *list = g_strjoinv (", ", users);
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_BUSY,
                 "image “%s” is used by VM %s; delete the VM first or use “force”", name, list);
    return FALSE;
  }
  if (!banger_store_image_delete (banger_image_list_get_store (self), name, error))
    return FALSE;
  base = images_dir (self);
  dir = g_build_filename (base, rec->id, NULL);
  banger_remove_tree_or_warn (dir);
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
banger_image_list_add_image (BangerImageList *self, BangerImageRecord *rec, const char *rootfs,
                             GError **error)
{
  GStatBuf st;

  rec->size_bytes = g_stat (rootfs, &st) == 0 ? (guint64)st.st_size : 0;
  rec->created_at = g_get_real_time () / G_USEC_PER_SEC;
  if (!banger_store_image_insert (banger_image_list_get_store (self), rec, error))
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
  BangerImageListImageFunc make;
  gpointer data;
  GDestroyNotify data_free;
  BangerImageList *self; /* the engine's, which outlives the job */
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
    banger_remove_tree_or_warn (r->dir);
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

  if (!banger_image_list_add_image (((ImageJobData *)data)->self, r->rec, r->rootfs, error))
    return FALSE;
  r->claimed = TRUE;
  banger_engine_job_set_result (job, "image", r->rec->name);
  return TRUE;
}

void
banger_image_list_start_image_job (BangerImageList *self, BangerEngineJob *job, const char *kind,
                                   const char *key, const char *name, BangerImageListImageFunc make,
                                   gpointer data, GDestroyNotify data_free)
{
  g_autofree char *base = images_dir (self);
  ImageJobData *d = g_new0 (ImageJobData, 1);

  d->self = self;
  d->name = g_strdup (name);
  d->id = banger_vm_id_new ();
  d->dir = g_build_filename (base, d->id, NULL);
  d->make = make;
  d->data = data;
  d->data_free = data_free;
  banger_image_list_start_job (self, job, kind, key, image_job_thread, image_job_finish, d,
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
banger_image_list_build_image (BangerImageList *self, const char *recipe, const char *name,
                               guint uid, GError **error)
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
  running = banger_image_list_find_job (self, "build", name);
  if (running != NULL) {
    if (g_strcmp0 (g_object_get_data (G_OBJECT (running), "banger-recipe"), recipe) == 0)
      return g_object_ref (running);
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_BUSY, "image “%s” is being built already", name);
    return NULL;
  }
  if (!banger_image_list_check_image_free (self, name, NULL, error))
    return NULL;

  d = g_new0 (BuildData, 1);
  d->recipe = g_strdup (recipe);
  d->agent = g_strdup (banger_guest_agent_path ());
  job = banger_engine_job_new ("build-image", recipe, uid);
  g_object_set_data_full (G_OBJECT (job), "banger-recipe", g_strdup (recipe), g_free);
  g_info ("building image %s from recipe %s (job %u)", name, recipe,
          banger_engine_job_get_number (job));
  banger_image_list_start_image_job (self, job, "build", name, name, build_make, d,
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
 * copy of the data regions: the image must not change when the user's file
 * does, and an image file is mostly holes (a filesystem made big enough). */
static gboolean
copy_file (const char *src, const char *dest, GError **error)
{
  g_autofree char *tmp = g_strconcat (dest, ".tmp", NULL);
  g_autoptr (GError) local = NULL;
  int in = open (src, O_RDONLY | O_CLOEXEC);
  int out;
  gboolean ok;

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
  ok = banger_file_reflink (in, out, NULL) || banger_file_copy_sparse (in, out, &local);
  if (!ok)
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "copying %s to %s: %s", src, tmp,
                 local->message);
  close (in);
  close (out);
  return banger_rename_into_place (tmp, dest, ok, error);
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

  if (!banger_ensure_dir (d->dir, &error) || !copy_file (d->rootfs, dest, &error)) {
    banger_remove_tree_or_warn (d->dir);
    g_task_return_error (task, error);
    return;
  }
  g_task_return_boolean (task, TRUE);
}

void
banger_image_list_register_image_async (BangerImageList *self, const char *name, const char *rootfs,
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
  existing = banger_store_image_get_by_name (banger_image_list_get_store (self), name, NULL);
  if (existing != NULL) {
    g_task_return_new_error (task, BANGER_ERROR, BANGER_ERROR_EXISTS,
                             "an image called “%s” already exists", name);
    return;
  }
  if (kernel != NULL && *kernel != '\0'
      && !banger_image_list_check_vm_assets (self, NULL, kernel, &error)) {
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
banger_image_list_register_image_finish (BangerImageList *self, GAsyncResult *result,
                                         GError **error)
{
  RegisterData *d = g_task_get_task_data (G_TASK (result));
  g_autofree char *dest = g_build_filename (d->dir, ROOTFS_NAME, NULL);

  if (!g_task_propagate_boolean (G_TASK (result), error))
    return NULL;
  if (!banger_image_list_add_image (self, d->rec, dest, error)) {
    banger_remove_tree_or_warn (d->dir);
    return NULL;
  }
  return banger_image_record_copy (d->rec);
}

gboolean
banger_image_list_check_vm_assets (BangerImageList *self, const char *image, const char *kernel,
                                   GError **error)
{
  if (image != NULL && *image != '\0'
      && g_strcmp0 (image, banger_config_get_default_image (self->config)) != 0) {
    g_autoptr (BangerImageRecord) rec = banger_store_image_get_by_name (self->store, image, error);
    if (rec == NULL)
      return FALSE;
  }
  return banger_kernel_list_check_known (self->kernels, kernel, error);
}
