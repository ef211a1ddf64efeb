#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* banger's one error domain. Every error that leaves a daemon over D-Bus is
 * in this domain (or is a standard org.freedesktop.DBus.Error); anything else
 * is converted by banger_error_convert() before the reply. Keep the enum and
 * the table in banger-error.c in step (a static assert checks the count). */
#define BANGER_ERROR (banger_error_quark ())

typedef enum {
  BANGER_ERROR_FAILED,
  BANGER_ERROR_NOT_FOUND,
  BANGER_ERROR_EXISTS,
  BANGER_ERROR_INVALID_ARGUMENT,
  BANGER_ERROR_BAD_STATE,
  BANGER_ERROR_NOT_AUTHORIZED,
  BANGER_ERROR_BUSY,
  BANGER_ERROR_NETWORK,
  BANGER_ERROR_REGISTRY,
  BANGER_ERROR_VERIFICATION,
  BANGER_ERROR_UNSUPPORTED,
  BANGER_ERROR_CANCELLED,
  BANGER_ERROR_LAST /*< skip >*/
} BangerError;

GQuark banger_error_quark (void);

/* Converts any GError into the BANGER_ERROR domain (or leaves a G_DBUS_ERROR
 * that is already a standard D-Bus error), keeping the message. */
void banger_error_convert (GError **error);

/* Returns the error (converted) to @invocation; takes ownership of @error. */
void banger_invocation_return_error (GDBusMethodInvocation *invocation, GError *error);

/* Short human name of a D-Bus error name, e.g. "NotFound" for
 * org.banger.Error.NotFound; NULL if it is not one of banger's. */
const char *banger_error_short_name (const char *dbus_error_name);

/* Sets @error to "@what: <formatted message>" in BANGER_ERROR with @code and
 * returns FALSE, so a parser can `return banger_error_reject (...)` at each
 * thing it refuses and every refusal names what was being read. */
gboolean banger_error_reject (GError **error, BangerError code, const char *what,
                              const char *format, ...) G_GNUC_PRINTF (4, 5);

G_END_DECLS
