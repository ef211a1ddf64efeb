#pragma once

/* Store internals: the statement helpers store.c and store-images.c share
 * (one error mapping for every table), and hooks for the tests. bangerd's
 * other files use store.h and store-images.h. */

#include <sqlite3.h>

#include "store.h"

G_BEGIN_DECLS

G_DEFINE_AUTOPTR_CLEANUP_FUNC (sqlite3_stmt, sqlite3_finalize)

/* Creates (if needed) the database at @path and applies migrations only up
 * to @version, exactly as banger_store_open would have left a database
 * written by an older bangerd. Fails if the file is already past @version. */
gboolean banger_store_migrate_to (const char *path, int version, GError **error);

/* The store's own connection, to inspect per-connection settings. */
sqlite3 *banger_store_get_db (BangerStore *store);

/* Sets @error from the connection's last error, prefixed with @what, with
 * the BANGER_ERROR code that SQLite's result code maps to (Busy,
 * NotAuthorized, Exists, InvalidArgument, else Failed). Returns FALSE. */
gboolean banger_store_db_error (GError **error, sqlite3 *db, const char *what);
sqlite3_stmt *banger_store_db_prepare (sqlite3 *db, const char *sql, GError **error);
/* NULL is bound and read back as "": the tables' text columns are NOT NULL. */
void banger_store_db_bind_text (sqlite3_stmt *stmt, int idx, const char *s);
char *banger_store_db_column_text (sqlite3_stmt *stmt, int col);

G_END_DECLS
