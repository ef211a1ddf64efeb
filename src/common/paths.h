#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Per-user locations (ARCHITECTURE.md "On disk"). XDG variables are honoured,
 * which is also how the tests give each daemon a private home. */
char *banger_data_dir (void);   /* $XDG_DATA_HOME/banger */
char *banger_cache_dir (void);  /* $XDG_CACHE_HOME/banger */
char *banger_config_dir (void); /* $XDG_CONFIG_HOME/banger */
char *banger_db_path (void);    /* <data>/banger.db */

/* Creates @path and its parents with mode 0700; errors name the path. */
gboolean banger_ensure_dir (const char *path, GError **error);

/* The end of writing @dest through the temporary file @tmp beside it: when
 * @ok (the write succeeded), renames @tmp over @dest, so readers see the old
 * file or the whole new one, never a part; otherwise, or if the rename fails,
 * removes @tmp. Returns whether @dest now holds the new file; sets @error only
 * for the rename (a failed write has set its own). */
gboolean banger_rename_into_place (const char *tmp, const char *dest, gboolean ok,
                                   GError **error);

G_END_DECLS
