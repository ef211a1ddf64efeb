/* bench/dns: gives the benchmark's store one VM that holds a lease, through
 * bangerd's own store calls (no SQL of the bench's own), before bangerd
 * opens it. The VM is "stopped" with its lease still held: reconcile only
 * touches active VMs, so the record stays as written and no guest (and no
 * TCG guest eating the second core) is needed for a name to answer.
 *
 * usage: seed-lease DB NAME IPV4 */
#include "store.h"

#include <stdio.h>

int
main (int argc, char **argv)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (BangerStore) store = NULL;
  g_autoptr (BangerVmRecord) rec = banger_vm_record_new ();

  if (argc != 4) {
    fprintf (stderr, "usage: %s DB NAME IPV4\n", argv[0]);
    return 2;
  }
  store = banger_store_open (argv[1], &error);
  if (store == NULL) {
    fprintf (stderr, "seed-lease: %s\n", error->message);
    return 1;
  }
  g_free (rec->id);
  rec->id = g_strdup ("0123456789abcdef");
  g_free (rec->name);
  rec->name = g_strdup (argv[2]);
  g_free (rec->state);
  rec->state = g_strdup ("stopped");
  g_free (rec->driver);
  rec->driver = g_strdup ("qemu");
  g_free (rec->ipv4);
  rec->ipv4 = g_strdup (argv[3]);
  rec->created_at = g_get_real_time () / G_USEC_PER_SEC;
  if (!banger_store_vm_insert (store, rec, &error)) {
    fprintf (stderr, "seed-lease: %s\n", error->message);
    return 1;
  }
  return 0;
}
