#define G_LOG_DOMAIN "banger-cli"

#include "config.h"

#include <glib/gi18n.h>

#include "cli.h"
#include "errors.h"

#define MANAGER_NAME "org.banger.Manager"
#define MANAGER_PATH "/org/banger/Manager"

/* Doctor probes the accelerator and VM creation may copy files: allow
 * more than GDBus's 25 s default before calling bangerd unresponsive. */
#define MANAGER_TIMEOUT_MS (120 * 1000)

BangerManager *
banger_cli_get_manager (BangerCli *cli, GError **error)
{
  g_autoptr (BangerManager) manager = NULL;
  g_autofree char *owner = NULL;

  if (cli->manager != NULL)
    return cli->manager;

  if (cli->session == NULL) {
    cli->session = g_bus_get_sync (G_BUS_TYPE_SESSION, NULL, error);
    if (cli->session == NULL) {
      banger_cli_error_unreachable (error, _ ("bangerd on the session bus"));
      return NULL;
    }
  }

  /* Creating the proxy asks the bus to start bangerd (D-Bus activation)
   * and loads its properties in the same round trip. */
  manager = banger_manager_proxy_new_sync (cli->session, G_DBUS_PROXY_FLAGS_NONE, MANAGER_NAME,
                                           MANAGER_PATH, NULL, error);
  if (manager == NULL) {
    banger_cli_error_unreachable (error, _ ("bangerd on the session bus"));
    return NULL;
  }
  g_dbus_proxy_set_default_timeout (G_DBUS_PROXY (manager), MANAGER_TIMEOUT_MS);

  /* GDBusProxy swallows a failed activation; ask once more with a Ping so
   * the bus's own reason (no .service file, daemon exited) is reported. */
  owner = g_dbus_proxy_get_name_owner (G_DBUS_PROXY (manager));
  if (owner == NULL) {
    g_autoptr (GVariant) reply = NULL;

    reply = g_dbus_connection_call_sync (cli->session, MANAGER_NAME, MANAGER_PATH,
                                         "org.freedesktop.DBus.Peer", "Ping", NULL, NULL,
                                         G_DBUS_CALL_FLAGS_NONE, -1, NULL, error);
    if (reply == NULL) {
      banger_cli_error_annotate (error);
      banger_cli_error_unreachable (error, _ ("bangerd on the session bus"));
      return NULL;
    }
  }
  cli->manager = g_steal_pointer (&manager);
  return cli->manager;
}

static BangerVM *
vm_proxy_new (BangerCli *cli, const char *object_path, GError **error)
{
  BangerVM *vm;

  vm = banger_vm_proxy_new_sync (cli->session, G_DBUS_PROXY_FLAGS_DO_NOT_AUTO_START, MANAGER_NAME,
                                 object_path, NULL, error);
  if (vm != NULL)
    g_dbus_proxy_set_default_timeout (G_DBUS_PROXY (vm), MANAGER_TIMEOUT_MS);
  return vm;
}

BangerVM *
banger_cli_find_vm (BangerCli *cli, const char *name, GError **error)
{
  BangerManager *manager;
  g_autofree char *path = NULL;
  BangerVM *vm;

  manager = banger_cli_get_manager (cli, error);
  if (manager == NULL)
    return NULL;
  if (!banger_manager_call_find_vm_sync (manager, name, &path, NULL, error)) {
    banger_cli_error_annotate_vm (error, name);
    return NULL;
  }
  vm = vm_proxy_new (cli, path, error);
  if (vm == NULL)
    banger_cli_error_annotate_vm (error, name);
  return vm;
}

static int
compare_vms (gconstpointer a, gconstpointer b)
{
  BangerVM *va = *(BangerVM **)a;
  BangerVM *vb = *(BangerVM **)b;
  guint64 ta = banger_vm_get_created_at (va);
  guint64 tb = banger_vm_get_created_at (vb);

  if (ta != tb)
    return ta < tb ? -1 : 1;
  return g_strcmp0 (banger_vm_get_name (va), banger_vm_get_name (vb));
}

GPtrArray *
banger_cli_list_vms (BangerCli *cli, GError **error)
{
  g_autoptr (GDBusObjectManager) objects = NULL;
  g_autoptr (GPtrArray) vms = g_ptr_array_new_with_free_func (g_object_unref);
  GList *list;

  if (banger_cli_get_manager (cli, error) == NULL)
    return NULL;

  /* One GetManagedObjects call brings every VM with its properties,
   * instead of ListVMs plus one GetAll per VM. */
  objects = banger_object_manager_client_new_sync (cli->session,
                                                   G_DBUS_OBJECT_MANAGER_CLIENT_FLAGS_NONE,
                                                   MANAGER_NAME, MANAGER_PATH, NULL, error);
  if (objects == NULL) {
    banger_cli_error_annotate (error);
    return NULL;
  }
  list = g_dbus_object_manager_get_objects (objects);
  for (GList *l = list; l != NULL; l = l->next) {
    BangerVM *vm = banger_object_get_vm (BANGER_OBJECT (l->data));

    if (vm != NULL)
      g_ptr_array_add (vms, vm);
  }
  g_list_free_full (list, g_object_unref);
  g_ptr_array_sort (vms, compare_vms);
  return g_steal_pointer (&vms);
}

gboolean
banger_cli_vm_state_is_running (const char *state)
{
  return g_strcmp0 (state, "running") == 0 || g_strcmp0 (state, "starting") == 0
         || g_strcmp0 (state, "stopping") == 0;
}

void
banger_cli_clear (BangerCli *cli)
{
  g_clear_object (&cli->manager);
  g_clear_object (&cli->session);
  g_clear_pointer (&cli->command_path, g_free);
}
