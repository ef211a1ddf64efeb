#include "config.h"

#include "install-config.h"

#include <string.h>

char *
banger_helper_conf_string (const char *group, const char *key)
{
  g_autoptr (GKeyFile) kf = g_key_file_new ();
  const char *env = g_getenv ("BANGER_HELPER_CONF");
  const char *path = env != NULL && *env != '\0' ? env : BANGER_SYSCONFDIR "/helper.conf";
  char *value;

  if (!g_key_file_load_from_file (kf, path, G_KEY_FILE_NONE, NULL))
    return NULL;
  value = g_key_file_get_string (kf, group, key, NULL);
  if (value != NULL)
    g_strstrip (value);
  return value;
}

char *
banger_install_record_path (void)
{
  char *path = banger_helper_conf_string ("update", "install_toml");

  return path != NULL ? path : g_strdup (BANGER_SYSCONFDIR "/install.toml");
}

char *
banger_install_record_version (const char *path)
{
  g_autofree char *text = NULL;
  g_auto (GStrv) lines = NULL;

  if (!g_file_get_contents (path, &text, NULL, NULL))
    return NULL;
  lines = g_strsplit (text, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++) {
    const char *l = lines[i], *open, *close;

    while (*l == ' ' || *l == '\t')
      l++;
    if (!g_str_has_prefix (l, "version"))
      continue;
    l += strlen ("version");
    while (*l == ' ' || *l == '\t')
      l++;
    if (*l != '=')
      continue;
    open = strchr (l, '"');
    close = open != NULL ? strchr (open + 1, '"') : NULL;
    if (close != NULL)
      return g_strndup (open + 1, close - open - 1);
  }
  return g_strdup ("");
}
