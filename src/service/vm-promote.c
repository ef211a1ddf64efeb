#define G_LOG_DOMAIN "bangerd-images"

#include "vm-promote.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "banger-error.h"
#include "paths.h"
#include "validate.h"

#define PROMOTES_KEY    "banger-promotes"
#define QEMU_IMG        "qemu-img"
#define EXT4_MAGIC_OFFS 1080

typedef struct {
  char *vm;
  char *name;
  char *id;
  char *dir;    /* <data>/images/<id> */
  char *disk;   /* the VM's disk */
  char *format; /* "qcow2" or "raw": never probed, always said */
  char *kernel;
  char *config;
} PromoteData;

static void
promote_data_free (PromoteData *d)
{
  g_free (d->vm);
  g_free (d->name);
  g_free (d->id);
  g_free (d->dir);
  g_free (d->disk);
  g_free (d->format);
  g_free (d->kernel);
  g_free (d->config);
  g_free (d);
}

typedef struct {
  char *dir;
  char *rootfs;
  gboolean claimed;
} PromoteResult;

static void
promote_result_free (PromoteResult *r)
{
  if (!r->claimed)
    banger_catalog_remove_dir (r->dir);
  g_free (r->dir);
  g_free (r->rootfs);
  g_free (r);
}

static GHashTable *
running_promotes (BangerCatalog *self)
{
  GHashTable *t = g_object_get_data (G_OBJECT (self), PROMOTES_KEY);
  if (t == NULL) {
    t = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_object_unref);
    g_object_set_data_full (G_OBJECT (self), PROMOTES_KEY, t, (GDestroyNotify)g_hash_table_unref);
  }
  return t;
}

static gboolean
is_ext4 (const char *path)
{
  guint8 magic[2] = { 0 };
  int fd = open (path, O_RDONLY | O_CLOEXEC);
  gboolean ok;

  if (fd < 0)
    return FALSE;
  ok = pread (fd, magic, sizeof magic, EXT4_MAGIC_OFFS) == sizeof magic && magic[0] == 0x53
       && magic[1] == 0xef;
  close (fd);
  return ok;
}

static gpointer
promote_thread (BangerEngineJob *job, gpointer data, GCancellable *cancellable, GError **error)
{
  PromoteData *d = data;
  g_autoptr (GSubprocess) proc = NULL;
  g_autoptr (GError) local = NULL;
  g_autofree char *err_text = NULL;
  g_autofree char *tmp = NULL;
  PromoteResult *r = g_new0 (PromoteResult, 1);

  r->dir = g_strdup (d->dir);
  r->rootfs = g_build_filename (d->dir, "rootfs.ext4", NULL);
  tmp = g_build_filename (d->dir, "rootfs.ext4.promote", NULL);
  if (!banger_ensure_dir (d->dir, error))
    goto fail;
  banger_engine_job_update (job, 0, 0, 0, "flattening the VM's disk");
  {
    /* The source format is given, never probed: a raw disk whose guest
     * wrote a qcow2 header must not be read as qcow2. qemu-img takes a
     * shared lock on the disk, so a VMM started meanwhile cannot get its
     * write lock and fails instead of changing what is being copied. */
    const char *argv[] = { QEMU_IMG, "convert", "-f", d->format, "-O", "raw", d->disk, tmp, NULL };
    proc = g_subprocess_newv (
        argv, G_SUBPROCESS_FLAGS_STDOUT_SILENCE | G_SUBPROCESS_FLAGS_STDERR_PIPE, &local);
  }
  if (proc == NULL) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "cannot run %s: %s", QEMU_IMG,
                 local->message);
    goto fail;
  }
  if (!g_subprocess_communicate_utf8 (proc, NULL, cancellable, NULL, &err_text, &local)) {
    g_subprocess_force_exit (proc);
    g_subprocess_wait (proc, NULL, NULL);
    if (g_error_matches (local, G_IO_ERROR, G_IO_ERROR_CANCELLED))
      g_set_error (error, BANGER_ERROR, BANGER_ERROR_CANCELLED, "promoting VM “%s” was cancelled",
                   d->vm);
    else
      g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "flattening %s: %s", d->disk,
                   local->message);
    goto fail;
  }
  if (!g_subprocess_get_if_exited (proc) || g_subprocess_get_exit_status (proc) != 0) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "flattening %s failed: %s", d->disk,
                 err_text && *err_text ? g_strstrip (err_text) : "(no message)");
    goto fail;
  }
  if (!is_ext4 (tmp)) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
                 "the disk of VM “%s” does not hold an ext4 file system", d->vm);
    goto fail;
  }
  if (g_rename (tmp, r->rootfs) < 0) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "cannot create %s: %s", r->rootfs,
                 g_strerror (errno));
    goto fail;
  }
  banger_engine_job_update (job, 1, 0, 0, "registering the image");
  return r;
fail:
  promote_result_free (r);
  return NULL;
}

static gboolean
promote_finish (BangerEngineJob *job, gpointer result, gpointer data, GError **error)
{
  PromoteResult *r = result;
  PromoteData *d = data;
  BangerCatalog *self = g_object_get_data (G_OBJECT (job), "banger-catalog");
  g_autoptr (BangerImageRecord) rec = banger_image_record_new ();
  GStatBuf st;

  g_free (rec->id);
  rec->id = g_strdup (d->id);
  g_free (rec->name);
  rec->name = g_strdup (d->name);
  g_free (rec->source);
  rec->source = g_strconcat ("vm:", d->vm, NULL);
  g_free (rec->kernel);
  rec->kernel = g_strdup (d->kernel);
  g_free (rec->config);
  rec->config = g_strdup (d->config);
  rec->size_bytes = g_stat (r->rootfs, &st) == 0 ? (guint64)st.st_size : 0;
  rec->created_at = g_get_real_time () / G_USEC_PER_SEC;
  if (!banger_store_image_insert (banger_catalog_get_store (self), rec, error))
    return FALSE;
  g_info ("promoted VM %s to image %s (id %s)", d->vm, rec->name, rec->id);
  r->claimed = TRUE;
  g_signal_emit_by_name (self, "image-added", rec);
  banger_engine_job_set_result (job, "image", rec->name);
  return TRUE;
}

static void
promote_completed_cb (BangerEngineJob *job, gboolean success, const char *message,
                      gpointer user_data)
{
  BangerCatalog *self = BANGER_CATALOG (user_data);
  const char *key = g_object_get_data (G_OBJECT (job), "banger-promote-key");
  GHashTable *t = running_promotes (self);

  if (g_hash_table_lookup (t, key) == job)
    g_hash_table_remove (t, key);
}

/* The VM's disk and its format, or BadState naming why there is none. */
static gboolean
find_disk (BangerCatalog *self, const BangerVmRecord *vm, char **disk, char **format,
           GError **error)
{
  const char *data_dir = banger_engine_get_data_dir (banger_catalog_get_engine (self));
  g_autofree char *qcow2 = g_build_filename (data_dir, "vms", vm->id, "disk.qcow2", NULL);
  g_autofree char *raw = g_build_filename (data_dir, "vms", vm->id, "disk.raw", NULL);

  if (g_file_test (qcow2, G_FILE_TEST_IS_REGULAR)) {
    *disk = g_steal_pointer (&qcow2);
    *format = g_strdup ("qcow2");
    return TRUE;
  }
  if (g_file_test (raw, G_FILE_TEST_IS_REGULAR)) {
    *disk = g_steal_pointer (&raw);
    *format = g_strdup ("raw");
    return TRUE;
  }
  g_set_error (error, BANGER_ERROR, BANGER_ERROR_BAD_STATE,
               "VM “%s” is %s but has no disk of its own (%s) to promote", vm->name, vm->state,
               qcow2);
  return FALSE;
}

BangerEngineJob *
banger_catalog_promote_vm (BangerCatalog *self, const char *vm_name, const char *name, guint uid,
                           GError **error)
{
  g_autoptr (BangerVmRecord) vm = NULL;
  g_autoptr (BangerImageRecord) existing = NULL;
  g_autoptr (BangerImageRecord) base = NULL;
  g_autoptr (GError) lookup_error = NULL;
  g_autoptr (BangerEngineJob) job = NULL;
  g_autofree char *disk = NULL;
  g_autofree char *format = NULL;
  PromoteData *d;

  vm = banger_engine_find_vm (banger_catalog_get_engine (self), vm_name, error);
  if (vm == NULL)
    return NULL;
  if (g_str_equal (vm->state, "created")) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_BAD_STATE,
                 "VM “%s” is created and was never started: it has no disk to promote yet",
                 vm->name);
    return NULL;
  }
  if (!g_str_equal (vm->state, "stopped") && !g_str_equal (vm->state, "error")) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_BAD_STATE,
                 "VM “%s” is %s; stop it before promoting its disk", vm->name, vm->state);
    return NULL;
  }
  if (!banger_validate_name ("image", name, error))
    return NULL;
  if (g_hash_table_contains (running_promotes (self), name)) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_BUSY, "image “%s” is being promoted already",
                 name);
    return NULL;
  }
  existing = banger_store_image_get_by_name (banger_catalog_get_store (self), name, &lookup_error);
  if (existing != NULL) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_EXISTS, "an image called “%s” already exists",
                 name);
    return NULL;
  }
  if (!g_error_matches (lookup_error, BANGER_ERROR, BANGER_ERROR_NOT_FOUND)) {
    g_propagate_error (error, g_steal_pointer (&lookup_error));
    return NULL;
  }
  if (!find_disk (self, vm, &disk, &format, error))
    return NULL;

  d = g_new0 (PromoteData, 1);
  d->vm = g_strdup (vm->name);
  d->name = g_strdup (name);
  d->id = banger_vm_id_new ();
  d->dir = g_build_filename (banger_engine_get_data_dir (banger_catalog_get_engine (self)),
                             "images", d->id, NULL);
  d->disk = g_steal_pointer (&disk);
  d->format = g_steal_pointer (&format);
  d->kernel = g_strdup (vm->kernel);
  /* The new image runs what the VM's image ran (entrypoint, cmd, sshd). */
  base = banger_store_image_get_by_name (banger_catalog_get_store (self), vm->image, NULL);
  d->config = g_strdup (base ? base->config : "{}");

  job = banger_engine_job_new ("promote-vm", vm->name, uid);
  g_object_set_data (G_OBJECT (job), "banger-catalog", self);
  g_object_set_data_full (G_OBJECT (job), "banger-promote-key", g_strdup (name), g_free);
  g_hash_table_insert (running_promotes (self), g_strdup (name), g_object_ref (job));
  g_signal_connect_object (job, "completed", G_CALLBACK (promote_completed_cb), self, 0);
  g_info ("promoting VM %s (%s disk) to image %s (job %u)", vm->name, d->format, name,
          banger_engine_job_get_number (job));
  g_signal_emit_by_name (self, "job-added", job);
  banger_engine_job_start (job, promote_thread, promote_finish, d,
                           (GDestroyNotify)promote_data_free, (GDestroyNotify)promote_result_free);
  return g_steal_pointer (&job);
}
