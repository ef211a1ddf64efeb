#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* The helper's own configuration (root-owned, BANGER_SYSCONFDIR/helper.conf):
 *
 *   [network]
 *   bridge=banger0
 *   address=10.77.0.1/24
 *
 *   [update]
 *   # where InstallRelease swaps the binaries (docs/update.md)
 *   bindir=/usr/bin                       (bangerd, banger)
 *   libexecdir=/usr/libexec               (bangerd-root, banger/banger-agent)
 *   install_toml=/etc/banger/install.toml
 *   # where a caller may stage a release; %h home, %U uid; ';'-separated
 *   staging_dirs=%h/.cache/banger
 *
 *   [dns]
 *   # the port of the users' DNS responders (bangerd's [dns] port=) that
 *   # ConfigureDNS routes .vm to; 1..65535
 *   port=42069
 *
 * Callers never choose these: they come from root's file only. */
typedef struct {
  char *bridge;     /* interface name of the bridge */
  char *address;    /* the bridge's address in CIDR form, e.g. 10.77.0.1/24 */
  char *subnet;     /* the network it lies in, e.g. 10.77.0.0/24 */
  guint prefix_len; /* e.g. 24 */
  char *update_bindir;
  char *update_libexecdir;
  char *update_install_toml;
  char **update_staging_dirs;
  guint16 dns_port; /* where ConfigureDNS sends .vm lookups on 127.0.0.1 */
} BangerHelperConfig;

void banger_helper_config_free (BangerHelperConfig *config);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BangerHelperConfig, banger_helper_config_free)

/* Loads @path; a missing file gives the defaults, a bad value an error. */
BangerHelperConfig *banger_helper_config_load (const char *path, GError **error);

/* Checks an IPv4 address with prefix ("10.77.0.1/24", prefix 8..30, the
 * address neither the network nor the broadcast address) and returns its
 * network in CIDR form. */
char *banger_helper_config_parse_cidr (const char *cidr, guint *prefix_len, GError **error);

/* A usable Linux interface name: 1..15 bytes of [A-Za-z0-9_-]. */
gboolean banger_helper_config_check_ifname (const char *name, GError **error);

G_END_DECLS
