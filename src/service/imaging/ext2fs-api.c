/* libext2fs loaded on first use (ext2fs-api.h). */
#include "ext2fs-api.h"

#include <config.h>

#include "lazy-library.h"

static BangerExt2fsApi api;
static const BangerLazySymbol symbols[] = {
/* # and ## take each name unexpanded, past ext2fs-api.h's #define of it. */
#define ENTRY(f) { #f, G_STRUCT_OFFSET (BangerExt2fsApi, fn_##f) },
  BANGER_EXT2FS_FUNCTIONS (ENTRY)
#undef ENTRY
      { "unix_io_manager", G_STRUCT_OFFSET (BangerExt2fsApi, var_unix_io_manager) },
};
static BangerLazyLibrary library
    = { "libext2fs", BANGER_EXT2FS_SONAME, symbols, G_N_ELEMENTS (symbols), &api };

gboolean
banger_ext2fs_load (GError **error)
{
  return banger_lazy_library_load (&library, error);
}

const BangerExt2fsApi *
banger_ext2fs_api (void)
{
  return banger_lazy_library_table (&library);
}
