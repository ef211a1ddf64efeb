/* The catalog index (JSON from a URL fixed at build time, or a mirror):
 * src/service/catalog-index.c. */
#include "fuzz-common.h"

#include "catalog-index.h"

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  g_autoptr (GBytes) json = g_bytes_new (data, size);
  g_autoptr (GError) error = NULL;
  g_autoptr (BangerCatalogIndex) index = banger_catalog_index_parse (json, &error);
  if (index == NULL && error == NULL)
    abort ();
  if (index != NULL) {
    (void)banger_catalog_index_find_image (index, "debian");
    (void)banger_catalog_index_find_kernel (index, "default");
  }
  return 0;
}
