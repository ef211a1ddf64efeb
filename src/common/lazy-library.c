/* Libraries loaded on first use (lazy-library.h). */
#include "lazy-library.h"

#include <gmodule.h>

#include "banger-error.h"

static void
load_once (BangerLazyLibrary *lib)
{
  if (g_once_init_enter (&lib->loaded)) {
    GModule *module = g_module_open (lib->soname, G_MODULE_BIND_LAZY | G_MODULE_BIND_LOCAL);

    if (module == NULL) {
      lib->error = g_strdup (g_module_error ());
    } else {
      /* Never unloaded: objects it made may live anywhere, and some
       * libraries keep global state from their initialisation. */
      g_module_make_resident (module);
      for (guint i = 0; i < lib->n_symbols && lib->error == NULL; i++) {
        gpointer *slot = G_STRUCT_MEMBER_P (lib->table, lib->symbols[i].offset);

        if (!g_module_symbol (module, lib->symbols[i].name, slot))
          lib->error = g_strdup (g_module_error ());
      }
    }
    g_once_init_leave (&lib->loaded, 1);
  }
}

gboolean
banger_lazy_library_load (BangerLazyLibrary *lib, GError **error)
{
  load_once (lib);
  if (lib->error != NULL) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_UNSUPPORTED, "cannot load %s (%s): %s",
                 lib->what, lib->soname, lib->error);
    return FALSE;
  }
  return TRUE;
}

gpointer
banger_lazy_library_table (BangerLazyLibrary *lib)
{
  load_once (lib);
  if (lib->error != NULL)
    g_error ("cannot load %s (%s): %s", lib->what, lib->soname, lib->error);
  return lib->table;
}
