#pragma once

#include "banger-dbus.h"
#include "engine.h"

G_BEGIN_DECLS

/* One org.banger.Job object per job of the engine's job list, at
 * /org/banger/Manager/jobs/<n>, exported through @object_manager when the
 * job starts and unexported a minute after it completes (so a client that
 * looks late still sees how it ended). */
void banger_dbus_jobs_attach (BangerManager *skeleton, GDBusObjectManagerServer *object_manager,
                              BangerEngine *engine);

char *banger_dbus_job_object_path (guint number);

G_END_DECLS
