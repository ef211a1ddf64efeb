#define G_LOG_DOMAIN "test-ext4-writer"

/* The ext4 writer, checked with e2fsprogs as a user would: e2fsck -fn, and
 * debugfs stat / ls / dump / ea_get. */

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "banger-error.h"
#include "ext4-writer.h"
#include "imaging-test-util.h"

#define MiB (1024 * 1024)

typedef struct {
  char *dir;
  char *image;
} Fixture;

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  f->dir = imaging_tmpdir ();
  f->image = g_build_filename (f->dir, "root.ext4", NULL);
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  imaging_rm_rf (f->dir);
  g_free (f->dir);
  g_free (f->image);
}

static BangerExt4Attrs
attrs (guint32 uid, guint32 gid, guint32 mode)
{
  BangerExt4Attrs a = { uid, gid, mode, 1700000000 };
  return a;
}

static char *
stat_of (Fixture *f, const char *path)
{
  g_autofree char *cmd = g_strdup_printf ("stat \"%s\"", path);
  return imaging_debugfs (f->image, cmd);
}

static gboolean
exists_in_image (Fixture *f, const char *path)
{
  g_autofree char *cmd = g_strdup_printf ("stat \"%s\"", path);
  const char *argv[] = { "debugfs", "-R", cmd, f->image, NULL };
  g_autofree char *err = NULL;
  g_autofree char *out = imaging_run (argv, NULL, &err);

  return strstr (err, "File not found") == NULL && strstr (out, "Inode:") != NULL;
}

static void
assert_content (Fixture *f, const char *path, const void *data, gsize len)
{
  g_autoptr (GBytes) got = imaging_dump (f->image, path);
  g_autoptr (GBytes) want = g_bytes_new (data, len);

  g_assert_cmpuint (g_bytes_get_size (got), ==, len);
  g_assert_true (g_bytes_equal (got, want));
}

static BangerExt4Writer *
new_writer (Fixture *f, guint64 size)
{
  g_autoptr (GError) error = NULL;
  BangerExt4Writer *w = banger_ext4_writer_new (f->image, size, 0, &error);

  g_assert_no_error (error);
  g_assert_nonnull (w);
  return w;
}

static void
finish (BangerExt4Writer *w)
{
  g_autoptr (GError) error = NULL;
  g_assert_true (banger_ext4_writer_finish (w, &error));
  g_assert_no_error (error);
}

/* Every kind of entry, then e2fsprogs reads them back. */
static void
test_all_kinds (Fixture *f, gconstpointer data)
{
  g_autoptr (BangerExt4Writer) w = new_writer (f, 64 * MiB);
  g_autoptr (GError) error = NULL;
  BangerExt4Attrs a;
  g_autofree guint8 *big = g_malloc (5 * MiB + 123);
  g_autofree guint8 *sparse = g_malloc0 (3 * MiB);
  g_autofree char *long_target = g_strnfill (200, 'x');
  const guint8 cap[20] = { 0x01, 0x00, 0x00, 0x02, 0x00, 0x20, 0x00, 0x00, 0x00, 0x00,
                           0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00 };
  g_autofree char *st = NULL;
  g_autofree char *ls = NULL;
  g_autofree char *caps_file = g_build_filename (f->dir, "cap", NULL);
  g_autofree char *cmd = NULL;
  g_autofree char *cap_got = NULL;
  gsize cap_len = 0;
  BangerExt4Stat s;

  for (gsize i = 0; i < 5 * MiB + 123; i++)
    big[i] = (guint8)(i * 2654435761u >> 13);
  /* Data, a 1 MiB hole, data, and a zero tail. */
  memset (sparse + 100, 0xab, 5000);
  memset (sparse + 2 * MiB, 0xcd, 4096);

  a = attrs (0, 0, 0755);
  g_assert_true (banger_ext4_writer_mkdir (w, "/usr/bin", &a, &error));
  g_assert_no_error (error);
  a = attrs (1000, 1001, 04755);
  g_assert_true (
      banger_ext4_writer_add_file_data (w, "/usr/bin/su", &a, "#!/bin/sh\n", 10, &error));
  g_assert_no_error (error);
  a = attrs (0, 0, 02755);
  g_assert_true (banger_ext4_writer_add_file_data (w, "usr/bin/sgid", &a, "g", 1, &error));
  g_assert_no_error (error);
  a = attrs (0, 0, 01777);
  g_assert_true (banger_ext4_writer_mkdir (w, "tmp", &a, &error));
  g_assert_no_error (error);
  a = attrs (0, 0, 0644);
  g_assert_true (banger_ext4_writer_add_file_data (w, "data/big", &a, big, 5 * MiB + 123, &error));
  g_assert_no_error (error);
  g_assert_true (banger_ext4_writer_add_file_data (w, "data/sparse", &a, sparse, 3 * MiB, &error));
  g_assert_no_error (error);
  g_assert_true (banger_ext4_writer_add_file_data (w, "data/empty", &a, "", 0, &error));
  g_assert_no_error (error);
  a = attrs (0, 0, 0777);
  g_assert_true (banger_ext4_writer_symlink (w, "bin", &a, "usr/bin", &error));
  g_assert_no_error (error);
  g_assert_true (banger_ext4_writer_symlink (w, "data/slow", &a, long_target, &error));
  g_assert_no_error (error);
  g_assert_true (banger_ext4_writer_hardlink (w, "data/big-link", "data/big", &error));
  g_assert_no_error (error);
  /* Through a relative symlink that stays inside: bin -> usr/bin. */
  g_assert_true (banger_ext4_writer_hardlink (w, "bin/su-again", "/usr/bin/su", &error));
  g_assert_no_error (error);
  a = attrs (0, 5, 0620);
  g_assert_true (banger_ext4_writer_mknod (w, "dev/tty1", &a, S_IFCHR, makedev (4, 1), &error));
  g_assert_no_error (error);
  a = attrs (0, 6, 0660);
  g_assert_true (banger_ext4_writer_mknod (w, "dev/vda", &a, S_IFBLK, makedev (254, 0), &error));
  g_assert_no_error (error);
  g_assert_true (
      banger_ext4_writer_mknod (w, "dev/big", &a, S_IFCHR, makedev (300, 70000), &error));
  g_assert_no_error (error);
  a = attrs (0, 0, 0600);
  g_assert_true (banger_ext4_writer_mknod (w, "run/fifo", &a, S_IFIFO, 0, &error));
  g_assert_no_error (error);
  g_assert_true (banger_ext4_writer_mknod (w, "run/sock", &a, S_IFSOCK, 0, &error));
  g_assert_no_error (error);
  g_assert_true (banger_ext4_writer_set_xattr (w, "usr/bin/su", "security.capability", cap,
                                               sizeof cap, &error));
  g_assert_no_error (error);
  g_assert_true (banger_ext4_writer_set_xattr (w, "data/big", "user.note", "hello", 5, &error));
  g_assert_no_error (error);
  /* Many entries in one directory: it has to grow. */
  a = attrs (0, 0, 0644);
  for (guint i = 0; i < 300; i++) {
    g_autofree char *name = g_strdup_printf ("many/a-rather-long-file-name-number-%04u", i);
    g_assert_true (banger_ext4_writer_add_file_data (w, name, &a, name, strlen (name), &error));
    g_assert_no_error (error);
  }

  g_assert_true (banger_ext4_writer_lookup (w, "bin/su", &s, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (s.mode, ==, S_IFREG | 04755);
  g_assert_cmpuint (s.nlink, ==, 2);
  g_assert_cmpuint (s.uid, ==, 1000);
  g_assert_false (banger_ext4_writer_lookup (w, "nope", &s, &error));
  g_assert_error (error, BANGER_ERROR, BANGER_ERROR_NOT_FOUND);
  g_clear_error (&error);

  finish (w);
  imaging_assert_fsck_clean (f->image);

  st = stat_of (f, "/usr/bin/su");
  g_assert_cmpint (imaging_stat_field (st, "Mode:"), ==, 04755);
  g_assert_cmpint (imaging_stat_field (st, "User:"), ==, 1000);
  g_assert_cmpint (imaging_stat_field (st, "Group:"), ==, 1001);
  g_assert_cmpint (imaging_stat_field (st, "Links:"), ==, 2);
  g_assert_nonnull (strstr (st, "Type: regular"));
  g_clear_pointer (&st, g_free);
  assert_content (f, "/bin/su-again", "#!/bin/sh\n", 10);

  st = stat_of (f, "/usr/bin/sgid");
  g_assert_cmpint (imaging_stat_field (st, "Mode:"), ==, 02755);
  g_clear_pointer (&st, g_free);
  st = stat_of (f, "/tmp");
  g_assert_cmpint (imaging_stat_field (st, "Mode:"), ==, 01777);
  g_assert_nonnull (strstr (st, "Type: directory"));
  g_clear_pointer (&st, g_free);

  st = stat_of (f, "/data/big");
  g_assert_cmpint (imaging_stat_field (st, "Links:"), ==, 2);
  g_assert_cmpint (imaging_stat_field (st, "Size:"), ==, 5 * MiB + 123);
  g_assert_nonnull (strstr (st, "EXTENTS"));
  g_clear_pointer (&st, g_free);
  assert_content (f, "/data/big", big, 5 * MiB + 123);
  assert_content (f, "/data/big-link", big, 5 * MiB + 123);

  st = stat_of (f, "/data/sparse");
  /* Bytes 100..5099 (blocks 0 and 1) and one block at 2 MiB: three 4 KiB
   * blocks = 24 sectors of 512 bytes; the rest are holes. */
  g_assert_cmpint (imaging_stat_field (st, "Blockcount:"), ==, 24);
  g_clear_pointer (&st, g_free);
  assert_content (f, "/data/sparse", sparse, 3 * MiB);
  assert_content (f, "/data/empty", "", 0);

  st = stat_of (f, "/bin");
  g_assert_nonnull (strstr (st, "Type: symlink"));
  g_assert_nonnull (strstr (st, "Fast link dest: \"usr/bin\""));
  g_clear_pointer (&st, g_free);
  st = stat_of (f, "/data/slow");
  g_assert_nonnull (strstr (st, "Type: symlink"));
  g_assert_cmpint (imaging_stat_field (st, "Size:"), ==, 200);
  g_clear_pointer (&st, g_free);
  assert_content (f, "/data/slow", long_target, 200);

  st = stat_of (f, "/dev/tty1");
  g_assert_nonnull (strstr (st, "Type: character special"));
  g_assert_nonnull (strstr (st, "Device major/minor number: 04:01"));
  g_assert_cmpint (imaging_stat_field (st, "Mode:"), ==, 0620);
  g_assert_cmpint (imaging_stat_field (st, "Group:"), ==, 5);
  g_clear_pointer (&st, g_free);
  st = stat_of (f, "/dev/vda");
  g_assert_nonnull (strstr (st, "Type: block special"));
  g_assert_nonnull (strstr (st, "Device major/minor number: 254:00"));
  g_clear_pointer (&st, g_free);
  st = stat_of (f, "/dev/big");
  g_assert_nonnull (strstr (st, "Device major/minor number: 300:70000"));
  g_clear_pointer (&st, g_free);
  st = stat_of (f, "/run/fifo");
  g_assert_nonnull (strstr (st, "Type: FIFO"));
  g_clear_pointer (&st, g_free);
  st = stat_of (f, "/run/sock");
  g_assert_nonnull (strstr (st, "Type: socket"));
  g_clear_pointer (&st, g_free);

  cmd = g_strdup_printf ("ea_get -f %s /usr/bin/su security.capability", caps_file);
  g_free (imaging_debugfs (f->image, cmd));
  g_assert_true (g_file_get_contents (caps_file, &cap_got, &cap_len, &error));
  g_assert_no_error (error);
  g_assert_cmpmem (cap_got, cap_len, cap, sizeof cap);
  g_clear_pointer (&cmd, g_free);
  cmd = g_strdup ("ea_get /data/big user.note");
  st = imaging_debugfs (f->image, cmd);
  g_assert_nonnull (strstr (st, "hello"));
  g_clear_pointer (&st, g_free);

  ls = imaging_debugfs (f->image, "ls -l /many");
  g_assert_nonnull (strstr (ls, "a-rather-long-file-name-number-0299"));
  assert_content (f, "/many/a-rather-long-file-name-number-0123",
                  "many/a-rather-long-file-name-number-0123",
                  strlen ("many/a-rather-long-file-name-number-0123"));
}

/* A tar layer's replacements: file → symlink, directory → file, file →
 * directory, directory → directory keeps its children. */
static void
test_replace (Fixture *f, gconstpointer data)
{
  g_autoptr (BangerExt4Writer) w = new_writer (f, 32 * MiB);
  g_autoptr (GError) error = NULL;
  BangerExt4Attrs a = attrs (0, 0, 0644);
  BangerExt4Attrs d = attrs (0, 0, 0755);
  g_autofree char *st = NULL;
  g_autofree guint8 *blob = g_malloc (2 * MiB);

  memset (blob, 0x5a, 2 * MiB);
  g_assert_true (banger_ext4_writer_add_file_data (w, "etc/motd", &a, "old", 3, &error));
  g_assert_true (banger_ext4_writer_symlink (w, "etc/motd", &a, "/run/motd", &error));
  g_assert_no_error (error);

  g_assert_true (banger_ext4_writer_add_file_data (w, "opt/app/lib/x", &a, blob, 2 * MiB, &error));
  g_assert_true (banger_ext4_writer_add_file_data (w, "opt/app", &a, "now a file", 10, &error));
  g_assert_no_error (error);

  g_assert_true (banger_ext4_writer_add_file_data (w, "var/cache", &a, "file", 4, &error));
  g_assert_true (banger_ext4_writer_mkdir (w, "var/cache", &d, &error));
  g_assert_no_error (error);

  g_assert_true (banger_ext4_writer_add_file_data (w, "srv/keep/child", &a, "c", 1, &error));
  d = attrs (7, 7, 0700);
  g_assert_true (banger_ext4_writer_mkdir (w, "srv/keep", &d, &error));
  g_assert_no_error (error);

  /* A symlink is replaced, not followed, when it is the last component. */
  g_assert_true (banger_ext4_writer_symlink (w, "lnk", &a, "srv", &error));
  g_assert_true (banger_ext4_writer_add_file_data (w, "lnk", &a, "plain", 5, &error));
  g_assert_no_error (error);
  finish (w);
  imaging_assert_fsck_clean (f->image);

  st = stat_of (f, "/etc/motd");
  g_assert_nonnull (strstr (st, "Fast link dest: \"/run/motd\""));
  g_clear_pointer (&st, g_free);
  st = stat_of (f, "/opt/app");
  g_assert_nonnull (strstr (st, "Type: regular"));
  g_clear_pointer (&st, g_free);
  assert_content (f, "/opt/app", "now a file", 10);
  st = stat_of (f, "/var/cache");
  g_assert_nonnull (strstr (st, "Type: directory"));
  g_clear_pointer (&st, g_free);
  st = stat_of (f, "/srv/keep");
  g_assert_cmpint (imaging_stat_field (st, "Mode:"), ==, 0700);
  g_assert_cmpint (imaging_stat_field (st, "User:"), ==, 7);
  g_clear_pointer (&st, g_free);
  assert_content (f, "/srv/keep/child", "c", 1);
  assert_content (f, "/lnk", "plain", 5);
  g_assert_true (exists_in_image (f, "/srv"));
}

/* OCI whiteouts: remove (recursive, missing is fine), opaque directories,
 * and one name of a hard-linked file. */
static void
test_remove_opaque (Fixture *f, gconstpointer data)
{
  g_autoptr (BangerExt4Writer) w = new_writer (f, 32 * MiB);
  g_autoptr (GError) error = NULL;
  BangerExt4Attrs a = attrs (0, 0, 0644);
  g_autofree char *st = NULL;
  g_autofree char *ls = NULL;
  g_autofree guint8 *blob = g_malloc (MiB);
  BangerExt4Stat s;

  memset (blob, 1, MiB);
  for (guint i = 0; i < 50; i++) {
    g_autofree char *name = g_strdup_printf ("tree/sub%u/file%u", i % 5, i);
    g_assert_true (banger_ext4_writer_add_file_data (w, name, &a, blob, MiB / 4, &error));
    g_assert_no_error (error);
  }
  g_assert_true (banger_ext4_writer_symlink (w, "tree/sub0/link", &a, "../sub1", &error));
  g_assert_true (banger_ext4_writer_add_file_data (w, "keep/a", &a, "a", 1, &error));
  g_assert_true (banger_ext4_writer_hardlink (w, "keep/b", "keep/a", &error));
  g_assert_true (banger_ext4_writer_add_file_data (w, "opaque/x/y", &a, blob, MiB, &error));
  g_assert_true (banger_ext4_writer_add_file_data (w, "opaque/z", &a, "z", 1, &error));
  g_assert_no_error (error);

  g_assert_true (banger_ext4_writer_remove (w, "tree", &error));
  g_assert_no_error (error);
  g_assert_true (banger_ext4_writer_remove (w, "never/was/here", &error));
  g_assert_no_error (error);
  g_assert_true (banger_ext4_writer_remove (w, "keep/a", &error));
  g_assert_no_error (error);
  g_assert_true (banger_ext4_writer_make_opaque (w, "opaque", &error));
  g_assert_no_error (error);
  g_assert_true (banger_ext4_writer_add_file_data (w, "opaque/new", &a, "n", 1, &error));
  g_assert_no_error (error);
  g_assert_false (banger_ext4_writer_remove (w, "/", &error));
  g_assert_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_assert_false (banger_ext4_writer_lookup (w, "tree", &s, &error));
  g_assert_error (error, BANGER_ERROR, BANGER_ERROR_NOT_FOUND);
  g_clear_error (&error);
  finish (w);
  imaging_assert_fsck_clean (f->image);

  g_assert_false (exists_in_image (f, "/tree"));
  g_assert_false (exists_in_image (f, "/keep/a"));
  st = stat_of (f, "/keep/b");
  g_assert_cmpint (imaging_stat_field (st, "Links:"), ==, 1);
  g_clear_pointer (&st, g_free);
  ls = imaging_debugfs (f->image, "ls /opaque");
  g_assert_null (strstr (ls, " x "));
  g_assert_null (strstr (ls, " z "));
  g_assert_nonnull (strstr (ls, "new"));
  g_assert_false (exists_in_image (f, "/opaque/x/y"));
  /* All those blocks are free again: e2fsck agreed with the bitmaps, and
   * debugfs says so. */
  st = imaging_debugfs (f->image, "stats");
  g_assert_nonnull (strstr (st, "Free blocks:"));
}

static void
assert_escape (BangerExt4Writer *w, GError *error, const char *path)
{
  g_assert_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT);
  g_test_message ("%s: %s", path, error->message);
  g_assert_nonnull (strstr (error->message, path));
}

/* Paths that would leave the image are errors naming the path, and the
 * image stays consistent. */
static void
test_escapes (Fixture *f, gconstpointer data)
{
  g_autoptr (BangerExt4Writer) w = new_writer (f, 32 * MiB);
  g_autoptr (GError) error = NULL;
  BangerExt4Attrs a = attrs (0, 0, 0644);
  BangerExt4Stat s;

  g_assert_true (banger_ext4_writer_mkdir (w, "etc", &a, &error));
  g_assert_true (banger_ext4_writer_symlink (w, "evil-abs", &a, "/etc", &error));
  g_assert_true (banger_ext4_writer_symlink (w, "a/evil-up", &a, "../..", &error));
  g_assert_true (banger_ext4_writer_symlink (w, "a/b/evil-deep", &a, "../../../../tmp", &error));
  g_assert_true (banger_ext4_writer_add_file_data (w, "a/file", &a, "f", 1, &error));
  g_assert_no_error (error);

  g_assert_false (banger_ext4_writer_add_file_data (w, "../x", &a, "x", 1, &error));
  assert_escape (w, error, "../x");
  g_clear_error (&error);
  g_assert_false (banger_ext4_writer_add_file_data (w, "a/../../x", &a, "x", 1, &error));
  assert_escape (w, error, "a/../../x");
  g_clear_error (&error);
  g_assert_false (banger_ext4_writer_mkdir (w, "/../../etc/cron.d", &a, &error));
  assert_escape (w, error, "/../../etc/cron.d");
  g_clear_error (&error);
  g_assert_false (banger_ext4_writer_add_file_data (w, "evil-abs/passwd", &a, "x", 1, &error));
  assert_escape (w, error, "evil-abs/passwd");
  g_clear_error (&error);
  g_assert_false (banger_ext4_writer_symlink (w, "a/evil-up/x", &a, "y", &error));
  assert_escape (w, error, "a/evil-up/x");
  g_clear_error (&error);
  g_assert_false (banger_ext4_writer_add_file_data (w, "a/b/evil-deep/x", &a, "x", 1, &error));
  assert_escape (w, error, "a/b/evil-deep/x");
  g_clear_error (&error);
  g_assert_false (banger_ext4_writer_hardlink (w, "a/hl", "../outside", &error));
  assert_escape (w, error, "../outside");
  g_clear_error (&error);
  g_assert_false (banger_ext4_writer_hardlink (w, "a/hl", "a/evil-up/etc/passwd", &error));
  assert_escape (w, error, "a/evil-up/etc/passwd");
  g_clear_error (&error);
  g_assert_false (banger_ext4_writer_remove (w, "a/../../etc", &error));
  assert_escape (w, error, "a/../../etc");
  g_clear_error (&error);
  g_assert_false (banger_ext4_writer_set_xattr (w, "../etc", "user.x", "1", 1, &error));
  assert_escape (w, error, "../etc");
  g_clear_error (&error);
  /* Inside is fine: ".." that stays in, a relative link that stays in. */
  g_assert_true (banger_ext4_writer_add_file_data (w, "a/../inside", &a, "i", 1, &error));
  g_assert_no_error (error);
  g_assert_true (banger_ext4_writer_symlink (w, "a/up-one", &a, "..", &error));
  g_assert_true (banger_ext4_writer_add_file_data (w, "a/up-one/etc/ok", &a, "k", 1, &error));
  g_assert_no_error (error);
  g_assert_true (banger_ext4_writer_lookup (w, "etc/ok", &s, &error));
  g_assert_no_error (error);
  g_assert_false (banger_ext4_writer_lookup (w, "x", &s, &error));
  g_clear_error (&error);
  finish (w);
  imaging_assert_fsck_clean (f->image);
  g_assert_false (exists_in_image (f, "/x"));
  g_assert_false (exists_in_image (f, "/passwd"));
  g_assert_false (exists_in_image (f, "/etc/passwd"));
  assert_content (f, "/inside", "i", 1);
  assert_content (f, "/etc/ok", "k", 1);
}

/* A host tree (with a hard link, device nodes, a fifo, a socket-less
 * symlink, owners, setuid and an xattr) comes out the same in the image. */
static void
test_add_tree (Fixture *f, gconstpointer data)
{
  g_autofree char *tree = g_build_filename (f->dir, "tree", NULL);
  g_autofree char *p = NULL;
  g_autoptr (BangerExt4Writer) w = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *st = NULL;
  g_autofree char *bin_dir = g_build_filename (tree, "bin", NULL);
  g_autofree char *dev_dir = g_build_filename (tree, "dev", NULL);
  guint64 size = 0, inodes = 0;
  gboolean have_xattr;

  if (geteuid () != 0) {
    g_test_skip ("needs root for mknod and chown in the test tree");
    return;
  }
  g_assert_cmpint (g_mkdir_with_parents (bin_dir, 0755), ==, 0);
  g_assert_cmpint (g_mkdir_with_parents (dev_dir, 0755), ==, 0);
  p = g_build_filename (tree, "bin", "busybox", NULL);
  g_assert_true (g_file_set_contents (p, "BUSYBOX", 7, &error));
  /* chown clears setuid: chmod after it. */
  g_assert_cmpint (chown (p, 0, 50), ==, 0);
  g_assert_cmpint (chmod (p, 04755), ==, 0);
  have_xattr = lsetxattr (p, "user.origin", "tree", 4, 0) == 0;
  {
    g_autofree char *ln = g_build_filename (tree, "bin", "sh", NULL);
    g_autofree char *sl = g_build_filename (tree, "bin", "ls", NULL);
    g_autofree char *c = g_build_filename (tree, "dev", "null", NULL);
    g_autofree char *b = g_build_filename (tree, "dev", "vda", NULL);
    g_autofree char *fifo = g_build_filename (tree, "dev", "initctl", NULL);
    g_autofree char *home = g_build_filename (tree, "home", "user", NULL);

    g_assert_cmpint (link (p, ln), ==, 0);
    g_assert_cmpint (symlink ("busybox", sl), ==, 0);
    g_assert_cmpint (mknod (c, S_IFCHR | 0666, makedev (1, 3)), ==, 0);
    g_assert_cmpint (chmod (c, 0666), ==, 0); /* past the umask */
    g_assert_cmpint (mknod (b, S_IFBLK | 0660, makedev (254, 0)), ==, 0);
    g_assert_cmpint (mkfifo (fifo, 0600), ==, 0);
    g_assert_cmpint (g_mkdir_with_parents (home, 0700), ==, 0);
    g_assert_cmpint (chown (home, 1000, 1000), ==, 0);
  }
  g_assert_true (banger_ext4_size_for_tree (tree, 20, &size, &inodes, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (size, >=, 32 * MiB);

  w = banger_ext4_writer_new (f->image, size, inodes, &error);
  g_assert_no_error (error);
  g_assert_true (banger_ext4_writer_add_tree (w, tree, "/", &error));
  g_assert_no_error (error);
  finish (w);
  imaging_assert_fsck_clean (f->image);

  st = stat_of (f, "/bin/busybox");
  g_assert_cmpint (imaging_stat_field (st, "Mode:"), ==, 04755);
  g_assert_cmpint (imaging_stat_field (st, "Group:"), ==, 50);
  g_assert_cmpint (imaging_stat_field (st, "Links:"), ==, 2);
  g_clear_pointer (&st, g_free);
  st = stat_of (f, "/bin/sh");
  g_assert_cmpint (imaging_stat_field (st, "Links:"), ==, 2);
  g_clear_pointer (&st, g_free);
  assert_content (f, "/bin/sh", "BUSYBOX", 7);
  st = stat_of (f, "/bin/ls");
  g_assert_nonnull (strstr (st, "Fast link dest: \"busybox\""));
  g_clear_pointer (&st, g_free);
  st = stat_of (f, "/dev/null");
  g_assert_nonnull (strstr (st, "Type: character special"));
  g_assert_nonnull (strstr (st, "Device major/minor number: 01:03"));
  g_assert_cmpint (imaging_stat_field (st, "Mode:"), ==, 0666);
  g_clear_pointer (&st, g_free);
  st = stat_of (f, "/dev/vda");
  g_assert_nonnull (strstr (st, "Type: block special"));
  g_assert_nonnull (strstr (st, "Device major/minor number: 254:00"));
  g_clear_pointer (&st, g_free);
  st = stat_of (f, "/dev/initctl");
  g_assert_nonnull (strstr (st, "Type: FIFO"));
  g_clear_pointer (&st, g_free);
  st = stat_of (f, "/home/user");
  g_assert_cmpint (imaging_stat_field (st, "Mode:"), ==, 0700);
  g_assert_cmpint (imaging_stat_field (st, "User:"), ==, 1000);
  g_clear_pointer (&st, g_free);
  if (have_xattr) {
    st = imaging_debugfs (f->image, "ea_get /bin/busybox user.origin");
    g_assert_nonnull (strstr (st, "tree"));
  }
}

static gboolean
dir_has_entries (const char *dir)
{
  g_autoptr (GDir) d = g_dir_open (dir, 0, NULL);
  return d != NULL && g_dir_read_name (d) != NULL;
}

/* A writer that fails or is dropped leaves nothing at the destination (and
 * no temporary file), and an older image there is untouched. */
static void
test_failure_leaves_nothing (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  BangerExt4Attrs a = attrs (0, 0, 0644);
  g_autofree guint8 *blob = g_malloc0 (40 * MiB);
  g_autofree char *old = NULL;
  BangerExt4Writer *w;

  /* Dropped half way. */
  w = new_writer (f, 32 * MiB);
  g_assert_true (banger_ext4_writer_add_file_data (w, "a", &a, "a", 1, &error));
  g_assert_no_error (error);
  banger_ext4_writer_free (w);
  g_assert_false (g_file_test (f->image, G_FILE_TEST_EXISTS));
  g_assert_false (dir_has_entries (f->dir));

  /* Out of space: 40 MiB of non-zero data into 32 MiB. */
  memset (blob, 0x77, 40 * MiB);
  g_assert_true (g_file_set_contents (f->image, "old image", 9, &error));
  w = new_writer (f, 32 * MiB);
  g_assert_false (banger_ext4_writer_add_file_data (w, "big", &a, blob, 40 * MiB, &error));
  g_assert_nonnull (error);
  g_test_message ("%s", error->message);
  g_assert_nonnull (strstr (error->message, "big"));
  g_clear_error (&error);
  banger_ext4_writer_free (w);
  g_assert_true (g_file_get_contents (f->image, &old, NULL, &error));
  g_assert_cmpstr (old, ==, "old image");

  /* A stream that ends early is an error naming the file. */
  g_assert_cmpint (unlink (f->image), ==, 0);
  w = new_writer (f, 32 * MiB);
  {
    g_autoptr (GInputStream) in = g_memory_input_stream_new_from_data ("short", 5, NULL);
    g_assert_false (banger_ext4_writer_add_file_stream (w, "trunc", &a, in, 100, NULL, &error));
    g_assert_nonnull (strstr (error->message, "trunc"));
    g_clear_error (&error);
  }
  banger_ext4_writer_free (w);
  g_assert_false (dir_has_entries (f->dir));

  /* Too small to be a file system. */
  g_assert_null (banger_ext4_writer_new (f->image, 1 * MiB, 0, &error));
  g_assert_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT);
  g_assert_false (dir_has_entries (f->dir));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

#define ADD(path, fn) g_test_add (path, Fixture, NULL, fixture_setup, fn, fixture_teardown)
  ADD ("/imaging/ext4/all-kinds", test_all_kinds);
  ADD ("/imaging/ext4/replace", test_replace);
  ADD ("/imaging/ext4/remove-opaque", test_remove_opaque);
  ADD ("/imaging/ext4/escapes", test_escapes);
  ADD ("/imaging/ext4/add-tree", test_add_tree);
  ADD ("/imaging/ext4/failure-leaves-nothing", test_failure_leaves_nothing);
#undef ADD
  return g_test_run ();
}
