/* `banger vm exec` and `banger vm ssh`: a command or a login in a running
 * VM, through the agent (exec) or real OpenSSH with the config bangerd
 * gives (ssh), the agent's pty standing in when the guest has no sshd.
 * `vm run` logs in and runs commands with the same helpers. */

#include "config.h"

#include <errno.h>
#include <glib/gi18n.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "cmd-vm-private.h"
#include "errors.h"
#include "exec-session.h"

/* Option storage; `vm run --repo` sets --workdir to the shipped tree. */
static gboolean opt_tty;
char *banger_cli_vm_opt_workdir;
static char **opt_env;

const GOptionEntry banger_cli_vm_exec_options[] = {
  { "tty", 't', 0, G_OPTION_ARG_NONE, &opt_tty, N_ ("Run the command on a pseudo-terminal"), NULL },
  { "env", 'e', 0, G_OPTION_ARG_STRING_ARRAY, &opt_env, N_ ("Set an environment variable"),
    N_ ("KEY=VALUE") },
  { "workdir", 'w', 0, G_OPTION_ARG_STRING, &banger_cli_vm_opt_workdir,
    N_ ("Working directory in the guest"), N_ ("DIR") },
  { NULL },
};

/* ---- exec / ssh ---- */

/* The guest command after NAME: option parsing stopped at NAME, so a "--"
 * after it is still there. */
static char **
command_after_name (char **args)
{
  if (args[0] == NULL)
    return args;
  return args[1] != NULL && g_str_equal (args[1], "--") ? args + 2 : args + 1;
}

gboolean
banger_cli_vm_exec_in_vm (BangerVM *vm, const char *name, const char *const *argv, gboolean tty,
                          int *status, GError **error)
{
  BangerExecSpec spec = {
    .argv = argv,
    .env = (const char *const *)opt_env,
    .cwd = banger_cli_vm_opt_workdir,
    .tty = tty,
  };

  if (!banger_cli_vm_require_running (vm, name, error))
    return FALSE;
  if (!banger_cli_exec (vm, name, &spec, status, error)) {
    banger_cli_vm_annotate_vm_call (error, vm, name, WANT_IN_USE);
    return FALSE;
  }
  return TRUE;
}

gboolean
banger_cli_vm_cmd_exec (BangerCli *cli, char **args, GError **error)
{
  g_autoptr (BangerVM) vm = NULL;
  char **command;

  if (!banger_cli_check_args (cli, args, 1, G_MAXUINT, error))
    return FALSE;
  command = command_after_name (args);
  if (command[0] == NULL)
    return banger_cli_usage_error (cli, error, _ ("missing argument: %s"), _ ("COMMAND"));
  for (guint i = 0; opt_env != NULL && opt_env[i] != NULL; i++)
    if (strchr (opt_env[i], '=') == NULL || opt_env[i][0] == '=')
      return banger_cli_usage_error (cli, error, _ ("invalid value “%s” for --env (use KEY=VALUE)"),
                                     opt_env[i]);
  vm = banger_cli_find_vm (cli, args[0], error);
  if (vm == NULL)
    return FALSE;
  return banger_cli_vm_exec_in_vm (vm, args[0], (const char *const *)command, opt_tty,
                                   &cli->exit_status, error);
}

void
banger_cli_vm_ssh_config_clear (SshConfig *c)
{
  g_clear_pointer (&c->config, g_variant_unref);
}

gboolean
banger_cli_vm_get_ssh_config (BangerVM *vm, const char *name, SshConfig *c, GError **error)
{
  c->port = 22;
  c->user = "root";
  c->has_sshd = FALSE;
  if (!banger_vm_call_get_sshconfig_sync (vm, &c->config, NULL, error)) {
    banger_cli_vm_annotate_vm_call (error, vm, name, WANT_IN_USE);
    return FALSE;
  }
  g_variant_lookup (c->config, "host", "&s", &c->host);
  g_variant_lookup (c->config, "port", "q", &c->port);
  g_variant_lookup (c->config, "user", "&s", &c->user);
  g_variant_lookup (c->config, "identity_file", "&s", &c->identity);
  g_variant_lookup (c->config, "known_hosts_file", "&s", &c->known_hosts);
  g_variant_lookup (c->config, "host_key_alias", "&s", &c->alias);
  g_variant_lookup (c->config, "has_sshd", "b", &c->has_sshd);
  if (c->host == NULL || c->host[0] == '\0')
    c->has_sshd = FALSE;
  return TRUE;
}

/* The argv of real OpenSSH for @c: banger's key only, and the VM's host
 * key pinned in banger's known_hosts under its alias, so there is never a
 * trust-on-first-use prompt and a changed key is refused. */
GPtrArray *
banger_cli_vm_ssh_argv (const SshConfig *c, char **command)
{
  GPtrArray *argv = g_ptr_array_new_with_free_func (g_free);

  g_ptr_array_add (argv, g_strdup ("ssh"));
  if (c->port != 22) {
    g_ptr_array_add (argv, g_strdup ("-p"));
    g_ptr_array_add (argv, g_strdup_printf ("%u", c->port));
  }
  if (c->identity != NULL) {
    g_ptr_array_add (argv, g_strdup ("-i"));
    g_ptr_array_add (argv, g_strdup (c->identity));
  }
  if (c->known_hosts != NULL) {
    g_ptr_array_add (argv, g_strdup ("-o"));
    g_ptr_array_add (argv, g_strdup_printf ("UserKnownHostsFile=%s", c->known_hosts));
  }
  if (c->alias != NULL) {
    g_ptr_array_add (argv, g_strdup ("-o"));
    g_ptr_array_add (argv, g_strdup_printf ("HostKeyAlias=%s", c->alias));
  }
  g_ptr_array_add (argv, g_strdup ("-o"));
  g_ptr_array_add (argv, g_strdup ("StrictHostKeyChecking=yes"));
  g_ptr_array_add (argv, g_strdup ("-o"));
  g_ptr_array_add (argv, g_strdup ("IdentitiesOnly=yes"));
  /* sshd may come up a moment after the agent answered Start: let ssh
   * retry a refused connection (once a second) instead of failing. */
  g_ptr_array_add (argv, g_strdup ("-o"));
  g_ptr_array_add (argv, g_strdup ("ConnectionAttempts=10"));
  /* "--": nothing after it is an ssh option, whatever the command says. */
  g_ptr_array_add (argv, g_strdup ("--"));
  g_ptr_array_add (argv, g_strdup_printf ("%s@%s", c->user, c->host));
  for (guint i = 0; command != NULL && command[i] != NULL; i++)
    g_ptr_array_add (argv, g_strdup (command[i]));
  g_ptr_array_add (argv, NULL);
  return argv;
}

const char *const banger_cli_vm_login_shell[] = { "/bin/sh", "-l", NULL };

/* Without sshd the agent's pty stands in: a login shell, or the command
 * (on a pty only when there is a terminal to drive it). */
gboolean
banger_cli_vm_exec_instead_of_ssh (BangerVM *vm, const char *name, char **command, int *status,
                                   GError **error)
{
  if (command == NULL || command[0] == NULL)
    return banger_cli_vm_exec_in_vm (vm, name, banger_cli_vm_login_shell, TRUE, status, error);
  return banger_cli_vm_exec_in_vm (vm, name, (const char *const *)command, isatty (STDIN_FILENO),
                                   status, error);
}

gboolean
banger_cli_vm_cmd_ssh (BangerCli *cli, char **args, GError **error)
{
  g_autoptr (BangerVM) vm = NULL;
  g_autoptr (GPtrArray) argv = NULL;
  g_auto (SshConfig) config = { 0 };
  char **command;

  if (!banger_cli_check_args (cli, args, 1, G_MAXUINT, error))
    return FALSE;
  command = command_after_name (args);
  vm = banger_cli_find_vm (cli, args[0], error);
  if (vm == NULL)
    return FALSE;
  if (!banger_cli_vm_require_running (vm, args[0], error))
    return FALSE;
  if (!banger_cli_vm_get_ssh_config (vm, args[0], &config, error))
    return FALSE;
  if (!config.has_sshd) {
    g_info ("VM “%s” has no sshd: using the agent's pty", args[0]);
    return banger_cli_vm_exec_instead_of_ssh (vm, args[0], command, &cli->exit_status, error);
  }

  argv = banger_cli_vm_ssh_argv (&config, command);
  /* ssh takes over the terminal: replace this process (argv, no shell). */
  fflush (stdout);
  execvp ("ssh", (char **)argv->pdata);
  g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errno),
               _ ("cannot run ssh: %s (install OpenSSH's client)"), g_strerror (errno));
  return FALSE;
}
