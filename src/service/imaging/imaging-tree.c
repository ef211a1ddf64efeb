/* Host directory trees into an ext4 image (debootstrap output, the busybox
 * recipe), and the size such an image needs. */

#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "banger-error.h"
#include "ext4-sizing.h"
#include "ext4-writer.h"

static gboolean
set_errno_error (GError **error, int saved, const char *what, const char *path)
{
  g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved), "%s “%s”: %s", what, path,
               g_strerror (saved));
  return FALSE;
}

static void
attrs_from_stat (const struct stat *st, BangerExt4Attrs *attrs)
{
  attrs->uid = st->st_uid;
  attrs->gid = st->st_gid;
  attrs->mode = st->st_mode & 07777;
  attrs->mtime = st->st_mtime;
}

static gint
compare_names (gconstpointer a, gconstpointer b)
{
  return strcmp (*(const char *const *)a, *(const char *const *)b);
}

/* Sorted names, so that the same tree always gives the same image layout. */
static GPtrArray *
list_dir (const char *host_path, GError **error)
{
  g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  DIR *dir = opendir (host_path);
  struct dirent *de;

  if (dir == NULL) {
    set_errno_error (error, errno, "opening directory", host_path);
    return NULL;
  }
  errno = 0;
  while ((de = readdir (dir)) != NULL) {
    if (g_str_equal (de->d_name, ".") || g_str_equal (de->d_name, ".."))
      continue;
    g_ptr_array_add (names, g_strdup (de->d_name));
  }
  if (errno != 0) {
    int saved = errno;
    closedir (dir);
    set_errno_error (error, saved, "reading directory", host_path);
    return NULL;
  }
  closedir (dir);
  g_ptr_array_sort (names, compare_names);
  return g_steal_pointer (&names);
}

static gboolean
copy_xattrs (BangerExt4Writer *writer, const char *host_path, const char *image_path,
             GError **error)
{
  g_autofree char *list = NULL;
  ssize_t size = llistxattr (host_path, NULL, 0);

  if (size < 0 && (errno == ENOTSUP || errno == ENODATA))
    return TRUE;
  if (size < 0)
    return set_errno_error (error, errno, "listing attributes of", host_path);
  if (size == 0)
    return TRUE;
  list = g_malloc (size);
  size = llistxattr (host_path, list, size);
  if (size < 0)
    return set_errno_error (error, errno, "listing attributes of", host_path);

  for (ssize_t i = 0; i < size; i += strlen (list + i) + 1) {
    const char *name = list + i;
    g_autofree char *value = NULL;
    ssize_t len;

    /* The host's overlayfs bookkeeping is not part of the tree. */
    if (g_str_has_prefix (name, "trusted.overlay."))
      continue;
    len = lgetxattr (host_path, name, NULL, 0);
    if (len < 0)
      return set_errno_error (error, errno, "reading attributes of", host_path);
    value = g_malloc (len + 1);
    len = lgetxattr (host_path, name, value, len);
    if (len < 0)
      return set_errno_error (error, errno, "reading attributes of", host_path);
    if (!banger_ext4_writer_set_xattr (writer, image_path, name, value, len, error))
      return FALSE;
  }
  return TRUE;
}

static gboolean copy_dir (BangerExt4Writer *writer, const char *host_path, const char *image_path,
                          GHashTable *links, GError **error);

static gboolean
copy_entry (BangerExt4Writer *writer, const char *host_path, const char *image_path,
            GHashTable *links, GError **error)
{
  struct stat st;
  BangerExt4Attrs attrs;

  if (lstat (host_path, &st) < 0)
    return set_errno_error (error, errno, "reading", host_path);
  attrs_from_stat (&st, &attrs);

  if (S_ISDIR (st.st_mode)) {
    if (!banger_ext4_writer_mkdir (writer, image_path, &attrs, error))
      return FALSE;
    if (!copy_xattrs (writer, host_path, image_path, error))
      return FALSE;
    if (!copy_dir (writer, host_path, image_path, links, error))
      return FALSE;
    /* Again: creating children does not touch it, but be exact. */
    return banger_ext4_writer_mkdir (writer, image_path, &attrs, error);
  }

  /* The second and later names of a multiply-linked inode become hard
   * links to the first name copied. */
  if (st.st_nlink > 1) {
    g_autofree char *key = g_strdup_printf ("%ju:%ju", (uintmax_t)st.st_dev, (uintmax_t)st.st_ino);
    const char *first = g_hash_table_lookup (links, key);

    if (first != NULL)
      return banger_ext4_writer_hardlink (writer, image_path, first, error);
    g_hash_table_insert (links, g_steal_pointer (&key), g_strdup (image_path));
  }

  if (S_ISREG (st.st_mode)) {
    int fd = open (host_path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
    gboolean ok;

    if (fd < 0)
      return set_errno_error (error, errno, "opening", host_path);
    ok = banger_ext4_writer_add_file_fd (writer, image_path, &attrs, fd, st.st_size, error);
    close (fd);
    if (!ok)
      return FALSE;
  } else if (S_ISLNK (st.st_mode)) {
    g_autofree char *target = g_file_read_link (host_path, error);
    if (target == NULL)
      return FALSE;
    if (!banger_ext4_writer_symlink (writer, image_path, &attrs, target, error))
      return FALSE;
  } else {
    if (!banger_ext4_writer_mknod (writer, image_path, &attrs, st.st_mode & S_IFMT, st.st_rdev,
                                   error))
      return FALSE;
  }
  return copy_xattrs (writer, host_path, image_path, error);
}

static gboolean
copy_dir (BangerExt4Writer *writer, const char *host_path, const char *image_path,
          GHashTable *links, GError **error)
{
  g_autoptr (GPtrArray) names = list_dir (host_path, error);

  if (names == NULL)
    return FALSE;
  for (guint i = 0; i < names->len; i++) {
    const char *name = g_ptr_array_index (names, i);
    g_autofree char *host_child = g_build_filename (host_path, name, NULL);
    g_autofree char *image_child = g_build_path ("/", image_path, name, NULL);

    if (!copy_entry (writer, host_child, image_child, links, error))
      return FALSE;
  }
  return TRUE;
}

gboolean
banger_ext4_writer_add_tree (BangerExt4Writer *self, const char *host_dir, const char *image_dir,
                             GError **error)
{
  g_autoptr (GHashTable) links = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  struct stat st;

  if (stat (host_dir, &st) < 0)
    return set_errno_error (error, errno, "reading", host_dir);
  if (!S_ISDIR (st.st_mode)) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT, "“%s” is not a directory",
                 host_dir);
    return FALSE;
  }
  /* The top is followed if it is a symlink (it names the tree), nothing
   * under it is. */
  return copy_entry (self, host_dir, image_dir, links, error);
}

/* ------------------------------------------------------------------ size */

typedef struct {
  guint64 data_bytes;
  guint64 inodes;
  GHashTable *seen;
} TreeUsage;

#define BLOCK 4096ULL

static guint64
round_block (guint64 n)
{
  return (n + BLOCK - 1) / BLOCK * BLOCK;
}

static gboolean
measure_dir (const char *host_path, TreeUsage *usage, GError **error)
{
  g_autoptr (GPtrArray) names = list_dir (host_path, error);
  guint64 dirent_bytes = 24; /* "." and ".." */

  if (names == NULL)
    return FALSE;
  for (guint i = 0; i < names->len; i++) {
    const char *name = g_ptr_array_index (names, i);
    g_autofree char *child = g_build_filename (host_path, name, NULL);
    struct stat st;

    if (lstat (child, &st) < 0)
      return set_errno_error (error, errno, "reading", child);
    dirent_bytes += 8 + ((strlen (name) + 3) & ~3u);
    if (!S_ISDIR (st.st_mode) && st.st_nlink > 1) {
      g_autofree char *key
          = g_strdup_printf ("%ju:%ju", (uintmax_t)st.st_dev, (uintmax_t)st.st_ino);
      if (!g_hash_table_add (usage->seen, g_steal_pointer (&key)))
        continue;
    }
    usage->inodes++;
    if (S_ISREG (st.st_mode)) {
      usage->data_bytes += round_block (st.st_size);
      /* Beyond 4 extents (in the inode) a file needs an extent block. */
      if (st.st_size > 16 * 1024 * 1024)
        usage->data_bytes += BLOCK;
    } else if (S_ISLNK (st.st_mode) && st.st_size >= 60) {
      usage->data_bytes += BLOCK;
    } else if (S_ISDIR (st.st_mode)) {
      if (!measure_dir (child, usage, error))
        return FALSE;
    }
  }
  usage->data_bytes += round_block (dirent_bytes);
  return TRUE;
}

guint64
banger_ext4_journal_bytes (guint64 fs_bytes)
{
  guint64 blocks = fs_bytes / BLOCK;

  if (blocks < 32768)
    return 1024 * BLOCK;
  if (blocks < 256 * 1024)
    return 4096 * BLOCK;
  if (blocks < 512 * 1024)
    return 8192 * BLOCK;
  if (blocks < 4096 * 1024)
    return 16384 * BLOCK;
  if (blocks < 8192 * 1024)
    return 32768 * BLOCK;
  if (blocks < 16384 * 1024)
    return 65536 * BLOCK;
  if (blocks < 32768 * 1024)
    return 131072 * BLOCK;
  return 262144 * BLOCK;
}

guint64
banger_ext4_size_estimate (guint64 data_bytes, guint64 inodes, guint64 min_bytes)
{
  guint64 fixed = inodes * 256 + 8 * 1024 * 1024;
  guint64 size;

  /* The journal's size depends on the total: two rounds. */
  size = (data_bytes + fixed) * 100 / 95;
  size = (data_bytes + fixed + banger_ext4_journal_bytes (size)) * 100 / 95;
  size = (data_bytes + fixed + banger_ext4_journal_bytes (size)) * 100 / 95;
  size = (size + 1024 * 1024 - 1) / (1024 * 1024) * (1024 * 1024);
  return MAX (size, min_bytes);
}

gboolean
banger_ext4_size_for_tree (const char *host_dir, guint headroom_percent, guint64 *size_out,
                           guint64 *inodes_out, GError **error)
{
  g_autoptr (GHashTable) seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  TreeUsage usage = { 0, 1, seen };
  guint64 data, inodes, size;

  if (!measure_dir (host_dir, &usage, error))
    return FALSE;
  data = usage.data_bytes * (100 + headroom_percent) / 100;
  inodes = usage.inodes * (100 + headroom_percent) / 100 + 1024;
  size = banger_ext4_size_estimate (data, inodes, 32ULL * 1024 * 1024);
  if (inodes < size / 16384)
    inodes = size / 16384;
  *size_out = size;
  if (inodes_out != NULL)
    *inodes_out = inodes;
  return TRUE;
}
