#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* BangerConfig: bangerd's one reader of $XDG_CONFIG_HOME/banger/config (a
 * key file; docs/cli.md, Configuration). Every part that has a setting gets
 * it from here, handed down by the composition root (engine.c), instead of
 * opening the file itself.
 *
 * Settings that size or place what bangerd runs ([defaults], [dns] port,
 * [firecracker]) are read once, at bangerd's start: a change applies from
 * its next start. The two that only steer a later download ([registries]
 * insecure, [catalog] url) are read again on each use, as they always were,
 * so a user can point a pull at another registry without a restart.
 *
 * A broken value is reported once and replaced by its default: a typo in the
 * file never locks the user out of their VMs. Immutable after load (the
 * "live" getters read the file, never the struct), so shared by threads. */
typedef struct _BangerConfig BangerConfig;

#define BANGER_DEFAULT_IMAGE     "minimal"
#define BANGER_DEFAULT_KERNEL    "default"
#define BANGER_DNS_DEFAULT_PORT  42069
#define BANGER_DEFAULT_JAIL_BASE "/srv/jailer"

/* Reads @path (NULL: no file, the built-in defaults; a missing file is the
 * same without a word). @data_dir is bangerd's data directory. */
BangerConfig *banger_config_load (const char *path, const char *data_dir);
BangerConfig *banger_config_ref (BangerConfig *self);
void banger_config_unref (BangerConfig *self);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BangerConfig, banger_config_unref)

const char *banger_config_get_path (BangerConfig *self); /* NULL when none */
const char *banger_config_get_data_dir (BangerConfig *self);
const char *banger_config_get_default_image (BangerConfig *self);
const char *banger_config_get_default_kernel (BangerConfig *self);
/* [dns] port; 0 means the responder is off. */
guint banger_config_get_dns_port (BangerConfig *self);
/* [firecracker] jailer: 1 = true, 0 = false, -1 = auto. */
int banger_config_get_jailer (BangerConfig *self);
/* [firecracker] chroot_base: absolute, /srv/jailer unless set. */
const char *banger_config_get_jail_base (BangerConfig *self);
/* [vm] warm_start (docs/warm-start.md): TRUE unless the file says false. */
gboolean banger_config_get_warm_start (BangerConfig *self);

/* Read from the file on each call (see above). */
char *banger_config_dup_catalog_url (BangerConfig *self); /* NULL: the built-in one */
gboolean banger_config_registry_is_insecure (BangerConfig *self, const char *host);

G_END_DECLS
