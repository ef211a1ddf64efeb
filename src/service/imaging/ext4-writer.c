/* BangerExt4Writer: an ext4 file system written with libext2fs from a tree
 * of entries (ext4-writer.h).
 *
 * One file (~1300 lines) on purpose: every operation (files, directories,
 * links, device nodes, xattrs, hard links, whiteouts) works on the same open
 * libext2fs handle and the same inode bookkeeping, and the image is renamed
 * into place only once all of them succeeded. */
#include "config.h"

#include "ext4-writer.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "banger-error.h"
#include "ext2fs-api.h"

#define BLOCK_SIZE_LOG   2 /* 1024 << 2 = 4096 */
#define BLOCK_SIZE       4096
#define INODE_SIZE       256
#define BYTES_PER_INODE  16384
#define MIN_IMAGE_BYTES  (16 * 1024 * 1024)
#define COPY_BUFLEN      (1024 * 1024) /* a multiple of the block size */
#define MAX_LINK_FOLLOWS 40
#define LOST_FOUND_BYTES 16384

struct _BangerExt4Writer {
  ext2_filsys fs;
  char *dest;
  char *tmp_path;
  BangerExt4Attrs parent_attrs;
  gboolean finished;
};

/* ------------------------------------------------------------------ errors */

/* libext2fs reports com_err codes. Their text lives in libcom_err, which the
 * ext2fs pkg-config file only names as a private dependency, so we do not
 * link it; the codes a user can actually meet get words here, the rest their
 * number. */
static const char *
ext2_error_text (errcode_t err)
{
  switch (err) {
  case EXT2_ET_BLOCK_ALLOC_FAIL:
    return "no free blocks left in the image";
  case EXT2_ET_INODE_ALLOC_FAIL:
    return "no free inodes left in the image";
  case EXT2_ET_DIR_NO_SPACE:
    return "no space in directory";
  case EXT2_ET_EA_NO_SPACE:
    return "no space for the extended attribute";
  case EXT2_ET_EA_KEY_NOT_FOUND:
    return "extended attribute not found";
  case EXT2_ET_FILE_TOO_BIG:
    return "file too big";
  case EXT2_ET_TOOSMALL:
    return "file system too small";
  case EXT2_ET_FILE_NOT_FOUND:
    return "no such file or directory";
  case EXT2_ET_DIR_EXISTS:
  case EXT2_ET_FILE_EXISTS:
    return "already exists";
  case EXT2_ET_NO_DIRECTORY:
    return "not a directory";
  case EXT2_ET_INVALID_ARGUMENT:
    return "invalid argument";
  case EXT2_ET_SHORT_READ:
    return "short read";
  case EXT2_ET_SHORT_WRITE:
    return "short write";
  default:
    if (err > 0 && err < 4096)
      return g_strerror ((int)err);
    return NULL;
  }
}

G_GNUC_PRINTF (3, 4)
static gboolean
set_ext2_error (GError **error, errcode_t err, const char *format, ...)
{
  va_list args;
  g_autofree char *what = NULL;
  const char *text = ext2_error_text (err);

  va_start (args, format);
  what = g_strdup_vprintf (format, args);
  va_end (args);
  if (text != NULL)
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "%s: %s", what, text);
  else
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "%s: libext2fs error %ld", what,
                 (long)err);
  return FALSE;
}

static gboolean
set_escape_error (GError **error, const char *path)
{
  g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
               "path “%s” escapes the image root", path);
  return FALSE;
}

/* ------------------------------------------------------------- inode bits */

static int
ext2_file_type (guint32 lmode)
{
  switch (lmode & LINUX_S_IFMT) {
  case LINUX_S_IFREG:
    return EXT2_FT_REG_FILE;
  case LINUX_S_IFDIR:
    return EXT2_FT_DIR;
  case LINUX_S_IFCHR:
    return EXT2_FT_CHRDEV;
  case LINUX_S_IFBLK:
    return EXT2_FT_BLKDEV;
  case LINUX_S_IFLNK:
    return EXT2_FT_SYMLINK;
  case LINUX_S_IFIFO:
    return EXT2_FT_FIFO;
  case LINUX_S_IFSOCK:
    return EXT2_FT_SOCK;
  default:
    return EXT2_FT_UNKNOWN;
  }
}

static guint32
clamp_time (gint64 t)
{
  /* The 32-bit fields; the extra epoch bits of large inodes are not used. */
  if (t < 0)
    return 0;
  if (t > G_MAXUINT32)
    return G_MAXUINT32;
  return (guint32)t;
}

static void
inode_set_attrs (struct ext2_inode *inode, const BangerExt4Attrs *attrs)
{
  guint32 t = clamp_time (attrs->mtime);

  inode->i_mode = (inode->i_mode & LINUX_S_IFMT) | (attrs->mode & 07777);
  inode->i_uid = attrs->uid & 0xffff;
  inode->i_uid_high = attrs->uid >> 16;
  inode->i_gid = attrs->gid & 0xffff;
  inode->i_gid_high = attrs->gid >> 16;
  inode->i_atime = inode->i_mtime = inode->i_ctime = t;
}

/* Device numbers as the kernel's ext4 stores them (old 8:8 encoding when it
 * fits, the new 12:20 one in i_block[1] otherwise). */
static void
inode_set_rdev (struct ext2_inode *inode, dev_t rdev)
{
  unsigned int ma = major (rdev), mi = minor (rdev);

  if (ma < 256 && mi < 256) {
    inode->i_block[0] = ma * 256 + mi;
    inode->i_block[1] = 0;
  } else {
    inode->i_block[0] = 0;
    inode->i_block[1] = (mi & 0xff) | (ma << 8) | ((mi & ~0xffu) << 12);
  }
}

static dev_t
inode_get_rdev (const struct ext2_inode *inode)
{
  if (inode->i_block[0] != 0)
    return makedev ((inode->i_block[0] >> 8) & 0xff, inode->i_block[0] & 0xff);
  return makedev ((inode->i_block[1] & 0xfff00) >> 8,
                  (inode->i_block[1] & 0xff) | ((inode->i_block[1] >> 12) & 0xfff00));
}

static gboolean
read_inode (BangerExt4Writer *self, ext2_ino_t ino, struct ext2_inode *inode, const char *path,
            GError **error)
{
  errcode_t err = ext2fs_read_inode (self->fs, ino, inode);
  if (err != 0)
    return set_ext2_error (error, err, "reading inode %u of “%s”", ino, path);
  return TRUE;
}

static gboolean
write_inode (BangerExt4Writer *self, ext2_ino_t ino, struct ext2_inode *inode, const char *path,
             GError **error)
{
  errcode_t err = ext2fs_write_inode (self->fs, ino, inode);
  if (err != 0)
    return set_ext2_error (error, err, "writing inode %u of “%s”", ino, path);
  return TRUE;
}

static gboolean
read_symlink (BangerExt4Writer *self, ext2_ino_t ino, struct ext2_inode *inode, const char *path,
              char **target_out, GError **error)
{
  guint64 size = EXT2_I_SIZE (inode);
  g_autofree char *buf = NULL;
  ext2_file_t file = NULL;
  unsigned int got = 0;
  errcode_t err;

  if (size >= BLOCK_SIZE)
    return set_ext2_error (error, EXT2_ET_INVALID_ARGUMENT, "symlink “%s”", path);
  buf = g_malloc0 (size + 1);
  if (ext2fs_is_fast_symlink (inode)) {
    memcpy (buf, inode->i_block, size);
  } else {
    err = ext2fs_file_open2 (self->fs, ino, inode, 0, &file);
    if (err == 0)
      err = ext2fs_file_read (file, buf, size, &got);
    if (file != NULL)
      ext2fs_file_close (file);
    if (err == 0 && got != size)
      err = EXT2_ET_SHORT_READ;
    if (err != 0)
      return set_ext2_error (error, err, "reading symlink “%s”", path);
  }
  *target_out = g_steal_pointer (&buf);
  return TRUE;
}

/* ------------------------------------------------------ path resolution */

static GPtrArray *
split_path (const char *path)
{
  g_auto (GStrv) parts = g_strsplit (path, "/", -1);
  GPtrArray *out = g_ptr_array_new_with_free_func (g_free);

  for (guint i = 0; parts[i] != NULL; i++) {
    if (parts[i][0] == '\0' || g_str_equal (parts[i], "."))
      continue;
    g_ptr_array_add (out, g_strdup (parts[i]));
  }
  return out;
}

static ext2_ino_t
stack_top (GArray *stack)
{
  return g_array_index (stack, ext2_ino_t, stack->len - 1);
}

static gboolean link_into (BangerExt4Writer *self, ext2_ino_t parent, const char *name,
                           ext2_ino_t ino, int filetype, const char *path, GError **error);

static gboolean
make_directory (BangerExt4Writer *self, ext2_ino_t parent, const char *name,
                const BangerExt4Attrs *attrs, const char *path, ext2_ino_t *ino_out, GError **error)
{
  struct ext2_inode inode;
  ext2_ino_t ino = 0;
  errcode_t err;

  err = ext2fs_new_inode (self->fs, parent, LINUX_S_IFDIR | 0755, NULL, &ino);
  if (err != 0)
    return set_ext2_error (error, err, "creating directory “%s”", path);
  /* No name: ext2fs_mkdir then builds and accounts the directory (and the
   * parent's link count) but leaves linking to link_into(), which grows the
   * parent when it is full. */
  err = ext2fs_mkdir (self->fs, parent, ino, NULL);
  if (err != 0)
    return set_ext2_error (error, err, "creating directory “%s”", path);
  if (!link_into (self, parent, name, ino, EXT2_FT_DIR, path, error))
    return FALSE;
  if (!read_inode (self, ino, &inode, path, error))
    return FALSE;
  inode_set_attrs (&inode, attrs);
  if (!write_inode (self, ino, &inode, path, error))
    return FALSE;
  *ino_out = ino;
  return TRUE;
}

/* Takes one step of a path walk from the directory on top of @stack.
 * ".." pops (never above the root), a directory is pushed, and a symlink is
 * followed only when it is relative: its components are walked from the
 * directory holding it, so ".." in it is held to the root too. A symlink
 * with an absolute target is refused as a parent: followed naively it names
 * a host path, and that is the shape of the tar attacks this guards against
 * (a layer builder records real paths, never writes through such links). */
static gboolean
walk_step (BangerExt4Writer *self, GArray *stack, const char *comp, gboolean create,
           const char *path, guint *follows, GError **error)
{
  ext2_ino_t dir = stack_top (stack);
  ext2_ino_t ino = 0;
  struct ext2_inode inode;
  errcode_t err;

  if (g_str_equal (comp, "..")) {
    if (stack->len == 1)
      return set_escape_error (error, path);
    g_array_set_size (stack, stack->len - 1);
    return TRUE;
  }
  if (strlen (comp) > EXT2_NAME_LEN) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
                 "path “%s”: name “%s” is too long", path, comp);
    return FALSE;
  }

  err = ext2fs_lookup (self->fs, dir, comp, strlen (comp), NULL, &ino);
  if (err == EXT2_ET_FILE_NOT_FOUND) {
    if (!create) {
      g_set_error (error, BANGER_ERROR, BANGER_ERROR_NOT_FOUND,
                   "path “%s”: “%s” does not exist in the image", path, comp);
      return FALSE;
    }
    if (!make_directory (self, dir, comp, &self->parent_attrs, path, &ino, error))
      return FALSE;
    g_array_append_val (stack, ino);
    return TRUE;
  }
  if (err != 0)
    return set_ext2_error (error, err, "looking up “%s” in “%s”", comp, path);
  if (!read_inode (self, ino, &inode, path, error))
    return FALSE;

  if (LINUX_S_ISDIR (inode.i_mode)) {
    g_array_append_val (stack, ino);
    return TRUE;
  }
  if (LINUX_S_ISLNK (inode.i_mode)) {
    g_autofree char *target = NULL;
    g_autoptr (GPtrArray) parts = NULL;

    if (++*follows > MAX_LINK_FOLLOWS) {
      g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
                   "path “%s”: too many levels of symbolic links", path);
      return FALSE;
    }
    if (!read_symlink (self, ino, &inode, path, &target, error))
      return FALSE;
    if (target[0] == '/') {
      g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
                   "path “%s” escapes the image root: “%s” is a symlink to the absolute path “%s”",
                   path, comp, target);
      return FALSE;
    }
    parts = split_path (target);
    for (guint i = 0; i < parts->len; i++) {
      if (!walk_step (self, stack, g_ptr_array_index (parts, i), FALSE, path, follows, error))
        return FALSE;
    }
    return TRUE;
  }
  g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
               "path “%s”: “%s” is not a directory", path, comp);
  return FALSE;
}

/* Resolves the directory that holds @path's last component. *leaf_out is
 * NULL for the root itself. */
static gboolean
resolve_parent (BangerExt4Writer *self, const char *path, gboolean create, ext2_ino_t *parent_out,
                char **leaf_out, GError **error)
{
  g_autoptr (GPtrArray) parts = split_path (path);
  g_autoptr (GArray) stack = g_array_new (FALSE, FALSE, sizeof (ext2_ino_t));
  ext2_ino_t root = EXT2_ROOT_INO;
  const char *leaf;
  guint follows = 0;

  if (parts->len == 0) {
    *parent_out = EXT2_ROOT_INO;
    *leaf_out = NULL;
    return TRUE;
  }
  leaf = g_ptr_array_index (parts, parts->len - 1);
  if (g_str_equal (leaf, "..")) {
    /* "a/.." as the name of a new entry: either the root's parent or a
     * directory the path already named; neither is a name to create. */
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT, "path “%s” ends in “..”",
                 path);
    return FALSE;
  }
  if (strlen (leaf) > EXT2_NAME_LEN) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
                 "path “%s”: name “%s” is too long", path, leaf);
    return FALSE;
  }
  g_array_append_val (stack, root);
  for (guint i = 0; i + 1 < parts->len; i++) {
    if (!walk_step (self, stack, g_ptr_array_index (parts, i), create, path, &follows, error))
      return FALSE;
  }
  *parent_out = stack_top (stack);
  *leaf_out = g_strdup (leaf);
  return TRUE;
}

/* 0 if absent. */
static gboolean
lookup_leaf (BangerExt4Writer *self, ext2_ino_t parent, const char *leaf, const char *path,
             ext2_ino_t *ino_out, GError **error)
{
  errcode_t err;

  *ino_out = 0;
  if (leaf == NULL) {
    *ino_out = EXT2_ROOT_INO;
    return TRUE;
  }
  err = ext2fs_lookup (self->fs, parent, leaf, strlen (leaf), NULL, ino_out);
  if (err == EXT2_ET_FILE_NOT_FOUND) {
    *ino_out = 0;
    return TRUE;
  }
  if (err != 0)
    return set_ext2_error (error, err, "looking up “%s”", path);
  return TRUE;
}

/* ----------------------------------------------------- linking, removing */

static gboolean
link_into (BangerExt4Writer *self, ext2_ino_t parent, const char *name, ext2_ino_t ino,
           int filetype, const char *path, GError **error)
{
  errcode_t err = ext2fs_link (self->fs, parent, name, ino, filetype);

  if (err == EXT2_ET_DIR_NO_SPACE) {
    err = ext2fs_expand_dir (self->fs, parent);
    if (err == 0)
      err = ext2fs_link (self->fs, parent, name, ino, filetype);
  }
  if (err != 0)
    return set_ext2_error (error, err, "linking “%s”", path);
  return TRUE;
}

/* Gives an unlinked inode's blocks, extended attribute block and number
 * back, as the kernel does when the last link goes. */
static gboolean
release_inode (BangerExt4Writer *self, ext2_ino_t ino, struct ext2_inode *inode, const char *path,
               GError **error)
{
  blk64_t ea_blk;
  errcode_t err;

  if (ext2fs_inode_has_valid_blocks2 (self->fs, inode)) {
    err = ext2fs_punch (self->fs, ino, inode, NULL, 0, ~0ULL);
    if (err != 0)
      return set_ext2_error (error, err, "freeing the blocks of “%s”", path);
  }
  ea_blk = ext2fs_file_acl_block (self->fs, inode);
  if (ea_blk != 0) {
    __u32 count = 0;
    err = ext2fs_adjust_ea_refcount3 (self->fs, ea_blk, NULL, -1, &count, ino);
    if (err != 0)
      return set_ext2_error (error, err, "freeing the attributes of “%s”", path);
    if (count == 0)
      ext2fs_block_alloc_stats2 (self->fs, ea_blk, -1);
    ext2fs_file_acl_block_set (self->fs, inode, 0);
  }
  inode->i_links_count = 0;
  inode->i_dtime = self->fs->now ? self->fs->now : time (NULL);
  if (!write_inode (self, ino, inode, path, error))
    return FALSE;
  ext2fs_inode_alloc_stats2 (self->fs, ino, -1, LINUX_S_ISDIR (inode->i_mode));
  return TRUE;
}

typedef struct {
  char *name;
  ext2_ino_t ino;
} DirChild;

static void
dir_child_free (gpointer data)
{
  DirChild *child = data;
  g_free (child->name);
  g_free (child);
}

static int
collect_child (ext2_ino_t dir, int entry, struct ext2_dir_entry *dirent, int offset, int blocksize,
               char *buf, void *priv)
{
  GPtrArray *children = priv;
  DirChild *child;

  if (entry == DIRENT_DOT_FILE || entry == DIRENT_DOT_DOT_FILE || dirent->inode == 0)
    return 0;
  child = g_new0 (DirChild, 1);
  child->name = g_strndup (dirent->name, ext2fs_dirent_name_len (dirent));
  child->ino = dirent->inode;
  g_ptr_array_add (children, child);
  return 0;
}

static gboolean remove_entry (BangerExt4Writer *self, ext2_ino_t parent, const char *name,
                              ext2_ino_t ino, const char *path, GError **error);

static gboolean
remove_children (BangerExt4Writer *self, ext2_ino_t dir, const char *path, gboolean keep_lost_found,
                 GError **error)
{
  g_autoptr (GPtrArray) children = g_ptr_array_new_with_free_func (dir_child_free);
  errcode_t err;

  /* Collected first: the iteration must not see the directory change. */
  err = ext2fs_dir_iterate2 (self->fs, dir, 0, NULL, collect_child, children);
  if (err != 0)
    return set_ext2_error (error, err, "reading directory “%s”", path);
  for (guint i = 0; i < children->len; i++) {
    DirChild *child = g_ptr_array_index (children, i);
    g_autofree char *child_path = g_build_path ("/", path, child->name, NULL);

    if (keep_lost_found && g_str_equal (child->name, "lost+found"))
      continue;
    if (!remove_entry (self, dir, child->name, child->ino, child_path, error))
      return FALSE;
  }
  return TRUE;
}

static gboolean
remove_entry (BangerExt4Writer *self, ext2_ino_t parent, const char *name, ext2_ino_t ino,
              const char *path, GError **error)
{
  struct ext2_inode inode;
  errcode_t err;

  if (!read_inode (self, ino, &inode, path, error))
    return FALSE;
  if (LINUX_S_ISDIR (inode.i_mode)) {
    struct ext2_inode parent_inode;

    if (!remove_children (self, ino, path, FALSE, error))
      return FALSE;
    err = ext2fs_unlink (self->fs, parent, name, ino, 0);
    if (err != 0)
      return set_ext2_error (error, err, "unlinking “%s”", path);
    /* The child's ".." no longer points at the parent. With dir_nlink a
     * count of 1 means "too many to count" and stays. */
    if (!read_inode (self, parent, &parent_inode, path, error))
      return FALSE;
    if (parent_inode.i_links_count > 2) {
      parent_inode.i_links_count--;
      if (!write_inode (self, parent, &parent_inode, path, error))
        return FALSE;
    }
    if (!read_inode (self, ino, &inode, path, error))
      return FALSE;
    return release_inode (self, ino, &inode, path, error);
  }

  err = ext2fs_unlink (self->fs, parent, name, ino, 0);
  if (err != 0)
    return set_ext2_error (error, err, "unlinking “%s”", path);
  if (inode.i_links_count > 1) {
    inode.i_links_count--;
    return write_inode (self, ino, &inode, path, error);
  }
  return release_inode (self, ino, &inode, path, error);
}

/* Makes room for a new entry named @leaf in @parent: whatever is there goes,
 * unless it is a directory and @keep_dir (mkdir over a directory keeps its
 * contents, as a tar layer expects). *kept_out gets the kept directory. */
static gboolean
clear_leaf (BangerExt4Writer *self, ext2_ino_t parent, const char *leaf, const char *path,
            gboolean keep_dir, ext2_ino_t *kept_out, GError **error)
{
  ext2_ino_t ino = 0;
  struct ext2_inode inode;

  if (kept_out != NULL)
    *kept_out = 0;
  if (!lookup_leaf (self, parent, leaf, path, &ino, error))
    return FALSE;
  if (ino == 0)
    return TRUE;
  if (keep_dir) {
    if (!read_inode (self, ino, &inode, path, error))
      return FALSE;
    if (LINUX_S_ISDIR (inode.i_mode)) {
      *kept_out = ino;
      return TRUE;
    }
  }
  return remove_entry (self, parent, leaf, ino, path, error);
}

/* Resolves @path for a new non-directory entry: parents created, the old
 * entry removed. Refuses the root itself. */
static gboolean
prepare_new_entry (BangerExt4Writer *self, const char *path, ext2_ino_t *parent_out,
                   char **leaf_out, GError **error)
{
  g_autofree char *leaf = NULL;

  if (!resolve_parent (self, path, TRUE, parent_out, &leaf, error))
    return FALSE;
  if (leaf == NULL) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT, "path “%s” is the image root",
                 path);
    return FALSE;
  }
  if (!clear_leaf (self, *parent_out, leaf, path, FALSE, NULL, error))
    return FALSE;
  *leaf_out = g_steal_pointer (&leaf);
  return TRUE;
}

/* Allocates, writes and links a new inode of type @lmode. @setup fills in
 * what is particular to the type before the inode is first written. */
static gboolean
create_inode (BangerExt4Writer *self, ext2_ino_t parent, const char *leaf, const char *path,
              guint32 lmode, const BangerExt4Attrs *attrs, struct ext2_inode *inode,
              ext2_ino_t *ino_out, GError **error)
{
  ext2_ino_t ino = 0;
  errcode_t err;

  err = ext2fs_new_inode (self->fs, parent, lmode, NULL, &ino);
  if (err != 0)
    return set_ext2_error (error, err, "creating “%s”", path);
  inode->i_mode = lmode;
  inode_set_attrs (inode, attrs);
  inode->i_links_count = 1;
  err = ext2fs_write_new_inode (self->fs, ino, inode);
  if (err != 0)
    return set_ext2_error (error, err, "writing inode of “%s”", path);
  /* ext2fs_write_new_inode() puts the current time into zero time fields;
   * an mtime of 0 is what was asked for, so write it again. */
  if (clamp_time (attrs->mtime) == 0) {
    inode_set_attrs (inode, attrs);
    if (!write_inode (self, ino, inode, path, error))
      return FALSE;
  }
  ext2fs_inode_alloc_stats2 (self->fs, ino, +1, 0);
  if (!link_into (self, parent, leaf, ino, ext2_file_type (lmode), path, error)) {
    ext2fs_inode_alloc_stats2 (self->fs, ino, -1, 0);
    return FALSE;
  }
  *ino_out = ino;
  return TRUE;
}

/* ------------------------------------------------------------ file data */

typedef struct {
  GInputStream *stream;
  GCancellable *cancellable;
  int fd;
} DataSource;

static gboolean
source_read_all (DataSource *src, guint8 *buf, gsize want, gsize *got, const char *path,
                 GError **error)
{
  if (src->stream != NULL)
    return g_input_stream_read_all (src->stream, buf, want, got, src->cancellable, error);
  *got = 0;
  while (*got < want) {
    ssize_t n = read (src->fd, buf + *got, want - *got);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      int saved = errno;
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved), "reading data for “%s”: %s",
                   path, g_strerror (saved));
      return FALSE;
    }
    if (n == 0)
      break;
    *got += n;
  }
  return TRUE;
}

static gboolean
is_zero (const guint8 *buf, gsize len)
{
  return len == 0 || (buf[0] == 0 && memcmp (buf, buf + 1, len - 1) == 0);
}

static gboolean
write_file_data (BangerExt4Writer *self, ext2_ino_t ino, const char *path, DataSource *src,
                 guint64 size, GError **error)
{
  g_autofree guint8 *buf = NULL;
  ext2_file_t file = NULL;
  guint64 done = 0;
  guint bs = self->fs->blocksize;
  errcode_t err;
  gboolean ok = FALSE;

  err = ext2fs_file_open (self->fs, ino, EXT2_FILE_WRITE, &file);
  if (err != 0)
    return set_ext2_error (error, err, "opening “%s” for writing", path);
  buf = g_malloc (COPY_BUFLEN);
  while (done < size) {
    gsize want = (gsize)MIN ((guint64)COPY_BUFLEN, size - done);
    gsize got = 0;

    if (!source_read_all (src, buf, want, &got, path, error))
      goto out;
    if (got < want) {
      g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
                   "data for “%s” ended after %" G_GUINT64_FORMAT " of %" G_GUINT64_FORMAT " bytes",
                   path, done + got, size);
      goto out;
    }
    for (gsize off = 0; off < got; off += bs) {
      const guint8 *p = buf + off;
      gsize n = MIN (bs, got - off);

      /* An all-zero block stays a hole, as mke2fs -d does: images of
       * sparse files (and of files full of zeros) stay small. */
      if (is_zero (p, n))
        continue;
      err = ext2fs_file_llseek (file, done + off, EXT2_SEEK_SET, NULL);
      while (err == 0 && n > 0) {
        unsigned int written = 0;

        err = ext2fs_file_write (file, p, n, &written);
        if (err == 0 && written == 0)
          err = EXT2_ET_SHORT_WRITE;
        p += written;
        n -= written;
      }
      if (err != 0) {
        set_ext2_error (error, err, "writing “%s”", path);
        goto out;
      }
    }
    done += got;
  }
  ok = TRUE;
out:
  err = ext2fs_file_close (file);
  if (ok && err != 0)
    return set_ext2_error (error, err, "writing “%s”", path);
  return ok;
}

static gboolean
add_file (BangerExt4Writer *self, const char *path, const BangerExt4Attrs *attrs, DataSource *src,
          guint64 size, GError **error)
{
  g_autofree char *leaf = NULL;
  struct ext2_inode inode = { 0 };
  ext2_extent_handle_t handle = NULL;
  ext2_ino_t parent = 0, ino = 0;
  errcode_t err;

  if (!prepare_new_entry (self, path, &parent, &leaf, error))
    return FALSE;
  err = ext2fs_inode_size_set (self->fs, &inode, size);
  if (err != 0)
    return set_ext2_error (error, err, "“%s”", path);
  if (!create_inode (self, parent, leaf, path, LINUX_S_IFREG, attrs, &inode, &ino, error))
    return FALSE;
  /* An empty extent tree in i_block, as ext2fs_file_write() expects. */
  err = ext2fs_extent_open2 (self->fs, ino, &inode, &handle);
  if (err != 0)
    return set_ext2_error (error, err, "creating the extent tree of “%s”", path);
  ext2fs_extent_free (handle);
  if (!write_inode (self, ino, &inode, path, error))
    return FALSE;
  return write_file_data (self, ino, path, src, size, error);
}

/* ------------------------------------------------------------ public API */

void
banger_ext4_writer_set_parent_attrs (BangerExt4Writer *self, const BangerExt4Attrs *attrs)
{
  self->parent_attrs = *attrs;
}

gboolean
banger_ext4_writer_mkdir (BangerExt4Writer *self, const char *path, const BangerExt4Attrs *attrs,
                          GError **error)
{
  g_autofree char *leaf = NULL;
  ext2_ino_t parent = 0, ino = 0;
  struct ext2_inode inode;

  if (!resolve_parent (self, path, TRUE, &parent, &leaf, error))
    return FALSE;
  if (!clear_leaf (self, parent, leaf, path, TRUE, &ino, error))
    return FALSE;
  if (leaf == NULL)
    ino = EXT2_ROOT_INO;
  if (ino == 0)
    return make_directory (self, parent, leaf, attrs, path, &ino, error);
  if (!read_inode (self, ino, &inode, path, error))
    return FALSE;
  inode_set_attrs (&inode, attrs);
  return write_inode (self, ino, &inode, path, error);
}

gboolean
banger_ext4_writer_add_file_stream (BangerExt4Writer *self, const char *path,
                                    const BangerExt4Attrs *attrs, GInputStream *stream,
                                    guint64 size, GCancellable *cancellable, GError **error)
{
  DataSource src = { .stream = stream, .cancellable = cancellable, .fd = -1 };
  return add_file (self, path, attrs, &src, size, error);
}

gboolean
banger_ext4_writer_add_file_fd (BangerExt4Writer *self, const char *path,
                                const BangerExt4Attrs *attrs, int fd, guint64 size, GError **error)
{
  DataSource src = { .stream = NULL, .fd = fd };
  return add_file (self, path, attrs, &src, size, error);
}

gboolean
banger_ext4_writer_add_file_data (BangerExt4Writer *self, const char *path,
                                  const BangerExt4Attrs *attrs, const void *data, gsize size,
                                  GError **error)
{
  g_autoptr (GInputStream) stream = g_memory_input_stream_new_from_data (data, size, NULL);
  return banger_ext4_writer_add_file_stream (self, path, attrs, stream, size, NULL, error);
}

gboolean
banger_ext4_writer_symlink (BangerExt4Writer *self, const char *path, const BangerExt4Attrs *attrs,
                            const char *target, GError **error)
{
  g_autofree char *leaf = NULL;
  ext2_ino_t parent = 0, ino = 0;
  struct ext2_inode inode;
  errcode_t err;

  if (target[0] == '\0' || strlen (target) >= BLOCK_SIZE) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
                 "symlink “%s”: target must be 1 to %d bytes long", path, BLOCK_SIZE - 1);
    return FALSE;
  }
  if (!prepare_new_entry (self, path, &parent, &leaf, error))
    return FALSE;
  err = ext2fs_new_inode (self->fs, parent, LINUX_S_IFLNK | 0777, NULL, &ino);
  if (err != 0)
    return set_ext2_error (error, err, "creating symlink “%s”", path);
  /* No name: ext2fs_symlink() writes and accounts the inode (fast, in
   * i_block, below 60 bytes; otherwise one data block); link_into() links
   * it and grows a full directory. */
  err = ext2fs_symlink (self->fs, parent, ino, NULL, target);
  if (err != 0)
    return set_ext2_error (error, err, "creating symlink “%s”", path);
  if (!link_into (self, parent, leaf, ino, EXT2_FT_SYMLINK, path, error))
    return FALSE;
  if (!read_inode (self, ino, &inode, path, error))
    return FALSE;
  inode_set_attrs (&inode, attrs);
  return write_inode (self, ino, &inode, path, error);
}

static gboolean
resolve_existing (BangerExt4Writer *self, const char *path, ext2_ino_t *parent_out, char **leaf_out,
                  ext2_ino_t *ino_out, GError **error)
{
  g_autofree char *leaf = NULL;

  if (!resolve_parent (self, path, FALSE, parent_out, &leaf, error))
    return FALSE;
  if (!lookup_leaf (self, *parent_out, leaf, path, ino_out, error))
    return FALSE;
  if (*ino_out == 0) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_NOT_FOUND, "“%s” does not exist in the image",
                 path);
    return FALSE;
  }
  if (leaf_out != NULL)
    *leaf_out = g_steal_pointer (&leaf);
  return TRUE;
}

gboolean
banger_ext4_writer_hardlink (BangerExt4Writer *self, const char *path, const char *target,
                             GError **error)
{
  g_autofree char *leaf = NULL;
  ext2_ino_t parent = 0, target_parent = 0, target_ino = 0, existing = 0;
  struct ext2_inode inode;

  if (!resolve_existing (self, target, &target_parent, NULL, &target_ino, error)) {
    g_prefix_error (error, "hard link “%s”: ", path);
    return FALSE;
  }
  if (!read_inode (self, target_ino, &inode, target, error))
    return FALSE;
  if (LINUX_S_ISDIR (inode.i_mode)) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
                 "hard link “%s”: target “%s” is a directory", path, target);
    return FALSE;
  }
  if (inode.i_links_count >= EXT2_LINK_MAX) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED,
                 "hard link “%s”: “%s” has too many links", path, target);
    return FALSE;
  }
  if (!resolve_parent (self, path, TRUE, &parent, &leaf, error))
    return FALSE;
  if (leaf == NULL) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT, "path “%s” is the image root",
                 path);
    return FALSE;
  }
  if (!lookup_leaf (self, parent, leaf, path, &existing, error))
    return FALSE;
  if (existing == target_ino)
    return TRUE;
  if (existing != 0) {
    if (!remove_entry (self, parent, leaf, existing, path, error))
      return FALSE;
    /* The removal may have taken the target with it (a directory holding
     * it was replaced): look it up again. */
    if (!resolve_existing (self, target, &target_parent, NULL, &target_ino, error)) {
      g_prefix_error (error, "hard link “%s”: ", path);
      return FALSE;
    }
  }
  if (!read_inode (self, target_ino, &inode, target, error))
    return FALSE;
  if (!link_into (self, parent, leaf, target_ino, ext2_file_type (inode.i_mode), path, error))
    return FALSE;
  inode.i_links_count++;
  return write_inode (self, target_ino, &inode, path, error);
}

gboolean
banger_ext4_writer_mknod (BangerExt4Writer *self, const char *path, const BangerExt4Attrs *attrs,
                          mode_t type, dev_t rdev, GError **error)
{
  g_autofree char *leaf = NULL;
  struct ext2_inode inode = { 0 };
  ext2_ino_t parent = 0, ino = 0;
  guint32 lmode;

  switch (type & S_IFMT) {
  case S_IFCHR:
    lmode = LINUX_S_IFCHR;
    break;
  case S_IFBLK:
    lmode = LINUX_S_IFBLK;
    break;
  case S_IFIFO:
    lmode = LINUX_S_IFIFO;
    break;
  case S_IFSOCK:
    lmode = LINUX_S_IFSOCK;
    break;
  default:
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
                 "“%s”: type %o is not a device, fifo or socket", path, (unsigned)type);
    return FALSE;
  }
  if (!prepare_new_entry (self, path, &parent, &leaf, error))
    return FALSE;
  if (lmode == LINUX_S_IFCHR || lmode == LINUX_S_IFBLK)
    inode_set_rdev (&inode, rdev);
  return create_inode (self, parent, leaf, path, lmode, attrs, &inode, &ino, error);
}

gboolean
banger_ext4_writer_set_xattr (BangerExt4Writer *self, const char *path, const char *name,
                              const void *value, gsize size, GError **error)
{
  struct ext2_xattr_handle *handle = NULL;
  ext2_ino_t parent = 0, ino = 0;
  errcode_t err;

  if (!resolve_existing (self, path, &parent, NULL, &ino, error))
    return FALSE;
  err = ext2fs_xattrs_open (self->fs, ino, &handle);
  if (err == 0)
    err = ext2fs_xattrs_read (handle);
  if (err == 0)
    err = ext2fs_xattr_set (handle, name, value, size);
  if (handle != NULL) {
    errcode_t close_err = ext2fs_xattrs_close (&handle);
    if (err == 0)
      err = close_err;
  }
  if (err != 0)
    return set_ext2_error (error, err, "setting attribute “%s” of “%s”", name, path);
  return TRUE;
}

gboolean
banger_ext4_writer_remove (BangerExt4Writer *self, const char *path, GError **error)
{
  g_autofree char *leaf = NULL;
  g_autoptr (GError) local_error = NULL;
  ext2_ino_t parent = 0, ino = 0;

  if (!resolve_parent (self, path, FALSE, &parent, &leaf, &local_error)) {
    if (g_error_matches (local_error, BANGER_ERROR, BANGER_ERROR_NOT_FOUND))
      return TRUE;
    g_propagate_error (error, g_steal_pointer (&local_error));
    return FALSE;
  }
  if (leaf == NULL) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
                 "path “%s” is the image root and cannot be removed", path);
    return FALSE;
  }
  if (!lookup_leaf (self, parent, leaf, path, &ino, error))
    return FALSE;
  if (ino == 0)
    return TRUE;
  return remove_entry (self, parent, leaf, ino, path, error);
}

gboolean
banger_ext4_writer_make_opaque (BangerExt4Writer *self, const char *path, GError **error)
{
  ext2_ino_t parent = 0, ino = 0;
  struct ext2_inode inode;

  if (!resolve_existing (self, path, &parent, NULL, &ino, error))
    return FALSE;
  if (!read_inode (self, ino, &inode, path, error))
    return FALSE;
  if (!LINUX_S_ISDIR (inode.i_mode)) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT, "“%s” is not a directory",
                 path);
    return FALSE;
  }
  /* The root's lost+found belongs to the file system, not to a layer. */
  return remove_children (self, ino, path, ino == EXT2_ROOT_INO, error);
}

gboolean
banger_ext4_writer_lookup (BangerExt4Writer *self, const char *path, BangerExt4Stat *out,
                           GError **error)
{
  ext2_ino_t parent = 0, ino = 0;
  struct ext2_inode inode;

  if (!resolve_existing (self, path, &parent, NULL, &ino, error))
    return FALSE;
  if (!read_inode (self, ino, &inode, path, error))
    return FALSE;
  memset (out, 0, sizeof (*out));
  out->ino = ino;
  out->mode = inode.i_mode;
  out->uid = inode_uid (inode);
  out->gid = inode_gid (inode);
  out->size = EXT2_I_SIZE (&inode);
  out->nlink = inode.i_links_count;
  out->mtime = inode.i_mtime;
  if (LINUX_S_ISCHR (inode.i_mode) || LINUX_S_ISBLK (inode.i_mode))
    out->rdev = inode_get_rdev (&inode);
  return TRUE;
}

/* --------------------------------------------------------- create, close */

static gboolean
init_filesystem (BangerExt4Writer *self, guint64 size_bytes, guint64 inodes, GError **error)
{
  struct ext2_super_block param = { 0 };
  struct ext2fs_journal_params jparams = { 0 };
  blk64_t blocks = size_bytes / BLOCK_SIZE;
  ext2_filsys fs = NULL;
  ext2_ino_t lpf = 0;
  struct ext2_inode inode;
  errcode_t err;

  if (!banger_ext2fs_load (error))
    return FALSE;
  /* What mke2fs -t ext4 sets from /etc/mke2fs.conf's ext4 type, with 4 KiB
   * blocks even for small images (a VM disk grows; 1 KiB blocks would not
   * suit it). */
  param.s_rev_level = EXT2_DYNAMIC_REV;
  param.s_log_block_size = BLOCK_SIZE_LOG;
  ext2fs_blocks_count_set (&param, blocks);
  ext2fs_r_blocks_count_set (&param, blocks * 5 / 100);
  param.s_inode_size = INODE_SIZE;
  param.s_inodes_count = (inodes > 0 ? inodes : size_bytes / BYTES_PER_INODE);
  if (param.s_inodes_count < 64)
    param.s_inodes_count = 64;
  param.s_log_groups_per_flex = 4;
  param.s_desc_size = EXT2_MIN_DESC_SIZE_64BIT;
  param.s_min_extra_isize = param.s_want_extra_isize
      = sizeof (struct ext2_inode_large) - EXT2_GOOD_OLD_INODE_SIZE;
  param.s_default_mount_opts = EXT2_DEFM_XATTR_USER | EXT2_DEFM_ACL;
  ext2fs_set_feature_xattr (&param);
  ext2fs_set_feature_resize_inode (&param);
  ext2fs_set_feature_dir_index (&param);
  ext2fs_set_feature_filetype (&param);
  ext2fs_set_feature_extents (&param);
  ext2fs_set_feature_64bit (&param);
  ext2fs_set_feature_flex_bg (&param);
  ext2fs_set_feature_sparse_super (&param);
  ext2fs_set_feature_large_file (&param);
  ext2fs_set_feature_huge_file (&param);
  ext2fs_set_feature_dir_nlink (&param);
  ext2fs_set_feature_extra_isize (&param);
  ext2fs_set_feature_metadata_csum (&param);

  err = ext2fs_initialize (self->tmp_path, EXT2_FLAG_64BITS, &param, unix_io_manager, &fs);
  if (err != 0)
    return set_ext2_error (error, err, "creating a file system in “%s”", self->dest);
  self->fs = fs;

  fs->super->s_kbytes_written = 1;
  if (getrandom (fs->super->s_uuid, sizeof (fs->super->s_uuid), 0)
          != (ssize_t)sizeof (fs->super->s_uuid)
      || getrandom (fs->super->s_hash_seed, sizeof (fs->super->s_hash_seed), 0)
             != (ssize_t)sizeof (fs->super->s_hash_seed)) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "getrandom: %s", g_strerror (errno));
    return FALSE;
  }
  /* RFC 4122 version 4 (random) UUIDs, as uuid_generate() makes. */
  fs->super->s_uuid[6] = (fs->super->s_uuid[6] & 0x0f) | 0x40;
  fs->super->s_uuid[8] = (fs->super->s_uuid[8] & 0x3f) | 0x80;
  fs->super->s_checksum_type = EXT2_CRC32C_CHKSUM;
  ext2fs_init_csum_seed (fs);
  fs->super->s_def_hash_version = EXT2_HASH_HALF_MD4;
  fs->super->s_max_mnt_count = -1;

  err = ext2fs_allocate_tables (fs);
  if (err != 0)
    return set_ext2_error (error, err, "allocating group tables in “%s”", self->dest);
  err = ext2fs_convert_subcluster_bitmap (fs, &fs->block_map);
  if (err != 0)
    return set_ext2_error (error, err, "allocating group tables in “%s”", self->dest);

  /* The image file is new and sparse, so its inode tables already read as
   * zeros: nothing to write, and the kernel need not zero them either. */
  for (dgrp_t i = 0; i < fs->group_desc_count; i++) {
    ext2fs_bg_flags_set (fs, i, EXT2_BG_INODE_ZEROED);
    ext2fs_group_desc_csum_set (fs, i);
  }

  err = ext2fs_mkdir (fs, EXT2_ROOT_INO, EXT2_ROOT_INO, NULL);
  if (err != 0)
    return set_ext2_error (error, err, "creating the root directory in “%s”", self->dest);

  /* lost+found, 0700 and pre-grown to 16 KiB so e2fsck can reconnect
   * files without allocating, as mke2fs makes it. */
  fs->umask = 077;
  err = ext2fs_mkdir (fs, EXT2_ROOT_INO, 0, "lost+found");
  fs->umask = 022;
  if (err == 0)
    err = ext2fs_lookup (fs, EXT2_ROOT_INO, "lost+found", strlen ("lost+found"), NULL, &lpf);
  for (guint size = fs->blocksize; err == 0 && size < LOST_FOUND_BYTES; size += fs->blocksize)
    err = ext2fs_expand_dir (fs, lpf);
  if (err != 0)
    return set_ext2_error (error, err, "creating lost+found in “%s”", self->dest);

  /* Inodes 3..10 are reserved; 1 is the bad blocks inode. */
  for (ext2_ino_t i = EXT2_ROOT_INO + 1; i < EXT2_FIRST_INODE (fs->super); i++)
    ext2fs_inode_alloc_stats2 (fs, i, +1, 0);
  ext2fs_mark_ib_dirty (fs);
  ext2fs_mark_inode_bitmap2 (fs->inode_map, EXT2_BAD_INO);
  ext2fs_inode_alloc_stats2 (fs, EXT2_BAD_INO, +1, 0);
  err = ext2fs_update_bb_inode (fs, NULL);
  if (err != 0)
    return set_ext2_error (error, err, "creating the bad blocks inode in “%s”", self->dest);

  err = ext2fs_create_resize_inode (fs);
  if (err != 0)
    return set_ext2_error (error, err, "reserving blocks for online resize in “%s”", self->dest);

  err = ext2fs_get_journal_params (&jparams, fs);
  if (err == 0)
    err = ext2fs_add_journal_inode3 (fs, &jparams, ~0ULL,
                                     EXT2_MKJOURNAL_LAZYINIT | EXT2_MKJOURNAL_NO_MNT_CHECK);
  if (err != 0)
    return set_ext2_error (error, err, "creating the journal in “%s”", self->dest);

  /* The root starts as mke2fs leaves it: 0755 root:root. */
  err = ext2fs_read_inode (fs, EXT2_ROOT_INO, &inode);
  if (err != 0)
    return set_ext2_error (error, err, "reading the root directory in “%s”", self->dest);
  inode.i_mode = LINUX_S_IFDIR | 0755;
  err = ext2fs_write_inode (fs, EXT2_ROOT_INO, &inode);
  if (err != 0)
    return set_ext2_error (error, err, "writing the root directory in “%s”", self->dest);
  return TRUE;
}

BangerExt4Writer *
banger_ext4_writer_new (const char *dest, guint64 size_bytes, guint64 inodes, GError **error)
{
  g_autoptr (BangerExt4Writer) self = g_new0 (BangerExt4Writer, 1);
  g_autofree char *dir = g_path_get_dirname (dest);
  g_autofree char *base = g_path_get_basename (dest);
  int fd;

  self->dest = g_strdup (dest);
  self->parent_attrs.mode = 0755;
  self->parent_attrs.mtime = g_get_real_time () / G_USEC_PER_SEC;
  if (size_bytes < MIN_IMAGE_BYTES) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
                 "image “%s”: size %" G_GUINT64_FORMAT " is below the minimum of %d bytes", dest,
                 size_bytes, MIN_IMAGE_BYTES);
    return NULL;
  }

  /* A temporary name next to the destination, renamed over it at the end:
   * a failed or interrupted build never leaves a half-written image there. */
  self->tmp_path = g_strdup_printf ("%s/.%s.XXXXXX", dir, base);
  fd = g_mkstemp_full (self->tmp_path, O_RDWR | O_CLOEXEC, 0644);
  if (fd < 0) {
    int saved = errno;
    g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved),
                 "creating a temporary file next to “%s”: %s", dest, g_strerror (saved));
    g_clear_pointer (&self->tmp_path, g_free);
    return NULL;
  }
  if (ftruncate (fd, (off_t)(size_bytes / BLOCK_SIZE * BLOCK_SIZE)) < 0) {
    int saved = errno;
    close (fd);
    g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved), "sizing “%s”: %s",
                 self->tmp_path, g_strerror (saved));
    return NULL;
  }
  close (fd);

  if (!init_filesystem (self, size_bytes, inodes, error))
    return NULL;
  return g_steal_pointer (&self);
}

gboolean
banger_ext4_writer_finish (BangerExt4Writer *self, GError **error)
{
  errcode_t err;

  g_return_val_if_fail (!self->finished, FALSE);
  err = ext2fs_close_free (&self->fs);
  if (err != 0)
    return set_ext2_error (error, err, "writing out “%s”", self->dest);
  if (rename (self->tmp_path, self->dest) < 0) {
    int saved = errno;
    g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved), "renaming “%s” to “%s”: %s",
                 self->tmp_path, self->dest, g_strerror (saved));
    return FALSE;
  }
  self->finished = TRUE;
  return TRUE;
}

void
banger_ext4_writer_free (BangerExt4Writer *self)
{
  if (self == NULL)
    return;
  if (self->fs != NULL)
    ext2fs_free (self->fs);
  if (!self->finished && self->tmp_path != NULL)
    unlink (self->tmp_path);
  g_free (self->tmp_path);
  g_free (self->dest);
  g_free (self);
}
