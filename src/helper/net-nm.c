#include "net.h"

#include <NetworkManager.h>

#define NM_BUS_NAME   "org.freedesktop.NetworkManager"
#define NM_TIMEOUT_MS 5000

static gboolean
nm_is_running (GDBusConnection *bus)
{
  g_autoptr (GVariant) reply = NULL;
  gboolean has_owner = FALSE;

  /* Asking the bus, not NetworkManager: a system without NM must not
   * activate it or wait for it. */
  reply = g_dbus_connection_call_sync (bus, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                       "org.freedesktop.DBus", "NameHasOwner",
                                       g_variant_new ("(s)", NM_BUS_NAME), G_VARIANT_TYPE ("(b)"),
                                       G_DBUS_CALL_FLAGS_NONE, -1, NULL, NULL);
  if (reply != NULL)
    g_variant_get (reply, "(b)", &has_owner);
  return has_owner;
}

typedef struct {
  NMClient *client;
  guint pending;
} SetManagedData;

static void
set_managed_done (GObject *source, GAsyncResult *res, gpointer user_data)
{
  SetManagedData *data = user_data;
  g_autoptr (GError) error = NULL;

  if (!nm_client_dbus_set_property_finish (NM_CLIENT (source), res, &error))
    g_warning ("NetworkManager would not leave a banger link alone: %s", error->message);
  data->pending--;
}

void
banger_net_nm_unmanage (GDBusConnection *system_bus, const char *const *ifnames)
{
  g_autoptr (GMainContext) context = NULL;
  g_autoptr (GError) error = NULL;
  GObject *busy_watcher = NULL;
  SetManagedData data = { 0 };

  if (system_bus == NULL || !nm_is_running (system_bus)) {
    g_debug ("NetworkManager is not running; nothing to tell it");
    return;
  }

  /* This runs in a method-call thread: NMClient gets a context of its own
   * so its D-Bus traffic never touches the daemon's main loop. */
  context = g_main_context_new ();
  g_main_context_push_thread_default (context);

  data.client = nm_client_new (NULL, &error);
  if (data.client == NULL) {
    g_warning ("cannot talk to NetworkManager: %s", error->message);
    g_main_context_pop_thread_default (context);
    return;
  }
  for (guint i = 0; ifnames[i] != NULL; i++) {
    NMDevice *device = nm_client_get_device_by_iface (data.client, ifnames[i]);

    if (device == NULL) {
      g_debug ("NetworkManager does not know %s yet", ifnames[i]);
      continue;
    }
    if (!nm_device_get_managed (device))
      continue;
    /* The Managed property, not a connection profile: an unmanaged device
     * is one NM never configures, which is what banger's links need. */
    data.pending++;
    nm_client_dbus_set_property (data.client, nm_object_get_path (NM_OBJECT (device)),
                                 NM_DBUS_INTERFACE_DEVICE, "Managed", g_variant_new_boolean (FALSE),
                                 NM_TIMEOUT_MS, NULL, set_managed_done, &data);
    g_info ("asked NetworkManager to leave %s unmanaged", ifnames[i]);
  }
  while (data.pending > 0)
    g_main_context_iteration (context, TRUE);

  /* NMClient finishes its D-Bus work on its context after the last unref;
   * iterate until it says so, or it leaks. */
  busy_watcher = g_object_ref (nm_client_get_context_busy_watcher (data.client));
  g_object_add_weak_pointer (busy_watcher, (gpointer *)&busy_watcher);
  g_object_unref (busy_watcher);
  g_clear_object (&data.client);
  while (busy_watcher != NULL)
    g_main_context_iteration (context, TRUE);
  g_main_context_pop_thread_default (context);
}
