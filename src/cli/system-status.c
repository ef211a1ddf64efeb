#include "config.h"

#include "system-status.h"

#include <arpa/inet.h>
#include <errno.h>
#include <glib/gi18n.h>
#include <grp.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bus-name.h"
#include "install-config.h"
#include "output-json.h"
#include "system-install.h"
#include "system-user.h"

#define SYSTEMD_NAME    "org.freedesktop.systemd1"
#define SYSTEMD_PATH    "/org/freedesktop/systemd1"
#define MANAGER_NAME    "org.banger.Manager"
#define MANAGER_PATH    "/org/banger/Manager"
#define HELPER_NAME     "org.banger.Helper"
#define HELPER_PATH     "/org/banger/Helper"
#define DEFAULT_BRIDGE  "banger0"
#define CALL_TIMEOUT_MS 30000

void
banger_system_status_free (BangerSystemStatus *st)
{
  if (st == NULL)
    return;
  g_free (st->helper_unit.active);
  g_free (st->helper_unit.enabled);
  g_free (st->manager_unit.active);
  g_free (st->manager_unit.enabled);
  g_free (st->cli_version);
  g_free (st->bangerd_version);
  g_free (st->helper_version);
  g_free (st->install_version);
  g_free (st->bangerd_error);
  g_free (st->helper_error);
  g_free (st->network_address);
  g_free (st->user);
  g_ptr_array_unref (st->problems);
  g_free (st);
}

/* ActiveState and UnitFileState of @unit on @bus's systemd; LoadUnit (not
 * GetUnit) so an inactive, never-started unit still answers. */
static void
unit_state (GDBusConnection *bus, const char *unit, BangerUnitState *state)
{
  g_autoptr (GVariant) reply = NULL;
  const char *props[] = { "ActiveState", "UnitFileState" };
  char **out[] = { &state->active, &state->enabled };
  const char *path;

  if (bus == NULL)
    return;
  reply = g_dbus_connection_call_sync (bus, SYSTEMD_NAME, SYSTEMD_PATH,
                                       "org.freedesktop.systemd1.Manager", "LoadUnit",
                                       g_variant_new ("(s)", unit), G_VARIANT_TYPE ("(o)"),
                                       G_DBUS_CALL_FLAGS_NO_AUTO_START, CALL_TIMEOUT_MS, NULL, NULL);
  if (reply == NULL)
    return;
  g_variant_get (reply, "(&o)", &path);
  for (guint i = 0; i < G_N_ELEMENTS (props); i++) {
    g_autoptr (GVariant) value = NULL;
    g_autoptr (GVariant) inner = NULL;

    value = g_dbus_connection_call_sync (
        bus, SYSTEMD_NAME, path, "org.freedesktop.DBus.Properties", "Get",
        g_variant_new ("(ss)", "org.freedesktop.systemd1.Unit", props[i]), G_VARIANT_TYPE ("(v)"),
        G_DBUS_CALL_FLAGS_NO_AUTO_START, CALL_TIMEOUT_MS, NULL, NULL);
    if (value == NULL)
      continue;
    g_variant_get (value, "(v)", &inner);
    if (g_variant_is_of_type (inner, G_VARIANT_TYPE_STRING))
      *out[i] = g_variant_dup_string (inner, NULL);
  }
}

/* A property read that D-Bus-activates the service: status answers
 * whether banger can be used, and an activatable service that cannot
 * start is exactly what it must find. */
static char *
version_of (GDBusConnection *bus, const char *name, const char *path, char **error_out)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) reply = NULL;
  g_autoptr (GVariant) inner = NULL;

  if (bus == NULL) {
    *error_out = g_strdup (_ ("the bus is not reachable"));
    return NULL;
  }
  reply = g_dbus_connection_call_sync (bus, name, path, "org.freedesktop.DBus.Properties", "Get",
                                       g_variant_new ("(ss)", name, "Version"),
                                       G_VARIANT_TYPE ("(v)"), G_DBUS_CALL_FLAGS_NONE,
                                       CALL_TIMEOUT_MS, NULL, &error);
  if (reply == NULL) {
    g_dbus_error_strip_remote_error (error);
    *error_out = g_strdup (error->message);
    return NULL;
  }
  g_variant_get (reply, "(v)", &inner);
  return g_variant_is_of_type (inner, G_VARIANT_TYPE_STRING) ? g_variant_dup_string (inner, NULL)
                                                              : NULL;
}

static char *
bridge_address (const char *bridge, gboolean *up)
{
  struct ifaddrs *list = NULL;
  char *address = NULL;

  *up = FALSE;
  if (getifaddrs (&list) != 0)
    return NULL;
  for (struct ifaddrs *a = list; a != NULL; a = a->ifa_next) {
    char text[INET_ADDRSTRLEN];

    if (a->ifa_name == NULL || !g_str_equal (a->ifa_name, bridge))
      continue;
    *up = TRUE;
    if (address == NULL && a->ifa_addr != NULL && a->ifa_addr->sa_family == AF_INET
        && inet_ntop (AF_INET, &((struct sockaddr_in *)a->ifa_addr)->sin_addr, text, sizeof text))
      address = g_strdup (text);
  }
  freeifaddrs (list);
  return address;
}

static gboolean
in_process_groups (gid_t gid)
{
  int n = getgroups (0, NULL);
  g_autofree gid_t *groups = NULL;

  if (getegid () == gid)
    return TRUE;
  if (n <= 0)
    return FALSE;
  groups = g_new (gid_t, n);
  n = getgroups (n, groups);
  for (int i = 0; i < n; i++)
    if (groups[i] == gid)
      return TRUE;
  return FALSE;
}

static gboolean
files_installed (void)
{
  for (const char *const *t = banger_system_install_targets (); *t != NULL; t++) {
    struct stat st;

    /* A directory the caller may not search hides a file without making it
     * missing: Debian's /etc/polkit-1/rules.d is 0700 polkitd, so a user
     * never sees the rules file there. */
    if (stat (*t, &st) < 0 && errno != EACCES)
      return FALSE;
  }
  return TRUE;
}

static void
problem (BangerSystemStatus *st, const char *format, ...) G_GNUC_PRINTF (2, 3);

static void
problem (BangerSystemStatus *st, const char *format, ...)
{
  va_list args;

  va_start (args, format);
  g_ptr_array_add (st->problems, g_strdup_vprintf (format, args));
  va_end (args);
}

static void
find_problems (BangerSystemStatus *st)
{
  if (!st->files_installed)
    problem (st, "%s",
             _ ("banger's system files (units, D-Bus and polkit files) are not installed: run "
                "`sudo banger system install`"));
  if (st->helper_version == NULL)
    problem (st, _ ("the root helper bangerd-root does not answer (%s): VMs get no network; run "
                    "`sudo banger system install`"),
             st->helper_error);
  /* Root under sudo has no session bus and no bangerd of its own: those
   * are each user's. */
  if (st->bangerd_version == NULL && (getuid () != 0 || st->session_bus))
    problem (st, _ ("bangerd does not answer (%s): see `journalctl --user -u bangerd`"),
             st->bangerd_error);
  if (!st->group_exists)
    problem (st, "%s",
             _ ("group banger does not exist: run `sudo banger system install --user $USER`"));
  else if (!st->group_member)
    problem (st,
             _ ("%s is not in group banger, so the helper refuses bangerd's network and "
                "launch requests: run `sudo banger system install --user %s`"),
             st->user, st->user);
  if (st->drift)
    problem (st, "%s",
             _ ("the running programs are not all the same version: run `banger system restart` "
                "(and `sudo banger system install` if the units changed)"));
  if (st->systemd && !st->linger && st->group_member)
    problem (st, _ ("linger is off for %s: VMs stop when you log out; run `sudo loginctl "
                    "enable-linger %s`"),
             st->user, st->user);
}

BangerSystemStatus *
banger_system_status_collect (void)
{
  BangerSystemStatus *st = g_new0 (BangerSystemStatus, 1);
  g_autoptr (GDBusConnection) system = g_bus_get_sync (G_BUS_TYPE_SYSTEM, NULL, NULL);
  g_autoptr (GDBusConnection) session = NULL;
  g_autofree char *bridge = banger_helper_conf_string ("network", "bridge");
  struct passwd *pw = getpwuid (getuid ());
  struct group *gr = getgrnam (BANGER_GROUP);
  const char *versions[3];

  st->problems = g_ptr_array_new_with_free_func (g_free);
  st->user = g_strdup (pw != NULL ? pw->pw_name : g_get_user_name ());
  session = g_bus_get_sync (G_BUS_TYPE_SESSION, NULL, NULL);
  st->session_bus = session != NULL;
  /* What libsystemd's sd_booted() tests; not worth linking it for. */
  st->systemd = g_file_test ("/run/systemd/system", G_FILE_TEST_IS_DIR);
  st->files_installed = files_installed ();
  if (st->systemd) {
    unit_state (system, "bangerd-root.service", &st->helper_unit);
    unit_state (session, "bangerd.service", &st->manager_unit);
  }

  st->cli_version = g_strdup (PACKAGE_VERSION);
  st->bangerd_version = version_of (session, MANAGER_NAME, MANAGER_PATH, &st->bangerd_error);
  st->helper_version = version_of (system, HELPER_NAME, HELPER_PATH, &st->helper_error);
  {
    g_autofree char *record = banger_install_record_path ();

    st->install_version = banger_install_record_version (record);
    /* A record that names no version says nothing to compare. */
    if (st->install_version != NULL && *st->install_version == '\0')
      g_clear_pointer (&st->install_version, g_free);
  }
  st->manager_owned = banger_bus_name_has_owner (session, MANAGER_NAME, CALL_TIMEOUT_MS, NULL, NULL);
  st->helper_owned = banger_bus_name_has_owner (system, HELPER_NAME, CALL_TIMEOUT_MS, NULL, NULL);
  versions[0] = st->bangerd_version;
  versions[1] = st->helper_version;
  versions[2] = st->install_version;
  for (guint i = 0; i < G_N_ELEMENTS (versions); i++)
    if (versions[i] != NULL && !g_str_equal (versions[i], st->cli_version))
      st->drift = TRUE;

  st->group_exists = gr != NULL;
  if (gr != NULL) {
    st->group_member = pw != NULL && banger_system_user_in_group (pw->pw_name, pw->pw_gid,
                                                                  BANGER_GROUP);
    st->group_effective = in_process_groups (gr->gr_gid);
  }
  st->linger = banger_system_user_has_linger (st->user);
  st->network_address = bridge_address (bridge != NULL ? bridge : DEFAULT_BRIDGE,
                                        &st->network_up);
  find_problems (st);
  return st;
}

static void
add_bool (JsonBuilder *b, const char *key, gboolean value)
{
  json_builder_set_member_name (b, key);
  json_builder_add_boolean_value (b, value);
}

static void
add_unit (JsonBuilder *b, const char *name, const BangerUnitState *u)
{
  json_builder_set_member_name (b, name);
  json_builder_begin_object (b);
  banger_json_add_string (b, "active", u->active);
  banger_json_add_string (b, "enabled", u->enabled);
  json_builder_end_object (b);
}

JsonNode *
banger_system_status_to_json (const BangerSystemStatus *st)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();

  json_builder_begin_object (b);
  add_bool (b, "ok", st->problems->len == 0);
  json_builder_set_member_name (b, "problems");
  json_builder_begin_array (b);
  for (guint i = 0; i < st->problems->len; i++)
    json_builder_add_string_value (b, st->problems->pdata[i]);
  json_builder_end_array (b);
  banger_json_add_string (b, "user", st->user);
  add_bool (b, "systemd", st->systemd);
  add_bool (b, "files_installed", st->files_installed);
  json_builder_set_member_name (b, "units");
  json_builder_begin_object (b);
  add_unit (b, "bangerd-root.service", &st->helper_unit);
  add_unit (b, "bangerd.service", &st->manager_unit);
  json_builder_end_object (b);
  json_builder_set_member_name (b, "versions");
  json_builder_begin_object (b);
  banger_json_add_string (b, "cli", st->cli_version);
  banger_json_add_string (b, "bangerd", st->bangerd_version);
  banger_json_add_string (b, "helper", st->helper_version);
  banger_json_add_string (b, "install_record", st->install_version);
  json_builder_end_object (b);
  add_bool (b, "drift", st->drift);
  json_builder_set_member_name (b, "bus_names");
  json_builder_begin_object (b);
  add_bool (b, MANAGER_NAME, st->manager_owned);
  add_bool (b, HELPER_NAME, st->helper_owned);
  json_builder_end_object (b);
  json_builder_set_member_name (b, "group");
  json_builder_begin_object (b);
  banger_json_add_string (b, "name", BANGER_GROUP);
  add_bool (b, "exists", st->group_exists);
  add_bool (b, "member", st->group_member);
  add_bool (b, "effective", st->group_effective);
  json_builder_end_object (b);
  add_bool (b, "linger", st->linger);
  json_builder_set_member_name (b, "network");
  json_builder_begin_object (b);
  add_bool (b, "up", st->network_up);
  banger_json_add_string (b, "address", st->network_address);
  json_builder_end_object (b);
  json_builder_end_object (b);
  return json_builder_get_root (b);
}

static const char *
or_dash (const char *s)
{
  return s != NULL ? s : "—";
}

static const char *
yes_no (gboolean b)
{
  return b ? _ ("yes") : _ ("no");
}

void
banger_system_status_print (const BangerSystemStatus *st, FILE *out)
{
  if (st->systemd) {
    fprintf (out, _ ("bangerd-root.service: %s (%s)\n"), or_dash (st->helper_unit.active),
             or_dash (st->helper_unit.enabled));
    fprintf (out, _ ("bangerd.service:      %s (%s)\n"), or_dash (st->manager_unit.active),
             or_dash (st->manager_unit.enabled));
  } else {
    fprintf (out, "%s\n", _ ("systemd:              not running (D-Bus activation only)"));
  }
  fprintf (out, _ ("system files:         %s\n"),
           st->files_installed ? _ ("installed") : _ ("missing"));
  fprintf (out, _ ("versions:             cli %s, bangerd %s, helper %s, install record %s%s\n"),
           st->cli_version, or_dash (st->bangerd_version), or_dash (st->helper_version),
           or_dash (st->install_version), st->drift ? _ (" (they differ)") : "");
  fprintf (out, _ ("bus names:            %s %s, %s %s\n"), MANAGER_NAME,
           st->manager_owned ? _ ("owned") : _ ("not owned"), HELPER_NAME,
           st->helper_owned ? _ ("owned") : _ ("not owned"));
  fprintf (out, _ ("group banger:         member %s, in this login %s\n"),
           yes_no (st->group_member), yes_no (st->group_effective));
  fprintf (out, _ ("linger:               %s\n"), yes_no (st->linger));
  if (st->network_up)
    fprintf (out, _ ("network:              up, %s\n"), or_dash (st->network_address));
  else
    fprintf (out, "%s\n", _ ("network:              not up yet (the first VM start sets it up)"));
  if (st->problems->len == 0) {
    fprintf (out, "\n%s\n", _ ("Everything is in place."));
    return;
  }
  fprintf (out, "\n%s\n", _ ("Problems:"));
  for (guint i = 0; i < st->problems->len; i++)
    fprintf (out, "  - %s\n", (const char *)st->problems->pdata[i]);
}
