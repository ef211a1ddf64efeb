#include "authorize.h"

#include <signal.h>
#include <string.h>

#include "banger-error.h"
#include "install-release.h"
#include "jail.h"
#include "net.h"
#include "snapshot.h"
#include "validate.h"

#define HELPER_INTERFACE     "org.banger.Helper"
#define PROPERTIES_INTERFACE "org.freedesktop.DBus.Properties"

/* Longest argument text an audit line carries: the arguments are already
 * validated, so this only bounds what a hostile caller can put in the log. */
#define AUDIT_ARGS_MAX 512

static const char *const common_options[] = { "interactive", "b", NULL };

/* InstallRelease: which step of an update (install-release.h). */
static const char *const install_options[] = {
  "interactive", "b", "rollback", "b", "finish",   "b", "check", "b",
  "version",     "s", "commit",   "s", "built_at", "s", NULL,
};
/* CreateTap: the guest's MAC and leased address, which the tap may then
 * send from and nothing else (net-guard.c). */
static const char *const tap_options[] = { "interactive", "b", "mac", "s", "ipv4", "s", NULL };
/* ConfigureDNS: the responder's port (bangerd's [dns] port=). */
static const char *const dns_options[] = { "interactive", "b", "port", "q", NULL };

/* The jail spec LaunchJailed accepts. Paths are checked here for shape;
 * the jail code resolves them under the caller's own directories. */
static const char *const launch_spec_keys[] = {
  "vm_id", "s", "kernel",     "s", "rootfs", "s", "initrd", "s", "tap", "s",
  "vcpus", "u", "memory_mib", "u", "state",  "s", "memory", "s", NULL,
};

static char *auth_bridge = NULL;

void
banger_authorize_set_bridge (const char *bridge)
{
  g_free (auth_bridge);
  auth_bridge = g_strdup (bridge);
}

static void
details_insert (PolkitDetails *details, const char *key, const char *value)
{
  if (details != NULL && value != NULL)
    polkit_details_insert (details, key, value);
}

static gboolean invalid (GError **error, const char *format, ...) G_GNUC_PRINTF (2, 3);

static gboolean
invalid (GError **error, const char *format, ...)
{
  va_list args;
  g_autofree char *msg = NULL;

  va_start (args, format);
  msg = g_strdup_vprintf (format, args);
  va_end (args);
  g_set_error_literal (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT, msg);
  return FALSE;
}

/* An absolute, already-normal path: no "." or ".." components, no empty
 * components, valid UTF-8. Symlinks are dealt with where the path is
 * opened (O_NOFOLLOW, under the caller's directories), not here. */
static gboolean
validate_path (const char *what, const char *path, GError **error)
{
  g_auto (GStrv) parts = NULL;

  if (!g_utf8_validate (path, -1, NULL))
    return invalid (error, "%s is not valid UTF-8", what);
  if (path[0] != '/')
    return invalid (error, "%s “%s” is not an absolute path", what, path);
  if (strlen (path) >= 4096)
    return invalid (error, "%s is too long", what);
  parts = g_strsplit (path + 1, "/", -1);
  for (guint i = 0; parts[i] != NULL; i++) {
    if (parts[i][0] == '\0' || g_str_equal (parts[i], ".") || g_str_equal (parts[i], ".."))
      return invalid (error, "%s “%s” is not a normal path", what, path);
  }
  return TRUE;
}

static gboolean
validate_vm_id_arg (const char *id, PolkitDetails *details, GError **error)
{
  g_autofree char *tap = NULL;

  if (!banger_validate_vm_id (id, error))
    return FALSE;
  tap = g_strdup_printf ("bg%.12s", id);
  details_insert (details, "vm", id);
  details_insert (details, "tap", tap);
  return TRUE;
}

static gboolean
validate_network (GVariant *parameters, PolkitDetails *details, GError **error)
{
  details_insert (details, "bridge", auth_bridge != NULL ? auth_bridge : "banger0");
  return TRUE;
}

static gboolean
validate_nothing (GVariant *parameters, PolkitDetails *details, GError **error)
{
  return TRUE;
}

/* (s vm_id, a{sv} options, …) */
static gboolean
validate_vm_id_first (GVariant *parameters, PolkitDetails *details, GError **error)
{
  const char *id = NULL;

  g_variant_get_child (parameters, 0, "&s", &id);
  details_insert (details, "bridge", auth_bridge != NULL ? auth_bridge : "banger0");
  return validate_vm_id_arg (id, details, error);
}

static gboolean
validate_launch (GVariant *parameters, PolkitDetails *details, GError **error)
{
  g_autoptr (GVariant) spec = g_variant_get_child_value (parameters, 0);
  const char *vm_id = NULL;
  const char *path = NULL;
  gboolean has_state, has_memory;

  if (!banger_validate_options (spec, launch_spec_keys, error)) {
    g_prefix_error (error, "spec: ");
    return FALSE;
  }
  if (!g_variant_lookup (spec, "vm_id", "&s", &vm_id))
    return invalid (error, "spec: “vm_id” is required");
  if (!validate_vm_id_arg (vm_id, details, error))
    return FALSE;
  if (g_variant_lookup (spec, "kernel", "&s", &path)
      && !validate_path ("spec “kernel”", path, error))
    return FALSE;
  if (g_variant_lookup (spec, "rootfs", "&s", &path)
      && !validate_path ("spec “rootfs”", path, error))
    return FALSE;
  if (g_variant_lookup (spec, "initrd", "&s", &path)
      && !validate_path ("spec “initrd”", path, error))
    return FALSE;
  /* A saved state to restore: its two files go together. */
  has_state = g_variant_lookup (spec, "state", "&s", &path);
  if (has_state && !validate_path ("spec “state”", path, error))
    return FALSE;
  has_memory = g_variant_lookup (spec, "memory", "&s", &path);
  if (has_memory && !validate_path ("spec “memory”", path, error))
    return FALSE;
  if (has_state != has_memory)
    return invalid (error, "spec: “state” and “memory” go together");
  return TRUE;
}

/* (s id, s dest_dir, a{sv} options) */
static gboolean
validate_take_state (GVariant *parameters, PolkitDetails *details, GError **error)
{
  const char *dir = NULL;

  if (!validate_vm_id_first (parameters, details, error))
    return FALSE;
  g_variant_get_child (parameters, 1, "&s", &dir);
  return validate_path ("dest_dir", dir, error);
}

/* (s id, i signal, a{sv} options): only the signals that stop a VMM. */
static gboolean
validate_kill (GVariant *parameters, PolkitDetails *details, GError **error)
{
  const char *id = NULL;
  gint32 signum = 0;

  g_variant_get_child (parameters, 0, "&s", &id);
  g_variant_get_child (parameters, 1, "i", &signum);
  if (!validate_vm_id_arg (id, details, error))
    return FALSE;
  if (signum != SIGTERM && signum != SIGKILL && signum != SIGINT)
    return invalid (error, "signal %d is not allowed (only TERM, KILL and INT)", (int)signum);
  return TRUE;
}

/* (s vm_id, s origin, a{sv} options) */
static gboolean
validate_snapshot (GVariant *parameters, PolkitDetails *details, GError **error)
{
  const char *origin = NULL;

  if (!validate_vm_id_first (parameters, details, error))
    return FALSE;
  g_variant_get_child (parameters, 1, "&s", &origin);
  return validate_path ("origin", origin, error);
}

/* (s vm_id, a{sv} options): the address claim's shape, both or neither. */
static gboolean
validate_create_tap (GVariant *parameters, PolkitDetails *details, GError **error)
{
  g_autoptr (GVariant) options = g_variant_get_child_value (parameters, 1);
  const char *mac = NULL, *ipv4 = NULL;
  gboolean has_mac, has_ipv4;

  if (!validate_vm_id_first (parameters, details, error))
    return FALSE;
  has_mac = g_variant_lookup (options, "mac", "&s", &mac);
  has_ipv4 = g_variant_lookup (options, "ipv4", "&s", &ipv4);
  if (has_mac != has_ipv4)
    return invalid (error, "options “mac” and “ipv4” go together");
  return !has_mac
         || (banger_net_guard_check_mac (mac, error) && banger_net_guard_check_ipv4 (ipv4, error));
}

/* (s staging_dir, a{sv} options) */
static gboolean
validate_install (GVariant *parameters, PolkitDetails *details, GError **error)
{
  const char *dir = NULL;

  g_variant_get_child (parameters, 0, "&s", &dir);
  details_insert (details, "staging_dir", dir);
  return validate_path ("staging_dir", dir, error);
}

/* (a{sv} options): a port of 0 means no responder, nothing to route to. */
static gboolean
validate_dns (GVariant *parameters, PolkitDetails *details, GError **error)
{
  g_autoptr (GVariant) options = g_variant_get_child_value (parameters, 0);
  guint16 port = 0;

  details_insert (details, "bridge", auth_bridge != NULL ? auth_bridge : "banger0");
  if (g_variant_lookup (options, "port", "q", &port) && port == 0)
    return invalid (error, "option “port” must be 1..65535 (0 means the responder is disabled)");
  return TRUE;
}

/* Every entry names one action. Property reads carry no action: the only
 * property is Version, which is public. */
static const BangerAuthEntry auth_table[] = {
  { HELPER_INTERFACE, "EnsureNetwork", "org.banger.network.setup", common_options,
    validate_network },
  { HELPER_INTERFACE, "TeardownNetwork", "org.banger.network.setup", common_options,
    validate_network },
  { HELPER_INTERFACE, "CreateTap", "org.banger.vm.network", tap_options, validate_create_tap },
  { HELPER_INTERFACE, "DeleteTap", "org.banger.vm.network", common_options, validate_vm_id_first },
  { HELPER_INTERFACE, "LaunchJailed", "org.banger.vm.launch", common_options, validate_launch },
  { HELPER_INTERFACE, "KillJailed", "org.banger.vm.launch", common_options, validate_kill },
  /* The same action as LaunchJailed: whoever may make a jail may remove it. */
  { HELPER_INTERFACE, "RemoveJail", "org.banger.vm.launch", common_options, validate_vm_id_first },
  /* Also the launch's action: it hands the caller back what their own
   * jailed VMM wrote (its saved state), into the caller's own directory. */
  { HELPER_INTERFACE, "TakeJailState", "org.banger.vm.launch", common_options,
    validate_take_state },
  { HELPER_INTERFACE, "CreateSnapshot", "org.banger.storage.snapshot", common_options,
    validate_snapshot },
  { HELPER_INTERFACE, "RemoveSnapshot", "org.banger.storage.snapshot", common_options,
    validate_vm_id_first },
  { HELPER_INTERFACE, "ConfigureDNS", "org.banger.network.dns", dns_options, validate_dns },
  /* Read-only, but still an action: the ruleset is root's to read, and the
   * facts name other firewalls' chains. */
  { HELPER_INTERFACE, "InspectFirewall", "org.banger.network.inspect", common_options,
    validate_network },
  { HELPER_INTERFACE, "InstallRelease", "org.banger.system.update", install_options,
    validate_install },
  { PROPERTIES_INTERFACE, "Get", NULL, NULL, validate_nothing },
  { PROPERTIES_INTERFACE, "GetAll", NULL, NULL, validate_nothing },
};

const BangerAuthEntry *
banger_authorize_lookup (const char *interface, const char *method)
{
  for (gsize i = 0; i < G_N_ELEMENTS (auth_table); i++) {
    if (g_strcmp0 (auth_table[i].interface, interface) == 0
        && g_strcmp0 (auth_table[i].method, method) == 0)
      return &auth_table[i];
  }
  return NULL;
}

const BangerAuthEntry *
banger_authorize_precheck (const char *interface, const char *method, GVariant *parameters,
                           PolkitDetails *details, GError **error)
{
  const BangerAuthEntry *entry = banger_authorize_lookup (interface, method);

  if (entry == NULL) {
    g_set_error (error, G_DBUS_ERROR, G_DBUS_ERROR_ACCESS_DENIED, "%s.%s is not an allowed method",
                 interface != NULL ? interface : "(none)", method != NULL ? method : "(none)");
    return NULL;
  }
  if (entry->option_keys != NULL) {
    gsize n = g_variant_n_children (parameters);
    g_autoptr (GVariant) options = NULL;

    if (n == 0)
      return (invalid (error, "%s: options missing", method), NULL);
    options = g_variant_get_child_value (parameters, n - 1);
    if (!banger_validate_options (options, entry->option_keys, error)) {
      g_prefix_error (error, "%s: ", method);
      return NULL;
    }
  }
  if (entry->validate != NULL && !entry->validate (parameters, details, error)) {
    g_prefix_error (error, "%s: ", method);
    return NULL;
  }
  return entry;
}

/* What the authorizer learnt about a call, kept on the invocation until
 * the audit line is written. */
typedef struct {
  gint64 uid; /* -1: unknown */
  const char *method;
  const char *action;
  char *args;
} AuthState;

static void
auth_state_free (AuthState *state)
{
  g_free (state->args);
  g_free (state);
}

/* The caller's uid as the bus daemon saw it when the connection was made:
 * nothing the caller sends can change it. */
static gboolean
caller_uid (GDBusMethodInvocation *invocation, uid_t *uid, GError **error)
{
  GDBusConnection *connection = g_dbus_method_invocation_get_connection (invocation);
  const char *sender = g_dbus_method_invocation_get_sender (invocation);
  g_autoptr (GVariant) reply = NULL;
  g_autoptr (GVariant) creds = NULL;
  guint32 value;

  if (sender == NULL) {
    g_set_error_literal (error, G_DBUS_ERROR, G_DBUS_ERROR_ACCESS_DENIED,
                         "caller has no bus name (peer-to-peer calls are not accepted)");
    return FALSE;
  }
  reply = g_dbus_connection_call_sync (connection, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                       "org.freedesktop.DBus", "GetConnectionCredentials",
                                       g_variant_new ("(s)", sender), G_VARIANT_TYPE ("(a{sv})"),
                                       G_DBUS_CALL_FLAGS_NONE, -1, NULL, error);
  if (reply == NULL) {
    g_prefix_error (error, "could not learn the caller’s uid: ");
    return FALSE;
  }
  creds = g_variant_get_child_value (reply, 0);
  if (!g_variant_lookup (creds, "UnixUserID", "u", &value)) {
    g_set_error_literal (error, G_DBUS_ERROR, G_DBUS_ERROR_ACCESS_DENIED,
                         "the bus did not say which uid the caller has");
    return FALSE;
  }
  *uid = value;
  return TRUE;
}

static char *
args_text (GVariant *parameters)
{
  g_autofree char *text = g_variant_print (parameters, FALSE);

  /* g_variant_print escapes control characters in strings, so one call
   * stays one log line. */
  if (strlen (text) > AUDIT_ARGS_MAX)
    return g_strdup_printf ("%.*s…", AUDIT_ARGS_MAX, text);
  return g_steal_pointer (&text);
}

/* Keeps the message on one line and its quotes balanced, but leaves UTF-8
 * alone (g_strescape would turn it into octal). */
static char *
escape_message (const char *message)
{
  GString *out = g_string_sized_new (strlen (message));

  for (const char *p = message; *p != '\0'; p++) {
    if (*p == '"' || *p == '\\')
      g_string_append_printf (out, "\\%c", *p);
    else if ((guchar)*p < 0x20 || *p == 0x7f)
      g_string_append_printf (out, "\\x%02x", (guchar)*p);
    else
      g_string_append_c (out, *p);
  }
  return g_string_free (out, FALSE);
}

static const char *
result_text (const GError *error, char **out_free)
{
  g_autofree char *name = NULL;
  g_autofree char *msg = NULL;

  if (error == NULL)
    return "ok";
  name = g_dbus_error_encode_gerror (error);
  msg = escape_message (error->message);
  *out_free = g_strdup_printf ("%s \"%s\"", name, msg);
  return *out_free;
}

static void
audit (gint64 uid, const char *method, const char *action, const char *args, const GError *error)
{
  g_autofree char *res_free = NULL;
  const char *res = result_text (error, &res_free);

  /* A stable prefix and key=value fields so the lines can be grepped from
   * the journal (journalctl -t bangerd-root | grep AUDIT). */
  g_message ("AUDIT uid=%" G_GINT64_FORMAT " method=%s action=%s args=%s result=%s", uid,
             method != NULL ? method : "-", action != NULL ? action : "-", args, res);
}

static gboolean
deny (GDBusMethodInvocation *invocation, const BangerAuthEntry *entry, gint64 uid, GError *error)
{
  g_autofree char *args = args_text (g_dbus_method_invocation_get_parameters (invocation));

  audit (uid, g_dbus_method_invocation_get_method_name (invocation),
         entry != NULL ? entry->action : NULL, args, error);
  banger_invocation_return_error (invocation, error);
  return FALSE;
}

gboolean
banger_authorize_method (GDBusInterfaceSkeleton *skeleton, GDBusMethodInvocation *invocation,
                         gpointer user_data)
{
  PolkitAuthority *authority = POLKIT_AUTHORITY (user_data);
  const char *interface = g_dbus_method_invocation_get_interface_name (invocation);
  const char *method = g_dbus_method_invocation_get_method_name (invocation);
  GVariant *parameters = g_dbus_method_invocation_get_parameters (invocation);
  g_autoptr (PolkitDetails) details = polkit_details_new ();
  g_autoptr (PolkitSubject) subject = NULL;
  g_autoptr (PolkitAuthorizationResult) result = NULL;
  PolkitCheckAuthorizationFlags flags = POLKIT_CHECK_AUTHORIZATION_FLAGS_NONE;
  const BangerAuthEntry *entry;
  gboolean interactive = FALSE;
  AuthState *state;
  GError *error = NULL;
  uid_t uid = (uid_t)-1;

  /* 1. default deny, 2. arguments, 3. who, 4. polkit: arguments are
   * checked before polkit so a bad call never shows an auth prompt. */
  entry = banger_authorize_precheck (interface, method, parameters, details, &error);
  if (entry == NULL) {
    uid_t seen = (uid_t)-1;
    gboolean known = caller_uid (invocation, &seen, NULL);

    /* The table's action, if the method is known, says what was asked. */
    return deny (invocation, banger_authorize_lookup (interface, method), known ? (gint64)seen : -1,
                 error);
  }
  if (!caller_uid (invocation, &uid, &error))
    return deny (invocation, entry, -1, error);
  /* Checks that need the caller's uid (whose files, whose jail) also come
   * before polkit. */
  if (!banger_jail_check_caller (method, parameters, uid, &error)
      || !banger_snapshot_check_caller (method, parameters, uid, &error)
      || !banger_install_release_check_caller (method, parameters, uid, &error))
    return deny (invocation, entry, uid, error);

  /* The client polkit authorised for an update's swap checks, finishes or
   * rolls back that swap without a second prompt (install-release.h). */
  if (entry->action != NULL
      && !banger_install_release_preauthorized (
          method, parameters, g_dbus_method_invocation_get_sender (invocation), uid)) {
    g_autoptr (GVariant) options
        = g_variant_get_child_value (parameters, g_variant_n_children (parameters) - 1);

    if (g_variant_lookup (options, "interactive", "b", &interactive) && interactive)
      flags |= POLKIT_CHECK_AUTHORIZATION_FLAGS_ALLOW_USER_INTERACTION;
    subject = polkit_system_bus_name_new (g_dbus_method_invocation_get_sender (invocation));
    result = polkit_authority_check_authorization_sync (authority, subject, entry->action, details,
                                                        flags, NULL, &error);
    if (result == NULL) {
      g_autofree char *why = g_strdup (error->message);

      g_clear_error (&error);
      g_set_error (&error, G_DBUS_ERROR, G_DBUS_ERROR_ACCESS_DENIED,
                   "not authorized to call %s: polkit could not decide (%s)", method, why);
      return deny (invocation, entry, uid, error);
    }
    if (!polkit_authorization_result_get_is_authorized (result)) {
      g_set_error (&error, G_DBUS_ERROR, G_DBUS_ERROR_ACCESS_DENIED,
                   "not authorized to call %s (polkit action %s)%s", method, entry->action,
                   polkit_authorization_result_get_is_challenge (result) && !interactive
                       ? "; authentication is required, retry with interactive"
                       : "");
      return deny (invocation, entry, uid, error);
    }
  }

  state = g_new0 (AuthState, 1);
  state->uid = uid;
  state->method = entry->method;
  state->action = entry->action;
  state->args = args_text (parameters);
  g_object_set_data_full (G_OBJECT (invocation), "banger-auth", state,
                          (GDestroyNotify)auth_state_free);
  return TRUE;
}

uid_t
banger_authorize_get_uid (GDBusMethodInvocation *invocation)
{
  AuthState *state = g_object_get_data (G_OBJECT (invocation), "banger-auth");

  g_return_val_if_fail (state != NULL, (uid_t)-1);
  return (uid_t)state->uid;
}

void
banger_authorize_audit_done (GDBusMethodInvocation *invocation, const GError *error)
{
  AuthState *state = g_object_get_data (G_OBJECT (invocation), "banger-auth");

  g_return_if_fail (state != NULL);
  audit (state->uid, state->method, state->action, state->args, error);
}
