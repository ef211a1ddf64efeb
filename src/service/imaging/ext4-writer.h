#pragma once

#include <gio/gio.h>
#include <sys/types.h>

G_BEGIN_DECLS

/* Writes an ext4 image file with libext2fs, without root, loop devices or
 * mounting. Input is streamed (tar entries from libarchive, a host tree), so
 * nothing has to be unpacked to the host filesystem first.
 *
 * Every path is resolved inside the image: ".." never climbs above the root,
 * and a symlink met as a parent directory is followed only if it is relative
 * and stays inside the image. A path that would leave the root is an error
 * (BANGER_ERROR_INVALID_ARGUMENT) naming the path; the image is left
 * consistent. The last component of a path is never followed: writing over a
 * symlink replaces the symlink.
 *
 * The image is written to a temporary name in the destination's directory
 * and renamed into place by banger_ext4_writer_finish(); freeing an
 * unfinished writer removes the temporary file, so a failure never leaves a
 * half-written image at the destination. */
typedef struct _BangerExt4Writer BangerExt4Writer;

/* Ownership, permission bits (07777: setuid, setgid and sticky included) and
 * modification time of a new entry. atime and ctime are set to mtime, so an
 * image built twice from the same input has the same inode times. */
typedef struct {
  guint32 uid;
  guint32 gid;
  guint32 mode;
  gint64 mtime;
} BangerExt4Attrs;

/* What banger_ext4_writer_lookup() reports about an entry. */
typedef struct {
  guint32 ino;
  guint32 mode; /* type and permission bits, as in struct stat */
  guint32 uid;
  guint32 gid;
  guint64 size;
  guint32 nlink;
  gint64 mtime;
  dev_t rdev;
} BangerExt4Stat;

/* Creates @dest (of @size_bytes, a sparse file) holding an empty ext4 file
 * system: extents, 64bit, flex_bg, dir_index, filetype, sparse_super,
 * large_file, huge_file, dir_nlink, extra_isize, metadata_csum, ext_attr,
 * resize_inode and a journal, as mke2fs -t ext4 makes it, with 4 KiB blocks and
 * 256-byte inodes. @inodes is the inode count wanted (0: one per 16 KiB). */
BangerExt4Writer *banger_ext4_writer_new (const char *dest, guint64 size_bytes, guint64 inodes,
                                          GError **error);

/* Frees the writer; if it was not finished, removes its temporary file. */
void banger_ext4_writer_free (BangerExt4Writer *self);

/* Writes the bitmaps, group descriptors and superblock, closes the image and
 * renames it to its destination. The writer can only be freed afterwards. */
gboolean banger_ext4_writer_finish (BangerExt4Writer *self, GError **error);

/* Default attributes for directories created implicitly by mkdir -p style
 * parent creation (0755 root:root, mtime 0 unless changed). */
void banger_ext4_writer_set_parent_attrs (BangerExt4Writer *self, const BangerExt4Attrs *attrs);

/* mkdir -p: creates missing parents with the parent attributes, and @path
 * itself with @attrs. An existing directory keeps its children and gets
 * @attrs; any other existing entry is replaced. */
gboolean banger_ext4_writer_mkdir (BangerExt4Writer *self, const char *path,
                                   const BangerExt4Attrs *attrs, GError **error);

/* A regular file of exactly @size bytes read from @stream. Blocks that are
 * all zeros are left as holes. An existing entry (a directory with all its
 * children too) is replaced. */
gboolean banger_ext4_writer_add_file_stream (BangerExt4Writer *self, const char *path,
                                             const BangerExt4Attrs *attrs, GInputStream *stream,
                                             guint64 size, GCancellable *cancellable,
                                             GError **error);
gboolean banger_ext4_writer_add_file_fd (BangerExt4Writer *self, const char *path,
                                         const BangerExt4Attrs *attrs, int fd, guint64 size,
                                         GError **error);
gboolean banger_ext4_writer_add_file_data (BangerExt4Writer *self, const char *path,
                                           const BangerExt4Attrs *attrs, const void *data,
                                           gsize size, GError **error);

/* A symlink to @target (stored as given, never resolved). */
gboolean banger_ext4_writer_symlink (BangerExt4Writer *self, const char *path,
                                     const BangerExt4Attrs *attrs, const char *target,
                                     GError **error);

/* A hard link at @path to the existing non-directory entry @target (a path
 * in the image, resolved like any other; its last component is not
 * followed, so a link to a symlink links the symlink). */
gboolean banger_ext4_writer_hardlink (BangerExt4Writer *self, const char *path, const char *target,
                                      GError **error);

/* A device node, fifo or socket: @type is S_IFCHR, S_IFBLK, S_IFIFO or
 * S_IFSOCK; @rdev is used for devices only. */
gboolean banger_ext4_writer_mknod (BangerExt4Writer *self, const char *path,
                                   const BangerExt4Attrs *attrs, mode_t type, dev_t rdev,
                                   GError **error);

/* Sets the extended attribute @name (e.g. "security.capability") of the
 * entry at @path (not followed if a symlink). */
gboolean banger_ext4_writer_set_xattr (BangerExt4Writer *self, const char *path, const char *name,
                                       const void *value, gsize size, GError **error);

/* Removes @path and, for a directory, everything under it (rm -rf: a
 * missing entry is not an error, an OCI whiteout for something a lower layer
 * never had is harmless). */
gboolean banger_ext4_writer_remove (BangerExt4Writer *self, const char *path, GError **error);

/* Removes every child of the directory @path, keeping the directory itself
 * (an OCI opaque whiteout). */
gboolean banger_ext4_writer_make_opaque (BangerExt4Writer *self, const char *path, GError **error);

/* Looks @path up without following its last component; BANGER_ERROR_NOT_FOUND
 * if it does not exist. */
gboolean banger_ext4_writer_lookup (BangerExt4Writer *self, const char *path, BangerExt4Stat *out,
                                    GError **error);

/* Copies the host directory @host_dir into the image directory @image_dir
 * (created if missing; it takes @host_dir's own owner and mode), keeping
 * owners, modes, times, symlinks, hard links (by st_dev/st_ino), device
 * nodes, fifos, sockets and extended attributes. */
gboolean banger_ext4_writer_add_tree (BangerExt4Writer *self, const char *host_dir,
                                      const char *image_dir, GError **error);

/* A size for an image holding @host_dir with room to spare: data and
 * metadata of the tree, plus @headroom_percent, plus the journal; rounded up
 * to a MiB and at least 32 MiB. @inodes_out (optional) gets an inode count
 * with the same headroom. */
gboolean banger_ext4_size_for_tree (const char *host_dir, guint headroom_percent, guint64 *size_out,
                                    guint64 *inodes_out, GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (BangerExt4Writer, banger_ext4_writer_free)

G_END_DECLS
