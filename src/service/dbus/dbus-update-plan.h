#pragma once

#include "banger-dbus.h"
#include "engine.h"

G_BEGIN_DECLS

/* org.banger.Manager.PlanUpdate: what `banger update` would do, for
 * `banger update --dry-run` (docs/update.md). The manifest, SHA256SUMS and
 * its signature are fetched and the signature verified; the tarball is
 * never downloaded and nothing is written. */
/* The options Update and PlanUpdate share: checks @options against
 * @allowed and that "to", when given, is a version (X.Y.Z or vX.Y.Z). On a
 * refusal replies to @invocation and returns FALSE; otherwise *@version is
 * the version without its "v", or NULL for the latest release. One
 * function, so the plan and the update never read a request differently. */
gboolean banger_dbus_update_target (GDBusMethodInvocation *invocation, GVariant *options,
                                    const char *const *allowed, char **version);

void banger_update_plan_attach (BangerManager *skeleton, BangerEngine *engine);

G_END_DECLS
