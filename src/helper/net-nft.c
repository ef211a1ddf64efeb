#include "net.h"

#include <nftables/libnftables.h>

#include "banger-error.h"

typedef struct nft_ctx BangerNftCtx;
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BangerNftCtx, nft_ctx_free)

/* Runs @script as one nftables transaction: it applies whole or not at all. */
gboolean
banger_net_nft_run (const char *script, const char *what, GError **error)
{
  g_autoptr (BangerNftCtx) nft = nft_ctx_new (NFT_CTX_DEFAULT);
  const char *msg;

  if (nft == NULL) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "cannot %s: no nftables context", what);
    return FALSE;
  }
  nft_ctx_buffer_output (nft);
  nft_ctx_buffer_error (nft);
  if (nft_run_cmd_from_buffer (nft, script) != 0) {
    g_autofree char *trimmed = NULL;

    msg = nft_ctx_get_error_buffer (nft);
    trimmed = g_strstrip (g_strdup (msg != NULL ? msg : "unknown error"));
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "cannot %s: %s", what, trimmed);
    return FALSE;
  }
  return TRUE;
}

/* The per-VM part of `inet banger`: one element of the set `vms` per
 * running VM (a tap with a claim), its address with the tap's name as the
 * comment. NAT and forwarding match the set, so a VM is NATed and
 * forwarded exactly while its tap exists: the rule set follows the taps,
 * which follow the VMs (CreateTap at start, DeleteTap at stop, kill,
 * delete and in bangerd's reconcile). Addresses rather than tap names,
 * because in the inet family a routed packet's input interface is the
 * bridge, not the port it came in on; the guard table makes the address
 * as good as the port (a tap sends only from its own). */
static void
append_inet_table (GString *script, const char *bridge, const char *subnet, GStrv taps)
{
  g_autoptr (GString) elements = g_string_new ("");

  for (guint i = 0; taps[i] != NULL; i++) {
    g_autofree char *mac = NULL;
    g_autofree char *ipv4 = NULL;

    if (!banger_net_guard_read_claim (taps[i], &mac, &ipv4))
      continue;
    g_string_append_printf (elements, "%s%s comment \"%s\"", elements->len ? ", " : "", ipv4,
                            taps[i]);
  }
  /* "table …" then "delete table …" then the full table: the first line
   * makes the delete safe when the table is absent, and the kernel swaps
   * old for new atomically, so there is never a moment without NAT for a
   * running VM. The bridge name and subnet come from root's config,
   * already checked; addresses and tap names from the kernel's records,
   * checked by read_claim(): no nft syntax can get in.
   *
   * Forward: a running VM may reach anything, replies may come back;
   * nothing else from the bridge is forwarded (a tap without a claim, an
   * address no VM holds), and nothing is forwarded into the bridge (a VM
   * is not exposed to the LAN). */
  g_string_append_printf (script,
                          "table inet banger\n"
                          "delete table inet banger\n"
                          "table inet banger {\n"
                          "  set vms {\n"
                          "    type ipv4_addr\n"
                          "%s%s%s"
                          "  }\n"
                          "  chain postrouting {\n"
                          "    type nat hook postrouting priority srcnat; policy accept;\n"
                          "    ip saddr @vms ip daddr != %s masquerade\n"
                          "  }\n"
                          "  chain forward {\n"
                          "    type filter hook forward priority filter; policy accept;\n"
                          "    iifname \"%s\" ip saddr @vms accept\n"
                          "    iifname \"%s\" drop\n"
                          "    oifname \"%s\" ct state established,related accept\n"
                          "    oifname \"%s\" drop\n"
                          "  }\n"
                          "}\n",
                          elements->len ? "    elements = { " : "", elements->str,
                          elements->len ? " }\n" : "", subnet, bridge, bridge, bridge, bridge);
}

gboolean
banger_net_firewall_apply (const char *bridge, const char *subnet, GError **error)
{
  g_auto (GStrv) taps = banger_net_link_list_taps (0, error);
  g_autoptr (GString) script = g_string_new ("");

  if (taps == NULL)
    return FALSE;
  /* Both tables from the same list of taps, in one transaction: the NAT
   * set and the anti-spoofing chains never disagree about which VMs
   * exist. */
  append_inet_table (script, bridge, subnet, taps);
  banger_net_guard_append_table (script, taps);
  return banger_net_nft_run (script->str,
                             "install the nftables tables inet banger and bridge banger_guard",
                             error);
}

gboolean
banger_net_firewall_remove (GError **error)
{
  return banger_net_nft_run ("table inet banger\ndelete table inet banger\n"
                             "table bridge banger_guard\ndelete table bridge banger_guard\n",
                             "remove the nftables tables inet banger and bridge banger_guard",
                             error);
}
