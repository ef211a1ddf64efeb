#define G_LOG_DOMAIN "banger-net"

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

gboolean
banger_net_nft_apply (const char *bridge, const char *subnet, GError **error)
{
  g_autofree char *script = NULL;

  /* "table …" then "delete table …" then the full table, in one buffer:
   * the first line makes the delete safe when the table is absent, and the
   * kernel swaps old for new atomically, so the call is idempotent and
   * there is never a moment without NAT. The bridge name and subnet come
   * from root's config, already checked (interface-name characters only,
   * parsed address), so they cannot inject nft syntax.
   *
   * Forward: VMs may reach anything, replies may come back, and nothing
   * else is forwarded into the bridge (a VM is not exposed to the LAN). */
  script = g_strdup_printf ("table inet banger\n"
                            "delete table inet banger\n"
                            "table inet banger {\n"
                            "  chain postrouting {\n"
                            "    type nat hook postrouting priority srcnat; policy accept;\n"
                            "    ip saddr %s ip daddr != %s masquerade\n"
                            "  }\n"
                            "  chain forward {\n"
                            "    type filter hook forward priority filter; policy accept;\n"
                            "    iifname \"%s\" accept\n"
                            "    oifname \"%s\" ct state established,related accept\n"
                            "    oifname \"%s\" drop\n"
                            "  }\n"
                            "}\n",
                            subnet, subnet, bridge, bridge, bridge);
  return banger_net_nft_run (script, "install the nftables table inet banger", error);
}

gboolean
banger_net_nft_remove (GError **error)
{
  return banger_net_nft_run ("table inet banger\ndelete table inet banger\n",
                  "remove the nftables table inet banger", error);
}
