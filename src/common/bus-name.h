#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* Whether @name has an owner on @bus now (org.freedesktop.DBus.NameHasOwner);
 * FALSE also when the bus does not answer within @timeout_ms. Never starts
 * an activatable service. */
gboolean banger_bus_name_has_owner (GDBusConnection *bus, const char *name, int timeout_ms,
                                    GCancellable *cancellable, GError **error);

G_END_DECLS
