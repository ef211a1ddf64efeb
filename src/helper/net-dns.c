/* Routing the "vm" domain to bangerd's DNS responder through
 * systemd-resolved's D-Bus API (org.freedesktop.resolve1(5)): the bridge
 * link gets 127.0.0.1:PORT as its DNS server and "~vm" as a routing-only
 * domain, and is never the default route, so only *.vm lookups go there.
 * Nothing is written to /etc: resolved forgets the settings when the
 * bridge goes away (TeardownNetwork) or resolved restarts, and bangerd
 * asks again whenever it brings the network up. */

#include "net-dns.h"

#include <sys/socket.h>

#include "banger-error.h"
#include "net.h"

#define RESOLVED_BUS_NAME     "org.freedesktop.resolve1"
#define RESOLVED_OBJECT_PATH  "/org/freedesktop/resolve1"
#define RESOLVED_INTERFACE    "org.freedesktop.resolve1.Manager"
#define RESOLVED_NO_SUCH_LINK "org.freedesktop.resolve1.NoSuchLink"
#define RESOLVED_TIMEOUT_MS   10000
/* resolved learns of a new link from rtnetlink a moment after
 * EnsureNetwork made it: a NoSuchLink right then is retried, this often,
 * this far apart. */
#define NO_SUCH_LINK_TRIES   20
#define NO_SUCH_LINK_WAIT_US (50 * 1000)

static gboolean
resolved_running (GDBusConnection *bus, GError **error)
{
  g_autoptr (GVariant) reply = g_dbus_connection_call_sync (
      bus, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "NameHasOwner",
      g_variant_new ("(s)", RESOLVED_BUS_NAME), G_VARIANT_TYPE ("(b)"), G_DBUS_CALL_FLAGS_NONE,
      RESOLVED_TIMEOUT_MS, NULL, error);
  gboolean owned = FALSE;

  if (reply == NULL)
    return FALSE;
  g_variant_get (reply, "(b)", &owned);
  return owned;
}

static gboolean
call_resolved (GDBusConnection *bus, const char *method, GVariant *parameters, const char *bridge,
               int ifindex, GError **error)
{
  g_autoptr (GVariant) params = g_variant_ref_sink (parameters);

  for (guint attempt = 1;; attempt++) {
    g_autoptr (GError) local = NULL;
    g_autofree char *remote = NULL;
    g_autoptr (GVariant) reply = g_dbus_connection_call_sync (
        bus, RESOLVED_BUS_NAME, RESOLVED_OBJECT_PATH, RESOLVED_INTERFACE, method, params,
        G_VARIANT_TYPE ("()"), G_DBUS_CALL_FLAGS_NO_AUTO_START, RESOLVED_TIMEOUT_MS, NULL, &local);

    if (reply != NULL)
      return TRUE;
    remote = g_dbus_error_get_remote_error (local);
    if (g_strcmp0 (remote, RESOLVED_NO_SUCH_LINK) == 0 && attempt < NO_SUCH_LINK_TRIES) {
      g_usleep (NO_SUCH_LINK_WAIT_US);
      continue;
    }
    g_dbus_error_strip_remote_error (local);
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED,
                 "systemd-resolved refused %s for %s (ifindex %d): %s%s%s", method, bridge, ifindex,
                 remote != NULL ? remote : "", remote != NULL ? ": " : "", local->message);
    return FALSE;
  }
}

gboolean
banger_net_dns_configure (GDBusConnection *bus, const char *bridge, guint16 port, GError **error)
{
  g_autoptr (GError) local = NULL;
  GVariantBuilder servers;
  GVariantBuilder domains;
  const guint8 loopback[4] = { 127, 0, 0, 1 };
  int ifindex;

  if (!resolved_running (bus, &local)) {
    /* Where resolved does not run, something else (dnsmasq, unbound, a
     * plain /etc/resolv.conf) answers, and only its admin can route .vm:
     * say exactly what to point at. */
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_UNSUPPORTED,
                 "systemd-resolved is not running%s%s%s; point a resolver at 127.0.0.1:%u for "
                 "the vm domain (ConfigureDNS needs resolved; for dnsmasq: "
                 "server=/vm/127.0.0.1#%u, see banger's docs/dns.md)",
                 local != NULL ? " (the bus said: " : "", local != NULL ? local->message : "",
                 local != NULL ? ")" : "", port, port);
    return FALSE;
  }
  ifindex = banger_net_link_index (bridge, error);
  if (ifindex < 0)
    return FALSE;
  if (ifindex == 0) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_BAD_STATE,
                 "bridge %s does not exist: call EnsureNetwork first", bridge);
    return FALSE;
  }

  g_variant_builder_init (&servers, G_VARIANT_TYPE ("a(iayqs)"));
  g_variant_builder_add (
      &servers, "(i@ayqs)", AF_INET,
      g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, loopback, sizeof loopback, 1), port, "");
  g_variant_builder_init (&domains, G_VARIANT_TYPE ("a(sb)"));
  g_variant_builder_add (&domains, "(sb)", "vm", TRUE); /* "~vm": routing only */

  /* DNSSEC off for this link: "vm" is not in the root zone, so a
   * validating resolved would call every answer bogus. */
  if (!call_resolved (bus, "SetLinkDNSEx", g_variant_new ("(ia(iayqs))", ifindex, &servers), bridge,
                      ifindex, error)
      || !call_resolved (bus, "SetLinkDomains", g_variant_new ("(ia(sb))", ifindex, &domains),
                         bridge, ifindex, error)
      || !call_resolved (bus, "SetLinkDefaultRoute", g_variant_new ("(ib)", ifindex, FALSE), bridge,
                         ifindex, error)
      || !call_resolved (bus, "SetLinkDNSSEC", g_variant_new ("(is)", ifindex, "no"), bridge,
                         ifindex, error))
    return FALSE;
  g_info ("systemd-resolved sends ~vm lookups on %s (ifindex %d) to 127.0.0.1:%u", bridge, ifindex,
          port);
  return TRUE;
}
