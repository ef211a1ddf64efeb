/* The org.banger.Kernel objects and the Manager's ImportKernel and
 * DeleteKernel (dbus-kernel.h), over the engine's kernel list. */
#include "dbus-kernel.h"

#include "banger-error.h"
#include "dbus-common.h"
#include "kernel-list.h"
#include "validate.h"

#define KERNELS_PATH "/org/banger/Manager/kernels"

char *
banger_dbus_kernel_object_path (const char *name)
{
  g_autofree char *escaped = g_dbus_escape_object_path (name);
  return g_strconcat (KERNELS_PATH "/", escaped, NULL);
}

static void
add_kernel_object (GDBusObjectManagerServer *om, const BangerKernelRecord *rec)
{
  g_autofree char *path = banger_dbus_kernel_object_path (rec->name);
  g_autoptr (BangerObjectSkeleton) object = banger_object_skeleton_new (path);
  g_autoptr (BangerKernel) iface = banger_kernel_skeleton_new ();

  banger_object_skeleton_set_kernel (object, iface);
  banger_kernel_set_name (iface, rec->name);
  banger_kernel_set_id (iface, rec->id);
  banger_kernel_set_version (iface, rec->version);
  banger_kernel_set_source (iface, rec->source);
  banger_kernel_set_path (iface, rec->path);
  banger_kernel_set_vmlinux_path (iface, rec->vmlinux_path);
  banger_kernel_set_initrd_path (iface, rec->initrd_path);
  banger_kernel_set_created_at (iface, (guint64)MAX (rec->created_at, 0));
  g_dbus_object_manager_server_export (om, G_DBUS_OBJECT_SKELETON (object));
}

static void
kernel_added_cb (BangerKernelList *kernels, const BangerKernelRecord *rec,
                 GDBusObjectManagerServer *om)
{
  add_kernel_object (om, rec);
}

static void
kernel_removed_cb (BangerKernelList *kernels, const char *name, GDBusObjectManagerServer *om)
{
  g_autofree char *path = banger_dbus_kernel_object_path (name);
  g_dbus_object_manager_server_unexport (om, path);
}

static void
import_done_cb (GObject *source, GAsyncResult *res, gpointer user_data)
{
  GDBusMethodInvocation *invocation = user_data;
  g_autoptr (GError) error = NULL;
  g_autoptr (BangerKernelRecord) rec
      = banger_kernel_list_import_finish (BANGER_KERNEL_LIST (source), res, &error);
  g_autofree char *path = NULL;

  if (rec == NULL) {
    banger_invocation_return_error (invocation, g_steal_pointer (&error));
    return;
  }
  path = banger_dbus_kernel_object_path (rec->name);
  banger_manager_complete_import_kernel (
      g_object_get_data (G_OBJECT (invocation), "banger-skeleton"), invocation, path);
}

static gboolean
handle_import_kernel (BangerManager *skeleton, GDBusMethodInvocation *invocation, const char *path,
                      GVariant *options, BangerKernelList *kernels)
{
  static const char *const allowed[] = { "name", "s", "initrd", "s", NULL };
  g_autofree char *name = NULL;
  g_autofree char *initrd = NULL;

  if (!banger_dbus_check_options (invocation, options, allowed))
    return G_DBUS_METHOD_INVOCATION_HANDLED;
  g_variant_lookup (options, "name", "s", &name);
  g_variant_lookup (options, "initrd", "s", &initrd);
  g_object_set_data_full (G_OBJECT (invocation), "banger-skeleton", g_object_ref (skeleton),
                          g_object_unref);
  banger_kernel_list_import_async (kernels, path, name, initrd, NULL, import_done_cb, invocation);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
handle_delete_kernel (BangerManager *skeleton, GDBusMethodInvocation *invocation, const char *name,
                      GVariant *options, BangerKernelList *kernels)
{
  g_autoptr (GError) error = NULL;
  gboolean force;

  if (!banger_dbus_delete_options (invocation, options, &force))
    return G_DBUS_METHOD_INVOCATION_HANDLED;
  if (!banger_kernel_list_delete (kernels, name, force, &error))
    banger_invocation_return_error (invocation, g_steal_pointer (&error));
  else
    banger_manager_complete_delete_kernel (skeleton, invocation);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

void
banger_dbus_kernels_attach (BangerManager *skeleton, GDBusObjectManagerServer *om,
                            BangerEngine *engine)
{
  BangerKernelList *kernels = engine->kernels;
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) all = banger_kernel_list_get_all (kernels, &error);

  if (all == NULL)
    g_warning ("cannot list kernels: %s", error->message);
  for (guint i = 0; all != NULL && i < all->len; i++)
    add_kernel_object (om, g_ptr_array_index (all, i));
  g_signal_connect_object (kernels, "kernel-added", G_CALLBACK (kernel_added_cb), om, 0);
  g_signal_connect_object (kernels, "kernel-removed", G_CALLBACK (kernel_removed_cb), om, 0);
  g_signal_connect_object (skeleton, "handle-import-kernel", G_CALLBACK (handle_import_kernel),
                           kernels, 0);
  g_signal_connect_object (skeleton, "handle-delete-kernel", G_CALLBACK (handle_delete_kernel),
                           kernels, 0);
}
