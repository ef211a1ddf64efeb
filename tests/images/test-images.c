#define G_LOG_DOMAIN "test-images"

/* The image and kernel lists without a bus: the host's real kernel and
 * module tree, the real busybox-static, debootstrap against the Debian
 * mirror, and real guests booted with the qemu driver (TCG here) whose
 * agent answers over virtio-serial. */

#include <gio/gio.h>
#include <gio/gunixinputstream.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#include "agent-client.h"
#include "banger-error.h"
#include "boot-assets.h"
#include "image-recipes.h"
#include "image-list.h"
#include "kernel-file.h"
#include "kernel-list.h"
#include "engine.h"
#include "vm-list.h"
#include "vmm.h"

typedef struct {
  char *tmp;
  BangerEngine *root;
  BangerVmList *vms;         /* the root's */
  BangerImageList *images;   /* the root's */
  BangerKernelList *kernels; /* the root's */
} Fixture;

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *data_dir = NULL;
  g_autofree char *db = NULL;

  f->tmp = g_dir_make_tmp ("banger-images-XXXXXX", &error);
  g_assert_no_error (error);
  data_dir = g_build_filename (f->tmp, "banger", NULL);
  db = g_build_filename (data_dir, "banger.db", NULL);
  f->root = banger_engine_new (data_dir, db, NULL, &error);
  g_assert_no_error (error);
  f->vms = f->root->vms;
  g_assert_no_error (error);
  f->images = f->root->images;
  f->kernels = f->root->kernels;
}

static void
remove_tree (const char *path)
{
  const char *argv[] = { "rm", "-rf", "--one-file-system", path, NULL };
  g_spawn_sync (NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL, NULL, NULL);
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  f->vms = NULL;
  g_clear_pointer (&f->root, banger_engine_free);
  remove_tree (f->tmp);
  g_free (f->tmp);
}

static guint
count_entries (const char *dir)
{
  g_autoptr (GDir) d = g_dir_open (dir, 0, NULL);
  guint n = 0;

  while (d != NULL && g_dir_read_name (d) != NULL)
    n++;
  return n;
}

/* ---- kernels ---- */

static void
test_import_host (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *path = NULL, *release = NULL, *gz = NULL, *cpio = NULL;
  g_autoptr (BangerKernelRecord) rec = NULL;
  g_autoptr (GPtrArray) all = NULL;
  gsize gz_len = 0;

  g_assert_true (banger_kernel_find_host ("/boot", "/lib/modules", &path, &release, &error));
  rec = banger_kernel_list_import (f->kernels, path, "host", NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (rec->version, ==, release);
  g_assert_true (g_file_test (rec->path, G_FILE_TEST_IS_REGULAR));
  g_assert_true (banger_kernel_needs_initramfs ("/lib/modules", release));
  g_assert_cmpstr (rec->initrd_path, !=, "");
  g_assert_true (g_file_get_contents (rec->initrd_path, &gz, &gz_len, NULL));

  /* The initramfs holds the module list and the virtio modules. */
  {
    g_autoptr (GZlibDecompressor) z = g_zlib_decompressor_new (G_ZLIB_COMPRESSOR_FORMAT_GZIP);
    g_autoptr (GInputStream) mem = g_memory_input_stream_new_from_data (gz, gz_len, NULL);
    g_autoptr (GInputStream) in = g_converter_input_stream_new (mem, G_CONVERTER (z));
    g_autoptr (GOutputStream) out = g_memory_output_stream_new_resizable ();
    g_output_stream_splice (out, in, G_OUTPUT_STREAM_SPLICE_CLOSE_TARGET, NULL, &error);
    g_assert_no_error (error);
    cpio = g_memory_output_stream_steal_data (G_MEMORY_OUTPUT_STREAM (out));
    gsize len = g_memory_output_stream_get_data_size (G_MEMORY_OUTPUT_STREAM (out));
    g_assert_nonnull (memmem (cpio, len, "etc/banger/modules", strlen ("etc/banger/modules")));
    g_assert_nonnull (memmem (cpio, len, "virtio_blk.ko", strlen ("virtio_blk.ko")));
    g_assert_nonnull (memmem (cpio, len, "virtio_console.ko", strlen ("virtio_console.ko")));
  }

  all = banger_kernel_list_get_all (f->kernels, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (all->len, ==, 1);
  /* A second import under the same name is refused and adds nothing. */
  g_clear_pointer (&rec, banger_kernel_record_free);
  rec = banger_kernel_list_import (f->kernels, path, "host", NULL, NULL, NULL, &error);
  g_assert_error (error, BANGER_ERROR, BANGER_ERROR_EXISTS);
  g_assert_null (rec);
}

static void
test_import_not_a_kernel (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *bogus = g_build_filename (f->tmp, "not-a-kernel", NULL);
  g_autofree char *kdir = NULL;
  g_autoptr (BangerKernelRecord) rec = NULL;
  g_autoptr (GPtrArray) all = NULL;

  g_assert_true (g_file_set_contents (bogus, "hello, I am no kernel\n", -1, NULL));
  rec = banger_kernel_list_import (f->kernels, bogus, "bogus", NULL, NULL, NULL, &error);
  g_assert_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, bogus));
  g_assert_null (rec);
  all = banger_kernel_list_get_all (f->kernels, NULL);
  g_assert_cmpuint (all->len, ==, 0);
  kdir = g_build_filename (banger_vm_list_get_data_dir (f->vms), "kernels", NULL);
  g_assert_cmpuint (count_entries (kdir), ==, 0);
}

/* ---- defaults and CreateVM ---- */

static void
test_resolve_defaults (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (BangerBootAssets) a = NULL;
  g_autoptr (BangerBootAssets) b = NULL;
  g_autoptr (GPtrArray) images = NULL, kernels = NULL;

  a = banger_image_list_resolve_boot_assets (f->images, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (a->image_name, ==, "minimal");
  g_assert_cmpstr (a->kernel_name, ==, "default");
  g_assert_true (g_file_test (a->rootfs_path, G_FILE_TEST_IS_REGULAR));
  g_assert_true (g_file_test (a->kernel_path, G_FILE_TEST_IS_REGULAR));
  g_assert_true (g_file_test (a->initrd_path, G_FILE_TEST_IS_REGULAR));
  g_assert_false (a->image_has_sshd);
  /* Second time: the same records, nothing rebuilt. */
  b = banger_image_list_resolve_boot_assets (f->images, "", "", NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (a->rootfs_path, ==, b->rootfs_path);
  images = banger_image_list_list_images (f->images, NULL);
  kernels = banger_kernel_list_get_all (f->kernels, NULL);
  g_assert_cmpuint (images->len, ==, 1);
  g_assert_cmpuint (kernels->len, ==, 1);

  /* Anything else missing is NotFound, naming it. */
  g_clear_pointer (&b, banger_boot_assets_free);
  b = banger_image_list_resolve_boot_assets (f->images, "nosuch", NULL, NULL, &error);
  g_assert_error (error, BANGER_ERROR, BANGER_ERROR_NOT_FOUND);
  g_assert_nonnull (strstr (error->message, "nosuch"));
  g_clear_error (&error);
  b = banger_image_list_resolve_boot_assets (f->images, NULL, "nokernel", NULL, &error);
  g_assert_error (error, BANGER_ERROR, BANGER_ERROR_NOT_FOUND);
  g_assert_nonnull (strstr (error->message, "nokernel"));
}

static void
test_create_vm_unknown (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (BangerVmRecord) rec = NULL;
  GVariantBuilder b;

  g_variant_builder_init (&b, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add (&b, "{sv}", "name", g_variant_new_string ("a"));
  g_variant_builder_add (&b, "{sv}", "image", g_variant_new_string ("nosuch"));
  rec = banger_vm_list_create_vm (f->vms, g_variant_builder_end (&b), &error);
  g_assert_error (error, BANGER_ERROR, BANGER_ERROR_NOT_FOUND);
  g_assert_nonnull (strstr (error->message, "nosuch"));
  g_assert_null (rec);
  g_clear_error (&error);

  g_variant_builder_init (&b, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add (&b, "{sv}", "name", g_variant_new_string ("b"));
  g_variant_builder_add (&b, "{sv}", "kernel", g_variant_new_string ("nokernel"));
  rec = banger_vm_list_create_vm (f->vms, g_variant_builder_end (&b), &error);
  g_assert_error (error, BANGER_ERROR, BANGER_ERROR_NOT_FOUND);
  g_assert_nonnull (strstr (error->message, "nokernel"));
  g_clear_error (&error);

  /* The defaults pass before they exist: they are made on first start. */
  g_variant_builder_init (&b, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add (&b, "{sv}", "name", g_variant_new_string ("c"));
  rec = banger_vm_list_create_vm (f->vms, g_variant_builder_end (&b), &error);
  g_assert_no_error (error);
  g_assert_cmpstr (rec->image, ==, "minimal");
}

/* ---- booting ---- */

static void
async_cb (GObject *source, GAsyncResult *res, gpointer user_data)
{
  *(GAsyncResult **)user_data = g_object_ref (res);
}

static GAsyncResult *
wait_async (GAsyncResult **slot)
{
  while (*slot == NULL)
    g_main_context_iteration (NULL, TRUE);
  return *slot;
}

/* Boots @assets with the qemu driver and no network, runs @argv through the
 * agent and returns its stdout; powers the guest off and checks that QEMU
 * exits. */
static char *
boot_and_exec (Fixture *f, const BangerBootAssets *assets, const char *const *argv, int *status)
{
  g_autoptr (GError) error = NULL;
  const BangerVmmDriver *drv = banger_vmm_qemu_driver ();
  BangerVmmConfig c = { 0 };
  BangerVmmInstance i = { 0 };
  g_autoptr (BangerAgentClient) client = NULL;
  g_autoptr (BangerAgentExec) exec = NULL;
  g_autoptr (GAsyncResult) res = NULL;
  g_autoptr (GAsyncResult) res2 = NULL;
  g_autoptr (GAsyncResult) res3 = NULL;
  g_autofree char *console = NULL;
  g_autofree char *out = NULL;
  int fds[2];
  gint64 start = g_get_monotonic_time ();

  c.vm_id = g_strdup ("0123456789abcdef");
  c.name = g_strdup ("boot");
  c.vm_dir = g_build_filename (f->tmp, "vm", NULL);
  g_assert_cmpint (g_mkdir_with_parents (c.vm_dir, 0700), ==, 0);
  c.kernel = g_strdup (assets->kernel_path);
  c.initrd = g_strdup (assets->initrd_path);
  c.rootfs = g_strdup (assets->rootfs_path);
  c.vcpus = 1;
  c.memory_mib = 512;
  c.disk_mib = 2048;
  c.mac = g_strdup ("52:54:01:23:45:67");
  c.kernel_args = g_strdup ("");

  g_assert_true (drv->prepare_disk (&c, &i, &error));
  g_assert_no_error (error);
  g_assert_true (drv->launch (&c, &i, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (i.pid, >, 0);

  /* TCG boots take seconds; a loaded machine can take much longer. */
  banger_agent_client_connect_unix_async (i.agent_socket, 120000, NULL, async_cb, &res);
  client = banger_agent_client_connect_unix_finish (wait_async (&res), &error);
  if (client == NULL) {
    g_file_get_contents (i.console_log, &console, NULL, NULL);
    g_test_message ("console:\n%s", console ? console : "(none)");
    drv->quit (&i, NULL);
  }
  g_assert_no_error (error);
  g_test_message ("agent %s answered %.1f s after launch",
                  banger_agent_client_get_agent_version (client),
                  (g_get_monotonic_time () - start) / 1e6);

  g_assert_cmpint (pipe (fds), ==, 0);
  exec = banger_agent_client_exec (client, argv, NULL, -1, fds[1], -1, &error);
  g_assert_no_error (error);
  close (fds[1]);
  banger_agent_exec_wait_async (exec, NULL, async_cb, &res2);
  *status = banger_agent_exec_wait_finish (exec, wait_async (&res2), &error);
  g_assert_no_error (error);
  {
    g_autoptr (GInputStream) in = g_unix_input_stream_new (fds[0], TRUE);
    char buf[4096];
    gsize n = 0;
    g_input_stream_read_all (in, buf, sizeof buf - 1, &n, NULL, &error);
    g_assert_no_error (error);
    buf[n] = '\0';
    out = g_strdup (buf);
  }

  banger_agent_client_poweroff_async (client, NULL, async_cb, &res3);
  /* The reply may be lost with the guest: only QEMU's exit matters. */
  banger_agent_client_poweroff_finish (client, wait_async (&res3), NULL);
  g_assert_true (banger_vmm_signal_and_wait (i.pid, 0, 60000));
  banger_vmm_config_clear (&c);
  banger_vmm_instance_clear (&i);
  return g_steal_pointer (&out);
}

static void
test_boot_minimal (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (BangerBootAssets) a = NULL;
  g_autoptr (BangerKernelRecord) k = NULL;
  const char *argv[] = { "uname", "-r", NULL };
  g_autofree char *out = NULL;
  int status = -1;

  g_assert_null (g_getenv ("BANGER_ACCEL"));
  a = banger_image_list_resolve_boot_assets (f->images, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  k = banger_kernel_list_find (f->kernels, a->kernel_name, &error);
  g_assert_no_error (error);
  out = boot_and_exec (f, a, argv, &status);
  g_assert_cmpint (status, ==, 0);
  g_assert_cmpstr (g_strstrip (out), ==, k->version);
}

static void
test_boot_debian (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (BangerEngineJob) job = NULL;
  g_autoptr (BangerBootAssets) a = NULL;
  const char *argv[] = { "/bin/sh", "-c",
                         "test -x /usr/sbin/sshd && ls /etc/ssh && cat /etc/debian_version", NULL };
  g_autofree char *out = NULL;
  int status = -1;
  gint64 start = g_get_monotonic_time ();

  job = banger_image_list_build_image (f->images, "debian", NULL, getuid (), &error);
  g_assert_no_error (error);
  g_assert_true (banger_engine_job_wait (job, &error));
  g_assert_no_error (error);
  g_test_message ("debian image built in %.1f s", (g_get_monotonic_time () - start) / 1e6);
  a = banger_image_list_resolve_boot_assets (f->images, "debian", NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (a->image_has_sshd);
  out = boot_and_exec (f, a, argv, &status);
  g_test_message ("guest said: %s", out);
  g_assert_cmpint (status, ==, 0);
  /* Host keys are never shipped in the image. */
  g_assert_null (strstr (out, "ssh_host_"));
  g_assert_nonnull (strstr (out, "sshd_config"));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
#define T(path, fn) g_test_add (path, Fixture, NULL, fixture_setup, fn, fixture_teardown)
  T ("/images/kernel/import-host", test_import_host);
  T ("/images/kernel/not-a-kernel", test_import_not_a_kernel);
  T ("/images/resolve-defaults", test_resolve_defaults);
  T ("/images/create-vm-unknown", test_create_vm_unknown);
  T ("/images/boot/minimal", test_boot_minimal);
  T ("/images/boot/debian", test_boot_debian);
#undef T
  return g_test_run ();
}
