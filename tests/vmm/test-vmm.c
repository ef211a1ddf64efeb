#define G_LOG_DOMAIN "test-vmm"

/* The qemu driver against the real qemu-system-x86_64 and the host's real
 * kernel; pid verification against real processes. */

#include <gio/gio.h>
#include <glib/gstdio.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "banger-error.h"
#include "kvm-probe.h"
#include "qmp.h"
#include "vmm.h"

static char *
find_host_kernel (void)
{
  g_autoptr (GDir) dir = g_dir_open ("/boot", 0, NULL);
  const char *name;

  while (dir && (name = g_dir_read_name (dir)) != NULL) {
    if (g_str_has_prefix (name, "vmlinuz-"))
      return g_build_filename ("/boot", name, NULL);
  }
  return NULL;
}

static void
test_kvm_probe_missing_device (void)
{
  g_autofree char *reason = NULL;

  g_assert_false (banger_kvm_probe ("/nonexistent/kvm", 1000, &reason));
  g_assert_nonnull (strstr (reason, "/nonexistent/kvm"));
}

static void
test_kvm_probe_host (void)
{
  g_autofree char *reason = NULL;
  gint64 start = g_get_monotonic_time ();
  gboolean ok = banger_kvm_probe ("/dev/kvm", 2000, &reason);
  gint64 took_ms = (g_get_monotonic_time () - start) / 1000;

  /* Whatever the host can do, the probe answers within its timeout and
   * gives a reason when it says no. */
  g_assert_cmpint (took_ms, <, 3000);
  if (!ok)
    g_assert_true (reason != NULL && *reason);
  g_test_message ("KVM usable: %s (%s)", ok ? "yes" : "no", reason ? reason : "");
  g_assert_cmpstr (banger_vmm_qemu_accel (NULL), ==, ok ? "kvm" : "tcg");
}

/* A child (python3, so its comm is known) whose command line carries @marker.
 * g_spawn_async returns only once the exec has happened, so comm is set. */
static GPid
spawn_sleeper (const char *marker)
{
  const char *argv[] = { "/usr/bin/python3", "-c", "import time; time.sleep(1000)", marker, NULL };
  g_autoptr (GError) error = NULL;
  GPid pid = 0;

  g_spawn_async (NULL, (char **)argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD, NULL, NULL, &pid, &error);
  g_assert_no_error (error);
  return pid;
}

static void
reap (GPid pid)
{
  kill (pid, SIGKILL);
  waitpid (pid, NULL, 0);
}

static char *
write_pidfile (const char *dir, const char *contents)
{
  char *path = g_build_filename (dir, "vmm.pid", NULL);
  g_autoptr (GError) error = NULL;
  g_file_set_contents (path, contents, -1, &error);
  g_assert_no_error (error);
  return path;
}

static char *
proc_comm (GPid pid)
{
  g_autofree char *path = g_strdup_printf ("/proc/%d/comm", pid);
  char *text = NULL;

  g_assert_true (g_file_get_contents (path, &text, NULL, NULL));
  return g_strstrip (text);
}

static void
test_pidfile_cases (void)
{
  g_autofree char *dir = g_dir_make_tmp ("banger-vmm-XXXXXX", NULL);
  GPid pid = spawn_sleeper ("--marker=vm-1234");
  g_autofree char *comm = proc_comm (pid);
  g_autofree char *text = g_strdup_printf ("%d", pid);
  g_autofree char *padded = g_strdup_printf ("  %d \n", pid);
  g_autofree char *p = NULL;

  g_assert_cmpstr (comm, ==, "python3");

  /* happy path */
  p = write_pidfile (dir, text);
  g_assert_cmpuint (banger_vmm_pid_from_pidfile (p, "python3", "vm-1234"), ==, (guint)pid);
  /* surrounding whitespace and newline tolerated */
  g_free (p);
  p = write_pidfile (dir, padded);
  g_assert_cmpuint (banger_vmm_pid_from_pidfile (p, "python3", "vm-1234"), ==, (guint)pid);
  /* a process whose comm is not the VMM's */
  g_assert_cmpuint (banger_vmm_pid_from_pidfile (p, "qemu-system-x86", "vm-1234"), ==, 0);
  /* the right program, but another VM's */
  g_assert_cmpuint (banger_vmm_pid_from_pidfile (p, "python3", "vm-9999"), ==, 0);
  /* garbage content */
  g_free (p);
  p = write_pidfile (dir, "12abc");
  g_assert_cmpuint (banger_vmm_pid_from_pidfile (p, "python3", NULL), ==, 0);
  g_free (p);
  p = write_pidfile (dir, "");
  g_assert_cmpuint (banger_vmm_pid_from_pidfile (p, "python3", NULL), ==, 0);
  g_free (p);
  p = write_pidfile (dir, "1");
  g_assert_cmpuint (banger_vmm_pid_from_pidfile (p, "systemd", NULL), ==, 0);
  /* stale pid: the process is gone */
  reap (pid);
  g_free (p);
  p = write_pidfile (dir, text);
  g_assert_cmpuint (banger_vmm_pid_from_pidfile (p, "python3", "vm-1234"), ==, 0);
  /* missing pidfile */
  g_unlink (p);
  g_assert_cmpuint (banger_vmm_pid_from_pidfile (p, "python3", NULL), ==, 0);
  g_rmdir (dir);
}

static void
test_qemu_launch_qmp_quit (void)
{
  g_autofree char *kernel = find_host_kernel ();
  g_autofree char *dir = g_dir_make_tmp ("banger-vmm-XXXXXX", NULL);
  g_autofree char *rootfs = g_build_filename (dir, "rootfs.ext4", NULL);
  g_autofree char *vm_dir = g_build_filename (dir, "vm", NULL);
  BangerVmmConfig c = { 0 };
  BangerVmmInstance i = { 0 };
  const BangerVmmDriver *drv = banger_vmm_qemu_driver ();
  g_autoptr (GError) error = NULL;
  g_autoptr (BangerQmp) qmp = NULL;
  g_autofree char *status = NULL;
  g_auto (GVariantDict) stats;
  g_autoptr (GFile) overlay = NULL;
  g_autoptr (GFileInfo) info = NULL;
  double cpu = 0;

  g_assert_nonnull (kernel);
  g_mkdir (vm_dir, 0700);
  /* An empty 64 MiB raw "rootfs": the kernel never gets that far here. */
  {
    int fd = g_open (rootfs, O_CREAT | O_WRONLY, 0600);
    g_assert_cmpint (fd, >=, 0);
    g_assert_cmpint (ftruncate (fd, 64 << 20), ==, 0);
    close (fd);
  }

  c.vm_id = g_strdup ("0123456789abcdef");
  c.name = g_strdup ("probe");
  c.vm_dir = g_strdup (vm_dir);
  c.kernel = g_strdup (kernel);
  c.rootfs = g_strdup (rootfs);
  c.vcpus = 1;
  c.memory_mib = 256;
  c.disk_mib = 8192;
  /* panic=0: without a root the kernel panics; keep it waiting instead of
   * rebooting, so QEMU stays up for the test. */
  c.kernel_args = g_strdup ("panic=0");

  g_assert_true (drv->prepare_disk (&c, &i, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (i.disk_mode, ==, "qcow2-overlay");
  /* The overlay is small however large the disk: only a header. */
  overlay = g_file_new_for_path (i.disk_path);
  info = g_file_query_info (overlay, G_FILE_ATTRIBUTE_STANDARD_ALLOCATED_SIZE, 0, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (
      g_file_info_get_attribute_uint64 (info, G_FILE_ATTRIBUTE_STANDARD_ALLOCATED_SIZE), <,
      1 << 20);

  g_assert_true (drv->launch (&c, &i, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (i.pid, >, 0);
  g_assert_cmpuint (drv->find_pid (vm_dir), ==, i.pid);

  qmp = banger_qmp_connect (i.control_socket, 5000, &error);
  g_assert_no_error (error);
  status = banger_qmp_query_status (qmp, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (status, ==, "running");
  {
    g_autoptr (JsonNode) bad = banger_qmp_execute (qmp, "no-such-command", NULL, &error);
    g_assert_null (bad);
    g_assert_error (error, BANGER_ERROR, BANGER_ERROR_FAILED);
    g_assert_nonnull (strstr (error->message, "no-such-command"));
    g_clear_error (&error);
  }
  g_clear_pointer (&qmp, banger_qmp_free);

  g_variant_dict_init (&stats, NULL);
  g_assert_true (banger_vmm_host_stats (i.pid, &stats, &error));
  g_assert_true (g_variant_dict_lookup (&stats, "vmm_cpu_seconds", "d", &cpu));
  g_assert_true (g_variant_dict_contains (&stats, "vmm_rss_bytes"));

  g_assert_true (drv->quit (&i, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (drv->find_pid (vm_dir), ==, 0);
  /* QEMU removes its pidfile when it quits. */
  g_assert_false (g_file_test (i.pidfile, G_FILE_TEST_EXISTS));

  banger_vmm_config_clear (&c);
  banger_vmm_instance_clear (&i);
  {
    g_autoptr (GFile) top = g_file_new_for_path (dir);
    const char *leftovers[] = {
      "vm/disk.qcow2", "vm/console.log", "vm/qmp.sock", "vm/agent.sock", "vm", "rootfs.ext4"
    };
    for (guint k = 0; k < G_N_ELEMENTS (leftovers); k++) {
      g_autofree char *path = g_build_filename (dir, leftovers[k], NULL);
      g_remove (path);
    }
    g_rmdir (dir);
  }
}

static void
test_qemu_bad_kernel (void)
{
  g_autofree char *dir = g_dir_make_tmp ("banger-vmm-XXXXXX", NULL);
  g_autofree char *rootfs = g_build_filename (dir, "rootfs.ext4", NULL);
  g_autofree char *kernel = g_build_filename (dir, "not-a-kernel", NULL);
  BangerVmmConfig c = { 0 };
  BangerVmmInstance i = { 0 };
  const BangerVmmDriver *drv = banger_vmm_qemu_driver ();
  g_autoptr (GError) error = NULL;

  g_file_set_contents (rootfs, "", 0, NULL);
  g_file_set_contents (kernel, "garbage", -1, NULL);
  c.vm_id = g_strdup ("0123456789abcdef");
  c.name = g_strdup ("bad");
  c.vm_dir = g_strdup (dir);
  c.kernel = g_strdup (kernel);
  c.rootfs = g_strdup (rootfs);
  c.vcpus = 1;
  c.memory_mib = 128;
  c.disk_mib = 256;
  g_assert_true (drv->prepare_disk (&c, &i, &error));
  g_assert_false (drv->launch (&c, &i, &error));
  /* QEMU's own complaint reaches the caller. */
  g_assert_error (error, BANGER_ERROR, BANGER_ERROR_FAILED);
  g_assert_nonnull (strstr (error->message, "starting QEMU failed"));
  g_assert_cmpuint (drv->find_pid (dir), ==, 0);
  banger_vmm_config_clear (&c);
  banger_vmm_instance_clear (&i);
  {
    const char *names[] = { "rootfs.ext4", "not-a-kernel", "disk.qcow2", "console.log" };
    for (guint k = 0; k < G_N_ELEMENTS (names); k++) {
      g_autofree char *path = g_build_filename (dir, names[k], NULL);
      g_remove (path);
    }
    g_rmdir (dir);
  }
}

static void
remove_tree (const char *path)
{
  g_autoptr (GDir) dir = g_dir_open (path, 0, NULL);
  const char *name;

  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL) {
    g_autofree char *child = g_build_filename (path, name, NULL);
    if (g_file_test (child, G_FILE_TEST_IS_DIR) && !g_file_test (child, G_FILE_TEST_IS_SYMLINK))
      remove_tree (child);
    else
      g_unlink (child);
  }
  g_rmdir (path);
}

static char *
qmp_status (const BangerVmmInstance *i)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (BangerQmp) qmp = banger_qmp_connect (i->control_socket, 5000, &error);
  char *status;

  g_assert_no_error (error);
  status = banger_qmp_query_status (qmp, &error);
  g_assert_no_error (error);
  return status;
}

/* save_state() and launch() with incoming_state against the real QEMU: the
 * saved guest comes back running; a save that cannot write leaves the guest
 * running and no state; a corrupt state leaves no QEMU behind. */
static void
test_qemu_save_restore (void)
{
  g_autofree char *kernel = find_host_kernel ();
  g_autofree char *dir = g_dir_make_tmp ("banger-vmm-XXXXXX", NULL);
  g_autofree char *vm_dir = g_build_filename (dir, "vm", NULL);
  g_autofree char *rootfs = g_build_filename (dir, "rootfs.ext4", NULL);
  g_autofree char *state_dir = g_build_filename (vm_dir, "state", NULL);
  g_autofree char *state_file = g_build_filename (state_dir, "vmstate", NULL);
  g_autofree char *missing = g_build_filename (dir, "no-such-dir", NULL);
  BangerVmmConfig c = { 0 };
  BangerVmmInstance i = { 0 };
  const BangerVmmDriver *drv = banger_vmm_qemu_driver ();
  g_autoptr (GError) error = NULL;
  char *status;

  g_assert_nonnull (kernel);
  g_mkdir (vm_dir, 0700);
  {
    int fd = g_open (rootfs, O_CREAT | O_WRONLY, 0600);
    g_assert_cmpint (fd, >=, 0);
    g_assert_cmpint (ftruncate (fd, 64 << 20), ==, 0);
    close (fd);
  }
  c.vm_id = g_strdup ("0123456789abcdef");
  c.name = g_strdup ("saver");
  c.vm_dir = g_strdup (vm_dir);
  c.kernel = g_strdup (kernel);
  c.rootfs = g_strdup (rootfs);
  c.vcpus = 1;
  c.memory_mib = 128;
  c.disk_mib = 256;
  c.kernel_args = g_strdup ("panic=0");
  g_assert_true (drv->prepare_disk (&c, &i, &error));
  g_assert_no_error (error);
  g_assert_true (drv->launch (&c, &i, &error));
  g_assert_no_error (error);

  /* A directory that does not exist: refused, the guest runs on. */
  g_assert_false (drv->save_state (&i, missing, &error));
  g_assert_error (error, BANGER_ERROR, BANGER_ERROR_FAILED);
  g_assert_nonnull (strstr (error->message, missing));
  g_clear_error (&error);
  status = qmp_status (&i);
  g_assert_cmpstr (status, ==, "running");
  g_free (status);

  g_mkdir (state_dir, 0700);
  g_assert_true (drv->save_state (&i, state_dir, &error));
  g_assert_no_error (error);
  g_assert_true (banger_vmm_state_complete (state_dir));
  status = qmp_status (&i);
  g_assert_cmpstr (status, !=, "running");
  g_free (status);
  /* resume_paused() continues the same guest. */
  g_assert_true (drv->resume_paused (&i, &error));
  g_assert_no_error (error);
  status = qmp_status (&i);
  g_assert_cmpstr (status, ==, "running");
  g_free (status);
  g_assert_true (drv->quit (&i, &error));
  g_assert_no_error (error);

  /* A new QEMU from the state: running, no boot. */
  c.incoming_state = g_strdup (state_dir);
  drv->launch (&c, &i, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (drv->find_pid (vm_dir), ==, i.pid);
  status = qmp_status (&i);
  g_assert_cmpstr (status, ==, "running");
  g_free (status);
  g_assert_true (drv->quit (&i, &error));
  g_assert_no_error (error);

  /* A corrupt state: a clear error and no QEMU left. */
  g_assert_true (g_file_set_contents (state_file, "not a migration stream", -1, NULL));
  g_assert_false (drv->launch (&c, &i, &error));
  g_assert_nonnull (error);
  g_assert_nonnull (strstr (error->message, state_file));
  g_clear_error (&error);
  g_assert_cmpuint (drv->find_pid (vm_dir), ==, 0);

  /* No state at all. */
  g_unlink (state_file);
  g_assert_false (drv->launch (&c, &i, &error));
  g_assert_error (error, BANGER_ERROR, BANGER_ERROR_NOT_FOUND);
  g_clear_error (&error);

  banger_vmm_config_clear (&c);
  banger_vmm_instance_clear (&i);
  remove_tree (dir);
}

/* The runtime calls every operation of a VM's driver without asking which
 * driver it is (vmm.h): each driver fills all of them, except that one
 * that never runs jailed may leave launch_jailed empty. */
static void
test_drivers_complete (void)
{
  const char *const names[] = { "qemu", "firecracker" };

  for (guint i = 0; i < G_N_ELEMENTS (names); i++) {
    const BangerVmmDriver *d = banger_vmm_driver_by_name (names[i]);
    BangerVmmInstance inst = { 0 };

    g_test_message ("driver %s", names[i]);
    g_assert_nonnull (d);
    g_assert_cmpstr (d->name, ==, names[i]);
    g_assert_nonnull (d->display_name);
    g_assert_true (g_strcmp0 (d->disk_format, "qcow2") == 0
                   || g_strcmp0 (d->disk_format, "raw") == 0);
    g_assert_nonnull (d->prepare_disk);
    g_assert_nonnull (d->launch);
    g_assert_nonnull (d->find_pid);
    g_assert_nonnull (d->quit);
    g_assert_nonnull (d->instance_paths);
    g_assert_nonnull (d->has_disk);
    g_assert_nonnull (d->use_jail);
    g_assert_nonnull (d->prepare_start_disk);
    g_assert_nonnull (d->agent_connect);
    g_assert_nonnull (d->stop);
    g_assert_nonnull (d->jail_dir);
    g_assert_nonnull (d->state_compat);
    g_assert_nonnull (d->prepare_clone_disk);
    g_assert_nonnull (d->save_state);
    g_assert_nonnull (d->resume_paused);
    /* The disk it names lives in the VM directory. */
    d->instance_paths ("/nonexistent/vm", &inst);
    g_assert_nonnull (inst.disk_path);
    g_assert_true (g_str_has_prefix (inst.disk_path, "/nonexistent/vm/"));
    banger_vmm_instance_clear (&inst);
  }
  g_assert_null (banger_vmm_driver_by_name ("bochs"));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/vmm/kvm-probe/missing-device", test_kvm_probe_missing_device);
  g_test_add_func ("/vmm/kvm-probe/host", test_kvm_probe_host);
  g_test_add_func ("/vmm/pidfile", test_pidfile_cases);
  g_test_add_func ("/vmm/drivers/complete", test_drivers_complete);
  g_test_add_func ("/vmm/qemu/launch-qmp-quit", test_qemu_launch_qmp_quit);
  g_test_add_func ("/vmm/qemu/bad-kernel", test_qemu_bad_kernel);
  g_test_add_func ("/vmm/qemu/save-restore", test_qemu_save_restore);
  return g_test_run ();
}
