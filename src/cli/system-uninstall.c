#include "config.h"

#include "system-uninstall.h"

#include <errno.h>
#include <glib/gi18n.h>
#include <glib/gstdio.h>
#include <grp.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "errors.h"
#include "remove-tree.h"
#include "system-user.h"

/* What only banger's VMMs have on their command line: QEMU's agent port
 * (src/service/vmm/vmm-qemu.c) and the jailer's Firecracker binary name. */
#define QEMU_MARKER "org.banger.agent.0"

gboolean
banger_system_install_record (const BangerSystemInstall *install, GError **error)
{
  g_autoptr (GKeyFile) kf = g_key_file_new ();
  g_autofree char *group = NULL;

  if (install->user == NULL || install->dry_run || install->root != NULL
      || (!install->user_added && !install->linger_enabled))
    return TRUE;
  g_key_file_load_from_file (kf, BANGER_SYSTEM_STATE_FILE, G_KEY_FILE_KEEP_COMMENTS, NULL);
  group = g_strdup_printf ("user %s", install->user);
  if (install->user_added)
    g_key_file_set_boolean (kf, group, "added_to_group", TRUE);
  if (install->linger_enabled)
    g_key_file_set_boolean (kf, group, "linger_enabled", TRUE);
  if (g_mkdir_with_parents (BANGER_SYSTEM_STATE_DIR, 0755) != 0) {
    int saved = errno;

    g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved), _ ("cannot create %s: %s"),
                 BANGER_SYSTEM_STATE_DIR, g_strerror (saved));
    return FALSE;
  }
  return g_key_file_save_to_file (kf, BANGER_SYSTEM_STATE_FILE, error);
}

/* Number of banger VMMs running on this host, whoever owns them. */
static guint
count_vmms (void)
{
  g_autoptr (GDir) proc = g_dir_open ("/proc", 0, NULL);
  const char *name;
  guint count = 0;

  while (proc != NULL && (name = g_dir_read_name (proc)) != NULL) {
    g_autofree char *cmdline_path = NULL;
    g_autofree char *comm_path = NULL;
    g_autofree char *cmdline = NULL;
    g_autofree char *comm = NULL;
    gsize len = 0;

    if (!g_ascii_isdigit (name[0]))
      continue;
    cmdline_path = g_build_filename ("/proc", name, "cmdline", NULL);
    comm_path = g_build_filename ("/proc", name, "comm", NULL);
    if (g_file_get_contents (comm_path, &comm, NULL, NULL)
        && g_str_equal (g_strstrip (comm), "firecracker")) {
      count++;
      continue;
    }
    if (!g_file_get_contents (cmdline_path, &cmdline, &len, NULL))
      continue;
    /* NUL-separated arguments: search them as one string. */
    for (gsize i = 0; i + 1 < len; i++)
      if (cmdline[i] == '\0')
        cmdline[i] = ' ';
    if (strstr (cmdline, QEMU_MARKER) != NULL)
      count++;
  }
  return count;
}

static void
say (const char *what, const char *status, const char *message)
{
  if (message != NULL)
    printf ("%s: %s (%s)\n", what, status, message);
  else
    printf ("%s: %s\n", what, status);
}

static void
step_failed (gboolean *failed, const char *what, const GError *error)
{
  *failed = TRUE;
  say (what, _ ("failed"), error->message);
}

static gboolean
user_manager_runs (const BangerSystemUser *user)
{
  g_autofree char *bus = g_strdup_printf ("/run/user/%u/bus", (guint)user->uid);

  return g_file_test (bus, G_FILE_TEST_EXISTS);
}

static gboolean
anything_installed (gboolean purge)
{
  for (const char *const *t = banger_system_install_targets (); *t != NULL; t++) {
    GStatBuf st;

    if (g_lstat (*t, &st) == 0 && S_ISREG (st.st_mode))
      return TRUE;
  }
  if (g_file_test (BANGER_SYSTEM_STATE_FILE, G_FILE_TEST_EXISTS))
    return TRUE;
  return purge && getgrnam (BANGER_GROUP) != NULL;
}

/* @failed NULL: a failure is only reported (the helper may already be
 * gone, the unit already unloaded). */
static void
call_system (GDBusConnection *bus, const char *dest, const char *path, const char *iface,
             const char *method, GVariant *args, const char *what, gboolean *failed)
{
  gboolean ignored = FALSE;

  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) reply = NULL;

  reply = g_dbus_connection_call_sync (bus, dest, path, iface, method, args, NULL,
                                       G_DBUS_CALL_FLAGS_NONE, 120 * 1000, NULL, &error);
  if (reply == NULL) {
    g_dbus_error_strip_remote_error (error);
    step_failed (failed != NULL ? failed : &ignored, what, error);
    return;
  }
  say (what, _ ("done"), NULL);
}

static void
remove_files (gboolean *failed)
{
  for (const char *const *t = banger_system_install_targets (); *t != NULL; t++) {
    GStatBuf st;

    if (g_lstat (*t, &st) != 0)
      continue;
    /* An administrator's symlink (a masked unit) is theirs, as install
     * leaves it alone. */
    if (!S_ISREG (st.st_mode)) {
      say (*t, _ ("left alone"), _ ("not a regular file"));
      continue;
    }
    if (g_unlink (*t) != 0) {
      int saved = errno;
      g_autoptr (GError) error
          = g_error_new_literal (G_IO_ERROR, g_io_error_from_errno (saved), g_strerror (saved));

      step_failed (failed, *t, error);
      continue;
    }
    say (*t, _ ("removed"), NULL);
  }
  {
    g_autofree char *dropin_dir = g_path_get_dirname (BANGER_SYSTEM_HELPER_DROPIN);

    /* Only when empty: an administrator's own drop-ins stay. */
    g_rmdir (dropin_dir);
  }
  /* The configuration directory install makes for the helper's
   * ReadWritePaths=, likewise only when empty: a helper.conf (or an
   * install.toml) written there is the administrator's or update's. */
  g_rmdir (BANGER_SYSCONFDIR);
}

gboolean
banger_system_uninstall_run (const BangerSystemUninstallOptions *o, gboolean *failed,
                             GError **error)
{
  g_autoptr (GKeyFile) state = g_key_file_new ();
  g_autoptr (GDBusConnection) system = NULL;
  g_autoptr (GPtrArray) members = NULL;
  g_auto (GStrv) state_groups = NULL;
  gboolean systemd_runs = g_file_test ("/run/systemd/system", G_FILE_TEST_IS_DIR);
  guint vmms;

  *failed = FALSE;
  if (geteuid () != 0) {
    g_set_error_literal (error, BANGER_CLI_ERROR, BANGER_CLI_ERROR_FAILED,
                         _ ("removing banger's system files needs root: run it with sudo"));
    return FALSE;
  }
  if (!anything_installed (o->purge) && !o->purge_data) {
    printf ("%s\n", _ ("Nothing to do: banger's system files are not installed."));
    return TRUE;
  }
  vmms = count_vmms ();
  if (vmms > 0 && !o->force) {
    g_set_error (error, BANGER_CLI_ERROR, BANGER_CLI_ERROR_FAILED,
                 g_dngettext (GETTEXT_PACKAGE,
                              "%u VM is running: stop it first (banger vm stop), or pass --force "
                              "to uninstall anyway (it keeps running, without network)",
                              "%u VMs are running: stop them first (banger vm stop), or pass "
                              "--force to uninstall anyway (they keep running, without network)",
                              vmms),
                 vmms);
    return FALSE;
  }
  g_key_file_load_from_file (state, BANGER_SYSTEM_STATE_FILE, G_KEY_FILE_NONE, NULL);
  state_groups = g_key_file_get_groups (state, NULL);
  system = g_bus_get_sync (G_BUS_TYPE_SYSTEM, NULL, NULL);

  /* Every member's bangerd first: stopped and disabled while its unit
   * file still exists (disable removes the user's own enable link). */
  members = banger_system_group_members (g_getenv ("SUDO_USER"));
  for (guint i = 0; i < members->len; i++) {
    g_autoptr (BangerSystemUser) user = banger_system_user_lookup (members->pdata[i], NULL);
    const char *disable[] = { "disable", "--now", "bangerd.service", NULL };
    g_autoptr (GError) local = NULL;
    g_autofree char *what = NULL;

    if (user == NULL || user->uid == 0 || !systemd_runs || !user_manager_runs (user))
      continue;
    what = g_strdup_printf (_ ("bangerd.service of %s"), user->name);
    if (!banger_system_user_systemctl (user, FALSE, disable, &local))
      step_failed (failed, what, local);
    else
      say (what, _ ("stopped and disabled"), NULL);
  }

  /* The bridge, NAT rules and taps, through the helper while it is
   * still installed; not while VMs use them. */
  if (vmms == 0 && system != NULL)
    call_system (system, "org.banger.Helper", "/org/banger/Helper", "org.banger.Helper",
                 "TeardownNetwork", g_variant_new_parsed ("(@a{sv} {},)"), _ ("network"),
                 NULL);
  else
    say (_ ("network"), _ ("left in place"), _ ("VMs are running"));
  /* KillMode=process: jailed VMMs (with --force) outlive the helper. */
  if (systemd_runs && system != NULL)
    call_system (system, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                 "org.freedesktop.systemd1.Manager", "StopUnit",
                 g_variant_new ("(ss)", "bangerd-root.service", "replace"),
                 _ ("bangerd-root.service stopped"), NULL);

  remove_files (failed);

  /* Linger and membership only where install turned them on. */
  for (guint i = 0; state_groups != NULL && state_groups[i] != NULL; i++) {
    const char *name;
    g_autoptr (BangerSystemUser) user = NULL;
    g_autoptr (GError) local = NULL;

    if (!g_str_has_prefix (state_groups[i], "user "))
      continue;
    name = state_groups[i] + strlen ("user ");
    user = banger_system_user_lookup (name, NULL);
    if (user == NULL)
      continue;
    if (g_key_file_get_boolean (state, state_groups[i], "linger_enabled", NULL)) {
      g_autofree char *what = g_strdup_printf (_ ("linger of %s"), name);

      if (!banger_system_user_set_linger (user, FALSE, &local))
        step_failed (failed, what, local);
      else
        say (what, _ ("disabled"), NULL);
    }
  }

  if (o->purge_data) {
    for (guint i = 0; i < members->len; i++) {
      g_autoptr (BangerSystemUser) user = banger_system_user_lookup (members->pdata[i], NULL);
      g_auto (GStrv) dirs = NULL;
      g_autofree char *config = NULL;

      if (user == NULL)
        continue;
      dirs = banger_system_user_banger_dirs (user->home);
      config = g_build_filename (user->home, ".config", "banger", NULL);
      for (guint d = 0; d < 3; d++) {
        const char *dir = d < 2 ? dirs[d] : config;
        g_autoptr (GError) local = NULL;

        if (!g_file_test (dir, G_FILE_TEST_EXISTS))
          continue;
        /* Never follows a symlink a user planted, never enters a mount. */
        if (!banger_remove_tree (dir, &local))
          step_failed (failed, dir, local);
        else
          say (dir, _ ("removed"), NULL);
      }
    }
  }

  if (o->purge && getgrnam (BANGER_GROUP) != NULL) {
    const char *argv[] = { "groupdel", BANGER_GROUP, NULL };
    g_autoptr (GError) local = NULL;

    if (!banger_run_program (argv, NULL, &local))
      step_failed (failed, _ ("group banger"), local);
    else
      say (_ ("group banger"), _ ("removed"), NULL);
  } else if (getgrnam (BANGER_GROUP) != NULL) {
    say (_ ("group banger"), _ ("kept"), _ ("remove it with --purge"));
  }

  if (g_unlink (BANGER_SYSTEM_STATE_FILE) == 0)
    g_rmdir (BANGER_SYSTEM_STATE_DIR);

  if (systemd_runs && system != NULL)
    call_system (system, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                 "org.freedesktop.systemd1.Manager", "Reload", NULL, _ ("systemd reloaded"),
                 failed);
  if (system != NULL)
    call_system (system, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                 "ReloadConfig", NULL, _ ("dbus-daemon reloaded"), failed);
  if (!o->purge_data)
    printf ("%s\n", _ ("Users' images, VMs and settings are kept (remove them with --purge-data)."));
  return TRUE;
}
