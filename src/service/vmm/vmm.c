/* The drivers by name: what a VM record's "driver" field and `--driver`
 * resolve to (vmm.h). */

#include "vmm.h"

#include "vmm-firecracker.h"

const BangerVmmDriver *
banger_vmm_driver_by_name (const char *name)
{
  if (g_strcmp0 (name, "qemu") == 0)
    return banger_vmm_qemu_driver ();
  if (g_strcmp0 (name, "firecracker") == 0)
    return banger_vmm_firecracker_driver ();
  return NULL;
}

const BangerVmmDriver *
banger_vmm_driver_for_record (const char *name)
{
  const BangerVmmDriver *driver = banger_vmm_driver_by_name (name);

  return driver != NULL ? driver : banger_vmm_qemu_driver ();
}

gboolean
banger_vmm_state_complete (const char *state_dir)
{
  g_autofree char *state = g_build_filename (state_dir, BANGER_VMM_STATE_FILE, NULL);

  /* Every driver renames BANGER_VMM_STATE_FILE into place last. */
  return g_file_test (state, G_FILE_TEST_IS_REGULAR);
}
