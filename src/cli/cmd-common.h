#pragma once

#include <gio/gio.h>

#include "cli.h"
#include "errors.h"

G_BEGIN_DECLS

/* Pieces the command files share. */

/* Prints "Label:       value" ("-" for an empty value), labels padded by
 * display width so translated labels line up too. */
void banger_cli_print_field (const char *label, const char *value);

/* "2024-05-01 12:03:04 UTC (3 minutes ago)", or "never" for 0. */
char *banger_cli_format_time_both (guint64 t, gint64 now);

/* Prints @proxy as one JSON object, one key per property (`show --json`). */
void banger_cli_print_json (GDBusProxy *proxy);

/* Prints @proxies (GDBusProxy) as a JSON array of objects, one key per
 * property (see output-json.h). */
void banger_cli_print_json_array (GPtrArray *proxies);

/* The same from @properties (GVariant a{sv} of @info's interface, as
 * GetManagedObjects gives them). */
void banger_cli_print_json_vardicts (GDBusInterfaceInfo *info, GPtrArray *properties);

/* Runs @action on every name in @args, like `docker rm a b`: a failure is
 * reported on stderr and the rest still run; names that worked are printed
 * on stdout; the last failure is returned. An unreachable daemon stops at
 * once (the other names would fail the same way). */
typedef gboolean (*BangerNameAction) (BangerCli *cli, const char *name, gpointer user_data,
                                      GError **error);
gboolean banger_cli_for_each_name (BangerCli *cli, char **args, BangerNameAction action,
                                   gpointer user_data, GError **error);

/* A Manager Delete method (DeleteImage, DeleteKernel) as gdbus-codegen
 * declares it. */
typedef gboolean (*BangerManagerDeleteCall) (BangerManager *manager, const char *name,
                                             GVariant *options, GCancellable *cancellable,
                                             GError **error);

/* What differs between `image rm` and `kernel rm`. */
typedef struct {
  BangerManagerDeleteCall call;
  BangerCliObject object; /* names the object in an error */
  gboolean force;         /* -f: remove it even while in use */
  const char *busy_hint;  /* translated, for a Busy error without -f: takes
                           * the message and the name */
} BangerDelete;

/* `rm NAME…` (see banger_cli_for_each_name()) through @del. */
gboolean banger_cli_delete_names (BangerCli *cli, char **args, const BangerDelete *del,
                                  GError **error);

/* An absolute path for @path, which must name an existing regular file:
 * bangerd runs with another working directory. @what names the file in
 * the error ("kernel", "initrd", "root filesystem"). */
char *banger_cli_absolute_file (const char *path, const char *what, GError **error);

/* What `list` commands print: one Name per line with @names (for shell
 * completion), a JSON array with @json, else @print_table's table. */
void banger_cli_print_list (GPtrArray *proxies, gboolean names, gboolean json,
                            void (*print_table) (GPtrArray *proxies));

/* The Name property of the @interface object (org.banger.Image,
 * org.banger.Kernel) at @path, or NULL when @path is NULL or "/" (a job
 * that made no object) or the object is gone. */
char *banger_cli_object_name_at (BangerCli *cli, const char *path, const char *interface);

G_END_DECLS
