#pragma once

#include <gio/gio.h>

#include "banger-config.h"

G_BEGIN_DECLS

/* A whole pull, as one blocking, cancellable call for a worker thread:
 * reference → manifest (an index resolves to linux/amd64) → config →
 * layers downloaded in parallel into the blob cache → rootfs built from
 * the cached layers into a new ext4 file under @work_dir.
 *
 * Nothing is registered here: the caller registers the returned rootfs. A
 * pull stopped at any moment (cancelled, failed, or the process killed)
 * leaves no rootfs at its final name — the ext4 writer renames only a
 * finished image — and what reached the blob cache is reused by the next
 * pull (verified blobs as they are, partial ones resumed with Range). */
typedef struct {
  guint size_mib;         /* 0: sized from the content with headroom */
  gboolean insecure;      /* plain HTTP and any certificate for this registry */
  BangerConfig *config;   /* [registries] insecure; NULL: none */
  guint parallel;         /* layer downloads at once; 0: 4 */
  const char *cache_dir;  /* NULL: $XDG_CACHE_HOME/banger/blobs */
  const char *work_dir;   /* where the rootfs file is made (same fs as its final home) */
  const char *agent_path; /* written to /.banger/agent when not NULL */
} BangerOciPullOptions;

typedef struct {
  char *reference;       /* canonical: registry/repository:tag[@digest] */
  char *manifest_digest; /* the image manifest's (for an index, the chosen one's) */
  char *rootfs_path;     /* the finished ext4 file, owned by the caller now */
  guint64 rootfs_bytes;
  GVariant *config;    /* a{sv}: entrypoint, cmd, env (as); workdir, user (s) */
  char *config_json;   /* the same, as JSON, for the store */
  guint64 layer_bytes; /* compressed size of all layers */
} BangerOciPullResult;

void banger_oci_pull_result_free (BangerOciPullResult *result);

/* From any thread (serialised): @fraction 0..1, bytes of blobs. */
typedef void (*BangerOciPullProgressFunc) (double fraction, guint64 bytes_done, guint64 bytes_total,
                                           const char *message, gpointer user_data);

BangerOciPullResult *banger_oci_pull (const char *reference, const BangerOciPullOptions *options,
                                      BangerOciPullProgressFunc progress, gpointer user_data,
                                      GCancellable *cancellable, GError **error);

/* The canonical form of @reference (the key identical pulls share), or
 * NULL with INVALID_ARGUMENT. */
char *banger_oci_pull_canonical_reference (const char *reference, GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (BangerOciPullResult, banger_oci_pull_result_free)

G_END_DECLS
