/* The images and kernels tables, with store.c's statement helpers over the
 * store's connection (store-private.h); every statement is a single one, so
 * no transaction is needed here. */

#include "store-images.h"

#include <sqlite3.h>

#include "banger-error.h"
#include "store-private.h"

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

/* ---- the two tables ---- */

/* The images and kernels tables are used alike: a record type read and
 * written in the order of its columns, looked up by its unique name. */
typedef struct {
  const char *what;    /* in messages: "image" */
  const char *table;   /* "images" */
  const char *columns; /* eight: ?1..?8 of the INSERT */
  gpointer (*from_row) (sqlite3_stmt *stmt);
  void (*bind) (sqlite3_stmt *stmt, gconstpointer rec);
  GDestroyNotify free;
} RecordTable;

static gboolean
record_insert (BangerStore *store, const RecordTable *t, gconstpointer rec, const char *id,
               const char *name, GError **error)
{
  sqlite3 *db = banger_store_get_db (store);
  g_autofree char *sql = NULL;
  g_autoptr (sqlite3_stmt) stmt = NULL;
  int rc;

  if (id == NULL || *id == '\0' || name == NULL || *name == '\0') {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT, "%s record %s has no %s",
                 t->what, name && *name ? name : "(unnamed)", id && *id ? "name" : "id");
    return FALSE;
  }
  sql = g_strdup_printf ("INSERT INTO %s (%s) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)", t->table,
                         t->columns);
  stmt = banger_store_db_prepare (db, sql, error);
  if (stmt == NULL)
    return FALSE;
  t->bind (stmt, rec);
  rc = sqlite3_step (stmt);
  if (rc == SQLITE_DONE)
    return TRUE;
  /* Any constraint (the unique name or id) means the record is there. */
  if ((rc & 0xff) == SQLITE_CONSTRAINT) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_EXISTS, "a %s called “%s” already exists",
                 t->what, name);
    return FALSE;
  }
  return banger_store_db_error (error, db, "cannot insert record");
}

static gpointer
record_get_by_name (BangerStore *store, const RecordTable *t, const char *name, GError **error)
{
  sqlite3 *db = banger_store_get_db (store);
  g_autofree char *sql
      = g_strdup_printf ("SELECT %s FROM %s WHERE name = ?1", t->columns, t->table);
  g_autoptr (sqlite3_stmt) stmt = banger_store_db_prepare (db, sql, error);
  g_autofree char *what = NULL;
  int rc;

  if (stmt == NULL)
    return NULL;
  banger_store_db_bind_text (stmt, 1, name);
  rc = sqlite3_step (stmt);
  if (rc == SQLITE_ROW)
    return t->from_row (stmt);
  if (rc == SQLITE_DONE) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_NOT_FOUND, "no %s called “%s”", t->what, name);
    return NULL;
  }
  what = g_strdup_printf ("cannot look up %s", t->what);
  banger_store_db_error (error, db, what);
  return NULL;
}

static GPtrArray *
record_list (BangerStore *store, const RecordTable *t, GError **error)
{
  sqlite3 *db = banger_store_get_db (store);
  g_autofree char *sql
      = g_strdup_printf ("SELECT %s FROM %s ORDER BY created_at, name", t->columns, t->table);
  g_autoptr (sqlite3_stmt) stmt = banger_store_db_prepare (db, sql, error);
  g_autoptr (GPtrArray) out = g_ptr_array_new_with_free_func (t->free);
  int rc;

  if (stmt == NULL)
    return NULL;
  while ((rc = sqlite3_step (stmt)) == SQLITE_ROW)
    g_ptr_array_add (out, t->from_row (stmt));
  if (rc != SQLITE_DONE) {
    g_autofree char *what = g_strdup_printf ("cannot list %s", t->table);
    banger_store_db_error (error, db, what);
    return NULL;
  }
  return g_steal_pointer (&out);
}

static gboolean
record_delete (BangerStore *store, const RecordTable *t, const char *name, GError **error)
{
  sqlite3 *db = banger_store_get_db (store);
  g_autofree char *sql = g_strdup_printf ("DELETE FROM %s WHERE name = ?1", t->table);
  g_autoptr (sqlite3_stmt) stmt = banger_store_db_prepare (db, sql, error);

  if (stmt == NULL)
    return FALSE;
  banger_store_db_bind_text (stmt, 1, name);
  if (sqlite3_step (stmt) != SQLITE_DONE)
    return banger_store_db_error (error, db, "cannot delete record");
  if (sqlite3_changes (db) == 0) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_NOT_FOUND, "no %s called “%s”", t->what, name);
    return FALSE;
  }
  return TRUE;
}

/* ---- who uses an image or a kernel ---- */

/* The names in @table whose @column is @value, oldest first (the order of
 * the lists). @table and @column are this file's literals, never input. */
static GStrv
names_where (BangerStore *store, const char *table, const char *column, const char *value,
             GError **error)
{
  sqlite3 *db = banger_store_get_db (store);
  g_autofree char *sql = g_strdup_printf ("SELECT name FROM %s WHERE %s = ?1 "
                                          "ORDER BY created_at, name",
                                          table, column);
  g_autoptr (sqlite3_stmt) stmt = banger_store_db_prepare (db, sql, error);
  g_autoptr (GStrvBuilder) names = g_strv_builder_new ();
  int rc;

  if (stmt == NULL)
    return NULL;
  banger_store_db_bind_text (stmt, 1, value);
  while ((rc = sqlite3_step (stmt)) == SQLITE_ROW) {
    g_autofree char *name = banger_store_db_column_text (stmt, 0);
    g_strv_builder_add (names, name);
  }
  if (rc != SQLITE_DONE) {
    g_autofree char *what = g_strdup_printf ("cannot list %s", table);
    banger_store_db_error (error, db, what);
    return NULL;
  }
  return g_strv_builder_end (names);
}

GStrv
banger_store_vm_names_using_image (BangerStore *store, const char *image, GError **error)
{
  return names_where (store, "vms", "image", image, error);
}

GStrv
banger_store_vm_names_using_kernel (BangerStore *store, const char *kernel, GError **error)
{
  return names_where (store, "vms", "kernel", kernel, error);
}

GStrv
banger_store_image_names_using_kernel (BangerStore *store, const char *kernel, GError **error)
{
  return names_where (store, "images", "kernel", kernel, error);
}

/* ---- images ---- */

static gpointer
image_from_row (sqlite3_stmt *stmt)
{
  BangerImageRecord *rec = g_new0 (BangerImageRecord, 1);

  rec->id = banger_store_db_column_text (stmt, 0);
  rec->name = banger_store_db_column_text (stmt, 1);
  rec->source = banger_store_db_column_text (stmt, 2);
  rec->digest = banger_store_db_column_text (stmt, 3);
  rec->size_bytes = (guint64)sqlite3_column_int64 (stmt, 4);
  rec->kernel = banger_store_db_column_text (stmt, 5);
  rec->created_at = sqlite3_column_int64 (stmt, 6);
  rec->config = banger_store_db_column_text (stmt, 7);
  return rec;
}

static void
image_bind (sqlite3_stmt *stmt, gconstpointer data)
{
  const BangerImageRecord *rec = data;

  banger_store_db_bind_text (stmt, 1, rec->id);
  banger_store_db_bind_text (stmt, 2, rec->name);
  banger_store_db_bind_text (stmt, 3, rec->source);
  banger_store_db_bind_text (stmt, 4, rec->digest);
  sqlite3_bind_int64 (stmt, 5, (sqlite3_int64)rec->size_bytes);
  banger_store_db_bind_text (stmt, 6, rec->kernel);
  sqlite3_bind_int64 (stmt, 7, rec->created_at);
  banger_store_db_bind_text (stmt, 8, rec->config && *rec->config ? rec->config : "{}");
}

static const RecordTable image_table = {
  "image",        "images",   "id, name, source, digest, size_bytes, kernel, created_at, config",
  image_from_row, image_bind, (GDestroyNotify)banger_image_record_free,
};

gboolean
banger_store_image_insert (BangerStore *store, const BangerImageRecord *rec, GError **error)
{
  return record_insert (store, &image_table, rec, rec->id, rec->name, error);
}

BangerImageRecord *
banger_store_image_get_by_name (BangerStore *store, const char *name, GError **error)
{
  return record_get_by_name (store, &image_table, name, error);
}

GPtrArray *
banger_store_image_list (BangerStore *store, GError **error)
{
  return record_list (store, &image_table, error);
}

gboolean
banger_store_image_delete (BangerStore *store, const char *name, GError **error)
{
  return record_delete (store, &image_table, name, error);
}

/* ---- kernels ---- */

static gpointer
kernel_from_row (sqlite3_stmt *stmt)
{
  BangerKernelRecord *rec = g_new0 (BangerKernelRecord, 1);

  rec->id = banger_store_db_column_text (stmt, 0);
  rec->name = banger_store_db_column_text (stmt, 1);
  rec->version = banger_store_db_column_text (stmt, 2);
  rec->source = banger_store_db_column_text (stmt, 3);
  rec->path = banger_store_db_column_text (stmt, 4);
  rec->vmlinux_path = banger_store_db_column_text (stmt, 5);
  rec->initrd_path = banger_store_db_column_text (stmt, 6);
  rec->created_at = sqlite3_column_int64 (stmt, 7);
  return rec;
}

static void
kernel_bind (sqlite3_stmt *stmt, gconstpointer data)
{
  const BangerKernelRecord *rec = data;

  banger_store_db_bind_text (stmt, 1, rec->id);
  banger_store_db_bind_text (stmt, 2, rec->name);
  banger_store_db_bind_text (stmt, 3, rec->version);
  banger_store_db_bind_text (stmt, 4, rec->source);
  banger_store_db_bind_text (stmt, 5, rec->path);
  banger_store_db_bind_text (stmt, 6, rec->vmlinux_path);
  banger_store_db_bind_text (stmt, 7, rec->initrd_path);
  sqlite3_bind_int64 (stmt, 8, rec->created_at);
}

static const RecordTable kernel_table = {
  "kernel",
  "kernels",
  "id, name, version, source, path, vmlinux_path, initrd_path, created_at",
  kernel_from_row,
  kernel_bind,
  (GDestroyNotify)banger_kernel_record_free,
};

gboolean
banger_store_kernel_insert (BangerStore *store, const BangerKernelRecord *rec, GError **error)
{
  return record_insert (store, &kernel_table, rec, rec->id, rec->name, error);
}

BangerKernelRecord *
banger_store_kernel_get_by_name (BangerStore *store, const char *name, GError **error)
{
  return record_get_by_name (store, &kernel_table, name, error);
}

GPtrArray *
banger_store_kernel_list (BangerStore *store, GError **error)
{
  return record_list (store, &kernel_table, error);
}

gboolean
banger_store_kernel_delete (BangerStore *store, const char *name, GError **error)
{
  return record_delete (store, &kernel_table, name, error);
}
