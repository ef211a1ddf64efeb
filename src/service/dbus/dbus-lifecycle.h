#pragma once

#include "banger-dbus.h"
#include "engine.h"

G_BEGIN_DECLS

/* The Manager's PromoteVM (vm-promote.h) and PullKernel (kernel-pull.h):
 * each validates its options, learns the caller's uid and returns the job's
 * path at once. */
void banger_dbus_lifecycle_attach (BangerManager *skeleton, BangerEngine *engine);

G_END_DECLS
