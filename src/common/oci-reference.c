#include "oci-reference.h"

#include <string.h>

#include "banger-error.h"

void
banger_oci_reference_free (BangerOciReference *ref)
{
  if (ref == NULL)
    return;
  g_free (ref->registry);
  g_free (ref->repository);
  g_free (ref->tag);
  g_free (ref->digest);
  g_free (ref);
}

gboolean
banger_oci_digest_is_valid (const char *digest)
{
  if (digest == NULL || !g_str_has_prefix (digest, "sha256:") || strlen (digest) != 7 + 64)
    return FALSE;
  for (const char *p = digest + 7; *p; p++)
    if (!g_ascii_isdigit (*p) && !(*p >= 'a' && *p <= 'f'))
      return FALSE;
  return TRUE;
}

/* The distribution spec's grammar: path components of lowercase
 * alphanumerics separated by '.', '_', '__' or '-'. Checked loosely (the
 * separators anywhere but at the ends) because the registry rejects the rest;
 * what matters here is that nothing can break out of the URL path. */
static gboolean
repository_is_valid (const char *repo)
{
  g_auto (GStrv) parts = g_strsplit (repo, "/", -1);

  if (*repo == '\0')
    return FALSE;
  for (guint i = 0; parts[i] != NULL; i++) {
    const char *c = parts[i];
    gsize len = strlen (c);
    if (len == 0 || !g_ascii_isalnum (c[0]) || !g_ascii_isalnum (c[len - 1]))
      return FALSE;
    for (const char *p = c; *p; p++)
      if (!(g_ascii_islower (*p) || g_ascii_isdigit (*p) || *p == '.' || *p == '_' || *p == '-'))
        return FALSE;
  }
  return TRUE;
}

static gboolean
tag_is_valid (const char *tag)
{
  gsize len = strlen (tag);

  if (len == 0 || len > 128 || !(g_ascii_isalnum (tag[0]) || tag[0] == '_'))
    return FALSE;
  for (const char *p = tag; *p; p++)
    if (!(g_ascii_isalnum (*p) || *p == '_' || *p == '.' || *p == '-'))
      return FALSE;
  return TRUE;
}

static gboolean
registry_is_valid (const char *host)
{
  if (*host == '\0' || strlen (host) > 255)
    return FALSE;
  for (const char *p = host; *p; p++)
    if (!(g_ascii_isalnum (*p) || *p == '.' || *p == '-' || *p == ':' || *p == '[' || *p == ']'))
      return FALSE;
  /* A port is digits ("debian:bad/tag" is no registry). */
  const char *colon = strrchr (host, ':');
  const char *bracket = strrchr (host, ']');
  if (colon != NULL && (bracket == NULL || colon > bracket)) {
    if (colon[1] == '\0')
      return FALSE;
    for (const char *p = colon + 1; *p; p++)
      if (!g_ascii_isdigit (*p))
        return FALSE;
  }
  return TRUE;
}

BangerOciReference *
banger_oci_reference_parse (const char *text, GError **error)
{
  g_autoptr (BangerOciReference) ref = g_new0 (BangerOciReference, 1);
  g_autofree char *name = NULL;
  const char *at, *slash, *colon, *rest;

  if (text == NULL || *text == '\0' || strlen (text) > 4096) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
                 "“%s” is not an image reference", text ? text : "");
    return NULL;
  }
  at = strchr (text, '@');
  if (at != NULL) {
    if (!banger_oci_digest_is_valid (at + 1)) {
      g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
                   "image reference “%s”: “%s” is not a sha256 digest", text, at + 1);
      return NULL;
    }
    ref->digest = g_strdup (at + 1);
    name = g_strndup (text, at - text);
  } else {
    name = g_strdup (text);
  }

  slash = strchr (name, '/');
  if (slash != NULL) {
    g_autofree char *first = g_strndup (name, slash - name);
    if (strchr (first, '.') != NULL || strchr (first, ':') != NULL
        || g_str_equal (first, "localhost")) {
      ref->registry = g_steal_pointer (&first);
      rest = slash + 1;
    } else {
      rest = name;
    }
  } else {
    rest = name;
  }
  if (ref->registry == NULL || g_str_equal (ref->registry, "index.docker.io")) {
    g_free (ref->registry);
    ref->registry = g_strdup ("docker.io");
  }

  /* The tag is after the last ':' of the last component (a ':' before a
   * '/' would belong to a registry port, handled above). */
  slash = strrchr (rest, '/');
  colon = strrchr (slash ? slash : rest, ':');
  if (colon != NULL) {
    ref->repository = g_strndup (rest, colon - rest);
    ref->tag = g_strdup (colon + 1);
    if (!tag_is_valid (ref->tag)) {
      g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
                   "image reference “%s”: “%s” is not a valid tag", text, ref->tag);
      return NULL;
    }
  } else {
    ref->repository = g_strdup (rest);
    if (ref->digest == NULL)
      ref->tag = g_strdup ("latest");
  }
  if (g_str_equal (ref->registry, "docker.io") && strchr (ref->repository, '/') == NULL) {
    char *full = g_strconcat ("library/", ref->repository, NULL);
    g_free (ref->repository);
    ref->repository = full;
  }
  if (!registry_is_valid (ref->registry)) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
                 "image reference “%s”: “%s” is not a registry host", text, ref->registry);
    return NULL;
  }
  if (!repository_is_valid (ref->repository)) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
                 "image reference “%s”: “%s” is not a valid repository name (lowercase letters, "
                 "digits and . _ - between slashes)",
                 text, ref->repository);
    return NULL;
  }
  return g_steal_pointer (&ref);
}

char *
banger_oci_reference_to_string (const BangerOciReference *ref)
{
  GString *s = g_string_new (NULL);

  g_string_append_printf (s, "%s/%s", ref->registry, ref->repository);
  if (ref->tag != NULL)
    g_string_append_printf (s, ":%s", ref->tag);
  if (ref->digest != NULL)
    g_string_append_printf (s, "@%s", ref->digest);
  return g_string_free (s, FALSE);
}

const char *
banger_oci_reference_api_host (const BangerOciReference *ref)
{
  if (g_str_equal (ref->registry, "docker.io"))
    return "registry-1.docker.io";
  return ref->registry;
}

const char *
banger_oci_reference_manifest_ref (const BangerOciReference *ref)
{
  return ref->digest != NULL ? ref->digest : ref->tag;
}
