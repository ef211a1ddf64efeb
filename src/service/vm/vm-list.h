#pragma once

#include <glib-object.h>

#include "banger-config.h"
#include "image-list.h"
#include "store.h"

G_BEGIN_DECLS

/* BangerVmList: VM records over the store, the configured defaults, and the
 * rules for creating and removing VMs. It knows nothing about D-Bus (the
 * glue in dbus/ listens to its signals), so it can be driven without a bus.
 *
 * Signals (all on the main thread):
 *   "vm-added"   (const BangerVmRecord *rec)  — a VM record was created
 *   "vm-changed" (const BangerVmRecord *rec)  — a VM record was updated
 *   "vm-removed" (const char *name)            — a VM record was deleted */
#define BANGER_TYPE_VM_LIST (banger_vm_list_get_type ())
G_DECLARE_FINAL_TYPE (BangerVmList, banger_vm_list, BANGER, VM_LIST, GObject)

/* Made once by the engine; @store is the engine's and outlives the list. A
 * new VM's image and kernel are checked against @images. */
BangerVmList *banger_vm_list_new (BangerConfig *config, BangerStore *store,
                                  BangerImageList *images);

const char *banger_vm_list_get_data_dir (BangerVmList *self);
const char *banger_vm_list_get_default_image (BangerVmList *self);
const char *banger_vm_list_get_default_kernel (BangerVmList *self);

/* All VM records, oldest first (element type BangerVmRecord). */
GPtrArray *banger_vm_list_list_vms (BangerVmList *self, GError **error);
BangerVmRecord *banger_vm_list_find_vm (BangerVmList *self, const char *name, GError **error);

/* Validates @spec (a CreateVM a{sv}), records a VM in state "created" and
 * emits "vm-added". InvalidArgument for a bad spec, Exists for a taken name. */
BangerVmRecord *banger_vm_list_create_vm (BangerVmList *self, GVariant *spec, GError **error);

/* Removes the record of the VM called @name. A VM that is starting, running
 * or stopping is refused with BadState: a forced Delete goes through the VM
 * runtime, which ends the VMM first. */
gboolean banger_vm_list_delete_vm (BangerVmList *self, const char *name, GError **error);

/* Removes every VM that is not starting, running or stopping; returns the
 * names removed (possibly none). */
GStrv banger_vm_list_prune_vms (BangerVmList *self, GError **error);

/* The store (main thread only): the VM runtime claims and releases leases
 * through it. */
BangerStore *banger_vm_list_get_store (BangerVmList *self);

/* Writes @rec (found by its id) back to the store and emits "vm-changed",
 * so the VM's D-Bus properties announce what changed. The VM runtime's
 * state transitions go through here. */
gboolean banger_vm_list_update_vm (BangerVmList *self, const BangerVmRecord *rec, GError **error);

/* TRUE for the states in which a VMM process may exist. */
gboolean banger_vm_state_is_active (const char *state);

/* The VM's MAC address: 52:54 followed by the first four bytes of @id. 0x52
 * has the locally-administered bit set and the multicast bit clear, and
 * deriving it from the id keeps it stable across restarts without storing
 * anything else. */
char *banger_vm_mac_from_id (const char *id);

G_END_DECLS
