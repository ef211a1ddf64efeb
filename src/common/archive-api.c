/* libarchive loaded on first use (archive-api.h). */
#include "archive-api.h"

#include <config.h>

#include <gmodule.h>

#include "banger-error.h"

static BangerArchiveApi api;
static char *load_error; /* set once, kept: the answer does not change */

static void
load_once (void)
{
  static gsize loaded;

  if (g_once_init_enter (&loaded)) {
    /* # and ## take the names unexpanded: the header's #defines would
     * otherwise turn them into table lookups. */
#define BANGER_ARCHIVE_ENTRY(f) { #f, G_STRUCT_OFFSET (BangerArchiveApi, fn_##f) },
    static const struct {
      const char *name;
      goffset offset;
    } symbols[] = { BANGER_ARCHIVE_FUNCTIONS (BANGER_ARCHIVE_ENTRY) };
#undef BANGER_ARCHIVE_ENTRY
    GModule *module = g_module_open (BANGER_ARCHIVE_SONAME, G_MODULE_BIND_LAZY | G_MODULE_BIND_LOCAL);

    if (module == NULL) {
      load_error = g_strdup (g_module_error ());
    } else {
      /* Never unloaded: archives opened from one thread may be in use. */
      g_module_make_resident (module);
      for (guint i = 0; i < G_N_ELEMENTS (symbols) && load_error == NULL; i++) {
        gpointer *slot = G_STRUCT_MEMBER_P (&api, symbols[i].offset);

        if (!g_module_symbol (module, symbols[i].name, slot))
          load_error = g_strdup (g_module_error ());
      }
    }
    g_once_init_leave (&loaded, 1);
  }
}

gboolean
banger_archive_load (GError **error)
{
  load_once ();
  if (load_error != NULL) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_UNSUPPORTED, "cannot load libarchive (%s): %s",
                 BANGER_ARCHIVE_SONAME, load_error);
    return FALSE;
  }
  return TRUE;
}

const BangerArchiveApi *
banger_archive_api (void)
{
  load_once ();
  if (load_error != NULL)
    g_error ("cannot load libarchive (%s): %s", BANGER_ARCHIVE_SONAME, load_error);
  return &api;
}
