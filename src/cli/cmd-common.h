#pragma once

#include <gio/gio.h>

#include "cli.h"

G_BEGIN_DECLS

/* Pieces the command files share. */

/* Prints "Label:       value" ("-" for an empty value), labels padded by
 * display width so translated labels line up too. */
void banger_cli_print_field (const char *label, const char *value);

/* "2024-05-01 12:03:04 UTC (3 minutes ago)", or "never" for 0. */
char *banger_cli_format_time_both (guint64 t, gint64 now);

/* Prints @proxies (GDBusProxy) as a JSON array of objects, one key per
 * property (see output-json.h). */
void banger_cli_print_json_array (GPtrArray *proxies);

/* Runs @action on every name in @args, like `docker rm a b`: a failure is
 * reported on stderr and the rest still run; names that worked are printed
 * on stdout; the last failure is returned. An unreachable daemon stops at
 * once (the other names would fail the same way). */
typedef gboolean (*BangerNameAction) (BangerCli *cli, const char *name, GError **error);
gboolean banger_cli_for_each_name (BangerCli *cli, char **args, BangerNameAction action,
                                   GError **error);

/* An absolute path for @path, which must name an existing regular file:
 * bangerd runs with another working directory. @what names the file in
 * the error ("kernel", "initrd", "root filesystem"). */
char *banger_cli_absolute_file (const char *path, const char *what, GError **error);

G_END_DECLS
