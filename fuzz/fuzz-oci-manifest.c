/* OCI image indexes, manifests (OCI and Docker schema 2) and image configs
 * as a registry sends them: the parsing steps of src/service/oci/oci-pull.c,
 * included here to reach its static functions. The first byte picks the
 * document and the Content-Type the registry claims. */

/* First: it defines G_LOG_DOMAIN before GLib is included. */
#include "../src/service/oci/oci-pull.c"

#include "fuzz-common.h"

static const char *const header_types[] = {
  NULL, MT_OCI_INDEX, MT_OCI_MANIFEST, MT_DOCKER_LIST, MT_DOCKER_MANIF,
};

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonParser) parser = json_parser_new_immutable ();
  JsonObject *m;

  if (size < 1)
    return 0;
  g_autoptr (GBytes) doc = g_bytes_new (data + 1, size - 1);
  if (data[0] & 0x80) {
    m = parse_object (doc, "the image config", parser, &error);
    if (m != NULL) {
      g_autoptr (GVariant) cfg = g_variant_ref_sink (image_config (m));
      g_autofree char *json = config_to_json (cfg);
    }
    return 0;
  }
  m = parse_object (doc, "the manifest", parser, &error);
  if (m == NULL)
    return 0;
  const char *mt = media_type_of (m, header_types[data[0] % G_N_ELEMENTS (header_types)]);
  if (g_strcmp0 (mt, MT_OCI_INDEX) == 0 || g_strcmp0 (mt, MT_DOCKER_LIST) == 0) {
    g_autoptr (GError) e = NULL;
    g_autofree char *digest = pick_platform (m, "fuzz", &e);
    return 0;
  }
  g_autoptr (GPtrArray) layers = g_ptr_array_new_with_free_func ((GDestroyNotify)blob_free);
  if (json_object_has_member (m, "config")
      && JSON_NODE_HOLDS_OBJECT (json_object_get_member (m, "config"))) {
    Blob config = { 0 };
    g_autoptr (GError) e = NULL;
    (void)read_descriptor (json_object_get_object_member (m, "config"), "config", &config, &e);
    g_free (config.digest);
  }
  if (json_object_has_member (m, "layers")
      && JSON_NODE_HOLDS_ARRAY (json_object_get_member (m, "layers"))) {
    JsonArray *larr = json_object_get_array_member (m, "layers");
    for (guint i = 0; i < json_array_get_length (larr); i++) {
      JsonNode *n = json_array_get_element (larr, i);
      Blob *b = g_new0 (Blob, 1);
      g_autoptr (GError) e = NULL;
      g_ptr_array_add (layers, b);
      if (!JSON_NODE_HOLDS_OBJECT (n)
          || !read_descriptor (json_node_get_object (n), "layer", b, &e))
        continue;
      (void)layer_type_known (
          banger_json_member_string (json_node_get_object (n), "mediaType", NULL));
    }
  }
  return 0;
}
