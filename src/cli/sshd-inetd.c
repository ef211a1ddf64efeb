#include "config.h"

#include "sshd-inetd.h"

#include <errno.h>
#include <glib/gi18n.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "errors.h"
#include "ssh-shortcut.h"

/* What `banger __agent-session` needs to reach the same bangerd and data
 * as the banger that runs sshd: sshd gives a session a fresh environment
 * (USER, HOME, PATH, SHELL…) and nothing else. */
static const char *const passed_env[] = {
  "DBUS_SESSION_BUS_ADDRESS",
  "DBUS_SYSTEM_BUS_ADDRESS",
  "XDG_RUNTIME_DIR",
  "XDG_DATA_HOME",
  "XDG_CONFIG_HOME",
  "XDG_CACHE_HOME",
  "XDG_STATE_HOME",
  "LANG",
  "LANGUAGE",
  "LC_ALL",
  "LC_MESSAGES",
  /* A sanitizer build's session must run as the banger that started it
   * (tests/run-all.sh: the leak suppressions). */
  "ASAN_OPTIONS",
  "LSAN_OPTIONS",
  "UBSAN_OPTIONS",
};

/* sshd_config splits SetEnv's arguments like a command line: a value goes
 * in double quotes, and one that would need escapes is left out. */
static void
add_setenv (GString *line, const char *name, const char *value)
{
  for (const char *p = value; *p != '\0'; p++)
    if (*p == '"' || *p == '\\' || (guchar)*p < 0x20)
      return;
  g_string_append_printf (line, " \"%s=%s\"", name, value);
}

static gboolean
is_passed (const char *name)
{
  if (g_str_has_prefix (name, "BANGER_"))
    return TRUE;
  for (guint i = 0; i < G_N_ELEMENTS (passed_env); i++)
    if (g_str_equal (name, passed_env[i]))
      return TRUE;
  return FALSE;
}

/* A path in sshd_config: the parser takes double quotes, not escapes. */
static gboolean
check_path (const char *what, const char *path, GError **error)
{
  if (path == NULL || !g_path_is_absolute (path) || strpbrk (path, "\"\n") != NULL) {
    g_set_error (error, BANGER_CLI_ERROR, BANGER_CLI_ERROR_FAILED,
                 _ ("bangerd gave no usable %s (“%s”)"), what, path != NULL ? path : "");
    return FALSE;
  }
  if (access (path, R_OK) < 0) {
    g_set_error (error, BANGER_CLI_ERROR, BANGER_CLI_ERROR_FAILED, _ ("cannot read %s: %s"), path,
                 g_strerror (errno));
    return FALSE;
  }
  return TRUE;
}

static char *
sshd_config_text (const char *program, const char *name, const char *host_key,
                  const char *authorized, const char *user)
{
  g_autoptr (GString) conf = g_string_new (NULL);
  g_autofree char *quoted_program = g_shell_quote (program);
  g_auto (GStrv) env = g_get_environ ();
  g_autoptr (GString) setenv_line = g_string_new (NULL);
  g_auto (GStrv) pieces = g_strsplit (authorized, "%", -1);
  g_autofree char *authorized_word = g_strjoinv ("%%", pieces);

  g_string_append_printf (conf,
                          "# Written by banger for `ssh %s.vm` (docs/cli.md, \"VMs without "
                          "sshd\"): this host's sshd, run by banger's ProxyCommand as %s.\n",
                          name, user);
  /* The VM's own host key, the one the KnownHostsCommand pins. */
  g_string_append_printf (conf, "HostKey \"%s\"\n", host_key);
  /* Only banger's key, for only this user; nothing but keys. sshd expands
   * %-tokens in this one path. */
  g_string_append_printf (conf, "AuthorizedKeysFile \"%s\"\n", authorized_word);
  g_string_append (conf, "AuthorizedKeysCommand none\n");
  g_string_append_printf (conf, "AllowUsers \"%s\"\n", user);
  g_string_append (conf, "AuthenticationMethods publickey\n"
                         "PubkeyAuthentication yes\n"
                         "PasswordAuthentication no\n"
                         "KbdInteractiveAuthentication no\n"
                         "HostbasedAuthentication no\n"
                         "GSSAPIAuthentication no\n"
                         "PermitRootLogin prohibit-password\n"
                         /* PAM needs root; the key file is banger's own (its
                          * directory may be shared with the user's other files). */
                         "UsePAM no\n"
                         "StrictModes no\n"
                         /* Not a daemon: no pid file, no banner, no lastlog. */
                         "PidFile none\n"
                         "PrintMotd no\n"
                         "PrintLastLog no\n"
                         "Banner none\n"
                         "PermitUserEnvironment no\n"
                         "PermitUserRC no\n"
                         "DisableForwarding yes\n"
                         "PermitTunnel no\n"
                         "PermitTTY yes\n"
                         "LoginGraceTime 120\n"
                         /* Errors reach the user: sshd runs with -e, its
                          * stderr is ssh's. */
                         "LogLevel ERROR\n");
  g_string_append (conf, "Subsystem sftp " BANGER_SSHD_SFTP_MARK "\n");
  for (guint i = 0; env[i] != NULL; i++) {
    g_autofree char *var = g_strndup (env[i], strcspn (env[i], "="));

    if (is_passed (var))
      add_setenv (setenv_line, var, env[i] + strlen (var) + 1);
  }
  /* One line: sshd keeps only the first SetEnv it reads. */
  if (setenv_line->len > 0)
    g_string_append_printf (conf, "SetEnv%s\n", setenv_line->str);
  /* Every session, command or subsystem, goes to the guest. */
  g_string_append_printf (conf, "ForceCommand %s __agent-session %s\n", quoted_program, name);
  return g_string_free (g_steal_pointer (&conf), FALSE);
}

gboolean
banger_cli_sshd_inetd_exec (const char *program, const char *name, GVariant *config,
                            const char *login, GError **error)
{
  const char *user = g_get_user_name ();
  const char *host_key = NULL, *identity = NULL, *alias = NULL;
  g_autofree char *sshd = NULL;
  g_autofree char *authorized = NULL;
  g_autofree char *dir = NULL;
  g_autofree char *conf_path = NULL;
  g_autofree char *text = NULL;
  g_autoptr (GError) local = NULL;
  const char *argv[6];

  if (login != NULL && !g_str_equal (login, user)) {
    g_set_error (error, BANGER_CLI_ERROR, BANGER_CLI_ERROR_FAILED,
                 _ ("VM “%s” runs an image without sshd: ssh reaches it through banger's guest "
                    "agent and this host's sshd, which logs in only you (“%s”), not “%s” (drop "
                    "the user name: ssh %s.vm; the commands run as root in the guest)"),
                 name, user, login, name);
    return FALSE;
  }
  sshd = banger_ssh_find_sshd ();
  if (sshd == NULL) {
    g_set_error (error, BANGER_CLI_ERROR, BANGER_CLI_ERROR_FAILED,
                 _ ("VM “%s” runs an image without sshd: ssh reaches it through banger's guest "
                    "agent, which needs OpenSSH's server program sshd on this host (only the "
                    "program, not its service; Debian: openssh-server). Without it, use “banger "
                    "vm ssh %s”"),
                 name, name);
    return FALSE;
  }
  g_variant_lookup (config, "host_key_file", "&s", &host_key);
  g_variant_lookup (config, "identity_file", "&s", &identity);
  g_variant_lookup (config, "host_key_alias", "&s", &alias);
  if (identity != NULL)
    authorized = g_strconcat (identity, ".pub", NULL);
  if (!check_path (_ ("host key"), host_key, error) || !check_path (_ ("key"), authorized, error))
    return FALSE;
  if (alias == NULL || strpbrk (alias, "/ \"\n") != NULL || alias[0] == '.') {
    g_set_error (error, BANGER_CLI_ERROR, BANGER_CLI_ERROR_FAILED,
                 _ ("bangerd named no pinned host key for VM “%s”"), name);
    return FALSE;
  }

  /* One file per VM, rewritten each time (the same bytes unless banger or
   * its environment changed); sshd reads it at once. */
  dir = g_build_filename (g_get_user_runtime_dir (), "banger", "sshd", NULL);
  if (g_mkdir_with_parents (dir, 0700) < 0) {
    g_set_error (error, BANGER_CLI_ERROR, BANGER_CLI_ERROR_FAILED, _ ("cannot create %s: %s"), dir,
                 g_strerror (errno));
    return FALSE;
  }
  conf_path = g_strdup_printf ("%s/%s.conf", dir, alias);
  text = sshd_config_text (program, name, host_key, authorized, user);
  if (!g_file_set_contents_full (conf_path, text, -1, G_FILE_SET_CONTENTS_CONSISTENT, 0600,
                                 &local)) {
    g_set_error (error, BANGER_CLI_ERROR, BANGER_CLI_ERROR_FAILED, _ ("cannot write %s: %s"),
                 conf_path, local->message);
    return FALSE;
  }
  /* Run as root, sshd insists on its privilege-separation directory,
   * which only its service creates: create it as the service would. */
  if (getuid () == 0 && g_mkdir ("/run/sshd", 0755) < 0 && errno != EEXIST)
    g_debug ("cannot create /run/sshd: %s", g_strerror (errno));

  argv[0] = sshd;
  argv[1] = "-i"; /* inetd mode: the connection is stdin and stdout */
  argv[2] = "-e"; /* log to stderr, which ssh shows */
  argv[3] = "-f";
  argv[4] = conf_path;
  argv[5] = NULL;
  fflush (stdout);
  execv (sshd, (char **)argv);
  g_set_error (error, BANGER_CLI_ERROR, BANGER_CLI_ERROR_FAILED, _ ("cannot run %s: %s"), sshd,
               g_strerror (errno));
  return FALSE;
}
