#pragma once

#include <gio/gio.h>

#include "banger-config.h"
#include "oci-reference.h"

G_BEGIN_DECLS

/* A client of one repository of an OCI distribution registry (libsoup-3,
 * synchronous calls: it is used from pull worker threads, each request on a
 * session of its own from a small pool, because the pull runs several blob
 * downloads at once).
 *
 * - TLS is verified against the system CAs. Plain HTTP is used only for a
 *   loopback registry (as Docker does), one listed in the user's config
 *   ([registries] insecure=host:port;…), or when the caller asks for
 *   @insecure (which also accepts any certificate, like podman's
 *   --tls-verify=false); even then HTTPS is tried first.
 * - Authentication follows the registry's WWW-Authenticate challenge:
 *   Bearer (token endpoint, anonymous or with credentials) or Basic.
 *   Credentials come from the first auth file naming the registry:
 *   $REGISTRY_AUTH_FILE, $XDG_RUNTIME_DIR/containers/auth.json,
 *   $XDG_CONFIG_HOME/containers/auth.json, ~/.docker/config.json.
 * - Redirects (blob storage) are followed by hand so that the registry's
 *   Authorization header never goes to another host.
 * - 429 and 5xx answers and dropped connections are retried with
 *   exponential backoff (Retry-After honoured up to 10 s).
 *
 * Errors: NETWORK (unreachable), NOT_AUTHORIZED (credentials missing or
 * refused), NOT_FOUND (no such manifest/blob), REGISTRY (any other answer),
 * VERIFICATION (a manifest that does not match its digest), CANCELLED. */
typedef struct _BangerOciRegistry BangerOciRegistry;

/* The Accept list sent for manifests: asking with only the Docker type
 * makes distribution answer 404 for OCI manifests, and no Accept at all
 * gets the old signed schema 1. */
#define BANGER_OCI_MANIFEST_ACCEPT                                                                 \
  "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, "          \
  "application/vnd.docker.distribution.manifest.v2+json, "                                         \
  "application/vnd.docker.distribution.manifest.list.v2+json"

BangerOciRegistry *banger_oci_registry_new (const BangerOciReference *ref, gboolean insecure,
                                           BangerConfig *config,
                                            GError **error);
void banger_oci_registry_free (BangerOciRegistry *self);

/* Fetches the manifest @reference (a tag or a digest): its bytes (at most
 * 4 MiB), media type and sha256 digest. A digest reference is verified. */
GBytes *banger_oci_registry_get_manifest (BangerOciRegistry *self, const char *reference,
                                          char **media_type_out, char **digest_out,
                                          GCancellable *cancellable, GError **error);

/* Called with each chunk of a blob as it arrives; called with @data NULL
 * when the registry ignored the range and sends the whole blob, so the
 * caller drops what it had. */
typedef gboolean (*BangerOciSinkFunc) (const guint8 *data, gsize len, gpointer user_data,
                                       GError **error);

/* Streams blob @digest from byte @offset (a Range request when > 0) into
 * @sink. The caller verifies the digest (it is the one that knows the bytes
 * before @offset). */
gboolean banger_oci_registry_fetch_blob (BangerOciRegistry *self, const char *digest,
                                         guint64 offset, BangerOciSinkFunc sink, gpointer user_data,
                                         GCancellable *cancellable, GError **error);

/* Whether plain HTTP may be used for @host ("host:port"): loopback, or
 * listed in the user's config. */
gboolean banger_oci_host_allows_http (BangerConfig *config, const char *host);

/* The base64 "user:password" of @registry in the auth files, or NULL. */
char *banger_oci_lookup_credentials (const char *registry);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (BangerOciRegistry, banger_oci_registry_free)

G_END_DECLS
