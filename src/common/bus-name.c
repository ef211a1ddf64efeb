#define G_LOG_DOMAIN "banger-common"

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
