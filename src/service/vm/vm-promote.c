#include "vm-promote.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <unistd.h>

#include "banger-error.h"
#include "validate.h"
#include "vmm.h"

/* One promote to a name at a time. */
#define PROMOTE_JOBS    "promote"
#define QEMU_IMG        "qemu-img"
#define EXT4_MAGIC_OFFS 1080

typedef struct {
  char *vm;
  char *disk;   /* the VM's disk */
  char *format; /* "qcow2" or "raw": never probed, always said */
  char *kernel;
  char *config;
} PromoteData;

static void
promote_data_free (PromoteData *d)
{
  g_free (d->vm);
  g_free (d->disk);
  g_free (d->format);
  g_free (d->kernel);
  g_free (d->config);
  g_free (d);
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

static gboolean
promote_make (BangerEngineJob *job, gpointer data, const char *rootfs, BangerImageRecord *rec,
              GCancellable *cancellable, GError **error)
{
  PromoteData *d = data;
  g_autoptr (GSubprocess) proc = NULL;
  g_autoptr (GError) local = NULL;
  g_autofree char *err_text = NULL;
  g_autofree char *tmp = g_strconcat (rootfs, ".promote", NULL);

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
    return FALSE;
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
    return FALSE;
  }
  if (!g_subprocess_get_if_exited (proc) || g_subprocess_get_exit_status (proc) != 0) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "flattening %s failed: %s", d->disk,
                 err_text && *err_text ? g_strstrip (err_text) : "(no message)");
    return FALSE;
  }
  if (!is_ext4 (tmp)) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
                 "the disk of VM “%s” does not hold an ext4 file system", d->vm);
    return FALSE;
  }
  if (g_rename (tmp, rootfs) < 0) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "cannot create %s: %s", rootfs,
                 g_strerror (errno));
    return FALSE;
  }
  g_free (rec->source);
  rec->source = g_strconcat ("vm:", d->vm, NULL);
  g_free (rec->kernel);
  rec->kernel = g_strdup (d->kernel);
  g_free (rec->config);
  rec->config = g_strdup (d->config);
  banger_engine_job_update (job, 1, 0, 0, "registering the image");
  return TRUE;
}

/* The VM's disk and its format, or BadState naming why there is none. */
static gboolean
find_disk (BangerImageList *self, const BangerVmRecord *vm, char **disk, char **format,
           GError **error)
{
  const char *data_dir = banger_image_list_get_data_dir (self);
  g_autofree char *vm_dir = g_build_filename (data_dir, "vms", vm->id, NULL);
  /* The driver names the VM's disk and its format (vmm.h). */
  const BangerVmmDriver *driver = banger_vmm_driver_for_record (vm->driver);
  BangerVmmInstance inst = { 0 };

  driver->instance_paths (vm_dir, &inst);
  if (inst.disk_path != NULL && g_file_test (inst.disk_path, G_FILE_TEST_IS_REGULAR)) {
    *disk = g_strdup (inst.disk_path);
    *format = g_strdup (driver->disk_format);
    banger_vmm_instance_clear (&inst);
    return TRUE;
  }
  g_set_error (error, BANGER_ERROR, BANGER_ERROR_BAD_STATE,
               "VM “%s” is %s but has no disk of its own (%s) to promote", vm->name, vm->state,
               inst.disk_path != NULL ? inst.disk_path : vm_dir);
  banger_vmm_instance_clear (&inst);
  return FALSE;
}

BangerEngineJob *
banger_image_list_promote_vm (BangerImageList *self, const char *vm_name, const char *name, guint uid,
                           GError **error)
{
  g_autoptr (BangerVmRecord) vm = NULL;
  g_autoptr (BangerImageRecord) base = NULL;
  g_autoptr (BangerEngineJob) job = NULL;
  g_autofree char *disk = NULL;
  g_autofree char *format = NULL;
  PromoteData *d;

  if (!banger_validate_name ("VM", vm_name, error))
    return NULL;
  vm = banger_store_vm_get_by_name (banger_image_list_get_store (self), vm_name, error);
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
  if (banger_image_list_find_job (self, PROMOTE_JOBS, name) != NULL) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_BUSY, "image “%s” is being promoted already",
                 name);
    return NULL;
  }
  if (!banger_image_list_check_image_free (self, name, NULL, error))
    return NULL;
  if (!find_disk (self, vm, &disk, &format, error))
    return NULL;

  d = g_new0 (PromoteData, 1);
  d->vm = g_strdup (vm->name);
  d->disk = g_steal_pointer (&disk);
  d->format = g_steal_pointer (&format);
  d->kernel = g_strdup (vm->kernel);
  /* The new image runs what the VM's image ran (entrypoint, cmd, sshd). */
  base = banger_store_image_get_by_name (banger_image_list_get_store (self), vm->image, NULL);
  d->config = g_strdup (base ? base->config : "{}");

  job = banger_engine_job_new ("promote-vm", vm->name, uid);
  g_info ("promoting VM %s (%s disk) to image %s (job %u)", vm->name, d->format, name,
          banger_engine_job_get_number (job));
  banger_image_list_start_image_job (self, job, PROMOTE_JOBS, name, name, promote_make, d,
                                  (GDestroyNotify)promote_data_free);
  return g_steal_pointer (&job);
}
