/* bzImage → vmlinux (src/service/assets/kernel-unpack.c): a kernel file comes from
 * a catalog download or a user's import. */
#include "fuzz-common.h"

#include "kernel-unpack.h"

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  g_autofree char *in = fuzz_write_file ("bzImage", data, size);
  g_autofree char *out = g_build_filename (fuzz_scratch (), "vmlinux", NULL);
  g_autoptr (GError) error = NULL;
  g_autofree char *format = banger_kernel_payload_format (in, NULL);
  if (!banger_kernel_unpack_bzimage (in, out, NULL, &error) && error == NULL)
    abort ();
  g_unlink (out);
  return 0;
}
