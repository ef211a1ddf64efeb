#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Removes @path and everything under it, like `rm -rf --one-file-system`:
 * symlinks are removed, never followed, and nothing mounted inside (a
 * bind mount, even of the same filesystem) is entered or removed. An
 * absent @path is success. On failure the error names the first entry that could not be removed; the
 * walk still removes what it can. */
gboolean banger_remove_tree (const char *path, GError **error);

G_END_DECLS
