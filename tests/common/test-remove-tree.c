/* banger_remove_tree on real directories: nested trees go, symlinks are
 * removed and never followed, and a bind mount inside the tree (the user's
 * disk in a jail, say) is neither entered nor removed. */

#define G_LOG_DOMAIN "test-remove-tree"

#include <errno.h>
#include <fcntl.h>
#include <gio/gio.h>
#include <glib/gstdio.h>
#include <sched.h>
#include <sys/mount.h>
#include <unistd.h>

#include "remove-tree.h"

static char *
make_file (const char *dir, const char *name, const char *content)
{
  char *path = g_build_filename (dir, name, NULL);
  g_autoptr (GError) error = NULL;

  g_assert_true (g_file_set_contents (path, content, -1, &error));
  g_assert_no_error (error);
  return path;
}

static void
test_nested (void)
{
  g_autofree char *base = g_dir_make_tmp ("remove-tree-XXXXXX", NULL);
  g_autofree char *outside = g_build_filename (base, "outside", NULL);
  g_autofree char *tree = g_build_filename (base, "tree", NULL);
  g_autofree char *deep = g_build_filename (tree, "a", "b", "c", NULL);
  g_autofree char *keep = NULL, *f1 = NULL, *f2 = NULL;
  g_autofree char *link_dir = g_build_filename (tree, "a", "to-outside", NULL);
  g_autofree char *link_file = g_build_filename (tree, "a", "b", "keep-link", NULL);
  g_autofree char *ro = g_build_filename (tree, "a", "read-only", NULL);
  g_autoptr (GError) error = NULL;

  g_assert_cmpint (g_mkdir_with_parents (outside, 0755), ==, 0);
  g_assert_cmpint (g_mkdir_with_parents (deep, 0755), ==, 0);
  g_assert_cmpint (g_mkdir_with_parents (ro, 0755), ==, 0);
  keep = make_file (outside, "keep", "precious");
  f1 = make_file (tree, "top", "x");
  f2 = make_file (deep, "leaf", "y");
  g_free (make_file (ro, "inside", "z"));
  g_assert_cmpint (g_chmod (ro, 0555), ==, 0);
  g_assert_cmpint (symlink (outside, link_dir), ==, 0);
  g_assert_cmpint (symlink (keep, link_file), ==, 0);

  g_assert_true (banger_remove_tree (tree, &error));
  g_assert_no_error (error);
  g_assert_false (g_file_test (tree, G_FILE_TEST_EXISTS));
  /* What the links pointed at is untouched. */
  g_assert_true (g_file_test (keep, G_FILE_TEST_IS_REGULAR));
  g_assert_true (g_file_test (outside, G_FILE_TEST_IS_DIR));

  /* Absent: nothing to do. A plain file: removed. */
  g_assert_true (banger_remove_tree (tree, &error));
  g_assert_no_error (error);
  g_assert_true (banger_remove_tree (keep, &error));
  g_assert_no_error (error);
  g_assert_false (g_file_test (keep, G_FILE_TEST_EXISTS));
  g_assert_true (banger_remove_tree (base, &error));
  g_assert_no_error (error);
}

static void
test_contents_keep (void)
{
  g_autofree char *base = g_dir_make_tmp ("remove-tree-XXXXXX", NULL);
  g_autofree char *sub = g_build_filename (base, "a", "b", NULL);
  g_autofree char *keep = NULL;
  g_autoptr (GDir) dir = NULL;
  g_autoptr (GError) error = NULL;
  int fd;

  g_assert_cmpint (g_mkdir_with_parents (sub, 0755), ==, 0);
  g_free (make_file (sub, "f", "x"));
  g_free (make_file (base, "other", "y"));
  keep = make_file (base, "owner", "1000");
  fd = open (base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  g_assert_cmpint (fd, >=, 0);
  g_assert_true (banger_remove_tree_contents (fd, base, "owner", &error));
  g_assert_no_error (error);
  close (fd);
  /* Only the entry to keep is left, and the directory itself. */
  dir = g_dir_open (base, 0, NULL);
  g_assert_cmpstr (g_dir_read_name (dir), ==, "owner");
  g_assert_null (g_dir_read_name (dir));
  g_assert_true (banger_remove_tree (base, &error));
  g_assert_no_error (error);
}

static void
test_mount_point (void)
{
  g_autofree char *base = NULL, *src = NULL, *tree = NULL, *mnt = NULL, *disk = NULL;
  g_autofree char *other = NULL;
  g_autoptr (GError) error = NULL;

  /* A private mount namespace: the bind mount is this process's alone. */
  if (unshare (CLONE_NEWNS) < 0 || mount (NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
    g_test_fail_printf ("cannot make a private mount namespace (root needed): %s",
                        g_strerror (errno));
    return;
  }
  base = g_dir_make_tmp ("remove-tree-XXXXXX", NULL);
  src = g_build_filename (base, "user-files", NULL);
  tree = g_build_filename (base, "jail", NULL);
  mnt = g_build_filename (tree, "root", "disk", NULL);
  g_assert_cmpint (g_mkdir_with_parents (src, 0755), ==, 0);
  g_assert_cmpint (g_mkdir_with_parents (mnt, 0755), ==, 0);
  disk = make_file (src, "rootfs.ext4", "the user's disk");
  other = make_file (tree, "firecracker.pid", "123");
  g_assert_cmpint (mount (src, mnt, NULL, MS_BIND, NULL), ==, 0);

  g_assert_false (banger_remove_tree (tree, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_BUSY);
  g_assert_nonnull (strstr (error->message, "root/disk"));
  /* The bind mount's source is untouched; the rest of the tree went. */
  g_assert_true (g_file_test (disk, G_FILE_TEST_IS_REGULAR));
  g_assert_false (g_file_test (other, G_FILE_TEST_EXISTS));

  g_assert_cmpint (umount (mnt), ==, 0);
  g_clear_error (&error);
  g_assert_true (banger_remove_tree (tree, &error));
  g_assert_no_error (error);
  g_assert_true (g_file_test (disk, G_FILE_TEST_IS_REGULAR));
  g_assert_true (banger_remove_tree (base, &error));
  g_assert_no_error (error);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/remove-tree/nested", test_nested);
  g_test_add_func ("/remove-tree/contents-keep", test_contents_keep);
  g_test_add_func ("/remove-tree/mount-point", test_mount_point);
  return g_test_run ();
}
