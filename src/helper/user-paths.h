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

G_END_DECLS
