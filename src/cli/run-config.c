#include "config.h"

#include "run-config.h"

#include <glib/gi18n.h>
#include <stdio.h>
#include <string.h>

#include "exec-session.h"

void
banger_run_config_clear (BangerRunConfig *rc)
{
  g_clear_pointer (&rc->argv, g_strfreev);
  g_clear_pointer (&rc->env, g_strfreev);
  g_clear_pointer (&rc->workdir, g_free);
  g_clear_pointer (&rc->user, g_free);
}

gboolean
banger_run_config_user_is_root (const char *user)
{
  g_auto (GStrv) parts = NULL;

  if (user == NULL || user[0] == '\0')
    return TRUE;
  parts = g_strsplit (user, ":", 2);
  /* Only the user decides: "root:wheel" still runs as root, like Docker. */
  return g_str_equal (parts[0], "root") || g_str_equal (parts[0], "0");
}

static char **
strv_lookup (GVariant *config, const char *key)
{
  g_autoptr (GVariant) value = g_variant_lookup_value (config, key, G_VARIANT_TYPE_STRING_ARRAY);

  if (value == NULL)
    return NULL;
  return g_variant_dup_strv (value, NULL);
}

gboolean
banger_run_config_parse (GVariant *config, BangerRunConfig *rc)
{
  g_auto (GStrv) entrypoint = NULL;
  g_auto (GStrv) cmd = NULL;
  g_autoptr (GStrvBuilder) argv = g_strv_builder_new ();
  const char *workdir = NULL;
  const char *user = NULL;

  memset (rc, 0, sizeof *rc);
  if (config == NULL)
    return FALSE;
  entrypoint = strv_lookup (config, "entrypoint");
  cmd = strv_lookup (config, "cmd");
  rc->env = strv_lookup (config, "env");
  if (g_variant_lookup (config, "workdir", "&s", &workdir) && workdir[0] != '\0')
    rc->workdir = g_strdup (workdir);
  if (g_variant_lookup (config, "user", "&s", &user) && !banger_run_config_user_is_root (user))
    rc->user = g_strdup (user);

  /* Docker's rule: the entrypoint, then cmd as its arguments (or cmd
   * alone when there is no entrypoint). */
  if (entrypoint != NULL)
    g_strv_builder_addv (argv, (const char **)entrypoint);
  if (cmd != NULL)
    g_strv_builder_addv (argv, (const char **)cmd);
  rc->argv = g_strv_builder_end (argv);
  if (rc->argv[0] == NULL || rc->argv[0][0] == '\0') {
    g_clear_pointer (&rc->argv, g_strfreev);
    return FALSE;
  }
  return TRUE;
}

/* Runs @argv in the guest with no input and its output thrown away;
 * TRUE when it exits 0. A missing program exits 127. */
static gboolean
probe (BangerVM *vm, const char *name, const char *const *argv)
{
  BangerExecSpec spec = { .argv = argv, .quiet = TRUE };
  g_autoptr (GError) error = NULL;
  int status = -1;

  if (!banger_cli_exec (vm, name, &spec, &status, &error)) {
    g_debug ("probe %s: %s", argv[0], error->message);
    return FALSE;
  }
  g_debug ("probe %s: exit %d", argv[0], status);
  return status == 0;
}

char **
banger_run_config_user_argv (BangerVM *vm, const char *name, const BangerRunConfig *rc)
{
  static const char *const setpriv_probe[]
      = { "setpriv", "--reuid=0", "--regid=0", "--clear-groups", "--", "true", NULL };
  static const char *const su_probe[]
      = { "su", "-m", "-s", "/bin/sh", "-c", "true", "--", "root", NULL };
  g_autoptr (GStrvBuilder) out = g_strv_builder_new ();
  g_auto (GStrv) parts = g_strsplit (rc->user, ":", 2);
  const char *user = parts[0];
  const char *group = parts[1] != NULL && parts[1][0] != '\0' ? parts[1] : user;

  /* util-linux setpriv changes ids without a shell; busybox's setpriv
   * cannot (no --reuid), which the probe finds out. */
  if (probe (vm, name, setpriv_probe)) {
    g_autofree char *reuid = g_strdup_printf ("--reuid=%s", user);
    g_autofree char *regid = g_strdup_printf ("--regid=%s", group);

    g_strv_builder_add_many (out, "setpriv", reuid, regid, "--clear-groups", "--", NULL);
    g_strv_builder_addv (out, (const char **)rc->argv);
    return g_strv_builder_end (out);
  }
  /* su takes the user's group from its passwd entry. Its -c needs a shell
   * script; this one only execs the argv it is handed, unparsed, so no
   * word of the image's command is ever shell syntax. -m keeps the
   * image's environment. */
  if (probe (vm, name, su_probe)) {
    g_strv_builder_add_many (out, "su", "-m", "-s", "/bin/sh", "-c", "exec \"$0\" \"$@\"", "--",
                             user, NULL);
    g_strv_builder_addv (out, (const char **)rc->argv);
    return g_strv_builder_end (out);
  }
  fprintf (stderr,
           _ ("banger: warning: the image asks to run as user “%s”, but the guest has neither "
              "setpriv nor su: the command runs as root\n"),
           rc->user);
  return g_strdupv (rc->argv);
}
