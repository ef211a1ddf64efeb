/* Each VMM in its own transient scope of the user's systemd instance, so
 * the VMM is not a process of bangerd.service: stopping, restarting or
 * updating bangerd does not reach it, `systemctl --user status
 * banger-vm-<name>.scope` shows it, and with linger it survives logout.
 * Without a user manager on the session bus (the tests' private buses, a
 * host without systemd) nothing is done: the VMM stays where QEMU's
 * -daemonize left it, in its own session. Failure is logged, never fatal:
 * the VM runs either way (docs/vm-runtime.md). */

#include "vmm.h"

#include "bus-name.h"

#define SYSTEMD_NAME "org.freedesktop.systemd1"
#define SCOPE_TIMEOUT_MS 5000

static gboolean
start_scope (GDBusConnection *bus, const char *unit, const char *vm_name, guint pid,
             GError **error)
{
  g_auto (GVariantBuilder) props = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE ("a(sv)"));
  g_autofree char *description = g_strdup_printf ("banger VM %s", vm_name);
  g_autoptr (GVariant) reply = NULL;
  guint32 pids[] = { pid };

  g_variant_builder_add (&props, "(sv)", "Description", g_variant_new_string (description));
  g_variant_builder_add (&props, "(sv)", "PIDs",
                         g_variant_new_fixed_array (G_VARIANT_TYPE_UINT32, pids, 1,
                                                    sizeof (guint32)));
  /* Gone from the manager as soon as the VMM exits, failed or not. */
  g_variant_builder_add (&props, "(sv)", "CollectMode",
                         g_variant_new_string ("inactive-or-failed"));
  reply = g_dbus_connection_call_sync (
      bus, SYSTEMD_NAME, "/org/freedesktop/systemd1", "org.freedesktop.systemd1.Manager",
      "StartTransientUnit",
      g_variant_new ("(ssa(sv)a(sa(sv)))", unit, "fail", &props, NULL),
      G_VARIANT_TYPE ("(o)"), G_DBUS_CALL_FLAGS_NO_AUTO_START, SCOPE_TIMEOUT_MS, NULL, error);
  return reply != NULL;
}

char *
banger_vmm_move_to_scope (const char *vm_name, guint pid)
{
  g_autoptr (GDBusConnection) bus = g_bus_get_sync (G_BUS_TYPE_SESSION, NULL, NULL);
  g_autofree char *unit = NULL;
  g_autoptr (GError) error = NULL;

  if (bus == NULL || pid == 0 || !banger_bus_name_has_owner (bus, SYSTEMD_NAME, SCOPE_TIMEOUT_MS, NULL, NULL))
    return NULL;
  unit = g_strdup_printf ("banger-vm-%s.scope", vm_name);
  if (!start_scope (bus, unit, vm_name, pid, &error)) {
    /* The previous VMM's scope of the same VM can still be winding down
     * (a quick restart): a name of its own for this one. */
    g_clear_error (&error);
    g_free (unit);
    unit = g_strdup_printf ("banger-vm-%s-%u.scope", vm_name, pid);
    if (!start_scope (bus, unit, vm_name, pid, &error)) {
      g_dbus_error_strip_remote_error (error);
      g_message ("VMM %u of VM %s stays in bangerd's cgroup: no scope (%s)", pid, vm_name,
                 error->message);
      return NULL;
    }
  }
  g_debug ("VMM %u of VM %s runs in %s", pid, vm_name, unit);
  return g_steal_pointer (&unit);
}
