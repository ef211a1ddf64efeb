#include "config.h"

#include "help.h"

#include <glib/gi18n.h>

#include "errors.h"

GOptionContext *
banger_help_option_context_new (const BangerCommand *command, const char *path)
{
  GOptionContext *context;
  const char *parameters = command->parameters != NULL ? _ (command->parameters) : NULL;

  context = g_option_context_new (parameters);
  g_option_context_set_translation_domain (context, GETTEXT_PACKAGE);
  g_option_context_set_summary (context, _ (command->summary));
  g_option_context_set_help_enabled (context, FALSE);
  if (command->options != NULL)
    g_option_context_add_main_entries (context, command->options, GETTEXT_PACKAGE);
  g_option_context_add_main_entries (context, banger_global_options, GETTEXT_PACKAGE);
  return context;
}

static void
print_group_help (const BangerCommand *group, const char *path, FILE *out)
{
  int width = 0;

  fprintf (out, _ ("Usage:\n  %s [OPTION…] COMMAND …\n\n"), path);
  fprintf (out, "%s\n\n", _ (group->summary));
  fprintf (out, "%s\n", _ ("Commands:"));
  for (const BangerCommand *const *p = group->subcommands; *p != NULL; p++)
    if (!((*p)->flags & BANGER_COMMAND_FLAG_HIDDEN))
      width = MAX (width, (int)strlen ((*p)->name));
  for (const BangerCommand *const *p = group->subcommands; *p != NULL; p++) {
    const BangerCommand *c = *p;

    if (c->flags & BANGER_COMMAND_FLAG_HIDDEN)
      continue;
    fprintf (out, "  %-*s  %s\n", width, c->name, _ (c->summary));
  }
  fprintf (out, "\n%s\n", _ ("Options:"));
  fprintf (out, "  -h, --help     %s\n", _ ("Show help"));
  fprintf (out, "  -v, --verbose  %s\n", _ ("Show more (repeat for debug output)"));
  fprintf (out, "\n");
  fprintf (out, _ ("Run “%s COMMAND --help” for the options of a command.\n"), path);
}

void
banger_help_print (const BangerCommand *command, const char *path, FILE *out)
{
  g_autoptr (GOptionContext) context = NULL;
  g_autofree char *text = NULL;

  if (command->subcommands != NULL) {
    print_group_help (command, path, out);
    return;
  }
  /* GLib prints g_get_prgname() in the usage line; make it the full
   * command so the line reads "banger vm create [OPTION…] NAME". */
  g_set_prgname (path);
  context = banger_help_option_context_new (command, path);
  text = g_option_context_get_help (context, TRUE, NULL);
  fputs (text, out);
}

gboolean
banger_help_command_handler (BangerCli *cli, char **args, GError **error)
{
  const BangerCommand *command = &banger_root_command;
  g_autoptr (GString) path = g_string_new ("banger");

  for (guint i = 0; args[i] != NULL; i++) {
    const BangerCommand *next = NULL;

    if (command->subcommands != NULL)
      next = banger_command_lookup (command, args[i]);
    if (next == NULL)
      return banger_cli_usage_error (cli, error, _ ("unknown command “%s”"), args[i]);
    g_string_append_printf (path, " %s", args[i]);
    command = next;
  }
  banger_help_print (command, path->str, stdout);
  return TRUE;
}
