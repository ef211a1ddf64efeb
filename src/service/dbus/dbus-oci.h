#pragma once

#include "banger-dbus.h"
#include "engine.h"

G_BEGIN_DECLS

/* The Manager's PullImage, ListCache and PruneCache (image-pull.h is the
 * engine side). */
void banger_dbus_oci_attach (BangerManager *skeleton, BangerEngine *engine);

G_END_DECLS
