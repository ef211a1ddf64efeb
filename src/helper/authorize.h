#pragma once

#include <gio/gio.h>
#include <polkit/polkit.h>

G_BEGIN_DECLS

/* The helper's one authorizer, modelled on flatpak's
 * flatpak_authorize_method_handler and bolt's bouncer: a static table maps
 * every method to one polkit action, the allowed option keys and a
 * validator for the other arguments. Anything not in the table is denied. */

typedef struct _BangerAuthEntry BangerAuthEntry;

/* Fills @details (may be NULL) with what the polkit message shows, e.g.
 * "vm" and "tap"; returns FALSE with an InvalidArgument error if an
 * argument is bad. @parameters is the whole call's tuple. */
typedef gboolean (*BangerAuthValidator) (GVariant *parameters, PolkitDetails *details,
                                         GError **error);

struct _BangerAuthEntry {
  const char *interface;
  const char *method;
  /* NULL: no polkit check (unprivileged reads such as the Version property) */
  const char *action;
  /* NULL-terminated key, type pairs allowed in the trailing a{sv} options */
  const char *const *option_keys;
  BangerAuthValidator validate;
};

/* The table entry of @interface.@method, or NULL. */
const BangerAuthEntry *banger_authorize_lookup (const char *interface, const char *method);

/* The whole argument check, without the bus: method in the table
 * (else G_DBUS_ERROR_ACCESS_DENIED), options and arguments valid (else
 * BANGER_ERROR_INVALID_ARGUMENT). @details may be NULL. */
const BangerAuthEntry *banger_authorize_precheck (const char *interface, const char *method,
                                                  GVariant *parameters, PolkitDetails *details,
                                                  GError **error);

/* The bridge name shown in polkit messages ($(bridge)). */
void banger_authorize_set_bridge (const char *bridge);

/* Handler for GDBusInterfaceSkeleton::g-authorize-method. Runs in the
 * skeleton's method thread (HANDLE_METHOD_INVOCATIONS_IN_THREAD), so the
 * blocking polkit check never stalls the main loop. On success the caller's
 * uid is attached to @invocation (banger_authorize_get_uid()). */
gboolean banger_authorize_method (GDBusInterfaceSkeleton *skeleton,
                                  GDBusMethodInvocation *invocation, gpointer user_data);

/* The caller's uid, as established by banger_authorize_method(). */
uid_t banger_authorize_get_uid (GDBusMethodInvocation *invocation);

/* Writes the audit line of an authorized call once it has finished
 * (@error NULL: it succeeded). */
void banger_authorize_audit_done (GDBusMethodInvocation *invocation, const GError *error);

G_END_DECLS
