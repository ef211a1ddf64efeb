#pragma once

#include "banger-dbus.h"
#include "engine.h"

G_BEGIN_DECLS

/* Manager.CheckUpdate and Manager.Update (update-job.c does the work). */
void banger_dbus_update_attach (BangerManager *skeleton, BangerEngine *engine);

G_END_DECLS
