#pragma once

#include <stdio.h>

#include "cli.h"

G_BEGIN_DECLS

/* The option context of a leaf command: its own options plus the global
 * ones, with GLib's automatic --help turned off so help goes through the
 * same code everywhere. @path is e.g. "banger vm create". */
GOptionContext *banger_help_option_context_new (const BangerCommand *command, const char *path);

/* Prints help for @command (group or leaf) called @path to @out. */
void banger_help_print (const BangerCommand *command, const char *path, FILE *out);

/* The "help" command: `banger help vm create`. */
gboolean banger_help_command_handler (BangerCli *cli, char **args, GError **error);

G_END_DECLS
