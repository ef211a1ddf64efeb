#pragma once

#include <gio/gio.h>
#include <json-glib/json-glib.h>
#include <stdio.h>

G_BEGIN_DECLS

/* The JSON key for a D-Bus property name: snake_case, with banger's
 * acronyms kept whole ("MemoryMiB" → "memory_mib", "IPv4" → "ipv4",
 * "VCPUs" → "vcpus", "CreatedAt" → "created_at"). These keys are the
 * stable interface of --json output. */
char *banger_json_key_for_property (const char *property);

/* All properties of @proxy's interface, in introspection order, as a JSON
 * object keyed by banger_json_key_for_property(). */
JsonNode *banger_json_from_proxy (GDBusProxy *proxy);

/* The same from @properties (a{sv}, an interface's entry in a
 * GetManagedObjects reply), in @info's order: the same JSON as from a
 * proxy holding those properties. */
JsonNode *banger_json_from_vardict (GDBusInterfaceInfo *info, GVariant *properties);

/* Adds "@key": @value to the open object, null when @value is NULL. */
void banger_json_add_string (JsonBuilder *builder, const char *key, const char *value);

/* Prints @node, pretty, with a final newline. */
void banger_json_print (JsonNode *node, FILE *out);

G_END_DECLS
