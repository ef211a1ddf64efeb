/* A kernel's module indexes (src/service/imaging/kmod-deps.c): the input is split
 * at NUL bytes into modules.dep, modules.builtin, modules.alias and
 * modules.softdep, then a fixed set of modules is resolved (the guest
 * kernel's tree is untrusted: it comes from a catalog or a user). */
#include "fuzz-common.h"

#include "kmod-deps.h"

#include <string.h>

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  static const char *files[]
      = { "modules.dep", "modules.builtin", "modules.alias", "modules.softdep" };
  static const char *const wanted[] = { "virtio_blk", "virtio-net", "ext4", "a", NULL };
  g_autofree char *kdir = g_build_filename (fuzz_scratch (), "k", NULL);
  size_t start = 0;

  g_mkdir_with_parents (kdir, 0700);
  for (guint i = 0; i < G_N_ELEMENTS (files); i++) {
    g_autofree char *path = g_build_filename (kdir, files[i], NULL);
    const uint8_t *end = start < size ? memchr (data + start, 0, size - start) : NULL;
    size_t len = start >= size ? 0 : (end != NULL ? (size_t)(end - data) - start : size - start);
    if (start > size)
      len = 0;
    fuzz_put (path, data + MIN (start, size), len);
    start += len + 1;
  }
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) order = banger_kmod_resolve_order (fuzz_scratch (), "k", wanted, &error);
  if (order == NULL && error == NULL)
    abort ();
  return 0;
}
