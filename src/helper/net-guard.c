/* Layer-2 anti-spoofing on the shared bridge (issue 10, finding 6). Every
 * user's VMs are ports of one bridge, so without this a guest could send
 * from another guest's MAC or address. Each tap's claim (the guest's MAC
 * and leased IPv4) is kept by the kernel, as the tap's owner is: in the
 * link's alias (IFLA_IFALIAS), which only CAP_NET_ADMIN can change, so
 * neither the tap's owner nor a helper restart can lose or forge it. The
 * same record makes addresses unique across users: a claim that another
 * tap already holds is refused. The nftables table `bridge banger_guard`
 * is rebuilt from those records after every change, in the same
 * transaction as `inet banger` (net-nft.c). */

#include "net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "banger-error.h"

#define ALIAS_PREFIX "banger-guard "

static char *
alias_path (const char *tap)
{
  return g_build_filename ("/sys/class/net", tap, "ifalias", NULL);
}

/* @tap's claim, or FALSE (none). */
gboolean
banger_net_guard_read_claim (const char *tap, char **mac, char **ipv4)
{
  g_autofree char *path = alias_path (tap);
  g_autofree char *text = NULL;
  g_auto (GStrv) fields = NULL;

  if (!g_file_get_contents (path, &text, NULL, NULL) || !g_str_has_prefix (text, ALIAS_PREFIX))
    return FALSE;
  fields = g_strsplit (g_strstrip (text + strlen (ALIAS_PREFIX)), " ", 3);
  if (g_strv_length (fields) != 2 || !banger_net_guard_check_mac (fields[0], NULL)
      || !banger_net_guard_check_ipv4 (fields[1], NULL))
    return FALSE;
  *mac = g_strdup (fields[0]);
  *ipv4 = g_strdup (fields[1]);
  return TRUE;
}

gboolean
banger_net_guard_check_mac (const char *mac, GError **error)
{
  guint first;

  /* Six lower-case hex pairs; unicast (a group address as a source is
   * never legitimate). The strict form also keeps nft syntax out. */
  if (mac == NULL || strlen (mac) != 17)
    goto bad;
  for (guint i = 0; i < 17; i++) {
    if (i % 3 == 2 ? mac[i] != ':' : !(g_ascii_isdigit (mac[i]) || (mac[i] >= 'a' && mac[i] <= 'f')))
      goto bad;
  }
  first = (guint)g_ascii_xdigit_value (mac[0]) * 16 + (guint)g_ascii_xdigit_value (mac[1]);
  if ((first & 1) != 0)
    goto bad;
  return TRUE;
bad:
  g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
               "“%s” is not a unicast MAC address (six lower-case hex pairs)", mac ? mac : "");
  return FALSE;
}

gboolean
banger_net_guard_check_ipv4 (const char *ipv4, GError **error)
{
  struct in_addr in;
  char back[INET_ADDRSTRLEN];

  /* Round-tripped, so only the canonical dotted quad passes. */
  if (ipv4 == NULL || inet_pton (AF_INET, ipv4, &in) != 1
      || inet_ntop (AF_INET, &in, back, sizeof back) == NULL || strcmp (back, ipv4) != 0) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
                 "“%s” is not an IPv4 address", ipv4 ? ipv4 : "");
    return FALSE;
  }
  return TRUE;
}

gboolean
banger_net_guard_claim (const char *tap, const char *mac, const char *ipv4, GError **error)
{
  g_auto (GStrv) taps = banger_net_link_list_taps (0, error);
  g_autofree char *text = NULL;

  if (taps == NULL)
    return FALSE;
  for (guint i = 0; taps[i] != NULL; i++) {
    g_autofree char *other_mac = NULL;
    g_autofree char *other_ip = NULL;

    if (g_str_equal (taps[i], tap) || !banger_net_guard_read_claim (taps[i], &other_mac, &other_ip))
      continue;
    if (g_str_equal (other_ip, ipv4) || g_str_equal (other_mac, mac)) {
      g_set_error (error, BANGER_ERROR, BANGER_ERROR_EXISTS,
                   "%s %s is already used by another VM (tap %s)",
                   g_str_equal (other_ip, ipv4) ? "address" : "MAC address",
                   g_str_equal (other_ip, ipv4) ? ipv4 : mac, taps[i]);
      return FALSE;
    }
  }
  text = g_strdup_printf (ALIAS_PREFIX "%s %s", mac, ipv4);
  if (!banger_net_link_set_alias (tap, text, error)) {
    g_prefix_error (error, "cannot record %s's address: ", tap);
    return FALSE;
  }
  return TRUE;
}

void
banger_net_guard_append_table (GString *script, GStrv taps)
{
  g_autoptr (GString) jumps = g_string_new ("");
  g_autoptr (GString) chains = g_string_new ("");

  /* Names, MACs and addresses come from the kernel's records, which only
   * this helper writes, and are checked again by read_claim(): no nft
   * syntax can get in. A tap with no claim (made, not yet given its
   * address) sends nothing. Only what a guest needs passes: ARP and IPv4
   * from its own MAC and address; IPv6, VLAN tags and everything else are
   * dropped. */
  for (guint i = 0; taps[i] != NULL; i++) {
    g_autofree char *mac = NULL;
    g_autofree char *ipv4 = NULL;

    if (!banger_net_guard_read_claim (taps[i], &mac, &ipv4))
      continue;
    g_string_append_printf (jumps, "    iifname \"%s\" jump guard_%s\n", taps[i], taps[i]);
    g_string_append_printf (chains,
                            "  chain guard_%s {\n"
                            "    ether saddr != %s drop\n"
                            "    ether type arp arp saddr ether %s arp saddr ip %s accept\n"
                            "    ether type ip ip saddr %s accept\n"
                            "    drop\n"
                            "  }\n",
                            taps[i], mac, mac, ipv4, ipv4);
  }
  g_string_append_printf (script,
                          "table bridge banger_guard\n"
                          "delete table bridge banger_guard\n"
                          "table bridge banger_guard {\n"
                          "  chain prerouting {\n"
                          "    type filter hook prerouting priority -200; policy accept;\n"
                          "%s"
                          "    iifname \"bg*\" drop\n"
                          "  }\n"
                          "%s"
                          "}\n",
                          jumps->str, chains->str);
}
