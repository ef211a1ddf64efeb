/* The facts of the nftables ruleset the doctor reports (firewall-facts.h),
 * computed the same way by bangerd and by the helper's InspectFirewall. */

#include "firewall-facts.h"

#include <json-glib/json-glib.h>
#include <nftables/libnftables.h>
#include <string.h>

#include "banger-error.h"
#include "config.h"
#include "lazy-library.h"

void
banger_firewall_facts_clear (BangerFirewallFacts *facts)
{
  g_clear_pointer (&facts->drop_chains, g_ptr_array_unref);
  facts->table = facts->masquerade = FALSE;
}

/* libnftables, loaded at the first read instead of linked: linked, it is
 * mapped in bangerd from the start with libnftnl, GMP, libxtables, jansson
 * and libmnl, 0.6 MiB of an idle bangerd's RSS (docs/performance.md); the
 * doctor is its only user there. Typed with the header's declarations. */
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
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "libnftables: no context");
    return NULL;
  }
  nftables.ctx_output_set_flags (nft, NFT_CTX_OUTPUT_JSON);
  nftables.ctx_buffer_output (nft);
  nftables.ctx_buffer_error (nft);
  rc = nftables.run_cmd_from_buffer (nft, "list ruleset");
  out = nftables.ctx_get_output_buffer (nft);
  err = nftables.ctx_get_error_buffer (nft);
  if (rc != 0) {
    g_autofree char *text = g_strstrip (g_strdup (err != NULL ? err : ""));
    *denied = strstr (text, "Operation not permitted") != NULL;
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "%s",
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

static JsonObject *
member_object (JsonObject *o, const char *name)
{
  JsonNode *n = json_object_get_member (o, name);
  return n != NULL && JSON_NODE_HOLDS_OBJECT (n) ? json_node_get_object (n) : NULL;
}

static gboolean
is_banger_table (JsonObject *o)
{
  return g_strcmp0 (member_string (o, "family"), "inet") == 0
         && g_strcmp0 (member_string (o, "table"), "banger") == 0;
}

static char *
chain_name (JsonObject *o, const char *name_key)
{
  return g_strdup_printf ("%s %s %s", member_string (o, "family"), member_string (o, "table"),
                          member_string (o, name_key));
}

gboolean
banger_firewall_facts_read (const char *bridge, BangerFirewallFacts *facts, gboolean *denied,
                            GError **error)
{
  g_autoptr (JsonNode) root = read_ruleset (denied, error);
  g_autoptr (GHashTable) letting_bridge
      = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_autoptr (GPtrArray) drops = g_ptr_array_new_with_free_func (g_free);
  g_autofree char *quoted_bridge = g_strdup_printf ("\"%s\"", bridge);
  JsonObject *top;
  JsonArray *items = NULL;

  memset (facts, 0, sizeof *facts);
  if (root == NULL)
    return FALSE;
  top = JSON_NODE_HOLDS_OBJECT (root) ? json_node_get_object (root) : NULL;
  if (top != NULL && json_object_has_member (top, "nftables")
      && JSON_NODE_HOLDS_ARRAY (json_object_get_member (top, "nftables")))
    items = json_object_get_array_member (top, "nftables");

  for (guint i = 0; items != NULL && i < json_array_get_length (items); i++) {
    JsonNode *node = json_array_get_element (items, i);
    JsonObject *item = JSON_NODE_HOLDS_OBJECT (node) ? json_node_get_object (node) : NULL;
    JsonObject *o;

    if (item == NULL)
      continue;
    if ((o = member_object (item, "table")) != NULL) {
      if (g_strcmp0 (member_string (o, "family"), "inet") == 0
          && g_strcmp0 (member_string (o, "name"), "banger") == 0)
        facts->table = TRUE;
    } else if ((o = member_object (item, "chain")) != NULL) {
      /* Every base chain on the forward hook sees every forwarded packet,
       * whatever table it is in; an accept in banger's chain does not
       * stop another chain's drop. */
      if (!is_banger_table (o) && g_strcmp0 (member_string (o, "hook"), "forward") == 0
          && g_strcmp0 (member_string (o, "policy"), "drop") == 0)
        g_ptr_array_add (drops, chain_name (o, "name"));
    } else if ((o = member_object (item, "rule")) != NULL) {
      g_autofree char *text = json_to_string (json_object_get_member (item, "rule"), FALSE);

      if (is_banger_table (o) && strstr (text, "\"masquerade\"") != NULL)
        facts->masquerade = TRUE;
      /* A chain with a rule that accepts the bridge's traffic (Docker's
       * and firewalld's way of letting an interface through) is fine. */
      if (!is_banger_table (o) && strstr (text, quoted_bridge) != NULL
          && strstr (text, "\"accept\"") != NULL)
        g_hash_table_add (letting_bridge, chain_name (o, "chain"));
    }
  }

  facts->drop_chains = g_ptr_array_new_with_free_func (g_free);
  for (guint i = 0; i < drops->len; i++) {
    const char *chain = g_ptr_array_index (drops, i);
    if (!g_hash_table_contains (letting_bridge, chain))
      g_ptr_array_add (facts->drop_chains, g_strdup (chain));
  }
  return TRUE;
}

GVariant *
banger_firewall_facts_to_variant (const BangerFirewallFacts *facts)
{
  GVariantBuilder b, chains;

  g_variant_builder_init (&chains, G_VARIANT_TYPE_STRING_ARRAY);
  for (guint i = 0; facts->drop_chains != NULL && i < facts->drop_chains->len; i++)
    g_variant_builder_add (&chains, "s", (const char *)g_ptr_array_index (facts->drop_chains, i));
  g_variant_builder_init (&b, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add (&b, "{sv}", "table", g_variant_new_boolean (facts->table));
  g_variant_builder_add (&b, "{sv}", "masquerade", g_variant_new_boolean (facts->masquerade));
  g_variant_builder_add (&b, "{sv}", "drop_chains", g_variant_builder_end (&chains));
  return g_variant_builder_end (&b);
}

gboolean
banger_firewall_facts_from_variant (GVariant *dict, BangerFirewallFacts *facts, GError **error)
{
  g_autofree const char **chains = NULL;
  g_autoptr (GVariant) chains_v = NULL;

  memset (facts, 0, sizeof *facts);
  if (!g_variant_lookup (dict, "table", "b", &facts->table)
      || !g_variant_lookup (dict, "masquerade", "b", &facts->masquerade)
      || (chains_v = g_variant_lookup_value (dict, "drop_chains", G_VARIANT_TYPE_STRING_ARRAY))
             == NULL) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED,
                 "the helper's firewall facts lack \"table\" (b), \"masquerade\" (b) or "
                 "\"drop_chains\" (as)");
    return FALSE;
  }
  chains = g_variant_get_strv (chains_v, NULL);
  facts->drop_chains = g_ptr_array_new_with_free_func (g_free);
  for (gsize i = 0; chains[i] != NULL; i++)
    g_ptr_array_add (facts->drop_chains, g_strdup (chains[i]));
  return TRUE;
}
