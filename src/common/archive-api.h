#pragma once

/* libarchive, loaded when first used instead of linked.
 *
 * Linked, libarchive is mapped in bangerd (and the CLI) from the start, with
 * libxml2, ICU and libstdc++ behind it: 2 MiB of an idle bangerd's RSS for
 * what only a pull, an update and `vm copy` use (docs/performance.md).
 * Include this header instead of <archive.h> and <archive_entry.h>: every
 * archive_*() call below goes through a table filled from the library the
 * first time one is made. Call banger_archive_load() where an operation
 * starts, so a library that cannot be loaded is an error of that
 * operation; a call made without it, on a host where the library is
 * missing, ends the process with a message naming it. */

#include <archive.h>
#include <archive_entry.h>
#include <glib.h>

G_BEGIN_DECLS

/* The functions banger calls, in one list (adding one: here and a #define
 * below). The members have the header's types, so every call is still
 * checked by the compiler. */
#define BANGER_ARCHIVE_FUNCTIONS(X)                                                                \
  X (archive_entry_filetype)                                                                       \
  X (archive_entry_free)                                                                           \
  X (archive_entry_gid)                                                                            \
  X (archive_entry_hardlink)                                                                       \
  X (archive_entry_mtime)                                                                          \
  X (archive_entry_new)                                                                            \
  X (archive_entry_pathname)                                                                       \
  X (archive_entry_perm)                                                                           \
  X (archive_entry_rdev)                                                                           \
  X (archive_entry_set_gid)                                                                        \
  X (archive_entry_set_gname)                                                                      \
  X (archive_entry_set_hardlink)                                                                   \
  X (archive_entry_set_pathname)                                                                   \
  X (archive_entry_set_uid)                                                                        \
  X (archive_entry_set_uname)                                                                      \
  X (archive_entry_set_filetype)                                                                   \
  X (archive_entry_set_mtime)                                                                      \
  X (archive_entry_set_perm)                                                                       \
  X (archive_entry_set_size)                                                                       \
  X (archive_entry_size)                                                                           \
  X (archive_entry_size_is_set)                                                                    \
  X (archive_entry_sourcepath)                                                                     \
  X (archive_entry_symlink)                                                                        \
  X (archive_entry_uid)                                                                            \
  X (archive_entry_xattr_next)                                                                     \
  X (archive_entry_xattr_reset)                                                                    \
  X (archive_error_string)                                                                         \
  X (archive_read_close)                                                                           \
  X (archive_read_data)                                                                            \
  X (archive_read_data_block)                                                                      \
  X (archive_read_data_skip)                                                                       \
  X (archive_read_disk_can_descend)                                                                \
  X (archive_read_disk_descend)                                                                    \
  X (archive_read_disk_new)                                                                        \
  X (archive_read_disk_open)                                                                       \
  X (archive_read_disk_set_standard_lookup)                                                        \
  X (archive_read_disk_set_symlink_physical)                                                       \
  X (archive_read_free)                                                                            \
  X (archive_read_new)                                                                             \
  X (archive_read_next_header)                                                                     \
  X (archive_read_next_header2)                                                                    \
  X (archive_read_open)                                                                            \
  X (archive_read_open_fd)                                                                         \
  X (archive_read_open_filename)                                                                   \
  X (archive_read_support_filter_gzip)                                                             \
  X (archive_read_support_filter_none)                                                             \
  X (archive_read_support_filter_zstd)                                                             \
  X (archive_read_support_format_raw)                                                              \
  X (archive_read_support_format_tar)                                                              \
  X (archive_set_error)                                                                            \
  X (archive_write_close)                                                                          \
  X (archive_write_data)                                                                           \
  X (archive_write_disk_new)                                                                       \
  X (archive_write_disk_set_options)                                                               \
  X (archive_write_fail)                                                                           \
  X (archive_write_finish_entry)                                                                   \
  X (archive_write_free)                                                                           \
  X (archive_write_header)                                                                         \
  X (archive_write_new)                                                                            \
  X (archive_write_open)                                                                           \
  X (archive_write_open_fd)                                                                        \
  X (archive_write_set_bytes_per_block)                                                            \
  X (archive_write_set_format_pax_restricted)

#define BANGER_ARCHIVE_MEMBER(f) __typeof__ (f) *fn_##f;
typedef struct {
  BANGER_ARCHIVE_FUNCTIONS (BANGER_ARCHIVE_MEMBER)
} BangerArchiveApi;
#undef BANGER_ARCHIVE_MEMBER

/* Loads libarchive if it is not yet; FALSE with an Unsupported error naming
 * it if it cannot be. Thread-safe; the answer is kept. */
gboolean banger_archive_load (GError **error);

/* The table, loading the library first if needed (see above). */
const BangerArchiveApi *banger_archive_api (void);

#define archive_entry_filetype        (banger_archive_api ()->fn_archive_entry_filetype)
#define archive_entry_free            (banger_archive_api ()->fn_archive_entry_free)
#define archive_entry_gid             (banger_archive_api ()->fn_archive_entry_gid)
#define archive_entry_hardlink        (banger_archive_api ()->fn_archive_entry_hardlink)
#define archive_entry_mtime           (banger_archive_api ()->fn_archive_entry_mtime)
#define archive_entry_new             (banger_archive_api ()->fn_archive_entry_new)
#define archive_entry_pathname        (banger_archive_api ()->fn_archive_entry_pathname)
#define archive_entry_perm            (banger_archive_api ()->fn_archive_entry_perm)
#define archive_entry_rdev            (banger_archive_api ()->fn_archive_entry_rdev)
#define archive_entry_set_gid         (banger_archive_api ()->fn_archive_entry_set_gid)
#define archive_entry_set_gname       (banger_archive_api ()->fn_archive_entry_set_gname)
#define archive_entry_set_hardlink    (banger_archive_api ()->fn_archive_entry_set_hardlink)
#define archive_entry_set_pathname    (banger_archive_api ()->fn_archive_entry_set_pathname)
#define archive_entry_set_uid         (banger_archive_api ()->fn_archive_entry_set_uid)
#define archive_entry_set_filetype (banger_archive_api ()->fn_archive_entry_set_filetype)
#define archive_entry_set_mtime (banger_archive_api ()->fn_archive_entry_set_mtime)
#define archive_entry_set_perm (banger_archive_api ()->fn_archive_entry_set_perm)
#define archive_entry_set_size (banger_archive_api ()->fn_archive_entry_set_size)
#define archive_entry_set_uname       (banger_archive_api ()->fn_archive_entry_set_uname)
#define archive_entry_size            (banger_archive_api ()->fn_archive_entry_size)
#define archive_entry_size_is_set     (banger_archive_api ()->fn_archive_entry_size_is_set)
#define archive_entry_sourcepath      (banger_archive_api ()->fn_archive_entry_sourcepath)
#define archive_entry_symlink         (banger_archive_api ()->fn_archive_entry_symlink)
#define archive_entry_uid             (banger_archive_api ()->fn_archive_entry_uid)
#define archive_entry_xattr_next      (banger_archive_api ()->fn_archive_entry_xattr_next)
#define archive_entry_xattr_reset     (banger_archive_api ()->fn_archive_entry_xattr_reset)
#define archive_error_string          (banger_archive_api ()->fn_archive_error_string)
#define archive_read_close            (banger_archive_api ()->fn_archive_read_close)
#define archive_read_data             (banger_archive_api ()->fn_archive_read_data)
#define archive_read_data_block       (banger_archive_api ()->fn_archive_read_data_block)
#define archive_read_data_skip        (banger_archive_api ()->fn_archive_read_data_skip)
#define archive_read_disk_can_descend (banger_archive_api ()->fn_archive_read_disk_can_descend)
#define archive_read_disk_descend     (banger_archive_api ()->fn_archive_read_disk_descend)
#define archive_read_disk_new         (banger_archive_api ()->fn_archive_read_disk_new)
#define archive_read_disk_open        (banger_archive_api ()->fn_archive_read_disk_open)
#define archive_read_disk_set_standard_lookup                                                      \
  (banger_archive_api ()->fn_archive_read_disk_set_standard_lookup)
#define archive_read_disk_set_symlink_physical                                                     \
  (banger_archive_api ()->fn_archive_read_disk_set_symlink_physical)
#define archive_read_free          (banger_archive_api ()->fn_archive_read_free)
#define archive_read_new           (banger_archive_api ()->fn_archive_read_new)
#define archive_read_next_header   (banger_archive_api ()->fn_archive_read_next_header)
#define archive_read_next_header2  (banger_archive_api ()->fn_archive_read_next_header2)
#define archive_read_open          (banger_archive_api ()->fn_archive_read_open)
#define archive_read_open_fd       (banger_archive_api ()->fn_archive_read_open_fd)
#define archive_read_open_filename (banger_archive_api ()->fn_archive_read_open_filename)
#define archive_read_support_filter_gzip                                                           \
  (banger_archive_api ()->fn_archive_read_support_filter_gzip)
#define archive_read_support_filter_none                                                           \
  (banger_archive_api ()->fn_archive_read_support_filter_none)
#define archive_read_support_filter_zstd                                                           \
  (banger_archive_api ()->fn_archive_read_support_filter_zstd)
#define archive_read_support_format_raw (banger_archive_api ()->fn_archive_read_support_format_raw)
#define archive_read_support_format_tar (banger_archive_api ()->fn_archive_read_support_format_tar)
#define archive_set_error               (banger_archive_api ()->fn_archive_set_error)
#define archive_write_close             (banger_archive_api ()->fn_archive_write_close)
#define archive_write_data              (banger_archive_api ()->fn_archive_write_data)
#define archive_write_disk_new          (banger_archive_api ()->fn_archive_write_disk_new)
#define archive_write_disk_set_options  (banger_archive_api ()->fn_archive_write_disk_set_options)
#define archive_write_fail              (banger_archive_api ()->fn_archive_write_fail)
#define archive_write_finish_entry      (banger_archive_api ()->fn_archive_write_finish_entry)
#define archive_write_free              (banger_archive_api ()->fn_archive_write_free)
#define archive_write_header            (banger_archive_api ()->fn_archive_write_header)
#define archive_write_new               (banger_archive_api ()->fn_archive_write_new)
#define archive_write_open              (banger_archive_api ()->fn_archive_write_open)
#define archive_write_open_fd           (banger_archive_api ()->fn_archive_write_open_fd)
#define archive_write_set_bytes_per_block                                                          \
  (banger_archive_api ()->fn_archive_write_set_bytes_per_block)
#define archive_write_set_format_pax_restricted                                                    \
  (banger_archive_api ()->fn_archive_write_set_format_pax_restricted)

G_END_DECLS
