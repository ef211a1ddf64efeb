#define G_LOG_DOMAIN "test-firecracker"

/* The Firecracker driver against the FAKE Firecracker (tests/fakes/), which
 * validates every request against the upstream contract: find_pid cases, a
 * boot/query/stop/restart cycle with the request sequence asserted, the
 * fake's refusals, and a malformed answer. Each case is its own meson test. */

#include <errno.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <signal.h>
#include <grp.h>
#include <sys/wait.h>
#include <unistd.h>

#include "banger-error.h"
#include "remove-tree.h"
#include "disk-copy.h"
#include "firecracker-api.h"
#include "vmm-firecracker.h"

#define VM_ID "0123456789abcdef"

typedef struct {
  char *tmp;
  char *vm_dir;
  char *chroot;
  char *api_sock; /* vm_dir/firecracker.sock */
  char *pidfile;  /* chroot/firecracker.pid */
  GPid pids[8];
  guint n_pids;
} Fixture;

static char *
fake_path (void)
{
  return g_build_filename (g_getenv ("BANGER_SOURCE_ROOT"), "tests", "fakes", "fake-firecracker.py",
                           NULL);
}

/* Polls for a file to appear (the event has no notification of its own). */
static gboolean
wait_for_path (const char *path, guint timeout_ms)
{
  gint64 deadline = g_get_monotonic_time () + (gint64)timeout_ms * 1000;

  while (!g_file_test (path, G_FILE_TEST_EXISTS)) {
    if (g_get_monotonic_time () > deadline)
      return FALSE;
    g_usleep (5000);
  }
  return TRUE;
}

static GPid
spawn (Fixture *f, const char *const *argv, const char *const *envp)
{
  g_autoptr (GError) error = NULL;
  GPid pid = 0;

  g_assert_true (g_spawn_async (NULL, (char **)argv, (char **)envp,
                                G_SPAWN_FILE_AND_ARGV_ZERO | G_SPAWN_DO_NOT_REAP_CHILD, NULL, NULL,
                                &pid, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (f->n_pids, <, G_N_ELEMENTS (f->pids));
  f->pids[f->n_pids++] = pid;
  return pid;
}

/* The fake as a jailed Firecracker: argv[0] "firecracker", only the
 * chroot-relative socket on its command line. */
static GPid
spawn_jailed_fake (Fixture *f)
{
  g_autofree char *fake = fake_path ();
  g_autofree char *chroot_env = g_strconcat ("FAKE_FIRECRACKER_CHROOT=", f->chroot, NULL);
  g_autofree char *sock = g_build_filename (f->chroot, "run", "firecracker.socket", NULL);
  const char *argv[]
      = { "/usr/bin/python3",        "firecracker", fake, "--id", VM_ID, "--api-sock",
          "/run/firecracker.socket", NULL };
  const char *envp[] = { chroot_env, "PATH=/usr/bin:/bin", NULL };
  GPid pid = spawn (f, argv, envp);

  g_assert_true (wait_for_path (sock, 10000));
  return pid;
}

static void
write_pidfile (Fixture *f, const char *text)
{
  g_autoptr (GError) error = NULL;
  g_file_set_contents (f->pidfile, text, -1, &error);
  g_assert_no_error (error);
}

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *run = NULL;
  g_autofree char *target = NULL;

  f->tmp = g_dir_make_tmp ("banger-fc-XXXXXX", &error);
  g_assert_no_error (error);
  f->vm_dir = g_build_filename (f->tmp, "vms", VM_ID, NULL);
  f->chroot = g_build_filename (f->tmp, "jail", "firecracker", VM_ID, "root", NULL);
  run = g_build_filename (f->chroot, "run", NULL);
  g_assert_cmpint (g_mkdir_with_parents (f->vm_dir, 0700), ==, 0);
  g_assert_cmpint (g_mkdir_with_parents (run, 0700), ==, 0);
  f->api_sock = g_build_filename (f->vm_dir, "firecracker.sock", NULL);
  f->pidfile = g_build_filename (f->chroot, "firecracker.pid", NULL);
  target = g_build_filename (run, "firecracker.socket", NULL);
  g_assert_cmpint (symlink (target, f->api_sock), ==, 0);
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  for (guint i = 0; i < f->n_pids; i++) {
    kill (f->pids[i], SIGKILL);
    waitpid (f->pids[i], NULL, 0);
  }
  banger_remove_tree (f->tmp, NULL);
  g_free (f->tmp);
  g_free (f->vm_dir);
  g_free (f->chroot);
  g_free (f->api_sock);
  g_free (f->pidfile);
}

/* ---- find_pid ---------------------------------------------------------- */

static void
test_findpid_happy (Fixture *f, gconstpointer data)
{
  GPid pid = spawn_jailed_fake (f);
  g_autofree char *text = g_strdup_printf ("%d", pid);

  write_pidfile (f, text);
  g_assert_cmpuint (banger_vmm_firecracker_find_pid_full (f->api_sock, VM_ID), ==, pid);
  /* the driver's entry point: socket and id from the VM directory */
  g_assert_cmpuint (banger_vmm_firecracker_driver ()->find_pid (f->vm_dir), ==, pid);
  /* another id is not this VM's VMM */
  g_assert_cmpuint (banger_vmm_firecracker_find_pid_full (f->api_sock, "fedcba9876543210"), ==, 0);
}

static void
test_findpid_missing_pidfile (Fixture *f, gconstpointer data)
{
  spawn_jailed_fake (f);
  g_assert_cmpuint (banger_vmm_firecracker_find_pid_full (f->api_sock, VM_ID), ==, 0);
}

static void
test_findpid_stale (Fixture *f, gconstpointer data)
{
  g_autofree char *text = NULL;
  int status;
  GPid pid;
  const char *argv[] = { "/bin/true", "true", NULL };

  pid = spawn (f, argv, NULL);
  g_assert_cmpint (waitpid (pid, &status, 0), ==, pid);
  f->n_pids--; /* reaped: no such process any more */
  text = g_strdup_printf ("%d\n", pid);
  write_pidfile (f, text);
  g_assert_cmpuint (banger_vmm_firecracker_find_pid_full (f->api_sock, VM_ID), ==, 0);
}

/* A process named "firecracker" (prctl) with @extra on its command line,
 * run as @uid; returns once its comm says so. */
static void
become_uid (gpointer data)
{
  uid_t uid = GPOINTER_TO_UINT (data);

  if (setgroups (0, NULL) < 0 || setresgid (uid, uid, uid) < 0 || setresuid (uid, uid, uid) < 0)
    _exit (127);
}

static GPid
spawn_named_sleeper (Fixture *f, uid_t uid, const char *flag, const char *value)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *comm_path = NULL;
  const char *argv[]
      = { "/usr/bin/python3", "-c",
          "import ctypes,time; ctypes.CDLL(None).prctl(15, b'firecracker', 0, 0, 0); "
          "time.sleep(60)",
          "--id", VM_ID, flag, value, NULL };
  gint64 deadline = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;
  GPid pid = 0;

  g_assert_true (g_spawn_async ("/", (char **)argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD, become_uid,
                                GUINT_TO_POINTER (uid), &pid, &error));
  g_assert_no_error (error);
  f->pids[f->n_pids++] = pid;
  comm_path = g_strdup_printf ("/proc/%d/comm", pid);
  for (;;) {
    g_autofree char *comm = NULL;

    if (g_file_get_contents (comm_path, &comm, NULL, NULL)
        && g_str_equal (g_strstrip (comm), "firecracker"))
      break;
    g_assert_cmpint (g_get_monotonic_time (), <, deadline);
    g_usleep (10000);
  }
  return pid;
}

/* Issue 10, finding 10: a process of another uid is never adopted, however
 * well it is named and whatever its command line says. */
static void
test_findpid_other_uid (Fixture *f, gconstpointer data)
{
  g_autofree char *text = NULL;
  GPid other, mine;

  /* the direct match (the API socket on the command line) */
  other = spawn_named_sleeper (f, 65534, "--api-sock", f->api_sock);
  g_assert_cmpuint (banger_vmm_firecracker_find_pid_full (f->api_sock, VM_ID), ==, 0);
  /* the jail's pidfile naming it */
  text = g_strdup_printf ("%d", other);
  write_pidfile (f, text);
  g_assert_cmpuint (banger_vmm_firecracker_find_pid_full (f->api_sock, VM_ID), ==, 0);
  /* the same process as this test's own user is found: the uid made the
   * difference */
  mine = spawn_named_sleeper (f, getuid (), "--api-sock", f->api_sock);
  g_assert_cmpuint (banger_vmm_firecracker_find_pid_full (f->api_sock, VM_ID), ==, mine);
}

static void
test_findpid_wrong_comm (Fixture *f, gconstpointer data)
{
  g_autofree char *text = NULL;
  g_autofree char *comm_path = NULL;
  g_autofree char *comm = NULL;
  /* the right id on its command line, but it is a python3, not firecracker */
  const char *argv[]
      = { "/usr/bin/python3", "python3", "-c", "import time; time.sleep(60)", "--id", VM_ID, NULL };
  GPid pid = spawn (f, argv, NULL);

  comm_path = g_strdup_printf ("/proc/%d/comm", pid);
  g_assert_true (g_file_get_contents (comm_path, &comm, NULL, NULL));
  text = g_strdup_printf ("%d", pid);
  write_pidfile (f, text);
  g_assert_cmpuint (banger_vmm_firecracker_find_pid_full (f->api_sock, VM_ID), ==, 0);
}

static void
test_findpid_garbage (Fixture *f, gconstpointer data)
{
  GPid pid = spawn_jailed_fake (f);
  g_autofree char *prefixed = g_strdup_printf ("%dx", pid);
  g_autofree char *twice = g_strdup_printf ("%d %d", pid, pid);
  const char *bad[] = { "", "garbage", prefixed, twice, "-1", "0", "99999999999999999999" };

  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++) {
    write_pidfile (f, bad[i]);
    g_assert_cmpuint (banger_vmm_firecracker_find_pid_full (f->api_sock, VM_ID), ==, 0);
  }
}

static void
test_findpid_not_symlink (Fixture *f, gconstpointer data)
{
  GPid pid = spawn_jailed_fake (f);
  g_autofree char *text = g_strdup_printf ("%d", pid);
  g_autoptr (GError) error = NULL;

  write_pidfile (f, text);
  /* the same layout, but the VM's socket is a plain file: no jail to look in */
  g_assert_cmpint (g_unlink (f->api_sock), ==, 0);
  g_file_set_contents (f->api_sock, "", 0, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (banger_vmm_firecracker_find_pid_full (f->api_sock, VM_ID), ==, 0);
}

static void
test_findpid_whitespace (Fixture *f, gconstpointer data)
{
  GPid pid = spawn_jailed_fake (f);
  g_autofree char *text = g_strdup_printf ("  \t%d \n\n", pid);

  write_pidfile (f, text);
  g_assert_cmpuint (banger_vmm_firecracker_find_pid_full (f->api_sock, VM_ID), ==, pid);
}

/* ---- the driver against the fake -------------------------------------- */

typedef struct {
  BangerVmmConfig config;
  BangerVmmInstance instance;
} Vm;

static void
vm_init (Fixture *f, Vm *vm)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *fake = fake_path ();
  g_autofree char *kernel = g_build_filename (f->tmp, "vmlinux", NULL);
  g_autofree char *rootfs = g_build_filename (f->tmp, "rootfs.ext4", NULL);

  g_setenv ("BANGER_FIRECRACKER", fake, TRUE);
  g_file_set_contents (kernel, "\177ELF not really", -1, &error);
  g_assert_no_error (error);
  g_file_set_contents (rootfs, "an ext4 image", -1, &error);
  g_assert_no_error (error);
  /* the VM directory of a direct launch holds a real socket, not a link */
  g_unlink (f->api_sock);
  memset (vm, 0, sizeof *vm);
  vm->config.vm_id = g_strdup (VM_ID);
  vm->config.name = g_strdup ("dev");
  vm->config.vm_dir = g_strdup (f->vm_dir);
  vm->config.kernel = g_strdup (kernel);
  vm->config.rootfs = g_strdup (rootfs);
  vm->config.vcpus = 2;
  vm->config.memory_mib = 256;
  vm->config.disk_mib = 1;
  vm->config.tap = g_strdup ("bg0123456789ab");
  vm->config.mac = g_strdup ("52:54:00:12:34:56");
  vm->config.kernel_args = g_strdup ("banger.ip=10.77.0.2/24 banger.gw=10.77.0.1");
}

static void
vm_clear (Vm *vm)
{
  banger_vmm_config_clear (&vm->config);
  banger_vmm_instance_clear (&vm->instance);
}

/* The requests the fake recorded, as "METHOD PATH" lines, and the bodies. */
static GPtrArray *
recorded (Fixture *f, GPtrArray **bodies)
{
  g_autofree char *path = g_strconcat (f->api_sock, ".requests.jsonl", NULL);
  g_autofree char *text = NULL;
  g_auto (GStrv) lines = NULL;
  GPtrArray *out = g_ptr_array_new_with_free_func (g_free);

  *bodies = g_ptr_array_new_with_free_func ((GDestroyNotify)json_node_unref);
  g_assert_true (g_file_get_contents (path, &text, NULL, NULL));
  lines = g_strsplit (text, "\n", -1);
  for (guint i = 0; lines[i] != NULL && *lines[i]; i++) {
    g_autoptr (JsonNode) node = json_from_string (lines[i], NULL);
    JsonObject *o = json_node_get_object (node);
    g_ptr_array_add (out, g_strdup_printf ("%s %s", json_object_get_string_member (o, "method"),
                                           json_object_get_string_member (o, "path")));
    g_ptr_array_add (*bodies, json_node_copy (json_object_get_member (o, "body")));
  }
  return out;
}

static const char *
body_string (GPtrArray *bodies, guint i, const char *member)
{
  JsonNode *n = g_ptr_array_index (bodies, i);
  return json_object_get_string_member (json_node_get_object (n), member);
}

static void
test_driver_boot_stop_restart (Fixture *f, gconstpointer data)
{
  const BangerVmmDriver *drv = banger_vmm_firecracker_driver ();
  const char *expected[] = {
    "PUT /machine-config", "PUT /boot-source", "PUT /drives/rootfs", "PUT /network-interfaces/eth0",
    "PUT /vsock",          "PUT /serial",      "PUT /logger",        "PUT /metrics",
    "PUT /actions",
  };
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) reqs = NULL;
  g_autoptr (GPtrArray) bodies = NULL;
  g_autoptr (BangerFirecrackerApi) api = NULL;
  g_autofree char *state = NULL;
  g_autofree char *console = NULL;
  g_autoptr (GIOStream) vsock = NULL;
  guint first_pid;
  Vm vm;

  vm_init (f, &vm);
  g_assert_cmpstr (drv->name, ==, "firecracker");
  g_assert_true (drv->prepare_disk (&vm.config, &vm.instance, &error));
  g_assert_no_error (error);
  g_assert_true (g_str_equal (vm.instance.disk_mode, "reflink")
                 || g_str_equal (vm.instance.disk_mode, "sparse-copy"));
  g_assert_true (g_file_test (vm.instance.disk_path, G_FILE_TEST_IS_REGULAR));

  g_assert_true (drv->launch (&vm.config, &vm.instance, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (vm.instance.pid, >, 0);
  first_pid = vm.instance.pid;

  /* the sequence and the bodies, as the fake validated and recorded them */
  reqs = recorded (f, &bodies);
  g_assert_cmpuint (reqs->len, ==, G_N_ELEMENTS (expected));
  for (guint i = 0; i < reqs->len; i++)
    g_assert_cmpstr (g_ptr_array_index (reqs, i), ==, expected[i]);
  g_assert_nonnull (strstr (body_string (bodies, 1, "boot_args"), "reboot=k panic=1 pci=off"));
  g_assert_nonnull (strstr (body_string (bodies, 1, "boot_args"), "console=ttyS0"));
  g_assert_nonnull (strstr (body_string (bodies, 1, "boot_args"), "banger.ip=10.77.0.2/24"));
  g_assert_cmpstr (body_string (bodies, 1, "kernel_image_path"), ==, vm.config.kernel);
  g_assert_cmpstr (body_string (bodies, 2, "path_on_host"), ==, vm.instance.disk_path);
  g_assert_cmpstr (body_string (bodies, 3, "host_dev_name"), ==, "bg0123456789ab");
  g_assert_cmpstr (body_string (bodies, 3, "guest_mac"), ==, "52:54:00:12:34:56");
  g_assert_cmpstr (body_string (bodies, 4, "uds_path"), ==, vm.instance.agent_socket);
  g_assert_cmpstr (body_string (bodies, 5, "serial_out_path"), ==, vm.instance.console_log);
  g_assert_cmpstr (body_string (bodies, 8, "action_type"), ==, "InstanceStart");

  /* query */
  api = banger_firecracker_api_new (vm.instance.control_socket, 5);
  state = banger_firecracker_api_get_state (api, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (state, ==, "Running");
  g_assert_true (g_file_get_contents (vm.instance.console_log, &console, NULL, NULL));
  g_assert_nonnull (strstr (console, "reboot=k"));
  /* found again from the /proc scan (direct launch: the host socket path
   * is on its command line) */
  g_assert_cmpuint (drv->find_pid (f->vm_dir), ==, first_pid);

  /* the agent's port over the hybrid vsock */
  vsock = banger_vmm_firecracker_vsock_connect (vm.instance.agent_socket,
                                                BANGER_FIRECRACKER_AGENT_PORT, 5000, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (vsock);
  g_io_stream_close (vsock, NULL, NULL);

  /* stop: SendCtrlAltDel ends it (reboot=k) */
  g_assert_true (drv->quit (&vm.instance, &error));
  g_assert_no_error (error);
  g_clear_pointer (&reqs, g_ptr_array_unref);
  g_clear_pointer (&bodies, g_ptr_array_unref);
  reqs = recorded (f, &bodies);
  g_assert_cmpstr (g_ptr_array_index (reqs, reqs->len - 1), ==, "PUT /actions");
  g_assert_cmpstr (body_string (bodies, reqs->len - 1, "action_type"), ==, "SendCtrlAltDel");
  g_assert_cmpuint (drv->find_pid (f->vm_dir), ==, 0);

  /* restart: a new process (InstanceStart works once per process) */
  g_assert_true (drv->prepare_disk (&vm.config, &vm.instance, &error));
  g_assert_cmpstr (vm.instance.disk_mode, ==, "existing");
  g_assert_true (drv->launch (&vm.config, &vm.instance, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (vm.instance.pid, !=, first_pid);
  g_assert_cmpuint (drv->find_pid (f->vm_dir), ==, vm.instance.pid);
  g_clear_pointer (&state, g_free);
  state = banger_firecracker_api_get_state (api, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (state, ==, "Running");
  g_assert_true (drv->quit (&vm.instance, &error));
  vm_clear (&vm);
}

static char *
fc_state (BangerFirecrackerApi *api)
{
  g_autoptr (GError) error = NULL;
  char *state = banger_firecracker_api_get_state (api, &error);

  g_assert_no_error (error);
  return state;
}

/* save_state, resume_paused and a launch from incoming_state against the
 * FAKE Firecracker's snapshot API (faithful to the contract): the request
 * sequence and bodies, the files, and the failures: a directory that
 * cannot take the files (the guest runs on, nothing left), a missing or
 * corrupt state (no process left). */
static void
test_driver_save_restore (Fixture *f, gconstpointer data)
{
  const BangerVmmDriver *drv = banger_vmm_firecracker_driver ();
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) reqs = NULL;
  g_autoptr (GPtrArray) bodies = NULL;
  g_autoptr (BangerFirecrackerApi) api = NULL;
  g_autofree char *state_dir = g_build_filename (f->vm_dir, "suspend", NULL);
  g_autofree char *vmstate = g_build_filename (state_dir, "vmstate", NULL);
  g_autofree char *memory = g_build_filename (state_dir, "memory", NULL);
  g_autofree char *missing = g_build_filename (f->tmp, "no-such-dir", NULL);
  g_autofree char *state = NULL;
  g_autofree char *console = NULL;
  g_autoptr (GIOStream) vsock = NULL;
  guint first_pid;
  Vm vm;

  vm_init (f, &vm);
  g_assert_true (drv->prepare_disk (&vm.config, &vm.instance, &error));
  g_assert_true (drv->launch (&vm.config, &vm.instance, &error));
  g_assert_no_error (error);
  first_pid = vm.instance.pid;
  api = banger_firecracker_api_new (vm.instance.control_socket, 5);

  /* a directory that does not exist: Firecracker's error, the guest resumed */
  g_assert_false (drv->save_state (&vm.instance, missing, &error));
  g_assert_error (error, BANGER_ERROR, BANGER_ERROR_FAILED);
  g_assert_nonnull (strstr (error->message, "No such file or directory"));
  g_clear_error (&error);
  state = fc_state (api);
  g_assert_cmpstr (state, ==, "Running");
  g_clear_pointer (&state, g_free);

  g_assert_cmpint (g_mkdir (state_dir, 0700), ==, 0);
  g_assert_true (drv->save_state (&vm.instance, state_dir, &error));
  g_assert_no_error (error);
  g_assert_true (banger_vmm_state_complete (state_dir));
  g_assert_true (g_file_test (memory, G_FILE_TEST_IS_REGULAR));
  reqs = recorded (f, &bodies);
  state = fc_state (api);
  g_assert_cmpstr (state, ==, "Paused");
  g_clear_pointer (&state, g_free);
  g_assert_cmpstr (g_ptr_array_index (reqs, reqs->len - 2), ==, "PATCH /vm");
  g_assert_cmpstr (body_string (bodies, reqs->len - 2, "state"), ==, "Paused");
  g_assert_cmpstr (g_ptr_array_index (reqs, reqs->len - 1), ==, "PUT /snapshot/create");
  g_assert_cmpstr (body_string (bodies, reqs->len - 1, "snapshot_type"), ==, "Full");
  /* written under temporary names, renamed once complete */
  g_assert_true (g_str_has_suffix (body_string (bodies, reqs->len - 1, "snapshot_path"), ".tmp"));
  g_assert_true (g_str_has_suffix (body_string (bodies, reqs->len - 1, "mem_file_path"), ".tmp"));
  g_assert_true (drv->resume_paused (&vm.instance, &error));
  g_assert_no_error (error);
  state = fc_state (api);
  g_assert_cmpstr (state, ==, "Running");
  g_clear_pointer (&state, g_free);

  /* end it, then a new process from the state */
  g_assert_true (banger_vmm_signal_and_wait (first_pid, SIGKILL, 5000));
  vm.config.incoming_state = g_strdup (state_dir);
  g_free (vm.config.tap);
  vm.config.tap = g_strdup ("bgnewtap00000");
  g_assert_true (drv->launch (&vm.config, &vm.instance, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (vm.instance.pid, !=, first_pid);
  g_clear_pointer (&api, banger_firecracker_api_free);
  api = banger_firecracker_api_new (vm.instance.control_socket, 5);
  g_clear_pointer (&reqs, g_ptr_array_unref);
  g_clear_pointer (&bodies, g_ptr_array_unref);
  reqs = recorded (f, &bodies);
  state = fc_state (api);
  g_assert_cmpstr (state, ==, "Running");
  g_clear_pointer (&state, g_free);
  /* this process: the logger and metrics, then the load (paused), the
   * drive on the VM's own disk, the resume; no boot config */
  g_assert_cmpstr (g_ptr_array_index (reqs, reqs->len - 5), ==, "PUT /logger");
  g_assert_cmpstr (g_ptr_array_index (reqs, reqs->len - 4), ==, "PUT /metrics");
  g_assert_cmpstr (g_ptr_array_index (reqs, reqs->len - 3), ==, "PUT /snapshot/load");
  g_assert_cmpstr (g_ptr_array_index (reqs, reqs->len - 2), ==, "PATCH /drives/rootfs");
  g_assert_cmpstr (body_string (bodies, reqs->len - 2, "path_on_host"), ==, vm.instance.disk_path);
  g_assert_cmpstr (g_ptr_array_index (reqs, reqs->len - 1), ==, "PATCH /vm");
  g_assert_cmpstr (body_string (bodies, reqs->len - 1, "state"), ==, "Resumed");
  {
    JsonObject *load = json_node_get_object (g_ptr_array_index (bodies, reqs->len - 3));
    JsonArray *nets = json_object_get_array_member (load, "network_overrides");

    g_assert_cmpstr (json_object_get_string_member (load, "snapshot_path"), ==, vmstate);
    g_assert_cmpstr (json_object_get_string_member (
                         json_object_get_object_member (load, "mem_backend"), "backend_path"),
                     ==, memory);
    g_assert_false (json_object_get_boolean_member (load, "resume_vm"));
    g_assert_cmpstr (json_object_get_string_member (json_array_get_object_element (nets, 0),
                                                    "host_dev_name"),
                     ==, "bgnewtap00000");
    g_assert_cmpstr (json_object_get_string_member (
                         json_object_get_object_member (load, "vsock_override"), "uds_path"),
                     ==, vm.instance.agent_socket);
  }
  g_assert_true (g_file_get_contents (vm.instance.console_log, &console, NULL, NULL));
  g_assert_nonnull (strstr (console, "restored from"));
  /* the fake, as the contract: PATCH /drives re-points only an existing
   * drive at an existing file; PUT /drives is pre-boot only */
  {
    g_autoptr (JsonNode) missing_file
        = json_from_string ("{\"drive_id\": \"rootfs\", \"path_on_host\": \"/nonexistent\"}", NULL);
    g_autoptr (JsonNode) no_drive
        = json_from_string ("{\"drive_id\": \"data\", \"path_on_host\": \"/dev/null\"}", NULL);
    g_autoptr (JsonNode) put
        = json_from_string ("{\"drive_id\": \"rootfs\", \"path_on_host\": \"/dev/null\", "
                            "\"is_root_device\": true, \"is_read_only\": false}",
                            NULL);

    g_assert_false (banger_firecracker_api_patch (api, "/drives/rootfs", missing_file, &error));
    g_assert_nonnull (strstr (error->message, "No such file"));
    g_clear_error (&error);
    g_assert_false (banger_firecracker_api_patch (api, "/drives/data", no_drive, &error));
    g_assert_nonnull (error);
    g_clear_error (&error);
    g_assert_false (banger_firecracker_api_put (api, "/drives/rootfs", put, &error));
    g_assert_nonnull (strstr (error->message, "after starting"));
    g_clear_error (&error);
  }
  vsock = banger_vmm_firecracker_vsock_connect (vm.instance.agent_socket,
                                                BANGER_FIRECRACKER_AGENT_PORT, 5000, NULL, &error);
  g_assert_no_error (error);
  g_io_stream_close (vsock, NULL, NULL);
  g_assert_true (banger_vmm_signal_and_wait (vm.instance.pid, SIGKILL, 5000));

  /* the disk the state names is gone: the load opens it, so it is refused
   * (Firecracker's as the fake's), no process is left */
  {
    g_autofree char *away = g_strconcat (vm.instance.disk_path, ".away", NULL);

    g_assert_cmpint (g_rename (vm.instance.disk_path, away), ==, 0);
    g_assert_false (drv->launch (&vm.config, &vm.instance, &error));
    g_assert_nonnull (error);
    g_assert_nonnull (strstr (error->message, "Block device error"));
    g_clear_error (&error);
    g_assert_cmpuint (drv->find_pid (f->vm_dir), ==, 0);
    g_assert_cmpint (g_rename (away, vm.instance.disk_path), ==, 0);
  }

  /* a corrupt state: the fake refuses it, no process is left */
  g_assert_true (g_file_set_contents (vmstate, "garbage", -1, NULL));
  g_assert_false (drv->launch (&vm.config, &vm.instance, &error));
  g_assert_nonnull (error);
  g_assert_nonnull (strstr (error->message, "Failed to load snapshot state"));
  g_clear_error (&error);
  g_assert_cmpuint (drv->find_pid (f->vm_dir), ==, 0);

  /* no state at all */
  g_unlink (vmstate);
  g_assert_false (drv->launch (&vm.config, &vm.instance, &error));
  g_assert_error (error, BANGER_ERROR, BANGER_ERROR_NOT_FOUND);
  g_clear_error (&error);
  g_assert_cmpuint (drv->find_pid (f->vm_dir), ==, 0);
  vm_clear (&vm);
}

static void
test_driver_refusals (Fixture *f, gconstpointer data)
{
  const BangerVmmDriver *drv = banger_vmm_firecracker_driver ();
  g_autoptr (GError) error = NULL;
  g_autoptr (BangerFirecrackerApi) api = NULL;
  g_autoptr (JsonNode) bad
      = json_from_string ("{\"vcpu_count\": \"two\", \"mem_size_mib\": 1}", NULL);
  g_autoptr (JsonNode) unknown = json_from_string ("{\"action_type\": \"Reboot\"}", NULL);
  Vm vm;

  vm_init (f, &vm);
  g_assert_true (drv->prepare_disk (&vm.config, &vm.instance, &error));
  g_assert_true (drv->launch (&vm.config, &vm.instance, &error));
  g_assert_no_error (error);
  api = banger_firecracker_api_new (vm.instance.control_socket, 5);

  /* a second InstanceStart, with Firecracker's fault_message in the error */
  g_assert_false (banger_firecracker_api_action (api, "InstanceStart", &error));
  g_assert_nonnull (strstr (error->message, "not supported after starting"));
  g_assert_nonnull (strstr (error->message, "/actions"));
  g_clear_error (&error);
  /* pre-boot configuration after the start */
  g_assert_false (banger_firecracker_api_put (api, "/machine-config", bad, &error));
  g_assert_nonnull (strstr (error->message, "HTTP 400"));
  g_clear_error (&error);
  /* a value outside the contract's enum */
  g_assert_false (banger_firecracker_api_put (api, "/actions", unknown, &error));
  g_assert_nonnull (strstr (error->message, "Reboot"));
  g_clear_error (&error);
  /* a path the contract does not have */
  g_assert_false (banger_firecracker_api_put (api, "/nonsense", NULL, &error));
  g_assert_nonnull (strstr (error->message, "Invalid request method and/or path"));
  g_clear_error (&error);
  g_assert_true (drv->quit (&vm.instance, &error));
  vm_clear (&vm);
}

static void
test_fake_refuses_existing_socket (Fixture *f, gconstpointer data)
{
  g_autofree char *fake = fake_path ();
  g_autofree char *sock = g_build_filename (f->tmp, "taken.sock", NULL);
  g_autofree char *err = NULL;
  g_autoptr (GError) error = NULL;
  int status = 0;
  const char *argv[] = { "/usr/bin/python3", fake, "--api-sock", sock, "--id", VM_ID, NULL };

  g_file_set_contents (sock, "", 0, &error);
  g_assert_no_error (error);
  g_assert_true (g_spawn_sync (NULL, (char **)argv, NULL, G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL,
                               NULL, &err, &status, &error));
  g_assert_no_error (error);
  g_assert_false (g_spawn_check_wait_status (status, NULL));
  g_assert_nonnull (strstr (err, "Address in use"));
}

static void
test_driver_malformed (Fixture *f, gconstpointer data)
{
  const BangerVmmDriver *drv = banger_vmm_firecracker_driver ();
  g_autoptr (GError) error = NULL;
  g_autoptr (BangerFirecrackerApi) api = NULL;
  g_autofree char *state = NULL;
  Vm vm;

  vm_init (f, &vm);
  g_setenv ("FAKE_FIRECRACKER_MALFORM", "/", TRUE);
  g_assert_true (drv->prepare_disk (&vm.config, &vm.instance, &error));
  g_assert_true (drv->launch (&vm.config, &vm.instance, &error));
  g_assert_no_error (error);
  api = banger_firecracker_api_new (vm.instance.control_socket, 5);
  state = banger_firecracker_api_get_state (api, &error);
  g_assert_null (state);
  g_assert_error (error, BANGER_ERROR, BANGER_ERROR_FAILED);
  g_assert_nonnull (strstr (error->message, "malformed JSON"));
  g_assert_nonnull (strstr (error->message, "GET /"));
  g_clear_error (&error);
  g_unsetenv ("FAKE_FIRECRACKER_MALFORM");
  g_assert_true (drv->quit (&vm.instance, &error));
  vm_clear (&vm);
}

static void
test_disk_sparse (Fixture *f, gconstpointer data)
{
  g_autofree char *src = g_build_filename (f->tmp, "img", NULL);
  g_autofree char *dst = g_build_filename (f->tmp, "disk", NULL);
  g_autofree char *mode = NULL;
  g_autofree char *path = NULL;
  g_autofree char *a = NULL;
  g_autofree char *b = NULL;
  g_autoptr (GError) error = NULL;
  gsize alen, blen;
  FILE *fp = fopen (src, "w");
  GStatBuf st;

  /* 8 MiB with data at both ends and a hole between */
  fputs ("head", fp);
  fseek (fp, 8 * 1024 * 1024 - 4, SEEK_SET);
  fputs ("tail", fp);
  fclose (fp);
  g_assert_true (banger_disk_copy (src, dst, 16 * 1024 * 1024, NULL, NULL, &mode, &path, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (path, ==, dst);
  g_assert_true (g_str_equal (mode, "reflink") || g_str_equal (mode, "sparse-copy"));
  g_assert_true (g_file_get_contents (src, &a, &alen, NULL));
  g_assert_true (g_file_get_contents (dst, &b, &blen, NULL));
  g_assert_cmpuint (blen, ==, 16 * 1024 * 1024);
  g_assert_cmpmem (a, alen, b, alen);
  g_assert_cmpint (g_stat (dst, &st), ==, 0);
  /* the hole stayed a hole */
  g_assert_cmpint ((gint64)st.st_blocks * 512, <, 4 * 1024 * 1024);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
#define ADD(path, fn) g_test_add (path, Fixture, NULL, fixture_setup, fn, fixture_teardown)
  ADD ("/firecracker/findpid/happy", test_findpid_happy);
  ADD ("/firecracker/findpid/missing-pidfile", test_findpid_missing_pidfile);
  ADD ("/firecracker/findpid/stale", test_findpid_stale);
  ADD ("/firecracker/findpid/wrong-comm", test_findpid_wrong_comm);
  ADD ("/firecracker/findpid/other-uid", test_findpid_other_uid);
  ADD ("/firecracker/findpid/garbage", test_findpid_garbage);
  ADD ("/firecracker/findpid/not-symlink", test_findpid_not_symlink);
  ADD ("/firecracker/findpid/whitespace", test_findpid_whitespace);
  ADD ("/firecracker/driver/boot-stop-restart", test_driver_boot_stop_restart);
  ADD ("/firecracker/driver/refusals", test_driver_refusals);
  ADD ("/firecracker/driver/save-restore-fake", test_driver_save_restore);
  ADD ("/firecracker/driver/malformed", test_driver_malformed);
  ADD ("/firecracker/fake/existing-socket", test_fake_refuses_existing_socket);
  ADD ("/firecracker/disk/sparse", test_disk_sparse);
#undef ADD
  return g_test_run ();
}
