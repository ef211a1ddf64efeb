#include "config.h"

#include <glib/gi18n.h>

#include "cli.h"
#include "errors.h"
#include "vm-row.h"
#include "banger-error.h"

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
vm_proxy_new (BangerCli *cli, const char *object_path, GDBusProxyFlags flags, GError **error)
{
  BangerVM *vm;

  vm = banger_vm_proxy_new_sync (cli->session, G_DBUS_PROXY_FLAGS_DO_NOT_AUTO_START | flags,
                                 MANAGER_NAME, object_path, NULL, error);
  if (vm != NULL)
    g_dbus_proxy_set_default_timeout (G_DBUS_PROXY (vm), MANAGER_TIMEOUT_MS);
  return vm;
}

static BangerVM *
find_vm (BangerCli *cli, const char *name, GDBusProxyFlags flags, GError **error)
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
  vm = vm_proxy_new (cli, path, flags, error);
  if (vm == NULL)
    banger_cli_error_annotate_vm (error, name);
  return vm;
}

BangerVM *
banger_cli_find_vm (BangerCli *cli, const char *name, GError **error)
{
  return find_vm (cli, name, G_DBUS_PROXY_FLAGS_NONE, error);
}

/* For a command that only calls a method on the VM: no properties loaded
 * and no signals watched, a round trip and a match rule fewer on every
 * `vm stop`, `suspend`… (a Get asks for the state when an error needs it). */
BangerVM *
banger_cli_find_vm_to_call (BangerCli *cli, const char *name, GError **error)
{
  return find_vm (cli, name,
                  G_DBUS_PROXY_FLAGS_DO_NOT_LOAD_PROPERTIES
                      | G_DBUS_PROXY_FLAGS_DO_NOT_CONNECT_SIGNALS,
                  error);
}

/* One GetManagedObjects call brings every object with its properties,
 * instead of a List call plus one GetAll per object. */
static GDBusObjectManager *
object_manager_new (BangerCli *cli, GError **error)
{
  GDBusObjectManager *objects;

  if (banger_cli_get_manager (cli, error) == NULL)
    return NULL;
  objects = banger_object_manager_client_new_sync (cli->session,
                                                   G_DBUS_OBJECT_MANAGER_CLIENT_FLAGS_NONE,
                                                   MANAGER_NAME, MANAGER_PATH, NULL, error);
  if (objects == NULL)
    banger_cli_error_annotate (error);
  return objects;
}

typedef gpointer (*GetInterfaceFunc) (BangerObject *object);
typedef guint64 (*GetCreatedAtFunc) (gpointer proxy);
typedef const char *(*GetNameFunc) (gpointer proxy);

typedef struct {
  GetInterfaceFunc get_interface;
  GetCreatedAtFunc get_created_at;
  GetNameFunc get_name;
} ObjectKind;

static const ObjectKind vm_kind = {
  (GetInterfaceFunc)banger_object_get_vm,
  (GetCreatedAtFunc)banger_vm_get_created_at,
  (GetNameFunc)banger_vm_get_name,
};
static const ObjectKind image_kind = {
  (GetInterfaceFunc)banger_object_get_image,
  (GetCreatedAtFunc)banger_image_get_created_at,
  (GetNameFunc)banger_image_get_name,
};
static const ObjectKind kernel_kind = {
  (GetInterfaceFunc)banger_object_get_kernel,
  (GetCreatedAtFunc)banger_kernel_get_created_at,
  (GetNameFunc)banger_kernel_get_name,
};

/* Oldest first, then by name: the order `list` prints. */
static int
compare_objects (gconstpointer a, gconstpointer b, gpointer user_data)
{
  const ObjectKind *kind = user_data;
  gpointer pa = *(gpointer *)a;
  gpointer pb = *(gpointer *)b;
  guint64 ta = kind->get_created_at (pa);
  guint64 tb = kind->get_created_at (pb);

  if (ta != tb)
    return ta < tb ? -1 : 1;
  return g_strcmp0 (kind->get_name (pa), kind->get_name (pb));
}

static GPtrArray *
list_objects (BangerCli *cli, const ObjectKind *kind, GError **error)
{
  g_autoptr (GDBusObjectManager) objects = NULL;
  g_autoptr (GPtrArray) found = g_ptr_array_new_with_free_func (g_object_unref);
  GList *list;

  objects = object_manager_new (cli, error);
  if (objects == NULL)
    return NULL;
  list = g_dbus_object_manager_get_objects (objects);
  for (GList *l = list; l != NULL; l = l->next) {
    gpointer proxy = kind->get_interface (BANGER_OBJECT (l->data));

    if (proxy != NULL)
      g_ptr_array_add (found, proxy);
  }
  g_list_free_full (list, g_object_unref);
  g_ptr_array_sort_with_data (found, compare_objects, (gpointer)kind);
  return g_steal_pointer (&found);
}

GPtrArray *
banger_cli_list_vms (BangerCli *cli, GError **error)
{
  return list_objects (cli, &vm_kind, error);
}

/* Every VM's row from ListVMRows: only the columns, a reply a fraction
 * of GetManagedObjects' (with 1,000 VMs GDBus spent most of `vm list`
 * turning that one into ~100,000 values). FALSE with @error set to
 * UnknownMethod for a bangerd older than ListVMRows. */
static gboolean
list_vm_columns (BangerCli *cli, GPtrArray *rows, GError **error)
{
  g_autoptr (GVariant) reply = NULL;
  GVariantIter *iter = NULL;
  const char *name, *state, *image, *ipv4;
  guint32 vcpus, memory_mib, disk_mib;
  guint64 created_at;

  reply = g_dbus_connection_call_sync (cli->session, MANAGER_NAME, MANAGER_PATH, MANAGER_NAME,
                                       "ListVMRows", NULL, G_VARIANT_TYPE ("(a(ossssuuut))"),
                                       G_DBUS_CALL_FLAGS_NONE, MANAGER_TIMEOUT_MS, NULL, error);
  if (reply == NULL)
    return FALSE;
  g_variant_get (reply, "(a(ossssuuut))", &iter);
  while (g_variant_iter_next (iter, "(&o&s&s&s&suuut)", NULL, &name, &state, &image, &ipv4,
                              &vcpus, &memory_mib, &disk_mib, &created_at))
    g_ptr_array_add (rows, banger_vm_row_new_columns (name, state, image, ipv4, vcpus,
                                                      memory_mib, disk_mib, created_at));
  g_variant_iter_free (iter);
  return TRUE;
}

GPtrArray *
banger_cli_list_vm_rows (BangerCli *cli, gboolean with_properties, GError **error)
{
  g_autoptr (GVariant) reply = NULL;
  g_autoptr (GVariant) objects = NULL;
  g_autoptr (GPtrArray) rows = NULL;
  GVariantIter iter;
  GVariant *interfaces;

  if (banger_cli_get_manager (cli, error) == NULL)
    return NULL;
  rows = g_ptr_array_new_with_free_func ((GDestroyNotify)banger_vm_row_free);
  if (!with_properties) {
    g_autoptr (GError) local = NULL;

    if (list_vm_columns (cli, rows, &local))
      return g_steal_pointer (&rows);
    if (!g_error_matches (local, G_DBUS_ERROR, G_DBUS_ERROR_UNKNOWN_METHOD)) {
      g_propagate_error (error, g_steal_pointer (&local));
      banger_cli_error_annotate (error);
      return NULL;
    }
  }
  /* Every property (--json), or an older bangerd. */
  reply = g_dbus_connection_call_sync (cli->session, MANAGER_NAME, MANAGER_PATH,
                                       "org.freedesktop.DBus.ObjectManager", "GetManagedObjects",
                                       NULL, G_VARIANT_TYPE ("(a{oa{sa{sv}}})"),
                                       G_DBUS_CALL_FLAGS_NONE, MANAGER_TIMEOUT_MS, NULL, error);
  if (reply == NULL) {
    banger_cli_error_annotate (error);
    return NULL;
  }
  objects = g_variant_get_child_value (reply, 0);
  g_variant_iter_init (&iter, objects);
  while (g_variant_iter_next (&iter, "{&o@a{sa{sv}}}", NULL, &interfaces)) {
    g_autoptr (GVariant) properties
        = g_variant_lookup_value (interfaces, "org.banger.VM", G_VARIANT_TYPE_VARDICT);

    g_variant_unref (interfaces);
    if (properties != NULL)
      g_ptr_array_add (rows, banger_vm_row_new (properties));
  }
  g_ptr_array_sort (rows, banger_vm_row_compare);
  return g_steal_pointer (&rows);
}

GPtrArray *
banger_cli_list_images (BangerCli *cli, GError **error)
{
  return list_objects (cli, &image_kind, error);
}

GPtrArray *
banger_cli_list_kernels (BangerCli *cli, GError **error)
{
  return list_objects (cli, &kernel_kind, error);
}

/* Manager has no FindImage/FindKernel: the object manager already holds
 * every object with its Name, so look there. */
static gpointer
find_object (BangerCli *cli, const ObjectKind *kind, BangerCliObject what, const char *name,
             GError **error)
{
  g_autoptr (GPtrArray) all = list_objects (cli, kind, error);

  if (all == NULL)
    return NULL;
  for (guint i = 0; i < all->len; i++) {
    gpointer proxy = g_ptr_array_index (all, i);

    if (g_strcmp0 (kind->get_name (proxy), name) == 0)
      return g_object_ref (proxy);
  }
  g_set_error (error, BANGER_ERROR, BANGER_ERROR_NOT_FOUND, "%s", "");
  banger_cli_error_annotate_object (error, what, name);
  return NULL;
}

BangerImage *
banger_cli_find_image (BangerCli *cli, const char *name, GError **error)
{
  return find_object (cli, &image_kind, BANGER_CLI_OBJECT_IMAGE, name, error);
}

BangerKernel *
banger_cli_find_kernel (BangerCli *cli, const char *name, GError **error)
{
  return find_object (cli, &kernel_kind, BANGER_CLI_OBJECT_KERNEL, name, error);
}

gboolean
banger_cli_vm_state_is_running (const char *state)
{
  return g_strcmp0 (state, "running") == 0 || g_strcmp0 (state, "starting") == 0
         || g_strcmp0 (state, "stopping") == 0 || g_strcmp0 (state, "suspending") == 0
         || g_strcmp0 (state, "resuming") == 0;
}

void
banger_cli_clear (BangerCli *cli)
{
  g_clear_object (&cli->manager);
  g_clear_object (&cli->session);
  g_clear_pointer (&cli->command_path, g_free);
}
