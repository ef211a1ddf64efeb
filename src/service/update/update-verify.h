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

G_END_DECLS
