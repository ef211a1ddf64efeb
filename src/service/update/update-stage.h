#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* The files of a release tarball, all under "banger-<version>/" and nothing
 * else (docs/update.md). BUILDINFO is a key file:
 *   [release]
 *   version=0.2.0
 *   commit=0123456789ab
 *   built_at=2025-01-01T00:00:00Z */
extern const char *const banger_release_files[]; /* bangerd, bangerd-root, banger, banger-agent */
#define BANGER_RELEASE_BUILDINFO "BUILDINFO"

typedef struct {
  char *version;
  char *commit;
  char *built_at;
} BangerBuildInfo;

void banger_build_info_free (BangerBuildInfo *info);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BangerBuildInfo, banger_build_info_free)

/* Unpacks @tarball (already verified) into the empty directory @staging:
 * regular files only, each expected name once, mode 0755 for binaries.
 * Verification error for any other entry (a link, a device, "../x", an
 * unknown name) or a missing file. Returns the BUILDINFO, whose version
 * must be @version. */
BangerBuildInfo *banger_update_stage (const char *tarball, const char *staging, const char *version,
                                      GCancellable *cancellable, GError **error);

/* Runs `<staging>/bangerd --check-migrations --db @db_path`: Failed with
 * its output when it says no (or cannot run). */
gboolean banger_update_check_migrations (const char *staging, const char *db_path,
                                         GCancellable *cancellable, GError **error);

G_END_DECLS
