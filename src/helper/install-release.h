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
 *   {check: true} — the installed (new) bangerd-root is run with
 *     --self-check as root by this (old) helper and must say it is the
 *     version being installed;
 *   {finish: true} — install.toml.pending becomes install.toml and the .old
 *     set is removed.
 * After a swap this process keeps the update pending until its client
 * finishes or rolls it back: that client (the same bus connection and uid,
 * authorised once for the swap) needs no second polkit answer for check,
 * finish or rollback; the helper does not idle-exit meanwhile; and if the
 * client leaves the bus first, or the helper is stopped, the swap is
 * rolled back (helper-daemon.c).
 * The staging dir must lie under one of the caller's [update] staging_dirs,
 * be reached without a symlink and be the caller's; for a swap each staged
 * file must be a regular file the caller owns, with one link.
 * The swap trusts nothing bangerd checked: the staged SHA256SUMS must carry
 * a valid signature (staged SHA256SUMS.sig) by the release key this
 * executable was built with, and each file is hashed as it is copied into
 * its root-owned <name>.new and must match its signed line
 * "banger-<version>/<name>" before anything is renamed (issue 10, finding
 * 7): a staged file swapped after bangerd's check is refused. */

/* The release public key (PEM) the swap verifies with, defined by the
 * executable (release-key.c, generated from release-key.c.in); the helper
 * library holds a weak empty one so unit tests need none. Empty: a swap
 * is refused as Unsupported. */
extern const char banger_release_pubkey_pem[];

/* Where the binaries live (the helper's [update] config); kept by pointer,
 * @config must outlive the helper's calls. NULL forgets it. */
void banger_install_release_configure (const BangerHelperConfig *config);

/* The checks made before polkit is asked (the authorizer calls it for
 * every method; TRUE for other methods): option combination and values,
 * the staging dir and (for a swap) its files. */
gboolean banger_install_release_check_caller (const char *method, GVariant *parameters, uid_t uid,
                                              GError **error);

/* The path of the helper's config file, passed to the new helper's
 * --self-check. */
void banger_install_release_set_config_path (const char *path);

/* Which step @options ask for: "swap", "check", "rollback" or "finish". */
const char *banger_install_release_step (GVariant *options);

/* TRUE if @parameters ask an InstallRelease check, finish or rollback of
 * the swap that @sender (a unique bus name) made as @uid and that is still
 * pending: the authorizer then skips polkit, which already said yes to
 * this client for the swap. */
gboolean banger_install_release_preauthorized (const char *method, GVariant *parameters,
                                               const char *sender, uid_t uid);

/* The unique bus name of the pending swap's client, or NULL. */
char *banger_install_release_pending_sender (void);

/* Rolls back the pending swap, if any (its client left, or the helper is
 * stopping); TRUE if there was one. */
gboolean banger_install_release_abandon (const char *why);

/* @sender: the caller's unique bus name, recorded by a swap. */
gboolean banger_install_release (const char *staging_dir, GVariant *options, uid_t uid,
                                 const char *sender, GError **error);

G_END_DECLS
