/* bzImage → ELF vmlinux (kernel-unpack.h) on the host's real kernel: the
 * payload format is named, the vmlinux is an ELF file whose release
 * (kernel-file.h) equals the bzImage's, and broken input leaves nothing. */
#define G_LOG_DOMAIN "test-kernel-unpack"

#include <glib/gstdio.h>
#include <string.h>

#include "banger-error.h"
#include "kernel-file.h"
#include "kernel-unpack.h"

static char *
host_kernel (void)
{
  g_autofree char *path = NULL;
  g_autofree char *release = NULL;
  g_autoptr (GError) error = NULL;

  if (!banger_kernel_find_host ("/boot", "/lib/modules", &path, &release, &error))
    g_error ("no host kernel: %s (tests need linux-image-cloud-amd64)", error->message);
  return g_steal_pointer (&path);
}

static void
test_host (void)
{
  g_autofree char *bz = host_kernel ();
  g_autofree char *dir = g_dir_make_tmp ("banger-unpack-XXXXXX", NULL);
  g_autofree char *out = g_build_filename (dir, "vmlinux", NULL);
  g_autofree char *format = NULL;
  g_autofree char *bz_release = NULL;
  g_autofree char *elf_release = NULL;
  g_autoptr (GError) error = NULL;
  BangerKernelFormat kind;

  format = banger_kernel_payload_format (bz, &error);
  g_assert_no_error (error);
  g_test_message ("%s: %s payload", bz, format);
  g_assert_true (
      g_strv_contains ((const char *const[]){ "gzip", "xz", "zstd", "lz4", NULL }, format));
  g_assert_true (banger_kernel_unpack_bzimage (bz, out, NULL, &error));
  g_assert_no_error (error);
  g_assert_true (banger_kernel_file_inspect (bz, &kind, &bz_release, &error));
  g_assert_cmpint (kind, ==, BANGER_KERNEL_FORMAT_BZIMAGE);
  g_assert_true (banger_kernel_file_inspect (out, &kind, &elf_release, &error));
  g_assert_no_error (error);
  g_assert_cmpint (kind, ==, BANGER_KERNEL_FORMAT_ELF);
  g_assert_nonnull (bz_release);
  g_assert_cmpstr (elf_release, ==, bz_release);
  g_unlink (out);
  g_rmdir (dir);
}

static void
test_broken (void)
{
  g_autofree char *bz = host_kernel ();
  g_autofree char *dir = g_dir_make_tmp ("banger-unpack-XXXXXX", NULL);
  g_autofree char *bad = g_build_filename (dir, "bad-bzImage", NULL);
  g_autofree char *out = g_build_filename (dir, "vmlinux", NULL);
  g_autofree char *data = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (GDir) d = NULL;
  gsize len;
  guint32 offs;
  guint setup;

  /* Not a bzImage at all. */
  g_assert_true (g_file_set_contents (bad, "hello", -1, NULL));
  g_assert_false (banger_kernel_unpack_bzimage (bad, out, NULL, &error));
  g_assert_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, bad));
  g_clear_error (&error);

  /* The real kernel with its payload's first block header overwritten (lz4
   * has no checksum, so only the container's structure shows damage; gzip,
   * xz and zstd would fail on their checksums as well). */
  g_assert_true (g_file_get_contents (bz, &data, &len, NULL));
  setup = (guchar)data[0x1f1] ? (guchar)data[0x1f1] : 4;
  memcpy (&offs, data + 0x248, 4);
  memset (data + (setup + 1) * 512 + offs + 4, 0xa5, 16);
  g_assert_true (g_file_set_contents (bad, data, (gssize)len, NULL));
  g_assert_false (banger_kernel_unpack_bzimage (bad, out, NULL, &error));
  g_assert_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, "corrupt"));

  /* Nothing but the input is left. */
  g_unlink (bad);
  d = g_dir_open (dir, 0, NULL);
  g_assert_null (g_dir_read_name (d));
  g_rmdir (dir);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/lifecycle/unpack/host", test_host);
  g_test_add_func ("/lifecycle/unpack/broken", test_broken);
  return g_test_run ();
}
