#pragma once

#include "store.h"

G_BEGIN_DECLS

/* Deterministic IPv4 leases in the bridge's subnet: the first candidate is
 * a hash of the VM id, collisions probe forward; the claim is kept in the
 * store (unique address), released when the VM stops for good or is
 * deleted. @subnet is the bridge's address in CIDR form ("10.77.0.1/24"):
 * the network, broadcast and bridge addresses are never handed out. A VM
 * that already holds a lease gets the same address back. */
char *banger_lease_acquire (BangerStore *store, const char *vm_id, const char *subnet,
                            GError **error);

/* The same, skipping the addresses in @taken (addresses other users' VMs
 * hold, which this user's store cannot know: the helper says so). */
char *banger_lease_acquire_excluding (BangerStore *store, const char *vm_id, const char *subnet,
                                      const char *const *taken, GError **error);

/* Parses "a.b.c.d/len" into host-order address and prefix length. */
gboolean banger_parse_cidr (const char *cidr, guint32 *address, guint *prefix, GError **error);

/* The candidate a VM id maps to first (exposed for tests). */
guint32 banger_lease_first_candidate (const char *vm_id, guint32 network, guint prefix);

G_END_DECLS
