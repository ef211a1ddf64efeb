#pragma once

#include <gio/gio.h>

#include "banger-config.h"

G_BEGIN_DECLS

/* The catalog: a JSON index (schema in docs/catalog.md) of curated images
 * and kernels, at BANGER_CATALOG_URL (meson option catalog_url) unless the
 * user's config names a mirror ([catalog] url=…). Everything it points at
 * is downloaded with its sha256 checked while it streams. */
typedef struct {
  char *name;
  char *description;
  char *oci;           /* an OCI reference, or NULL */
  char *rootfs_url;    /* else a rootfs tarball (tar, gzip or zstd)… */
  char *rootfs_sha256; /* …and its sha256 (hex) */
} BangerCatalogImage;

typedef struct {
  char *name;
  char *description;
  char *version;
  char *url;
  char *sha256; /* hex */
} BangerCatalogKernel;

typedef struct {
  GPtrArray *images;  /* BangerCatalogImage */
  GPtrArray *kernels; /* BangerCatalogKernel */
} BangerCatalogIndex;

void banger_catalog_index_free (BangerCatalogIndex *index);
/* For an entry a caller copied out of the index to keep beyond it. */
void banger_catalog_image_free (BangerCatalogImage *image);

/* The index URL: the config's [catalog] url, else the build's. */
char *banger_catalog_index_url (BangerConfig *config);

/* INVALID_ARGUMENT (naming the entry) for a malformed index. */
BangerCatalogIndex *banger_catalog_index_parse (GBytes *json, GError **error);

/* Fetches and parses the index at @url (https, http on loopback, or
 * file://). */
BangerCatalogIndex *banger_catalog_index_fetch (BangerConfig *config, const char *url,
                                                GCancellable *cancellable, GError **error);

const BangerCatalogImage *banger_catalog_index_find_image (const BangerCatalogIndex *index,
                                                           const char *name);
const BangerCatalogKernel *banger_catalog_index_find_kernel (const BangerCatalogIndex *index,
                                                             const char *name);

typedef void (*BangerDownloadProgressFunc) (guint64 done, guint64 total, gpointer user_data);

/* Downloads @url to @dest (written to a temporary name, renamed once the
 * sha256 matches @sha256_hex; VERIFICATION naming the URL otherwise). */
/* The most banger_download_verified() takes (a kernel is tens of MiB, a
 * rootfs tarball a few GiB); a larger Content-Length is refused at once. */
#define BANGER_DOWNLOAD_MAX_BYTES (16ULL << 30)

gboolean banger_download_verified (BangerConfig *config, const char *url, const char *sha256_hex, const char *dest,
                                   BangerDownloadProgressFunc progress, gpointer user_data,
                                   GCancellable *cancellable, GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (BangerCatalogIndex, banger_catalog_index_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BangerCatalogImage, banger_catalog_image_free)

G_END_DECLS
