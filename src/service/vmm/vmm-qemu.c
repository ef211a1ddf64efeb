/* The qemu driver: qemu-system-x86_64 controlled over QMP, a qcow2 overlay
 * per VM on the image's raw rootfs, console to a file, the agent over a
 * virtio-serial port, the VM's tap for its network. */

#include "vmm.h"

#include <errno.h>
#include <fcntl.h>
#include <gio/gunixsocketaddress.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "banger-error.h"
#include "kvm-probe.h"
#include "qmp.h"
#include "vmm-qemu-state.h"

#define QEMU_BINARY     "qemu-system-x86_64"
#define QEMU_IMG_BINARY "qemu-img"
/* /proc/<pid>/comm holds at most 15 characters of the program name. */
#define QEMU_COMM            "qemu-system-x86"
#define AGENT_PORT_NAME      "org.banger.agent.0"
#define KVM_PROBE_TIMEOUT_MS 2000

static const char *
qemu_binary (void)
{
  /* Tests and unusual installs may point at another QEMU. */
  const char *env = g_getenv ("BANGER_QEMU");
  return env && *env ? env : QEMU_BINARY;
}

const char *
banger_vmm_qemu_accel (const char **reason_out)
{
  static gsize once = 0;
  static const char *accel;
  static char *reason;

  if (g_once_init_enter (&once)) {
    const char *forced = g_getenv ("BANGER_ACCEL");
    if (forced != NULL && (g_str_equal (forced, "tcg") || g_str_equal (forced, "kvm"))) {
      accel = g_str_equal (forced, "kvm") ? "kvm" : "tcg";
      reason = g_strdup ("set by BANGER_ACCEL");
    } else if (banger_kvm_probe ("/dev/kvm", KVM_PROBE_TIMEOUT_MS, &reason)) {
      accel = "kvm";
    } else {
      accel = "tcg";
    }
    g_once_init_leave (&once, 1);
  }
  if (reason_out)
    *reason_out = reason;
  return accel;
}

void
banger_vmm_qemu_instance_paths (const char *vm_dir, BangerVmmInstance *i)
{
  i->control_socket = g_build_filename (vm_dir, "qmp.sock", NULL);
  i->agent_socket = g_build_filename (vm_dir, "agent.sock", NULL);
  i->console_log = g_build_filename (vm_dir, "console.log", NULL);
  i->pidfile = g_build_filename (vm_dir, "qemu.pid", NULL);
  i->disk_path = g_build_filename (vm_dir, "disk.qcow2", NULL);
}

/* A migration stream is only read back by the QEMU that wrote it (another
 * version may lay devices out differently). */
static char *
qemu_state_compat (void)
{
  return banger_vmm_binary_identity (qemu_binary ());
}

/* g_spawn_sync() rather than GSubprocess: it reads the child's stderr and
 * waitpid()s it in the calling thread. With GSubprocess (GLib 2.74) the
 * exit is seen by a child watch in GLib's worker thread and handed back to
 * this one; with 20 VMs starting at once next to 100 busy clients, launch
 * threads stayed in g_subprocess_communicate_utf8() for minutes with no
 * child left to wait for, and every start timed out
 * (vm-load-100-clients-20-vms, BANGER_LOAD_SEED=1311207348). */
static gboolean
run_argv (const char *const *argv, const char *what, GError **error)
{
  g_autofree char *err_text = NULL;
  g_autoptr (GError) local = NULL;
  int status = 0;

  if (!g_spawn_sync (NULL, (char **)argv, NULL,
                     G_SPAWN_SEARCH_PATH | G_SPAWN_STDOUT_TO_DEV_NULL | G_SPAWN_CLOEXEC_PIPES, NULL,
                     NULL, NULL, &err_text, &status, &local)) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "%s: cannot run %s: %s", what, argv[0],
                 local->message);
    return FALSE;
  }
  if (!g_spawn_check_wait_status (status, NULL)) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "%s failed: %s", what,
                 err_text && *err_text ? g_strstrip (err_text) : "(no message)");
    return FALSE;
  }
  return TRUE;
}

static gboolean
qemu_prepare_disk (const BangerVmmConfig *c, BangerVmmInstance *i, GError **error)
{
  g_autofree char *size = g_strdup_printf ("%uM", c->disk_mib);
  g_autofree char *tmp = NULL;
  guint64 rootfs_size;
  g_autoptr (GFileInfo) info = NULL;
  g_autoptr (GFile) rootfs = g_file_new_for_path (c->rootfs);

  if (i->disk_path == NULL)
    banger_vmm_qemu_instance_paths (c->vm_dir, i);
  if (g_file_test (i->disk_path, G_FILE_TEST_EXISTS))
    goto done; /* a stopped VM keeps its disk */

  info = g_file_query_info (rootfs, G_FILE_ATTRIBUTE_STANDARD_SIZE, G_FILE_QUERY_INFO_NONE, NULL,
                            error);
  if (info == NULL) {
    banger_error_convert (error);
    return FALSE;
  }
  rootfs_size = g_file_info_get_size (info);
  /* The overlay may not be smaller than what it covers. */
  if ((guint64)c->disk_mib * 1024 * 1024 < rootfs_size) {
    g_free (size);
    size = g_strdup_printf ("%" G_GUINT64_FORMAT, rootfs_size);
  }

  /* A snapshot's disk linked by an earlier start from a snapshot that
   * failed (qemu_prepare_clone_disk): this disk does not use it. */
  {
    g_autofree char *base = g_build_filename (c->vm_dir, "base.qcow2", NULL);
    g_unlink (base);
  }
  /* A qcow2 overlay costs the same whatever the image's size: only the
   * header is written. Created under a temporary name so a failure leaves
   * nothing that looks like a disk. */
  tmp = g_strconcat (i->disk_path, ".tmp", NULL);
  {
    const char *argv[] = { QEMU_IMG_BINARY, "create", "-q",      "-f", "qcow2", "-F",
                           "raw",           "-b",     c->rootfs, tmp,  size,    NULL };
    if (!run_argv (argv, "creating the VM's disk overlay", error)) {
      g_unlink (tmp);
      return FALSE;
    }
  }
  if (g_rename (tmp, i->disk_path) < 0) {
    int saved = errno;
    g_unlink (tmp);
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "cannot create %s: %s", i->disk_path,
                 g_strerror (saved));
    return FALSE;
  }
done:
  g_free (i->disk_mode);
  i->disk_mode = g_strdup ("qcow2-overlay");
  return TRUE;
}

/* The virtual size in a qcow2 header: a big-endian u64 at offset 24
 * (QEMU's docs/interop/qcow2.txt), or 0 if @path is no qcow2. */
static guint64
qcow2_virtual_size (const char *path)
{
  guint8 hdr[32];
  guint64 size = 0;
  int fd = open (path, O_RDONLY | O_CLOEXEC);

  if (fd < 0)
    return 0;
  if (pread (fd, hdr, sizeof hdr, 0) == (ssize_t)sizeof hdr && memcmp (hdr, "QFI\xfb", 4) == 0) {
    for (guint k = 24; k < 32; k++)
      size = size << 8 | hdr[k];
  }
  close (fd);
  return size;
}

/* An empty overlay on "base.qcow2" (relative: the file beside it), made
 * once per template beside its disk (at its save, else by its first
 * clone) and copied by each clone: a copy of
 * ~200 KiB instead of running qemu-img (~25 ms of a warm start). NULL
 * where it cannot be made (the caller runs qemu-img itself). Made under a
 * temporary name: clones starting together see it whole or not at all. */
static char *
clone_overlay (const char *template_disk)
{
  g_autofree char *dir = g_path_get_dirname (template_disk);
  g_autofree char *path = g_build_filename (dir, "clone-overlay.qcow2", NULL);
  g_autofree char *tmp = NULL;
  g_autofree char *size = NULL;
  g_autoptr (GError) error = NULL;
  guint64 bytes;
  int fd;

  if (g_file_test (path, G_FILE_TEST_IS_REGULAR))
    return g_steal_pointer (&path);
  bytes = qcow2_virtual_size (template_disk);
  if (bytes == 0)
    return NULL;
  tmp = g_build_filename (dir, ".clone-overlay-XXXXXX", NULL);
  fd = g_mkstemp (tmp);
  if (fd < 0)
    return NULL;
  close (fd);
  size = g_strdup_printf ("%" G_GUINT64_FORMAT, bytes);
  {
    /* -u: base.qcow2 exists only beside a clone's copy. */
    const char *argv[] = { QEMU_IMG_BINARY, "create", "-q", "-u", "-f", "qcow2", "-F", "qcow2",
                           "-b", "base.qcow2", tmp, size, NULL };
    if (!run_argv (argv, "creating a clone overlay", &error) || g_rename (tmp, path) < 0) {
      g_debug ("%s: %s", path, error != NULL ? error->message : g_strerror (errno));
      g_unlink (tmp);
      return NULL;
    }
  }
  return g_steal_pointer (&path);
}

static void
qemu_prepare_template_disk (const char *template_disk)
{
  g_free (clone_overlay (template_disk));
}

/* The template's frozen overlay is linked (not copied: it never changes)
 * into the VM directory as base.qcow2, and the VM's disk is a new overlay
 * on it: no data is copied, and pruning the snapshot cannot pull the disk
 * from under the VM. A copy only where a link cannot be made (another
 * filesystem). */
static gboolean
qemu_prepare_clone_disk (const BangerVmmConfig *c, BangerVmmInstance *i, const char *template_disk,
                         GError **error)
{
  g_autofree char *base = g_build_filename (c->vm_dir, "base.qcow2", NULL);
  g_autofree char *tmp = NULL;
  g_autofree char *empty = NULL;

  if (i->disk_path == NULL)
    banger_vmm_qemu_instance_paths (c->vm_dir, i);
  g_unlink (base);
  if (link (template_disk, base) < 0) {
    g_autoptr (GFile) from = g_file_new_for_path (template_disk);
    g_autoptr (GFile) to = g_file_new_for_path (base);
    if (!g_file_copy (from, to, G_FILE_COPY_OVERWRITE, NULL, NULL, NULL, error)) {
      g_prefix_error (error, "copying the snapshot's disk %s: ", template_disk);
      banger_error_convert (error);
      g_unlink (base);
      return FALSE;
    }
  }
  tmp = g_strconcat (i->disk_path, ".tmp", NULL);
  empty = clone_overlay (template_disk);
  if (empty != NULL) {
    /* The overlay names its backing file relatively (base.qcow2, beside
     * it): a copy of one made for the template is this VM's. */
    g_autoptr (GFile) from = g_file_new_for_path (empty);
    g_autoptr (GFile) to = g_file_new_for_path (tmp);
    if (!g_file_copy (from, to, G_FILE_COPY_OVERWRITE, NULL, NULL, NULL, error)) {
      g_prefix_error (error, "creating the VM's disk overlay from %s: ", empty);
      banger_error_convert (error);
      g_unlink (tmp);
      g_unlink (base);
      return FALSE;
    }
  } else {
    const char *argv[] = { QEMU_IMG_BINARY, "create", "-q", "-f", "qcow2", "-F",
                           "qcow2",         "-b",     base, tmp,  NULL };
    if (!run_argv (argv, "creating the VM's disk overlay", error)) {
      g_unlink (tmp);
      g_unlink (base);
      return FALSE;
    }
  }
  if (g_rename (tmp, i->disk_path) < 0) {
    int saved = errno;
    g_unlink (tmp);
    g_unlink (base);
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "cannot create %s: %s", i->disk_path,
                 g_strerror (saved));
    return FALSE;
  }
  g_free (i->disk_mode);
  i->disk_mode = g_strdup ("qcow2-overlay");
  return TRUE;
}

/* Whether @path is a bzImage: the "HdrS" magic of the x86 boot protocol
 * at 0x202 (Documentation/arch/x86/boot.rst), which QEMU checks too. */
static gboolean
kernel_is_bzimage (const char *path)
{
  guint8 hdr[0x206];
  gboolean ok = FALSE;
  int fd = open (path, O_RDONLY | O_CLOEXEC);

  if (fd >= 0) {
    ok = pread (fd, hdr, sizeof hdr, 0) == (ssize_t)sizeof hdr && memcmp (hdr + 0x202, "HdrS", 4) == 0;
    close (fd);
  }
  return ok;
}

/* @value as a QEMU option value: a comma, QEMU's separator, doubled. */
static char *
qemu_opt_value (const char *value)
{
  g_auto (GStrv) parts = g_strsplit (value, ",", -1);

  return g_strjoinv (",,", parts);
}

static GPtrArray *
qemu_argv (const BangerVmmConfig *c, const BangerVmmInstance *i, const char *accel)
{
  GPtrArray *argv = g_ptr_array_new_with_free_func (g_free);
  g_autofree char *append = NULL;
  gboolean restore = c->incoming_state != NULL && *c->incoming_state;
  /* The guest memory as a file of its own (vmm-qemu-state.h): mapped from
   * a saved state that has one, in a memfd for a boot that saves one. */
  g_autofree char *ram_file = restore ? banger_vmm_qemu_ram_file (c->incoming_state) : NULL;
  gboolean ram_backend = ram_file != NULL || (c->ram_shared && !restore);
  /* Paths inside option strings have their commas doubled: a data
   * directory may have one (-kernel, -initrd and -pidfile take a plain
   * path). */
  g_autofree char *console_log = qemu_opt_value (i->console_log);
  g_autofree char *disk_path = qemu_opt_value (i->disk_path);
  g_autofree char *agent_socket = qemu_opt_value (i->agent_socket);
  g_autofree char *control_socket = qemu_opt_value (i->control_socket);

#define ARG(...) g_ptr_array_add (argv, g_strdup_printf (__VA_ARGS__))
  ARG ("%s", qemu_binary ());
  /* The VM's directory in -name lets find_pid match the command line. */
  ARG ("-name");
  ARG ("banger-%s,debug-threads=off", c->name);
  /* q35 rather than microvm: under TCG microvm hangs at random when TSC
   * calibration fails, while q35 (HPET, PM timer) never did and boots as
   * fast (TESTING.md; docs/decisions.md). */
  ARG ("-machine");
  ARG ("q35,accel=%s%s", accel, ram_backend ? ",memory-backend=" BANGER_QEMU_RAM_ID : "");
  if (g_str_equal (accel, "kvm")) {
    ARG ("-cpu");
    ARG ("host");
  }
  ARG ("-smp");
  ARG ("%u", c->vcpus);
  ARG ("-m");
  ARG ("%u", c->memory_mib);
  if (ram_file != NULL) {
    g_autofree char *path = qemu_opt_value (ram_file);
    /* Copy-on-write (share=off): the file is never written, and every
     * clone of the template shares its pages until it changes them. */
    ARG ("-object");
    ARG ("memory-backend-file,id=%s,size=%uM,mem-path=%s,share=off", BANGER_QEMU_RAM_ID,
         c->memory_mib, path);
  } else if (ram_backend) {
    ARG ("-object");
    ARG ("memory-backend-memfd,id=%s,size=%uM,share=on", BANGER_QEMU_RAM_ID, c->memory_mib);
  }
  ARG ("-nodefaults");
  ARG ("-no-user-config");
  ARG ("-display");
  ARG ("none");
  /* A guest reboot or panic ends the VMM: the VM is then "stopped". */
  ARG ("-no-reboot");
  if (restore && kernel_is_bzimage (c->kernel)) {
    /* A restored guest booted long ago: its kernel and initrd need not be
     * read again (~40 ms of QEMU's start, and their ~15 MB in every
     * VMM). What the boot left in the machine is the option ROM QEMU adds
     * to boot a bzImage with fw_cfg DMA (q35), a RAM block the saved
     * stream names: given alone, the stream loads as well. (An ELF kernel
     * boots through other ROMs: it is loaded as its boot loaded it.) */
    ARG ("-option-rom");
    ARG ("linuxboot_dma.bin");
  } else {
    ARG ("-kernel");
    ARG ("%s", c->kernel);
    if (c->initrd != NULL && *c->initrd) {
      ARG ("-initrd");
      ARG ("%s", c->initrd);
    }
    /* no_timer_check under TCG: on a loaded host the guest's early check
     * of the IO-APIC timer can see too few ticks and panic ("IO-APIC +
     * timer doesn't work!"); the load test (20 boots next to 10 000 calls
     * on 2 cores) hit it. Under KVM the timer is real and the check
     * stays. */
    append = g_strdup_printf ("console=ttyS0 reboot=k panic=-1 root=/dev/vda rw rootfstype=ext4 "
                              "init=/.banger/agent %s%s",
                              g_str_equal (accel, "tcg") ? "no_timer_check " : "",
                              c->kernel_args ? c->kernel_args : "");
    ARG ("-append");
    ARG ("%s", g_strstrip (append));
  }
  ARG ("-chardev");
  /* append=on: bangerd caps the log by truncating it (console-log.h), which
   * a writer at its own offset would turn into a growing sparse file. */
  ARG ("file,id=console,path=%s,append=on", console_log);
  ARG ("-serial");
  ARG ("chardev:console");
  ARG ("-drive");
  ARG ("file=%s,if=none,id=root,format=qcow2,discard=unmap", disk_path);
  ARG ("-device");
  ARG ("virtio-blk-pci,drive=root");
  if (c->tap != NULL && *c->tap) {
    ARG ("-netdev");
    ARG ("tap,id=net0,ifname=%s,script=no,downscript=no", c->tap);
    ARG ("-device");
    ARG ("virtio-net-pci,netdev=net0,mac=%s", c->mac);
  }
  ARG ("-device");
  ARG ("virtio-rng-pci");
  ARG ("-device");
  ARG ("virtio-serial-pci");
  ARG ("-chardev");
  ARG ("socket,id=agent,path=%s,server=on,wait=off", agent_socket);
  ARG ("-device");
  ARG ("virtserialport,chardev=agent,name=%s", AGENT_PORT_NAME);
  ARG ("-qmp");
  ARG ("unix:%s,server=on,wait=off", control_socket);
  ARG ("-pidfile");
  ARG ("%s", i->pidfile);
  if (c->incoming_state != NULL && *c->incoming_state) {
    /* The same machine waiting for a migration stream, which launch() then
     * hands it over QMP (vmm-qemu-state.c). */
    ARG ("-incoming");
    ARG ("defer");
  }
  /* QEMU forks, calls setsid() and detaches: the VMM outlives bangerd. */
  ARG ("-daemonize");
#undef ARG
  g_ptr_array_add (argv, NULL);
  return argv;
}

/* A state's memory file must be exactly the guest's memory: QEMU refuses
 * a longer one itself, but would grow a short one with zeros (and a guest
 * on it would crash later rather than fail to load now). */
static gboolean
check_ram_file (const BangerVmmConfig *c, GError **error)
{
  g_autofree char *ram_file = banger_vmm_qemu_ram_file (c->incoming_state);
  GStatBuf st;

  if (ram_file == NULL)
    return TRUE;
  if (g_stat (ram_file, &st) < 0 || (guint64)st.st_size != (guint64)c->memory_mib << 20) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED,
                 "the saved memory %s is not the guest's %u MiB (a corrupt or incompatible "
                 "saved state?)",
                 ram_file, c->memory_mib);
    return FALSE;
  }
  return TRUE;
}

static gboolean
qemu_launch (const BangerVmmConfig *c, BangerVmmInstance *i, GError **error)
{
  g_autoptr (GPtrArray) argv = NULL;
  const char *accel = banger_vmm_qemu_accel (NULL);
  gboolean restore = c->incoming_state != NULL && *c->incoming_state;

  if (i->pidfile == NULL)
    banger_vmm_qemu_instance_paths (c->vm_dir, i);
  /* Stale sockets from an earlier run would make QEMU fail to bind. */
  g_unlink (i->control_socket);
  g_unlink (i->agent_socket);
  g_unlink (i->pidfile);
  /* Each boot's log starts empty (QEMU appends: see qemu_argv); a restored
   * guest goes on with the log of the boot it continues. */
  if (!restore)
    g_unlink (i->console_log);
  if (restore && !banger_vmm_state_complete (c->incoming_state)) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_NOT_FOUND, "no saved state in %s",
                 c->incoming_state);
    return FALSE;
  }
  if (restore && !check_ram_file (c, error))
    return FALSE;

  argv = qemu_argv (c, i, accel);
  {
    g_autofree char *joined = g_strjoinv (" ", (char **)argv->pdata);
    g_debug ("launching %s", joined);
  }
  if (!run_argv ((const char *const *)argv->pdata, "starting QEMU", error))
    return FALSE;

  i->pid = banger_vmm_pid_from_pidfile (i->pidfile, QEMU_COMM, c->vm_dir);
  if (i->pid == 0) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED,
                 "QEMU started but its pidfile %s names no live QEMU", i->pidfile);
    return FALSE;
  }
  if (restore && !banger_vmm_qemu_load_state (i, c->incoming_state, error)) {
    /* A QEMU that did not take the state holds no guest worth keeping. */
    banger_vmm_signal_and_wait (i->pid, SIGKILL, BANGER_VMM_KILL_WAIT_MS);
    i->pid = 0;
    return FALSE;
  }
  g_free (i->accel);
  i->accel = g_strdup (accel);
  g_free (banger_vmm_move_to_scope (c->name, i->pid));
  return TRUE;
}

/* How long find_pid waits for a QEMU still being launched to write its
 * pidfile (it daemonizes once its devices are set up). */
#define QEMU_LAUNCH_WAIT_MS 15000

static guint
qemu_find_pid (const char *vm_dir)
{
  g_autofree char *pidfile = g_build_filename (vm_dir, "qemu.pid", NULL);
  gint64 deadline = g_get_monotonic_time () + QEMU_LAUNCH_WAIT_MS * G_TIME_SPAN_MILLISECOND;
  guint pid, launching;

  /* The command line carries the VM directory (disk, sockets, pidfile), so a
   * recycled pid that is some other QEMU is not taken for ours. */
  pid = banger_vmm_pid_from_pidfile (pidfile, QEMU_COMM, vm_dir);
  /* A bangerd killed right after spawning QEMU leaves one that has not
   * written its pidfile yet: taken for gone, the VM would be released
   * while that QEMU goes on (and, as root, makes its tap again). Wait for
   * it to finish daemonizing (its foreground process exits, pidfd), and
   * if it never does, end it: it was never running. Found by the crash
   * test (tests/vm/test_crash.py). */
  while (pid == 0 && (launching = banger_vmm_find_by_cmdline (QEMU_COMM, pidfile)) != 0) {
    if (g_get_monotonic_time () >= deadline) {
      g_warning ("QEMU %u of %s never wrote its pidfile: killing it", launching, vm_dir);
      banger_vmm_signal_and_wait (launching, SIGKILL, 3000);
      continue;
    }
    banger_vmm_signal_and_wait (launching, 0, 100);
    pid = banger_vmm_pid_from_pidfile (pidfile, QEMU_COMM, vm_dir);
  }
  return pid;
}

static gboolean
qemu_quit (BangerVmmInstance *i, GError **error)
{
  g_autoptr (GError) local = NULL;
  g_autoptr (BangerQmp) qmp = banger_qmp_connect (i->control_socket, 2000, &local);

  if (qmp != NULL) {
    g_autoptr (JsonNode) reply = banger_qmp_execute (qmp, "quit", NULL, &local);
    (void)reply;
  }
  if (i->pid != 0 && banger_vmm_signal_and_wait (i->pid, 0, 3000))
    return TRUE;
  if (i->pid != 0 && banger_vmm_signal_and_wait (i->pid, SIGKILL, 3000))
    return TRUE;
  g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "QEMU (pid %u) did not exit: %s", i->pid,
               local ? local->message : "still running");
  return FALSE;
}

static gboolean
qemu_has_disk (const char *vm_dir)
{
  g_autofree char *disk = g_build_filename (vm_dir, "disk.qcow2", NULL);

  return g_file_test (disk, G_FILE_TEST_EXISTS);
}

/* QEMU has no jail: it always runs as the user. */
static gboolean
qemu_use_jail (int jailer, const GError *no_helper, gboolean *jailed, GError **error)
{
  *jailed = FALSE;
  return TRUE;
}

/* A qcow2 overlay is already cheap: no dm-snapshot. */
static gboolean
qemu_prepare_start_disk (const BangerVmmConfig *c, BangerVmmInstance *i, gboolean jailed,
                         BangerDiskSnapshotFunc snapshot, gpointer snapshot_data, GError **error)
{
  return qemu_prepare_disk (c, i, error);
}

/* The agent's virtio-serial chardev is a listening socket from QEMU's start
 * (server=on,wait=off): one connect, then the whole time for the handshake,
 * which the guest answers once its agent is up. */
static GIOStream *
qemu_agent_connect (const char *agent_socket, guint timeout_ms, guint *handshake_ms,
                    GCancellable *cancellable, GError **error)
{
  g_autoptr (GSocketClient) client = g_socket_client_new ();
  g_autoptr (GSocketAddress) addr = g_unix_socket_address_new (agent_socket);
  GSocketConnection *conn
      = g_socket_client_connect (client, G_SOCKET_CONNECTABLE (addr), cancellable, error);

  *handshake_ms = timeout_ms;
  return conn != NULL ? G_IO_STREAM (conn) : NULL;
}

static gboolean
qemu_stop (const char *vm_id, const char *vm_dir, guint pid, gboolean graceful,
           BangerHelperClient *helper, char **how, GError **error)
{
  BangerVmmInstance inst = { 0 };
  gboolean gone;

  banger_vmm_qemu_instance_paths (vm_dir, &inst);
  inst.pid = pid;
  if (graceful) {
    /* QMP quit, then SIGKILL. */
    gone = qemu_quit (&inst, error);
    if (gone)
      *how = g_strdup ("the driver’s quit (QMP quit, then SIGKILL)");
  } else {
    gone = banger_vmm_signal_and_wait (pid, SIGKILL, BANGER_VMM_KILL_WAIT_MS);
    if (!gone)
      g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "QEMU (pid %u) survived SIGKILL", pid);
  }
  banger_vmm_instance_clear (&inst);
  return gone;
}

static char *
qemu_jail_dir (const char *vm_id, const char *vm_dir, const char *chroot_base)
{
  return NULL;
}

static const BangerVmmDriver qemu_driver = {
  .name = "qemu",
  .display_name = "QEMU",
  .needs_vmlinux = FALSE,
  .watch_boot_stall = TRUE,
  .state_compat = qemu_state_compat,
  .prepare_disk = qemu_prepare_disk,
  .prepare_template_disk = qemu_prepare_template_disk,
  .prepare_clone_disk = qemu_prepare_clone_disk,
  .launch = qemu_launch,
  .find_pid = qemu_find_pid,
  .quit = qemu_quit,
  .instance_paths = banger_vmm_qemu_instance_paths,
  .has_disk = qemu_has_disk,
  .disk_format = "qcow2",
  .use_jail = qemu_use_jail,
  .prepare_start_disk = qemu_prepare_start_disk,
  .launch_jailed = NULL, /* use_jail() never says jailed */
  .agent_connect = qemu_agent_connect,
  .stop = qemu_stop,
  .jail_dir = qemu_jail_dir,
  .save_state = banger_vmm_qemu_save_state,
  .resume_paused = banger_vmm_qemu_resume_paused,
};

const BangerVmmDriver *
banger_vmm_qemu_driver (void)
{
  return &qemu_driver;
}
