#pragma once

#include <gio/gio.h>
#include <sys/types.h>

G_BEGIN_DECLS

/* The helper's network work, free of D-Bus so it can be driven directly:
 *   net-link.c   shared libnl-route plumbing (socket, lookup, up/master)
 *   net-bridge.c the bridge, its address and IPv4 forwarding
 *   net-nft.c    NAT and forward rules ("inet banger") and, with net-guard.c,
 *                the per-VM rules, rebuilt from the taps in one transaction
 *   net-tap.c    persistent taps owned by the caller's uid
 *   net-nm.c     telling NetworkManager to leave banger's links alone
 * None of these lock: the daemon serialises them. */

/* net-link.c: the interface's index, 0 if absent. */
int banger_net_link_index (const char *ifname, GError **error);
/* Brings @ifname up and, when @master_index > 0, enslaves it to that. */
gboolean banger_net_link_up (const char *ifname, int master_index, GError **error);
gboolean banger_net_link_delete (const char *ifname, GError **error);
/* Sets @ifname's alias (IFLA_IFALIAS) over rtnetlink. */
gboolean banger_net_link_set_alias (const char *ifname, const char *alias, GError **error);
/* Names of banger's taps: links enslaved to @bridge_index (if > 0) and
 * links named like a banger tap. */
GStrv banger_net_link_list_taps (int bridge_index, GError **error);

/* net-bridge.c */
gboolean banger_net_bridge_ensure (const char *bridge, const char *address, GError **error);
gboolean banger_net_bridge_remove (const char *bridge, GError **error);
gboolean banger_net_forwarding_enable (GError **error);

/* net-nft.c: rebuilds `inet banger` (NAT and forwarding for the set of
 * running VMs' addresses) and `bridge banger_guard` from every tap's claim,
 * in one transaction; the remove takes both away. */
gboolean banger_net_firewall_apply (const char *bridge, const char *subnet, GError **error);
gboolean banger_net_firewall_remove (GError **error);
/* Runs @script as one libnftables transaction. */
gboolean banger_net_nft_run (const char *script, const char *what, GError **error);

/* net-guard.c: per-tap anti-spoofing (a tap sends only from its guest's
 * MAC and leased IPv4) and addresses unique across users. */
gboolean banger_net_guard_check_mac (const char *mac, GError **error);
gboolean banger_net_guard_check_ipv4 (const char *ipv4, GError **error);
/* Records @mac and @ipv4 as @tap's; Exists if another tap holds either. */
gboolean banger_net_guard_claim (const char *tap, const char *mac, const char *ipv4,
                                 GError **error);
/* @tap's claim (from its alias), FALSE if it has none. */
gboolean banger_net_guard_read_claim (const char *tap, char **mac, char **ipv4);
/* Appends the table bridge banger_guard for @taps' claims to @script. */
void banger_net_guard_append_table (GString *script, GStrv taps);

/* net-tap.c */
char *banger_net_tap_name (const char *vm_id);
/* Whether @ifname is a banger tap name (bg + 12 hex digits). */
gboolean banger_net_tap_name_is_banger (const char *ifname);
/* The kernel's record of who owns tap @tap: FALSE with NOT_FOUND if there
 * is no such link, with EXISTS if the link is not a tun/tap device. */
gboolean banger_net_tap_get_owner (const char *tap, gint64 *owner, GError **error);
gboolean banger_net_tap_create (const char *tap, const char *bridge, uid_t owner, GError **error);
gboolean banger_net_tap_delete (const char *tap, uid_t caller, GError **error);

/* net-nm.c: best effort, never fails the call. */
void banger_net_nm_unmanage (GDBusConnection *system_bus, const char *const *ifnames);

G_END_DECLS
