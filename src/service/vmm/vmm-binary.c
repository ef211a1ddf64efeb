/* A VMM binary's identity for saved states (vmm.h, state_compat). */

#include "vmm.h"

#include <glib/gstdio.h>

char *
banger_vmm_binary_identity (const char *program)
{
  g_autofree char *path = g_find_program_in_path (program);
  GStatBuf st;

  if (path == NULL || g_stat (path, &st) < 0)
    return NULL;
  /* Path, size and mtime change with every install of another build; the
   * version string alone would miss a rebuilt package of one version. */
  return g_strdup_printf ("%s:%" G_GINT64_FORMAT ":%" G_GINT64_FORMAT ".%09ld", path,
                          (gint64)st.st_size, (gint64)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
}
