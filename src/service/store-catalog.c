#define G_LOG_DOMAIN "banger-store"

/* The images and kernels tables. store.c keeps its statement helpers
 * private, so this file has its own few lines of them over the store's
 * connection (store-private.h); every statement is a single one, so no
 * transaction is needed here. */

#include "store-catalog.h"

#include <sqlite3.h>

#include "banger-error.h"
#include "store-private.h"

G_DEFINE_AUTOPTR_CLEANUP_FUNC (sqlite3_stmt, sqlite3_finalize)

static char *
dup_or (const char *s, const char *fallback)
{
  return g_strdup (s != NULL ? s : fallback);
}

/* ---- records ---- */

BangerImageRecord *
banger_image_record_new (void)
{
  BangerImageRecord *rec = g_new0 (BangerImageRecord, 1);

  rec->id = g_strdup ("");
  rec->name = g_strdup ("");
  rec->source = g_strdup ("");
  rec->digest = g_strdup ("");
  rec->kernel = g_strdup ("");
  rec->config = g_strdup ("{}");
  return rec;
}

BangerImageRecord *
banger_image_record_copy (const BangerImageRecord *rec)
{
  BangerImageRecord *copy = g_new0 (BangerImageRecord, 1);

  *copy = *rec;
  copy->id = dup_or (rec->id, "");
  copy->name = dup_or (rec->name, "");
  copy->source = dup_or (rec->source, "");
  copy->digest = dup_or (rec->digest, "");
  copy->kernel = dup_or (rec->kernel, "");
  copy->config = dup_or (rec->config, "{}");
  return copy;
}

void
banger_image_record_free (BangerImageRecord *rec)
{
  if (rec == NULL)
    return;
  g_free (rec->id);
  g_free (rec->name);
  g_free (rec->source);
  g_free (rec->digest);
  g_free (rec->kernel);
  g_free (rec->config);
  g_free (rec);
}

BangerKernelRecord *
banger_kernel_record_new (void)
{
  BangerKernelRecord *rec = g_new0 (BangerKernelRecord, 1);

  rec->id = g_strdup ("");
  rec->name = g_strdup ("");
  rec->version = g_strdup ("");
  rec->source = g_strdup ("");
  rec->path = g_strdup ("");
  rec->vmlinux_path = g_strdup ("");
  rec->initrd_path = g_strdup ("");
  return rec;
}

BangerKernelRecord *
banger_kernel_record_copy (const BangerKernelRecord *rec)
{
  BangerKernelRecord *copy = g_new0 (BangerKernelRecord, 1);

  *copy = *rec;
  copy->id = dup_or (rec->id, "");
  copy->name = dup_or (rec->name, "");
  copy->version = dup_or (rec->version, "");
  copy->source = dup_or (rec->source, "");
  copy->path = dup_or (rec->path, "");
  copy->vmlinux_path = dup_or (rec->vmlinux_path, "");
  copy->initrd_path = dup_or (rec->initrd_path, "");
  return copy;
}

void
banger_kernel_record_free (BangerKernelRecord *rec)
{
  if (rec == NULL)
    return;
  g_free (rec->id);
  g_free (rec->name);
  g_free (rec->version);
  g_free (rec->source);
  g_free (rec->path);
  g_free (rec->vmlinux_path);
  g_free (rec->initrd_path);
  g_free (rec);
}

/* ---- statement helpers ---- */

static gboolean
set_db_error (GError **error, sqlite3 *db, const char *what)
{
  g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "%s: %s", what, sqlite3_errmsg (db));
  return FALSE;
}

static sqlite3_stmt *
prepare (sqlite3 *db, const char *sql, GError **error)
{
  sqlite3_stmt *stmt = NULL;

  if (sqlite3_prepare_v2 (db, sql, -1, &stmt, NULL) != SQLITE_OK) {
    set_db_error (error, db, "cannot prepare statement");
    return NULL;
  }
  return stmt;
}

static void
bind_text (sqlite3_stmt *stmt, int idx, const char *s)
{
  sqlite3_bind_text (stmt, idx, s != NULL ? s : "", -1, SQLITE_TRANSIENT);
}

static char *
column_text (sqlite3_stmt *stmt, int col)
{
  const unsigned char *s = sqlite3_column_text (stmt, col);

  return g_strdup (s != NULL ? (const char *)s : "");
}

static gboolean
check_id_name (const char *what, const char *id, const char *name, GError **error)
{
  if (id == NULL || *id == '\0' || name == NULL || *name == '\0') {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT, "%s record %s has no %s", what,
                 name && *name ? name : "(unnamed)", id && *id ? "name" : "id");
    return FALSE;
  }
  return TRUE;
}

/* Runs an INSERT and turns constraint failures into EXISTS naming @name. */
static gboolean
step_insert (sqlite3 *db, sqlite3_stmt *stmt, const char *what, const char *name, GError **error)
{
  int rc = sqlite3_step (stmt);

  if (rc == SQLITE_DONE)
    return TRUE;
  if ((rc & 0xff) == SQLITE_CONSTRAINT) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_EXISTS, "a %s called “%s” already exists", what,
                 name);
    return FALSE;
  }
  return set_db_error (error, db, "cannot insert record");
}

static gboolean
step_delete (sqlite3 *db, sqlite3_stmt *stmt, const char *what, const char *name, GError **error)
{
  if (sqlite3_step (stmt) != SQLITE_DONE)
    return set_db_error (error, db, "cannot delete record");
  if (sqlite3_changes (db) == 0) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_NOT_FOUND, "no %s called “%s”", what, name);
    return FALSE;
  }
  return TRUE;
}

/* ---- images ---- */

#define IMAGE_COLUMNS "id, name, source, digest, size_bytes, kernel, created_at, config"

static BangerImageRecord *
image_from_row (sqlite3_stmt *stmt)
{
  BangerImageRecord *rec = g_new0 (BangerImageRecord, 1);

  rec->id = column_text (stmt, 0);
  rec->name = column_text (stmt, 1);
  rec->source = column_text (stmt, 2);
  rec->digest = column_text (stmt, 3);
  rec->size_bytes = (guint64)sqlite3_column_int64 (stmt, 4);
  rec->kernel = column_text (stmt, 5);
  rec->created_at = sqlite3_column_int64 (stmt, 6);
  rec->config = column_text (stmt, 7);
  return rec;
}

gboolean
banger_store_image_insert (BangerStore *store, const BangerImageRecord *rec, GError **error)
{
  sqlite3 *db = banger_store_get_db (store);
  g_autoptr (sqlite3_stmt) stmt = NULL;

  if (!check_id_name ("image", rec->id, rec->name, error))
    return FALSE;
  stmt = prepare (
      db, "INSERT INTO images (" IMAGE_COLUMNS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)", error);
  if (stmt == NULL)
    return FALSE;
  bind_text (stmt, 1, rec->id);
  bind_text (stmt, 2, rec->name);
  bind_text (stmt, 3, rec->source);
  bind_text (stmt, 4, rec->digest);
  sqlite3_bind_int64 (stmt, 5, (sqlite3_int64)rec->size_bytes);
  bind_text (stmt, 6, rec->kernel);
  sqlite3_bind_int64 (stmt, 7, rec->created_at);
  bind_text (stmt, 8, rec->config && *rec->config ? rec->config : "{}");
  return step_insert (db, stmt, "image", rec->name, error);
}

BangerImageRecord *
banger_store_image_get_by_name (BangerStore *store, const char *name, GError **error)
{
  sqlite3 *db = banger_store_get_db (store);
  g_autoptr (sqlite3_stmt) stmt
      = prepare (db, "SELECT " IMAGE_COLUMNS " FROM images WHERE name = ?1", error);
  int rc;

  if (stmt == NULL)
    return NULL;
  bind_text (stmt, 1, name);
  rc = sqlite3_step (stmt);
  if (rc == SQLITE_ROW)
    return image_from_row (stmt);
  if (rc == SQLITE_DONE)
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_NOT_FOUND, "no image called “%s”", name);
  else
    set_db_error (error, db, "cannot look up image");
  return NULL;
}

GPtrArray *
banger_store_image_list (BangerStore *store, GError **error)
{
  sqlite3 *db = banger_store_get_db (store);
  g_autoptr (sqlite3_stmt) stmt
      = prepare (db, "SELECT " IMAGE_COLUMNS " FROM images ORDER BY created_at, name", error);
  g_autoptr (GPtrArray) out
      = g_ptr_array_new_with_free_func ((GDestroyNotify)banger_image_record_free);
  int rc;

  if (stmt == NULL)
    return NULL;
  while ((rc = sqlite3_step (stmt)) == SQLITE_ROW)
    g_ptr_array_add (out, image_from_row (stmt));
  if (rc != SQLITE_DONE) {
    set_db_error (error, db, "cannot list images");
    return NULL;
  }
  return g_steal_pointer (&out);
}

gboolean
banger_store_image_delete (BangerStore *store, const char *name, GError **error)
{
  sqlite3 *db = banger_store_get_db (store);
  g_autoptr (sqlite3_stmt) stmt = prepare (db, "DELETE FROM images WHERE name = ?1", error);

  if (stmt == NULL)
    return FALSE;
  bind_text (stmt, 1, name);
  return step_delete (db, stmt, "image", name, error);
}

/* ---- kernels ---- */

#define KERNEL_COLUMNS "id, name, version, source, path, vmlinux_path, initrd_path, created_at"

static BangerKernelRecord *
kernel_from_row (sqlite3_stmt *stmt)
{
  BangerKernelRecord *rec = g_new0 (BangerKernelRecord, 1);

  rec->id = column_text (stmt, 0);
  rec->name = column_text (stmt, 1);
  rec->version = column_text (stmt, 2);
  rec->source = column_text (stmt, 3);
  rec->path = column_text (stmt, 4);
  rec->vmlinux_path = column_text (stmt, 5);
  rec->initrd_path = column_text (stmt, 6);
  rec->created_at = sqlite3_column_int64 (stmt, 7);
  return rec;
}

gboolean
banger_store_kernel_insert (BangerStore *store, const BangerKernelRecord *rec, GError **error)
{
  sqlite3 *db = banger_store_get_db (store);
  g_autoptr (sqlite3_stmt) stmt = NULL;

  if (!check_id_name ("kernel", rec->id, rec->name, error))
    return FALSE;
  stmt = prepare (
      db, "INSERT INTO kernels (" KERNEL_COLUMNS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
      error);
  if (stmt == NULL)
    return FALSE;
  bind_text (stmt, 1, rec->id);
  bind_text (stmt, 2, rec->name);
  bind_text (stmt, 3, rec->version);
  bind_text (stmt, 4, rec->source);
  bind_text (stmt, 5, rec->path);
  bind_text (stmt, 6, rec->vmlinux_path);
  bind_text (stmt, 7, rec->initrd_path);
  sqlite3_bind_int64 (stmt, 8, rec->created_at);
  return step_insert (db, stmt, "kernel", rec->name, error);
}

BangerKernelRecord *
banger_store_kernel_get_by_name (BangerStore *store, const char *name, GError **error)
{
  sqlite3 *db = banger_store_get_db (store);
  g_autoptr (sqlite3_stmt) stmt
      = prepare (db, "SELECT " KERNEL_COLUMNS " FROM kernels WHERE name = ?1", error);
  int rc;

  if (stmt == NULL)
    return NULL;
  bind_text (stmt, 1, name);
  rc = sqlite3_step (stmt);
  if (rc == SQLITE_ROW)
    return kernel_from_row (stmt);
  if (rc == SQLITE_DONE)
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_NOT_FOUND, "no kernel called “%s”", name);
  else
    set_db_error (error, db, "cannot look up kernel");
  return NULL;
}

GPtrArray *
banger_store_kernel_list (BangerStore *store, GError **error)
{
  sqlite3 *db = banger_store_get_db (store);
  g_autoptr (sqlite3_stmt) stmt
      = prepare (db, "SELECT " KERNEL_COLUMNS " FROM kernels ORDER BY created_at, name", error);
  g_autoptr (GPtrArray) out
      = g_ptr_array_new_with_free_func ((GDestroyNotify)banger_kernel_record_free);
  int rc;

  if (stmt == NULL)
    return NULL;
  while ((rc = sqlite3_step (stmt)) == SQLITE_ROW)
    g_ptr_array_add (out, kernel_from_row (stmt));
  if (rc != SQLITE_DONE) {
    set_db_error (error, db, "cannot list kernels");
    return NULL;
  }
  return g_steal_pointer (&out);
}

gboolean
banger_store_kernel_delete (BangerStore *store, const char *name, GError **error)
{
  sqlite3 *db = banger_store_get_db (store);
  g_autoptr (sqlite3_stmt) stmt = prepare (db, "DELETE FROM kernels WHERE name = ?1", error);

  if (stmt == NULL)
    return FALSE;
  bind_text (stmt, 1, name);
  return step_delete (db, stmt, "kernel", name, error);
}
