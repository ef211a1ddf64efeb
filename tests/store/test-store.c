#define G_LOG_DOMAIN "test-store"

#include <glib/gstdio.h>
#include <sqlite3.h>
#include <string.h>
#include <sys/stat.h>

#include "banger-error.h"
#include "store-private.h"
#include "store-images.h"
#include "store.h"

/* Every case gets its own temporary directory, so the suite can run in
 * parallel with itself and with other suites. */
typedef struct {
  char *dir;
  char *path;
} Fixture;

static void
fixture_setup (Fixture *fx, gconstpointer data)
{
  g_autoptr (GError) error = NULL;

  fx->dir = g_dir_make_tmp ("banger-store-XXXXXX", &error);
  g_assert_no_error (error);
  fx->path = g_build_filename (fx->dir, "state.db", NULL);
}

static void
fixture_teardown (Fixture *fx, gconstpointer data)
{
  g_autoptr (GDir) dir = g_dir_open (fx->dir, 0, NULL);
  const char *name;

  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL) {
    g_autofree char *p = g_build_filename (fx->dir, name, NULL);
    g_unlink (p);
  }
  g_rmdir (fx->dir);
  g_free (fx->path);
  g_free (fx->dir);
}

/* ---- helpers ---- */

static char *
file_checksum (const char *path)
{
  g_autofree char *contents = NULL;
  gsize len = 0;
  g_autoptr (GError) error = NULL;

  g_file_get_contents (path, &contents, &len, &error);
  g_assert_no_error (error);
  return g_compute_checksum_for_data (G_CHECKSUM_SHA256, (const guchar *)contents, len);
}

static int
compare_names (gconstpointer a, gconstpointer b)
{
  return g_strcmp0 (*(char *const *)a, *(char *const *)b);
}

/* The names in the fixture's directory, sorted and joined by spaces: a
 * refused database must not leave -wal, -shm or -journal files behind. */
static char *
dir_listing (Fixture *fx)
{
  g_autoptr (GDir) dir = g_dir_open (fx->dir, 0, NULL);
  g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  const char *name;

  g_assert_nonnull (dir);
  while ((name = g_dir_read_name (dir)) != NULL)
    g_ptr_array_add (names, g_strdup (name));
  g_ptr_array_sort (names, compare_names);
  g_ptr_array_add (names, NULL);
  return g_strjoinv (" ", (char **)names->pdata);
}

/* A connection of the test's own, outside the store, to set up or inspect
 * a database file the way another program (or an older bangerd) would. */
static sqlite3 *
raw_open (const char *path)
{
  sqlite3 *db = NULL;

  g_assert_cmpint (sqlite3_open_v2 (path, &db, SQLITE_OPEN_READWRITE, NULL), ==, SQLITE_OK);
  return db;
}

static void
raw_exec (sqlite3 *db, const char *sql)
{
  if (sqlite3_exec (db, sql, NULL, NULL, NULL) != SQLITE_OK)
    g_error ("%s: %s", sql, sqlite3_errmsg (db));
}

/* The first row of @sql, which must have one. */
static sqlite3_stmt *
raw_row (sqlite3 *db, const char *sql)
{
  sqlite3_stmt *stmt = NULL;

  g_assert_cmpint (sqlite3_prepare_v2 (db, sql, -1, &stmt, NULL), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_step (stmt), ==, SQLITE_ROW);
  return stmt;
}

static gint64
raw_int (sqlite3 *db, const char *sql)
{
  g_autoptr (sqlite3_stmt) stmt = raw_row (db, sql);

  return sqlite3_column_int64 (stmt, 0);
}

static char *
raw_text (sqlite3 *db, const char *sql)
{
  g_autoptr (sqlite3_stmt) stmt = raw_row (db, sql);

  return g_strdup ((const char *)sqlite3_column_text (stmt, 0));
}

static gint64
file_user_version (const char *path)
{
  sqlite3 *db = raw_open (path);
  gint64 v = raw_int (db, "PRAGMA user_version");

  sqlite3_close (db);
  return v;
}

static BangerVmRecord *
make_vm (const char *id, const char *name, gint64 created_at)
{
  BangerVmRecord *rec = banger_vm_record_new ();

  g_free (rec->id);
  rec->id = g_strdup (id);
  g_free (rec->name);
  rec->name = g_strdup (name);
  g_free (rec->state);
  rec->state = g_strdup ("created");
  g_free (rec->driver);
  rec->driver = g_strdup ("qemu");
  g_free (rec->image);
  rec->image = g_strdup ("debian-12");
  g_free (rec->kernel);
  rec->kernel = g_strdup ("6.1.0-28-cloud-amd64");
  g_free (rec->mac);
  rec->mac = g_strdup ("02:42:ac:11:00:02");
  g_free (rec->agent_version);
  rec->agent_version = g_strdup ("0.1.0");
  g_free (rec->boot_id);
  rec->boot_id = g_strdup ("b00d");
  g_free (rec->disk_mode);
  rec->disk_mode = g_strdup ("overlay");
  g_free (rec->last_error);
  rec->last_error = g_strdup ("");
  rec->vcpus = 2;
  rec->memory_mib = 1024;
  rec->disk_mib = 8192;
  rec->pid = 4242;
  rec->created_at = created_at;
  rec->started_at = created_at + 5;
  return rec;
}

static void
assert_vm_equal (const BangerVmRecord *a, const BangerVmRecord *b)
{
  g_assert_cmpstr (a->id, ==, b->id);
  g_assert_cmpstr (a->name, ==, b->name);
  g_assert_cmpstr (a->state, ==, b->state);
  g_assert_cmpstr (a->driver, ==, b->driver);
  g_assert_cmpstr (a->image, ==, b->image);
  g_assert_cmpstr (a->kernel, ==, b->kernel);
  g_assert_cmpuint (a->vcpus, ==, b->vcpus);
  g_assert_cmpuint (a->memory_mib, ==, b->memory_mib);
  g_assert_cmpuint (a->disk_mib, ==, b->disk_mib);
  g_assert_cmpstr (a->ipv4, ==, b->ipv4);
  g_assert_cmpstr (a->mac, ==, b->mac);
  g_assert_cmpuint (a->pid, ==, b->pid);
  g_assert_cmpint (a->created_at, ==, b->created_at);
  g_assert_cmpint (a->started_at, ==, b->started_at);
  g_assert_cmpstr (a->agent_version, ==, b->agent_version);
  g_assert_cmpstr (a->boot_id, ==, b->boot_id);
  g_assert_cmpstr (a->disk_mode, ==, b->disk_mode);
  g_assert_cmpstr (a->last_error, ==, b->last_error);
}

static void
assert_message_has (const GError *error, const char *needle)
{
  g_assert_nonnull (error);
  if (strstr (error->message, needle) == NULL)
    g_error ("error message \"%s\" does not contain \"%s\"", error->message, needle);
}

static void
insert_vm (BangerStore *store, const char *id, const char *name, gint64 created_at)
{
  g_autoptr (BangerVmRecord) rec = make_vm (id, name, created_at);
  g_autoptr (GError) error = NULL;

  g_assert_true (banger_store_vm_insert (store, rec, &error));
  g_assert_no_error (error);
}

/* ---- schema and files ---- */

static void
test_fresh (Fixture *fx, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (BangerStore) store = NULL;
  g_autofree char *journal = NULL;
  g_autofree char *wal_path = g_strconcat (fx->path, "-wal", NULL);
  g_autofree char *nested = g_build_filename (fx->dir, "a", "b", "state.db", NULL);
  g_autoptr (BangerStore) nested_store = NULL;
  GStatBuf st;
  sqlite3 *db;

  g_assert_cmpint (banger_store_schema_version (), >=, 2);

  store = banger_store_open (fx->path, &error);
  g_assert_no_error (error);
  g_assert_nonnull (store);
  db = banger_store_get_db (store);

  g_assert_cmpint (raw_int (db, "PRAGMA user_version"), ==, banger_store_schema_version ());
  journal = raw_text (db, "PRAGMA journal_mode");
  g_assert_cmpstr (journal, ==, "wal");
  g_assert_cmpint (raw_int (db, "PRAGMA foreign_keys"), ==, 1);
  g_assert_cmpint (raw_int (db, "PRAGMA busy_timeout"), >, 0);
  g_assert_cmpint (raw_int (db, "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND "
                                "name IN ('vms', 'leases', 'images', 'kernels')"),
                   ==, 4);

  g_assert_cmpint (g_stat (fx->path, &st), ==, 0);
  g_assert_cmpint (st.st_mode & 07777, ==, 0600);
  /* A write makes SQLite create the WAL file, which must be as private. */
  insert_vm (store, "0123456789abcdef", "dev", 100);
  g_assert_cmpint (g_stat (wal_path, &st), ==, 0);
  g_assert_cmpint (st.st_mode & 07777, ==, 0600);

  /* The current version needs nothing: check says yes and changes nothing. */
  g_clear_pointer (&store, banger_store_free);
  {
    g_autofree char *before = file_checksum (fx->path);
    g_autofree char *after = NULL;

    g_assert_true (banger_store_check_migrations (fx->path, &error));
    g_assert_no_error (error);
    after = file_checksum (fx->path);
    g_assert_cmpstr (before, ==, after);
  }

  /* Missing parent directories are created. */
  nested_store = banger_store_open (nested, &error);
  g_assert_no_error (error);
  g_assert_nonnull (nested_store);
  g_clear_pointer (&nested_store, banger_store_free);
  g_unlink (nested);
  {
    g_autofree char *b = g_path_get_dirname (nested);
    g_autofree char *a = g_path_get_dirname (b);
    g_rmdir (b);
    g_rmdir (a);
  }
}

static void
test_loose_mode_tightened (Fixture *fx, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (BangerStore) store = NULL;
  GStatBuf st;

  g_assert_true (banger_store_migrate_to (fx->path, 1, &error));
  g_assert_no_error (error);
  g_assert_cmpint (g_chmod (fx->path, 0644), ==, 0);
  store = banger_store_open (fx->path, &error);
  g_assert_no_error (error);
  g_assert_cmpint (g_stat (fx->path, &st), ==, 0);
  g_assert_cmpint (st.st_mode & 07777, ==, 0600);
}

static void
test_upgrade_from_1 (Fixture *fx, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (BangerStore) store = NULL;
  g_autoptr (BangerVmRecord) vm = NULL;
  g_autofree char *lease = NULL;
  sqlite3 *db;

  g_assert_true (banger_store_migrate_to (fx->path, 1, &error));
  g_assert_no_error (error);
  g_assert_cmpint (file_user_version (fx->path), ==, 1);

  /* Written the way a version-1 bangerd wrote it: plain SQL on the v1
   * schema, which has no images table yet. */
  db = raw_open (fx->path);
  g_assert_cmpint (raw_int (db, "SELECT count(*) FROM sqlite_schema WHERE name = 'images'"), ==, 0);
  raw_exec (db, "INSERT INTO vms VALUES ('00000000000000aa', 'old', 'stopped', 'qemu', "
                "'debian-12', 'k', 1, 512, 4096, '10.77.0.9', '02:00:00:00:00:01', 0, 50, 0, "
                "'0.0.9', '', 'overlay', 'it broke');"
                "INSERT INTO leases VALUES ('00000000000000aa', '10.77.0.9', 50);");
  sqlite3_close (db);

  store = banger_store_open (fx->path, &error);
  g_assert_no_error (error);
  g_assert_nonnull (store);
  db = banger_store_get_db (store);
  g_assert_cmpint (raw_int (db, "PRAGMA user_version"), ==, banger_store_schema_version ());
  g_assert_cmpint (raw_int (db, "SELECT count(*) FROM images"), ==, 0);
  g_assert_cmpint (raw_int (db, "SELECT count(*) FROM kernels"), ==, 0);

  vm = banger_store_vm_get_by_name (store, "old", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (vm->id, ==, "00000000000000aa");
  g_assert_cmpstr (vm->state, ==, "stopped");
  g_assert_cmpuint (vm->memory_mib, ==, 512);
  g_assert_cmpstr (vm->ipv4, ==, "10.77.0.9");
  g_assert_cmpstr (vm->last_error, ==, "it broke");
  lease = banger_store_lease_get (store, vm->id, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (lease, ==, "10.77.0.9");
}

static void
test_future (Fixture *fx, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (BangerStore) store = NULL;
  g_autofree char *bump = NULL;
  g_autofree char *before = NULL;
  g_autofree char *after = NULL;
  g_autofree char *listing = NULL;
  g_autofree char *newer = NULL;
  int future = banger_store_schema_version () + 1;
  sqlite3 *db;

  store = banger_store_open (fx->path, &error);
  g_assert_no_error (error);
  insert_vm (store, "0123456789abcdef", "dev", 100);
  g_clear_pointer (&store, banger_store_free);

  /* A later bangerd added a migration this one does not know. */
  db = raw_open (fx->path);
  bump = g_strdup_printf ("PRAGMA user_version = %d", future);
  raw_exec (db, bump);
  sqlite3_close (db);
  before = file_checksum (fx->path);
  newer = g_strdup_printf ("database schema version %d is newer than this bangerd supports (%d)",
                           future, banger_store_schema_version ());

  store = banger_store_open (fx->path, &error);
  g_assert_null (store);
  g_assert_error (error, BANGER_ERROR, BANGER_ERROR_UNSUPPORTED);
  assert_message_has (error, newer);
  assert_message_has (error, fx->path);
  g_clear_error (&error);

  g_assert_false (banger_store_check_migrations (fx->path, &error));
  g_assert_error (error, BANGER_ERROR, BANGER_ERROR_UNSUPPORTED);
  assert_message_has (error, newer);
  g_clear_error (&error);

  after = file_checksum (fx->path);
  g_assert_cmpstr (before, ==, after);
  g_assert_cmpint (file_user_version (fx->path), ==, future);
  listing = dir_listing (fx);
  g_assert_cmpstr (listing, ==, "state.db");
}

static void
assert_refused_as_corrupt (Fixture *fx)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (BangerStore) store = NULL;
  g_autofree char *before = file_checksum (fx->path);
  g_autofree char *after = NULL;
  g_autofree char *listing = NULL;

  store = banger_store_open (fx->path, &error);
  g_assert_null (store);
  g_assert_error (error, BANGER_ERROR, BANGER_ERROR_FAILED);
  assert_message_has (error, fx->path);
  assert_message_has (error, "corrupt");
  g_test_message ("open: %s", error->message);
  g_clear_error (&error);

  g_assert_false (banger_store_check_migrations (fx->path, &error));
  g_assert_error (error, BANGER_ERROR, BANGER_ERROR_FAILED);
  assert_message_has (error, fx->path);
  assert_message_has (error, "corrupt");
  g_clear_error (&error);

  after = file_checksum (fx->path);
  g_assert_cmpstr (before, ==, after);
  listing = dir_listing (fx);
  g_assert_cmpstr (listing, ==, "state.db");
}

static void
test_corrupt_garbage (Fixture *fx, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  guint8 garbage[8192];

  /* Deterministic noise, longer than an SQLite header and a page. */
  for (gsize i = 0; i < sizeof garbage; i++)
    garbage[i] = (guint8)((i * 2654435761u) >> 13);
  g_assert_true (g_file_set_contents (fx->path, (const char *)garbage, sizeof garbage, &error));
  g_assert_no_error (error);
  assert_refused_as_corrupt (fx);
}

/* A real banger database of a few pages (200 VMs), closed, and its bytes. */
static char *
write_full_database (Fixture *fx, gsize *len)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (BangerStore) store = NULL;
  char *contents = NULL;

  store = banger_store_open (fx->path, &error);
  g_assert_no_error (error);
  for (int i = 0; i < 200; i++) {
    g_autofree char *id = g_strdup_printf ("%016x", i + 1);
    g_autofree char *name = g_strdup_printf ("vm-%03d", i);
    insert_vm (store, id, name, i);
  }
  g_clear_pointer (&store, banger_store_free);
  g_assert_true (g_file_get_contents (fx->path, &contents, len, &error));
  return contents;
}

static void
test_corrupt_truncated (Fixture *fx, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  gsize len = 0;
  g_autofree char *contents = write_full_database (fx, &len);

  /* Cut a real banger database in half, as a full disk or a bad copy
   * would: the header is intact, pages are missing. */
  g_assert_cmpuint (len, >=, 4 * 4096);
  g_assert_true (g_file_set_contents (fx->path, contents, len / 2, &error));
  g_assert_no_error (error);
  assert_refused_as_corrupt (fx);
}

static void
test_corrupt_page (Fixture *fx, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  gsize len = 0;
  g_autofree char *contents = write_full_database (fx, &len);

  /* Bit rot inside a b-tree page: header and size are fine, so only the
   * integrity check on open can notice. */
  g_assert_cmpuint (len, >=, 8 * 4096);
  for (gsize i = 0; i < 4096; i++)
    contents[len - 2 * 4096 + i] = (char)(0xa5 ^ i);
  g_assert_true (g_file_set_contents (fx->path, contents, len, &error));
  g_assert_no_error (error);
  assert_refused_as_corrupt (fx);
}

static void
test_not_banger (Fixture *fx, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (BangerStore) store = NULL;
  g_autofree char *before = NULL;
  g_autofree char *after = NULL;
  sqlite3 *db = NULL;

  /* Some other program's database: SQLite, but unversioned with tables. */
  g_assert_cmpint (sqlite3_open (fx->path, &db), ==, SQLITE_OK);
  raw_exec (db, "CREATE TABLE notes (body TEXT)");
  sqlite3_close (db);
  before = file_checksum (fx->path);

  store = banger_store_open (fx->path, &error);
  g_assert_null (store);
  assert_message_has (error, fx->path);
  assert_message_has (error, "not banger's");
  g_clear_error (&error);
  g_assert_false (banger_store_check_migrations (fx->path, &error));
  assert_message_has (error, "not banger's");

  after = file_checksum (fx->path);
  g_assert_cmpstr (before, ==, after);
}

static void
test_failing_migration (Fixture *fx, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (BangerStore) store = NULL;
  g_autofree char *before = NULL;
  g_autofree char *after = NULL;
  g_autofree char *listing = NULL;
  sqlite3 *db;

  g_assert_true (banger_store_migrate_to (fx->path, 1, &error));
  g_assert_no_error (error);
  /* Something already named "images" makes migration 2's CREATE fail. */
  db = raw_open (fx->path);
  raw_exec (db, "CREATE TABLE images (whatever TEXT)");
  sqlite3_close (db);
  before = file_checksum (fx->path);

  g_assert_false (banger_store_check_migrations (fx->path, &error));
  assert_message_has (error, "migration 2 (images and kernels) fails: ");
  assert_message_has (error, "images");
  g_test_message ("check: %s", error->message);
  g_clear_error (&error);

  store = banger_store_open (fx->path, &error);
  g_assert_null (store);
  assert_message_has (error, "migration 2 (images and kernels) fails: ");
  assert_message_has (error, fx->path);
  g_clear_error (&error);

  after = file_checksum (fx->path);
  g_assert_cmpstr (before, ==, after);
  g_assert_cmpint (file_user_version (fx->path), ==, 1);
  listing = dir_listing (fx);
  g_assert_cmpstr (listing, ==, "state.db");
}

static void
test_check_pending (Fixture *fx, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *before = NULL;
  g_autofree char *after = NULL;
  g_autofree char *listing = NULL;
  sqlite3 *db;

  g_assert_true (banger_store_migrate_to (fx->path, 1, &error));
  g_assert_no_error (error);
  before = file_checksum (fx->path);

  g_assert_true (banger_store_check_migrations (fx->path, &error));
  g_assert_no_error (error);

  after = file_checksum (fx->path);
  g_assert_cmpstr (before, ==, after);
  db = raw_open (fx->path);
  g_assert_cmpint (raw_int (db, "PRAGMA user_version"), ==, 1);
  g_assert_cmpint (raw_int (db, "SELECT count(*) FROM sqlite_schema WHERE name = 'images'"), ==, 0);
  sqlite3_close (db);
  listing = dir_listing (fx);
  g_assert_cmpstr (listing, ==, "state.db");
}

static void
test_check_missing (Fixture *fx, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *listing = NULL;

  g_assert_true (banger_store_check_migrations (fx->path, &error));
  g_assert_no_error (error);
  g_assert_false (g_file_test (fx->path, G_FILE_TEST_EXISTS));
  listing = dir_listing (fx);
  g_assert_cmpstr (listing, ==, "");
}

/* ---- VMs ---- */

static void
test_vm_crud (Fixture *fx, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (BangerStore) store = NULL;
  g_autoptr (BangerVmRecord) a = make_vm ("000000000000000a", "zeta", 300);
  g_autoptr (BangerVmRecord) b = make_vm ("000000000000000b", "beta", 100);
  g_autoptr (BangerVmRecord) c = make_vm ("000000000000000c", "alpha", 300);
  g_autoptr (BangerVmRecord) got = NULL;
  g_autoptr (BangerVmRecord) copy = NULL;
  g_autoptr (GPtrArray) list = NULL;

  store = banger_store_open (fx->path, &error);
  g_assert_no_error (error);

  list = banger_store_vm_list (store, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (list->len, ==, 0);
  g_clear_pointer (&list, g_ptr_array_unref);

  for (BangerVmRecord **r = (BangerVmRecord *[]){ a, b, c, NULL }; *r != NULL; r++) {
    g_assert_true (banger_store_vm_insert (store, *r, &error));
    g_assert_no_error (error);
  }

  got = banger_store_vm_get_by_id (store, a->id, &error);
  g_assert_no_error (error);
  assert_vm_equal (got, a);
  g_clear_pointer (&got, banger_vm_record_free);
  got = banger_store_vm_get_by_name (store, "beta", &error);
  g_assert_no_error (error);
  assert_vm_equal (got, b);
  g_clear_pointer (&got, banger_vm_record_free);

  /* Oldest first; equal created_at ordered by name. */
  list = banger_store_vm_list (store, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (list->len, ==, 3);
  g_assert_cmpstr (((BangerVmRecord *)list->pdata[0])->name, ==, "beta");
  g_assert_cmpstr (((BangerVmRecord *)list->pdata[1])->name, ==, "alpha");
  g_assert_cmpstr (((BangerVmRecord *)list->pdata[2])->name, ==, "zeta");
  assert_vm_equal (list->pdata[2], a);
  g_clear_pointer (&list, g_ptr_array_unref);

  /* Update every field but the id (and ipv4, which leases own). */
  copy = banger_vm_record_copy (a);
  assert_vm_equal (copy, a);
  g_free (copy->name);
  copy->name = g_strdup ("omega");
  g_free (copy->state);
  copy->state = g_strdup ("running");
  g_free (copy->last_error);
  copy->last_error = g_strdup ("none");
  copy->pid = 99;
  copy->vcpus = 4;
  copy->started_at = 1234567890123;
  g_assert_true (banger_store_vm_update (store, copy, &error));
  g_assert_no_error (error);
  got = banger_store_vm_get_by_id (store, a->id, &error);
  g_assert_no_error (error);
  assert_vm_equal (got, copy);
  g_clear_pointer (&got, banger_vm_record_free);
  got = banger_store_vm_get_by_name (store, "zeta", &error);
  g_assert_null (got);
  g_assert_error (error, BANGER_ERROR, BANGER_ERROR_NOT_FOUND);
  g_clear_error (&error);

  g_assert_true (banger_store_vm_delete (store, b->id, &error));
  g_assert_no_error (error);
  got = banger_store_vm_get_by_id (store, b->id, &error);
  g_assert_null (got);
  g_assert_error (error, BANGER_ERROR, BANGER_ERROR_NOT_FOUND);
  g_clear_error (&error);
  list = banger_store_vm_list (store, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (list->len, ==, 2);
  g_assert_cmpstr (((BangerVmRecord *)list->pdata[0])->name, ==, "alpha");
  g_assert_cmpstr (((BangerVmRecord *)list->pdata[1])->name, ==, "omega");
}

static void
test_vm_duplicate (Fixture *fx, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (BangerStore) store = NULL;
  g_autoptr (BangerVmRecord) same_name = make_vm ("00000000000000bb", "dev", 2);
  g_autoptr (BangerVmRecord) same_id = make_vm ("00000000000000aa", "other", 3);
  g_autoptr (BangerVmRecord) rename = make_vm ("00000000000000cc", "dev", 4);
  g_autoptr (GPtrArray) list = NULL;

  store = banger_store_open (fx->path, &error);
  g_assert_no_error (error);
  insert_vm (store, "00000000000000aa", "dev", 1);
  insert_vm (store, "00000000000000cc", "third", 1);

  g_assert_false (banger_store_vm_insert (store, same_name, &error));
  g_assert_error (error, BANGER_ERROR, BANGER_ERROR_EXISTS);
  assert_message_has (error, "named dev");
  g_clear_error (&error);

  g_assert_false (banger_store_vm_insert (store, same_id, &error));
  g_assert_error (error, BANGER_ERROR, BANGER_ERROR_EXISTS);
  assert_message_has (error, "00000000000000aa");
  g_clear_error (&error);

  /* Renaming onto a taken name is the same conflict. */
  g_assert_false (banger_store_vm_update (store, rename, &error));
  g_assert_error (error, BANGER_ERROR, BANGER_ERROR_EXISTS);
  assert_message_has (error, "named dev");
  g_clear_error (&error);

  list = banger_store_vm_list (store, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (list->len, ==, 2);
}

static void
test_vm_unknown (Fixture *fx, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (BangerStore) store = NULL;
  g_autoptr (BangerVmRecord) ghost = make_vm ("00000000000000ff", "ghost", 1);
  g_autoptr (BangerVmRecord) got = NULL;
  g_autoptr (BangerVmRecord) nameless = make_vm ("00000000000000ee", "", 1);

  store = banger_store_open (fx->path, &error);
  g_assert_no_error (error);
  insert_vm (store, "00000000000000aa", "dev", 1);

  got = banger_store_vm_get_by_id (store, ghost->id, &error);
  g_assert_null (got);
  g_assert_error (error, BANGER_ERROR, BANGER_ERROR_NOT_FOUND);
  assert_message_has (error, ghost->id);
  g_clear_error (&error);

  got = banger_store_vm_get_by_name (store, "ghost", &error);
  g_assert_null (got);
  g_assert_error (error, BANGER_ERROR, BANGER_ERROR_NOT_FOUND);
  assert_message_has (error, "ghost");
  g_clear_error (&error);

  g_assert_false (banger_store_vm_update (store, ghost, &error));
  g_assert_error (error, BANGER_ERROR, BANGER_ERROR_NOT_FOUND);
  assert_message_has (error, ghost->id);
  g_clear_error (&error);

  g_assert_false (banger_store_vm_delete (store, ghost->id, &error));
  g_assert_error (error, BANGER_ERROR, BANGER_ERROR_NOT_FOUND);
  assert_message_has (error, ghost->id);
  g_clear_error (&error);

  g_assert_false (banger_store_vm_insert (store, nameless, &error));
  g_assert_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
}

/* ---- leases ---- */

static void
test_lease (Fixture *fx, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (BangerStore) store = NULL;
  g_autoptr (BangerVmRecord) got = NULL;
  g_autoptr (BangerVmRecord) stale = NULL;
  g_autofree char *addr = NULL;
  const char *a = "000000000000000a";
  const char *b = "000000000000000b";

  store = banger_store_open (fx->path, &error);
  g_assert_no_error (error);
  insert_vm (store, a, "alpha", 1);
  insert_vm (store, b, "beta", 2);
  stale = banger_store_vm_get_by_id (store, a, &error);
  g_assert_no_error (error);

  /* No lease yet: get says so for a known VM and for an unknown one. */
  addr = banger_store_lease_get (store, a, &error);
  g_assert_null (addr);
  g_assert_error (error, BANGER_ERROR, BANGER_ERROR_NOT_FOUND);
  assert_message_has (error, a);
  g_clear_error (&error);

  g_assert_true (banger_store_lease_claim (store, a, "10.77.0.2", &error));
  g_assert_no_error (error);
  addr = banger_store_lease_get (store, a, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (addr, ==, "10.77.0.2");
  g_clear_pointer (&addr, g_free);
  got = banger_store_vm_get_by_id (store, a, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (got->ipv4, ==, "10.77.0.2");
  g_clear_pointer (&got, banger_vm_record_free);

  /* Claiming the same address again for the same VM is a no-op. */
  g_assert_true (banger_store_lease_claim (store, a, "10.77.0.2", &error));
  g_assert_no_error (error);

  /* Taken by another VM. */
  g_assert_false (banger_store_lease_claim (store, b, "10.77.0.2", &error));
  g_assert_error (error, BANGER_ERROR, BANGER_ERROR_EXISTS);
  assert_message_has (error, "10.77.0.2");
  assert_message_has (error, "alpha");
  g_clear_error (&error);

  /* One lease per VM. */
  g_assert_false (banger_store_lease_claim (store, a, "10.77.0.3", &error));
  g_assert_error (error, BANGER_ERROR, BANGER_ERROR_EXISTS);
  g_clear_error (&error);

  g_assert_false (banger_store_lease_claim (store, "00000000000000ff", "10.77.0.4", &error));
  g_assert_error (error, BANGER_ERROR, BANGER_ERROR_NOT_FOUND);
  assert_message_has (error, "00000000000000ff");
  g_clear_error (&error);

  /* A record read before the claim does not wipe the address on update. */
  g_assert_true (banger_store_vm_update (store, stale, &error));
  g_assert_no_error (error);
  addr = banger_store_lease_get (store, a, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (addr, ==, "10.77.0.2");
  g_clear_pointer (&addr, g_free);
  got = banger_store_vm_get_by_id (store, a, &error);
  g_assert_cmpstr (got->ipv4, ==, "10.77.0.2");
  g_clear_pointer (&got, banger_vm_record_free);

  /* Release frees the address for someone else. */
  g_assert_true (banger_store_lease_release (store, a, &error));
  g_assert_no_error (error);
  addr = banger_store_lease_get (store, a, &error);
  g_assert_null (addr);
  g_assert_error (error, BANGER_ERROR, BANGER_ERROR_NOT_FOUND);
  g_clear_error (&error);
  got = banger_store_vm_get_by_id (store, a, &error);
  g_assert_cmpstr (got->ipv4, ==, "");
  g_clear_pointer (&got, banger_vm_record_free);
  /* Releasing again is harmless; releasing for an unknown VM is not. */
  g_assert_true (banger_store_lease_release (store, a, &error));
  g_assert_no_error (error);
  g_assert_false (banger_store_lease_release (store, "00000000000000ff", &error));
  g_assert_error (error, BANGER_ERROR, BANGER_ERROR_NOT_FOUND);
  g_clear_error (&error);

  g_assert_true (banger_store_lease_claim (store, b, "10.77.0.2", &error));
  g_assert_no_error (error);
}

static void
test_lease_cascade (Fixture *fx, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (BangerStore) store = NULL;
  g_autoptr (BangerVmRecord) with_addr = make_vm ("000000000000000c", "gamma", 3);
  g_autoptr (BangerVmRecord) clash = make_vm ("000000000000000d", "delta", 4);
  g_autoptr (BangerVmRecord) got = NULL;
  g_autofree char *addr = NULL;
  sqlite3 *db;

  store = banger_store_open (fx->path, &error);
  g_assert_no_error (error);
  db = banger_store_get_db (store);
  insert_vm (store, "000000000000000a", "alpha", 1);
  insert_vm (store, "000000000000000b", "beta", 2);
  g_assert_true (banger_store_lease_claim (store, "000000000000000a", "10.77.0.2", &error));
  g_assert_true (banger_store_lease_claim (store, "000000000000000b", "10.77.0.3", &error));
  g_assert_no_error (error);

  g_assert_true (banger_store_vm_delete (store, "000000000000000a", &error));
  g_assert_no_error (error);
  g_assert_cmpint (raw_int (db, "SELECT count(*) FROM leases WHERE ipv4 = '10.77.0.2'"), ==, 0);
  g_assert_cmpint (raw_int (db, "SELECT count(*) FROM leases"), ==, 1);

  /* A record inserted with an address claims it in the same step, so the
   * freed address is available and a taken one refuses the whole insert. */
  g_free (with_addr->ipv4);
  with_addr->ipv4 = g_strdup ("10.77.0.2");
  g_assert_true (banger_store_vm_insert (store, with_addr, &error));
  g_assert_no_error (error);
  addr = banger_store_lease_get (store, with_addr->id, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (addr, ==, "10.77.0.2");

  g_free (clash->ipv4);
  clash->ipv4 = g_strdup ("10.77.0.3");
  g_assert_false (banger_store_vm_insert (store, clash, &error));
  g_assert_error (error, BANGER_ERROR, BANGER_ERROR_EXISTS);
  assert_message_has (error, "10.77.0.3");
  g_clear_error (&error);
  got = banger_store_vm_get_by_id (store, clash->id, &error);
  g_assert_null (got);
  g_assert_error (error, BANGER_ERROR, BANGER_ERROR_NOT_FOUND);
}

/* The VM watch (what the DNS cache follows): every committed change of a
 * name or lease is told once, in order, with what changed; a refused
 * claim, a no-op re-claim and a failed insert are not told. */
static void
record_change (const BangerStoreVmChange *c, gpointer user_data)
{
  GPtrArray *log = user_data;

  g_ptr_array_add (log, g_strdup_printf ("%s name=%s ipv4=%s%s", c->vm_id,
                                         c->name ? c->name : "-", c->ipv4 ? c->ipv4 : "-",
                                         c->removed ? " removed" : ""));
}

static void
test_vm_watch (Fixture *fx, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (BangerStore) store = NULL;
  g_autoptr (GPtrArray) log = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (BangerVmRecord) b = make_vm ("000000000000000b", "beta", 2);
  g_autoptr (BangerVmRecord) clash = make_vm ("000000000000000c", "gamma", 3);
  const char *want[] = {
    "000000000000000a name=alpha ipv4=",
    "000000000000000b name=beta ipv4=10.77.0.3",
    "000000000000000a name=- ipv4=10.77.0.2",
    "000000000000000b name=bravo ipv4=-",
    "000000000000000a name=- ipv4=",
    "000000000000000b name=- ipv4=- removed",
  };

  store = banger_store_open (fx->path, &error);
  g_assert_no_error (error);
  banger_store_set_vm_watch (store, record_change, log);
  insert_vm (store, "000000000000000a", "alpha", 1);
  g_free (b->ipv4);
  b->ipv4 = g_strdup ("10.77.0.3");
  g_assert_true (banger_store_vm_insert (store, b, &error));
  g_assert_no_error (error);
  g_assert_true (banger_store_lease_claim (store, "000000000000000a", "10.77.0.2", &error));
  g_assert_no_error (error);

  /* Not told: the same claim again, a taken address, an insert refused. */
  g_assert_true (banger_store_lease_claim (store, "000000000000000a", "10.77.0.2", &error));
  g_assert_false (banger_store_lease_claim (store, "000000000000000b", "10.77.0.2", &error));
  g_clear_error (&error);
  g_free (clash->ipv4);
  clash->ipv4 = g_strdup ("10.77.0.2");
  g_assert_false (banger_store_vm_insert (store, clash, &error));
  g_clear_error (&error);

  g_free (b->name);
  b->name = g_strdup ("bravo");
  g_assert_true (banger_store_vm_update (store, b, &error));
  g_assert_no_error (error);
  g_assert_true (banger_store_lease_release (store, "000000000000000a", &error));
  g_assert_no_error (error);
  g_assert_true (banger_store_vm_delete (store, "000000000000000b", &error));
  g_assert_no_error (error);

  g_assert_cmpuint (log->len, ==, G_N_ELEMENTS (want));
  for (guint i = 0; i < log->len; i++)
    g_assert_cmpstr (g_ptr_array_index (log, i), ==, want[i]);

  /* Removed: nothing more is told. */
  banger_store_set_vm_watch (store, NULL, NULL);
  insert_vm (store, "000000000000000d", "delta", 4);
  g_assert_cmpuint (log->len, ==, G_N_ELEMENTS (want));
}

static void
test_reopen (Fixture *fx, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (BangerStore) store = NULL;
  g_autoptr (BangerVmRecord) dev = make_vm ("00000000000000aa", "dev", 10);
  g_autoptr (BangerVmRecord) got = NULL;
  g_autoptr (GPtrArray) list = NULL;
  g_autofree char *addr = NULL;

  store = banger_store_open (fx->path, &error);
  g_assert_no_error (error);
  g_assert_true (banger_store_vm_insert (store, dev, &error));
  insert_vm (store, "00000000000000bb", "db", 20);
  g_assert_true (banger_store_lease_claim (store, dev->id, "10.77.0.7", &error));
  g_assert_no_error (error);
  g_clear_pointer (&store, banger_store_free);

  store = banger_store_open (fx->path, &error);
  g_assert_no_error (error);
  list = banger_store_vm_list (store, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (list->len, ==, 2);
  g_free (dev->ipv4);
  dev->ipv4 = g_strdup ("10.77.0.7");
  got = banger_store_vm_get_by_name (store, "dev", &error);
  g_assert_no_error (error);
  assert_vm_equal (got, dev);
  addr = banger_store_lease_get (store, dev->id, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (addr, ==, "10.77.0.7");
}

/* "Which VMs use this image/kernel" and "which images use this kernel" are
 * store queries (DeleteImage, DeleteKernel, UsedBy): oldest first, empty
 * when nothing uses it. */
static void
test_used_by (Fixture *fx, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (BangerStore) store = banger_store_open (fx->path, &error);
  g_autoptr (BangerVmRecord) a = make_vm ("000000000000000a", "zeta", 300);
  g_autoptr (BangerVmRecord) b = make_vm ("000000000000000b", "beta", 100);
  g_autoptr (BangerVmRecord) c = make_vm ("000000000000000c", "alpha", 300);
  g_autoptr (BangerImageRecord) img = banger_image_record_new ();
  g_auto (GStrv) names = NULL;

  g_assert_no_error (error);
  g_free (c->image);
  c->image = g_strdup ("other");
  g_free (c->kernel);
  c->kernel = g_strdup ("other");
  for (BangerVmRecord **r = (BangerVmRecord *[]){ a, b, c, NULL }; *r != NULL; r++) {
    g_assert_true (banger_store_vm_insert (store, *r, &error));
    g_assert_no_error (error);
  }
  g_free (img->id);
  img->id = g_strdup ("00000000000000f1");
  g_free (img->name);
  img->name = g_strdup ("debian-12");
  g_free (img->kernel);
  img->kernel = g_strdup ("6.1.0-28-cloud-amd64");
  g_assert_true (banger_store_image_insert (store, img, &error));
  g_assert_no_error (error);

  names = banger_store_vm_names_using_image (store, "debian-12", &error);
  g_assert_no_error (error);
  g_assert_true (g_strv_equal ((const char *const *)names, (const char *const[]){ "beta", "zeta", NULL }));
  g_clear_pointer (&names, g_strfreev);
  names = banger_store_vm_names_using_kernel (store, "other", &error);
  g_assert_no_error (error);
  g_assert_true (g_strv_equal ((const char *const *)names, (const char *const[]){ "alpha", NULL }));
  g_clear_pointer (&names, g_strfreev);
  names = banger_store_image_names_using_kernel (store, "6.1.0-28-cloud-amd64", &error);
  g_assert_no_error (error);
  g_assert_true (g_strv_equal ((const char *const *)names, (const char *const[]){ "debian-12", NULL }));
  g_clear_pointer (&names, g_strfreev);
  names = banger_store_vm_names_using_image (store, "nobody", &error);
  g_assert_no_error (error);
  g_assert_nonnull (names);
  g_assert_null (names[0]);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

#define ADD(path, fn) g_test_add (path, Fixture, NULL, fixture_setup, fn, fixture_teardown)
  ADD ("/db/fresh", test_fresh);
  ADD ("/db/loose-mode", test_loose_mode_tightened);
  ADD ("/db/upgrade-from-1", test_upgrade_from_1);
  ADD ("/db/future", test_future);
  ADD ("/db/corrupt-garbage", test_corrupt_garbage);
  ADD ("/db/corrupt-truncated", test_corrupt_truncated);
  ADD ("/db/corrupt-page", test_corrupt_page);
  ADD ("/db/not-banger", test_not_banger);
  ADD ("/db/failing-migration", test_failing_migration);
  ADD ("/db/check-pending", test_check_pending);
  ADD ("/db/check-missing", test_check_missing);
  ADD ("/vm/crud", test_vm_crud);
  ADD ("/vm/duplicate", test_vm_duplicate);
  ADD ("/vm/unknown", test_vm_unknown);
  ADD ("/vm/used-by", test_used_by);
  ADD ("/lease/claim-release", test_lease);
  ADD ("/lease/cascade", test_lease_cascade);
  ADD ("/vm/watch", test_vm_watch);
  ADD ("/state/reopen", test_reopen);
#undef ADD

  return g_test_run ();
}
