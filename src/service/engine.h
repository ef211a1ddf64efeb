#pragma once

#include "banger-config.h"
#include "console-log.h"
#include "dns-responder.h"
#include "helper-client.h"
#include "image-list.h"
#include "update-job.h"
#include "kernel-list.h"
#include "store.h"
#include "vm-list.h"
#include "vm-runtime.h"

G_BEGIN_DECLS

/* BangerEngine: bangerd's composition root. It creates every part once, in
 * layer order, and hands each one what it needs at construction (the config,
 * the store, the helper client, the kernel list…); no part looks another up
 * or calls back up. The D-Bus glue (dbus/) is given the engine and reads the
 * parts from its fields; the engine itself knows nothing about D-Bus, so
 * tests drive it without a bus. Main thread only, except where a part says
 * otherwise. */
typedef struct {
  BangerConfig *config;
  BangerStore *store;
  BangerHelperClient *helper;  /* the one client of bangerd-root */
  BangerJobList *jobs;         /* every running job */
  BangerKernelList *kernels;   /* kernels: imports, pulls */
  BangerImageList *images;     /* images, their jobs; boots from @kernels */
  BangerVmList *vms;           /* VM records; signals for the D-Bus glue */
  BangerDnsResponder *dns;     /* <name>.vm on 127.0.0.1 */
  BangerVmRuntime *runtime;    /* VMMs: start, stop, exec, copy */
  BangerConsoleWatch *console; /* caps running guests' console logs */
  GHashTable *active_vms;      /* names of the VMs whose VMM may run: @console's switch */
  BangerReleaseSource release; /* where releases come from: main.c sets it */
} BangerEngine;

/* Opens (creating and migrating) the store at @db_path under @data_dir and
 * reads @config_path (NULL or missing: the built-in defaults). The DNS
 * responder and console watch start only with banger_engine_start_services(). */
BangerEngine *banger_engine_new (const char *data_dir, const char *db_path, const char *config_path,
                                 GError **error);
void banger_engine_free (BangerEngine *self);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BangerEngine, banger_engine_free)

/* What only the daemon runs (tests of the engine leave them off): the DNS
 * responder on the configured port and the console log watch, which then
 * ticks only while some VM may have a VMM (its states are followed through
 * the VM list's signals). */
void banger_engine_start_services (BangerEngine *self);

/* Gives back the memory a burst of work left cached or free but resident
 * (SQLite's page cache, free heap pages): main.c calls it once start-up is
 * over (docs/performance.md). Changes no state. */
void banger_engine_release_memory (BangerEngine *self);

/* The release key (PEM, "" for none) and manifest URL of this executable
 * (update-key.h): main.c passes them in once, before the bus name is owned;
 * a test engine without them has none (Update is then Unsupported). */
void banger_engine_set_release (BangerEngine *self, const char *pubkey_pem,
                                const char *manifest_url);

G_END_DECLS
