#pragma once

#include "banger-dbus.h"

G_BEGIN_DECLS

/* The org.banger.VM skeleton of a VM object, with its properties as one
 * a{sv} kept between changes.
 *
 * GetManagedObjects asks every interface of every object for all its
 * properties. The generated skeleton answers by looking each property up
 * by name, reading it through a GValue and converting it to a variant:
 * with 1,000 VMs that was 18,000 lookups and some 200,000 allocations per
 * call, most of the call's time. This one builds the same a{sv} (through
 * the generated code, so it cannot differ from it) the first time it is
 * asked, and again only after a property changed: the skeleton's "notify"
 * drops it, synchronously, in the setter that changed the value, so a
 * GetManagedObjects never sees an older value than Properties.Get does. */
#define BANGER_TYPE_DBUS_VM_SKELETON (banger_dbus_vm_skeleton_get_type ())
G_DECLARE_FINAL_TYPE (BangerDbusVmSkeleton, banger_dbus_vm_skeleton, BANGER, DBUS_VM_SKELETON,
                      BangerVMSkeleton)

BangerVM *banger_dbus_vm_skeleton_new (void);

G_END_DECLS
