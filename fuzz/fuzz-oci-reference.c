/* OCI references: [registry[:port]/]repo[:tag][@sha256:…] (src/common/oci-reference.c). */
#include "fuzz-common.h"

#include "banger-error.h"
#include "oci-reference.h"

#include <string.h>

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  g_autofree char *text = g_strndup ((const char *)data, size);
  g_autoptr (GError) error = NULL;
  g_autoptr (BangerOciReference) ref = banger_oci_reference_parse (text, &error);
  if (ref != NULL) {
    g_autofree char *s = banger_oci_reference_to_string (ref);
    /* What it prints must parse again to the same thing. */
    g_autoptr (BangerOciReference) again = banger_oci_reference_parse (s, NULL);
    if (again == NULL)
      abort ();
    g_autofree char *s2 = banger_oci_reference_to_string (again);
    if (strcmp (s, s2) != 0)
      abort ();
    (void)banger_oci_reference_api_host (ref);
    (void)banger_oci_reference_manifest_ref (ref);
  } else if (error == NULL) {
    abort ();
  }
  (void)banger_oci_digest_is_valid (text);
  return 0;
}
