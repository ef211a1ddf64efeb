#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* One interface for the VMM drivers (qemu here; firecracker later). A
 * driver turns a VM's configuration into a running VMM process that
 * outlives bangerd, finds that process again after a restart, and stops it.
 * All calls may block for up to a few seconds: bangerd calls them from
 * worker threads. */

typedef struct {
  char *vm_id;
  char *name;
  char *vm_dir; /* per-VM directory: disk, console log, sockets, pidfile */
  char *kernel; /* kernel image */
  char *initrd; /* NULL or "" for none */
  char *rootfs; /* the image's raw root filesystem (never written) */
  guint vcpus;
  guint memory_mib;
  guint disk_mib;
  char *tap; /* NULL or "": no network device */
  char *mac;
  char *kernel_args; /* banger.* arguments for the guest agent */
} BangerVmmConfig;

typedef struct {
  guint pid;
  char *control_socket; /* QMP socket (qemu) or API socket (firecracker) */
  char *agent_socket;   /* unix socket carrying the agent protocol */
  char *console_log;
  char *pidfile;
  char *disk_path;
  char *disk_mode; /* "qcow2-overlay", "reflink", … */
  char *accel;     /* "kvm" or "tcg" */
} BangerVmmInstance;

void banger_vmm_config_clear (BangerVmmConfig *config);
void banger_vmm_instance_clear (BangerVmmInstance *instance);

typedef struct {
  const char *name;
  /* Makes the VM's writable root disk from config->rootfs. */
  gboolean (*prepare_disk) (const BangerVmmConfig *config, BangerVmmInstance *instance,
                            GError **error);
  /* Starts the VMM (detached, own session, pidfile) and fills @instance. */
  gboolean (*launch) (const BangerVmmConfig *config, BangerVmmInstance *instance, GError **error);
  /* The pid of this VM's live VMM, verified, or 0 if there is none. Never
   * returns a pid that is not this VM's VMM. */
  guint (*find_pid) (const char *vm_dir);
  /* Asks the VMM process to exit now (the guest is already powered off or
   * the caller gave up waiting for it). */
  gboolean (*quit) (BangerVmmInstance *instance, GError **error);
} BangerVmmDriver;

const BangerVmmDriver *banger_vmm_qemu_driver (void);

/* Fills @instance's paths for a VM directory (the same for every start). */
void banger_vmm_qemu_instance_paths (const char *vm_dir, BangerVmmInstance *instance);

/* The accelerator qemu will use on this host ("kvm" if a probe proves it
 * works, else "tcg"), with the reason when KVM was not chosen. Probed once. */
const char *banger_vmm_qemu_accel (const char **reason);

/* Reads a pidfile and returns the pid if that process is alive, its
 * /proc/<pid>/comm equals @comm and its command line contains @needle;
 * else 0. Garbage, stale pids and foreign processes all give 0. */
guint banger_vmm_pid_from_pidfile (const char *pidfile, const char *comm, const char *needle);

/* A process of this user whose comm is @comm and whose command line
 * contains @needle, or 0: a VMM still being launched, before its pidfile. */
guint banger_vmm_find_by_cmdline (const char *comm, const char *needle);

/* Sends @signal to @pid and waits (pidfd) up to @timeout_ms for it to exit.
 * TRUE if it is gone. */
/* Moves the VMM @pid into its own transient scope of the user's systemd
 * instance (banger-vm-<name>.scope), where one runs; returns the scope's
 * name or NULL (logged) where none was made. */
char *banger_vmm_move_to_scope (const char *vm_name, guint pid);

gboolean banger_vmm_signal_and_wait (guint pid, int signal, guint timeout_ms);

/* Host-side figures for a VMM process: "vmm_cpu_seconds" (d), "vmm_rss_bytes" (t). */
gboolean banger_vmm_host_stats (guint pid, GVariantDict *dict, GError **error);

G_END_DECLS
