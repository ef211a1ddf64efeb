#pragma once

#include <gio/gio.h>

#include "helper-config.h"

G_BEGIN_DECLS

/* InstallRelease(staging_dir, options) (docs/update.md). One method, three
 * steps of one update, told apart by the options:
 *   {version, commit, built_at} — swap: the staged bangerd, bangerd-root,
 *     banger and banger-agent are copied next to the installed ones as
 *     <name>.new (root-owned, 0755, fsync'd), each installed one is kept as
 *     <name>.old (a hard link), then each .new is renamed over its name;
 *     install.toml.pending records what was installed;
 *   {rollback: true} — every <name>.old is renamed back, the pending
 *     record dropped;
 *   {finish: true} — install.toml.pending becomes install.toml and the .old
 *     set is removed.
 * The staging dir must lie under one of the caller's [update] staging_dirs,
 * be reached without a symlink and be the caller's; for a swap each staged
 * file must be a regular file the caller owns, with one link. */

/* Where the binaries live (the helper's [update] config); kept by pointer,
 * @config must outlive the helper's calls. NULL forgets it. */
void banger_install_release_configure (const BangerHelperConfig *config);

/* The checks made before polkit is asked (the authorizer calls it for
 * every method; TRUE for other methods): option combination and values,
 * the staging dir and (for a swap) its files. */
gboolean banger_install_release_check_caller (const char *method, GVariant *parameters, uid_t uid,
                                              GError **error);

/* Which step @options ask for: "swap", "rollback" or "finish". */
const char *banger_install_release_step (GVariant *options);

gboolean banger_install_release (const char *staging_dir, GVariant *options, uid_t uid,
                                 GError **error);

G_END_DECLS
