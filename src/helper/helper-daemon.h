#pragma once

#include <gio/gio.h>

#include "helper-config.h"

G_BEGIN_DECLS

/* bangerd-root's D-Bus side: owns org.banger.Helper, exports
 * /org/banger/Helper, routes every call through the authorizer and then
 * to the network code, and exits when idle. */
typedef struct _BangerHelperDaemon BangerHelperDaemon;

/* Takes @config. @idle_timeout 0: never exit when idle. */
BangerHelperDaemon *banger_helper_daemon_new (BangerHelperConfig *config, guint idle_timeout,
                                              gboolean replace, GError **error);
void banger_helper_daemon_free (BangerHelperDaemon *daemon);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BangerHelperDaemon, banger_helper_daemon_free)

/* Runs until a signal, the idle timeout or the loss of the name; lets
 * calls in flight finish. Returns the process exit status. */
int banger_helper_daemon_run (BangerHelperDaemon *daemon);

/* bangerd-root --self-check: with @config loaded, reaches the system bus
 * and polkitd the way the daemon would, then prints "bangerd-root
 * VERSION". The old helper runs the new one so after an update's swap
 * (install-release.c). */
gboolean banger_helper_self_check (const BangerHelperConfig *config, GError **error);

G_END_DECLS
