#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* bangerd's state: SQLite in WAL mode with foreign keys, forward-only
 * migrations keyed on PRAGMA user_version (store-migrations.c). All calls
 * happen on the daemon's main thread. Errors are BANGER_ERROR. */
typedef struct _BangerStore BangerStore;

typedef struct {
  char *id;    /* 16 hex digits, primary key */
  char *name;  /* unique */
  char *state; /* created|starting|running|stopping|stopped|error */
  char *driver;
  char *image;
  char *kernel;
  guint vcpus;
  guint memory_mib;
  guint disk_mib;
  char *ipv4; /* "" without lease */
  char *mac;
  guint pid;
  gint64 created_at; /* unix seconds */
  gint64 started_at;
  char *agent_version;
  char *boot_id;
  char *disk_mode;
  char *last_error;
} BangerVmRecord;

BangerVmRecord *banger_vm_record_new (void); /* all strings "", numbers 0 */
BangerVmRecord *banger_vm_record_copy (const BangerVmRecord *rec);
void banger_vm_record_free (BangerVmRecord *rec);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BangerVmRecord, banger_vm_record_free)

/* The schema version this binary writes (the number of migrations). */
int banger_store_schema_version (void);

/* Opens (creating if needed) and migrates the database at @path. Fails,
 * without changing anything, if the database is newer than this binary or
 * is not a banger database / not SQLite at all. */
BangerStore *banger_store_open (const char *path, GError **error);
void banger_store_free (BangerStore *store);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BangerStore, banger_store_free)

/* Gives back the memory of SQLite's page cache (the pages no statement
 * holds): for when a burst of work is over. Changes nothing stored. */
void banger_store_release_memory (BangerStore *store);

/* bangerd --check-migrations: TRUE if this binary can run on @path (a
 * missing file counts as yes). Pending migrations are applied inside a
 * transaction that is always rolled back, so the file is never changed. The
 * error says why not (newer than this binary, corrupt, a migration fails). */
gboolean banger_store_check_migrations (const char *path, GError **error);

/* VM records. Insert fails with BANGER_ERROR_EXISTS on a duplicate name or id;
 * get/update/delete fail with BANGER_ERROR_NOT_FOUND.
 * The ipv4 field is owned by the lease calls: get/list report the VM's
 * lease ("" without one); insert with a non-empty ipv4 claims that lease in
 * the same transaction (EXISTS if the address is taken, and then no VM is
 * inserted); update never changes it, so a record read before a claim or
 * release cannot undo it. An empty id or name is BANGER_ERROR_INVALID_ARGUMENT. */
gboolean banger_store_vm_insert (BangerStore *store, const BangerVmRecord *rec, GError **error);
gboolean banger_store_vm_update (BangerStore *store, const BangerVmRecord *rec, GError **error);
gboolean banger_store_vm_delete (BangerStore *store, const char *id, GError **error);
BangerVmRecord *banger_store_vm_get_by_name (BangerStore *store, const char *name, GError **error);
BangerVmRecord *banger_store_vm_get_by_id (BangerStore *store, const char *id, GError **error);
/* All VMs ordered by created_at, then name; element type BangerVmRecord. */
GPtrArray *banger_store_vm_list (BangerStore *store, GError **error);

/* IPv4 leases (one per VM, unique address). A lease goes away with its VM.
 * claim: re-claiming the address the VM already holds succeeds; a second,
 * different address for the same VM is EXISTS; an unknown VM is NOT_FOUND.
 * release: succeeds if the VM holds no lease; NOT_FOUND for an unknown VM.
 * get: NOT_FOUND if the VM is unknown or holds no lease. */
gboolean banger_store_lease_claim (BangerStore *store, const char *vm_id, const char *ipv4,
                                   GError **error); /* EXISTS if the address is taken */
gboolean banger_store_lease_release (BangerStore *store, const char *vm_id, GError **error);
char *banger_store_lease_get (BangerStore *store, const char *vm_id, GError **error);

/* Watching VM names and leases: told, on the main thread, after every
 * committed change of a VM's name or lease (insert, update, delete, claim,
 * release), before the call that made it returns. The DNS responder's cache
 * (net/dns-cache.c) keeps itself in step with it, so no lookup ever has to
 * read the database. */
typedef struct {
  const char *vm_id;
  const char *name; /* the VM's name now; NULL: this call did not set it */
  const char *ipv4; /* its lease now ("" none); NULL: this call did not change it */
  gboolean removed; /* the VM is gone, and its lease with it */
} BangerStoreVmChange;

typedef void (*BangerStoreVmWatch) (const BangerStoreVmChange *change, gpointer user_data);

/* One watcher at a time; @func NULL removes it. Setting a second one while
 * one is set is a programming error (a critical). */
void banger_store_set_vm_watch (BangerStore *store, BangerStoreVmWatch func, gpointer user_data);

G_END_DECLS
