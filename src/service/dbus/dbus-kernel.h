#pragma once

#include "banger-dbus.h"
#include "engine.h"

G_BEGIN_DECLS

/* One org.banger.Kernel object per kernel (/org/banger/Manager/kernels/<escaped
 * name>), and the Manager's ImportKernel and DeleteKernel methods. */
void banger_dbus_kernels_attach (BangerManager *skeleton, GDBusObjectManagerServer *object_manager,
                                 BangerEngine *engine);

char *banger_dbus_kernel_object_path (const char *name);

G_END_DECLS
