#pragma once

#include <glib.h>
#include <sys/types.h>

G_BEGIN_DECLS

/* The directories a caller may hand the helper files from: each pattern of
 * the helper's config with %h (the caller's home, from the passwd entry of
 * @uid, never from the caller) and %U (the uid) filled in. */
GStrv banger_user_paths_expand (const char *const *patterns, uid_t uid, GError **error);

/* openat2 with RESOLVE_NO_SYMLINKS: fails (ELOOP) if any component of
 * @path, relative to @dirfd, is a symlink. O_CLOEXEC and O_NOFOLLOW are
 * added to @flags. */
int banger_open_no_symlinks (int dirfd, const char *path, int flags);

/* The first of @roots (expanded user directories) that @path lies strictly
 * below and that opens, reached without a symlink, as a directory @uid
 * owns: its O_PATH descriptor, and in *@rest the part of @path below it.
 * -1 if there is none. The one place the helper decides which of a
 * caller's directories a caller-named path is in (jail.c, install-release.c). */
int banger_user_paths_open_root (const char *const *roots, const char *path, uid_t uid,
                                 const char **rest);

/* Opens the inode behind the O_PATH descriptor @path_fd again with @flags
 * (O_CLOEXEC, O_NOCTTY and O_NONBLOCK added) through /proc/self/fd, and
 * checks it is the same inode. Callers open a caller-named file O_PATH
 * first, check its type and owner with fstat, and only then open it for
 * real: an O_PATH open never blocks on a FIFO or touches a device. */
int banger_reopen_path_fd (int path_fd, int flags);

/* The contents of the regular file @name under @dirfd, reached without a
 * symlink, if it holds at most @max bytes; NULL with an error otherwise
 * (NotFound if absent). Never blocks on a FIFO, never reads a device. */
char *banger_read_small_file (int dirfd, const char *name, gsize max, GError **error);

G_END_DECLS
