/* The initramfs for distribution kernels. The newc cpio format is written by
 * hand: it is a 110-byte ASCII header, the name and the data, each padded to
 * 4 bytes, and a trailer — fewer lines than driving libarchive's writer
 * through its callbacks, and every field (inode numbers, times, owners) is
 * ours to fix, so the same inputs give the same bytes. */

#include "config.h"

#include "initramfs.h"

#include <string.h>
#include <sys/stat.h>

#include "banger-error.h"

typedef struct {
  GOutputStream *out; /* gzip converter over a memory stream */
  guint32 next_ino;
} CpioWriter;

static gboolean
cpio_entry (CpioWriter *w, const char *name, guint32 mode, guint32 rdev_major, guint32 rdev_minor,
            const void *data, gsize size, GError **error)
{
  static const char zeros[4] = { 0 };
  gsize name_size = strlen (name) + 1;
  g_autofree char *header = NULL;
  gsize head_pad, data_pad;

  /* magic ino mode uid gid nlink mtime filesize devmajor devminor
   * rdevmajor rdevminor namesize check */
  header = g_strdup_printf ("070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
                            w->next_ino++, mode, 0u, 0u, S_ISDIR (mode) ? 2u : 1u, 0u,
                            (guint32)size, 0u, 0u, rdev_major, rdev_minor, (guint32)name_size, 0u);
  head_pad = (4 - (110 + name_size) % 4) % 4;
  data_pad = (4 - size % 4) % 4;
  if (!g_output_stream_write_all (w->out, header, 110, NULL, NULL, error)
      || !g_output_stream_write_all (w->out, name, name_size, NULL, NULL, error)
      || !g_output_stream_write_all (w->out, zeros, head_pad, NULL, NULL, error)
      || (size > 0 && !g_output_stream_write_all (w->out, data, size, NULL, NULL, error))
      || !g_output_stream_write_all (w->out, zeros, data_pad, NULL, NULL, error))
    return FALSE;
  return TRUE;
}

static gboolean
cpio_dir (CpioWriter *w, const char *name, GError **error)
{
  return cpio_entry (w, name, S_IFDIR | 0755, 0, 0, NULL, 0, error);
}

static gboolean
cpio_file (CpioWriter *w, const char *name, guint32 perms, const char *host_path, GError **error)
{
  g_autofree char *contents = NULL;
  gsize size = 0;

  if (!g_file_get_contents (host_path, &contents, &size, error))
    return FALSE;
  if (size > G_MAXUINT32) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
                 "“%s” is too big for a cpio archive", host_path);
    return FALSE;
  }
  return cpio_entry (w, name, S_IFREG | perms, 0, 0, contents, size, error);
}

static gint
compare_strings (gconstpointer a, gconstpointer b)
{
  return strcmp (*(const char *const *)a, *(const char *const *)b);
}

gboolean
banger_initramfs_write (const char *modules_root, const char *kver, const char *const *modules,
                        const char *init_binary, const char *dest, GError **error)
{
  g_autoptr (GPtrArray) order = NULL;
  g_autoptr (GHashTable) dir_set = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_autoptr (GPtrArray) dirs = NULL;
  g_autoptr (GString) list = g_string_new (NULL);
  g_autoptr (GOutputStream) memory = NULL;
  g_autoptr (GZlibCompressor) gzip = NULL;
  g_autoptr (GOutputStream) out = NULL;
  g_autofree char *kdir = g_build_filename (modules_root, kver, NULL);
  g_autofree char *kdir_in_archive = g_build_filename ("lib/modules", kver, NULL);
  const char *const fixed_dirs[] = { "dev", "proc", "sys", "root", "etc", "etc/banger", NULL };
  CpioWriter w = { NULL, 1 };

  if (kver[0] == '\0' || strchr (kver, '/') != NULL || g_str_equal (kver, "..")
      || g_str_equal (kver, ".")) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT, "“%s” is not a kernel release",
                 kver);
    return FALSE;
  }
  if (!g_file_test (init_binary, G_FILE_TEST_IS_REGULAR)) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_NOT_FOUND, "init binary “%s” not found",
                 init_binary);
    return FALSE;
  }

  order = banger_kmod_resolve_order (modules_root, kver, modules, error);
  if (order == NULL)
    return FALSE;

  /* Every directory a member sits in gets its own entry before it: the
   * kernel's unpacker creates nothing that the archive does not list. */
  for (guint i = 0; fixed_dirs[i] != NULL; i++)
    g_hash_table_add (dir_set, g_strdup (fixed_dirs[i]));
  for (guint i = 0; i < order->len; i++) {
    const char *rel = g_ptr_array_index (order, i);
    g_autofree char *member = g_build_filename (kdir_in_archive, rel, NULL);
    g_autofree char *parent = g_path_get_dirname (member);

    if (g_str_has_suffix (rel, ".ko.xz") || g_str_has_suffix (rel, ".ko.zst")
        || g_str_has_suffix (rel, ".ko.gz") || !g_str_has_suffix (rel, ".ko")) {
      g_set_error (error, BANGER_ERROR, BANGER_ERROR_UNSUPPORTED,
                   "kernel module “%s” of kernel %s is compressed or not a .ko file; "
                   "the initramfs needs plain .ko modules",
                   rel, kver);
      return FALSE;
    }
    if (strstr (rel, "..") != NULL || rel[0] == '/') {
      g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
                   "modules.dep of kernel %s names “%s”, outside its module tree", kver, rel);
      return FALSE;
    }
    while (!g_str_equal (parent, ".") && !g_hash_table_contains (dir_set, parent)) {
      char *up = g_path_get_dirname (parent);
      g_hash_table_add (dir_set, g_steal_pointer (&parent));
      parent = up;
    }
    g_string_append_printf (list, "%s\n", rel);
  }
  g_hash_table_add (dir_set, g_strdup ("lib"));
  g_hash_table_add (dir_set, g_strdup ("lib/modules"));
  g_hash_table_add (dir_set, g_strdup (kdir_in_archive));
  dirs = g_ptr_array_new ();
  {
    GHashTableIter iter;
    gpointer key;

    g_hash_table_iter_init (&iter, dir_set);
    while (g_hash_table_iter_next (&iter, &key, NULL))
      g_ptr_array_add (dirs, key);
  }
  /* Sorted, a parent comes before its children. */
  g_ptr_array_sort (dirs, compare_strings);

  memory = g_memory_output_stream_new_resizable ();
  gzip = g_zlib_compressor_new (G_ZLIB_COMPRESSOR_FORMAT_GZIP, 9);
  out = g_converter_output_stream_new (memory, G_CONVERTER (gzip));
  w.out = out;

  for (guint i = 0; i < dirs->len; i++) {
    if (!cpio_dir (&w, g_ptr_array_index (dirs, i), error))
      return FALSE;
  }
  if (!cpio_entry (&w, "dev/console", S_IFCHR | 0600, 5, 1, NULL, 0, error))
    return FALSE;
  if (!cpio_file (&w, "init", 0755, init_binary, error))
    return FALSE;
  if (!cpio_entry (&w, "etc/banger/modules", S_IFREG | 0644, 0, 0, list->str, list->len, error))
    return FALSE;
  for (guint i = 0; i < order->len; i++) {
    const char *rel = g_ptr_array_index (order, i);
    g_autofree char *host = g_build_filename (kdir, rel, NULL);
    g_autofree char *member = g_build_filename (kdir_in_archive, rel, NULL);

    if (!cpio_file (&w, member, 0644, host, error))
      return FALSE;
  }
  if (!cpio_entry (&w, "TRAILER!!!", 0, 0, 0, NULL, 0, error))
    return FALSE;
  if (!g_output_stream_close (out, NULL, error))
    return FALSE;

  /* Written whole to a temporary file and renamed: never half an archive
   * at @dest. */
  return g_file_set_contents_full (
      dest, g_memory_output_stream_get_data (G_MEMORY_OUTPUT_STREAM (memory)),
      g_memory_output_stream_get_data_size (G_MEMORY_OUTPUT_STREAM (memory)),
      G_FILE_SET_CONTENTS_CONSISTENT, 0644, error);
}
