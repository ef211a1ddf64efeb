#pragma once

#include <gio/gio.h>

#include "oci-registry.h"

G_BEGIN_DECLS

/* The content-addressed blob cache shared by all pulls:
 * <dir>/sha256/<hex> (default dir: $XDG_CACHE_HOME/banger/blobs).
 *
 * A blob is downloaded into <hex>.partial, hashed while it streams, and
 * renamed to <hex> only once its sha256 matches; an interrupted download
 * keeps its .partial and the next fetch resumes it with a Range request
 * (re-hashing what is already there). A blob is fetched once however many
 * pulls need it at the same time: threads of this process wait for the one
 * fetching it, and other processes wait on the .partial's flock. Safe to
 * call from any thread. */
typedef struct _BangerBlobCache BangerBlobCache;

typedef struct {
  char *digest;
  guint64 size;
  guint64 last_used; /* unix seconds: the file's mtime, refreshed on each use */
} BangerBlobInfo;

void banger_blob_info_free (BangerBlobInfo *info);

/* @dir: NULL for the default. Creates it (0700). */
BangerBlobCache *banger_blob_cache_new (const char *dir, GError **error);
void banger_blob_cache_free (BangerBlobCache *self);

const char *banger_blob_cache_get_dir (BangerBlobCache *self);

/* The path a verified blob has (whether or not it is there yet). NULL with
 * INVALID_ARGUMENT if @digest is not a sha256 digest. */
char *banger_blob_cache_path (BangerBlobCache *self, const char *digest, GError **error);

/* Called with the number of new bytes as a blob arrives (from the fetching
 * thread); bytes already in a .partial are reported once at the start. */
typedef void (*BangerBlobProgressFunc) (guint64 delta, gpointer user_data);

/* What a blob whose manifest gives no size may grow to, and what any blob
 * may be: a registry that leaves the size out (or a malicious one) must not
 * get to fill the disk. */
#define BANGER_BLOB_MAX_UNSIZED (4ULL << 30)
#define BANGER_BLOB_MAX_BYTES   (64ULL << 30)

/* Returns the path of blob @digest, fetching it from @registry unless it is
 * cached. @expected_size (-1: unknown) bounds the download: a registry that
 * sends more, or bytes that hash differently, gives VERIFICATION naming the
 * digest, and the bad bytes are dropped. Without a size, the download stops
 * at @max_unsized bytes (0: BANGER_BLOB_MAX_UNSIZED); a size above
 * BANGER_BLOB_MAX_BYTES is refused before anything is fetched. */
char *banger_blob_cache_ensure (BangerBlobCache *self, BangerOciRegistry *registry,
                                const char *digest, gint64 expected_size, guint64 max_unsized,
                                BangerBlobProgressFunc progress, gpointer progress_data,
                                GCancellable *cancellable, GError **error);

/* Stores @bytes (already verified by the caller, e.g. a manifest) as
 * @digest. */
gboolean banger_blob_cache_put_bytes (BangerBlobCache *self, const char *digest, GBytes *bytes,
                                      GError **error);

/* Verified blobs, sorted by digest. */
GPtrArray *banger_blob_cache_list (BangerBlobCache *self, GError **error);

/* Removes every blob (and every unlocked .partial) except the manifests
 * @keep_manifests and the config and layers they name; returns the bytes
 * freed. Blobs being fetched are left alone. */
gboolean banger_blob_cache_prune (BangerBlobCache *self, const char *const *keep_manifests,
                                  guint64 *freed_out, GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (BangerBlobCache, banger_blob_cache_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BangerBlobInfo, banger_blob_info_free)

G_END_DECLS
