#include "config.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bus-name.h"
#include "install-config.h"
#include "doctor-private.h"
#include "doctor-versions.h"

#define HELPER_NAME  "org.banger.Helper"
#define HELPER_PATH  "/org/banger/Helper"
#define SYSTEMD_NAME "org.freedesktop.systemd1"
#define SYSTEMD_PATH "/org/freedesktop/systemd1"
#define CALL_MS      30000

/* The hardening directives of data/systemd/bangerd-root.service.in that
 * the running unit must have (or something stricter). The values here are
 * only the fallback: the check takes each value from this build's copy of
 * the unit (${datadir}/banger/system/bangerd-root.service), so a change to
 * the unit needs no change here; tests/doctor serves the unit file's
 * settings through FAKE-systemd and expects "ok". */
static const BangerDoctorDirective hardening[] = {
  { "NoNewPrivileges", "yes" },
  { "PrivateTmp", "yes" },
  { "ProtectSystem", "full" },
  { "ProtectHome", "read-only" },
  { "ProtectKernelModules", "yes" },
  { "ProtectKernelLogs", "yes" },
  { "ProtectClock", "yes" },
  { "ProtectHostname", "yes" },
  { "RestrictRealtime", "yes" },
  { "LockPersonality", "yes" },
  { "KillMode", "process" },
  { "UMask", "0022" },
  { "SystemCallArchitectures", "native" },
  { "CapabilityBoundingSet", "CAP_NET_ADMIN CAP_SYS_ADMIN CAP_CHOWN CAP_FOWNER CAP_DAC_OVERRIDE "
                             "CAP_DAC_READ_SEARCH CAP_SETUID CAP_SETGID CAP_SYS_CHROOT CAP_MKNOD "
                             "CAP_KILL CAP_SYS_PTRACE" },
  { "RestrictAddressFamilies", "AF_UNIX AF_NETLINK AF_INET AF_INET6" },
  { NULL, NULL },
};

const BangerDoctorDirective *
banger_doctor_hardening_directives (void)
{
  return hardening;
}

/* ---- helper and versions ------------------------------------------------ */

typedef struct {
  char *version; /* NULL: not reachable */
} HelperState;

static void
check_group (GVariantBuilder *b)
{
  struct group *gr;
  const char *user = g_get_user_name ();
  gid_t groups[256];
  int n = G_N_ELEMENTS (groups);
  struct passwd *pw;

  /* Root passes polkit anyway; the rules grant group banger. */
  if (getuid () == 0)
    return;
  gr = getgrnam ("banger");
  pw = getpwuid (getuid ());
  if (gr != NULL && pw != NULL && getgrouplist (pw->pw_name, pw->pw_gid, groups, &n) >= 0) {
    for (int i = 0; i < n; i++)
      if (groups[i] == gr->gr_gid)
        return;
  }
  {
    g_autofree char *hint = g_strdup_printf ("sudo banger system install --user %s", user);
    banger_doctor_add (b, "helper-group", "warn", hint,
                       "%s is not in group banger: every helper call (network, jails) is refused",
                       user);
  }
}

/* The helper is D-Bus activated and exits when idle, so "not running" is
 * normal: StartServiceByName tells "installed and can start" (it starts it
 * now) from "not installed" (no activation file) and "cannot start". */
static void
check_helper (GVariantBuilder *b, const BangerDoctorFacts *f, HelperState *hs)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GDBusConnection) bus = banger_doctor_system_bus (f, &error);
  g_autoptr (GVariant) reply = NULL;
  g_autoptr (GVariant) value = NULL;
  gboolean running;

  if (bus == NULL) {
    banger_doctor_add (b, "helper", "warn",
                       "run banger where a system bus runs, and `sudo banger system install`",
                       "no system bus (%s): bangerd-root cannot be reached, VMs start without "
                       "a network device",
                       error->message);
    return;
  }
  switch (banger_bus_ensure_service (bus, HELPER_NAME, CALL_MS, NULL, &error)) {
  case BANGER_BUS_SERVICE_RUNNING:
    running = TRUE;
    break;
  case BANGER_BUS_SERVICE_STARTED:
    running = FALSE;
    break;
  case BANGER_BUS_SERVICE_NOT_INSTALLED:
    banger_doctor_add (b, "helper", "warn", "sudo banger system install",
                       "bangerd-root is not installed (%s cannot be activated on the system "
                       "bus): VMs start without a network device",
                       HELPER_NAME);
    return;
  case BANGER_BUS_SERVICE_FAILED:
  default:
    banger_doctor_add (b, "helper", "fail",
                       "see why with `journalctl -u bangerd-root`, then `sudo banger system "
                       "install` to put its files back",
                       "bangerd-root is installed but cannot start: %s; VMs start without a "
                       "network device",
                       error->message);
    return;
  }
  reply = g_dbus_connection_call_sync (
      bus, HELPER_NAME, HELPER_PATH, "org.freedesktop.DBus.Properties", "Get",
      g_variant_new ("(ss)", HELPER_NAME, "Version"), G_VARIANT_TYPE ("(v)"),
      G_DBUS_CALL_FLAGS_NONE, CALL_MS, NULL, &error);
  if (reply == NULL) {
    g_dbus_error_strip_remote_error (error);
    banger_doctor_add (b, "helper", "fail",
                       "see why with `journalctl -u bangerd-root`",
                       "bangerd-root started but does not answer: %s", error->message);
    return;
  }
  g_variant_get (reply, "(v)", &value);
  if (g_variant_is_of_type (value, G_VARIANT_TYPE_STRING))
    hs->version = g_variant_dup_string (value, NULL);
  banger_doctor_add (b, "helper", "ok", NULL,
                     running ? "bangerd-root %s answers on the system bus"
                             : "bangerd-root %s is installed and starts on demand (started now; "
                               "it exits again when idle)",
                     hs->version ? hs->version : "?");
  check_group (b);
}

static void
check_versions (GVariantBuilder *b, const HelperState *hs)
{
  g_autofree char *path = banger_install_record_path ();
  g_autofree char *pending = g_strconcat (path, ".pending", NULL);
  g_autofree char *record = banger_install_record_version (path);
  g_autoptr (GString) drift = g_string_new (NULL);
  g_autofree char *helper_part = NULL;

  helper_part = hs->version != NULL ? g_strdup_printf (", bangerd-root %s", hs->version)
                                    : g_strdup (", bangerd-root not reachable");
  if (hs->version != NULL && g_strcmp0 (hs->version, PACKAGE_VERSION) != 0)
    g_string_append_printf (drift, "bangerd-root is %s; ", hs->version);
  if (record != NULL && *record == '\0')
    g_string_append_printf (drift, "%s names no version; ", path);
  else if (record != NULL && g_strcmp0 (record, PACKAGE_VERSION) != 0)
    g_string_append_printf (drift, "the install record %s says %s; ", path, record);

  if (g_file_test (pending, G_FILE_TEST_EXISTS)) {
    g_autofree char *next = banger_install_record_version (pending);
    banger_doctor_add (b, "versions", "warn",
                       "let `banger update` finish (or roll back); if none runs, "
                       "`sudo banger system install` after installing one release",
                       "an update to %s is being installed (%s): bangerd %s%s",
                       next && *next ? next : "?", pending, PACKAGE_VERSION, helper_part);
    return;
  }
  if (drift->len > 0) {
    g_string_truncate (drift, drift->len - 2);
    banger_doctor_add (b, "versions", "warn",
                       "the programs come from different releases (or were replaced without "
                       "`banger update`): install one release of all of them with `banger update "
                       "--to VERSION` or install.sh, then restart bangerd",
                       "bangerd %s, but %s", PACKAGE_VERSION, drift->str);
    return;
  }
  banger_doctor_add (b, "versions", "ok", NULL, "bangerd %s%s%s", PACKAGE_VERSION, helper_part,
                     record != NULL ? ", install record the same" : ", no install record (a build "
                                                                     "run from its tree or "
                                                                     "installed with meson)");
}

/* ---- system files ---------------------------------------------------------- */

typedef struct {
  const char *source; /* in ${datadir}/banger/system */
  const char *target;
} SystemFile;

/* The files `banger system install` writes (src/cli/system-install.c's
 * table), split into the units and the bus/polkit policy. */
static const SystemFile unit_files[] = {
  { "bangerd-root.service", "/etc/systemd/system/bangerd-root.service" },
  { "bangerd.service", "/etc/systemd/user/bangerd.service" },
  { NULL, NULL },
};
static const SystemFile policy_files[] = {
  { "org.banger.Helper.conf", "/etc/dbus-1/system.d/org.banger.Helper.conf" },
  { "org.banger.Helper.service", "/usr/share/dbus-1/system-services/org.banger.Helper.service" },
  { "org.banger.Manager.service", "/usr/share/dbus-1/services/org.banger.Manager.service" },
  { "org.banger.policy", "/usr/share/polkit-1/actions/org.banger.policy" },
  { "50-org.banger.rules", "/etc/polkit-1/rules.d/50-org.banger.rules" },
  { NULL, NULL },
};

static const char *
system_data_dir (void)
{
  const char *env = g_getenv ("BANGER_SYSTEM_DATA_DIR");
  return env != NULL && *env != '\0' ? env : BANGER_SYSTEM_DATA_DIR;
}

/* Where the system's files are looked for: "/" except in tests. */
static const char *
system_root (void)
{
  const char *env = g_getenv ("BANGER_SYSTEM_ROOT");
  return env != NULL && *env != '\0' ? env : "/";
}

/* Compares @files with this build's copies. "fail" if one is writable by
 * anyone but root (whoever can write a bus policy, a polkit rule or a root
 * unit can become root), "warn" if one is missing or differs. */
static void
check_files (GVariantBuilder *b, const char *id, const char *what, const SystemFile *files)
{
  g_autoptr (GString) missing = g_string_new (NULL);
  g_autoptr (GString) stale = g_string_new (NULL);
  g_autoptr (GString) unsafe = g_string_new (NULL);
  g_autoptr (GString) unreadable = g_string_new (NULL);
  guint present = 0, total = 0;
  const char *src_dir = system_data_dir ();

  if (!g_file_test (src_dir, G_FILE_TEST_IS_DIR)) {
    banger_doctor_add (b, id, "skip",
                       "install this build (meson install) so its copies are in "
                       "${datadir}/banger/system",
                       "%s: this build's copies are not in %s, nothing to compare with", what,
                       src_dir);
    return;
  }
  for (const SystemFile *f = files; f->source != NULL; f++) {
    g_autofree char *target = g_build_filename (system_root (), f->target, NULL);
    g_autofree char *source = g_build_filename (src_dir, f->source, NULL);
    g_autofree char *want = NULL, *have = NULL;
    gsize want_len = 0, have_len = 0;
    struct stat st;

    total++;
    if (lstat (target, &st) < 0) {
      /* Debian's /etc/polkit-1/rules.d is polkitd's 0700 directory: for a
       * user's bangerd a file there is unknown, not missing. */
      if (errno == EACCES)
        g_string_append_printf (unreadable, "%s%s", unreadable->len ? ", " : "", f->target);
      else
        g_string_append_printf (missing, "%s%s", missing->len ? ", " : "", f->target);
      continue;
    }
    present++;
    if (S_ISLNK (st.st_mode)) {
      /* An administrator's mask (a link to /dev/null) is their choice. */
      g_string_append_printf (stale, "%s%s (a link: masked?)", stale->len ? ", " : "", f->target);
      continue;
    }
    if (st.st_uid != 0 || (st.st_mode & 022) != 0)
      g_string_append_printf (unsafe, "%s%s (uid %u, mode %04o)", unsafe->len ? ", " : "",
                              f->target, (guint)st.st_uid, (guint)(st.st_mode & 07777));
    if (!g_file_get_contents (source, &want, &want_len, NULL))
      continue;
    if (access (target, R_OK) < 0 && errno == EACCES) {
      g_string_append_printf (unreadable, "%s%s", unreadable->len ? ", " : "", f->target);
      continue;
    }
    if (!g_file_get_contents (target, &have, &have_len, NULL) || have_len != want_len
        || memcmp (have, want, want_len) != 0)
      g_string_append_printf (stale, "%s%s", stale->len ? ", " : "", f->target);
  }
  if (unsafe->len > 0)
    banger_doctor_add (b, id, "fail",
                       "make them root's and not writable by others (`sudo chown root:root FILE; "
                       "sudo chmod 644 FILE`), or rewrite them with `sudo banger system install`",
                       "%s writable by someone other than root: %s", what, unsafe->str);
  else if (present == 0 && unreadable->len == 0)
    banger_doctor_add (b, id, "warn", "sudo banger system install",
                       "%s not installed: %s", what, missing->str);
  else if (missing->len > 0 || stale->len > 0)
    banger_doctor_add (b, id, "warn",
                       "sudo banger system install (it rewrites them from this build; then "
                       "restart bangerd)",
                       "%s are not this build's:%s%s%s%s", what,
                       missing->len ? " missing " : "", missing->str,
                       stale->len ? (missing->len ? "; different " : " different ") : "",
                       stale->str);
  else if (unreadable->len > 0)
    banger_doctor_add (b, id, "ok", NULL,
                       "%s: the same as this build's, root's; not readable by this user, so not "
                       "compared: %s",
                       what, unreadable->str);
  else
    banger_doctor_add (b, id, "ok", NULL, "%s: %u files, the same as this build's, root's",
                       what, total);
}

/* The data directory holds the VMs' control and agent sockets (QMP,
 * Firecracker's API, the agent channel): anyone who can connect to them
 * controls the VM. */
static void
check_sockets (GVariantBuilder *b, const BangerDoctorFacts *f)
{
  g_autofree char *vms = g_build_filename (f->data_dir, "vms", NULL);
  g_autoptr (GString) bad = g_string_new (NULL);
  g_autoptr (GDir) dir = NULL;
  struct stat st;
  guint sockets = 0;
  uid_t uid = getuid ();

  if (stat (f->data_dir, &st) == 0 && (st.st_uid != uid || (st.st_mode & 077) != 0))
    g_string_append_printf (bad, "%s (uid %u, mode %04o)", f->data_dir, (guint)st.st_uid,
                            (guint)(st.st_mode & 07777));
  dir = g_dir_open (vms, 0, NULL);
  for (const char *vm = dir ? g_dir_read_name (dir) : NULL; vm != NULL;
       vm = g_dir_read_name (dir)) {
    g_autofree char *vm_dir = g_build_filename (vms, vm, NULL);
    g_autoptr (GDir) inner = g_dir_open (vm_dir, 0, NULL);

    for (const char *n = inner ? g_dir_read_name (inner) : NULL; n != NULL;
         n = g_dir_read_name (inner)) {
      g_autofree char *path = g_build_filename (vm_dir, n, NULL);

      if (lstat (path, &st) < 0 || !S_ISSOCK (st.st_mode))
        continue;
      sockets++;
      if (st.st_uid != uid || (st.st_mode & 022) != 0)
        g_string_append_printf (bad, "%s%s (uid %u, mode %04o)", bad->len ? ", " : "", path,
                                (guint)st.st_uid, (guint)(st.st_mode & 07777));
    }
  }
  if (bad->len > 0) {
    g_autofree char *hint = g_strdup_printf (
        "chmod 700 %s and chown the files back to %s (another user could drive these VMs)",
        f->data_dir, g_get_user_name ());
    banger_doctor_add (b, "sockets", "fail", hint, "open to others: %s", bad->str);
  } else
    banger_doctor_add (b, "sockets", "ok", NULL,
                       "%s is yours alone; %u VM socket(s), none open to others", f->data_dir,
                       sockets);
}

/* ---- the helper unit's hardening, from systemd --------------------------- */

static const struct {
  const char *name;
  guint bit;
} caps[] = {
  { "CAP_CHOWN", 0 },       { "CAP_DAC_OVERRIDE", 1 }, { "CAP_DAC_READ_SEARCH", 2 },
  { "CAP_FOWNER", 3 },      { "CAP_KILL", 5 },         { "CAP_SETGID", 6 },
  { "CAP_SETUID", 7 },      { "CAP_NET_ADMIN", 12 },   { "CAP_SYS_CHROOT", 18 },
  { "CAP_SYS_PTRACE", 19 }, { "CAP_SYS_ADMIN", 21 },  { "CAP_MKNOD", 27 },
};

static guint64
cap_mask (const char *names)
{
  g_auto (GStrv) v = g_strsplit (names, " ", -1);
  guint64 mask = 0;

  for (guint i = 0; v[i] != NULL; i++)
    for (guint j = 0; j < G_N_ELEMENTS (caps); j++)
      if (g_str_equal (v[i], caps[j].name))
        mask |= G_GUINT64_CONSTANT (1) << caps[j].bit;
  return mask;
}

/* NULL if @value (systemd's property) is @d's setting or stricter; what is
 * wrong otherwise. */
static char *
directive_problem (const BangerDoctorDirective *d, GVariant *value)
{
  if (value == NULL)
    return g_strdup_printf ("%s unknown to this systemd", d->directive);
  if (g_variant_is_of_type (value, G_VARIANT_TYPE_BOOLEAN)) {
    gboolean want = g_str_equal (d->value, "yes");
    if (g_variant_get_boolean (value) != want)
      return g_strdup_printf ("%s=%s", d->directive, want ? "no" : "yes");
    return NULL;
  }
  if (g_variant_is_of_type (value, G_VARIANT_TYPE_STRING)) {
    const char *have = g_variant_get_string (value, NULL);
    /* ProtectSystem=strict is stricter than full, ProtectHome=yes than
     * read-only. */
    if (g_str_equal (have, d->value)
        || (g_str_equal (d->directive, "ProtectSystem") && g_str_equal (have, "strict"))
        || (g_str_equal (d->directive, "ProtectHome") && g_str_equal (have, "yes")))
      return NULL;
    return g_strdup_printf ("%s=%s", d->directive, have);
  }
  if (g_variant_is_of_type (value, G_VARIANT_TYPE_UINT32)) { /* UMask */
    guint want = (guint)g_ascii_strtoull (d->value, NULL, 8);
    guint have = g_variant_get_uint32 (value);
    if ((have & want) != want)
      return g_strdup_printf ("%s=%04o", d->directive, have);
    return NULL;
  }
  if (g_variant_is_of_type (value, G_VARIANT_TYPE_UINT64)) { /* CapabilityBoundingSet */
    guint64 allowed = cap_mask (d->value);
    guint64 have = g_variant_get_uint64 (value);
    if ((have & ~allowed) != 0)
      return g_strdup_printf ("%s has capabilities beyond the unit's (mask %#" G_GINT64_MODIFIER
                              "x)",
                              d->directive, have);
    return NULL;
  }
  if (g_variant_is_of_type (value, G_VARIANT_TYPE_STRING_ARRAY)) { /* SystemCallArchitectures */
    g_autofree const char **have = g_variant_get_strv (value, NULL);
    g_autofree char *joined = g_strjoinv (" ", (char **)have);
    if (!g_str_equal (joined, d->value))
      return g_strdup_printf ("%s=%s", d->directive, *joined ? joined : "(none)");
    return NULL;
  }
  if (g_variant_is_of_type (value, G_VARIANT_TYPE ("(bas)"))) { /* RestrictAddressFamilies */
    gboolean allow_list;
    g_autofree const char **fams = NULL;
    g_auto (GStrv) want = g_strsplit (d->value, " ", -1);
    g_autoptr (GVariant) list = NULL;

    g_variant_get_child (value, 0, "b", &allow_list);
    list = g_variant_get_child_value (value, 1);
    fams = g_variant_get_strv (list, NULL);
    if (!allow_list || fams[0] == NULL)
      return g_strdup_printf ("%s is not an allow list", d->directive);
    for (guint i = 0; fams[i] != NULL; i++)
      if (!g_strv_contains ((const char *const *)want, fams[i]))
        return g_strdup_printf ("%s allows %s", d->directive, fams[i]);
    return NULL;
  }
  return g_strdup_printf ("%s has an unexpected type %s", d->directive,
                          g_variant_get_type_string (value));
}

/* Key=value lines of this build's helper unit (the copy `banger system
 * install` installs), or NULL without one. */
static GHashTable *
build_unit_settings (void)
{
  g_autofree char *path = g_build_filename (system_data_dir (), "bangerd-root.service", NULL);
  g_autofree char *text = NULL;
  g_auto (GStrv) lines = NULL;
  GHashTable *out;

  if (!g_file_get_contents (path, &text, NULL, NULL))
    return NULL;
  out = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  lines = g_strsplit (text, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++) {
    char *eq = strchr (lines[i], '=');
    if (lines[i][0] == '#' || lines[i][0] == '[' || eq == NULL)
      continue;
    *eq = '\0';
    g_hash_table_insert (out, g_strstrip (g_strdup (lines[i])), g_strstrip (g_strdup (eq + 1)));
  }
  return out;
}

static void
check_hardening (GVariantBuilder *b, const BangerDoctorFacts *f)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GDBusConnection) bus = banger_doctor_system_bus (f, &error);
  g_autoptr (GVariant) reply = NULL;
  g_autoptr (GVariant) props = NULL;
  g_autoptr (GVariant) load = NULL;
  g_autoptr (GString) weak = g_string_new (NULL);
  const char *path;

  if (bus == NULL || !banger_bus_name_has_owner (bus, SYSTEMD_NAME, 5000, NULL, NULL)) {
    banger_doctor_add (b, "helper-hardening", "skip",
                       "nothing to do: without systemd the helper runs as its activation starts it",
                       "not applicable: systemd does not run here (no %s on the system bus)",
                       SYSTEMD_NAME);
    return;
  }
  reply = g_dbus_connection_call_sync (bus, SYSTEMD_NAME, SYSTEMD_PATH,
                                       "org.freedesktop.systemd1.Manager", "LoadUnit",
                                       g_variant_new ("(s)", "bangerd-root.service"),
                                       G_VARIANT_TYPE ("(o)"), G_DBUS_CALL_FLAGS_NO_AUTO_START,
                                       CALL_MS, NULL, &error);
  if (reply == NULL) {
    g_dbus_error_strip_remote_error (error);
    banger_doctor_add (b, "helper-hardening", "warn", "sudo banger system install",
                       "systemd does not know bangerd-root.service: %s", error->message);
    return;
  }
  g_variant_get (reply, "(&o)", &path);
  load = g_dbus_connection_call_sync (bus, SYSTEMD_NAME, path, "org.freedesktop.DBus.Properties",
                                      "Get",
                                      g_variant_new ("(ss)", "org.freedesktop.systemd1.Unit",
                                                     "LoadState"),
                                      G_VARIANT_TYPE ("(v)"), G_DBUS_CALL_FLAGS_NO_AUTO_START,
                                      CALL_MS, NULL, NULL);
  if (load != NULL) {
    g_autoptr (GVariant) v = NULL;
    g_variant_get (load, "(v)", &v);
    if (g_variant_is_of_type (v, G_VARIANT_TYPE_STRING)
        && !g_str_equal (g_variant_get_string (v, NULL), "loaded")) {
      banger_doctor_add (b, "helper-hardening", "warn", "sudo banger system install",
                         "bangerd-root.service is %s", g_variant_get_string (v, NULL));
      return;
    }
  }
  props = g_dbus_connection_call_sync (bus, SYSTEMD_NAME, path, "org.freedesktop.DBus.Properties",
                                       "GetAll",
                                       g_variant_new ("(s)", "org.freedesktop.systemd1.Service"),
                                       G_VARIANT_TYPE ("(a{sv})"), G_DBUS_CALL_FLAGS_NO_AUTO_START,
                                       CALL_MS, NULL, &error);
  if (props == NULL) {
    g_dbus_error_strip_remote_error (error);
    banger_doctor_add (b, "helper-hardening", "warn", "sudo banger system install",
                       "cannot read bangerd-root.service's settings: %s", error->message);
    return;
  }
  {
    g_autoptr (GVariant) dict = g_variant_get_child_value (props, 0);
    g_autoptr (GHashTable) unit = build_unit_settings ();
    for (const BangerDoctorDirective *d = hardening; d->directive != NULL; d++) {
      g_autoptr (GVariant) value = g_variant_lookup_value (dict, d->directive, NULL);
      const char *from_unit = unit != NULL ? g_hash_table_lookup (unit, d->directive) : NULL;
      BangerDoctorDirective want = { d->directive, from_unit != NULL ? from_unit : d->value };
      g_autofree char *problem = directive_problem (&want, value);
      if (problem != NULL)
        g_string_append_printf (weak, "%s%s", weak->len ? ", " : "", problem);
    }
  }
  if (weak->len > 0)
    banger_doctor_add (b, "helper-hardening", "warn",
                       "remove the drop-in or edit that weakens bangerd-root.service (`systemctl "
                       "cat bangerd-root.service`), or `sudo banger system install`, then `sudo "
                       "systemctl daemon-reload`",
                       "bangerd-root.service runs with weaker settings than banger's unit: %s",
                       weak->str);
  else
    banger_doctor_add (b, "helper-hardening", "ok", NULL,
                       "bangerd-root.service has all %u hardening settings of banger's unit",
                       (guint)(G_N_ELEMENTS (hardening) - 1));
}

void
banger_doctor_check_install (GVariantBuilder *b, const BangerDoctorFacts *f)
{
  HelperState hs = { NULL };

  banger_doctor_check_architecture (b);
  check_helper (b, f, &hs);
  check_versions (b, &hs);
  check_files (b, "units", "systemd units", unit_files);
  check_files (b, "bus-policy", "D-Bus and polkit files", policy_files);
  check_sockets (b, f);
  check_hardening (b, f);
  g_free (hs.version);
}
