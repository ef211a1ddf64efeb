#include "config.h"

#include "system-user.h"

#include <glib/gi18n.h>
#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include "errors.h"

void
banger_system_user_free (BangerSystemUser *user)
{
  if (user == NULL)
    return;
  g_free (user->name);
  g_free (user->home);
  g_free (user);
}

BangerSystemUser *
banger_system_user_lookup (const char *name, GError **error)
{
  struct passwd *pw = getpwnam (name);
  BangerSystemUser *user;

  if (pw == NULL) {
    g_set_error (error, BANGER_CLI_ERROR, BANGER_CLI_ERROR_FAILED, _ ("there is no user “%s”"),
                 name);
    return NULL;
  }
  user = g_new0 (BangerSystemUser, 1);
  user->name = g_strdup (pw->pw_name);
  user->uid = pw->pw_uid;
  user->gid = pw->pw_gid;
  user->home = g_strdup (pw->pw_dir);
  return user;
}

BangerSystemUser *
banger_system_user_for_command (const char *opt_user, GError **error)
{
  const char *sudo_user = g_getenv ("SUDO_USER");
  g_autoptr (BangerSystemUser) user = NULL;

  if (opt_user != NULL)
    return banger_system_user_lookup (opt_user, error);
  /* sudo sets SUDO_USER to the user who ran it; only trusted as root
   * (anyone can set the variable for their own process). */
  if (geteuid () != 0 || sudo_user == NULL || *sudo_user == '\0')
    return NULL;
  user = banger_system_user_lookup (sudo_user, error);
  if (user == NULL || user->uid == 0)
    return NULL;
  return g_steal_pointer (&user);
}

gboolean
banger_system_user_in_group (const char *name, gid_t primary, const char *group)
{
  struct group *gr = getgrnam (group);
  g_autofree gid_t *groups = NULL;
  int n = 32;

  if (gr == NULL)
    return FALSE;
  if (gr->gr_gid == primary)
    return TRUE;
  /* getgrouplist, as polkit's isInGroup does: the database, not the
   * groups of a process (which change only at the next login). */
  for (int tries = 0; tries < 2; tries++) {
    g_free (groups);
    groups = g_new (gid_t, n);
    if (getgrouplist (name, primary, groups, &n) >= 0)
      break;
  }
  for (int i = 0; i < n; i++)
    if (groups[i] == gr->gr_gid)
      return TRUE;
  return FALSE;
}

static char *
find_program (const char *name)
{
  char *path = g_find_program_in_path (name);
  const char *const dirs[] = { "/usr/sbin", "/sbin", "/usr/bin", "/bin" };

  /* sudo keeps /usr/sbin on PATH, plain users often do not have it. */
  for (guint i = 0; path == NULL && i < G_N_ELEMENTS (dirs); i++) {
    g_autofree char *candidate = g_build_filename (dirs[i], name, NULL);

    if (g_file_test (candidate, G_FILE_TEST_IS_EXECUTABLE))
      path = g_steal_pointer (&candidate);
  }
  return path;
}

gboolean
banger_run_program (const char *const *argv, char **output, GError **error)
{
  g_autofree char *program = find_program (argv[0]);
  g_autoptr (GPtrArray) args = g_ptr_array_new ();
  g_autoptr (GSubprocess) proc = NULL;
  g_autofree char *out = NULL;

  if (program == NULL) {
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND, _ ("%s is not installed"), argv[0]);
    return FALSE;
  }
  g_ptr_array_add (args, program);
  for (guint i = 1; argv[i] != NULL; i++)
    g_ptr_array_add (args, (char *)argv[i]);
  g_ptr_array_add (args, NULL);
  proc = g_subprocess_newv ((const char *const *)args->pdata,
                            G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_MERGE, error);
  if (proc == NULL || !g_subprocess_communicate_utf8 (proc, NULL, NULL, &out, NULL, error))
    return FALSE;
  if (!g_subprocess_get_successful (proc)) {
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, _ ("%s failed: %s"), argv[0],
                 out != NULL && *out != '\0' ? g_strstrip (out) : _ ("no message"));
    return FALSE;
  }
  if (output != NULL)
    *output = g_steal_pointer (&out);
  return TRUE;
}

/* usermod, not an /etc/group edit: it takes the shadow-utils locks and
 * writes gshadow too. */
gboolean
banger_system_user_add_to_group (const BangerSystemUser *user, const char *group, GError **error)
{
  const char *argv[] = { "usermod", "--append", "--groups", group, user->name, NULL };

  return banger_run_program (argv, NULL, error);
}

gboolean
banger_system_user_has_linger (const char *name)
{
  g_autofree char *path = g_build_filename ("/var/lib/systemd/linger", name, NULL);

  return g_file_test (path, G_FILE_TEST_EXISTS);
}

/* logind's SetUserLinger on the system bus (what `loginctl enable-linger`
 * calls): root may set it for anyone without a prompt. */
gboolean
banger_system_user_set_linger (const BangerSystemUser *user, gboolean linger, GError **error)
{
  g_autoptr (GDBusConnection) bus = g_bus_get_sync (G_BUS_TYPE_SYSTEM, NULL, error);
  g_autoptr (GVariant) reply = NULL;

  if (bus == NULL)
    return FALSE;
  reply = g_dbus_connection_call_sync (
      bus, "org.freedesktop.login1", "/org/freedesktop/login1", "org.freedesktop.login1.Manager",
      "SetUserLinger", g_variant_new ("(ubb)", (guint32)user->uid, linger, FALSE), NULL,
      G_DBUS_CALL_FLAGS_NONE, 60 * 1000, NULL, error);
  if (reply == NULL) {
    g_dbus_error_strip_remote_error (*error);
    return FALSE;
  }
  return TRUE;
}

gboolean
banger_system_user_systemctl (const BangerSystemUser *user, gboolean start_manager,
                              const char *const *args, GError **error)
{
  g_autofree char *uid = g_strdup_printf ("%u", (guint)user->uid);
  g_autofree char *gid = g_strdup_printf ("%u", (guint)user->gid);
  g_autofree char *reuid = g_strdup_printf ("--reuid=%s", uid);
  g_autofree char *regid = g_strdup_printf ("--regid=%s", gid);
  g_autofree char *runtime = g_strdup_printf ("XDG_RUNTIME_DIR=/run/user/%s", uid);
  g_autofree char *bus = g_strdup_printf ("DBUS_SESSION_BUS_ADDRESS=unix:path=/run/user/%s/bus",
                                          uid);
  g_autofree char *home = g_strdup_printf ("HOME=%s", user->home);
  g_autoptr (GPtrArray) argv = g_ptr_array_new ();

  if (start_manager) {
    /* user@UID.service is Type=notify: the start returns when the
     * manager (and its bus) is up. */
    g_autofree char *unit = g_strdup_printf ("user@%s.service", uid);
    const char *start[] = { "systemctl", "start", unit, NULL };

    if (!banger_run_program (start, NULL, error))
      return FALSE;
  }
  /* setpriv (util-linux) rather than a set-uid child_setup: initgroups
   * reads NSS, which is not safe between fork and exec. */
  g_ptr_array_add (argv, (char *)"setpriv");
  g_ptr_array_add (argv, reuid);
  g_ptr_array_add (argv, regid);
  g_ptr_array_add (argv, (char *)"--init-groups");
  g_ptr_array_add (argv, (char *)"--");
  g_ptr_array_add (argv, (char *)"env");
  g_ptr_array_add (argv, runtime);
  g_ptr_array_add (argv, bus);
  g_ptr_array_add (argv, home);
  g_ptr_array_add (argv, (char *)"systemctl");
  g_ptr_array_add (argv, (char *)"--user");
  for (guint i = 0; args[i] != NULL; i++)
    g_ptr_array_add (argv, (char *)args[i]);
  g_ptr_array_add (argv, NULL);
  return banger_run_program ((const char *const *)argv->pdata, NULL, error);
}

char **
banger_system_user_banger_dirs (const char *home)
{
  char **dirs = g_new0 (char *, 3);

  dirs[0] = g_build_filename (home, ".local", "share", "banger", NULL);
  dirs[1] = g_build_filename (home, ".cache", "banger", NULL);
  return dirs;
}

static int
compare_names (gconstpointer a, gconstpointer b)
{
  return g_strcmp0 (*(char *const *)a, *(char *const *)b);
}

GPtrArray *
banger_system_group_members (const char *extra)
{
  GPtrArray *out = g_ptr_array_new_with_free_func (g_free);
  struct group *gr = getgrnam (BANGER_GROUP);

  if (gr != NULL)
    for (char **m = gr->gr_mem; *m != NULL; m++)
      g_ptr_array_add (out, g_strdup (*m));
  if (extra != NULL && !g_ptr_array_find_with_equal_func (out, extra, g_str_equal, NULL))
    g_ptr_array_add (out, g_strdup (extra));
  g_ptr_array_sort (out, compare_names);
  return out;
}
