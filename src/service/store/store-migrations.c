/* The store's forward-only schema migrations, in order (store-migrations.h). */
#include "store-migrations.h"

/* STRICT tables (SQLite >= 3.37) so a column typed INTEGER never silently
 * keeps a string: the C side reads every column with a fixed type. Text
 * columns are NOT NULL and use "" for "none", as the C records do. */
static const BangerStoreMigration migrations[] = {
  {
      "vms and leases",
      /* The application id is set by the first step so that every banger
       * database at version >= 1 carries it. */
      "PRAGMA application_id = 1112426322;" /* BANGER_STORE_APPLICATION_ID */
      "CREATE TABLE vms ("
      "  id TEXT PRIMARY KEY NOT NULL CHECK (id <> ''),"
      "  name TEXT NOT NULL UNIQUE CHECK (name <> ''),"
      "  state TEXT NOT NULL,"
      "  driver TEXT NOT NULL,"
      "  image TEXT NOT NULL,"
      "  kernel TEXT NOT NULL,"
      "  vcpus INTEGER NOT NULL,"
      "  memory_mib INTEGER NOT NULL,"
      "  disk_mib INTEGER NOT NULL,"
      "  ipv4 TEXT NOT NULL,"
      "  mac TEXT NOT NULL,"
      "  pid INTEGER NOT NULL,"
      "  created_at INTEGER NOT NULL,"
      "  started_at INTEGER NOT NULL,"
      "  agent_version TEXT NOT NULL,"
      "  boot_id TEXT NOT NULL,"
      "  disk_mode TEXT NOT NULL,"
      "  last_error TEXT NOT NULL"
      ") STRICT;"
      /* One lease per VM (vm_id is the key) and one VM per address. The
       * cascade means deleting a VM can never leave its address claimed. */
      "CREATE TABLE leases ("
      "  vm_id TEXT PRIMARY KEY NOT NULL REFERENCES vms (id) ON DELETE CASCADE,"
      "  ipv4 TEXT NOT NULL UNIQUE CHECK (ipv4 <> ''),"
      "  claimed_at INTEGER NOT NULL"
      ") STRICT;",
  },
  {
      "images and kernels",
      /* What org.banger.Image and org.banger.Kernel expose. UsedBy is not
       * stored: it is vms.image. config is the OCI config kept for "vm run"
       * as a JSON object (entrypoint, cmd, env, workdir, user). */
      "CREATE TABLE images ("
      "  id TEXT PRIMARY KEY NOT NULL CHECK (id <> ''),"
      "  name TEXT NOT NULL UNIQUE CHECK (name <> ''),"
      "  source TEXT NOT NULL,"
      "  digest TEXT NOT NULL DEFAULT '',"
      "  size_bytes INTEGER NOT NULL DEFAULT 0,"
      "  kernel TEXT NOT NULL DEFAULT '',"
      "  created_at INTEGER NOT NULL,"
      "  config TEXT NOT NULL DEFAULT '{}'"
      ") STRICT;"
      "CREATE TABLE kernels ("
      "  id TEXT PRIMARY KEY NOT NULL CHECK (id <> ''),"
      "  name TEXT NOT NULL UNIQUE CHECK (name <> ''),"
      "  version TEXT NOT NULL,"
      "  source TEXT NOT NULL,"
      "  path TEXT NOT NULL,"
      "  vmlinux_path TEXT NOT NULL DEFAULT '',"
      "  initrd_path TEXT NOT NULL DEFAULT '',"
      "  created_at INTEGER NOT NULL"
      ") STRICT;",
  },
};

G_STATIC_ASSERT (BANGER_STORE_APPLICATION_ID == 1112426322);

const BangerStoreMigration *
banger_store_migrations (guint *n_migrations)
{
  *n_migrations = G_N_ELEMENTS (migrations);
  return migrations;
}
