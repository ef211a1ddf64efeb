#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <unistd.h>

#include "banger-error.h"
#include "bus-name.h"
#include "firewall-facts.h"
#include "doctor-private.h"

#define RESOLVE_NAME "org.freedesktop.resolve1"
#define RESOLVE_PATH "/org/freedesktop/resolve1"
#define CALL_MS      10000

typedef struct {
  char *bridge;
  char *address; /* CIDR, helper.conf's */
  gboolean exists;
  gboolean up;
  gboolean has_address;
  guint ifindex;
} Bridge;

static void
read_bridge (Bridge *br)
{
  g_autofree char *conf_bridge = banger_helper_conf_string ("network", "bridge");
  g_autofree char *conf_address = banger_helper_conf_string ("network", "address");
  g_auto (GStrv) cidr = NULL;
  struct ifaddrs *ifa = NULL;

  /* The helper's defaults (src/helper/helper-config.c). */
  br->bridge = g_strdup (conf_bridge ? conf_bridge : "banger0");
  br->address = g_strdup (conf_address ? conf_address : "10.77.0.1/24");
  br->ifindex = if_nametoindex (br->bridge);
  br->exists = br->ifindex != 0;
  if (!br->exists || getifaddrs (&ifa) < 0)
    return;
  cidr = g_strsplit (br->address, "/", 2);
  for (struct ifaddrs *i = ifa; i != NULL; i = i->ifa_next) {
    char text[INET_ADDRSTRLEN];

    if (g_strcmp0 (i->ifa_name, br->bridge) != 0)
      continue;
    if (i->ifa_flags & IFF_UP)
      br->up = TRUE;
    if (i->ifa_addr != NULL && i->ifa_addr->sa_family == AF_INET
        && inet_ntop (AF_INET, &((struct sockaddr_in *)i->ifa_addr)->sin_addr, text, sizeof text)
        && g_strcmp0 (text, cidr[0]) == 0)
      br->has_address = TRUE;
  }
  freeifaddrs (ifa);
}

static void
bridge_clear (Bridge *br)
{
  g_free (br->bridge);
  g_free (br->address);
}

/* ---- DNS routing through systemd-resolved --------------------------------- */

static void
check_dns_routing (GVariantBuilder *b, const BangerDoctorFacts *f, const Bridge *br)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GDBusConnection) bus = NULL;
  g_autoptr (GVariant) link = NULL;
  g_autoptr (GVariant) dns = NULL;
  g_autoptr (GVariant) domains = NULL;
  const char *link_path;
  gboolean routed_dns = FALSE, routed_domain = FALSE;
  g_autofree char *hint_none = g_strdup_printf (
      "without systemd-resolved, point your resolver at 127.0.0.1:%u for the vm domain "
      "(docs/dns.md: dnsmasq, unbound), or use `dig @127.0.0.1 -p %u NAME.vm`",
      f->dns_port, f->dns_port);

  if (f->dns_port == 0 || !f->dns_running) {
    banger_doctor_add (b, "dns-routing", "skip", "see the dns row",
                       "no responder to route <name>.vm to");
    return;
  }
  bus = banger_doctor_system_bus (f, &error);
  if (bus == NULL || !banger_bus_name_has_owner (bus, RESOLVE_NAME, 5000, NULL, NULL)) {
    banger_doctor_add (b, "dns-routing", "warn", hint_none,
                       "systemd-resolved does not run: <name>.vm resolves only for programs "
                       "that ask 127.0.0.1:%u",
                       f->dns_port);
    return;
  }
  if (!br->exists) {
    banger_doctor_add (b, "dns-routing", "ok", NULL,
                       "systemd-resolved runs; the ~vm route is set on %s when a VM starts",
                       br->bridge);
    return;
  }
  link = g_dbus_connection_call_sync (bus, RESOLVE_NAME, RESOLVE_PATH,
                                      "org.freedesktop.resolve1.Manager", "GetLink",
                                      g_variant_new ("(i)", (gint32)br->ifindex),
                                      G_VARIANT_TYPE ("(o)"), G_DBUS_CALL_FLAGS_NO_AUTO_START,
                                      CALL_MS, NULL, &error);
  if (link != NULL) {
    g_variant_get (link, "(&o)", &link_path);
    dns = g_dbus_connection_call_sync (
        bus, RESOLVE_NAME, link_path, "org.freedesktop.DBus.Properties", "Get",
        g_variant_new ("(ss)", "org.freedesktop.resolve1.Link", "DNSEx"), G_VARIANT_TYPE ("(v)"),
        G_DBUS_CALL_FLAGS_NO_AUTO_START, CALL_MS, NULL, NULL);
    domains = g_dbus_connection_call_sync (
        bus, RESOLVE_NAME, link_path, "org.freedesktop.DBus.Properties", "Get",
        g_variant_new ("(ss)", "org.freedesktop.resolve1.Link", "Domains"),
        G_VARIANT_TYPE ("(v)"), G_DBUS_CALL_FLAGS_NO_AUTO_START, CALL_MS, NULL, NULL);
  }
  if (dns != NULL) {
    g_autoptr (GVariant) v = NULL;
    GVariantIter iter;
    gint32 family;
    GVariant *addr;
    guint16 port;

    g_variant_get (dns, "(v)", &v);
    if (g_variant_is_of_type (v, G_VARIANT_TYPE ("a(iayqs)"))) {
      g_variant_iter_init (&iter, v);
      while (g_variant_iter_next (&iter, "(i@ayq&s)", &family, &addr, &port, NULL)) {
        gsize n = 0;
        const guint8 *bytes = g_variant_get_fixed_array (addr, &n, 1);
        if (family == AF_INET && n == 4 && bytes[0] == 127 && bytes[1] == 0 && bytes[2] == 0
            && bytes[3] == 1 && port == f->dns_port)
          routed_dns = TRUE;
        g_variant_unref (addr);
      }
    }
  }
  if (domains != NULL) {
    g_autoptr (GVariant) v = NULL;
    GVariantIter iter;
    const char *domain;
    gboolean route_only;

    g_variant_get (domains, "(v)", &v);
    if (g_variant_is_of_type (v, G_VARIANT_TYPE ("a(sb)"))) {
      g_variant_iter_init (&iter, v);
      while (g_variant_iter_next (&iter, "(&sb)", &domain, &route_only))
        if (g_str_equal (domain, "vm") && route_only)
          routed_domain = TRUE;
    }
  }
  if (routed_dns && routed_domain)
    banger_doctor_add (b, "dns-routing", "ok", NULL,
                       "systemd-resolved sends *.vm to 127.0.0.1:%u through %s", f->dns_port,
                       br->bridge);
  else
    banger_doctor_add (b, "dns-routing", "warn",
                       "start a VM (bangerd asks the helper to set the route at every start), "
                       "or check `resolvectl status` after a restart of systemd-resolved",
                       "systemd-resolved has no ~vm route to 127.0.0.1:%u on %s%s%s",
                       f->dns_port, br->bridge, error != NULL ? ": " : "",
                       error != NULL ? error->message : "");
}

/* ---- NAT: bridge, forwarding, nftables -------------------------------------- */

/* The firewall's facts (firewall-facts.h): read here where bangerd may (a
 * root bangerd, the tests' namespaces), else through the helper's
 * InspectFirewall, which reads them as root for the helper's bridge. NULL
 * *@via and FALSE with a skip reason in @error when neither can. */
static gboolean
read_facts (const BangerDoctorFacts *f, const Bridge *br, BangerFirewallFacts *facts, const char **via,
            gboolean *skip, GError **error)
{
  g_autoptr (GError) local = NULL;
  g_autoptr (GVariant) dict = NULL;
  gboolean denied = FALSE;

  *via = "";
  *skip = FALSE;
  if (banger_firewall_facts_read (br->bridge, facts, &denied, &local))
    return TRUE;
  if (!denied) {
    g_propagate_error (error, g_steal_pointer (&local));
    return FALSE;
  }
  if (f->helper == NULL || !f->helper_available) {
    *skip = TRUE;
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED,
                 "the firewall can only be read with CAP_NET_ADMIN, which bangerd does not have, "
                 "and the helper that reads it for bangerd is not available");
    return FALSE;
  }
  g_clear_error (&local);
  dict = banger_helper_client_inspect_firewall (f->helper, &local);
  if (dict == NULL || !banger_firewall_facts_from_variant (dict, facts, &local)) {
    /* Not in group banger, or an older helper without InspectFirewall. */
    *skip = TRUE;
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED,
                 "the firewall can only be read with CAP_NET_ADMIN, which bangerd does not have, "
                 "and the helper did not read it: %s",
                 local->message);
    return FALSE;
  }
  *via = " (read by the helper)";
  return TRUE;
}

static void
check_nat (GVariantBuilder *b, const BangerDoctorFacts *f, const Bridge *br)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *forward = NULL;
  BangerFirewallFacts facts = { 0 };
  const char *via;
  gboolean skip;
  g_autoptr (GString) drops = g_string_new (NULL);

  /* Forwarding: the helper turns it on and never off; something else may. */
  if (!g_file_get_contents ("/proc/sys/net/ipv4/ip_forward", &forward, NULL, NULL))
    forward = g_strdup ("?");
  g_strstrip (forward);
  if (!br->exists)
    banger_doctor_add (b, "forwarding", "ok", NULL,
                       "IPv4 forwarding is %s (the helper turns it on with the bridge)",
                       g_str_equal (forward, "1") ? "on" : "off");
  else if (g_str_equal (forward, "1"))
    banger_doctor_add (b, "forwarding", "ok", NULL, "IPv4 forwarding is on");
  else
    banger_doctor_add (b, "forwarding", "fail",
                       "something turned it off: `sudo sysctl -w net.ipv4.ip_forward=1` (and "
                       "find what sets it to 0 in /etc/sysctl.d)",
                       "IPv4 forwarding is off: VMs cannot reach beyond the host");

  if (!read_facts (f, br, &facts, &via, &skip, &error)) {
    if (skip) {
      banger_doctor_add (b, "nat", "skip",
                         "check it as root: `sudo nft list table inet banger`", "%s",
                         error->message);
      banger_doctor_add (b, "firewall", "skip",
                         "check it as root: `sudo nft list ruleset` (a forward chain with policy "
                         "drop in another table drops the VMs' traffic)",
                         "%s", error->message);
    } else {
      banger_doctor_add (b, "nat", "warn", "check `sudo nft list ruleset`",
                         "cannot read the firewall: %s", error->message);
      banger_doctor_add (b, "firewall", "warn", "check `sudo nft list ruleset`",
                         "cannot read the firewall: %s", error->message);
    }
    return;
  }

  if (!br->exists && !facts.table)
    banger_doctor_add (b, "nat", "ok", NULL,
                       "no bridge %s and no table inet banger yet: the helper makes both when "
                       "the first VM starts",
                       br->bridge);
  else if (!br->exists || !br->up || !br->has_address)
    banger_doctor_add (b, "nat", "fail",
                       "the helper rebuilds it at the next VM start; or `banger system network "
                       "down` then up",
                       "bridge %s is %s", br->bridge,
                       !br->exists ? "missing (the table inet banger is left)"
                       : !br->up   ? "down"
                                   : "without its address");
  else if (!facts.table || !facts.masquerade)
    banger_doctor_add (b, "nat", "fail",
                       "something removed it (a firewall reload that flushes the ruleset?): the "
                       "helper puts it back at the next VM start, or `banger system network up`",
                       "bridge %s (%s) is up, but the nftables table inet banger %s%s",
                       br->bridge, br->address, !facts.table ? "is missing" : "has no masquerade rule",
                       via);
  else
    banger_doctor_add (b, "nat", "ok", NULL,
                       "bridge %s (%s) is up; table inet banger masquerades its subnet%s",
                       br->bridge, br->address, via);

  for (guint i = 0; i < facts.drop_chains->len; i++)
    g_string_append_printf (drops, "%s%s", drops->len ? ", " : "",
                            (const char *)g_ptr_array_index (facts.drop_chains, i));
  if (drops->len > 0) {
    g_autofree char *hint = g_strdup_printf (
        "let the bridge through in that firewall, e.g. `iifname \"%s\" accept` and `oifname "
        "\"%s\" ct state established,related accept` in its forward chain (firewalld: add %s to "
        "a zone that forwards; Docker: the DOCKER-USER chain)",
        br->bridge, br->bridge, br->bridge);
    banger_doctor_add (b, "firewall", "fail", hint,
                       "forward chain(s) with policy drop in another table: %s — they drop the "
                       "VMs' traffic whatever banger's table accepts%s",
                       drops->str, via);
  } else
    banger_doctor_add (b, "firewall", "ok", NULL,
                       "no other nftables forward chain drops the VMs' traffic (iptables-legacy "
                       "rules are not visible here)%s",
                       via);
  banger_firewall_facts_clear (&facts);
}

void
banger_doctor_check_network (GVariantBuilder *b, const BangerDoctorFacts *f)
{
  Bridge br = { 0 };

  read_bridge (&br);
  check_dns_routing (b, f, &br);
  check_nat (b, f, &br);
  bridge_clear (&br);
}
