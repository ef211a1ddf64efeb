#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* Whether @name has an owner on @bus now (org.freedesktop.DBus.NameHasOwner);
 * FALSE also when the bus does not answer within @timeout_ms. Never starts
 * an activatable service. */
gboolean banger_bus_name_has_owner (GDBusConnection *bus, const char *name, int timeout_ms,
                                    GCancellable *cancellable, GError **error);

G_END_DECLS

G_BEGIN_DECLS

typedef enum {
  BANGER_BUS_SERVICE_RUNNING,       /* the name had an owner */
  BANGER_BUS_SERVICE_STARTED,       /* D-Bus activation started it now */
  BANGER_BUS_SERVICE_NOT_INSTALLED, /* no activation file for the name */
  BANGER_BUS_SERVICE_FAILED,        /* installed, but it did not start; or no answer */
} BangerBusService;

/* Makes sure @name runs: its owner, or else StartServiceByName, which
 * tells "not installed" from "cannot start" (the helper is D-Bus activated
 * and exits when idle, so a name without an owner is normal). The last
 * two set @error with the bus's message. */
BangerBusService banger_bus_ensure_service (GDBusConnection *bus, const char *name, int timeout_ms,
                                            GCancellable *cancellable, GError **error);

G_END_DECLS
