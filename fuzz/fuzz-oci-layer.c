/* Tar layers (from any registry, or a catalog rootfs tarball) into the
 * ext4 writer: src/service/oci/oci-layers.c scans the layer, checks what it
 * would cost, then applies it to a small image with src/service/ext4-writer.c. */
#include "fuzz-common.h"

#include "ext4-writer.h"
#include "oci-layers.h"

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  g_autofree char *tar = fuzz_write_file ("layer.tar", data, size);
  g_autofree char *img = g_build_filename (fuzz_scratch (), "rootfs.ext4", NULL);
  g_autoptr (GError) error = NULL;
  g_autoptr (BangerOciLayer) layer = banger_oci_layer_scan (tar, "layer 1", NULL, &error);

  if (layer == NULL) {
    if (error == NULL)
      abort ();
    return 0;
  }
  guint64 bytes = 0, inodes = 0;
  g_autoptr (GError) size_error = NULL;
  (void)banger_oci_rootfs_size (banger_oci_layer_get_data_bytes (layer),
                                banger_oci_layer_get_entries (layer), 0, &bytes, &inodes,
                                &size_error);
  /* A small image whatever the layer claims: running out of room is one of
   * the paths to exercise, and a 64 MiB image per input (16 MiB is the writer's minimum) would be
   * slow. */
  g_autoptr (BangerExt4Writer) w = banger_ext4_writer_new (img, 16 * 1024 * 1024, 1024, &error);
  if (w == NULL) {
    fprintf (stderr, "%s\n", error->message);
    abort ();
  }
  if (banger_oci_layer_apply (layer, w, NULL, &error))
    (void)banger_ext4_writer_finish (w, NULL);
  else if (error == NULL)
    abort ();
  g_clear_pointer (&w, banger_ext4_writer_free);
  g_unlink (img);
  return 0;
}
