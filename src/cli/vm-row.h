#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* One VM as `vm list` shows it: a ListVMRows row, or read from its
 * org.banger.VM properties in a GetManagedObjects reply (--json).
 *
 * The a{sv} is walked once and the columns kept: a g_variant_lookup() per
 * column walks it again each time (8 walks of 18 entries per VM, a
 * quarter of `vm list`'s time with 1,000 VMs). */
typedef struct {
  GVariant *properties; /* a{sv}, every property (for --json); NULL from ListVMRows */
  char *name;
  char *state;
  char *image;
  char *ipv4;
  guint vcpus;
  guint memory_mib;
  guint disk_mib;
  guint64 created_at;
} BangerVmRow;

/* @properties: a{sv} of org.banger.VM; a property it lacks (or of
 * another type) reads as NULL / 0, as a proxy's getter reads it. */
BangerVmRow *banger_vm_row_new (GVariant *properties);
/* A row from ListVMRows' columns (no properties). */
BangerVmRow *banger_vm_row_new_columns (const char *name, const char *state, const char *image,
                                        const char *ipv4, guint vcpus, guint memory_mib,
                                        guint disk_mib, guint64 created_at);
void banger_vm_row_free (BangerVmRow *row);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BangerVmRow, banger_vm_row_free)

/* Oldest first, then by name: the order `vm list` prints. For
 * g_ptr_array_sort() of BangerVmRow pointers. */
int banger_vm_row_compare (gconstpointer a, gconstpointer b);

G_END_DECLS
