#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* What an installation of banger says about itself, read the same way by
 * the CLI (`system status`) and bangerd (`doctor`): root's helper.conf and
 * the install record `banger update` writes. */

/* [group] key of helper.conf ($BANGER_HELPER_CONF, else BANGER_SYSCONFDIR
 * "/helper.conf"), stripped; NULL when the file or the key is missing. */
char *banger_helper_conf_string (const char *group, const char *key);

/* The install record: helper.conf's [update] install_toml, else
 * BANGER_SYSCONFDIR "/install.toml". */
char *banger_install_record_path (void);

/* The `version = "X"` of the install record at @path: NULL without the
 * file, "" when it names no version. The helper writes the file in one
 * fixed shape (docs/update.md), so this is no TOML parser. */
char *banger_install_record_version (const char *path);

G_END_DECLS
