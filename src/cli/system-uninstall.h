#pragma once

#include <gio/gio.h>

#include "system-install.h"

G_BEGIN_DECLS

/* `banger system uninstall`: undoes `system install` (docs/cli.md). */

typedef struct {
  gboolean purge;      /* also delete group banger */
  gboolean purge_data; /* also the members' banger data, images and VMs */
  gboolean force;      /* even while VMs run (their VMMs keep running) */
  const char *data_dir;
} BangerSystemUninstallOptions;

/* Prints what it does to stdout. Returns FALSE with @error when it
 * refuses (VMs run) or cannot start; a step that fails is printed and
 * sets *@failed. */
gboolean banger_system_uninstall_run (const BangerSystemUninstallOptions *options,
                                      gboolean *failed, GError **error);

/* Where install records what it changed for whom (group membership,
 * linger), so uninstall undoes only that. */
#define BANGER_SYSTEM_STATE_DIR  "/var/lib/banger"
#define BANGER_SYSTEM_STATE_FILE BANGER_SYSTEM_STATE_DIR "/system-install.ini"

/* Adds what @install did for its user to the state file. */
gboolean banger_system_install_record (const BangerSystemInstall *install, GError **error);

G_END_DECLS
