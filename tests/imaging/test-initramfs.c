#define G_LOG_DOMAIN "test-initramfs"

/* Kernel module order against modprobe itself, and the initramfs read back
 * with libarchive and GNU cpio (Debian package cpio). */

#include <archive.h>
#include <archive_entry.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "banger-error.h"
#include "imaging-test-util.h"
#include "initramfs.h"

#define MODULES_ROOT "/lib/modules"

/* The installed kernel whose module tree has virtio as modules (Debian's
 * linux-image-cloud-amd64 here); NULL if there is none. */
static char *
find_kernel (void)
{
  g_autoptr (GDir) dir = g_dir_open (MODULES_ROOT, 0, NULL);
  const char *name;

  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL) {
    g_autofree char *dep = g_build_filename (MODULES_ROOT, name, "modules.dep", NULL);
    g_autofree char *contents = NULL;

    if (g_file_get_contents (dep, &contents, NULL, NULL)
        && strstr (contents, "/virtio_blk.ko:") != NULL)
      return g_strdup (name);
  }
  return NULL;
}

/* What `modprobe -S KVER --show-depends` would insmod for each module in
 * turn, relative to the module directory, each once. */
static GPtrArray *
modprobe_order (const char *kver, const char *const *modules)
{
  GPtrArray *order = g_ptr_array_new_with_free_func (g_free);
  g_autofree char *prefix = g_strdup_printf ("%s/%s/", MODULES_ROOT, kver);
  g_autoptr (GStrvBuilder) argv_builder = g_strv_builder_new ();
  g_auto (GStrv) argv = NULL;
  g_auto (GStrv) lines = NULL;
  g_autofree char *out = NULL;
  int status = 0;

  g_strv_builder_add_many (argv_builder, "modprobe", "-a", "-S", kver, "--show-depends", NULL);
  g_strv_builder_addv (argv_builder, (const char **)modules);
  argv = g_strv_builder_end (argv_builder);
  out = imaging_run ((const char *const *)argv, &status, NULL);
  g_assert_cmpint (status, ==, 0);
  lines = g_strsplit (out, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++) {
    g_auto (GStrv) tok = g_strsplit (g_strstrip (lines[i]), " ", 3);
    const char *rel;

    if (tok[0] == NULL || !g_str_equal (tok[0], "insmod") || tok[1] == NULL)
      continue;
    g_assert_true (g_str_has_prefix (tok[1], prefix));
    rel = tok[1] + strlen (prefix);
    if (!g_ptr_array_find_with_equal_func (order, rel, g_str_equal, NULL))
      g_ptr_array_add (order, g_strdup (rel));
  }
  return order;
}

static void
test_order_matches_modprobe (void)
{
  g_autofree char *kver = find_kernel ();
  g_autoptr (GPtrArray) want = NULL;
  g_autoptr (GPtrArray) got = NULL;
  g_autoptr (GError) error = NULL;
  const char *const *modules = BANGER_INITRAMFS_DEFAULT_MODULES;

  if (kver == NULL) {
    g_test_skip ("no kernel with virtio modules in /lib/modules (linux-image-cloud-amd64)");
    return;
  }
  want = modprobe_order (kver, modules);
  got = banger_kmod_resolve_order (MODULES_ROOT, kver, modules, &error);
  g_assert_no_error (error);
  g_test_message ("%s: %u modules", kver, got->len);
  for (guint i = 0; i < MAX (want->len, got->len); i++)
    g_test_message ("  %s | %s", i < want->len ? (char *)want->pdata[i] : "-",
                    i < got->len ? (char *)got->pdata[i] : "-");
  g_assert_cmpuint (got->len, ==, want->len);
  for (guint i = 0; i < want->len; i++)
    g_assert_cmpstr (got->pdata[i], ==, want->pdata[i]);
  g_assert_cmpuint (got->len, >, 8);
}

static void
test_missing_module (void)
{
  g_autofree char *kver = find_kernel ();
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) got = NULL;
  g_autofree char *dir = imaging_tmpdir ();
  g_autofree char *dest = g_build_filename (dir, "initrd.img", NULL);
  const char *const modules[] = { "virtio_blk", "no-such-module", NULL };

  if (kver == NULL) {
    g_test_skip ("no kernel with virtio modules in /lib/modules (linux-image-cloud-amd64)");
    return;
  }
  got = banger_kmod_resolve_order (MODULES_ROOT, kver, modules, &error);
  g_assert_null (got);
  g_assert_error (error, BANGER_ERROR, BANGER_ERROR_NOT_FOUND);
  g_assert_nonnull (strstr (error->message, "no-such-module"));
  g_clear_error (&error);

  g_assert_false (
      banger_initramfs_write (MODULES_ROOT, kver, modules, "/proc/self/exe", dest, &error));
  g_assert_error (error, BANGER_ERROR, BANGER_ERROR_NOT_FOUND);
  g_assert_nonnull (strstr (error->message, "no-such-module"));
  g_assert_false (g_file_test (dest, G_FILE_TEST_EXISTS));
  imaging_rm_rf (dir);
}

typedef struct {
  guint mode;
  guint rdev_major;
  guint rdev_minor;
  GBytes *data;
} Member;

static void
member_free (gpointer p)
{
  Member *m = p;
  g_bytes_unref (m->data);
  g_free (m);
}

static GHashTable *
read_archive (const char *path)
{
  GHashTable *members = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, member_free);
  struct archive *a = archive_read_new ();
  struct archive_entry *entry;

  archive_read_support_filter_gzip (a);
  archive_read_support_format_cpio (a);
  g_assert_cmpint (archive_read_open_filename (a, path, 65536), ==, ARCHIVE_OK);
  while (archive_read_next_header (a, &entry) == ARCHIVE_OK) {
    Member *m = g_new0 (Member, 1);
    la_int64_t size = archive_entry_size (entry);
    guint8 *buf = g_malloc (size + 1);

    g_assert_cmpint (archive_read_data (a, buf, size), ==, size);
    m->mode = archive_entry_mode (entry);
    m->rdev_major = archive_entry_rdevmajor (entry);
    m->rdev_minor = archive_entry_rdevminor (entry);
    m->data = g_bytes_new_take (buf, size);
    g_hash_table_insert (members, g_strdup (archive_entry_pathname (entry)), m);
  }
  g_assert_cmpint (archive_read_free (a), ==, ARCHIVE_OK);
  return members;
}

/* GNU cpio's listing of the decompressed archive. */
static char *
cpio_list (const char *path)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *gz = NULL;
  gsize gz_len = 0;
  g_autoptr (GZlibDecompressor) dec = g_zlib_decompressor_new (G_ZLIB_COMPRESSOR_FORMAT_GZIP);
  g_autoptr (GInputStream) raw = NULL;
  g_autoptr (GInputStream) in = NULL;
  g_autoptr (GOutputStream) mem = g_memory_output_stream_new_resizable ();
  g_autoptr (GBytes) plain = NULL;
  g_autoptr (GSubprocess) proc = NULL;
  g_autofree char *out = NULL;
  const char *argv[] = { "cpio", "-t", "--quiet", NULL };

  g_assert_true (g_file_get_contents (path, &gz, &gz_len, &error));
  raw = g_memory_input_stream_new_from_data (g_steal_pointer (&gz), gz_len, g_free);
  in = g_converter_input_stream_new (raw, G_CONVERTER (dec));
  g_output_stream_splice (mem, in, G_OUTPUT_STREAM_SPLICE_CLOSE_TARGET, NULL, &error);
  g_assert_no_error (error);
  plain = g_memory_output_stream_steal_as_bytes (G_MEMORY_OUTPUT_STREAM (mem));

  proc = g_subprocess_newv (argv, G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE,
                            &error);
  g_assert_no_error (error);
  {
    g_autoptr (GBytes) out_bytes = NULL;
    g_subprocess_communicate (proc, plain, NULL, &out_bytes, NULL, &error);
    g_assert_no_error (error);
    out = g_strndup (g_bytes_get_data (out_bytes, NULL), g_bytes_get_size (out_bytes));
  }
  g_assert_true (g_subprocess_get_successful (proc));
  return g_steal_pointer (&out);
}

static void
test_contents (void)
{
  g_autofree char *kver = find_kernel ();
  g_autofree char *dir = imaging_tmpdir ();
  g_autofree char *dest = g_build_filename (dir, "initrd.img", NULL);
  g_autofree char *self_exe = g_file_read_link ("/proc/self/exe", NULL);
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) order = NULL;
  g_autoptr (GHashTable) members = NULL;
  g_autoptr (GString) want_list = g_string_new (NULL);
  g_autofree char *listing = NULL;
  g_autofree char *kdir = NULL;
  const char *const *modules = BANGER_INITRAMFS_DEFAULT_MODULES;
  Member *m;
  gint64 start;

  if (kver == NULL) {
    g_test_skip ("no kernel with virtio modules in /lib/modules (linux-image-cloud-amd64)");
    return;
  }
  start = g_get_monotonic_time ();
  g_assert_true (banger_initramfs_write (MODULES_ROOT, kver, modules, self_exe, dest, &error));
  g_assert_no_error (error);
  g_test_message ("initramfs written in %.3f s", (g_get_monotonic_time () - start) / 1e6);

  members = read_archive (dest);
  m = g_hash_table_lookup (members, "init");
  g_assert_nonnull (m);
  g_assert_cmpuint (m->mode, ==, S_IFREG | 0755);
  {
    g_autofree char *exe = NULL;
    gsize len = 0;
    g_autoptr (GBytes) want = NULL;

    g_assert_true (g_file_get_contents (self_exe, &exe, &len, &error));
    want = g_bytes_new_take (g_steal_pointer (&exe), len);
    g_assert_true (g_bytes_equal (m->data, want));
  }
  m = g_hash_table_lookup (members, "dev/console");
  g_assert_nonnull (m);
  g_assert_true (S_ISCHR (m->mode));
  g_assert_cmpuint (m->rdev_major, ==, 5);
  g_assert_cmpuint (m->rdev_minor, ==, 1);
  for (guint i = 0; i < 4; i++) {
    const char *d[] = { "dev", "proc", "sys", "root" };
    m = g_hash_table_lookup (members, d[i]);
    g_assert_nonnull (m);
    g_assert_true (S_ISDIR (m->mode));
  }
  kdir = g_build_filename ("lib/modules", kver, NULL);
  m = g_hash_table_lookup (members, kdir);
  g_assert_nonnull (m);
  g_assert_true (S_ISDIR (m->mode));

  order = banger_kmod_resolve_order (MODULES_ROOT, kver, modules, &error);
  g_assert_no_error (error);
  for (guint i = 0; i < order->len; i++) {
    const char *rel = order->pdata[i];
    g_autofree char *member = g_build_filename (kdir, rel, NULL);
    g_autofree char *host = g_build_filename (MODULES_ROOT, kver, rel, NULL);
    g_autofree char *ko = NULL;
    gsize len = 0;
    g_autoptr (GBytes) want = NULL;

    g_string_append_printf (want_list, "%s\n", rel);
    m = g_hash_table_lookup (members, member);
    g_assert_nonnull (m);
    g_assert_true (g_file_get_contents (host, &ko, &len, &error));
    want = g_bytes_new_take (g_steal_pointer (&ko), len);
    g_assert_true (g_bytes_equal (m->data, want));
  }
  m = g_hash_table_lookup (members, "etc/banger/modules");
  g_assert_nonnull (m);
  g_assert_cmpmem (g_bytes_get_data (m->data, NULL), g_bytes_get_size (m->data), want_list->str,
                   want_list->len);

  listing = cpio_list (dest);
  g_assert_nonnull (strstr (listing, "\ninit\n"));
  g_assert_nonnull (strstr (listing, "\ndev/console\n"));
  g_assert_nonnull (strstr (listing, "etc/banger/modules\n"));
  g_assert_nonnull (strstr (listing, "/virtio_blk.ko\n"));
  imaging_rm_rf (dir);
}

/* A faithful fake module tree (files as depmod writes them) for what the
 * installed kernel does not show: aliases, built-in modules, soft
 * dependencies, compressed modules. */
static char *
fake_tree (const char *kver, const char *dep, const char *builtin, const char *alias,
           const char *softdep)
{
  g_autofree char *root = imaging_tmpdir ();
  g_autofree char *kdir = g_build_filename (root, kver, NULL);
  const char *names[] = { "modules.dep", "modules.builtin", "modules.alias", "modules.softdep" };
  const char *texts[] = { dep, builtin, alias, softdep };

  g_assert_cmpint (g_mkdir_with_parents (kdir, 0755), ==, 0);
  for (guint i = 0; i < G_N_ELEMENTS (names); i++) {
    g_autofree char *p = g_build_filename (kdir, names[i], NULL);
    g_assert_true (g_file_set_contents (p, texts[i], -1, NULL));
  }
  return g_steal_pointer (&root);
}

static void
test_fake_tree_rules (void)
{
  g_autofree char *root
      = fake_tree ("9.9.9-fake",
                   "kernel/a/base.ko:\n"
                   "kernel/a/mid-dep.ko: kernel/a/base.ko\n"
                   "kernel/a/top.ko: kernel/a/mid-dep.ko kernel/a/base.ko\n"
                   "kernel/b/pre.ko:\n"
                   "kernel/b/post.ko:\n"
                   "kernel/b/soft.ko:\n"
                   "kernel/c/packed.ko.xz:\n",
                   "kernel/d/inside.ko\n", "alias pci:v00001AF4d* top\nalias fancy-* soft\n",
                   "# Soft dependencies extracted from modules themselves.\n"
                   "softdep soft pre: pre post: post\n");
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) got = NULL;
  g_autofree char *dest = g_build_filename (root, "initrd.img", NULL);
  const char *const mods[] = { "inside", "pci:v00001AF4d00001001", "fancy-thing", "mid_dep", NULL };
  const char *const packed[] = { "packed", NULL };
  const char *want[] = { "kernel/a/base.ko", "kernel/a/mid-dep.ko", "kernel/a/top.ko",
                         "kernel/b/pre.ko",  "kernel/b/soft.ko",    "kernel/b/post.ko" };

  got = banger_kmod_resolve_order (root, "9.9.9-fake", mods, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (got->len, ==, G_N_ELEMENTS (want));
  for (guint i = 0; i < G_N_ELEMENTS (want); i++)
    g_assert_cmpstr (got->pdata[i], ==, want[i]);

  g_assert_false (
      banger_initramfs_write (root, "9.9.9-fake", packed, "/proc/self/exe", dest, &error));
  g_assert_error (error, BANGER_ERROR, BANGER_ERROR_UNSUPPORTED);
  g_assert_nonnull (strstr (error->message, "packed.ko.xz"));
  g_assert_false (g_file_test (dest, G_FILE_TEST_EXISTS));
  imaging_rm_rf (root);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/imaging/kmod/order-matches-modprobe", test_order_matches_modprobe);
  g_test_add_func ("/imaging/kmod/missing-module", test_missing_module);
  g_test_add_func ("/imaging/kmod/fake-tree-rules", test_fake_tree_rules);
  g_test_add_func ("/imaging/initramfs/contents", test_contents);
  return g_test_run ();
}
