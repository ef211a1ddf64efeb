#include "config.h"

#include <glib/gi18n.h>
#include <stdio.h>

#include "cli.h"
#include "errors.h"
#include "help.h"
#include "log.h"
#include "man-page.h"

static int opt_verbosity;
gboolean banger_opt_help;

static gboolean
count_verbose (const char *option_name, const char *value, gpointer data, GError **error)
{
  opt_verbosity++;
  return TRUE;
}

const GOptionEntry banger_global_options[] = {
  { "verbose", 'v', G_OPTION_FLAG_NO_ARG, G_OPTION_ARG_CALLBACK, count_verbose,
    N_ ("Show more (repeat for debug output)"), NULL },
  { "help", 'h', 0, G_OPTION_ARG_NONE, &banger_opt_help, N_ ("Show help"), NULL },
  { NULL },
};

static const GOptionEntry help_options[] = { { NULL } };

static const BangerCommand help_command = {
  "help",
  N_ ("Show help for a command"),
  N_ ("[COMMAND…]"),
  help_options,
  banger_help_command_handler,
  NULL,
  BANGER_COMMAND_FLAG_NONE,
};

static const BangerCommand *const root_subcommands[] = {
  &banger_vm_command,      &banger_image_command,
  &banger_kernel_command,  &banger_system_command,
  &banger_daemon_command,  &banger_ps_command,
  &banger_ssh_config_command, &banger_doctor_command,
  &banger_update_command,  &banger_version_command,
  &banger_completion_command, &help_command,
  &banger_man_command,     &banger_ssh_proxy_command,
  &banger_ssh_known_hosts_command, &banger_ssh_uses_agent_command,
  &banger_agent_session_command, NULL,
};

const BangerCommand banger_root_command = {
  "banger", N_ ("banger runs disposable development sandboxes as microVMs."),
  NULL,     NULL,
  NULL,     root_subcommands,
  0,
};

const BangerCommand *
banger_command_lookup (const BangerCommand *group, const char *name)
{
  if (group->subcommands == NULL)
    return NULL;
  for (const BangerCommand *const *p = group->subcommands; *p != NULL; p++)
    if (g_str_equal ((*p)->name, name))
      return *p;
  return NULL;
}

gboolean
banger_cli_usage_error (BangerCli *cli, GError **error, const char *format, ...)
{
  va_list args;
  g_autofree char *message = NULL;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);
  g_set_error_literal (error, BANGER_CLI_ERROR, BANGER_CLI_ERROR_USAGE, message);
  return FALSE;
}

gboolean
banger_cli_check_args (BangerCli *cli, char **args, guint min, guint max, GError **error)
{
  guint n = g_strv_length (args);

  if (n < min) {
    if (cli->command->parameters != NULL)
      return banger_cli_usage_error (cli, error, _ ("missing argument: %s"),
                                     _ (cli->command->parameters));
    return banger_cli_usage_error (cli, error, _ ("missing argument"));
  }
  if (n > max)
    return banger_cli_usage_error (cli, error, _ ("unexpected argument “%s”"), args[max]);
  return TRUE;
}

static gboolean
is_verbose_flag (const char *arg)
{
  if (g_str_equal (arg, "--verbose"))
    return TRUE;
  if (arg[0] != '-' || arg[1] != 'v')
    return FALSE;
  /* -v, -vv, -vvv */
  for (const char *p = arg + 1; *p != '\0'; p++)
    if (*p != 'v')
      return FALSE;
  return TRUE;
}

static int
report_error (BangerCli *cli, const GError *error)
{
  int status = banger_cli_error_exit_status (error);

  fprintf (stderr, "banger: %s\n", error->message);
  if (status == BANGER_EXIT_USAGE)
    fprintf (stderr, _ ("Try “%s --help” for more information.\n"), cli->command_path);
  return status;
}

static int
run_leaf (BangerCli *cli, const BangerCommand *command, int argc, char **argv)
{
  g_autoptr (GOptionContext) context = NULL;
  g_autoptr (GError) error = NULL;
  g_auto (GStrv) args = NULL;
  g_auto (GStrv) positional = NULL;
  int dashdashes = 0;

  cli->command = command;
  context = banger_help_option_context_new (command, cli->command_path);
  if (command->flags & BANGER_COMMAND_FLAG_STOP_AT_ARGS)
    g_option_context_set_strict_posix (context, TRUE);

  /* GOption treats args[0] as the program name and skips it. */
  args = g_new0 (char *, argc + 2);
  args[0] = g_strdup (cli->command_path);
  for (int i = 0; i < argc; i++)
    args[i + 1] = g_strdup (argv[i]);

  for (int i = 0; i < argc; i++)
    if (g_str_equal (argv[i], "--"))
      dashdashes++;
  if (!g_option_context_parse_strv (context, &args, &error))
    return report_error (cli, error);
  /* GOption drops a "--" that ends the options itself: one fewer left
   * means the positional arguments all came after one. */
  for (guint i = 1; args[i] != NULL; i++)
    if (g_str_equal (args[i], "--"))
      dashdashes--;
  if (dashdashes > 0)
    cli->dashdash_first = TRUE;
  cli->verbosity += opt_verbosity;
  /* Only now is the verbosity known; GLib allows one writer per process. */
  banger_log_setup ("banger", cli->verbosity);

  if (banger_opt_help) {
    banger_help_print (command, cli->command_path, stdout);
    return BANGER_EXIT_OK;
  }

  /* GOption leaves a "--" in place when strict POSIX parsing stopped
   * before it; it separates banger's options from the guest's argv. */
  {
    guint n = g_strv_length (args);
    guint first = 1;

    if (n > 1 && g_str_equal (args[1], "--")) {
      first = 2;
      cli->dashdash_first = TRUE;
    }
    positional = g_new0 (char *, n + 1);
    for (guint i = first, j = 0; i < n; i++)
      positional[j++] = g_strdup (args[i]);
  }

  if (!command->handler (cli, positional, &error))
    return report_error (cli, error);
  return cli->exit_status;
}

int
banger_command_run (BangerCli *cli, int argc, char **argv)
{
  const BangerCommand *node = &banger_root_command;
  g_autoptr (GString) path = g_string_new ("banger");
  int i = 1;

  cli->command_path = g_strdup (path->str);
  while (node->subcommands != NULL) {
    const char *arg;
    const BangerCommand *child;

    if (i >= argc) {
      /* A group alone is a request for its commands; it did nothing, so
       * it is a usage error (like git). */
      banger_help_print (node, path->str, stderr);
      return BANGER_EXIT_USAGE;
    }
    arg = argv[i++];
    if (g_str_equal (arg, "-h") || g_str_equal (arg, "--help")) {
      banger_help_print (node, path->str, stdout);
      return BANGER_EXIT_OK;
    }
    if (is_verbose_flag (arg)) {
      cli->verbosity += arg[1] == '-' ? 1 : (int)strlen (arg) - 1;
      continue;
    }
    if (arg[0] == '-') {
      g_autoptr (GError) error = NULL;

      banger_cli_usage_error (cli, &error, _ ("unknown option “%s”"), arg);
      return report_error (cli, error);
    }
    child = banger_command_lookup (node, arg);
    if (child == NULL) {
      g_autoptr (GError) error = NULL;

      banger_cli_usage_error (cli, &error, _ ("unknown command “%s”"), arg);
      return report_error (cli, error);
    }
    g_string_append_printf (path, " %s", arg);
    g_free (cli->command_path);
    cli->command_path = g_strdup (path->str);
    node = child;
  }
  return run_leaf (cli, node, argc - i, argv + i);
}
