#pragma once

/* libext2fs, loaded when an ext4 image is first written instead of linked
 * (lazy-library.h): image builds and pulls write one, an idle bangerd
 * never does (docs/performance.md). Include this header instead of
 * <ext2fs/ext2fs.h>: every ext2fs_*() call below goes through a table of
 * the header's own types; banger_ext2fs_load() where a file system is
 * created turns a library that cannot be loaded into an error of that
 * build. */

#include <ext2fs/ext2fs.h>
#include <glib.h>

G_BEGIN_DECLS

/* The functions banger calls (adding one: here and a #define below). */
#define BANGER_EXT2FS_FUNCTIONS(X)                                                                 \
  X (ext2fs_add_journal_inode3)                                                                    \
  X (ext2fs_adjust_ea_refcount3)                                                                   \
  X (ext2fs_allocate_tables)                                                                       \
  X (ext2fs_bg_flags_set)                                                                          \
  X (ext2fs_block_alloc_stats2)                                                                    \
  X (ext2fs_blocks_count_set)                                                                      \
  X (ext2fs_close_free)                                                                            \
  X (ext2fs_convert_subcluster_bitmap)                                                             \
  X (ext2fs_create_resize_inode)                                                                   \
  X (ext2fs_dir_iterate2)                                                                          \
  X (ext2fs_expand_dir)                                                                            \
  X (ext2fs_extent_free)                                                                           \
  X (ext2fs_extent_open2)                                                                          \
  X (ext2fs_file_acl_block)                                                                        \
  X (ext2fs_file_acl_block_set)                                                                    \
  X (ext2fs_file_close)                                                                            \
  X (ext2fs_file_llseek)                                                                           \
  X (ext2fs_file_open)                                                                             \
  X (ext2fs_file_open2)                                                                            \
  X (ext2fs_file_read)                                                                             \
  X (ext2fs_file_write)                                                                            \
  X (ext2fs_free)                                                                                  \
  X (ext2fs_get_journal_params)                                                                    \
  X (ext2fs_group_desc_csum_set)                                                                   \
  X (ext2fs_init_csum_seed)                                                                        \
  X (ext2fs_initialize)                                                                            \
  X (ext2fs_inode_alloc_stats2)                                                                    \
  X (ext2fs_inode_has_valid_blocks2)                                                               \
  X (ext2fs_inode_size_set)                                                                        \
  X (ext2fs_is_fast_symlink)                                                                       \
  X (ext2fs_link)                                                                                  \
  X (ext2fs_lookup)                                                                                \
  X (ext2fs_mark_generic_bmap)                                                                     \
  X (ext2fs_mkdir)                                                                                 \
  X (ext2fs_new_inode)                                                                             \
  X (ext2fs_punch)                                                                                 \
  X (ext2fs_r_blocks_count_set)                                                                    \
  X (ext2fs_read_inode)                                                                            \
  X (ext2fs_symlink)                                                                               \
  X (ext2fs_unlink)                                                                                \
  X (ext2fs_update_bb_inode)                                                                       \
  X (ext2fs_write_inode)                                                                           \
  X (ext2fs_write_new_inode)                                                                       \
  X (ext2fs_xattr_set)                                                                             \
  X (ext2fs_xattrs_close)                                                                          \
  X (ext2fs_xattrs_open)                                                                           \
  X (ext2fs_xattrs_read)

#define BANGER_EXT2FS_MEMBER(f) __typeof__ (f) *fn_##f;
typedef struct {
  BANGER_EXT2FS_FUNCTIONS (BANGER_EXT2FS_MEMBER)
  /* A variable, not a function: its address. */
  __typeof__ (unix_io_manager) *var_unix_io_manager;
} BangerExt2fsApi;
#undef BANGER_EXT2FS_MEMBER

/* Loads libext2fs if it is not yet; FALSE with an Unsupported error naming
 * it if it cannot be. */
gboolean banger_ext2fs_load (GError **error);

/* The table, loading the library first if needed (lazy-library.h). */
const BangerExt2fsApi *banger_ext2fs_api (void);

#define ext2fs_add_journal_inode3        (banger_ext2fs_api ()->fn_ext2fs_add_journal_inode3)
#define ext2fs_adjust_ea_refcount3       (banger_ext2fs_api ()->fn_ext2fs_adjust_ea_refcount3)
#define ext2fs_allocate_tables           (banger_ext2fs_api ()->fn_ext2fs_allocate_tables)
#define ext2fs_bg_flags_set              (banger_ext2fs_api ()->fn_ext2fs_bg_flags_set)
#define ext2fs_block_alloc_stats2        (banger_ext2fs_api ()->fn_ext2fs_block_alloc_stats2)
#define ext2fs_blocks_count_set          (banger_ext2fs_api ()->fn_ext2fs_blocks_count_set)
#define ext2fs_close_free                (banger_ext2fs_api ()->fn_ext2fs_close_free)
#define ext2fs_convert_subcluster_bitmap (banger_ext2fs_api ()->fn_ext2fs_convert_subcluster_bitmap)
#define ext2fs_create_resize_inode       (banger_ext2fs_api ()->fn_ext2fs_create_resize_inode)
#define ext2fs_dir_iterate2              (banger_ext2fs_api ()->fn_ext2fs_dir_iterate2)
#define ext2fs_expand_dir                (banger_ext2fs_api ()->fn_ext2fs_expand_dir)
#define ext2fs_extent_free               (banger_ext2fs_api ()->fn_ext2fs_extent_free)
#define ext2fs_extent_open2              (banger_ext2fs_api ()->fn_ext2fs_extent_open2)
#define ext2fs_file_acl_block            (banger_ext2fs_api ()->fn_ext2fs_file_acl_block)
#define ext2fs_file_acl_block_set        (banger_ext2fs_api ()->fn_ext2fs_file_acl_block_set)
#define ext2fs_file_close                (banger_ext2fs_api ()->fn_ext2fs_file_close)
#define ext2fs_file_llseek               (banger_ext2fs_api ()->fn_ext2fs_file_llseek)
#define ext2fs_file_open                 (banger_ext2fs_api ()->fn_ext2fs_file_open)
#define ext2fs_file_open2                (banger_ext2fs_api ()->fn_ext2fs_file_open2)
#define ext2fs_file_read                 (banger_ext2fs_api ()->fn_ext2fs_file_read)
#define ext2fs_file_write                (banger_ext2fs_api ()->fn_ext2fs_file_write)
#define ext2fs_free                      (banger_ext2fs_api ()->fn_ext2fs_free)
#define ext2fs_get_journal_params        (banger_ext2fs_api ()->fn_ext2fs_get_journal_params)
#define ext2fs_group_desc_csum_set       (banger_ext2fs_api ()->fn_ext2fs_group_desc_csum_set)
#define ext2fs_init_csum_seed            (banger_ext2fs_api ()->fn_ext2fs_init_csum_seed)
#define ext2fs_initialize                (banger_ext2fs_api ()->fn_ext2fs_initialize)
#define ext2fs_inode_alloc_stats2        (banger_ext2fs_api ()->fn_ext2fs_inode_alloc_stats2)
#define ext2fs_inode_has_valid_blocks2   (banger_ext2fs_api ()->fn_ext2fs_inode_has_valid_blocks2)
#define ext2fs_inode_size_set            (banger_ext2fs_api ()->fn_ext2fs_inode_size_set)
#define ext2fs_is_fast_symlink           (banger_ext2fs_api ()->fn_ext2fs_is_fast_symlink)
#define ext2fs_link                      (banger_ext2fs_api ()->fn_ext2fs_link)
#define ext2fs_lookup                    (banger_ext2fs_api ()->fn_ext2fs_lookup)
#define ext2fs_mark_generic_bmap         (banger_ext2fs_api ()->fn_ext2fs_mark_generic_bmap)
#define ext2fs_mkdir                     (banger_ext2fs_api ()->fn_ext2fs_mkdir)
#define ext2fs_new_inode                 (banger_ext2fs_api ()->fn_ext2fs_new_inode)
#define ext2fs_punch                     (banger_ext2fs_api ()->fn_ext2fs_punch)
#define ext2fs_r_blocks_count_set        (banger_ext2fs_api ()->fn_ext2fs_r_blocks_count_set)
#define ext2fs_read_inode                (banger_ext2fs_api ()->fn_ext2fs_read_inode)
#define ext2fs_symlink                   (banger_ext2fs_api ()->fn_ext2fs_symlink)
#define ext2fs_unlink                    (banger_ext2fs_api ()->fn_ext2fs_unlink)
#define ext2fs_update_bb_inode           (banger_ext2fs_api ()->fn_ext2fs_update_bb_inode)
#define ext2fs_write_inode               (banger_ext2fs_api ()->fn_ext2fs_write_inode)
#define ext2fs_write_new_inode           (banger_ext2fs_api ()->fn_ext2fs_write_new_inode)
#define ext2fs_xattr_set                 (banger_ext2fs_api ()->fn_ext2fs_xattr_set)
#define ext2fs_xattrs_close              (banger_ext2fs_api ()->fn_ext2fs_xattrs_close)
#define ext2fs_xattrs_open               (banger_ext2fs_api ()->fn_ext2fs_xattrs_open)
#define ext2fs_xattrs_read               (banger_ext2fs_api ()->fn_ext2fs_xattrs_read)
#define unix_io_manager                  (*banger_ext2fs_api ()->var_unix_io_manager)

/* <ext2fs/bitops.h>'s inline ext2fs_mark_inode_bitmap2() calls
 * ext2fs_mark_generic_bmap() directly (its body comes before the #define
 * above): the same call, spelled so that it goes through the table. */
#define ext2fs_mark_inode_bitmap2(bitmap, ino)                                                     \
  ext2fs_mark_generic_bmap ((ext2fs_generic_bitmap)(bitmap), (ino))

G_END_DECLS
