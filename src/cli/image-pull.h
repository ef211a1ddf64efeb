#pragma once

#include <gio/gio.h>

#include "cli.h"
#include "job-progress.h"

G_BEGIN_DECLS

/* What `image pull` and `vm run --image REF` send with Manager.PullImage. */
typedef struct {
  const char *name; /* local name, or NULL for the daemon's default */
  guint size_mib;   /* 0: sized from the content */
  gboolean insecure;
} BangerPullOptions;

/* Pulls @reference (an OCI reference or a catalog name) through
 * Manager.PullImage and follows the job with @mode. On success
 * @image_name is the name the image was registered under. A failure names
 * the reference; Ctrl-C cancels the job (BANGER_CLI_ERROR_INTERRUPTED). */
gboolean banger_cli_pull_image (BangerCli *cli, const char *reference,
                                const BangerPullOptions *options, BangerProgressMode mode,
                                char **image_name, GError **error);

/* Whether @text reads as an image reference rather than an image name:
 * it holds '/', ':' or '@'. */
gboolean banger_cli_looks_like_reference (const char *text);

/* The name of a registered image that was pulled from @reference (its
 * Source is the canonical form of @reference, or "catalog:@reference"),
 * or NULL. */
char *banger_cli_find_pulled_image (BangerCli *cli, const char *reference);

G_END_DECLS
