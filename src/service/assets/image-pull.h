#pragma once

#include <gio/gio.h>

#include "blob-cache.h"
#include "image-list.h"
#include "engine-job.h"

G_BEGIN_DECLS

/* PullImage's engine side, on top of the image list (image-list.h) and the
 * OCI pull (oci-pull.h). Main context only.
 *
 * @reference is an OCI reference or, when it is a bare name (no '/', ':'
 * or '@'), first looked up in the catalog index (catalog-index.h); a bare
 * name the catalog index does not have is a Docker Hub image, as everywhere else.
 * Returns the job at once; while a pull of the same canonical reference
 * runs, asking again returns that job (whoever asks). On success the image
 * is registered as @name (default: derived from the repository, e.g.
 * "debian" or "debian-bookworm") with Source = the canonical reference,
 * Digest = the manifest digest and Config = the image's run config; on any
 * failure or cancel nothing is registered and the image's directory is
 * removed. EXISTS if @name is taken. */
BangerEngineJob *banger_image_list_pull_image (BangerImageList *self, const char *reference,
                                               const char *name, guint size_mib, gboolean insecure,
                                               guint uid, GError **error);

/* The blob cache (ListCache): BangerBlobInfo elements. */
GPtrArray *banger_image_list_list_cache (BangerImageList *self, GError **error);

/* The manifest digests of the registered images: what PruneCache keeps. */
GStrv banger_image_list_cache_roots (BangerImageList *self, GError **error);

G_END_DECLS
