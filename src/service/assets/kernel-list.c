/* BangerKernelList: the engine's kernels, their files under
 * <data>/kernels/<id>/, imports and deletion (kernel-list.h); pulls from
 * the remote catalog index are kernel-pull.c. */
#include "kernel-list.h"

#include <errno.h>
#include <glib/gstdio.h>

#include "banger-error.h"
#include "guest-agent.h"
#include "initramfs.h"
#include "kernel-file.h"
#include "kernel-unpack.h"
#include "main-call.h"
#include "paths.h"
#include "remove-tree.h"
#include "validate.h"

struct _BangerKernelList {
  GObject parent_instance;
  BangerConfig *config;
  BangerStore *store; /* the engine's, which outlives us */
  GMainContext *context;
  BangerJobList *jobs;
};

G_DEFINE_TYPE (BangerKernelList, banger_kernel_list, G_TYPE_OBJECT)

enum { SIGNAL_KERNEL_ADDED, SIGNAL_KERNEL_REMOVED, SIGNAL_LAST };
static guint signals[SIGNAL_LAST];

static void
banger_kernel_list_finalize (GObject *object)
{
  BangerKernelList *self = BANGER_KERNEL_LIST (object);

  g_object_unref (self->jobs);
  g_main_context_unref (self->context);
  banger_config_unref (self->config);
  G_OBJECT_CLASS (banger_kernel_list_parent_class)->finalize (object);
}

static void
banger_kernel_list_class_init (BangerKernelListClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GType t = G_TYPE_FROM_CLASS (klass);

  object_class->finalize = banger_kernel_list_finalize;
  signals[SIGNAL_KERNEL_ADDED] = g_signal_new ("kernel-added", t, G_SIGNAL_RUN_LAST, 0, NULL, NULL,
                                               NULL, G_TYPE_NONE, 1, G_TYPE_POINTER);
  signals[SIGNAL_KERNEL_REMOVED] = g_signal_new ("kernel-removed", t, G_SIGNAL_RUN_LAST, 0, NULL,
                                                 NULL, NULL, G_TYPE_NONE, 1, G_TYPE_STRING);
}

static void
banger_kernel_list_init (BangerKernelList *self)
{
}

BangerKernelList *
banger_kernel_list_new (BangerConfig *config, BangerStore *store, BangerJobList *jobs)
{
  BangerKernelList *self = g_object_new (BANGER_TYPE_KERNEL_LIST, NULL);

  self->jobs = g_object_ref (jobs);
  self->config = banger_config_ref (config);
  self->store = store;
  self->context = g_main_context_ref_thread_default ();
  return self;
}

BangerConfig *
banger_kernel_list_get_config (BangerKernelList *self)
{
  return self->config;
}

BangerStore *
banger_kernel_list_get_store (BangerKernelList *self)
{
  return self->store;
}

BangerJobList *
banger_kernel_list_get_jobs (BangerKernelList *self)
{
  return self->jobs;
}

gpointer
banger_kernel_list_call_main (BangerKernelList *self, BangerKernelListMainFunc func, gpointer data,
                              GError **error)
{
  return banger_main_call (self->context, (BangerMainCallFunc)func, self, data, error);
}

static char *
kernels_dir (BangerKernelList *self)
{
  return g_build_filename (banger_config_get_data_dir (self->config), "kernels", NULL);
}

/* Where distribution kernels keep their modules; overridable so a test can
 * point at a tree of its own. */
static const char *
modules_root (void)
{
  const char *env = g_getenv ("BANGER_MODULES_DIR");
  return env && *env ? env : "/lib/modules";
}

GPtrArray *
banger_kernel_list_get_all (BangerKernelList *self, GError **error)
{
  return banger_store_kernel_list (self->store, error);
}

BangerKernelRecord *
banger_kernel_list_find (BangerKernelList *self, const char *name, GError **error)
{
  if (!banger_validate_name ("kernel", name, error))
    return NULL;
  return banger_store_kernel_get_by_name (self->store, name, error);
}

gboolean
banger_kernel_list_delete (BangerKernelList *self, const char *name, gboolean force, GError **error)
{
  g_autoptr (BangerKernelRecord) rec = banger_kernel_list_find (self, name, error);
  g_autoptr (GStrvBuilder) users = g_strv_builder_new ();
  g_auto (GStrv) images = NULL;
  g_auto (GStrv) vms = NULL;
  g_auto (GStrv) list = NULL;
  g_autofree char *base = NULL;
  g_autofree char *dir = NULL;

  if (rec == NULL)
    return FALSE;
  images = banger_store_image_names_using_kernel (self->store, name, error);
  if (images == NULL)
    return FALSE;
  vms = banger_store_vm_names_using_kernel (self->store, name, error);
  if (vms == NULL)
    return FALSE;
  for (guint i = 0; images[i] != NULL; i++) {
    g_autofree char *s = g_strdup_printf ("image %s", images[i]);
    g_strv_builder_add (users, s);
  }
  for (guint i = 0; vms[i] != NULL; i++) {
    g_autofree char *s = g_strdup_printf ("VM %s", vms[i]);
    g_strv_builder_add (users, s);
  }
  list = g_strv_builder_end (users);
  if (list[0] != NULL && !force) {
    g_autofree char *joined = g_strjoinv (", ", list);
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_BUSY,
                 "kernel “%s” is used by %s; remove them first or use “force”", name, joined);
    return FALSE;
  }
  if (!banger_store_kernel_delete (self->store, name, error))
    return FALSE;
  base = kernels_dir (self);
  dir = g_build_filename (base, rec->id, NULL);
  banger_remove_tree_or_warn (dir);
  g_info ("deleted kernel %s (id %s)", name, rec->id);
  g_signal_emit (self, signals[SIGNAL_KERNEL_REMOVED], 0, name);
  return TRUE;
}

gboolean
banger_kernel_list_check_free (BangerKernelList *self, const char *name, const char *hint,
                               GError **error)
{
  g_autoptr (GError) lookup_error = NULL;
  g_autoptr (BangerKernelRecord) existing
      = banger_store_kernel_get_by_name (self->store, name, &lookup_error);

  if (existing != NULL) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_EXISTS,
                 "a kernel called “%s” already exists%s%s", name, hint != NULL ? " " : "",
                 hint != NULL ? hint : "");
    return FALSE;
  }
  if (!g_error_matches (lookup_error, BANGER_ERROR, BANGER_ERROR_NOT_FOUND)) {
    g_propagate_error (error, g_steal_pointer (&lookup_error));
    return FALSE;
  }
  return TRUE;
}

gboolean
banger_kernel_list_check_known (BangerKernelList *self, const char *name, GError **error)
{
  g_autoptr (BangerKernelRecord) rec = NULL;

  if (name == NULL || *name == '\0'
      || g_strcmp0 (name, banger_config_get_default_kernel (self->config)) == 0)
    return TRUE;
  rec = banger_store_kernel_get_by_name (self->store, name, error);
  return rec != NULL;
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
check_free_main (BangerKernelList *self, gpointer data, GError **error)
{
  return GINT_TO_POINTER (banger_kernel_list_check_free (self, data, NULL, error));
}

static gpointer
insert_main (BangerKernelList *self, gpointer data, GError **error)
{
  BangerKernelRecord *rec = data;

  if (!banger_store_kernel_insert (self->store, rec, error))
    return NULL;
  g_info ("registered kernel %s (id %s, %s, %s)", rec->name, rec->id, rec->version, rec->source);
  g_signal_emit (self, signals[SIGNAL_KERNEL_ADDED], 0, rec);
  return GINT_TO_POINTER (1);
}

BangerKernelRecord *
banger_kernel_list_prepare (BangerKernelList *self, const char *path, const char *name,
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
  if (banger_kernel_list_call_main (self, check_free_main, chosen, error) == NULL)
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
  base = kernels_dir (self);
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
                                 banger_guest_agent_path (), rec->initrd_path, error)) {
      g_prefix_error (error, "cannot write the initramfs for %s: ", release);
      goto fail;
    }
  }
  rec->created_at = g_get_real_time () / G_USEC_PER_SEC;
  return g_steal_pointer (&rec);

fail:
  banger_remove_tree_or_warn (dir);
  return NULL;
}

char *
banger_kernel_list_dir (BangerKernelList *self, const BangerKernelRecord *rec)
{
  g_autofree char *base = kernels_dir (self);
  return g_build_filename (base, rec->id, NULL);
}

gboolean
banger_kernel_list_insert (BangerKernelList *self, const BangerKernelRecord *rec, GError **error)
{
  return insert_main (self, (gpointer)rec, error) != NULL;
}

BangerKernelRecord *
banger_kernel_list_import (BangerKernelList *self, const char *path, const char *name,
                           const char *initrd, const char *source, GCancellable *cancellable,
                           GError **error)
{
  g_autoptr (BangerKernelRecord) rec
      = banger_kernel_list_prepare (self, path, name, initrd, source, cancellable, error);

  if (rec == NULL)
    return NULL;
  if (banger_kernel_list_call_main (self, insert_main, rec, error) == NULL) {
    g_autofree char *dir = banger_kernel_list_dir (self, rec);
    banger_remove_tree_or_warn (dir);
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
  BangerKernelRecord *rec = banger_kernel_list_import (
      BANGER_KERNEL_LIST (source), d->path, d->name, d->initrd, NULL, cancellable, &error);
  if (rec == NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, rec, (GDestroyNotify)banger_kernel_record_free);
}

void
banger_kernel_list_import_async (BangerKernelList *self, const char *path, const char *name,
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
banger_kernel_list_import_finish (BangerKernelList *self, GAsyncResult *result, GError **error)
{
  return g_task_propagate_pointer (G_TASK (result), error);
}
