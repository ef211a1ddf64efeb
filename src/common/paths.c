#include "paths.h"

#include <errno.h>
#include <glib/gstdio.h>

#include "banger-error.h"

/* g_get_user_data_dir() caches its answer for the life of the process; the
 * daemon reads the variables itself so a test can point it elsewhere. */
static char *
xdg_dir (const char *var, const char *fallback_rel)
{
  const char *v = g_getenv (var);

  if (v != NULL && g_path_is_absolute (v))
    return g_build_filename (v, "banger", NULL);
  return g_build_filename (g_get_home_dir (), fallback_rel, "banger", NULL);
}

char *
banger_data_dir (void)
{
  return xdg_dir ("XDG_DATA_HOME", ".local/share");
}

char *
banger_cache_dir (void)
{
  return xdg_dir ("XDG_CACHE_HOME", ".cache");
}

char *
banger_config_dir (void)
{
  return xdg_dir ("XDG_CONFIG_HOME", ".config");
}

char *
banger_db_path (void)
{
  g_autofree char *dir = banger_data_dir ();
  return g_build_filename (dir, "banger.db", NULL);
}

gboolean
banger_ensure_dir (const char *path, GError **error)
{
  if (g_mkdir_with_parents (path, 0700) < 0) {
    int saved = errno;
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "cannot create directory %s: %s", path,
                 g_strerror (saved));
    return FALSE;
  }
  return TRUE;
}

gboolean
banger_rename_into_place (const char *tmp, const char *dest, gboolean ok, GError **error)
{
  if (ok && g_rename (tmp, dest) < 0) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "cannot create %s: %s", dest,
                 g_strerror (errno));
    ok = FALSE;
  }
  if (!ok)
    g_unlink (tmp);
  return ok;
}
