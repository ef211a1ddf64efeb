#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Removes @path and everything under it, like `rm -rf --one-file-system`:
 * symlinks are removed, never followed, and nothing mounted inside (a
 * bind mount, even of the same filesystem) is entered or removed. An
 * absent @path is success. On failure the error names the first entry that
 * could not be removed; the walk still removes what it can. Trees nested
 * deeper than 128 levels are refused rather than walked (the helper runs
 * this as root on directories a user can fill). */
gboolean banger_remove_tree (const char *path, GError **error);

/* The same, for a directory bangerd made itself (an image's, a kernel's,
 * a download's): a failure is only logged, as a warning, because the
 * caller is already failing or cleaning up and has nothing better to do. */
void banger_remove_tree_or_warn (const char *path);

/* Empties the directory open as @dirfd (named @path in messages) the same
 * way, leaving its entry @keep (NULL: none) and the directory itself: for
 * a caller that must remove one entry last. */
gboolean banger_remove_tree_contents (int dirfd, const char *path, const char *keep,
                                      GError **error);

G_END_DECLS
