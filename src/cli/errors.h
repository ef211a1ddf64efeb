#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* Errors the CLI makes itself (the daemon's come as BANGER_ERROR). */
#define BANGER_CLI_ERROR (banger_cli_error_quark ())

typedef enum {
  BANGER_CLI_ERROR_USAGE,       /* bad command line: exit status 2 */
  BANGER_CLI_ERROR_UNREACHABLE, /* no bus, or bangerd cannot be started */
  BANGER_CLI_ERROR_FAILED,
  BANGER_CLI_ERROR_INTERRUPTED, /* Ctrl-C (or SIGTERM) ended the command: 128+signal */
} BangerCliError;

/* Exit statuses, documented in docs/cli.md. */
#define BANGER_EXIT_OK      0
#define BANGER_EXIT_FAILURE 1
#define BANGER_EXIT_USAGE   2
/* 128 + SIGINT, what shells report for a command ended by Ctrl-C. */
#define BANGER_EXIT_INTERRUPTED 130

/* What kind of object an error is about, for the words of the message. */
typedef enum {
  BANGER_CLI_OBJECT_VM,
  BANGER_CLI_OBJECT_IMAGE,
  BANGER_CLI_OBJECT_KERNEL,
  BANGER_CLI_OBJECT_JOB,
} BangerCliObject;

GQuark banger_cli_error_quark (void);

/* Rewrites an error from a call about VM @name into words for humans:
 * "VM “dev” already exists", "no VM named “x”", … followed by the daemon's
 * own message. Errors that mean bangerd is not there become
 * BANGER_CLI_ERROR_UNREACHABLE. */
void banger_cli_error_annotate_vm (GError **error, const char *name);
/* The same for a call on a VM that exists (or a create): NotFound is about
 * what the VM needs, not the VM. */
void banger_cli_error_annotate_vm_call (GError **error, const char *name);

/* The same for an image, a kernel or a job called @name. */
void banger_cli_error_annotate_object (GError **error, BangerCliObject kind, const char *name);

/* The same for calls that are about no particular object. */
void banger_cli_error_annotate (GError **error);

/* Same, for a service on the system bus (the helper). */
void banger_cli_error_annotate_helper (GError **error);

/* Wraps a failure to connect to or activate bangerd. */
void banger_cli_error_unreachable (GError **error, const char *bus_name);

/* The exit status for @error. */
int banger_cli_error_exit_status (const GError *error);

G_END_DECLS
