/* The Firecracker driver: configuration over the API socket (libsoup-3,
 * firecracker-api.c), a raw per-VM disk (disk-copy.c), console to a file
 * through PUT /serial, the agent over the hybrid vsock; jailed or direct
 * (the helper's LaunchJailed), and the forced stop that signals a jailed
 * VMM through the helper's KillJailed. Pid finding is in
 * vmm-firecracker-findpid.c. See docs/firecracker.md. */

#include "vmm-firecracker.h"

#include <errno.h>
#include <fcntl.h>
#include <gio/gunixsocketaddress.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <unistd.h>

#include "banger-error.h"
#include "disk-copy.h"
#include "firecracker-api.h"
#include "helper-client.h"
#include "soup-api.h"

#define FC_BINARY       "firecracker"
#define API_TIMEOUT_S   10
#define SOCKET_WAIT_MS  5000
#define CTRL_ALT_DEL_MS 3000
#define SIGTERM_WAIT_MS 2000
#define SIGKILL_WAIT_MS 3000
#define VSOCK_RETRY_MS  100
#define VSOCK_LINE_MAX  64
#define JAIL_API_SOCKET "/run/firecracker.socket"
/* After an OK to CONNECT the agent listens: its handshake takes milliseconds. */
#define AGENT_HANDSHAKE_MS 10000

const char *
banger_vmm_firecracker_binary (void)
{
  /* Tests point this at a fake; unusual installs at their own build. */
  const char *env = g_getenv ("BANGER_FIRECRACKER");
  return env && *env ? env : FC_BINARY;
}

const char *
banger_vmm_default_driver (void)
{
  g_autofree char *found = g_find_program_in_path (banger_vmm_firecracker_binary ());

  /* Firecracker has no TCG fallback: without working KVM it cannot boot a
   * guest, so qemu is the default there whatever is installed. */
  if (found != NULL && g_str_equal (banger_vmm_qemu_accel (NULL), "kvm"))
    return "firecracker";
  return "qemu";
}

void
banger_vmm_firecracker_instance_paths (const char *vm_dir, BangerVmmInstance *i)
{
  g_free (i->control_socket);
  g_free (i->agent_socket);
  g_free (i->console_log);
  g_free (i->pidfile);
  i->control_socket = g_build_filename (vm_dir, "firecracker.sock", NULL);
  i->agent_socket = g_build_filename (vm_dir, "vsock.sock", NULL);
  i->console_log = g_build_filename (vm_dir, "console.log", NULL);
  i->pidfile = g_build_filename (vm_dir, "firecracker.pid", NULL);
  if (i->disk_path == NULL)
    i->disk_path = g_build_filename (vm_dir, "disk.raw", NULL);
}

char *
banger_vmm_firecracker_boot_args (const BangerVmmConfig *c)
{
  g_autofree char *args = NULL;

  /* reboot=k: a guest reboot goes through the keyboard controller, which
   * Firecracker turns into its own exit (SendCtrlAltDel relies on this);
   * panic=1: a panicking guest reboots, so the VMM exits instead of
   * spinning; pci=off: Firecracker has no PCI bus (virtio-mmio only), so
   * the kernel does not waste time probing one. */
  args = g_strdup_printf ("console=ttyS0 reboot=k panic=1 pci=off root=/dev/vda rw "
                          "rootfstype=ext4 init=/.banger/agent %s",
                          c->kernel_args ? c->kernel_args : "");
  return g_strdup (g_strstrip (args));
}

/* Paths as the Firecracker process sees them (host paths when direct,
 * chroot-relative in a jail). */
typedef struct {
  const char *kernel;
  const char *initrd;
  const char *rootfs;
  const char *console;
  const char *log;
  const char *metrics;
  const char *vsock;
} FcPaths;

static JsonNode *
object_node (JsonBuilder *b)
{
  json_builder_end_object (b);
  return json_builder_get_root (b);
}

static JsonBuilder *
object_begin (void)
{
  JsonBuilder *b = json_builder_new ();
  json_builder_begin_object (b);
  return b;
}

static void
add_string (JsonBuilder *b, const char *key, const char *value)
{
  json_builder_set_member_name (b, key);
  json_builder_add_string_value (b, value);
}

static void
add_int (JsonBuilder *b, const char *key, gint64 value)
{
  json_builder_set_member_name (b, key);
  json_builder_add_int_value (b, value);
}

static void
add_bool (JsonBuilder *b, const char *key, gboolean value)
{
  json_builder_set_member_name (b, key);
  json_builder_add_boolean_value (b, value);
}

static gboolean
put (BangerFirecrackerApi *api, const char *path, JsonBuilder *b, GError **error)
{
  g_autoptr (JsonNode) node = object_node (b);
  g_object_unref (b);
  return banger_firecracker_api_put (api, path, node, error);
}

/* The logger and metrics: part of a boot's configuration and the only
 * resources the contract allows before a snapshot load. */
static gboolean
put_logger_and_metrics (BangerFirecrackerApi *api, const FcPaths *p, GError **error)
{
  JsonBuilder *b = object_begin ();

  add_string (b, "log_path", p->log);
  add_string (b, "level", "Info");
  add_bool (b, "show_level", TRUE);
  if (!put (api, "/logger", b, error))
    return FALSE;
  b = object_begin ();
  add_string (b, "metrics_path", p->metrics);
  return put (api, "/metrics", b, error);
}

/* The whole pre-boot configuration, then InstanceStart. */
static gboolean
configure_and_start (const char *api_sock, const BangerVmmConfig *c, const FcPaths *p,
                     GError **error)
{
  g_autoptr (BangerFirecrackerApi) api = NULL;
  g_autofree char *boot_args = banger_vmm_firecracker_boot_args (c);
  JsonBuilder *b;

  /* The API client is libsoup's, loaded on first use (soup-api.h). */
  if (!banger_soup_load (error))
    return FALSE;
  api = banger_firecracker_api_new (api_sock, API_TIMEOUT_S);
  b = object_begin ();
  add_int (b, "vcpu_count", c->vcpus);
  add_int (b, "mem_size_mib", c->memory_mib);
  add_bool (b, "smt", FALSE);
  if (!put (api, "/machine-config", b, error))
    return FALSE;

  b = object_begin ();
  add_string (b, "kernel_image_path", p->kernel);
  add_string (b, "boot_args", boot_args);
  if (p->initrd != NULL)
    add_string (b, "initrd_path", p->initrd);
  if (!put (api, "/boot-source", b, error))
    return FALSE;

  b = object_begin ();
  add_string (b, "drive_id", "rootfs");
  add_string (b, "path_on_host", p->rootfs);
  add_bool (b, "is_root_device", TRUE);
  add_bool (b, "is_read_only", FALSE);
  if (!put (api, "/drives/rootfs", b, error))
    return FALSE;

  if (c->tap != NULL && *c->tap) {
    b = object_begin ();
    add_string (b, "iface_id", "eth0");
    add_string (b, "host_dev_name", c->tap);
    if (c->mac != NULL && *c->mac)
      add_string (b, "guest_mac", c->mac);
    if (!put (api, "/network-interfaces/eth0", b, error))
      return FALSE;
  }

  b = object_begin ();
  add_int (b, "guest_cid", BANGER_FIRECRACKER_GUEST_CID);
  add_string (b, "uds_path", p->vsock);
  if (!put (api, "/vsock", b, error))
    return FALSE;

  b = object_begin ();
  add_string (b, "serial_out_path", p->console);
  if (!put (api, "/serial", b, error))
    return FALSE;

  if (!put_logger_and_metrics (api, p, error))
    return FALSE;

  return banger_firecracker_api_action (api, "InstanceStart", error);
}

/* A restore: the logger and metrics (the only resources the contract
 * allows before a load), then PUT /snapshot/load. */
static gboolean
restore_state (const BangerVmmConfig *c, BangerVmmInstance *i, const FcPaths *p, GError **error)
{
  g_autoptr (BangerFirecrackerApi) api
      = banger_firecracker_api_new (i->control_socket, API_TIMEOUT_S);

  if (!banger_vmm_state_complete (c->incoming_state)) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_NOT_FOUND, "no saved state in %s",
                 c->incoming_state);
    return FALSE;
  }
  if (!put_logger_and_metrics (api, p, error))
    return FALSE;
  return banger_vmm_firecracker_load_state (c, i, error);
}

/* Firecracker opens its log and metrics files without O_CREAT: they must
 * exist as regular files. */
static gboolean
touch (const char *path, GError **error)
{
  int fd = open (path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);

  if (fd < 0) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "cannot create %s: %s", path,
                 g_strerror (errno));
    return FALSE;
  }
  close (fd);
  return TRUE;
}

static gboolean
process_alive (guint pid)
{
  g_autofree char *path = g_strdup_printf ("/proc/%u/cmdline", pid);
  g_autofree char *contents = NULL;
  gsize len = 0;

  /* A zombie still has a /proc entry but an empty command line. */
  return g_file_get_contents (path, &contents, &len, NULL) && len > 0;
}

/* Waits for the API socket to accept connections; fails early if the
 * process died (a bad argument, a socket path that already existed). */
static gboolean
wait_for_api (const char *api_sock, guint pid, const char *log, GError **error)
{
  gint64 deadline = g_get_monotonic_time () + SOCKET_WAIT_MS * 1000;

  while (TRUE) {
    g_autoptr (GSocketClient) client = g_socket_client_new ();
    g_autoptr (GSocketAddress) addr = g_unix_socket_address_new (api_sock);
    g_autoptr (GSocketConnection) conn = NULL;

    conn = g_socket_client_connect (client, G_SOCKET_CONNECTABLE (addr), NULL, NULL);
    if (conn != NULL)
      return TRUE;
    if (pid != 0 && !process_alive (pid)) {
      g_autofree char *text = NULL;
      if (log != NULL)
        g_file_get_contents (log, &text, NULL, NULL);
      g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED,
                   "Firecracker exited before serving its API at %s: %s", api_sock,
                   text && *g_strstrip (text) ? text : "(no output)");
      return FALSE;
    }
    if (g_get_monotonic_time () > deadline) {
      g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED,
                   "Firecracker (pid %u) did not serve its API at %s within %u ms", pid, api_sock,
                   SOCKET_WAIT_MS);
      return FALSE;
    }
    /* Nothing to wait on: the socket appears when Firecracker binds it. */
    g_usleep (10 * 1000);
  }
}

gboolean
banger_vmm_firecracker_prepare_disk (const BangerVmmConfig *c, BangerVmmInstance *i,
                                     BangerDiskSnapshotFunc snapshot, gpointer snapshot_data,
                                     GError **error)
{
  g_autofree char *mode = NULL;
  g_autofree char *path = NULL;

  banger_vmm_firecracker_instance_paths (c->vm_dir, i);
  if (!banger_disk_copy (c->rootfs, i->disk_path, (guint64)c->disk_mib * 1024 * 1024, snapshot,
                         snapshot_data, &mode, &path, error))
    return FALSE;
  g_free (i->disk_path);
  i->disk_path = g_steal_pointer (&path);
  g_free (i->disk_mode);
  i->disk_mode = g_steal_pointer (&mode);
  return TRUE;
}

/* The driver's own: no helper, so no dm-snapshot (the runtime calls
 * banger_vmm_firecracker_prepare_disk() with its snapshot function). */
static gboolean
fc_prepare_disk (const BangerVmmConfig *c, BangerVmmInstance *i, GError **error)
{
  return banger_vmm_firecracker_prepare_disk (c, i, NULL, NULL, error);
}

static void
child_setup (gpointer data)
{
  /* Its own session: no terminal signals from bangerd's, and it survives
   * bangerd's exit (KillMode=process). */
  setsid ();
}

/* A saved state names the paths its VMM saw: a jailed one the jail's, a
 * direct one the host's. The VM directory tells which kind saved it (a
 * jailed VM's API socket is a symlink into its jail, and stays one while
 * it is suspended; a direct one's is the socket), so a resume under the
 * other setting fails here, clearly, rather than in the load. A directory
 * without one (a warm clone's first start) is not asked: the warm key
 * already tells jailed and direct snapshots apart. */
static gboolean
check_state_origin (const BangerVmmConfig *c, gboolean jailed, GError **error)
{
  g_autofree char *api_sock = NULL;
  GStatBuf st;

  if (c->incoming_state == NULL || !*c->incoming_state)
    return TRUE;
  api_sock = g_build_filename (c->vm_dir, "firecracker.sock", NULL);
  if (g_lstat (api_sock, &st) < 0 || (S_ISLNK (st.st_mode) != 0) == jailed)
    return TRUE;
  g_set_error (error, BANGER_ERROR, BANGER_ERROR_BAD_STATE,
               "its saved state was written by a %s Firecracker and can only be restored %s; "
               "bangerd's [firecracker] jailer setting now says otherwise",
               jailed ? "direct (unjailed)" : "jailed", jailed ? "directly" : "in a jail");
  return FALSE;
}

static gboolean
fc_launch (const BangerVmmConfig *c, BangerVmmInstance *i, GError **error)
{
  g_autofree char *log = g_build_filename (c->vm_dir, "firecracker.log", NULL);
  g_autofree char *metrics = g_build_filename (c->vm_dir, "metrics.json", NULL);
  g_autofree char *pid_text = NULL;
  g_autoptr (GSubprocessLauncher) launcher = NULL;
  g_autoptr (GSubprocess) proc = NULL;
  g_autoptr (GError) local = NULL;
  FcPaths paths;
  int log_fd;

  if (!check_state_origin (c, FALSE, error))
    return FALSE;
  banger_vmm_firecracker_instance_paths (c->vm_dir, i);
  /* Firecracker refuses to bind an API socket path that exists. */
  g_unlink (i->control_socket);
  g_unlink (i->agent_socket);
  g_unlink (i->pidfile);
  if (!touch (log, error) || !touch (metrics, error) || !touch (i->console_log, error))
    return FALSE;

  log_fd = open (log, O_WRONLY | O_APPEND | O_CLOEXEC);
  if (log_fd < 0) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "cannot open %s: %s", log,
                 g_strerror (errno));
    return FALSE;
  }
  launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDIN_INHERIT);
  g_subprocess_launcher_set_child_setup (launcher, child_setup, NULL, NULL);
  /* Until /logger is set Firecracker writes to stderr: keep that too. */
  g_subprocess_launcher_take_stdout_fd (launcher, dup (log_fd));
  g_subprocess_launcher_take_stderr_fd (launcher, log_fd);
  proc = g_subprocess_launcher_spawn (launcher, &local, banger_vmm_firecracker_binary (),
                                      "--api-sock", i->control_socket, "--id", c->vm_id, NULL);
  if (proc == NULL) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "cannot run %s: %s",
                 banger_vmm_firecracker_binary (), local->message);
    return FALSE;
  }
  i->pid = (guint)g_ascii_strtoull (g_subprocess_get_identifier (proc), NULL, 10);
  pid_text = g_strdup_printf ("%u\n", i->pid);
  if (!g_file_set_contents (i->pidfile, pid_text, -1, &local)) {
    g_subprocess_force_exit (proc);
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "cannot write the pidfile: %s",
                 local->message);
    return FALSE;
  }
  if (!wait_for_api (i->control_socket, i->pid, log, error))
    return FALSE;

  paths = (FcPaths){
    .kernel = c->kernel,
    .initrd = c->initrd && *c->initrd ? c->initrd : NULL,
    .rootfs = i->disk_path,
    .console = i->console_log,
    .log = log,
    .metrics = metrics,
    .vsock = i->agent_socket,
  };
  if (c->incoming_state != NULL && *c->incoming_state) {
    if (!restore_state (c, i, &paths, error)) {
      banger_vmm_signal_and_wait (i->pid, SIGKILL, SIGKILL_WAIT_MS);
      return FALSE;
    }
  } else if (!configure_and_start (i->control_socket, c, &paths, error)) {
    /* InstanceStart works once per process: a failed boot leaves nothing
     * worth keeping. */
    banger_vmm_signal_and_wait (i->pid, SIGKILL, SIGKILL_WAIT_MS);
    return FALSE;
  }
  g_free (i->accel);
  i->accel = g_strdup ("kvm");
  return TRUE;
}

static gboolean
link_into_jail (const char *link, const char *target, GError **error)
{
  g_unlink (link);
  if (symlink (target, link) < 0) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "cannot link %s to %s: %s", link, target,
                 g_strerror (errno));
    return FALSE;
  }
  return TRUE;
}

gboolean
banger_vmm_firecracker_start_jailed (const BangerVmmConfig *c, BangerVmmInstance *i,
                                     const char *chroot_dir, guint pid, GError **error)
{
  g_autofree char *run = g_build_filename (chroot_dir, "run", NULL);
  const char *names[][2] = {
    { "firecracker.sock", "firecracker.socket" },
    { "vsock.sock", "vsock.sock" },
    { "console.log", "console.log" },
    { "firecracker.log", "firecracker.log" },
    { "metrics.json", "metrics.json" },
  };
  FcPaths paths = {
    .kernel = "/vmlinux",
    .initrd = c->initrd && *c->initrd ? "/initrd" : NULL,
    .rootfs = "/rootfs",
    .console = "/run/console.log",
    .log = "/run/firecracker.log",
    .metrics = "/run/metrics.json",
    .vsock = "/run/vsock.sock",
  };
  g_autofree char *log = g_build_filename (run, "firecracker.log", NULL);

  banger_vmm_firecracker_instance_paths (c->vm_dir, i);
  for (gsize n = 0; n < G_N_ELEMENTS (names); n++) {
    g_autofree char *link = g_build_filename (c->vm_dir, names[n][0], NULL);
    g_autofree char *target = g_build_filename (run, names[n][1], NULL);

    if (!link_into_jail (link, target, error))
      return FALSE;
    /* The files Firecracker only opens must exist (it runs as the user,
     * who owns <chroot>/run). */
    if (n >= 2 && !touch (target, error))
      return FALSE;
  }
  g_free (i->pidfile);
  i->pidfile = g_build_filename (chroot_dir, "firecracker.pid", NULL);
  i->pid = pid;
  if (!wait_for_api (i->control_socket, pid, log, error))
    return FALSE;
  if (c->incoming_state != NULL && *c->incoming_state) {
    /* LaunchJailed linked the state in: the logger and metrics (the only
     * resources allowed before a load), then the load. */
    g_autoptr (BangerFirecrackerApi) api
        = banger_firecracker_api_new (i->control_socket, API_TIMEOUT_S);

    if (!put_logger_and_metrics (api, &paths, error)
        || !banger_vmm_firecracker_load_state_jailed (c, i, error)) {
      /* As a direct restore's: a process that failed its load is good for
       * nothing, and a warm start's fallback boot relaunches this jail
       * (the VMM runs as the user, so bangerd may signal it). */
      banger_vmm_signal_and_wait (i->pid, SIGKILL, SIGKILL_WAIT_MS);
      return FALSE;
    }
  } else if (!configure_and_start (i->control_socket, c, &paths, error)) {
    return FALSE;
  }
  g_free (i->accel);
  i->accel = g_strdup ("kvm");
  return TRUE;
}

static guint
fc_find_pid (const char *vm_dir)
{
  g_autofree char *api_sock = g_build_filename (vm_dir, "firecracker.sock", NULL);
  g_autofree char *vm_id = g_path_get_basename (vm_dir);

  return banger_vmm_firecracker_find_pid_full (api_sock, vm_id);
}

static gboolean
fc_quit (BangerVmmInstance *i, GError **error)
{
  g_autoptr (GError) local = NULL;

  if (i->pid == 0 || !process_alive (i->pid))
    return TRUE;
  /* The guest had its chance through the agent (the caller's power-off);
   * Ctrl-Alt-Del makes it reboot, which with reboot=k ends Firecracker. */
  if (i->control_socket != NULL) {
    g_autoptr (BangerFirecrackerApi) api = banger_firecracker_api_new (i->control_socket, 2);
    if (banger_firecracker_api_action (api, "SendCtrlAltDel", &local)
        && banger_vmm_signal_and_wait (i->pid, 0, CTRL_ALT_DEL_MS))
      return TRUE;
  }
  if (banger_vmm_signal_and_wait (i->pid, SIGTERM, SIGTERM_WAIT_MS))
    return TRUE;
  if (banger_vmm_signal_and_wait (i->pid, SIGKILL, SIGKILL_WAIT_MS))
    return TRUE;
  g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "Firecracker (pid %u) did not exit%s%s",
               i->pid, local ? ": " : "", local ? local->message : "");
  return FALSE;
}

GIOStream *
banger_vmm_firecracker_vsock_connect (const char *uds_path, guint port, guint timeout_ms,
                                      GCancellable *cancellable, GError **error)
{
  gint64 deadline = g_get_monotonic_time () + (gint64)timeout_ms * 1000;
  g_autofree char *request = g_strdup_printf ("CONNECT %u\n", port);
  g_autofree char *last = NULL;

  while (TRUE) {
    g_autoptr (GSocketClient) client = g_socket_client_new ();
    g_autoptr (GSocketAddress) addr = g_unix_socket_address_new (uds_path);
    g_autoptr (GSocketConnection) conn = NULL;
    g_autoptr (GError) local = NULL;
    char line[VSOCK_LINE_MAX + 1];
    gsize len = 0;

    conn = g_socket_client_connect (client, G_SOCKET_CONNECTABLE (addr), cancellable, &local);
    if (conn != NULL) {
      GSocket *sock = g_socket_connection_get_socket (conn);
      GOutputStream *out = g_io_stream_get_output_stream (G_IO_STREAM (conn));
      GInputStream *in = g_io_stream_get_input_stream (G_IO_STREAM (conn));

      g_socket_set_timeout (sock, MAX (1, timeout_ms / 1000));
      if (g_output_stream_write_all (out, request, strlen (request), NULL, cancellable, &local)) {
        /* One byte at a time: nothing after the newline belongs to us. */
        while (len < VSOCK_LINE_MAX) {
          gssize n = g_input_stream_read (in, line + len, 1, cancellable, &local);
          if (n <= 0)
            break;
          if (line[len++] == '\n')
            break;
        }
        line[len] = '\0';
        if (len > 3 && g_str_has_prefix (line, "OK ") && line[len - 1] == '\n') {
          g_socket_set_timeout (sock, 0);
          return G_IO_STREAM (g_steal_pointer (&conn));
        }
      }
    }
    /* Firecracker closes the connection while nothing in the guest listens
     * on the port: the agent is still coming up. */
    g_free (last);
    last = local ? g_strdup (local->message)
                 : g_strdup_printf ("no OK for CONNECT %u (the guest's agent is not up)", port);
    if (g_cancellable_set_error_if_cancelled (cancellable, error))
      return NULL;
    if (g_get_monotonic_time () > deadline) {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                   "hybrid vsock %s: no connection to guest port %u within %u ms: %s", uds_path,
                   port, timeout_ms, last);
      return NULL;
    }
    g_usleep (VSOCK_RETRY_MS * 1000);
  }
}

/* ---- the runtime's side: start, agent, stop, jail ------------------------- */

/* A jailed Firecracker's API socket in the VM directory is a symlink into
 * its jail (banger_vmm_firecracker_start_jailed); a direct one's is the
 * socket itself. So the VM directory says how the VM was launched, even
 * after a restart of bangerd or a change of its configuration. */
static gboolean
fc_dir_is_jailed (const char *vm_dir)
{
  g_autofree char *api_sock = g_build_filename (vm_dir, "firecracker.sock", NULL);

  return g_file_test (api_sock, G_FILE_TEST_IS_SYMLINK);
}

/* Its raw disk, or the record of its dm-snapshot (which the helper still
 * holds for a stopped VM). */
static gboolean
fc_has_disk (const char *vm_dir)
{
  g_autofree char *disk = g_build_filename (vm_dir, "disk.raw", NULL);
  g_autofree char *dev = g_build_filename (vm_dir, BANGER_VMM_SNAPSHOT_DEVICE_FILE, NULL);

  return g_file_test (disk, G_FILE_TEST_EXISTS) || g_file_test (dev, G_FILE_TEST_EXISTS);
}

static gboolean
fc_use_jail (int jailer, const GError *no_helper, gboolean *jailed, GError **error)
{
  /* auto: a user without root cannot give Firecracker its devices, the
   * helper's jail can; root runs it directly (docs/firecracker.md). */
  *jailed = jailer == 1 || (jailer < 0 && geteuid () != 0 && no_helper == NULL);
  if (*jailed && no_helper != NULL) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_UNSUPPORTED,
                 "Firecracker: bangerd's config says [firecracker] jailer=true, but "
                 "the root helper is not running: %s",
                 no_helper->message);
    return FALSE;
  }
  return TRUE;
}

/* A direct Firecracker may run on a dm-snapshot (the helper's); a jail
 * needs a regular file to link, so a jailed one never does. */
static gboolean
fc_prepare_start_disk (const BangerVmmConfig *c, BangerVmmInstance *i, gboolean jailed,
                       BangerDiskSnapshotFunc snapshot, gpointer snapshot_data, GError **error)
{
  if (jailed)
    return fc_prepare_disk (c, i, error);
  return banger_vmm_firecracker_prepare_disk (c, i, snapshot, snapshot_data, error);
}

/* Firecracker under the helper's jailer: the helper links the checked
 * files into the jail and returns the pid; bangerd then configures and
 * starts the VM through the API socket (now linked from the VM directory). */
static gboolean
fc_launch_jailed (const BangerVmmConfig *c, BangerVmmInstance *i, const char *chroot_base,
                  BangerHelperClient *client, GError **error)
{
  g_autoptr (BangerHelperClient) helper = banger_helper_client_connect (client, NULL, error);
  g_auto (GVariantBuilder) spec = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE_VARDICT);
  g_autofree char *chroot = NULL;
  guint pid;

  if (helper == NULL || !check_state_origin (c, TRUE, error))
    return FALSE;
  g_variant_builder_add (&spec, "{sv}", "vm_id", g_variant_new_string (c->vm_id));
  if (c->incoming_state != NULL && *c->incoming_state) {
    g_autofree char *state = g_build_filename (c->incoming_state, BANGER_VMM_STATE_FILE, NULL);
    g_autofree char *memory = g_build_filename (c->incoming_state, BANGER_VMM_MEMORY_FILE, NULL);

    if (!banger_vmm_state_complete (c->incoming_state)
        || !g_file_test (memory, G_FILE_TEST_IS_REGULAR)) {
      g_set_error (error, BANGER_ERROR, BANGER_ERROR_NOT_FOUND, "no saved state in %s",
                   c->incoming_state);
      return FALSE;
    }
    /* Put into the new jail by the helper (read-only), checked as the disk is. */
    g_variant_builder_add (&spec, "{sv}", "state", g_variant_new_string (state));
    g_variant_builder_add (&spec, "{sv}", "memory", g_variant_new_string (memory));
  }
  g_variant_builder_add (&spec, "{sv}", "kernel", g_variant_new_string (c->kernel));
  g_variant_builder_add (&spec, "{sv}", "rootfs", g_variant_new_string (i->disk_path));
  if (c->initrd != NULL && *c->initrd)
    g_variant_builder_add (&spec, "{sv}", "initrd", g_variant_new_string (c->initrd));
  if (c->tap != NULL && *c->tap)
    g_variant_builder_add (&spec, "{sv}", "tap", g_variant_new_string (c->tap));
  g_variant_builder_add (&spec, "{sv}", "vcpus", g_variant_new_uint32 (c->vcpus));
  g_variant_builder_add (&spec, "{sv}", "memory_mib", g_variant_new_uint32 (c->memory_mib));
  pid = banger_helper_client_launch_jailed (helper, g_variant_builder_end (&spec), error);
  if (pid == 0)
    return FALSE;
  chroot = g_build_filename (chroot_base, "firecracker", c->vm_id, "root", NULL);
  return banger_vmm_firecracker_start_jailed (c, i, chroot, pid, error);
}

/* The hybrid vsock needs its CONNECT line first, retried while nothing in
 * the guest listens; once CONNECT is answered OK the agent listens, so the
 * handshake is quick (the runtime's BANGER_AGENT_ATTACH_TIMEOUT_MS). */
static GIOStream *
fc_agent_connect (const char *agent_socket, guint timeout_ms, guint *handshake_ms,
                  GCancellable *cancellable, GError **error)
{
  *handshake_ms = AGENT_HANDSHAKE_MS;
  return banger_vmm_firecracker_vsock_connect (agent_socket, BANGER_FIRECRACKER_AGENT_PORT,
                                               timeout_ms, cancellable, error);
}

/* The last resort for a jailed Firecracker that bangerd could not end
 * itself (it runs as the user, so normally bangerd can): the helper's
 * KillJailed, which acts on the caller's own jail only. */
static gboolean
kill_jailed (BangerHelperClient *client, const char *id, guint pid, GError **error)
{
  g_autoptr (BangerHelperClient) helper = banger_helper_client_connect (client, NULL, error);

  if (helper == NULL || !banger_helper_client_kill_jailed (helper, id, SIGKILL, error))
    return FALSE;
  if (!banger_vmm_signal_and_wait (pid, 0, BANGER_VMM_KILL_WAIT_MS)) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED,
                 "jailed Firecracker (pid %u) survived KillJailed", pid);
    return FALSE;
  }
  return TRUE;
}

/* One signal step of a forced Firecracker stop. A jailed VMM is the
 * helper's (it made the jail, and KillJailed checks the pid against the
 * jail's own pidfile as root), so its signals go through KillJailed; bangerd
 * signals it itself only when the helper cannot be reached (the VMM runs as
 * the user, so that works too). */
static gboolean
fc_signal_step (const char *id, guint pid, int signum, guint wait_ms, BangerHelperClient *helper,
                GString *how)
{
  const char *name = signum == SIGTERM ? "SIGTERM" : "SIGKILL";

  if (helper != NULL) {
    g_autoptr (GError) error = NULL;

    g_string_append_printf (how, ", %s through the helper’s KillJailed", name);
    if (banger_helper_client_kill_jailed (helper, id, signum, &error))
      return banger_vmm_signal_and_wait (pid, 0, wait_ms);
    g_string_append_printf (how, " (failed: %s)", error->message);
  }
  g_string_append_printf (how, ", %s", name);
  return banger_vmm_signal_and_wait (pid, signum, wait_ms);
}

/* The forced end of a Firecracker VM whose guest ignored the power-off:
 * SendCtrlAltDel (with reboot=k a guest reboot ends Firecracker), then
 * SIGTERM, then SIGKILL, each waited on through a pidfd. The same steps as
 * fc_quit(), done here so a jailed VMM is signalled through the helper and
 * @how can tell the user which steps it took. */
static gboolean
fc_force_stop (BangerHelperClient *client, const char *id, gboolean jailed, BangerVmmInstance *inst,
               GString *how, GError **error)
{
  g_autoptr (BangerHelperClient) helper = NULL;
  g_autoptr (GError) api_error = NULL;

  if (inst->control_socket != NULL) {
    g_autoptr (BangerFirecrackerApi) api = banger_firecracker_api_new (inst->control_socket, 2);

    g_string_append (how, "SendCtrlAltDel");
    if (banger_firecracker_api_action (api, "SendCtrlAltDel", &api_error)
        && banger_vmm_signal_and_wait (inst->pid, 0, CTRL_ALT_DEL_MS))
      return TRUE;
    g_string_append (how, api_error != NULL ? " (refused)" : " (ignored)");
  }
  if (jailed) {
    g_autoptr (GError) local = NULL;

    helper = banger_helper_client_connect (client, NULL, &local);
    if (helper == NULL)
      g_debug ("VM %s: no helper for KillJailed (%s); signalling directly", id, local->message);
  }
  if (fc_signal_step (id, inst->pid, SIGTERM, SIGTERM_WAIT_MS, helper, how))
    return TRUE;
  g_string_append (how, " (ignored)");
  if (fc_signal_step (id, inst->pid, SIGKILL, BANGER_VMM_KILL_WAIT_MS, helper, how))
    return TRUE;
  if (helper != NULL && fc_signal_step (id, inst->pid, SIGKILL, BANGER_VMM_KILL_WAIT_MS, NULL, how))
    return TRUE;
  g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "Firecracker (pid %u) did not exit (%s)",
               inst->pid, how->str);
  return FALSE;
}

static gboolean
fc_stop (const char *vm_id, const char *vm_dir, guint pid, gboolean graceful,
         BangerHelperClient *helper, char **how_out, GError **error)
{
  gboolean jailed = fc_dir_is_jailed (vm_dir);
  BangerVmmInstance inst = { 0 };
  g_autoptr (GError) local = NULL;
  gboolean gone;

  banger_vmm_firecracker_instance_paths (vm_dir, &inst);
  inst.pid = pid;
  if (graceful) {
    g_autoptr (GString) how = g_string_new (NULL);

    gone = fc_force_stop (helper, vm_id, jailed, &inst, how, &local);
    if (gone)
      *how_out = g_string_free (g_steal_pointer (&how), FALSE);
  } else {
    gone = banger_vmm_signal_and_wait (pid, SIGKILL, BANGER_VMM_KILL_WAIT_MS);
    if (!gone)
      g_set_error (&local, BANGER_ERROR, BANGER_ERROR_FAILED,
                   "Firecracker (pid %u) survived SIGKILL", pid);
  }
  banger_vmm_instance_clear (&inst);
  if (!gone && jailed) {
    g_autoptr (GError) jail_error = NULL;

    if (kill_jailed (helper, vm_id, pid, &jail_error))
      return TRUE;
    g_prefix_error (&local, "%s; ", jail_error->message);
  }
  if (!gone) {
    g_propagate_error (error, g_steal_pointer (&local));
    return FALSE;
  }
  return TRUE;
}

/* Linked from the VM directory once it ran jailed, or present under the
 * chroot base (a jailed start that failed before the link). */
static char *
fc_jail_dir (const char *vm_id, const char *vm_dir, const char *chroot_base)
{
  g_autofree char *jail = g_build_filename (chroot_base, "firecracker", vm_id, NULL);

  if (fc_dir_is_jailed (vm_dir) || g_file_test (jail, G_FILE_TEST_EXISTS))
    return g_steal_pointer (&jail);
  return NULL;
}

/* A snapshot is only loaded by the Firecracker that wrote it. A snapshot
 * names the drive files of the VM that made it and opens those on load: a
 * template's names its frozen disk in the warm cache
 * (banger_vmm_firecracker_save_template), and every restore points the
 * drive at the VM's own disk before the guest runs
 * (banger_vmm_firecracker_load_state; docs/warm-start.md). */
static char *
firecracker_state_compat (void)
{
  return banger_vmm_binary_identity (banger_vmm_firecracker_binary ());
}

/* A reflink or sparse copy of the template's frozen disk: the VM's own,
 * which it keeps when the snapshot is pruned. */
static gboolean
firecracker_prepare_clone_disk (const BangerVmmConfig *c, BangerVmmInstance *i,
                                const char *template_disk, GError **error)
{
  g_autofree char *mode = NULL;

  banger_vmm_firecracker_instance_paths (c->vm_dir, i);
  /* Never a stopped VM's disk: a warm start is a VM's first. */
  g_unlink (i->disk_path);
  if (!banger_disk_copy (template_disk, i->disk_path, (guint64)c->disk_mib * 1024 * 1024, NULL,
                         NULL, &mode, NULL, error))
    return FALSE;
  g_free (i->disk_mode);
  i->disk_mode = g_steal_pointer (&mode);
  return TRUE;
}

static const BangerVmmDriver firecracker_driver = {
  .name = "firecracker",
  .display_name = "Firecracker",
  .needs_vmlinux = TRUE, /* it boots only an ELF vmlinux, never a bzImage */
  .watch_boot_stall = FALSE,
  .state_compat = firecracker_state_compat,
  .prepare_clone_disk = firecracker_prepare_clone_disk,
  .prepare_disk = fc_prepare_disk,
  .launch = fc_launch,
  .find_pid = fc_find_pid,
  .quit = fc_quit,
  .instance_paths = banger_vmm_firecracker_instance_paths,
  .has_disk = fc_has_disk,
  .disk_format = "raw",
  .use_jail = fc_use_jail,
  .prepare_start_disk = fc_prepare_start_disk,
  .launch_jailed = fc_launch_jailed,
  .agent_connect = fc_agent_connect,
  .stop = fc_stop,
  .jail_dir = fc_jail_dir,
  .save_state = banger_vmm_firecracker_save_state,
  .save_template = banger_vmm_firecracker_save_template,
  .resume_paused = banger_vmm_firecracker_resume_paused,
};

const BangerVmmDriver *
banger_vmm_firecracker_driver (void)
{
  return &firecracker_driver;
}
