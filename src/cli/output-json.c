#include "output-json.h"

#include <string.h>

/* Words that a generic camel-case split would break up wrongly. */
static const struct {
  const char *word;
  const char *key;
} acronyms[] = {
  { "VCPUs", "vcpus" }, { "MiB", "mib" }, { "IPv4", "ipv4" }, { "IPv6", "ipv6" },
  { "MAC", "mac" },     { "UID", "uid" }, { "ID", "id" },
};

char *
banger_json_key_for_property (const char *property)
{
  GString *key = g_string_new (NULL);
  const char *p = property;

  while (*p != '\0') {
    gboolean matched = FALSE;

    for (guint i = 0; i < G_N_ELEMENTS (acronyms); i++) {
      gsize len = strlen (acronyms[i].word);

      /* An acronym must end the name or be followed by a new word. */
      if (strncmp (p, acronyms[i].word, len) == 0 && (p[len] == '\0' || g_ascii_isupper (p[len]))) {
        if (key->len > 0)
          g_string_append_c (key, '_');
        g_string_append (key, acronyms[i].key);
        p += len;
        matched = TRUE;
        break;
      }
    }
    if (matched)
      continue;

    if (g_ascii_isupper (*p) && key->len > 0)
      g_string_append_c (key, '_');
    /* A word: one capital, then lower case and digits. */
    g_string_append_c (key, g_ascii_tolower (*p++));
    while (*p != '\0' && !g_ascii_isupper (*p))
      g_string_append_c (key, *p++);
  }
  return g_string_free (key, FALSE);
}

/* Reads one property's value (NULL when it has none) from @source. */
typedef GVariant *(*PropertyReader) (gpointer source, const char *name);

static JsonNode *
json_from_properties (GDBusInterfaceInfo *info, PropertyReader read, gpointer source)
{
  g_autoptr (JsonBuilder) builder = json_builder_new ();

  json_builder_begin_object (builder);
  for (guint i = 0; info != NULL && info->properties != NULL && info->properties[i] != NULL; i++) {
    const char *name = info->properties[i]->name;
    g_autoptr (GVariant) value = read (source, name);
    g_autofree char *key = banger_json_key_for_property (name);

    json_builder_set_member_name (builder, key);
    if (value != NULL)
      json_builder_add_value (builder, json_gvariant_serialize (value));
    else
      json_builder_add_null_value (builder);
  }
  json_builder_end_object (builder);
  return json_builder_get_root (builder);
}

static GVariant *
read_proxy (gpointer proxy, const char *name)
{
  return g_dbus_proxy_get_cached_property (proxy, name);
}

static GVariant *
read_vardict (gpointer properties, const char *name)
{
  return g_variant_lookup_value (properties, name, NULL);
}

JsonNode *
banger_json_from_proxy (GDBusProxy *proxy)
{
  return json_from_properties (g_dbus_proxy_get_interface_info (proxy), read_proxy, proxy);
}

JsonNode *
banger_json_from_vardict (GDBusInterfaceInfo *info, GVariant *properties)
{
  return json_from_properties (info, read_vardict, properties);
}

void
banger_json_print (JsonNode *node, FILE *out)
{
  g_autoptr (JsonGenerator) generator = json_generator_new ();
  g_autofree char *text = NULL;

  json_generator_set_pretty (generator, TRUE);
  json_generator_set_indent (generator, 2);
  json_generator_set_root (generator, node);
  text = json_generator_to_data (generator, NULL);
  fprintf (out, "%s\n", text);
}

void
banger_json_add_string (JsonBuilder *b, const char *key, const char *value)
{
  json_builder_set_member_name (b, key);
  if (value != NULL)
    json_builder_add_string_value (b, value);
  else
    json_builder_add_null_value (b);
}
