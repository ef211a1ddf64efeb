#include "kernel-list.h"

#include <errno.h>
#include <glib/gstdio.h>

#include "banger-error.h"
#include "boot-assets.h"
#include "initramfs.h"
#include "kernel-file.h"
#include "kernel-unpack.h"
#include "paths.h"
#include "validate.h"

/* Where distribution kernels keep their modules; overridable so a test can
 * point at a tree of its own. */
static const char *
modules_root (void)
{
  const char *env = g_getenv ("BANGER_MODULES_DIR");
  return env && *env ? env : "/lib/modules";
}

GPtrArray *
banger_image_list_list_kernels (BangerImageList *self, GError **error)
{
  return banger_store_kernel_list (banger_image_list_get_store (self), error);
}

BangerKernelRecord *
banger_image_list_find_kernel (BangerImageList *self, const char *name, GError **error)
{
  if (!banger_validate_name ("kernel", name, error))
    return NULL;
  return banger_store_kernel_get_by_name (banger_image_list_get_store (self), name, error);
}

gboolean
banger_image_list_delete_kernel (BangerImageList *self, const char *name, gboolean force, GError **error)
{
  g_autoptr (BangerKernelRecord) rec = banger_image_list_find_kernel (self, name, error);
  g_autoptr (GPtrArray) images = NULL;
  g_autoptr (GPtrArray) vms = NULL;
  g_autoptr (GStrvBuilder) users = g_strv_builder_new ();
  g_auto (GStrv) list = NULL;
  g_autofree char *base = NULL;
  g_autofree char *dir = NULL;

  if (rec == NULL)
    return FALSE;
  images = banger_image_list_list_images (self, error);
  if (images == NULL)
    return FALSE;
  vms = banger_store_vm_list (banger_image_list_get_store (self), error);
  if (vms == NULL)
    return FALSE;
  for (guint i = 0; i < images->len; i++) {
    BangerImageRecord *img = g_ptr_array_index (images, i);
    if (g_str_equal (img->kernel, name)) {
      g_autofree char *s = g_strdup_printf ("image %s", img->name);
      g_strv_builder_add (users, s);
    }
  }
  for (guint i = 0; i < vms->len; i++) {
    BangerVmRecord *vm = g_ptr_array_index (vms, i);
    if (g_str_equal (vm->kernel, name)) {
      g_autofree char *s = g_strdup_printf ("VM %s", vm->name);
      g_strv_builder_add (users, s);
    }
  }
  list = g_strv_builder_end (users);
  if (list[0] != NULL && !force) {
    g_autofree char *joined = g_strjoinv (", ", list);
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_BUSY,
                 "kernel “%s” is used by %s; remove them first or use “force”", name, joined);
    return FALSE;
  }
  if (!banger_store_kernel_delete (banger_image_list_get_store (self), name, error))
    return FALSE;
  base = g_build_filename (banger_image_list_get_data_dir (self), "kernels",
                           NULL);
  dir = g_build_filename (base, rec->id, NULL);
  banger_image_list_remove_dir (dir);
  g_info ("deleted kernel %s (id %s)", name, rec->id);
  banger_image_list_emit_kernel_removed (self, name);
  return TRUE;
}

char *
banger_kernel_name_from_release (const char *release)
{
  g_autoptr (GString) s = g_string_new ("linux-");

  for (const char *p = release; p && *p && s->len < BANGER_NAME_MAX; p++) {
    char c = g_ascii_tolower (*p);
    if (g_ascii_isalnum (c))
      g_string_append_c (s, c);
    else if (s->str[s->len - 1] != '-')
      g_string_append_c (s, '-');
  }
  while (s->len > 1 && s->str[s->len - 1] == '-')
    g_string_truncate (s, s->len - 1);
  if (g_str_equal (s->str, "linux"))
    g_string_append (s, "-kernel");
  return g_string_free (g_steal_pointer (&s), FALSE);
}

static gboolean
copy_into (const char *src, const char *dest, GError **error)
{
  g_autoptr (GFile) s = g_file_new_for_path (src);
  g_autoptr (GFile) d = g_file_new_for_path (dest);

  if (!g_file_copy (s, d, G_FILE_COPY_OVERWRITE, NULL, NULL, NULL, error)) {
    g_prefix_error (error, "cannot copy %s: ", src);
    banger_error_convert (error);
    return FALSE;
  }
  return TRUE;
}

static gpointer
check_kernel_free_main (BangerImageList *self, gpointer data, GError **error)
{
  return GINT_TO_POINTER (banger_image_list_check_kernel_free (self, data, NULL, error));
}

static gpointer
insert_kernel_main (BangerImageList *self, gpointer data, GError **error)
{
  BangerKernelRecord *rec = data;

  if (!banger_store_kernel_insert (banger_image_list_get_store (self), rec, error))
    return NULL;
  g_info ("registered kernel %s (id %s, %s, %s)", rec->name, rec->id, rec->version, rec->source);
  banger_image_list_emit_kernel_added (self, rec);
  return GINT_TO_POINTER (1);
}

BangerKernelRecord *
banger_image_list_prepare_kernel (BangerImageList *self, const char *path, const char *name,
                               const char *initrd, const char *source, GCancellable *cancellable,
                               GError **error)
{
  BangerKernelFormat format = BANGER_KERNEL_FORMAT_UNKNOWN;
  g_autofree char *release = NULL;
  g_autofree char *chosen = NULL;
  g_autofree char *base = NULL;
  g_autoptr (BangerKernelRecord) rec = NULL;
  g_autofree char *dir = NULL;

  if (path == NULL || !g_path_is_absolute (path)) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
                 "the kernel must be an absolute path, not “%s”", path ? path : "");
    return NULL;
  }
  if (!g_file_test (path, G_FILE_TEST_IS_REGULAR)) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_NOT_FOUND, "no kernel file %s", path);
    return NULL;
  }
  if (!banger_kernel_file_inspect (path, &format, &release, error))
    return NULL;
  chosen = name && *name ? g_strdup (name) : banger_kernel_name_from_release (release);
  if (!banger_validate_name ("kernel", chosen, error))
    return NULL;
  if (initrd != NULL && *initrd != '\0' && !g_file_test (initrd, G_FILE_TEST_IS_REGULAR)) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_NOT_FOUND, "no initrd file %s", initrd);
    return NULL;
  }
  if (banger_image_list_call_main (self, check_kernel_free_main, chosen, error) == NULL)
    return NULL;

  rec = banger_kernel_record_new ();
  g_free (rec->id);
  rec->id = banger_vm_id_new ();
  g_free (rec->name);
  rec->name = g_strdup (chosen);
  g_free (rec->version);
  rec->version = g_strdup (release ? release : "");
  g_free (rec->source);
  rec->source = source ? g_strdup (source) : g_strconcat ("file:", path, NULL);
  base = g_build_filename (banger_image_list_get_data_dir (self), "kernels",
                           NULL);
  dir = g_build_filename (base, rec->id, NULL);
  if (!banger_ensure_dir (dir, error))
    return NULL;

  g_free (rec->path);
  rec->path
      = g_build_filename (dir, format == BANGER_KERNEL_FORMAT_ELF ? "vmlinux" : "vmlinuz", NULL);
  if (format == BANGER_KERNEL_FORMAT_ELF) {
    g_free (rec->vmlinux_path);
    rec->vmlinux_path = g_strdup (rec->path);
  }
  if (!copy_into (path, rec->path, error))
    goto fail;
  if (g_cancellable_set_error_if_cancelled (cancellable, error))
    goto fail;
  if (format == BANGER_KERNEL_FORMAT_BZIMAGE) {
    /* Firecracker boots only an ELF vmlinux; QEMU boots the bzImage. A
     * payload banger cannot decompress (bzip2, lzma, lzo) still boots under
     * QEMU, so it only costs the vmlinux; a corrupt one fails the import. */
    g_autofree char *vmlinux = g_build_filename (dir, "vmlinux", NULL);
    g_autoptr (GError) unpack_error = NULL;
    if (banger_kernel_unpack_bzimage (rec->path, vmlinux, cancellable, &unpack_error)) {
      g_free (rec->vmlinux_path);
      rec->vmlinux_path = g_steal_pointer (&vmlinux);
    } else if (g_error_matches (unpack_error, BANGER_ERROR, BANGER_ERROR_UNSUPPORTED)) {
      g_warning ("kernel %s: no vmlinux for Firecracker: %s", chosen, unpack_error->message);
    } else {
      g_propagate_error (error, g_steal_pointer (&unpack_error));
      goto fail;
    }
  }

  if (initrd != NULL && *initrd != '\0') {
    g_free (rec->initrd_path);
    rec->initrd_path = g_build_filename (dir, "initrd.img", NULL);
    if (!copy_into (initrd, rec->initrd_path, error))
      goto fail;
  } else if (release != NULL && banger_kernel_needs_initramfs (modules_root (), release)) {
    /* Debian's cloud kernel builds virtio-blk as a module: without an
     * initramfs that loads it, the guest panics looking for its root. */
    g_free (rec->initrd_path);
    rec->initrd_path = g_build_filename (dir, "initramfs.img", NULL);
    if (!banger_initramfs_write (modules_root (), release, BANGER_INITRAMFS_DEFAULT_MODULES,
                                 banger_agent_binary_path (), rec->initrd_path, error)) {
      g_prefix_error (error, "cannot write the initramfs for %s: ", release);
      goto fail;
    }
  }
  rec->created_at = g_get_real_time () / G_USEC_PER_SEC;
  return g_steal_pointer (&rec);

fail:
  banger_image_list_remove_dir (dir);
  return NULL;
}

char *
banger_image_list_kernel_dir (BangerImageList *self, const BangerKernelRecord *rec)
{
  return g_build_filename (banger_image_list_get_data_dir (self), "kernels",
                           rec->id, NULL);
}

gboolean
banger_image_list_insert_kernel (BangerImageList *self, const BangerKernelRecord *rec, GError **error)
{
  return insert_kernel_main (self, (gpointer)rec, error) != NULL;
}

BangerKernelRecord *
banger_image_list_import_kernel (BangerImageList *self, const char *path, const char *name,
                              const char *initrd, const char *source, GCancellable *cancellable,
                              GError **error)
{
  g_autoptr (BangerKernelRecord) rec
      = banger_image_list_prepare_kernel (self, path, name, initrd, source, cancellable, error);

  if (rec == NULL)
    return NULL;
  if (banger_image_list_call_main (self, insert_kernel_main, rec, error) == NULL) {
    g_autofree char *dir = banger_image_list_kernel_dir (self, rec);
    banger_image_list_remove_dir (dir);
    return NULL;
  }
  return g_steal_pointer (&rec);
}

typedef struct {
  char *path, *name, *initrd;
} ImportData;

static void
import_data_free (ImportData *d)
{
  g_free (d->path);
  g_free (d->name);
  g_free (d->initrd);
  g_free (d);
}

static void
import_thread (GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
  ImportData *d = task_data;
  GError *error = NULL;
  BangerKernelRecord *rec = banger_image_list_import_kernel (BANGER_IMAGE_LIST (source), d->path, d->name,
                                                          d->initrd, NULL, cancellable, &error);
  if (rec == NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, rec, (GDestroyNotify)banger_kernel_record_free);
}

void
banger_image_list_import_kernel_async (BangerImageList *self, const char *path, const char *name,
                                    const char *initrd, GCancellable *cancellable,
                                    GAsyncReadyCallback callback, gpointer user_data)
{
  g_autoptr (GTask) task = g_task_new (self, cancellable, callback, user_data);
  ImportData *d = g_new0 (ImportData, 1);

  d->path = g_strdup (path);
  d->name = g_strdup (name);
  d->initrd = g_strdup (initrd);
  g_task_set_task_data (task, d, (GDestroyNotify)import_data_free);
  g_task_run_in_thread (task, import_thread);
}

BangerKernelRecord *
banger_image_list_import_kernel_finish (BangerImageList *self, GAsyncResult *result, GError **error)
{
  return g_task_propagate_pointer (G_TASK (result), error);
}
