#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <json-glib/json-glib.h>
#include <net/if.h>
#include <netinet/in.h>
#include <nftables/libnftables.h>
#include <unistd.h>

#include "bus-name.h"
#include "doctor-private.h"
#include "lazy-library.h"

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

/* libnftables, loaded by the first doctor run instead of linked: linked,
 * it is mapped in bangerd from the start with libnftnl, GMP, libxtables,
 * jansson and libmnl, 0.6 MiB of an idle bangerd's RSS
 * (docs/performance.md). Typed with the header's declarations. */
typedef struct {
  __typeof__ (nft_ctx_new) *ctx_new;
  __typeof__ (nft_ctx_free) *ctx_free;
  __typeof__ (nft_ctx_output_set_flags) *ctx_output_set_flags;
  __typeof__ (nft_ctx_buffer_output) *ctx_buffer_output;
  __typeof__ (nft_ctx_buffer_error) *ctx_buffer_error;
  __typeof__ (nft_ctx_get_output_buffer) *ctx_get_output_buffer;
  __typeof__ (nft_ctx_get_error_buffer) *ctx_get_error_buffer;
  __typeof__ (nft_run_cmd_from_buffer) *run_cmd_from_buffer;
} Nftables;

static Nftables nftables;
static const BangerLazySymbol nftables_symbols[] = {
  { "nft_ctx_new", G_STRUCT_OFFSET (Nftables, ctx_new) },
  { "nft_ctx_free", G_STRUCT_OFFSET (Nftables, ctx_free) },
  { "nft_ctx_output_set_flags", G_STRUCT_OFFSET (Nftables, ctx_output_set_flags) },
  { "nft_ctx_buffer_output", G_STRUCT_OFFSET (Nftables, ctx_buffer_output) },
  { "nft_ctx_buffer_error", G_STRUCT_OFFSET (Nftables, ctx_buffer_error) },
  { "nft_ctx_get_output_buffer", G_STRUCT_OFFSET (Nftables, ctx_get_output_buffer) },
  { "nft_ctx_get_error_buffer", G_STRUCT_OFFSET (Nftables, ctx_get_error_buffer) },
  { "nft_run_cmd_from_buffer", G_STRUCT_OFFSET (Nftables, run_cmd_from_buffer) },
};
static BangerLazyLibrary nftables_library
    = { "libnftables", BANGER_NFTABLES_SONAME, nftables_symbols, G_N_ELEMENTS (nftables_symbols),
        &nftables };

/* The ruleset as libnftables' JSON (the same library the helper writes it
 * with: no `nft` program, no text parsing). NULL with @error; *@denied when
 * the kernel refused for lack of CAP_NET_ADMIN, which an unprivileged
 * bangerd never has in the host's network namespace. */
static JsonNode *
read_ruleset (gboolean *denied, GError **error)
{
  struct nft_ctx *nft;
  g_autoptr (JsonParser) parser = json_parser_new ();
  const char *out, *err;
  JsonNode *root = NULL;
  int rc;

  *denied = FALSE;
  if (!banger_lazy_library_load (&nftables_library, error))
    return NULL;
  nft = nftables.ctx_new (NFT_CTX_DEFAULT);
  if (nft == NULL) {
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "libnftables: no context");
    return NULL;
  }
  nftables.ctx_output_set_flags (nft, NFT_CTX_OUTPUT_JSON);
  nftables.ctx_buffer_output (nft);
  nftables.ctx_buffer_error (nft);
  rc = nftables.run_cmd_from_buffer (nft, "list ruleset");
  out = nftables.ctx_get_output_buffer (nft);
  err = nftables.ctx_get_error_buffer (nft);
  if (rc != 0) {
    *denied = err != NULL && (strstr (err, "Operation not permitted") != NULL);
    g_autofree char *text = g_strstrip (g_strdup (err != NULL ? err : ""));
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "%s",
                 *text != '\0' ? text : "list ruleset failed");
  } else if (!json_parser_load_from_data (parser, out != NULL ? out : "", -1, error)) {
    g_prefix_error (error, "libnftables JSON: ");
  } else
    root = json_node_copy (json_parser_get_root (parser));
  nftables.ctx_free (nft);
  return root;
}

static const char *
member_string (JsonObject *o, const char *name)
{
  JsonNode *n = json_object_get_member (o, name);
  return n != NULL && JSON_NODE_HOLDS_VALUE (n) && json_node_get_value_type (n) == G_TYPE_STRING
             ? json_node_get_string (n)
             : NULL;
}

static gboolean
is_banger_table (JsonObject *o)
{
  return g_strcmp0 (member_string (o, "family"), "inet") == 0
         && g_strcmp0 (member_string (o, "table"), "banger") == 0;
}

static void
check_nat (GVariantBuilder *b, const Bridge *br)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonNode) root = NULL;
  g_autofree char *forward = NULL;
  gboolean denied = FALSE;
  JsonArray *items;
  gboolean table = FALSE, masquerade = FALSE;
  g_autoptr (GString) drops = g_string_new (NULL);
  g_autoptr (GHashTable) chains_letting_bridge
      = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_autoptr (GPtrArray) drop_chains = g_ptr_array_new_with_free_func (g_free);
  g_autofree char *quoted_bridge = g_strdup_printf ("\"%s\"", br->bridge);

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

  root = read_ruleset (&denied, &error);
  if (root == NULL) {
    if (denied) {
      banger_doctor_add (b, "nat", "skip",
                         "check it as root: `sudo nft list table inet banger`",
                         "the firewall can only be read with CAP_NET_ADMIN, which bangerd does "
                         "not have");
      banger_doctor_add (b, "firewall", "skip",
                         "check it as root: `sudo nft list ruleset` (a forward chain with policy "
                         "drop in another table drops the VMs' traffic)",
                         "the firewall can only be read with CAP_NET_ADMIN, which bangerd does "
                         "not have");
    } else {
      banger_doctor_add (b, "nat", "warn", "check `sudo nft list ruleset`",
                         "cannot read the firewall: %s", error->message);
      banger_doctor_add (b, "firewall", "warn", "check `sudo nft list ruleset`",
                         "cannot read the firewall: %s", error->message);
    }
    return;
  }

  items = JSON_NODE_HOLDS_OBJECT (root) && json_object_has_member (json_node_get_object (root),
                                                                  "nftables")
              ? json_object_get_array_member (json_node_get_object (root), "nftables")
              : NULL;
  for (guint i = 0; items != NULL && i < json_array_get_length (items); i++) {
    JsonObject *item = json_array_get_object_element (items, i);
    JsonObject *o;

    if (item == NULL)
      continue;
    if (json_object_has_member (item, "table")) {
      o = json_object_get_object_member (item, "table");
      if (g_strcmp0 (member_string (o, "family"), "inet") == 0
          && g_strcmp0 (member_string (o, "name"), "banger") == 0)
        table = TRUE;
    } else if (json_object_has_member (item, "chain")) {
      o = json_object_get_object_member (item, "chain");
      /* Every base chain on the forward hook sees every forwarded packet,
       * whatever table it is in; an accept in banger's chain does not
       * stop another chain's drop. */
      if (!is_banger_table (o) && g_strcmp0 (member_string (o, "hook"), "forward") == 0
          && g_strcmp0 (member_string (o, "policy"), "drop") == 0)
        g_ptr_array_add (drop_chains,
                         g_strdup_printf ("%s %s %s", member_string (o, "family"),
                                          member_string (o, "table"), member_string (o, "name")));
    } else if (json_object_has_member (item, "rule")) {
      g_autofree char *text = NULL;
      JsonNode *node = json_object_get_member (item, "rule");

      o = json_object_get_object_member (item, "rule");
      text = json_to_string (node, FALSE);
      if (is_banger_table (o) && strstr (text, "\"masquerade\"") != NULL)
        masquerade = TRUE;
      /* A chain with a rule that accepts the bridge's traffic (Docker's
       * and firewalld's way of letting an interface through) is fine. */
      if (!is_banger_table (o) && strstr (text, quoted_bridge) != NULL
          && strstr (text, "\"accept\"") != NULL)
        g_hash_table_add (chains_letting_bridge,
                          g_strdup_printf ("%s %s %s", member_string (o, "family"),
                                           member_string (o, "table"), member_string (o, "chain")));
    }
  }

  if (!br->exists && !table)
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
  else if (!table || !masquerade)
    banger_doctor_add (b, "nat", "fail",
                       "something removed it (a firewall reload that flushes the ruleset?): the "
                       "helper puts it back at the next VM start, or `banger system network up`",
                       "bridge %s (%s) is up, but the nftables table inet banger %s", br->bridge,
                       br->address, !table ? "is missing" : "has no masquerade rule");
  else
    banger_doctor_add (b, "nat", "ok", NULL,
                       "bridge %s (%s) is up; table inet banger masquerades its subnet",
                       br->bridge, br->address);

  for (guint i = 0; i < drop_chains->len; i++) {
    const char *chain = g_ptr_array_index (drop_chains, i);
    if (!g_hash_table_contains (chains_letting_bridge, chain))
      g_string_append_printf (drops, "%s%s", drops->len ? ", " : "", chain);
  }
  if (drops->len > 0) {
    g_autofree char *hint = g_strdup_printf (
        "let the bridge through in that firewall, e.g. `iifname \"%s\" accept` and `oifname "
        "\"%s\" ct state established,related accept` in its forward chain (firewalld: add %s to "
        "a zone that forwards; Docker: the DOCKER-USER chain)",
        br->bridge, br->bridge, br->bridge);
    banger_doctor_add (b, "firewall", "fail", hint,
                       "forward chain(s) with policy drop in another table: %s — they drop the "
                       "VMs' traffic whatever banger's table accepts",
                       drops->str);
  } else
    banger_doctor_add (b, "firewall", "ok", NULL,
                       "no other nftables forward chain drops the VMs' traffic (iptables-legacy "
                       "rules are not visible here)");
}

void
banger_doctor_check_network (GVariantBuilder *b, const BangerDoctorFacts *f)
{
  Bridge br = { 0 };

  read_bridge (&br);
  check_dns_routing (b, f, &br);
  check_nat (b, &br);
  bridge_clear (&br);
}
