#include "config.h"

#include "man-page.h"

#include <string.h>

#include "errors.h"

/* Text for roff: backslashes escaped, '-' as a minus (so options can be
 * searched and copied), a leading '.' or '\'' kept from becoming a
 * request. */
static void
roff (FILE *out, const char *text)
{
  if (text[0] == '.' || text[0] == '\'')
    fputs ("\\&", out);
  for (const char *p = text; *p != '\0'; p++) {
    if (*p == '\\')
      fputs ("\\e", out);
    else if (*p == '-')
      fputs ("\\-", out);
    else
      fputc (*p, out);
  }
}

static void
print_option (FILE *out, const GOptionEntry *e)
{
  fputs (".TP\n", out);
  if (e->short_name != '\0')
    fprintf (out, "\\fB\\-%c\\fR, ", e->short_name);
  fputs ("\\fB\\-\\-", out);
  roff (out, e->long_name);
  fputs ("\\fR", out);
  if (e->arg != G_OPTION_ARG_NONE && e->arg != G_OPTION_ARG_CALLBACK && e->arg_description) {
    fputs ("=\\fI", out);
    roff (out, e->arg_description);
    fputs ("\\fR", out);
  }
  fputs ("\n", out);
  roff (out, e->description != NULL ? e->description : "");
  fputs ("\n", out);
}

static void
print_command (FILE *out, const BangerCommand *c, const char *path)
{
  if (c->flags & BANGER_COMMAND_FLAG_HIDDEN)
    return;
  if (c->subcommands != NULL && !(c->flags & BANGER_COMMAND_FLAG_ALIAS)) {
    for (const BangerCommand *const *p = c->subcommands; *p != NULL; p++) {
      g_autofree char *child = g_strdup_printf ("%s %s", path, (*p)->name);

      print_command (out, *p, child);
    }
    return;
  }
  fputs (".SS \"", out);
  roff (out, path);
  if (c->parameters != NULL) {
    fputs (" ", out);
    roff (out, c->parameters);
  }
  fputs ("\"\n", out);
  roff (out, c->summary);
  fputs (".\n", out);
  /* An alias's options are its target's, listed there. */
  if (c->options == NULL || (c->flags & BANGER_COMMAND_FLAG_ALIAS))
    return;
  for (const GOptionEntry *e = c->options; e->long_name != NULL; e++)
    if (!(e->flags & G_OPTION_FLAG_HIDDEN))
      print_option (out, e);
}

void
banger_man_page_print (FILE *out)
{
  fprintf (out, ".TH BANGER 1 \"\" \"banger %s\" \"User Commands\"\n", PACKAGE_VERSION);
  fputs (".SH NAME\nbanger \\- disposable development sandboxes as microVMs\n", out);
  fputs (".SH SYNOPSIS\n.B banger\n[\\fIOPTION\\fR...] \\fICOMMAND\\fR ...\n", out);
  fputs (".SH DESCRIPTION\n"
         "banger boots a VM from an image in seconds, gives it its own root filesystem, network "
         "address and \\fINAME\\fR.vm name, runs a command in it or logs in, and throws it away. "
         "It is a thin client of \\fBbangerd\\fR(8), the user's daemon on the session bus "
         "(org.banger.Manager); privileged work is done by \\fBbangerd\\-root\\fR(8) on the "
         "system bus. Every command takes \\fB\\-\\-help\\fR.\n",
         out);
  fputs (".SH GLOBAL OPTIONS\n", out);
  for (const GOptionEntry *e = banger_global_options; e->long_name != NULL; e++)
    print_option (out, e);
  fputs (".SH COMMANDS\n", out);
  for (const BangerCommand *const *p = banger_root_command.subcommands; *p != NULL; p++) {
    g_autofree char *path = g_strdup_printf ("banger %s", (*p)->name);

    print_command (out, *p, path);
  }
  fputs (".SH EXIT STATUS\n"
         "0 on success; 1 when the command failed; 2 for a usage error; 130 when interrupted "
         "(Ctrl\\-C). \\fBvm run\\fR and \\fBvm exec\\fR exit with the guest command's status. "
         "\\fBsystem status\\fR exits 3 when something is not in place.\n",
         out);
  fputs (".SH FILES\n"
         ".TP\n~/.config/banger/\nSettings (see \\fBbanger.conf\\fR(5)).\n"
         ".TP\n~/.local/share/banger/\nThe store, images, kernels and VMs.\n"
         ".TP\n~/.cache/banger/\nDownloaded blobs and update staging.\n",
         out);
  fputs (".SH SEE ALSO\n\\fBbangerd\\fR(8), \\fBbangerd\\-root\\fR(8), \\fBbanger.conf\\fR(5), "
         "\\fBbusctl\\fR(1)\n",
         out);
}

static const GOptionEntry no_options[] = { { NULL } };

static gboolean
man_command (BangerCli *cli, char **args, GError **error)
{
  if (!banger_cli_check_args (cli, args, 0, 0, error))
    return FALSE;
  banger_man_page_print (stdout);
  return TRUE;
}

const BangerCommand banger_man_command = {
  "__man", "Print the banger(1) manual page in roff", NULL, no_options, man_command, NULL,
  BANGER_COMMAND_FLAG_HIDDEN,
};
