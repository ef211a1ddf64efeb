#pragma once

#include <glib-object.h>

#include "store.h"

G_BEGIN_DECLS

/* bangerd's engine: VM records over the store, the configured defaults, and
 * the rules for creating and removing VMs. It knows nothing about D-Bus (the
 * glue in dbus-*.c listens to its signals), so it can be driven without a
 * bus. The type is BangerEngine because BangerManager is the name gdbus-codegen
 * gives the org.banger.Manager interface.
 *
 * Signals (all on the main thread):
 *   "vm-added"   (const BangerVmRecord *rec)  — a VM record was created
 *   "vm-changed" (const BangerVmRecord *rec)  — a VM record was updated
 *   "vm-removed" (const char *name)            — a VM record was deleted */
#define BANGER_TYPE_ENGINE (banger_engine_get_type ())
G_DECLARE_FINAL_TYPE (BangerEngine, banger_engine, BANGER, ENGINE, GObject)

#define BANGER_DEFAULT_IMAGE  "minimal"
#define BANGER_DEFAULT_KERNEL "default"

/* Opens (creating and migrating) the store at @db_path and reads the
 * defaults from the key file @config_path ([defaults] image=, kernel=; a
 * missing file means the built-in defaults). */
BangerEngine *banger_engine_new (const char *data_dir, const char *db_path, const char *config_path,
                                 GError **error);

const char *banger_engine_get_data_dir (BangerEngine *self);
const char *banger_engine_get_default_image (BangerEngine *self);
const char *banger_engine_get_default_kernel (BangerEngine *self);

/* All VM records, oldest first (element type BangerVmRecord). */
GPtrArray *banger_engine_list_vms (BangerEngine *self, GError **error);
BangerVmRecord *banger_engine_find_vm (BangerEngine *self, const char *name, GError **error);

/* Validates @spec (a CreateVM a{sv}), records a VM in state "created" and
 * emits "vm-added". InvalidArgument for a bad spec, Exists for a taken name. */
BangerVmRecord *banger_engine_create_vm (BangerEngine *self, GVariant *spec, GError **error);

/* Removes the VM called @name. A VM that is starting, running or stopping is
 * refused with BadState unless @force. */
gboolean banger_engine_delete_vm (BangerEngine *self, const char *name, gboolean force,
                                  GError **error);

/* Removes every VM that is not starting, running or stopping; returns the
 * names removed (possibly none). */
GStrv banger_engine_prune_vms (BangerEngine *self, GError **error);

/* The store (main thread only): the VM runtime claims and releases leases
 * through it. */
BangerStore *banger_engine_get_store (BangerEngine *self);

/* Writes @rec (found by its id) back to the store and emits "vm-changed",
 * so the VM's D-Bus properties announce what changed. The VM runtime's
 * state transitions go through here. */
gboolean banger_engine_update_vm (BangerEngine *self, const BangerVmRecord *rec, GError **error);

/* TRUE for the states in which a VMM process may exist. */
gboolean banger_vm_state_is_active (const char *state);

/* The VM's MAC address: 52:54 followed by the first four bytes of @id. 0x52
 * has the locally-administered bit set and the multicast bit clear, and
 * deriving it from the id keeps it stable across restarts without storing
 * anything else. */
char *banger_vm_mac_from_id (const char *id);

G_END_DECLS
