#define G_LOG_DOMAIN "test-kernel-file"

/* Kernel inspection against the host's real Debian kernel and made-up
 * files. */

#include <gio/gio.h>
#include <glib/gstdio.h>
#include <sys/utsname.h>

#include "banger-error.h"
#include "kernel-file.h"

static void
test_host_kernel (void)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *path = NULL;
  g_autofree char *release = NULL;
  g_autofree char *read_release = NULL;
  BangerKernelFormat format;

  g_assert_true (banger_kernel_find_host ("/boot", "/lib/modules", &path, &release, &error));
  g_assert_no_error (error);
  g_assert_true (g_str_has_prefix (path, "/boot/vmlinuz-"));
  g_assert_true (g_str_has_suffix (path, release));

  g_assert_true (banger_kernel_file_inspect (path, &format, &read_release, &error));
  g_assert_no_error (error);
  g_assert_cmpint (format, ==, BANGER_KERNEL_FORMAT_BZIMAGE);
  /* The release written in the bzImage header is the one its file name and
   * module tree carry. */
  g_assert_cmpstr (read_release, ==, release);
  /* Debian's cloud kernel builds virtio_blk as a module. */
  if (strstr (release, "cloud") != NULL)
    g_assert_true (banger_kernel_needs_initramfs ("/lib/modules", release));
}

static void
test_not_a_kernel (void)
{
  g_autofree char *dir = g_dir_make_tmp ("banger-kf-XXXXXX", NULL);
  g_autofree char *path = g_build_filename (dir, "junk", NULL);
  g_autoptr (GError) error = NULL;
  BangerKernelFormat format;
  char *release = NULL;

  g_file_set_contents (path, "this is not a kernel at all", -1, NULL);
  g_assert_false (banger_kernel_file_inspect (path, &format, &release, &error));
  g_assert_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, path));
  g_clear_error (&error);

  g_assert_false (banger_kernel_file_inspect ("/nonexistent/vmlinuz", &format, &release, &error));
  g_assert_error (error, BANGER_ERROR, BANGER_ERROR_NOT_FOUND);
  g_unlink (path);
  g_rmdir (dir);
}

static void
test_elf_release (void)
{
  g_autofree char *dir = g_dir_make_tmp ("banger-kf-XXXXXX", NULL);
  g_autofree char *path = g_build_filename (dir, "vmlinux", NULL);
  g_autoptr (GString) body = g_string_new ("\177ELF");
  g_autoptr (GError) error = NULL;
  g_autofree char *release = NULL;
  BangerKernelFormat format;

  /* Padding, then the banner the kernel keeps in rodata. */
  for (int i = 0; i < 200000; i++)
    g_string_append_c (body, (char)(i & 0x7f));
  g_string_append (body, "Linux version 6.9.1-banger (cc) #1 SMP");
  g_string_append_len (body,
                       "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0"
                       "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0"
                       "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0",
                       96);
  g_file_set_contents (path, body->str, (gssize)body->len, NULL);
  g_assert_true (banger_kernel_file_inspect (path, &format, &release, &error));
  g_assert_cmpint (format, ==, BANGER_KERNEL_FORMAT_ELF);
  g_assert_cmpstr (release, ==, "6.9.1-banger");
  g_unlink (path);
  g_rmdir (dir);
}

static void
test_find_host_none (void)
{
  g_autofree char *dir = g_dir_make_tmp ("banger-kf-XXXXXX", NULL);
  g_autoptr (GError) error = NULL;

  g_assert_false (banger_kernel_find_host (dir, dir, NULL, NULL, &error));
  g_assert_error (error, BANGER_ERROR, BANGER_ERROR_NOT_FOUND);
  g_assert_nonnull (strstr (error->message, "kernel import"));
  g_rmdir (dir);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/kernel-file/host", test_host_kernel);
  g_test_add_func ("/kernel-file/not-a-kernel", test_not_a_kernel);
  g_test_add_func ("/kernel-file/elf-release", test_elf_release);
  g_test_add_func ("/kernel-file/find-host-none", test_find_host_none);
  return g_test_run ();
}
