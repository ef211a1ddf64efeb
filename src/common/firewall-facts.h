#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* What the doctor needs to know of the host's nftables ruleset: whether
 * banger's own table (inet banger) is there and masquerades, and which
 * other tables' forward-hook base chains have policy drop without a rule
 * letting banger's bridge through (they drop the VMs' traffic whatever
 * banger's table accepts). Reading the ruleset takes CAP_NET_ADMIN, which
 * an unprivileged bangerd never has in the host's network namespace, so
 * bangerd reads it itself where it can (tests, a root bangerd) and asks
 * the helper's InspectFirewall otherwise: both compute the facts here. */
typedef struct {
  gboolean table;      /* table inet banger exists */
  gboolean masquerade; /* … with a masquerade rule */
  GPtrArray *drop_chains; /* "family table chain" of each chain that drops */
} BangerFirewallFacts;

void banger_firewall_facts_clear (BangerFirewallFacts *facts);

/* Reads the ruleset with libnftables (JSON output; no `nft` program, no text
 * parsing) and fills @facts for the bridge @bridge. FALSE with @error when it
 * cannot be read; *@denied is then TRUE when the kernel refused for lack of
 * CAP_NET_ADMIN. */
gboolean banger_firewall_facts_read (const char *bridge, BangerFirewallFacts *facts,
                                     gboolean *denied, GError **error);

/* The facts as InspectFirewall returns them: a{sv} with "table" (b),
 * "masquerade" (b), "drop_chains" (as). */
GVariant *banger_firewall_facts_to_variant (const BangerFirewallFacts *facts);
/* The reverse; a missing or mistyped key is an error naming it. */
gboolean banger_firewall_facts_from_variant (GVariant *dict, BangerFirewallFacts *facts,
                                             GError **error);

G_END_DECLS
