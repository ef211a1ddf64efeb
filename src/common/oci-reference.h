#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* An image reference as Docker and podman read it:
 *   [registry[:port]/]repository[:tag][@sha256:<hex>]
 * The first component is a registry only if it holds a '.' or a ':' or is
 * "localhost"; otherwise the registry is docker.io and a one-component
 * repository gets "library/" (so "debian" is docker.io/library/debian). The
 * tag defaults to "latest" unless a digest is given. */
typedef struct {
  char *registry;   /* "docker.io", "127.0.0.1:5000", … as written */
  char *repository; /* "library/debian" */
  char *tag;        /* NULL when only a digest was given */
  char *digest;     /* "sha256:<64 hex>" or NULL */
} BangerOciReference;

/* BANGER_ERROR_INVALID_ARGUMENT naming @text when it is not a reference. */
BangerOciReference *banger_oci_reference_parse (const char *text, GError **error);
void banger_oci_reference_free (BangerOciReference *ref);

/* The canonical form: registry/repository[:tag][@digest]. */
char *banger_oci_reference_to_string (const BangerOciReference *ref);

/* The host:port the API is served on: registry-1.docker.io for docker.io. */
const char *banger_oci_reference_api_host (const BangerOciReference *ref);

/* The tag or digest to ask the manifest for (the digest wins). */
const char *banger_oci_reference_manifest_ref (const BangerOciReference *ref);

/* Whether @digest is "sha256:" followed by 64 lowercase hex digits. */
gboolean banger_oci_digest_is_valid (const char *digest);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (BangerOciReference, banger_oci_reference_free)

G_END_DECLS
