#include "net.h"

#include <net/if.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/link/bridge.h>

#include "banger-error.h"

#define IP_FORWARD_PATH "/proc/sys/net/ipv4/ip_forward"

typedef struct nl_sock BangerNlSock;
typedef struct rtnl_link BangerRtnlLink;
typedef struct rtnl_addr BangerRtnlAddr;
typedef struct nl_addr BangerNlAddr;
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BangerNlSock, nl_socket_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BangerRtnlLink, rtnl_link_put)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BangerRtnlAddr, rtnl_addr_put)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BangerNlAddr, nl_addr_put)

static gboolean
nl_fail (GError **error, int err, const char *what, const char *ifname)
{
  g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "cannot %s %s: %s", what, ifname,
               nl_geterror (err));
  return FALSE;
}

/* The bridge's MAC address: fixed, derived from its name (locally
 * administered, unicast). A bridge left to itself takes the lowest MAC of
 * its ports, so it changed whenever that tap went (a VM stopped or was
 * suspended) and every guest's ARP entry for the gateway went stale for
 * half a minute; a suspended guest resumed on a new tap, even after a host
 * reboot, must find the gateway where it left it. */
static BangerNlAddr *
bridge_mac (const char *bridge)
{
  g_autoptr (GChecksum) sum = g_checksum_new (G_CHECKSUM_SHA256);
  guint8 digest[32];
  gsize len = sizeof digest;
  guint8 mac[6];

  g_checksum_update (sum, (const guchar *)"banger-bridge:", -1);
  g_checksum_update (sum, (const guchar *)bridge, -1);
  g_checksum_get_digest (sum, digest, &len);
  mac[0] = 0x02;
  memcpy (mac + 1, digest, 5);
  return nl_addr_build (AF_LLC, mac, sizeof mac);
}

/* Creates the bridge unless it exists, with its fixed MAC address (given to
 * an existing one that lacks it: a bridge made by an older helper); refuses
 * to adopt an interface of that name that is not a bridge. */
static gboolean
bridge_create (struct nl_sock *sk, const char *bridge, GError **error)
{
  g_autoptr (BangerRtnlLink) existing = NULL;
  g_autoptr (BangerRtnlLink) link = NULL;
  g_autoptr (BangerNlAddr) mac = bridge_mac (bridge);
  int err;

  err = rtnl_link_get_kernel (sk, 0, bridge, &existing);
  if (err == 0) {
    if (g_strcmp0 (rtnl_link_get_type (existing), "bridge") != 0) {
      g_set_error (error, BANGER_ERROR, BANGER_ERROR_EXISTS,
                   "%s exists and is not a bridge (it is a “%s” link)", bridge,
                   rtnl_link_get_type (existing) ? rtnl_link_get_type (existing) : "plain");
      return FALSE;
    }
    if (rtnl_link_get_addr (existing) == NULL
        || nl_addr_cmp (rtnl_link_get_addr (existing), mac) != 0) {
      g_autoptr (BangerRtnlLink) change = rtnl_link_alloc ();

      rtnl_link_set_addr (change, mac);
      err = rtnl_link_change (sk, existing, change, 0);
      if (err < 0)
        return nl_fail (error, err, "set the MAC address of", bridge);
    }
    return TRUE;
  }
  if (err != -NLE_OBJ_NOTFOUND && err != -NLE_NODEV)
    return nl_fail (error, err, "look up", bridge);

  link = rtnl_link_bridge_alloc ();
  rtnl_link_set_name (link, bridge);
  rtnl_link_set_addr (link, mac);
  err = rtnl_link_add (sk, link, NLM_F_CREATE);
  if (err < 0 && err != -NLE_EXIST)
    return nl_fail (error, err, "create bridge", bridge);
  g_info ("created bridge %s", bridge);
  return TRUE;
}

static gboolean
bridge_address (struct nl_sock *sk, int ifindex, const char *bridge, const char *address,
                GError **error)
{
  g_autoptr (BangerRtnlAddr) addr = rtnl_addr_alloc ();
  g_autoptr (BangerNlAddr) local = NULL;
  int err;

  err = nl_addr_parse (address, AF_INET, &local);
  if (err < 0)
    return nl_fail (error, err, "parse the address of", bridge);
  rtnl_addr_set_ifindex (addr, ifindex);
  rtnl_addr_set_family (addr, AF_INET);
  err = rtnl_addr_set_local (addr, local);
  if (err < 0)
    return nl_fail (error, err, "set the address of", bridge);
  err = rtnl_addr_add (sk, addr, NLM_F_CREATE);
  /* Already there: EnsureNetwork is idempotent. */
  if (err < 0 && err != -NLE_EXIST)
    return nl_fail (error, err, "add the address to", bridge);
  return TRUE;
}

gboolean
banger_net_bridge_ensure (const char *bridge, const char *address, GError **error)
{
  g_autoptr (BangerNlSock) sk = nl_socket_alloc ();
  int ifindex;
  int err;

  err = nl_connect (sk, NETLINK_ROUTE);
  if (err < 0)
    return nl_fail (error, err, "open rtnetlink for", bridge);
  if (!bridge_create (sk, bridge, error))
    return FALSE;
  ifindex = banger_net_link_index (bridge, error);
  if (ifindex <= 0) {
    if (ifindex == 0)
      g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "bridge %s vanished", bridge);
    return FALSE;
  }
  if (!bridge_address (sk, ifindex, bridge, address, error))
    return FALSE;
  return banger_net_link_up (bridge, 0, error);
}

gboolean
banger_net_bridge_remove (const char *bridge, GError **error)
{
  g_autoptr (GError) local = NULL;

  if (!banger_net_link_delete (bridge, &local)) {
    if (g_error_matches (local, BANGER_ERROR, BANGER_ERROR_NOT_FOUND))
      return TRUE;
    g_propagate_error (error, g_steal_pointer (&local));
    return FALSE;
  }
  g_info ("removed bridge %s", bridge);
  return TRUE;
}

gboolean
banger_net_forwarding_enable (GError **error)
{
  g_autoptr (GError) local = NULL;

  /* Turned on, never back off at teardown: other software on the host may
   * rely on forwarding too. */
  if (!g_file_set_contents_full (IP_FORWARD_PATH, "1\n", -1, G_FILE_SET_CONTENTS_NONE, 0644,
                                 &local)) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "cannot enable IPv4 forwarding: %s",
                 local->message);
    return FALSE;
  }
  return TRUE;
}
