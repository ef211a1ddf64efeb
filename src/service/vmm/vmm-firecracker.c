#define G_LOG_DOMAIN "banger-vmm-firecracker"

/* The Firecracker driver: configuration over the API socket (libsoup-3,
 * firecracker-api.c), a raw per-VM disk (disk-copy.c), console to a file
 * through PUT /serial, the agent over the hybrid vsock. See
 * docs/firecracker.md. */

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

#define FC_BINARY       "firecracker"
#define API_TIMEOUT_S   10
#define SOCKET_WAIT_MS  5000
#define CTRL_ALT_DEL_MS 3000
#define SIGTERM_WAIT_MS 2000
#define SIGKILL_WAIT_MS 3000
#define VSOCK_RETRY_MS  100
#define VSOCK_LINE_MAX  64
#define JAIL_API_SOCKET "/run/firecracker.socket"

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

/* The whole pre-boot configuration, then InstanceStart. */
static gboolean
configure_and_start (const char *api_sock, const BangerVmmConfig *c, const FcPaths *p,
                     GError **error)
{
  g_autoptr (BangerFirecrackerApi) api = banger_firecracker_api_new (api_sock, API_TIMEOUT_S);
  g_autofree char *boot_args = banger_vmm_firecracker_boot_args (c);
  JsonBuilder *b;

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

  b = object_begin ();
  add_string (b, "log_path", p->log);
  add_string (b, "level", "Info");
  add_bool (b, "show_level", TRUE);
  if (!put (api, "/logger", b, error))
    return FALSE;

  b = object_begin ();
  add_string (b, "metrics_path", p->metrics);
  if (!put (api, "/metrics", b, error))
    return FALSE;

  return banger_firecracker_api_action (api, "InstanceStart", error);
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
  if (!configure_and_start (i->control_socket, c, &paths, error)) {
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
  if (!configure_and_start (i->control_socket, c, &paths, error))
    return FALSE;
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

static const BangerVmmDriver firecracker_driver = {
  .name = "firecracker",
  .prepare_disk = fc_prepare_disk,
  .launch = fc_launch,
  .find_pid = fc_find_pid,
  .quit = fc_quit,
};

const BangerVmmDriver *
banger_vmm_firecracker_driver (void)
{
  return &firecracker_driver;
}
