/* The warm-start cache's bookkeeping (src/service/vm/warm-cache.c,
 * docs/warm-start.md) without a guest: which inputs change the key, what a
 * lookup makes of an absent, complete or broken entry, listing, pruning by
 * image, leftovers of a killed save, and [vm] warm_start in the config. The
 * key is the real QEMU driver's (its state_compat reads the installed
 * qemu-system-x86_64); saving and restoring a real guest is tests/vm/
 * test_warm.py's. */
#define G_LOG_DOMAIN "test-warm-cache"

#include "banger-config.h"
#include "banger-error.h"
#include "remove-tree.h"
#include "warm-cache.h"

#include <glib/gstdio.h>
#include <string.h>
#include <utime.h>

typedef struct {
  char *dir;
  char *rootfs;
  char *kernel;
  BangerWarmInputs in;
} Fixture;

static void
write_file (const char *path, const char *text)
{
  g_autoptr (GError) error = NULL;
  g_file_set_contents (path, text, -1, &error);
  g_assert_no_error (error);
}

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;

  f->dir = g_dir_make_tmp ("banger-warm-XXXXXX", &error);
  g_assert_no_error (error);
  f->rootfs = g_build_filename (f->dir, "rootfs.ext4", NULL);
  f->kernel = g_build_filename (f->dir, "vmlinuz", NULL);
  write_file (f->rootfs, "a root filesystem");
  write_file (f->kernel, "a kernel");
  f->in = (BangerWarmInputs){
    .driver = banger_vmm_driver_by_name ("qemu"),
    .image = "minimal",
    .kernel = "default",
    .rootfs = f->rootfs,
    .kernel_path = f->kernel,
    .initrd_path = "",
    .vcpus = 2,
    .memory_mib = 1024,
    .disk_mib = 8192,
    .network = TRUE,
  };
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_assert_true (banger_remove_tree (f->dir, &error));
  g_free (f->dir);
  g_free (f->rootfs);
  g_free (f->kernel);
}

static char *
key_of (const BangerWarmInputs *in)
{
  g_autoptr (GError) error = NULL;
  char *key = banger_warm_cache_key (in, &error);
  g_assert_no_error (error);
  g_assert_nonnull (key);
  g_assert_cmpuint (strlen (key), ==, 32);
  return key;
}

/* Makes a complete entry by hand, as banger_warm_cache_save leaves one. */
static char *
make_entry (Fixture *f, const char *key, const char *image)
{
  g_autofree char *base = banger_warm_cache_dir (f->dir);
  char *dir = g_build_filename (base, key, NULL);
  g_autofree char *state = g_build_filename (dir, BANGER_VMM_STATE_FILE, NULL);
  g_autofree char *disk = g_build_filename (dir, BANGER_WARM_DISK_FILE, NULL);
  g_autofree char *manifest = g_build_filename (dir, BANGER_WARM_MANIFEST_FILE, NULL);
  g_autofree char *text = g_strdup_printf (
      "[snapshot]\nimage=%s\nkernel=default\ndriver=qemu\nkernel_args=banger.hostname=t\n"
      "agent_version=0.1.0\nvcpus=2\nmemory_mib=1024\ndisk_mib=8192\nnetwork=true\n"
      "created=1700000000\n",
      image);

  g_assert_no_errno (g_mkdir_with_parents (dir, 0755));
  write_file (state, "state");
  write_file (disk, "disk");
  write_file (manifest, text);
  return dir;
}

static void
test_key_inputs (Fixture *f, gconstpointer data)
{
  g_autofree char *key = key_of (&f->in);
  g_autofree char *again = key_of (&f->in);
  BangerWarmInputs in = f->in;
  struct {
    const char *what;
    BangerWarmInputs in;
  } changed[6];
  guint n = 0;

  g_assert_cmpstr (key, ==, again);
  /* The shape: each makes another key. */
  in = f->in, in.vcpus = 4, changed[n++] = (typeof (changed[0])){ "vcpus", in };
  in = f->in, in.memory_mib = 512, changed[n++] = (typeof (changed[0])){ "memory", in };
  in = f->in, in.disk_mib = 4096, changed[n++] = (typeof (changed[0])){ "disk", in };
  in = f->in, in.network = FALSE, changed[n++] = (typeof (changed[0])){ "network", in };
  in = f->in, in.initrd_path = f->kernel, changed[n++] = (typeof (changed[0])){ "initrd", in };
  /* A jailed VM's snapshot names the jail's paths: never a direct VM's. */
  in = f->in, in.jailed = TRUE, changed[n++] = (typeof (changed[0])){ "jailed", in };
  for (guint i = 0; i < n; i++) {
    g_autofree char *other = key_of (&changed[i].in);
    g_test_message ("%s", changed[i].what);
    g_assert_cmpstr (other, !=, key);
  }
  /* A new image (or agent: it lives in the image) and a new kernel: the
   * files are rewritten. */
  {
    GStatBuf st;
    struct utimbuf times;
    g_autofree char *after_kernel = NULL;
    g_autofree char *after_rootfs = NULL;

    g_assert_no_errno (g_stat (f->kernel, &st));
    times.actime = st.st_atime;
    times.modtime = st.st_mtime + 10;
    g_assert_no_errno (g_utime (f->kernel, &times));
    after_kernel = key_of (&f->in);
    g_assert_cmpstr (after_kernel, !=, key);
    write_file (f->rootfs, "another root filesystem");
    after_rootfs = key_of (&f->in);
    g_assert_cmpstr (after_rootfs, !=, after_kernel);
  }
}

static void
test_key_refusals (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  BangerWarmInputs in = f->in;
  g_autofree char *key = NULL;

  /* Firecracker's snapshots are reused (direct VMs, docs/warm-start.md),
   * keyed on its binary: none found, no key; found, a key of its own. */
  in.driver = banger_vmm_driver_by_name ("firecracker");
  g_setenv ("BANGER_FIRECRACKER", "/nonexistent/firecracker", TRUE);
  key = banger_warm_cache_key (&in, &error);
  g_assert_null (key);
  g_assert_error (error, BANGER_ERROR, BANGER_ERROR_UNSUPPORTED);
  g_clear_error (&error);
  g_setenv ("BANGER_FIRECRACKER", "/bin/sh", TRUE);
  key = banger_warm_cache_key (&in, &error);
  g_assert_no_error (error);
  g_assert_nonnull (key);
  {
    g_autofree char *qemu_key = key_of (&f->in);
    g_assert_cmpstr (key, !=, qemu_key);
  }
  g_clear_pointer (&key, g_free);
  g_unsetenv ("BANGER_FIRECRACKER");
  /* A file that is gone is named. */
  in = f->in;
  in.kernel_path = "/nonexistent/vmlinuz";
  key = banger_warm_cache_key (&in, &error);
  g_assert_null (key);
  g_assert_nonnull (error);
  g_assert_nonnull (strstr (error->message, "/nonexistent/vmlinuz"));
}

static void
test_lookup (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *key = key_of (&f->in);
  g_autofree char *dir = NULL;
  g_autofree char *state = NULL;
  g_autoptr (BangerWarmEntry) entry = NULL;

  /* Absent: NULL, no error. */
  g_assert_null (banger_warm_cache_lookup (f->dir, key, &error));
  g_assert_no_error (error);

  dir = make_entry (f, key, "minimal");
  entry = banger_warm_cache_lookup (f->dir, key, &error);
  g_assert_no_error (error);
  g_assert_nonnull (entry);
  g_assert_cmpstr (entry->image, ==, "minimal");
  g_assert_cmpstr (entry->kernel_args, ==, "banger.hostname=t");
  g_assert_cmpuint (entry->vcpus, ==, 2);
  g_assert_true (entry->network);
  g_assert_cmpint (entry->created, ==, 1700000000);

  /* Broken (its state is missing): an error naming the entry. */
  state = g_build_filename (dir, BANGER_VMM_STATE_FILE, NULL);
  g_assert_no_errno (g_unlink (state));
  g_clear_pointer (&entry, banger_warm_entry_free);
  entry = banger_warm_cache_lookup (f->dir, key, &error);
  g_assert_null (entry);
  g_assert_nonnull (error);
  g_assert_nonnull (strstr (error->message, dir));
  g_clear_error (&error);

  /* Removed: absent again. */
  g_assert_true (banger_warm_cache_remove (f->dir, key, &error));
  g_assert_no_error (error);
  g_assert_false (g_file_test (dir, G_FILE_TEST_EXISTS));
  g_assert_null (banger_warm_cache_lookup (f->dir, key, &error));
  g_assert_no_error (error);
  /* Removing what is not there is no error. */
  g_assert_true (banger_warm_cache_remove (f->dir, key, &error));
  g_assert_no_error (error);
}

static void
test_list_prune (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *a = make_entry (f, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "minimal");
  g_autofree char *b = make_entry (f, "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", "debian");
  g_autofree char *base = banger_warm_cache_dir (f->dir);
  g_autofree char *leftover = g_build_filename (base, ".tmp-Xy12ab", NULL);
  g_autoptr (GPtrArray) list = NULL;
  guint64 freed = 0;

  /* A save cut short by bangerd's end. */
  g_assert_no_errno (g_mkdir (leftover, 0700));
  list = banger_warm_cache_list (f->dir);
  g_assert_cmpuint (list->len, ==, 2);

  /* One image's only. */
  g_assert_cmpuint (banger_warm_cache_prune (f->dir, "debian", &freed, &error), ==, 1);
  g_assert_no_error (error);
  g_assert_false (g_file_test (b, G_FILE_TEST_EXISTS));
  g_assert_true (g_file_test (a, G_FILE_TEST_EXISTS));
  g_assert_true (g_file_test (leftover, G_FILE_TEST_EXISTS));
  /* An image without snapshots: nothing. */
  g_assert_cmpuint (banger_warm_cache_prune (f->dir, "nothing", &freed, &error), ==, 0);
  g_assert_no_error (error);
  g_assert_cmpuint (freed, ==, 0);
  /* All, and the leftover. */
  g_assert_cmpuint (banger_warm_cache_prune (f->dir, NULL, &freed, &error), ==, 1);
  g_assert_no_error (error);
  g_assert_false (g_file_test (a, G_FILE_TEST_EXISTS));
  g_assert_false (g_file_test (leftover, G_FILE_TEST_EXISTS));
  g_clear_pointer (&list, g_ptr_array_unref);
  list = banger_warm_cache_list (f->dir);
  g_assert_cmpuint (list->len, ==, 0);
}

static void
test_config (Fixture *f, gconstpointer data)
{
  static const struct {
    const char *text;
    gboolean want;
  } cases[] = {
    { "", TRUE },
    { "[vm]\nwarm_start=false\n", FALSE },
    { "[vm]\nwarm_start = 0\n", FALSE },
    { "[vm]\nwarm_start=true\n", TRUE },
    /* A typo is reported and the default kept: never locks the user out. */
    { "[vm]\nwarm_start=maybe\n", TRUE },
  };
  g_autofree char *path = g_build_filename (f->dir, "config", NULL);

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++) {
    g_autoptr (BangerConfig) config = NULL;

    write_file (path, cases[i].text);
    if (strstr (cases[i].text, "maybe") != NULL)
      g_test_expect_message ("bangerd-core", G_LOG_LEVEL_WARNING, "*warm_start=maybe*");
    config = banger_config_load (path, f->dir);
    g_test_assert_expected_messages ();
    g_assert_cmpint (banger_config_get_warm_start (config), ==, cases[i].want);
  }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
#define T(path, fn) g_test_add (path, Fixture, NULL, fixture_setup, fn, fixture_teardown)
  T ("/warm-cache/key-inputs", test_key_inputs);
  T ("/warm-cache/key-refusals", test_key_refusals);
  T ("/warm-cache/lookup", test_lookup);
  T ("/warm-cache/list-prune", test_list_prune);
  T ("/warm-cache/config", test_config);
#undef T
  return g_test_run ();
}
