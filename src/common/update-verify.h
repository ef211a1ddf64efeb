#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Checks @signature (DER ECDSA, as `openssl dgst -sha256 -sign` writes it)
 * over @data with the P-256 public key @pem (GnuTLS). Verification error if
 * it does not match; Unsupported if @pem is empty (a build without
 * -Drelease_pubkey). */
gboolean banger_update_verify_signature (const char *pem, GBytes *data, GBytes *signature,
                                         GError **error);

/* The hex sha256 that the SHA256SUMS text @sums gives for @file_name
 * ("<64 hex>  <name>" or "<64 hex> *<name>" lines); Verification error if
 * the file is not listed or a line is malformed. */
char *banger_update_sums_lookup (GBytes *sums, const char *file_name, GError **error);

/* The name under which the signed SHA256SUMS lists each file of release
 * @version ("banger-<version>/<file>", its path in the tarball): the
 * per-file lines that let bangerd-root check the staged files itself
 * before it installs them (docs/update.md). Being signed, the name also
 * ties each hash to the version. */
char *banger_update_release_member (const char *version, const char *file_name);

/* The staged copies of SHA256SUMS and its signature, next to the staged
 * files: bangerd writes them, bangerd-root verifies them. */
#define BANGER_RELEASE_STAGED_SUMS "SHA256SUMS"
#define BANGER_RELEASE_STAGED_SIG  "SHA256SUMS.sig"

G_END_DECLS
