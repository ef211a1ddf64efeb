#define G_LOG_DOMAIN "fc-find-pid"

/* Test tool: prints what the Firecracker driver's find_pid answers for a
 * VM directory (what bangerd's reconcile would get), so the python tests
 * can ask it across helper restarts. */

#include <stdio.h>

#include "vmm-firecracker.h"

int
main (int argc, char **argv)
{
  if (argc != 2) {
    fprintf (stderr, "usage: fc-find-pid VM_DIR\n");
    return 2;
  }
  printf ("%u\n", banger_vmm_firecracker_driver ()->find_pid (argv[1]));
  return 0;
}
