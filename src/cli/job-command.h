#pragma once

#include <gio/gio.h>

#include "banger-dbus.h"
#include "cli.h"
#include "errors.h"
#include "job-progress.h"

G_BEGIN_DECLS

/* Follows the job at @job_path (see banger_job_follow()). A failure other
 * than an interrupt (the user stopped it: not "failed") gets the prefix
 * formatted from @failed_format. On success @name gets the Name of the
 * @interface object the job made, or NULL. */
gboolean banger_cli_follow_job (BangerCli *cli, const char *job_path, BangerProgressMode mode,
                                const char *interface, char **name, GError **error,
                                const char *failed_format, ...) G_GNUC_PRINTF (7, 8);

/* A Manager method that takes one argument and an option bag and returns
 * a Job (BuildImage, PullKernel), as gdbus-codegen declares it. */
typedef gboolean (*BangerManagerJobCall) (BangerManager *manager, const char *arg,
                                          GVariant *options, char **out_job,
                                          GCancellable *cancellable, GError **error);

/* What differs between commands that run such a method for their one
 * argument with an optional --name and print the made object's name. */
typedef struct {
  BangerManagerJobCall call;
  const char *kind;           /* for the --name check: "image", "kernel" */
  BangerCliObject object;     /* names the object in the call's error */
  const char *interface;      /* of the object the job makes */
  const char *failed_format;  /* translated, "%s" is the argument (or --name) */
  gboolean failed_names_name; /* the failure names --name when given */
} BangerNamedJob;

/* Runs @job for args[0] with the --name @name (or NULL) and the
 * -q/--progress options, follows the job, then prints the Name of what it
 * made (falling back to @name, then args[0]). */
gboolean banger_cli_run_named_job (BangerCli *cli, char **args, const BangerNamedJob *job,
                                   const char *name, const char *progress, gboolean quiet,
                                   GError **error);

G_END_DECLS
