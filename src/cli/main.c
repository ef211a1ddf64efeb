#include "config.h"

#include <glib/gi18n.h>
#include <locale.h>

#include "banger-error.h"
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
  /* Registering banger's error domain is what turns org.banger.Error.*
   * replies into BANGER_ERROR codes on this side; it happens on first use
   * of the quark, so use it before any call. */
  (void)BANGER_ERROR;

  status = banger_command_run (&cli, argc, argv);
  banger_cli_clear (&cli);
  return status;
}
