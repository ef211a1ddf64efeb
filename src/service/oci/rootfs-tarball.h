#pragma once

#include <gio/gio.h>

#include "catalog-index.h"

G_BEGIN_DECLS

/* Catalog images that are a rootfs tarball (catalog-index.h: "rootfs" URL
 * and "sha256") rather than an OCI reference. The tarball is downloaded
 * beside @dest with its sha256 checked while it streams (VERIFICATION on a
 * mismatch), then read like one OCI layer (oci-layers.h: the same checks —
 * no absolute paths, no "..", no escapes through links, size limits — and
 * the same writer), so it never touches the host file system either. The
 * guest agent is added as /.banger/agent. The download is removed whatever
 * happens; @dest exists only on success.
 *
 * @progress gets bytes downloaded (the download is most of the time). */
typedef void (*BangerRootfsTarballProgress) (double fraction, guint64 done, guint64 total,
                                             const char *message, gpointer user_data);

gboolean banger_rootfs_tarball_pull (BangerConfig *config, const BangerCatalogImage *entry, const char *dest,
                                     const char *agent_path, guint size_mib,
                                     BangerRootfsTarballProgress progress, gpointer user_data,
                                     GCancellable *cancellable, GError **error);

/* The second half alone: a local tarball @tarball → @dest. */
gboolean banger_rootfs_tarball_build (const char *tarball, const char *label, const char *dest,
                                      const char *agent_path, guint size_mib,
                                      GCancellable *cancellable, GError **error);

G_END_DECLS
