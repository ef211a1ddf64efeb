#include "net.h"

#include <net/if.h>
#include <netlink/netlink.h>
#include <netlink/route/link.h>

#include "banger-error.h"

typedef struct nl_sock BangerNlSock;
typedef struct rtnl_link BangerRtnlLink;
typedef struct nl_cache BangerNlCache;
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BangerNlSock, nl_socket_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BangerRtnlLink, rtnl_link_put)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BangerNlCache, nl_cache_free)

static BangerNlSock *
nl_route_connect (GError **error)
{
  g_autoptr (BangerNlSock) sk = nl_socket_alloc ();
  int err;

  if (sk == NULL) {
    g_set_error_literal (error, BANGER_ERROR, BANGER_ERROR_FAILED, "out of memory for netlink");
    return NULL;
  }
  err = nl_connect (sk, NETLINK_ROUTE);
  if (err < 0) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "cannot open rtnetlink: %s",
                 nl_geterror (err));
    return NULL;
  }
  return g_steal_pointer (&sk);
}

static gboolean
is_not_found (int err)
{
  return err == -NLE_OBJ_NOTFOUND || err == -NLE_NODEV;
}

int
banger_net_link_index (const char *ifname, GError **error)
{
  g_autoptr (BangerNlSock) sk = nl_route_connect (error);
  g_autoptr (BangerRtnlLink) link = NULL;
  int err;

  if (sk == NULL)
    return -1;
  err = rtnl_link_get_kernel (sk, 0, ifname, &link);
  if (is_not_found (err))
    return 0;
  if (err < 0) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "cannot look up %s: %s", ifname,
                 nl_geterror (err));
    return -1;
  }
  return rtnl_link_get_ifindex (link);
}

/* Applies @change to the link @ifname; @what names the change for the
 * error ("bring %s up"). Takes @change. */
static gboolean
change_link (const char *ifname, BangerRtnlLink *change_in, const char *what, GError **error)
{
  g_autoptr (BangerRtnlLink) change = change_in;
  g_autoptr (BangerNlSock) sk = nl_route_connect (error);
  g_autoptr (BangerRtnlLink) link = NULL;
  int err;

  if (sk == NULL)
    return FALSE;
  err = rtnl_link_get_kernel (sk, 0, ifname, &link);
  if (err < 0) {
    g_set_error (error, BANGER_ERROR,
                 is_not_found (err) ? BANGER_ERROR_NOT_FOUND : BANGER_ERROR_FAILED,
                 "cannot look up %s: %s", ifname, nl_geterror (err));
    return FALSE;
  }
  err = rtnl_link_change (sk, link, change, 0);
  if (err < 0) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "cannot %s %s: %s", what, ifname,
                 nl_geterror (err));
    return FALSE;
  }
  return TRUE;
}

gboolean
banger_net_link_up (const char *ifname, int master_index, GError **error)
{
  BangerRtnlLink *change = rtnl_link_alloc ();

  rtnl_link_set_flags (change, IFF_UP);
  if (master_index > 0)
    rtnl_link_set_master (change, master_index);
  return change_link (ifname, change, "bring up", error);
}

/* Over rtnetlink (IFLA_IFALIAS), not by writing /sys/class/net/IF/ifalias:
 * sysfs is mounted read-only in containers (systemd-nspawn, and any
 * service with ProtectKernelTunables=), netlink with CAP_NET_ADMIN works
 * wherever the link can be changed at all. */
gboolean
banger_net_link_set_alias (const char *ifname, const char *alias, GError **error)
{
  BangerRtnlLink *change = rtnl_link_alloc ();

  rtnl_link_set_ifalias (change, alias);
  return change_link (ifname, change, "set the alias of", error);
}

gboolean
banger_net_link_delete (const char *ifname, GError **error)
{
  g_autoptr (BangerNlSock) sk = nl_route_connect (error);
  g_autoptr (BangerRtnlLink) link = rtnl_link_alloc ();
  int err;

  if (sk == NULL)
    return FALSE;
  rtnl_link_set_name (link, ifname);
  err = rtnl_link_delete (sk, link);
  if (err < 0) {
    g_set_error (error, BANGER_ERROR,
                 is_not_found (err) ? BANGER_ERROR_NOT_FOUND : BANGER_ERROR_FAILED,
                 "cannot delete %s: %s", ifname, nl_geterror (err));
    return FALSE;
  }
  return TRUE;
}

GStrv
banger_net_link_list_taps (int bridge_index, GError **error)
{
  g_autoptr (BangerNlSock) sk = nl_route_connect (error);
  g_autoptr (BangerNlCache) cache = NULL;
  g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  int err;

  if (sk == NULL)
    return NULL;
  err = rtnl_link_alloc_cache (sk, AF_UNSPEC, &cache);
  if (err < 0) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "cannot list links: %s",
                 nl_geterror (err));
    return NULL;
  }
  for (struct nl_object *obj = nl_cache_get_first (cache); obj != NULL;
       obj = nl_cache_get_next (obj)) {
    struct rtnl_link *link = (struct rtnl_link *)obj;
    const char *name = rtnl_link_get_name (link);

    /* A tap left detached (its bridge deleted under it) is still banger's
     * by its name. */
    if ((bridge_index > 0 && rtnl_link_get_master (link) == bridge_index)
        || banger_net_tap_name_is_banger (name))
      g_ptr_array_add (names, g_strdup (name));
  }
  g_ptr_array_add (names, NULL);
  return (GStrv)g_ptr_array_free (g_steal_pointer (&names), FALSE);
}
