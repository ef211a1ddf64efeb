/* libarchive loaded on first use (archive-api.h). */
#include "archive-api.h"

#include <config.h>

#include "lazy-library.h"

static BangerArchiveApi api;
static const BangerLazySymbol symbols[] = {
/* # and ## take each name unexpanded, past archive-api.h's #define of it. */
#define ENTRY(f) { #f, G_STRUCT_OFFSET (BangerArchiveApi, fn_##f) },
  BANGER_ARCHIVE_FUNCTIONS (ENTRY)
#undef ENTRY
};
static BangerLazyLibrary library
    = { "libarchive", BANGER_ARCHIVE_SONAME, symbols, G_N_ELEMENTS (symbols), &api };

gboolean
banger_archive_load (GError **error)
{
  return banger_lazy_library_load (&library, error);
}

const BangerArchiveApi *
banger_archive_api (void)
{
  return banger_lazy_library_table (&library);
}
