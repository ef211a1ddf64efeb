/* libsoup loaded on first use (soup-api.h). */
#include "soup-api.h"

#include <config.h>

#include "lazy-library.h"

static BangerSoupApi api;
static const BangerLazySymbol symbols[] = {
/* # and ## take each name unexpanded, past soup-api.h's #define of it. */
#define ENTRY(f) { #f, G_STRUCT_OFFSET (BangerSoupApi, fn_##f) },
  BANGER_SOUP_FUNCTIONS (ENTRY)
#undef ENTRY
};
static BangerLazyLibrary library
    = { "libsoup", BANGER_SOUP_SONAME, symbols, G_N_ELEMENTS (symbols), &api };

gboolean
banger_soup_load (GError **error)
{
  return banger_lazy_library_load (&library, error);
}

const BangerSoupApi *
banger_soup_api (void)
{
  return banger_lazy_library_table (&library);
}
