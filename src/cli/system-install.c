#include "config.h"

#include "system-install.h"

#include <errno.h>
#include <glib/gi18n.h>
#include <glib/gstdio.h>
#include <grp.h>
#include <sys/stat.h>

#include "errors.h"
#include "system-user.h"

#define FILE_MODE 0644

typedef enum {
  READER_NONE,    /* polkitd and session buses watch their directories */
  READER_DBUS,    /* the system bus: ReloadConfig */
  READER_SYSTEMD, /* the system manager: Reload (daemon-reload) */
  READER_USER,    /* user managers: each user's own daemon-reload */
} Reader;

/* Where each file goes. /etc for what an administrator may override
 * (units, bus policy, polkit rules); /usr/share where the daemon reads
 * nothing else (polkit actions, bus activation files). Never a
 * /usr/local path: dbus-daemon's policy directories and polkitd's actions
 * directory are fixed, whatever prefix banger was built for. */
static const struct {
  const char *source;
  const char *target;
  Reader reader;
} table[] = {
  { "org.banger.Helper.conf", "/etc/dbus-1/system.d/org.banger.Helper.conf", READER_DBUS },
  { "org.banger.Helper.service", "/usr/share/dbus-1/system-services/org.banger.Helper.service",
    READER_DBUS },
  { "org.banger.Manager.service", "/usr/share/dbus-1/services/org.banger.Manager.service",
    READER_NONE },
  { "org.banger.policy", "/usr/share/polkit-1/actions/org.banger.policy", READER_NONE },
  { "50-org.banger.rules", "/etc/polkit-1/rules.d/50-org.banger.rules", READER_NONE },
  { "bangerd-root.service", "/etc/systemd/system/bangerd-root.service", READER_SYSTEMD },
  { "bangerd.service", "/etc/systemd/user/bangerd.service", READER_USER },
  /* Made here, not copied: ReadWritePaths= for the banger directories of
   * every member of group banger (the helper's unit keeps homes
   * read-only otherwise). NULL source: generated. */
  { NULL, BANGER_SYSTEM_HELPER_DROPIN, READER_SYSTEMD },
};

const char *const *
banger_system_install_targets (void)
{
  static const char *targets[G_N_ELEMENTS (table) + 1];

  for (guint i = 0; i < G_N_ELEMENTS (table); i++)
    targets[i] = table[i].target;
  return targets;
}

/* The drop-in's text: one ReadWritePaths= line with the directories of
 * @members ("-": a directory that does not exist yet does not fail the
 * helper's start). A home with a blank or a quote is left out rather
 * than quoted: systemd's and our quoting would have to agree. */
static char *
helper_dropin_text (GPtrArray *members)
{
  GString *s = g_string_new (
      "# Written by `banger system install`; rewritten at each install.\n"
      "# The helper keeps home directories read-only (ProtectHome=read-only) except\n"
      "# the banger directories of the members of group banger, where it writes\n"
      "# copy-on-write files and jails for them.\n"
      "[Service]\n");
  g_autoptr (GString) paths = g_string_new (NULL);

  for (guint i = 0; i < members->len; i++) {
    g_autoptr (BangerSystemUser) u = banger_system_user_lookup (members->pdata[i], NULL);
    g_auto (GStrv) dirs = NULL;

    if (u == NULL || strpbrk (u->home, " \t\n\"'\\") != NULL || !g_path_is_absolute (u->home))
      continue;
    dirs = banger_system_user_banger_dirs (u->home);
    for (guint d = 0; dirs[d] != NULL; d++)
      g_string_append_printf (paths, " -%s", dirs[d]);
  }
  if (paths->len > 0)
    g_string_append_printf (s, "ReadWritePaths=%s\n", paths->str + 1);
  return g_string_free (s, FALSE);
}

const char *
banger_system_data_dir (void)
{
  const char *env = g_getenv ("BANGER_SYSTEM_DATA_DIR");
  return env != NULL && *env != '\0' ? env : BANGER_SYSTEM_DATA_DIR;
}

const char *
banger_system_file_status_to_string (BangerSystemFileStatus status)
{
  switch (status) {
  case BANGER_SYSTEM_FILE_INSTALLED:
    return "installed";
  case BANGER_SYSTEM_FILE_UPDATED:
    return "updated";
  case BANGER_SYSTEM_FILE_UNCHANGED:
    return "unchanged";
  case BANGER_SYSTEM_FILE_SKIPPED:
  default:
    return "skipped";
  }
}

static void
file_free (BangerSystemFile *f)
{
  g_free (f->source);
  g_free (f->target);
  g_free (f->path);
  g_free (f->message);
  g_free (f);
}

static void
step_free (BangerSystemStep *s)
{
  g_free (s->name);
  g_free (s->status);
  g_free (s->message);
  g_free (s);
}

void
banger_system_install_free (BangerSystemInstall *install)
{
  if (install == NULL)
    return;
  g_free (install->data_dir);
  g_free (install->root);
  g_free (install->user);
  g_ptr_array_unref (install->files);
  g_ptr_array_unref (install->steps);
  g_free (install);
}

static void
add_step (BangerSystemInstall *install, const char *name, const char *status, const char *message)
{
  BangerSystemStep *s = g_new0 (BangerSystemStep, 1);

  s->name = g_strdup (name);
  s->status = g_strdup (status);
  s->message = g_strdup (message);
  if (g_str_equal (status, "failed"))
    install->failed = TRUE;
  g_ptr_array_add (install->steps, s);
}

/* Compares the installed file with @data; sets f->status (and ->message). */
static gboolean
compare_file (BangerSystemFile *f, const char *data, gsize len, GError **error)
{
  g_autofree char *old = NULL;
  gsize old_len = 0;
  GStatBuf st;

  if (g_lstat (f->path, &st) != 0) {
    int saved = errno;

    if (saved == ENOENT) {
      f->status = BANGER_SYSTEM_FILE_INSTALLED;
      return TRUE;
    }
    /* The caller's message names the file. */
    g_set_error_literal (error, G_IO_ERROR, g_io_error_from_errno (saved), g_strerror (saved));
    return FALSE;
  }
  /* A symlink here is an administrator's choice (a unit masked with a link
   * to /dev/null, or a file kept elsewhere): replacing it would undo it. */
  if (S_ISLNK (st.st_mode)) {
    f->status = BANGER_SYSTEM_FILE_SKIPPED;
    f->message = g_strdup (_ ("a symbolic link (an administrator's override): left alone"));
    return TRUE;
  }
  if (!S_ISREG (st.st_mode)) {
    f->status = BANGER_SYSTEM_FILE_SKIPPED;
    f->message = g_strdup (_ ("not a regular file: left alone"));
    return TRUE;
  }
  if (!g_file_get_contents (f->path, &old, &old_len, error))
    return FALSE;
  if (old_len == len && memcmp (old, data, len) == 0 && (st.st_mode & 07777) == f->mode)
    f->status = BANGER_SYSTEM_FILE_UNCHANGED;
  else
    f->status = BANGER_SYSTEM_FILE_UPDATED;
  return TRUE;
}

static gboolean
write_file (BangerSystemFile *f, const char *data, gsize len, GError **error)
{
  g_autofree char *dir = g_path_get_dirname (f->path);

  if (g_mkdir_with_parents (dir, 0755) != 0) {
    int saved = errno;

    g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved), _ ("cannot create %s: %s"), dir,
                 g_strerror (saved));
    return FALSE;
  }
  /* CONSISTENT: a temporary file in the same directory, fsynced, renamed
   * over the old one, so a daemon reading it never sees half a file. */
  return g_file_set_contents_full (f->path, data, (gssize)len, G_FILE_SET_CONTENTS_CONSISTENT,
                                   (int)f->mode, error);
}

static gboolean
group_in_file (const char *group_file, gboolean *found, GError **error)
{
  g_autofree char *text = NULL;
  g_auto (GStrv) lines = NULL;

  if (!g_file_get_contents (group_file, &text, NULL, error))
    return FALSE;
  lines = g_strsplit (text, "\n", -1);
  *found = FALSE;
  for (guint i = 0; lines[i] != NULL; i++)
    if (g_str_has_prefix (lines[i], BANGER_GROUP ":"))
      *found = TRUE;
  return TRUE;
}

/* groupadd, not a hand-written /etc/group edit: it takes the shadow-utils
 * locks, writes gshadow, picks a system gid and runs nscd/sss hooks.
 * --prefix makes it edit <root>/etc/group without a chroot. */
static gboolean
run_groupadd (const char *root, GError **error)
{
  g_autofree char *program = g_find_program_in_path ("groupadd");
  g_autoptr (GPtrArray) argv = g_ptr_array_new ();
  g_autoptr (GSubprocess) proc = NULL;
  g_autofree char *output = NULL;

  /* sudo keeps /usr/sbin on PATH, plain users often do not have it. */
  if (program == NULL && g_file_test ("/usr/sbin/groupadd", G_FILE_TEST_IS_EXECUTABLE))
    program = g_strdup ("/usr/sbin/groupadd");
  if (program == NULL) {
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                 _ ("groupadd is not installed: create the group yourself (groupadd --system %s)"),
                 BANGER_GROUP);
    return FALSE;
  }
  g_ptr_array_add (argv, program);
  if (root != NULL) {
    g_ptr_array_add (argv, (char *)"--prefix");
    g_ptr_array_add (argv, (char *)root);
  }
  g_ptr_array_add (argv, (char *)"--system");
  g_ptr_array_add (argv, (char *)BANGER_GROUP);
  g_ptr_array_add (argv, NULL);

  proc
      = g_subprocess_newv ((const char *const *)argv->pdata,
                           G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_MERGE, error);
  if (proc == NULL || !g_subprocess_communicate_utf8 (proc, NULL, NULL, &output, NULL, error))
    return FALSE;
  if (!g_subprocess_get_successful (proc)) {
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, _ ("groupadd failed: %s"),
                 output != NULL && *output != '\0' ? g_strstrip (output) : _ ("no message"));
    return FALSE;
  }
  return TRUE;
}

/* The polkit rules grant members of group "banger"; without the group
 * nobody can be made a member. */
static void
ensure_group (BangerSystemInstall *install)
{
  g_autoptr (GError) error = NULL;
  gboolean found = FALSE;

  if (install->root != NULL) {
    g_autofree char *group_file = g_build_filename (install->root, "etc", "group", NULL);

    /* A packager's staging directory has no /etc/group: the package
     * creates the group on the target (sysusers.d or its postinst). */
    if (!g_file_test (group_file, G_FILE_TEST_EXISTS)) {
      g_autofree char *msg = g_strdup_printf (
          _ ("%s does not exist: create the group on the target (groupadd --system %s)"),
          group_file, BANGER_GROUP);
      add_step (install, "group", "skipped", msg);
      return;
    }
    if (!group_in_file (group_file, &found, &error)) {
      add_step (install, "group", "failed", error->message);
      return;
    }
  } else {
    /* getgrnam, not /etc/group: the group may come from LDAP or sssd. */
    found = getgrnam (BANGER_GROUP) != NULL;
  }

  if (found)
    add_step (install, "group", "exists", NULL);
  else if (install->dry_run)
    add_step (install, "group", "would-create", NULL);
  else if (!run_groupadd (install->root, &error))
    add_step (install, "group", "failed", error->message);
  else
    add_step (install, "group", "created", NULL);
}

static void
reload (BangerSystemInstall *install, GDBusConnection *bus, const char *name, const char *dest,
        const char *path, const char *iface, const char *method)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) reply = NULL;

  /* A daemon-reload of a big system takes seconds; never the default 25 s
   * timeout's guess. */
  reply = g_dbus_connection_call_sync (bus, dest, path, iface, method, NULL, NULL,
                                       G_DBUS_CALL_FLAGS_NO_AUTO_START, 120 * 1000, NULL, &error);
  if (reply == NULL) {
    g_dbus_error_strip_remote_error (error);
    add_step (install, name, "failed", error->message);
    return;
  }
  add_step (install, name, "reloaded", NULL);
}

static gboolean
changed (BangerSystemInstall *install, Reader reader)
{
  for (guint i = 0; i < install->files->len; i++) {
    BangerSystemFile *f = g_ptr_array_index (install->files, i);

    for (guint t = 0; t < G_N_ELEMENTS (table); t++)
      if (table[t].reader == reader && g_str_equal (table[t].target, f->target)
          && (f->status == BANGER_SYSTEM_FILE_INSTALLED || f->status == BANGER_SYSTEM_FILE_UPDATED))
        return TRUE;
  }
  return FALSE;
}

static void
reload_daemons (BangerSystemInstall *install)
{
  gboolean need_systemd = changed (install, READER_SYSTEMD);
  gboolean need_dbus = changed (install, READER_DBUS);
  /* What libsystemd's sd_booted() tests; not worth linking it for. */
  gboolean systemd_runs = g_file_test ("/run/systemd/system", G_FILE_TEST_IS_DIR);
  g_autoptr (GDBusConnection) bus = NULL;
  g_autoptr (GError) bus_error = NULL;

  if (install->root != NULL) {
    add_step (install, "systemd", "skipped", _ ("--root: no daemon is asked to reload"));
    add_step (install, "dbus-daemon", "skipped", _ ("--root: no daemon is asked to reload"));
    return;
  }
  if ((need_systemd && systemd_runs) || need_dbus)
    bus = g_bus_get_sync (G_BUS_TYPE_SYSTEM, NULL, &bus_error);

  if (!need_systemd)
    add_step (install, "systemd", "not-needed", NULL);
  else if (!systemd_runs)
    add_step (install, "systemd", "skipped", _ ("systemd is not running"));
  else if (bus == NULL)
    add_step (install, "systemd", "failed", bus_error->message);
  else if (install->dry_run)
    add_step (install, "systemd", "would-reload", NULL);
  else
    reload (install, bus, "systemd", "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
            "org.freedesktop.systemd1.Manager", "Reload");

  if (!need_dbus)
    add_step (install, "dbus-daemon", "not-needed", NULL);
  else if (bus == NULL)
    add_step (install, "dbus-daemon", "skipped", _ ("the system bus (dbus-daemon) is not running"));
  else if (install->dry_run)
    add_step (install, "dbus-daemon", "would-reload", NULL);
  else
    reload (install, bus, "dbus-daemon", "org.freedesktop.DBus", "/org/freedesktop/DBus",
            "org.freedesktop.DBus", "ReloadConfig");

  /* Root cannot reach each user's manager; they reload at the next login. */
  if (changed (install, READER_USER) && systemd_runs)
    add_step (install, "systemd --user", "skipped",
              _ ("user managers read bangerd.service at the next login; in a running session: "
                 "systemctl --user daemon-reload"));
}

/* banger's configuration directory (helper.conf, and install.toml that
 * InstallRelease writes): bangerd-root.service opens it for writing with
 * ReadWritePaths=-…, and "-" silently skips a directory that does not
 * exist, so it must exist before the helper starts. */
static void
ensure_config_dir (BangerSystemInstall *install)
{
  g_autofree char *dir = install->root != NULL
                             ? g_build_filename (install->root, BANGER_SYSCONFDIR, NULL)
                             : g_strdup (BANGER_SYSCONFDIR);

  if (g_file_test (dir, G_FILE_TEST_IS_DIR))
    add_step (install, "config-dir", "exists", dir);
  else if (install->dry_run)
    add_step (install, "config-dir", "would-create", dir);
  else if (g_mkdir_with_parents (dir, 0755) != 0) {
    int saved = errno;
    g_autofree char *msg = g_strdup_printf ("%s: %s", dir, g_strerror (saved));

    add_step (install, "config-dir", "failed", msg);
  } else
    add_step (install, "config-dir", "created", dir);
}

/* Adds @user to group banger; their membership is what the polkit rules
 * grant, read from the group database, so it counts at once (no new login
 * is needed for the helper; only the user's own processes see the group
 * after their next login). */
static void
ensure_member (BangerSystemInstall *install, const BangerSystemUser *user)
{
  g_autoptr (GError) error = NULL;

  if (banger_system_user_in_group (user->name, user->gid, BANGER_GROUP))
    add_step (install, "member", "exists", user->name);
  else if (install->dry_run)
    add_step (install, "member", "would-add", user->name);
  else if (getgrnam (BANGER_GROUP) == NULL)
    add_step (install, "member", "failed", _ ("the group does not exist"));
  else if (!banger_system_user_add_to_group (user, BANGER_GROUP, &error))
    add_step (install, "member", "failed", error->message);
  else {
    add_step (install, "member", "added", user->name);
    install->user_added = TRUE;
  }
}

/* Linger keeps the user's manager, bangerd and their VMs running when they
 * log out (and starts them at boot). */
static void
ensure_linger (BangerSystemInstall *install, const BangerSystemUser *user)
{
  g_autoptr (GError) error = NULL;

  if (!g_file_test ("/run/systemd/system", G_FILE_TEST_IS_DIR))
    add_step (install, "linger", "skipped", _ ("systemd is not running"));
  else if (banger_system_user_has_linger (user->name))
    add_step (install, "linger", "exists", user->name);
  else if (install->dry_run)
    add_step (install, "linger", "would-enable", user->name);
  else if (!banger_system_user_set_linger (user, TRUE, &error))
    add_step (install, "linger", "failed", error->message);
  else {
    add_step (install, "linger", "enabled", user->name);
    install->linger_enabled = TRUE;
  }
}

/* The user's bangerd.service enabled (it starts with their manager, so
 * with linger at boot: reconcile finds the VMs) and started now. */
static void
start_user_service (BangerSystemInstall *install, const BangerSystemUser *user)
{
  const char *reload[] = { "daemon-reload", NULL };
  const char *enable[] = { "enable", "--now", "bangerd.service", NULL };
  g_autoptr (GError) error = NULL;

  if (install->dry_run) {
    add_step (install, "bangerd.service", "would-enable", user->name);
    return;
  }
  if (!banger_system_user_systemctl (user, TRUE, reload, &error)
      || !banger_system_user_systemctl (user, FALSE, enable, &error))
    add_step (install, "bangerd.service", "failed", error->message);
  else
    add_step (install, "bangerd.service", "enabled", user->name);
}

BangerSystemInstall *
banger_system_install_run (const char *data_dir, const char *root, gboolean dry_run,
                           const BangerSystemUser *user, GError **error)
{
  g_autoptr (BangerSystemInstall) install = g_new0 (BangerSystemInstall, 1);
  g_autoptr (GPtrArray) contents = g_ptr_array_new_with_free_func ((GDestroyNotify)g_bytes_unref);

  install->data_dir = g_strdup (data_dir);
  install->root = root != NULL ? g_canonicalize_filename (root, NULL) : NULL;
  install->dry_run = dry_run;
  install->files = g_ptr_array_new_with_free_func ((GDestroyNotify)file_free);
  install->steps = g_ptr_array_new_with_free_func ((GDestroyNotify)step_free);

  /* Every source first: a partial banger installation writes nothing. */
  for (guint i = 0; i < G_N_ELEMENTS (table); i++) {
    BangerSystemFile *f = g_new0 (BangerSystemFile, 1);
    g_autoptr (GError) local = NULL;
    char *data = NULL;
    gsize len = 0;

    /* A packager's --root has no users: the target's install makes it. */
    if (table[i].source == NULL && install->root != NULL) {
      g_free (f);
      continue;
    }
    if (table[i].source == NULL) {
      g_autoptr (GPtrArray) members = banger_system_group_members (user ? user->name : NULL);

      f->target = g_strdup (table[i].target);
      f->path = install->root != NULL ? g_build_filename (install->root, table[i].target, NULL)
                                      : g_strdup (table[i].target);
      f->mode = FILE_MODE;
      g_ptr_array_add (install->files, f);
      data = helper_dropin_text (members);
      g_ptr_array_add (contents, g_bytes_new_take (data, strlen (data)));
      continue;
    }
    f->source = g_build_filename (data_dir, table[i].source, NULL);
    f->target = g_strdup (table[i].target);
    f->path = install->root != NULL ? g_build_filename (install->root, table[i].target, NULL)
                                    : g_strdup (table[i].target);
    f->mode = FILE_MODE;
    g_ptr_array_add (install->files, f);
    if (!g_file_get_contents (f->source, &data, &len, &local)) {
      g_set_error (error, BANGER_CLI_ERROR, BANGER_CLI_ERROR_FAILED,
                   _ ("banger's system files are incomplete (%s); reinstall banger"),
                   local->message);
      return NULL;
    }
    g_ptr_array_add (contents, g_bytes_new_take (data, len));
  }

  /* umask 077 (a strict sudo) would leave files that dbus-daemon and
   * polkitd, which do not run as root, cannot read. */
  umask (022);
  for (guint i = 0; i < install->files->len; i++) {
    BangerSystemFile *f = g_ptr_array_index (install->files, i);
    gsize len = 0;
    const char *data = g_bytes_get_data (g_ptr_array_index (contents, i), &len);
    g_autoptr (GError) local = NULL;

    if (!compare_file (f, data, len, &local)
        || (!dry_run
            && (f->status == BANGER_SYSTEM_FILE_INSTALLED
                || f->status == BANGER_SYSTEM_FILE_UPDATED)
            && !write_file (f, data, len, &local))) {
      g_set_error (error, BANGER_CLI_ERROR, BANGER_CLI_ERROR_FAILED, _ ("cannot install %s: %s"),
                   f->path, local->message);
      return NULL;
    }
  }

  ensure_config_dir (install);
  ensure_group (install);
  if (user != NULL && install->root == NULL) {
    ensure_member (install, user);
    ensure_linger (install, user);
  }
  reload_daemons (install);
  if (user != NULL && install->root == NULL
      && g_file_test ("/run/systemd/system", G_FILE_TEST_IS_DIR))
    start_user_service (install, user);
  if (user != NULL)
    install->user = g_strdup (user->name);
  return g_steal_pointer (&install);
}
