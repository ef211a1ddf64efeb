#pragma once

#include "banger-dbus.h"
#include "engine.h"

G_BEGIN_DECLS

/* org.banger.Manager.PlanUpdate: what `banger update` would do, for
 * `banger update --dry-run` (docs/update.md). The manifest, SHA256SUMS and
 * its signature are fetched and the signature verified; the tarball is
 * never downloaded and nothing is written. */
void banger_update_plan_attach (BangerManager *skeleton, BangerEngine *engine);

G_END_DECLS
