#pragma once

#include <json-glib/json-glib.h>

G_BEGIN_DECLS

/* A member's string (or integer) value, or @dflt when it is missing or of
 * another type. json-glib's *_with_default getters assert on an object or
 * array in that place and return NULL for a number where a string was
 * expected, and registries and catalogs send whatever they like. Inline:
 * the registry and catalog code live in different layers' libraries. */
static inline const char *
banger_json_member_string (JsonObject *o, const char *member, const char *dflt)
{
  JsonNode *n = json_object_get_member (o, member);

  if (n == NULL || !JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_STRING)
    return dflt;
  return json_node_get_string (n);
}

static inline gint64
banger_json_member_int (JsonObject *o, const char *member, gint64 dflt)
{
  JsonNode *n = json_object_get_member (o, member);

  if (n == NULL || !JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_INT64)
    return dflt;
  return json_node_get_int (n);
}

G_END_DECLS
