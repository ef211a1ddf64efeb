/* The release manifest (JSON, unsigned) and SHA256SUMS (signed, but parsed
 * before and after the signature check) of `banger update`
 * (src/service/update/update-manifest.c, update-verify.c). The first byte picks
 * which; the rest is the document. */
#include "fuzz-common.h"

#include "update-manifest.h"
#include "update-verify.h"

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  g_autoptr (GError) error = NULL;
  if (size < 1)
    return 0;
  if (data[0] & 1) {
    g_autoptr (BangerReleaseManifest) m = banger_release_manifest_parse (
        (const char *)data + 1, size - 1, "https://releases.example/banger/", &error);
    if (m == NULL && error == NULL)
      abort ();
    if (m != NULL && m->latest != NULL) {
      g_autoptr (GError) e2 = NULL;
      (void)banger_release_manifest_find (m, m->latest, &e2);
      guint v[3];
      (void)banger_release_version_parse (m->latest, v);
      (void)banger_release_version_compare (m->latest, "0.1.0");
    }
  } else {
    g_autoptr (GBytes) sums = g_bytes_new (data + 1, size - 1);
    g_autofree char *h = banger_update_sums_lookup (sums, "banger-0.2.0.tar.gz", &error);
    if (h == NULL && error == NULL)
      abort ();
    g_autofree char *t = g_strndup ((const char *)data + 1, MIN (size - 1, 64));
    guint v[3];
    (void)banger_release_version_parse (t, v);
    (void)banger_release_version_compare (t, "0.1.0");
  }
  return 0;
}
