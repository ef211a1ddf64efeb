#define G_LOG_DOMAIN "banger-cli"

#include "config.h"

#include <glib/gi18n.h>
#include <locale.h>

#include "cli.h"

int
main (int argc, char **argv)
{
  BangerCli cli = { 0 };
  int status;

  setlocale (LC_ALL, "");
  bindtextdomain (GETTEXT_PACKAGE, LOCALEDIR);
  bind_textdomain_codeset (GETTEXT_PACKAGE, "UTF-8");
  textdomain (GETTEXT_PACKAGE);

  g_set_prgname ("banger");

  status = banger_command_run (&cli, argc, argv);
  banger_cli_clear (&cli);
  return status;
}
