/* Checking the release signature over SHA256SUMS and the files' sums
 * (update-verify.h); shared by bangerd and bangerd-root. */
#include "update-verify.h"

#include <config.h>

#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <string.h>

#include "banger-error.h"
#include "lazy-library.h"

/* GnuTLS, loaded at the first check rather than linked: linked, it is
 * mapped and initialised (its library constructor) in every bangerd and
 * bangerd-root from their start, with p11-kit, libtasn1, libidn2,
 * libunistring, hogweed and GMP: 1.8 MiB of bangerd's idle RSS, for a
 * check made once per update (docs/performance.md). The pointers have the
 * header's types, so the compiler still checks every call. */
typedef struct {
  __typeof__ (gnutls_pubkey_init) *pubkey_init;
  __typeof__ (gnutls_pubkey_deinit) *pubkey_deinit;
  __typeof__ (gnutls_pubkey_import) *pubkey_import;
  __typeof__ (gnutls_pubkey_verify_data2) *pubkey_verify_data2;
  __typeof__ (gnutls_strerror) *strerror;
} Gnutls;

static Gnutls api;
static const BangerLazySymbol symbols[] = {
  { "gnutls_pubkey_init", G_STRUCT_OFFSET (Gnutls, pubkey_init) },
  { "gnutls_pubkey_deinit", G_STRUCT_OFFSET (Gnutls, pubkey_deinit) },
  { "gnutls_pubkey_import", G_STRUCT_OFFSET (Gnutls, pubkey_import) },
  { "gnutls_pubkey_verify_data2", G_STRUCT_OFFSET (Gnutls, pubkey_verify_data2) },
  { "gnutls_strerror", G_STRUCT_OFFSET (Gnutls, strerror) },
};
static BangerLazyLibrary library
    = { "GnuTLS", BANGER_GNUTLS_SONAME, symbols, G_N_ELEMENTS (symbols), &api };

/* gnutls_pubkey_t is a pointer type: a plain cleanup function. A key
 * exists only once GnuTLS is loaded. */
static void
pubkey_clear (gnutls_pubkey_t *key)
{
  if (*key != NULL)
    api.pubkey_deinit (*key);
}

gboolean
banger_update_verify_signature (const char *pem, GBytes *data, GBytes *signature, GError **error)
{
  __attribute__ ((cleanup (pubkey_clear))) gnutls_pubkey_t key = NULL;
  gnutls_datum_t key_datum, data_datum, sig_datum;
  gsize len;
  int rc;

  if (pem == NULL || *pem == '\0') {
    g_set_error_literal (error, BANGER_ERROR, BANGER_ERROR_UNSUPPORTED,
                         "this build has no release key (configure with -Drelease_pubkey=FILE)");
    return FALSE;
  }
  if (!banger_lazy_library_load (&library, error))
    return FALSE;
  if (api.pubkey_init (&key) < 0) {
    g_set_error_literal (error, BANGER_ERROR, BANGER_ERROR_FAILED, "GnuTLS: out of memory");
    return FALSE;
  }
  key_datum.data = (unsigned char *)pem;
  key_datum.size = (unsigned int)strlen (pem);
  rc = api.pubkey_import (key, &key_datum, GNUTLS_X509_FMT_PEM);
  if (rc < 0) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED,
                 "the built-in release key is unusable: %s", api.strerror (rc));
    return FALSE;
  }
  data_datum.data = (unsigned char *)g_bytes_get_data (data, &len);
  data_datum.size = (unsigned int)len;
  sig_datum.data = (unsigned char *)g_bytes_get_data (signature, &len);
  sig_datum.size = (unsigned int)len;
  rc = api.pubkey_verify_data2 (key, GNUTLS_SIGN_ECDSA_SHA256, 0, &data_datum, &sig_datum);
  if (rc < 0) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_VERIFICATION,
                 "SHA256SUMS is not signed by the release key: %s", api.strerror (rc));
    return FALSE;
  }
  return TRUE;
}

static gboolean
is_hex64 (const char *s)
{
  for (guint i = 0; i < 64; i++) {
    if (!g_ascii_isdigit (s[i]) && !(s[i] >= 'a' && s[i] <= 'f'))
      return FALSE;
  }
  return TRUE;
}

char *
banger_update_sums_lookup (GBytes *sums, const char *file_name, GError **error)
{
  gsize len;
  const char *data = g_bytes_get_data (sums, &len);
  /* An empty GBytes has no data pointer: g_strndup (NULL, 0) is NULL. */
  g_autofree char *text = g_strndup (data != NULL ? data : "", len);
  g_auto (GStrv) lines = NULL;

  if (!g_utf8_validate (text, -1, NULL) || strlen (text) != len) {
    g_set_error_literal (error, BANGER_ERROR, BANGER_ERROR_VERIFICATION, "SHA256SUMS is not text");
    return NULL;
  }
  lines = g_strsplit (text, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++) {
    const char *line = lines[i];
    const char *name;

    if (*line == '\0')
      continue;
    /* coreutils' format: hash, space, then space (text) or '*' (binary). */
    if (strlen (line) < 67 || !is_hex64 (line) || line[64] != ' '
        || (line[65] != ' ' && line[65] != '*')) {
      g_set_error (error, BANGER_ERROR, BANGER_ERROR_VERIFICATION,
                   "SHA256SUMS line %u is malformed", i + 1);
      return NULL;
    }
    name = line + 66;
    if (g_str_equal (name, file_name))
      return g_strndup (line, 64);
  }
  g_set_error (error, BANGER_ERROR, BANGER_ERROR_VERIFICATION, "SHA256SUMS does not list %s",
               file_name);
  return NULL;
}

char *
banger_update_release_member (const char *version, const char *file_name)
{
  return g_strdup_printf ("banger-%s/%s", version, file_name);
}
