#define G_LOG_DOMAIN "test-runtime-parts"

/* IPv4 leases over the real store, and ssh material made by the real
 * ssh-keygen and checked by the real ssh-keygen. */

#include <gio/gio.h>
#include <glib/gstdio.h>

#include "banger-error.h"
#include "remove-tree.h"
#include "net-lease.h"
#include "ssh-keys.h"
#include "store.h"

static char *
tmpdir (void)
{
  g_autoptr (GError) error = NULL;
  char *dir = g_dir_make_tmp ("banger-rt-XXXXXX", &error);
  g_assert_no_error (error);
  return dir;
}

static BangerVmRecord *
insert_vm (BangerStore *store, const char *id, const char *name)
{
  g_autoptr (GError) error = NULL;
  BangerVmRecord *rec = banger_vm_record_new ();

  g_free (rec->id);
  rec->id = g_strdup (id);
  g_free (rec->name);
  rec->name = g_strdup (name);
  g_free (rec->state);
  rec->state = g_strdup ("created");
  g_assert_true (banger_store_vm_insert (store, rec, &error));
  g_assert_no_error (error);
  return rec;
}

static void
test_lease_deterministic (void)
{
  g_autofree char *dir = tmpdir ();
  g_autofree char *db = g_build_filename (dir, "banger.db", NULL);
  g_autoptr (GError) error = NULL;
  g_autoptr (BangerStore) store = banger_store_open (db, &error);
  g_autoptr (BangerVmRecord) a = insert_vm (store, "00000000000000aa", "a");
  g_autofree char *ip1 = NULL;
  g_autofree char *ip2 = NULL;
  guint32 net;
  guint prefix;

  g_assert_no_error (error);
  ip1 = banger_lease_acquire (store, a->id, "10.77.0.1/24", &error);
  g_assert_no_error (error);
  g_assert_true (g_str_has_prefix (ip1, "10.77.0."));
  g_assert_cmpstr (ip1, !=, "10.77.0.1");
  g_assert_cmpstr (ip1, !=, "10.77.0.0");
  g_assert_cmpstr (ip1, !=, "10.77.0.255");
  /* Asking again gives the same address. */
  ip2 = banger_lease_acquire (store, a->id, "10.77.0.1/24", &error);
  g_assert_cmpstr (ip1, ==, ip2);
  /* The first candidate is a pure function of the id. */
  g_assert_true (banger_parse_cidr ("10.77.0.1/24", &net, &prefix, NULL));
  g_assert_cmpuint (banger_lease_first_candidate ("00000000000000aa", net & 0xffffff00u, prefix),
                    ==,
                    banger_lease_first_candidate ("00000000000000aa", net & 0xffffff00u, prefix));
  banger_remove_tree (dir, NULL);
}

static void
test_lease_collisions_and_exhaustion (void)
{
  g_autofree char *dir = tmpdir ();
  g_autofree char *db = g_build_filename (dir, "banger.db", NULL);
  g_autoptr (GError) error = NULL;
  g_autoptr (BangerStore) store = banger_store_open (db, &error);
  g_autoptr (GHashTable) seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);

  /* A /29 has 6 host addresses; the bridge takes one: 5 VMs fit. */
  for (int i = 0; i < 5; i++) {
    g_autofree char *id = g_strdup_printf ("%016x", 0x1000 + i);
    g_autofree char *name = g_strdup_printf ("vm%d", i);
    g_autoptr (BangerVmRecord) rec = insert_vm (store, id, name);
    char *ip = banger_lease_acquire (store, id, "192.168.50.1/29", &error);
    g_assert_no_error (error);
    g_assert_false (g_hash_table_contains (seen, ip));
    g_assert_cmpstr (ip, !=, "192.168.50.1");
    g_assert_cmpstr (ip, !=, "192.168.50.0");
    g_assert_cmpstr (ip, !=, "192.168.50.7");
    g_hash_table_add (seen, ip);
  }
  {
    g_autoptr (BangerVmRecord) rec = insert_vm (store, "00000000000fffff", "late");
    g_autofree char *ip = banger_lease_acquire (store, rec->id, "192.168.50.1/29", &error);
    g_assert_null (ip);
    g_assert_error (error, BANGER_ERROR, BANGER_ERROR_BUSY);
    g_assert_nonnull (strstr (error->message, "192.168.50.1/29"));
    g_clear_error (&error);
    /* Releasing one frees a place. */
    g_assert_true (banger_store_lease_release (store, "0000000000001000", &error));
    ip = banger_lease_acquire (store, rec->id, "192.168.50.1/29", &error);
    g_assert_no_error (error);
    g_assert_nonnull (ip);
  }
  banger_remove_tree (dir, NULL);
}

/* Addresses another user's VMs hold (the helper said Exists) are skipped,
 * and a lease this VM already had on one of them is given up. */
static void
test_lease_excluding (void)
{
  g_autofree char *dir = tmpdir ();
  g_autofree char *db = g_build_filename (dir, "banger.db", NULL);
  g_autoptr (GError) error = NULL;
  g_autoptr (BangerStore) store = banger_store_open (db, &error);
  g_autoptr (BangerVmRecord) rec = insert_vm (store, "0000000000002000", "ex");
  g_autofree char *first = banger_lease_acquire (store, rec->id, "192.168.51.1/24", &error);
  g_autofree char *second = NULL;
  g_autofree char *third = NULL;
  g_autofree char *again = NULL;

  g_assert_no_error (error);
  {
    const char *taken[] = { first, NULL };

    second = banger_lease_acquire_excluding (store, rec->id, "192.168.51.1/24", taken, &error);
    g_assert_no_error (error);
    g_assert_cmpstr (second, !=, first);
  }
  {
    const char *taken[] = { first, second, NULL };

    third = banger_lease_acquire_excluding (store, rec->id, "192.168.51.1/24", taken, &error);
    g_assert_no_error (error);
    g_assert_cmpstr (third, !=, first);
    g_assert_cmpstr (third, !=, second);
  }
  /* the store keeps the last one */
  again = banger_lease_acquire (store, rec->id, "192.168.51.1/24", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (again, ==, third);
  banger_remove_tree (dir, NULL);
}

static void
test_cidr_parse (void)
{
  guint32 a;
  guint p;
  const char *bad[]
      = { "",     "10.77.0.1",    "10.77.0.1/", "10.77.0.1/33", "10.77.0.1/31", "10.77.0.300/24",
          "x/24", "10.77.0.1/24x" };

  g_assert_true (banger_parse_cidr ("10.77.0.1/24", &a, &p, NULL));
  g_assert_cmphex (a, ==, 0x0a4d0001);
  g_assert_cmpuint (p, ==, 24);
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++) {
    g_autoptr (GError) error = NULL;
    g_assert_false (banger_parse_cidr (bad[i], &a, &p, &error));
    g_assert_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT);
  }
}

static char *
keygen_fingerprint (const char *path)
{
  const char *argv[] = { "ssh-keygen", "-l", "-f", path, NULL };
  g_autofree char *out = NULL;
  g_autoptr (GError) error = NULL;
  int status = 0;

  g_spawn_sync (NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH | G_SPAWN_STDERR_TO_DEV_NULL, NULL,
                NULL, &out, NULL, &status, &error);
  g_assert_no_error (error);
  g_assert_true (g_spawn_check_wait_status (status, NULL));
  return g_strdup (g_strstrip (out));
}

static void
test_ssh_keys (void)
{
  g_autofree char *dir = tmpdir ();
  g_autofree char *ssh_dir = g_build_filename (dir, "ssh", NULL);
  g_autofree char *vm_dir = g_build_filename (dir, "vm", NULL);
  g_autofree char *known = g_build_filename (ssh_dir, "known_hosts", NULL);
  g_autoptr (GError) error = NULL;
  g_autofree char *user1 = banger_ssh_ensure_user_key (ssh_dir, &error);
  g_autofree char *user2 = NULL;
  g_autofree char *priv1 = NULL, *pub1 = NULL, *priv2 = NULL, *pub2 = NULL;
  g_autofree char *contents = NULL;
  g_autofree char *lookup = NULL;

  g_assert_no_error (error);
  g_assert_true (g_str_has_prefix (user1, "ssh-ed25519 "));
  /* Stable: the second call reuses the key. */
  user2 = banger_ssh_ensure_user_key (ssh_dir, &error);
  g_assert_cmpstr (user1, ==, user2);

  g_mkdir (vm_dir, 0700);
  g_assert_true (banger_ssh_new_host_key (vm_dir, &priv1, &pub1, &error));
  g_assert_true (g_str_has_prefix (priv1, "-----BEGIN OPENSSH PRIVATE KEY-----"));
  /* Never shared: a second VM's key differs. */
  g_assert_true (banger_ssh_new_host_key (vm_dir, &priv2, &pub2, &error));
  g_assert_cmpstr (pub1, !=, pub2);

  g_assert_true (banger_ssh_pin_host_key (known, "banger-a", pub1, &error));
  g_assert_true (banger_ssh_pin_host_key (known, "banger-b", pub2, &error));
  /* Re-pinning replaces. */
  g_assert_true (banger_ssh_pin_host_key (known, "banger-a", pub2, &error));
  g_assert_true (g_file_get_contents (known, &contents, NULL, NULL));
  {
    g_auto (GStrv) lines = g_strsplit (contents, "\n", -1);
    g_assert_cmpuint (g_strv_length (lines), ==, 3);
  }
  /* ssh-keygen itself finds the pin, i.e. OpenSSH will read the file. */
  {
    const char *argv[] = { "ssh-keygen", "-F", "banger-b", "-f", known, NULL };
    int status = 0;
    g_spawn_sync (NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, &lookup, NULL,
                  &status, &error);
    g_assert_no_error (error);
    g_assert_true (g_spawn_check_wait_status (status, NULL));
    g_assert_nonnull (strstr (lookup, "banger-b"));
  }
  g_assert_true (banger_ssh_unpin_host_key (known, "banger-a", &error));
  g_assert_true (banger_ssh_unpin_host_key (known, "banger-zzz", &error));
  g_free (contents);
  g_assert_true (g_file_get_contents (known, &contents, NULL, NULL));
  g_assert_null (strstr (contents, "banger-a "));
  g_assert_nonnull (strstr (contents, "banger-b "));
  {
    g_autofree char *pubfile = g_build_filename (vm_dir, "ssh_host_ed25519_key.pub", NULL);
    g_autofree char *fp = keygen_fingerprint (pubfile);
    g_assert_nonnull (strstr (fp, "ED25519"));
  }
  {
    g_autoptr (GError) e2 = NULL;
    g_assert_false (banger_ssh_pin_host_key (known, "x", "garbage", &e2));
    g_assert_error (e2, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT);
  }
  banger_remove_tree (dir, NULL);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/lease/deterministic", test_lease_deterministic);
  g_test_add_func ("/lease/collisions-exhaustion", test_lease_collisions_and_exhaustion);
  g_test_add_func ("/lease/excluding", test_lease_excluding);
  g_test_add_func ("/lease/cidr", test_cidr_parse);
  g_test_add_func ("/ssh/keys", test_ssh_keys);
  return g_test_run ();
}
