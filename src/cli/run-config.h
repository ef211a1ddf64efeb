#pragma once

#include <gio/gio.h>

#include "banger-dbus.h"

G_BEGIN_DECLS

/* What `vm run IMAGE` without a command runs: the image's own command, from
 * its OCI config (org.banger.Image.Config), as Docker would run it. */
typedef struct {
  char **argv;   /* entrypoint followed by cmd; NULL when the image names none */
  char **env;    /* KEY=VALUE, or NULL */
  char *workdir; /* or NULL */
  char *user;    /* "user[:group]" when not root, else NULL */
} BangerRunConfig;

void banger_run_config_clear (BangerRunConfig *rc);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (BangerRunConfig, banger_run_config_clear)

/* Reads @config (a{sv}: entrypoint, cmd, env as; workdir, user s) into
 * @rc. Returns TRUE when it names a command to run. */
gboolean banger_run_config_parse (GVariant *config, BangerRunConfig *rc);

/* Whether @user ("", "root", "0", "0:0", "root:root", …) means root. */
gboolean banger_run_config_user_is_root (const char *user);

/* @rc->argv made to run as @rc->user in @vm (called @name): through the
 * guest's setpriv when it has one that can change ids, else through su;
 * with neither, a warning on stderr and @rc->argv unchanged (run as root).
 * Looks at the guest with short, silent Exec probes. */
char **banger_run_config_user_argv (BangerVM *vm, const char *name, const BangerRunConfig *rc);

G_END_DECLS
