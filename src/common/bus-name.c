#include "bus-name.h"

gboolean
banger_bus_name_has_owner (GDBusConnection *bus, const char *name, int timeout_ms,
                           GCancellable *cancellable, GError **error)
{
  g_autoptr (GVariant) reply = NULL;
  gboolean owned = FALSE;

  if (bus == NULL)
    return FALSE;
  reply = g_dbus_connection_call_sync (bus, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                       "org.freedesktop.DBus", "NameHasOwner",
                                       g_variant_new ("(s)", name), G_VARIANT_TYPE ("(b)"),
                                       G_DBUS_CALL_FLAGS_NONE, timeout_ms, cancellable, error);
  if (reply != NULL)
    g_variant_get (reply, "(b)", &owned);
  return owned;
}

BangerBusService
banger_bus_ensure_service (GDBusConnection *bus, const char *name, int timeout_ms,
                           GCancellable *cancellable, GError **error)
{
  g_autoptr (GVariant) reply = NULL;
  g_autoptr (GError) local = NULL;

  if (banger_bus_name_has_owner (bus, name, timeout_ms, cancellable, &local))
    return BANGER_BUS_SERVICE_RUNNING;
  if (local == NULL)
    reply = g_dbus_connection_call_sync (bus, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                         "org.freedesktop.DBus", "StartServiceByName",
                                         g_variant_new ("(su)", name, 0), G_VARIANT_TYPE ("(u)"),
                                         G_DBUS_CALL_FLAGS_NONE, timeout_ms, cancellable, &local);
  if (reply != NULL)
    return BANGER_BUS_SERVICE_STARTED;
  if (g_error_matches (local, G_DBUS_ERROR, G_DBUS_ERROR_SERVICE_UNKNOWN)) {
    g_dbus_error_strip_remote_error (local);
    g_propagate_error (error, g_steal_pointer (&local));
    return BANGER_BUS_SERVICE_NOT_INSTALLED;
  }
  g_dbus_error_strip_remote_error (local);
  g_propagate_error (error, g_steal_pointer (&local));
  return BANGER_BUS_SERVICE_FAILED;
}
