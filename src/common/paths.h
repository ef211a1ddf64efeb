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

G_END_DECLS
