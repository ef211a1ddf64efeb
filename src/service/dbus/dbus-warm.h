#pragma once

#include "banger-dbus.h"
#include "engine.h"

G_BEGIN_DECLS

/* The Manager's ListWarmSnapshots and PruneWarmSnapshots (warm-cache.h is
 * the engine side; docs/warm-start.md). */
void banger_dbus_warm_attach (BangerManager *skeleton, BangerEngine *engine);

G_END_DECLS
