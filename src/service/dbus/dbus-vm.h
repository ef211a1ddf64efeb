#pragma once

#include "banger-dbus.h"
#include "engine.h"

G_BEGIN_DECLS

/* One org.banger.VM object per VM record. The object only mirrors the record
 * and forwards method calls to the engine; it holds no state of its own. */

/* /org/banger/Manager/vms/<g_dbus_escape_object_path(name)> */
char *banger_dbus_vm_object_path (const char *name);

/* A new object skeleton for @rec, its methods handled through @engine (which
 * must outlive it). Methods this build lacks answer Unsupported. */
BangerObjectSkeleton *banger_dbus_vm_new (BangerEngine *engine, const BangerVmRecord *rec);

/* Copies @rec into the object's properties; only changed values are
 * announced, batched into one PropertiesChanged by the skeleton. */
void banger_dbus_vm_update (BangerObjectSkeleton *object, const BangerVmRecord *rec);

G_END_DECLS
