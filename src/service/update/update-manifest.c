/* The release manifest: parsing it and choosing a version (update-manifest.h). */
#include "update-manifest.h"

#include <json-glib/json-glib.h>

#include "banger-error.h"

#define MANIFEST_SCHEMA 1

static void
entry_free (BangerReleaseEntry *e)
{
  g_free (e->version);
  g_free (e->tarball);
  g_free (e->sha256sums);
  g_free (e->signature);
  g_free (e->notes);
  g_free (e);
}

void
banger_release_manifest_free (BangerReleaseManifest *manifest)
{
  if (manifest == NULL)
    return;
  g_free (manifest->latest);
  g_ptr_array_unref (manifest->versions);
  g_free (manifest);
}

gboolean
banger_release_version_parse (const char *text, guint out[3])
{
  g_auto (GStrv) parts = NULL;

  if (text == NULL)
    return FALSE;
  if (text[0] == 'v')
    text++;
  parts = g_strsplit (text, ".", -1);
  if (g_strv_length (parts) != 3)
    return FALSE;
  for (guint i = 0; i < 3; i++) {
    guint64 n;

    /* g_ascii_string_to_unsigned accepts no sign, space or empty text. */
    if (!g_ascii_string_to_unsigned (parts[i], 10, 0, 99999, &n, NULL))
      return FALSE;
    if (out != NULL)
      out[i] = (guint)n;
  }
  return TRUE;
}

int
banger_release_version_compare (const char *a, const char *b)
{
  guint va[3], vb[3];
  gboolean ok_a = banger_release_version_parse (a, va);
  gboolean ok_b = banger_release_version_parse (b, vb);

  if (!ok_a || !ok_b)
    return (int)ok_a - (int)ok_b;
  for (guint i = 0; i < 3; i++) {
    if (va[i] != vb[i])
      return va[i] < vb[i] ? -1 : 1;
  }
  return 0;
}

char *
banger_release_tarball_name (const char *version)
{
  if (version[0] == 'v')
    version++;
  return g_strdup_printf ("banger-%s-x86_64.tar.gz", version);
}

/* Every refusal here names the release manifest it was reading. */
#define bad(error, ...) banger_error_reject (error, BANGER_ERROR_VERIFICATION, "release manifest", __VA_ARGS__)

/* An http(s) URL, made absolute against the manifest's URL. */
static char *
resolve_url (const char *base_url, const char *version, const char *member, const char *ref,
             GError **error)
{
  g_autoptr (GUri) base = g_uri_parse (base_url, G_URI_FLAGS_NONE, NULL);
  g_autoptr (GUri) uri = NULL;
  const char *scheme;

  if (base != NULL)
    uri = g_uri_parse_relative (base, ref, G_URI_FLAGS_NONE, NULL);
  else
    uri = g_uri_parse (ref, G_URI_FLAGS_NONE, NULL);
  scheme = uri != NULL ? g_uri_get_scheme (uri) : NULL;
  /* No host ("https:/..//x"): g_uri_to_string would assert on the path
   * that then starts with "//" (found by fuzz-update-manifest). */
  if (scheme == NULL || (g_strcmp0 (scheme, "https") != 0 && g_strcmp0 (scheme, "http") != 0)
      || g_uri_get_host (uri) == NULL || *g_uri_get_host (uri) == '\0') {
    bad (error, "version %s: “%s” (%s) is not an http(s) URL", version, member, ref);
    return NULL;
  }
  return g_uri_to_string (uri);
}

static const char *
string_member (JsonObject *obj, const char *version, const char *member, gboolean required,
               GError **error)
{
  JsonNode *node = json_object_get_member (obj, member);

  if (node == NULL) {
    if (required)
      bad (error, "version %s: “%s” is missing", version, member);
    return NULL;
  }
  if (!JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_STRING
      || *json_node_get_string (node) == '\0') {
    bad (error, "version %s: “%s” is not a non-empty string", version, member);
    return NULL;
  }
  return json_node_get_string (node);
}

static BangerReleaseEntry *
parse_entry (const char *version, JsonNode *node, const char *base_url, GError **error)
{
  g_autoptr (GError) local = NULL;
  BangerReleaseEntry *e;
  JsonObject *obj;
  const char *tarball, *sums, *sig, *notes;
  JsonNode *size;

  if (!banger_release_version_parse (version, NULL) || version[0] == 'v') {
    bad (error, "“%s” is not a version (X.Y.Z)", version);
    return NULL;
  }
  if (!JSON_NODE_HOLDS_OBJECT (node)) {
    bad (error, "version %s is not an object", version);
    return NULL;
  }
  obj = json_node_get_object (node);
  if ((tarball = string_member (obj, version, "tarball", TRUE, error)) == NULL
      || (sums = string_member (obj, version, "sha256sums", TRUE, error)) == NULL
      || (sig = string_member (obj, version, "signature", TRUE, error)) == NULL)
    return NULL;
  notes = string_member (obj, version, "notes", FALSE, &local);
  if (local != NULL) {
    g_propagate_error (error, g_steal_pointer (&local));
    return NULL;
  }
  size = json_object_get_member (obj, "size");
  if (size != NULL
      && (!JSON_NODE_HOLDS_VALUE (size) || json_node_get_value_type (size) != G_TYPE_INT64
          || json_node_get_int (size) < 0)) {
    bad (error, "version %s: “size” is not a byte count", version);
    return NULL;
  }
  e = g_new0 (BangerReleaseEntry, 1);
  e->version = g_strdup (version);
  e->size = size != NULL ? (guint64)json_node_get_int (size) : 0;
  e->notes = g_strdup (notes != NULL ? notes : "");
  if ((e->tarball = resolve_url (base_url, version, "tarball", tarball, error)) == NULL
      || (e->sha256sums = resolve_url (base_url, version, "sha256sums", sums, error)) == NULL
      || (e->signature = resolve_url (base_url, version, "signature", sig, error)) == NULL) {
    entry_free (e);
    return NULL;
  }
  return e;
}

BangerReleaseManifest *
banger_release_manifest_parse (const char *data, gsize len, const char *base_url, GError **error)
{
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (BangerReleaseManifest) m = NULL;
  g_autoptr (GError) local = NULL;
  g_autoptr (GList) members = NULL;
  JsonNode *root, *node;
  JsonObject *obj, *versions;

  if (!json_parser_load_from_data (parser, data, (gssize)len, &local)) {
    bad (error, "not JSON: %s", local->message);
    return NULL;
  }
  root = json_parser_get_root (parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root)) {
    bad (error, "not a JSON object");
    return NULL;
  }
  obj = json_node_get_object (root);
  node = json_object_get_member (obj, "schema");
  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node)
      || json_node_get_value_type (node) != G_TYPE_INT64
      || json_node_get_int (node) != MANIFEST_SCHEMA) {
    bad (error, "“schema” is not %d (a newer manifest format?)", MANIFEST_SCHEMA);
    return NULL;
  }
  node = json_object_get_member (obj, "versions");
  if (node == NULL || !JSON_NODE_HOLDS_OBJECT (node)) {
    bad (error, "“versions” is missing or not an object");
    return NULL;
  }
  versions = json_node_get_object (node);
  m = g_new0 (BangerReleaseManifest, 1);
  m->versions = g_ptr_array_new_with_free_func ((GDestroyNotify)entry_free);
  members = json_object_get_members (versions);
  for (GList *l = members; l != NULL; l = l->next) {
    BangerReleaseEntry *e
        = parse_entry (l->data, json_object_get_member (versions, l->data), base_url, error);
    if (e == NULL)
      return NULL;
    g_ptr_array_add (m->versions, e);
  }
  node = json_object_get_member (obj, "latest");
  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node)
      || json_node_get_value_type (node) != G_TYPE_STRING) {
    bad (error, "“latest” is missing or not a string");
    return NULL;
  }
  m->latest = g_strdup (json_node_get_string (node));
  if (!banger_release_manifest_find (m, m->latest, NULL)) {
    bad (error, "“latest” (%s) is not one of the versions", m->latest);
    return NULL;
  }
  return g_steal_pointer (&m);
}

const BangerReleaseEntry *
banger_release_manifest_find (const BangerReleaseManifest *manifest, const char *version,
                              GError **error)
{
  const char *want = version[0] == 'v' ? version + 1 : version;

  for (guint i = 0; i < manifest->versions->len; i++) {
    const BangerReleaseEntry *e = manifest->versions->pdata[i];
    if (g_str_equal (e->version, want))
      return e;
  }
  g_set_error (error, BANGER_ERROR, BANGER_ERROR_NOT_FOUND,
               "version %s is not in the release manifest", version);
  return NULL;
}
