/* BangerStore: the connection to bangerd's SQLite database, its opening
 * and migration, the VM records and the IPv4 leases (store.h); the image and
 * kernel tables are store-images.c.
 *
 * One file (~1000 lines) on purpose: opening, the integrity checks that
 * decide whether a database is usable, migration and the VM and lease
 * statements share one connection and its prepared-statement rules; the
 * lease claims must stay in the same transactions as the VM rows. */
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <sqlite3.h>
#include <unistd.h>

#include "banger-error.h"
#include "store-migrations.h"
#include "store-private.h"

/* How long a statement waits for another connection's lock (for example a
 * concurrent "bangerd --check-migrations") before failing with BUSY. */
#define STORE_BUSY_TIMEOUT_MS 5000

G_DEFINE_AUTOPTR_CLEANUP_FUNC (sqlite3, sqlite3_close)

struct _BangerStore {
  sqlite3 *db;
  char *path;
  BangerStoreVmWatch watch;
  gpointer watch_data;
};

void
banger_store_set_vm_watch (BangerStore *store, BangerStoreVmWatch func, gpointer user_data)
{
  g_return_if_fail (store != NULL);
  g_return_if_fail (func == NULL || store->watch == NULL);
  store->watch = func;
  store->watch_data = user_data;
}

/* Called once the change is committed: a rolled-back claim is never told. */
static void
tell_watch (BangerStore *store, const char *vm_id, const char *name, const char *ipv4,
            gboolean removed)
{
  BangerStoreVmChange change = { vm_id, name, ipv4, removed };

  if (store->watch != NULL)
    store->watch (&change, store->watch_data);
}

/* ---- records ---- */

BangerVmRecord *
banger_vm_record_new (void)
{
  BangerVmRecord *rec = g_new0 (BangerVmRecord, 1);

  rec->id = g_strdup ("");
  rec->name = g_strdup ("");
  rec->state = g_strdup ("");
  rec->driver = g_strdup ("");
  rec->image = g_strdup ("");
  rec->kernel = g_strdup ("");
  rec->ipv4 = g_strdup ("");
  rec->mac = g_strdup ("");
  rec->agent_version = g_strdup ("");
  rec->boot_id = g_strdup ("");
  rec->disk_mode = g_strdup ("");
  rec->last_error = g_strdup ("");
  return rec;
}

/* A NULL string in a hand-built record is stored and copied as "". */
static char *
dup_or_empty (const char *s)
{
  return g_strdup (s != NULL ? s : "");
}

BangerVmRecord *
banger_vm_record_copy (const BangerVmRecord *rec)
{
  BangerVmRecord *copy = g_new0 (BangerVmRecord, 1);

  *copy = *rec;
  copy->id = dup_or_empty (rec->id);
  copy->name = dup_or_empty (rec->name);
  copy->state = dup_or_empty (rec->state);
  copy->driver = dup_or_empty (rec->driver);
  copy->image = dup_or_empty (rec->image);
  copy->kernel = dup_or_empty (rec->kernel);
  copy->ipv4 = dup_or_empty (rec->ipv4);
  copy->mac = dup_or_empty (rec->mac);
  copy->agent_version = dup_or_empty (rec->agent_version);
  copy->boot_id = dup_or_empty (rec->boot_id);
  copy->disk_mode = dup_or_empty (rec->disk_mode);
  copy->last_error = dup_or_empty (rec->last_error);
  return copy;
}

void
banger_vm_record_free (BangerVmRecord *rec)
{
  if (rec == NULL)
    return;
  g_free (rec->id);
  g_free (rec->name);
  g_free (rec->state);
  g_free (rec->driver);
  g_free (rec->image);
  g_free (rec->kernel);
  g_free (rec->ipv4);
  g_free (rec->mac);
  g_free (rec->agent_version);
  g_free (rec->boot_id);
  g_free (rec->disk_mode);
  g_free (rec->last_error);
  g_free (rec);
}

/* ---- SQLite helpers, shared with store-images.c (store-private.h) ---- */

static BangerError
code_from_sqlite (int rc)
{
  switch (rc & 0xff) {
  case SQLITE_BUSY:
  case SQLITE_LOCKED:
    return BANGER_ERROR_BUSY;
  case SQLITE_PERM:
  case SQLITE_AUTH:
  case SQLITE_READONLY:
    return BANGER_ERROR_NOT_AUTHORIZED;
  default:
    break;
  }
  switch (rc) {
  case SQLITE_CONSTRAINT_UNIQUE:
  case SQLITE_CONSTRAINT_PRIMARYKEY:
    return BANGER_ERROR_EXISTS;
  case SQLITE_CONSTRAINT_CHECK:
  case SQLITE_CONSTRAINT_NOTNULL:
    return BANGER_ERROR_INVALID_ARGUMENT;
  default:
    return BANGER_ERROR_FAILED;
  }
}

gboolean
banger_store_db_error (GError **error, sqlite3 *db, const char *what)
{
  int rc = sqlite3_extended_errcode (db);

  g_set_error (error, BANGER_ERROR, code_from_sqlite (rc), "%s: %s", what, sqlite3_errmsg (db));
  return FALSE;
}

static gboolean
db_exec (sqlite3 *db, const char *sql, const char *what, GError **error)
{
  if (sqlite3_exec (db, sql, NULL, NULL, NULL) != SQLITE_OK)
    return banger_store_db_error (error, db, what);
  return TRUE;
}

sqlite3_stmt *
banger_store_db_prepare (sqlite3 *db, const char *sql, GError **error)
{
  sqlite3_stmt *stmt = NULL;

  if (sqlite3_prepare_v2 (db, sql, -1, &stmt, NULL) != SQLITE_OK) {
    banger_store_db_error (error, db, "cannot prepare statement");
    return NULL;
  }
  return stmt;
}

/* Runs a statement that yields one integer (a PRAGMA or a count). */
static gboolean
db_query_int (sqlite3 *db, const char *sql, gint64 *out, GError **error)
{
  g_autoptr (sqlite3_stmt) stmt = banger_store_db_prepare (db, sql, error);

  if (stmt == NULL)
    return FALSE;
  if (sqlite3_step (stmt) != SQLITE_ROW)
    return banger_store_db_error (error, db, sql);
  *out = sqlite3_column_int64 (stmt, 0);
  return TRUE;
}

/* Ends an open transaction without keeping anything. Safe to call when the
 * failed statement already made SQLite roll back by itself. */
static void
db_rollback (sqlite3 *db)
{
  if (!sqlite3_get_autocommit (db))
    sqlite3_exec (db, "ROLLBACK", NULL, NULL, NULL);
}

void
banger_store_db_bind_text (sqlite3_stmt *stmt, int idx, const char *s)
{
  sqlite3_bind_text (stmt, idx, s != NULL ? s : "", -1, SQLITE_TRANSIENT);
}

char *
banger_store_db_column_text (sqlite3_stmt *stmt, int col)
{
  const unsigned char *s = sqlite3_column_text (stmt, col);

  return g_strdup (s != NULL ? (const char *)s : "");
}

/* ---- opening, validating and migrating ---- */

/* SQLite's page cache starts each connection with a bulk allocation of 20
 * pages (87 KiB) that it hands back only when the connection closes, not
 * even through sqlite3_db_release_memory(). The store's cache fills at open
 * (quick_check reads every page) and an idle bangerd no longer needs it:
 * with pages allocated one by one, banger_store_release_memory() can give
 * them all back (docs/performance.md). Process-wide, and only possible
 * before SQLite initialises, which the first open does. */
static void
db_configure_once (void)
{
  static gsize configured = 0;

  if (g_once_init_enter (&configured)) {
    /* SQLITE_MISUSE if something initialised SQLite first: then the
     * default stays, which only costs memory. */
    (void)sqlite3_config (SQLITE_CONFIG_PAGECACHE, NULL, 0, 0);
    g_once_init_leave (&configured, 1);
  }
}

static sqlite3 *
db_open (const char *path, gboolean create, GError **error)
{
  g_autoptr (sqlite3) db = NULL;
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW | SQLITE_OPEN_EXRESCODE;
  int rc;

  db_configure_once ();
  if (create)
    flags |= SQLITE_OPEN_CREATE;
  rc = sqlite3_open_v2 (path, &db, flags, NULL);
  if (rc != SQLITE_OK) {
    g_set_error (error, BANGER_ERROR, code_from_sqlite (rc), "cannot open database %s: %s", path,
                 db != NULL ? sqlite3_errmsg (db) : sqlite3_errstr (rc));
    return NULL;
  }
  sqlite3_busy_timeout (db, STORE_BUSY_TIMEOUT_MS);
  return g_steal_pointer (&db);
}

/* Reads and checks everything that must hold before anything is written:
 * the file is SQLite, it is banger's (or empty), not newer than this binary,
 * and intact. Only reads, so a refused file is left exactly as it was. */
static gboolean
db_validate (sqlite3 *db, const char *path, int *version_out, GError **error)
{
  int supported = banger_store_schema_version ();
  gint64 version = 0;
  gint64 app_id = 0;
  g_autoptr (sqlite3_stmt) check = NULL;
  const char *verdict;
  int rc;

  /* The first read of the header is where a non-SQLite file shows. */
  if (!db_query_int (db, "PRAGMA user_version", &version, NULL)
      || !db_query_int (db, "PRAGMA application_id", &app_id, NULL)) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED,
                 "%s is not an SQLite database or is corrupt: %s", path, sqlite3_errmsg (db));
    return FALSE;
  }
  if (app_id != 0 && app_id != BANGER_STORE_APPLICATION_ID) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED,
                 "%s is an SQLite database of another program (application id %" G_GINT64_FORMAT
                 "), not banger's",
                 path, app_id);
    return FALSE;
  }
  if (version > 0 && app_id != BANGER_STORE_APPLICATION_ID) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED,
                 "%s is an SQLite database of another program (schema version %" G_GINT64_FORMAT
                 " without banger's application id), not banger's",
                 path, version);
    return FALSE;
  }
  if (version > supported) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_UNSUPPORTED,
                 "%s: database schema version %" G_GINT64_FORMAT
                 " is newer than this bangerd supports (%d)",
                 path, version, supported);
    return FALSE;
  }
  if (version < 0) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED,
                 "%s has an invalid schema version %" G_GINT64_FORMAT, path, version);
    return FALSE;
  }

  /* quick_check reads every page, so a truncated or damaged file is caught
   * here instead of on some later query; the state database is small. */
  check = banger_store_db_prepare (db, "PRAGMA quick_check(1)", NULL);
  rc = check != NULL ? sqlite3_step (check) : SQLITE_ERROR;
  if (rc != SQLITE_ROW) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "%s is corrupt: %s", path,
                 sqlite3_errmsg (db));
    return FALSE;
  }
  verdict = (const char *)sqlite3_column_text (check, 0);
  if (g_strcmp0 (verdict, "ok") != 0) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "%s is corrupt: %s", path,
                 verdict != NULL ? verdict : "integrity check failed");
    return FALSE;
  }

  if (version == 0) {
    gint64 n_objects = 0;

    /* Version 0 must mean "new": an unversioned file that already has
     * tables is someone else's, and migrating it would scribble on it. */
    if (!db_query_int (db, "SELECT count(*) FROM sqlite_schema", &n_objects, error))
      return FALSE;
    if (n_objects > 0) {
      g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED,
                   "%s is an SQLite database but not banger's (it has tables and no schema "
                   "version)",
                   path);
      return FALSE;
    }
  }

  *version_out = (int)version;
  return TRUE;
}

/* Rebuilding tables in a later migration can leave dangling references that
 * SQLite does not check by itself while foreign keys are off (they are off
 * during migrations, as SQLite's table-rebuild procedure asks). */
static gboolean
db_foreign_key_check (sqlite3 *db, GError **error)
{
  g_autoptr (sqlite3_stmt) stmt = banger_store_db_prepare (db, "PRAGMA foreign_key_check", error);
  int rc;

  if (stmt == NULL)
    return FALSE;
  rc = sqlite3_step (stmt);
  if (rc == SQLITE_ROW) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED,
                 "foreign key check fails: row %" G_GINT64_FORMAT " of %s refers to a missing "
                 "row of %s",
                 (gint64)sqlite3_column_int64 (stmt, 1), sqlite3_column_text (stmt, 0),
                 sqlite3_column_text (stmt, 2));
    return FALSE;
  }
  if (rc != SQLITE_DONE)
    return banger_store_db_error (error, db, "foreign key check");
  return TRUE;
}

/* Applies migration @version (1-based) on the open transaction. */
static gboolean
db_apply_migration (sqlite3 *db, int version, GError **error)
{
  guint n_migrations = 0;
  const BangerStoreMigration *migrations = banger_store_migrations (&n_migrations);
  const BangerStoreMigration *m;
  g_autofree char *set_version = NULL;
  g_autoptr (GError) local_error = NULL;

  g_assert (version >= 1 && (guint)version <= n_migrations);
  m = &migrations[version - 1];
  set_version = g_strdup_printf ("PRAGMA user_version = %d", version);
  if (sqlite3_exec (db, m->sql, NULL, NULL, NULL) != SQLITE_OK) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "migration %d (%s) fails: %s", version,
                 m->title, sqlite3_errmsg (db));
    return FALSE;
  }
  if (!db_foreign_key_check (db, &local_error)
      || !db_exec (db, set_version, "cannot set schema version", &local_error)) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "migration %d (%s) fails: %s", version,
                 m->title, local_error->message);
    return FALSE;
  }
  return TRUE;
}

/* Brings the database up to @target, one transaction per migration. The
 * version is re-read under the write lock so that two processes migrating
 * at once cannot both apply the same step. */
static gboolean
db_migrate (sqlite3 *db, const char *path, int target, GError **error)
{
  for (;;) {
    gint64 current = 0;

    if (!db_exec (db, "BEGIN IMMEDIATE", "cannot start migration", error))
      return FALSE;
    if (!db_query_int (db, "PRAGMA user_version", &current, error)) {
      db_rollback (db);
      return FALSE;
    }
    if (current > banger_store_schema_version ()) {
      db_rollback (db);
      g_set_error (error, BANGER_ERROR, BANGER_ERROR_UNSUPPORTED,
                   "%s: database schema version %" G_GINT64_FORMAT
                   " is newer than this bangerd supports (%d)",
                   path, current, banger_store_schema_version ());
      return FALSE;
    }
    if (current >= target) {
      db_rollback (db);
      return TRUE;
    }
    if (!db_apply_migration (db, (int)current + 1, error)) {
      db_rollback (db);
      g_prefix_error (error, "%s: ", path);
      return FALSE;
    }
    if (!db_exec (db, "COMMIT", "cannot commit migration", error)) {
      db_rollback (db);
      return FALSE;
    }
    g_debug ("%s: migrated to schema version %" G_GINT64_FORMAT, path, current + 1);
  }
}

/* Creates a missing database file with mode 0600 ourselves: SQLite would
 * create it with 0644 (less the umask), and its -wal and -shm files copy
 * the database file's mode. */
static gboolean
ensure_file (const char *path, GError **error)
{
  g_autofree char *dir = g_path_get_dirname (path);
  int fd;

  if (g_mkdir_with_parents (dir, 0700) < 0) {
    int errsv = errno;
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "cannot create directory %s: %s", dir,
                 g_strerror (errsv));
    return FALSE;
  }
  fd = g_open (path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    int errsv = errno;
    if (errsv == EEXIST)
      return TRUE;
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "cannot create database %s: %s", path,
                 g_strerror (errsv));
    return FALSE;
  }
  close (fd);
  return TRUE;
}

/* Opens @path and migrates it to @target; the one path that both bangerd
 * and the tests' banger_store_migrate_to take. */
static sqlite3 *
db_open_migrated (const char *path, int target, GError **error)
{
  g_autoptr (sqlite3) db = NULL;
  g_autoptr (sqlite3_stmt) wal = NULL;
  int version = 0;
  gint64 foreign_keys = 0;
  GStatBuf st;

  if (!ensure_file (path, error))
    return NULL;
  db = db_open (path, TRUE, error);
  if (db == NULL)
    return NULL;
  if (!db_validate (db, path, &version, error))
    return NULL;
  if (version > target) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED,
                 "%s: database schema version %d is already past %d", path, version, target);
    return NULL;
  }
  if (!db_migrate (db, path, target, error))
    return NULL;

  /* WAL only after the migrations succeeded: switching the journal mode
   * rewrites the file header, and a refused file must stay untouched. */
  wal = banger_store_db_prepare (db, "PRAGMA journal_mode = WAL", error);
  if (wal == NULL)
    return NULL;
  if (sqlite3_step (wal) != SQLITE_ROW) {
    banger_store_db_error (error, db, "cannot switch to WAL mode");
    g_prefix_error (error, "%s: ", path);
    return NULL;
  }
  if (g_ascii_strcasecmp ((const char *)sqlite3_column_text (wal, 0), "wal") != 0) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED,
                 "%s: cannot switch to WAL mode (journal mode stays %s)", path,
                 sqlite3_column_text (wal, 0));
    return NULL;
  }

  /* Per connection and off by default: without it ON DELETE CASCADE and
   * the leases' REFERENCES are not enforced at all. */
  if (!db_exec (db, "PRAGMA foreign_keys = ON", "cannot enable foreign keys", error)
      || !db_query_int (db, "PRAGMA foreign_keys", &foreign_keys, error))
    return NULL;
  if (foreign_keys != 1) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_UNSUPPORTED,
                 "%s: this SQLite cannot enforce foreign keys", path);
    return NULL;
  }

  /* A database someone created or copied with a looser mode is tightened
   * once it is known to be ours. */
  if (g_stat (path, &st) == 0 && (st.st_mode & 077) != 0 && g_chmod (path, 0600) < 0) {
    int errsv = errno;
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "cannot make %s private: %s", path,
                 g_strerror (errsv));
    return NULL;
  }
  return g_steal_pointer (&db);
}

int
banger_store_schema_version (void)
{
  guint n_migrations = 0;

  banger_store_migrations (&n_migrations);
  return (int)n_migrations;
}

BangerStore *
banger_store_open (const char *path, GError **error)
{
  g_autoptr (BangerStore) store = g_new0 (BangerStore, 1);

  g_return_val_if_fail (path != NULL, NULL);

  store->path = g_strdup (path);
  store->db = db_open_migrated (path, banger_store_schema_version (), error);
  if (store->db == NULL)
    return NULL;
  return g_steal_pointer (&store);
}

void
banger_store_free (BangerStore *store)
{
  if (store == NULL)
    return;
  if (store->db != NULL)
    sqlite3_close (store->db);
  g_free (store->path);
  g_free (store);
}

gboolean
banger_store_migrate_to (const char *path, int version, GError **error)
{
  g_autoptr (sqlite3) db = NULL;

  g_return_val_if_fail (version >= 0 && version <= banger_store_schema_version (), FALSE);
  db = db_open_migrated (path, version, error);
  return db != NULL;
}

void
banger_store_release_memory (BangerStore *store)
{
  g_return_if_fail (store != NULL);
  /* Frees the cached pages no statement holds; the next query reads them
   * again from the file (the kernel's page cache, when it is hot). */
  sqlite3_db_release_memory (store->db);
}

sqlite3 *
banger_store_get_db (BangerStore *store)
{
  return store->db;
}

gboolean
banger_store_check_migrations (const char *path, GError **error)
{
  g_autoptr (sqlite3) db = NULL;
  int version = 0;
  int target = banger_store_schema_version ();
  gboolean ok = TRUE;
  GStatBuf st;

  g_return_val_if_fail (path != NULL, FALSE);

  if (g_lstat (path, &st) < 0) {
    int errsv = errno;
    if (errsv == ENOENT)
      return TRUE; /* bangerd will create it at the current version */
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "cannot read %s: %s", path,
                 g_strerror (errsv));
    return FALSE;
  }

  db = db_open (path, FALSE, error);
  if (db == NULL)
    return FALSE;
  if (!db_validate (db, path, &version, error))
    return FALSE;
  if (version == target)
    return TRUE;

  /* All pending steps in one transaction that is always rolled back: the
   * point is to learn whether they would apply, not to apply them. */
  if (!db_exec (db, "BEGIN IMMEDIATE", "cannot start trial migration", error)) {
    g_prefix_error (error, "%s: ", path);
    return FALSE;
  }
  for (int v = version + 1; v <= target && ok; v++) {
    ok = db_apply_migration (db, v, error);
    if (!ok)
      g_prefix_error (error, "%s: ", path);
  }
  db_rollback (db);
  return ok;
}

/* ---- VMs ---- */

#define VM_COLUMNS                                                                                 \
  "id, name, state, driver, image, kernel, vcpus, memory_mib, disk_mib, ipv4, mac, pid, "          \
  "created_at, started_at, agent_version, boot_id, disk_mode, last_error"

/* Binds ?1..?18 in VM_COLUMNS order. ?10 (ipv4) is bound by the callers:
 * the address is owned by the lease calls. */
static void
bind_vm (sqlite3_stmt *stmt, const BangerVmRecord *rec)
{
  banger_store_db_bind_text (stmt, 1, rec->id);
  banger_store_db_bind_text (stmt, 2, rec->name);
  banger_store_db_bind_text (stmt, 3, rec->state);
  banger_store_db_bind_text (stmt, 4, rec->driver);
  banger_store_db_bind_text (stmt, 5, rec->image);
  banger_store_db_bind_text (stmt, 6, rec->kernel);
  sqlite3_bind_int64 (stmt, 7, rec->vcpus);
  sqlite3_bind_int64 (stmt, 8, rec->memory_mib);
  sqlite3_bind_int64 (stmt, 9, rec->disk_mib);
  banger_store_db_bind_text (stmt, 11, rec->mac);
  sqlite3_bind_int64 (stmt, 12, rec->pid);
  sqlite3_bind_int64 (stmt, 13, rec->created_at);
  sqlite3_bind_int64 (stmt, 14, rec->started_at);
  banger_store_db_bind_text (stmt, 15, rec->agent_version);
  banger_store_db_bind_text (stmt, 16, rec->boot_id);
  banger_store_db_bind_text (stmt, 17, rec->disk_mode);
  banger_store_db_bind_text (stmt, 18, rec->last_error);
}

static BangerVmRecord *
vm_from_row (sqlite3_stmt *stmt)
{
  BangerVmRecord *rec = g_new0 (BangerVmRecord, 1);

  rec->id = banger_store_db_column_text (stmt, 0);
  rec->name = banger_store_db_column_text (stmt, 1);
  rec->state = banger_store_db_column_text (stmt, 2);
  rec->driver = banger_store_db_column_text (stmt, 3);
  rec->image = banger_store_db_column_text (stmt, 4);
  rec->kernel = banger_store_db_column_text (stmt, 5);
  rec->vcpus = (guint)sqlite3_column_int64 (stmt, 6);
  rec->memory_mib = (guint)sqlite3_column_int64 (stmt, 7);
  rec->disk_mib = (guint)sqlite3_column_int64 (stmt, 8);
  rec->ipv4 = banger_store_db_column_text (stmt, 9);
  rec->mac = banger_store_db_column_text (stmt, 10);
  rec->pid = (guint)sqlite3_column_int64 (stmt, 11);
  rec->created_at = sqlite3_column_int64 (stmt, 12);
  rec->started_at = sqlite3_column_int64 (stmt, 13);
  rec->agent_version = banger_store_db_column_text (stmt, 14);
  rec->boot_id = banger_store_db_column_text (stmt, 15);
  rec->disk_mode = banger_store_db_column_text (stmt, 16);
  rec->last_error = banger_store_db_column_text (stmt, 17);
  return rec;
}

static gboolean
check_record (const BangerVmRecord *rec, GError **error)
{
  if (rec->id == NULL || rec->id[0] == '\0') {
    g_set_error_literal (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT, "VM record has no id");
    return FALSE;
  }
  if (rec->name == NULL || rec->name[0] == '\0') {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT, "VM %s has no name", rec->id);
    return FALSE;
  }
  return TRUE;
}

static gboolean
vm_exists (BangerStore *store, const char *id, gboolean *exists, GError **error)
{
  g_autoptr (sqlite3_stmt) stmt
      = banger_store_db_prepare (store->db, "SELECT 1 FROM vms WHERE id = ?1", error);
  int rc;

  if (stmt == NULL)
    return FALSE;
  banger_store_db_bind_text (stmt, 1, id);
  rc = sqlite3_step (stmt);
  if (rc != SQLITE_ROW && rc != SQLITE_DONE)
    return banger_store_db_error (error, store->db, "cannot look up VM");
  *exists = rc == SQLITE_ROW;
  return TRUE;
}

static gboolean
set_vm_not_found (const char *id, GError **error)
{
  g_set_error (error, BANGER_ERROR, BANGER_ERROR_NOT_FOUND, "no VM with id %s", id);
  return FALSE;
}

/* Inserts the lease row and mirrors the address into vms.ipv4, inside the
 * caller's transaction. */
static gboolean
lease_insert (BangerStore *store, const char *vm_id, const char *ipv4, GError **error)
{
  g_autoptr (sqlite3_stmt) stmt = NULL;
  g_autoptr (sqlite3_stmt) mirror = NULL;
  int rc;

  stmt = banger_store_db_prepare (
      store->db, "INSERT INTO leases (vm_id, ipv4, claimed_at) VALUES (?1, ?2, ?3)", error);
  if (stmt == NULL)
    return FALSE;
  banger_store_db_bind_text (stmt, 1, vm_id);
  banger_store_db_bind_text (stmt, 2, ipv4);
  sqlite3_bind_int64 (stmt, 3, g_get_real_time () / G_USEC_PER_SEC);
  rc = sqlite3_step (stmt);
  if (rc == SQLITE_CONSTRAINT_UNIQUE) {
    g_autoptr (sqlite3_stmt) holder = banger_store_db_prepare (
        store->db, "SELECT v.name FROM leases l JOIN vms v ON v.id = l.vm_id WHERE l.ipv4 = ?1",
        NULL);
    if (holder != NULL) {
      banger_store_db_bind_text (holder, 1, ipv4);
      if (sqlite3_step (holder) == SQLITE_ROW) {
        g_set_error (error, BANGER_ERROR, BANGER_ERROR_EXISTS,
                     "address %s is already leased to VM %s", ipv4,
                     sqlite3_column_text (holder, 0));
        return FALSE;
      }
    }
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_EXISTS, "address %s is already leased", ipv4);
    return FALSE;
  }
  if (rc == SQLITE_CONSTRAINT_FOREIGNKEY)
    return set_vm_not_found (vm_id, error);
  if (rc == SQLITE_CONSTRAINT_CHECK) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
                 "empty address for a lease of VM %s", vm_id);
    return FALSE;
  }
  if (rc != SQLITE_DONE)
    return banger_store_db_error (error, store->db, "cannot claim lease");

  mirror = banger_store_db_prepare (store->db, "UPDATE vms SET ipv4 = ?2 WHERE id = ?1", error);
  if (mirror == NULL)
    return FALSE;
  banger_store_db_bind_text (mirror, 1, vm_id);
  banger_store_db_bind_text (mirror, 2, ipv4);
  if (sqlite3_step (mirror) != SQLITE_DONE)
    return banger_store_db_error (error, store->db, "cannot record lease");
  return TRUE;
}

gboolean
banger_store_vm_insert (BangerStore *store, const BangerVmRecord *rec, GError **error)
{
  g_autoptr (sqlite3_stmt) stmt = NULL;
  int rc;

  g_return_val_if_fail (store != NULL && rec != NULL, FALSE);

  if (!check_record (rec, error))
    return FALSE;
  stmt = banger_store_db_prepare (store->db,
                                  "INSERT INTO vms (" VM_COLUMNS
                                  ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, "
                                  "'', ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)",
                                  error);
  if (stmt == NULL)
    return FALSE;
  bind_vm (stmt, rec);

  /* A record that arrives with an address claims it in the same
   * transaction, so the VM never exists with an address nobody leased. */
  if (!db_exec (store->db, "BEGIN IMMEDIATE", "cannot start transaction", error))
    return FALSE;
  rc = sqlite3_step (stmt);
  if (rc == SQLITE_CONSTRAINT_PRIMARYKEY) {
    db_rollback (store->db);
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_EXISTS, "a VM with id %s already exists",
                 rec->id);
    return FALSE;
  }
  if (rc == SQLITE_CONSTRAINT_UNIQUE) {
    db_rollback (store->db);
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_EXISTS, "a VM named %s already exists",
                 rec->name);
    return FALSE;
  }
  if (rc != SQLITE_DONE) {
    banger_store_db_error (error, store->db, "cannot insert VM");
    db_rollback (store->db);
    return FALSE;
  }
  if (rec->ipv4 != NULL && rec->ipv4[0] != '\0'
      && !lease_insert (store, rec->id, rec->ipv4, error)) {
    db_rollback (store->db);
    return FALSE;
  }
  if (!db_exec (store->db, "COMMIT", "cannot commit VM", error)) {
    db_rollback (store->db);
    return FALSE;
  }
  tell_watch (store, rec->id, rec->name, rec->ipv4 != NULL ? rec->ipv4 : "", FALSE);
  return TRUE;
}

gboolean
banger_store_vm_update (BangerStore *store, const BangerVmRecord *rec, GError **error)
{
  g_autoptr (sqlite3_stmt) stmt = NULL;
  int rc;

  g_return_val_if_fail (store != NULL && rec != NULL, FALSE);

  if (!check_record (rec, error))
    return FALSE;
  /* ipv4 is left alone: only lease_claim/lease_release change it, so a
   * record read before a claim cannot wipe the address out. */
  stmt = banger_store_db_prepare (
      store->db,
      "UPDATE vms SET name = ?2, state = ?3, driver = ?4, image = ?5, kernel = ?6, "
      "vcpus = ?7, memory_mib = ?8, disk_mib = ?9, mac = ?11, pid = ?12, "
      "created_at = ?13, started_at = ?14, agent_version = ?15, boot_id = ?16, "
      "disk_mode = ?17, last_error = ?18 WHERE id = ?1",
      error);
  if (stmt == NULL)
    return FALSE;
  bind_vm (stmt, rec);
  rc = sqlite3_step (stmt);
  if (rc == SQLITE_CONSTRAINT_UNIQUE) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_EXISTS, "a VM named %s already exists",
                 rec->name);
    return FALSE;
  }
  if (rc != SQLITE_DONE)
    return banger_store_db_error (error, store->db, "cannot update VM");
  if (sqlite3_changes (store->db) == 0)
    return set_vm_not_found (rec->id, error);
  tell_watch (store, rec->id, rec->name, NULL, FALSE);
  return TRUE;
}

gboolean
banger_store_vm_delete (BangerStore *store, const char *id, GError **error)
{
  g_autoptr (sqlite3_stmt) stmt = NULL;

  g_return_val_if_fail (store != NULL && id != NULL, FALSE);

  /* The VM's lease goes with it (ON DELETE CASCADE). */
  stmt = banger_store_db_prepare (store->db, "DELETE FROM vms WHERE id = ?1", error);
  if (stmt == NULL)
    return FALSE;
  banger_store_db_bind_text (stmt, 1, id);
  if (sqlite3_step (stmt) != SQLITE_DONE)
    return banger_store_db_error (error, store->db, "cannot delete VM");
  if (sqlite3_changes (store->db) == 0)
    return set_vm_not_found (id, error);
  tell_watch (store, id, NULL, NULL, TRUE);
  return TRUE;
}

static BangerVmRecord *
vm_get_where (BangerStore *store, const char *column, const char *value, GError **error)
{
  g_autofree char *sql = g_strdup_printf ("SELECT " VM_COLUMNS " FROM vms WHERE %s = ?1", column);
  g_autoptr (sqlite3_stmt) stmt = banger_store_db_prepare (store->db, sql, error);
  int rc;

  if (stmt == NULL)
    return NULL;
  banger_store_db_bind_text (stmt, 1, value);
  rc = sqlite3_step (stmt);
  if (rc == SQLITE_ROW)
    return vm_from_row (stmt);
  if (rc != SQLITE_DONE) {
    banger_store_db_error (error, store->db, "cannot read VM");
    return NULL;
  }
  if (g_str_equal (column, "name"))
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_NOT_FOUND, "no VM named %s", value);
  else
    set_vm_not_found (value, error);
  return NULL;
}

BangerVmRecord *
banger_store_vm_get_by_name (BangerStore *store, const char *name, GError **error)
{
  g_return_val_if_fail (store != NULL && name != NULL, NULL);
  return vm_get_where (store, "name", name, error);
}

BangerVmRecord *
banger_store_vm_get_by_id (BangerStore *store, const char *id, GError **error)
{
  g_return_val_if_fail (store != NULL && id != NULL, NULL);
  return vm_get_where (store, "id", id, error);
}

GPtrArray *
banger_store_vm_list (BangerStore *store, GError **error)
{
  g_autoptr (GPtrArray) vms
      = g_ptr_array_new_with_free_func ((GDestroyNotify)banger_vm_record_free);
  g_autoptr (sqlite3_stmt) stmt = NULL;
  int rc;

  g_return_val_if_fail (store != NULL, NULL);

  stmt = banger_store_db_prepare (
      store->db, "SELECT " VM_COLUMNS " FROM vms ORDER BY created_at, name", error);
  if (stmt == NULL)
    return NULL;
  while ((rc = sqlite3_step (stmt)) == SQLITE_ROW)
    g_ptr_array_add (vms, vm_from_row (stmt));
  if (rc != SQLITE_DONE) {
    banger_store_db_error (error, store->db, "cannot list VMs");
    return NULL;
  }
  return g_steal_pointer (&vms);
}

/* ---- leases ---- */

gboolean
banger_store_lease_claim (BangerStore *store, const char *vm_id, const char *ipv4, GError **error)
{
  g_autoptr (sqlite3_stmt) held = NULL;
  int rc;

  g_return_val_if_fail (store != NULL && vm_id != NULL && ipv4 != NULL, FALSE);

  if (!db_exec (store->db, "BEGIN IMMEDIATE", "cannot start transaction", error))
    return FALSE;
  held = banger_store_db_prepare (store->db, "SELECT ipv4 FROM leases WHERE vm_id = ?1", error);
  if (held == NULL) {
    db_rollback (store->db);
    return FALSE;
  }
  banger_store_db_bind_text (held, 1, vm_id);
  rc = sqlite3_step (held);
  if (rc == SQLITE_ROW) {
    /* Claiming what the VM already holds is a no-op, so a retried claim
     * (e.g. after a restart) succeeds; a second address is refused. */
    gboolean same = g_strcmp0 ((const char *)sqlite3_column_text (held, 0), ipv4) == 0;
    if (!same)
      g_set_error (error, BANGER_ERROR, BANGER_ERROR_EXISTS, "VM %s already holds address %s",
                   vm_id, sqlite3_column_text (held, 0));
    db_rollback (store->db);
    return same;
  }
  if (rc != SQLITE_DONE) {
    banger_store_db_error (error, store->db, "cannot read lease");
    db_rollback (store->db);
    return FALSE;
  }
  if (!lease_insert (store, vm_id, ipv4, error)) {
    db_rollback (store->db);
    return FALSE;
  }
  if (!db_exec (store->db, "COMMIT", "cannot commit lease", error)) {
    db_rollback (store->db);
    return FALSE;
  }
  tell_watch (store, vm_id, NULL, ipv4, FALSE);
  return TRUE;
}

gboolean
banger_store_lease_release (BangerStore *store, const char *vm_id, GError **error)
{
  g_autoptr (sqlite3_stmt) del = NULL;
  g_autoptr (sqlite3_stmt) mirror = NULL;
  gboolean exists = FALSE;

  g_return_val_if_fail (store != NULL && vm_id != NULL, FALSE);

  if (!db_exec (store->db, "BEGIN IMMEDIATE", "cannot start transaction", error))
    return FALSE;
  if (!vm_exists (store, vm_id, &exists, error)) {
    db_rollback (store->db);
    return FALSE;
  }
  if (!exists) {
    db_rollback (store->db);
    return set_vm_not_found (vm_id, error);
  }
  /* Releasing a VM that holds no lease succeeds: reconcile releases
   * whatever a dead VM may have held without asking first. */
  del = banger_store_db_prepare (store->db, "DELETE FROM leases WHERE vm_id = ?1", error);
  mirror = del != NULL ? banger_store_db_prepare (store->db,
                                                  "UPDATE vms SET ipv4 = '' WHERE id = ?1", error)
                       : NULL;
  if (mirror == NULL) {
    db_rollback (store->db);
    return FALSE;
  }
  banger_store_db_bind_text (del, 1, vm_id);
  banger_store_db_bind_text (mirror, 1, vm_id);
  if (sqlite3_step (del) != SQLITE_DONE || sqlite3_step (mirror) != SQLITE_DONE) {
    banger_store_db_error (error, store->db, "cannot release lease");
    db_rollback (store->db);
    return FALSE;
  }
  if (!db_exec (store->db, "COMMIT", "cannot commit lease release", error)) {
    db_rollback (store->db);
    return FALSE;
  }
  tell_watch (store, vm_id, NULL, "", FALSE);
  return TRUE;
}

char *
banger_store_lease_get (BangerStore *store, const char *vm_id, GError **error)
{
  g_autoptr (sqlite3_stmt) stmt = NULL;
  gboolean exists = FALSE;
  int rc;

  g_return_val_if_fail (store != NULL && vm_id != NULL, NULL);

  stmt = banger_store_db_prepare (store->db, "SELECT ipv4 FROM leases WHERE vm_id = ?1", error);
  if (stmt == NULL)
    return NULL;
  banger_store_db_bind_text (stmt, 1, vm_id);
  rc = sqlite3_step (stmt);
  if (rc == SQLITE_ROW)
    return banger_store_db_column_text (stmt, 0);
  if (rc != SQLITE_DONE) {
    banger_store_db_error (error, store->db, "cannot read lease");
    return NULL;
  }
  if (!vm_exists (store, vm_id, &exists, error))
    return NULL;
  if (!exists)
    set_vm_not_found (vm_id, error);
  else
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_NOT_FOUND, "VM %s holds no address lease",
                 vm_id);
  return NULL;
}
