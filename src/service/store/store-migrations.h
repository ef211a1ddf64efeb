#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* One forward-only schema step. Migration N (1-based, its index + 1) takes
 * a database at PRAGMA user_version N-1 to N. Steps are never edited once
 * released: a database in the field may sit at any of them. */
typedef struct {
  const char *title; /* short, for error messages: "migration 2 (images and kernels) fails" */
  const char *sql;   /* run with sqlite3_exec inside the step's transaction */
} BangerStoreMigration;

/* The ordered migration table; *n_migrations is the schema version it reaches. */
const BangerStoreMigration *banger_store_migrations (guint *n_migrations);

/* PRAGMA application_id of a banger database ("BNGR"): tells banger's own
 * database from some other program's SQLite file that also uses user_version. */
#define BANGER_STORE_APPLICATION_ID 0x424e4752

G_END_DECLS
