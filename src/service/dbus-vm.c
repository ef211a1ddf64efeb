#define G_LOG_DOMAIN "bangerd-dbus"

#include "dbus-vm.h"

#include "banger-error.h"
#include "dbus-unsupported.h"
#include "validate.h"

#define VMS_PATH "/org/banger/Manager/vms"

char *
banger_dbus_vm_object_path (const char *name)
{
  g_autofree char *escaped = g_dbus_escape_object_path (name);
  return g_strconcat (VMS_PATH "/", escaped, NULL);
}

static gboolean
handle_delete (BangerVM *vm, GDBusMethodInvocation *invocation, GVariant *options,
               BangerEngine *engine)
{
  static const char *const allowed[] = { "force", "b", NULL };
  g_autoptr (GError) error = NULL;
  gboolean force = FALSE;
  /* The name is copied: deleting the record unexports this object. */
  g_autofree char *name = banger_vm_dup_name (vm);

  if (!banger_validate_options (options, allowed, &error)) {
    banger_invocation_return_error (invocation, g_steal_pointer (&error));
    return G_DBUS_METHOD_INVOCATION_HANDLED;
  }
  g_variant_lookup (options, "force", "b", &force);
  if (!banger_engine_delete_vm (engine, name, force, &error)) {
    banger_invocation_return_error (invocation, g_steal_pointer (&error));
    return G_DBUS_METHOD_INVOCATION_HANDLED;
  }
  banger_vm_complete_delete (vm, invocation);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

void
banger_dbus_vm_update (BangerObjectSkeleton *object, const BangerVmRecord *rec)
{
  g_autoptr (BangerVM) vm = banger_object_get_vm (BANGER_OBJECT (object));

  g_return_if_fail (vm != NULL);
  banger_vm_set_name (vm, rec->name);
  banger_vm_set_id (vm, rec->id);
  banger_vm_set_state (vm, rec->state);
  banger_vm_set_driver (vm, rec->driver);
  banger_vm_set_image (vm, rec->image);
  banger_vm_set_kernel (vm, rec->kernel);
  banger_vm_set_vcpus (vm, rec->vcpus);
  banger_vm_set_memory_mi_b (vm, rec->memory_mib);
  banger_vm_set_disk_mi_b (vm, rec->disk_mib);
  banger_vm_set_ipv4 (vm, rec->ipv4);
  banger_vm_set_mac (vm, rec->mac);
  banger_vm_set_pid (vm, rec->pid);
  banger_vm_set_created_at (vm, (guint64)MAX (rec->created_at, 0));
  banger_vm_set_started_at (vm, (guint64)MAX (rec->started_at, 0));
  banger_vm_set_agent_version (vm, rec->agent_version);
  banger_vm_set_boot_id (vm, rec->boot_id);
  banger_vm_set_disk_mode (vm, rec->disk_mode);
  banger_vm_set_last_error (vm, rec->last_error);
}

BangerObjectSkeleton *
banger_dbus_vm_new (BangerEngine *engine, const BangerVmRecord *rec)
{
  g_autofree char *path = banger_dbus_vm_object_path (rec->name);
  g_autoptr (BangerObjectSkeleton) object = banger_object_skeleton_new (path);
  g_autoptr (BangerVM) vm = banger_vm_skeleton_new ();

  banger_object_skeleton_set_vm (object, vm);
  banger_dbus_vm_update (object, rec);
  banger_dbus_unsupported_attach (G_DBUS_INTERFACE_SKELETON (vm));
  g_signal_connect (vm, "handle-delete", G_CALLBACK (handle_delete), engine);
  return g_steal_pointer (&object);
}
