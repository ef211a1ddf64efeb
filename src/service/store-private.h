#pragma once

/* Store internals for tests only; bangerd itself uses store.h. */

#include <sqlite3.h>

#include "store.h"

G_BEGIN_DECLS

/* Creates (if needed) the database at @path and applies migrations only up
 * to @version, exactly as banger_store_open would have left a database
 * written by an older bangerd. Fails if the file is already past @version. */
gboolean banger_store_migrate_to (const char *path, int version, GError **error);

/* The store's own connection, to inspect per-connection settings. */
sqlite3 *banger_store_get_db (BangerStore *store);

G_END_DECLS
