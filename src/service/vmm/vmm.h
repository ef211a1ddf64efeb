#pragma once

#include <gio/gio.h>

#include "disk-copy.h"
#include "helper-client.h"

G_BEGIN_DECLS

/* One interface for the VMM drivers (qemu, firecracker). A driver turns a
 * VM's configuration into a running VMM process that outlives bangerd,
 * finds that process again after a restart, and stops it. All calls may
 * block for up to a few seconds: bangerd calls them from worker threads.
 * A new driver fills a BangerVmmDriver and is named in vmm.c. */

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
  /* NULL or "": launch() boots the kernel. Otherwise a directory written by
   * save_state(): launch() starts the VMM restoring that state instead of
   * booting (same devices, same disk at instance->disk_path, which the
   * caller put there) and returns once the guest runs again. */
  char *incoming_state;
  /* For a boot that is to save a warm-start template (docs/warm-start.md):
   * the guest's memory in a shareable memfd, so that save_state() writes it
   * as a file of its own (BANGER_VMM_MEMORY_FILE) which restores then map
   * instead of loading it. A driver without the notion ignores it. */
  gboolean ram_shared;
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
  /* Borrowed, may be NULL: bangerd's helper client, for what a jailed VMM's
   * saved state needs from the helper (save_state, save_template). */
  BangerHelperClient *helper;
  /* Set by the warm-start save only: save_state() writes a memfd guest
   * memory (config->ram_shared) as a file of its own that restores map.
   * A suspend writes the plain stream, one format for every suspended VM
   * whatever its memory (bench/suspend timed both the same). */
  gboolean memory_file;
} BangerVmmInstance;

void banger_vmm_config_clear (BangerVmmConfig *config);
void banger_vmm_instance_clear (BangerVmmInstance *instance);

/* How long a VMM may take to exit after SIGKILL (or the helper's KillJailed). */
#define BANGER_VMM_KILL_WAIT_MS 5000

/* In a VM directory: the path of its dm-snapshot device (disk-copy.h), so a
 * restart finds the snapshot the helper still holds (CreateSnapshot answers
 * Exists for it) instead of making a new one over its data. */
#define BANGER_VMM_SNAPSHOT_DEVICE_FILE "disk.dev"

/* In a state directory (save_state()): the device and CPU state, and for a
 * VMM that keeps memory apart (Firecracker) the guest memory. QEMU's
 * migration stream holds both in BANGER_VMM_STATE_FILE. */
#define BANGER_VMM_STATE_FILE  "vmstate"
#define BANGER_VMM_MEMORY_FILE "memory"

/* How long a save or a restore may take (a big guest on a slow disk). */
#define BANGER_VMM_STATE_TIMEOUT_MS (10 * 60 * 1000)

/* A driver: everything that differs between VMMs, so that the runtime
 * (src/service/vm) never asks which driver a VM has. */
typedef struct {
  const char *name;         /* in VM records and `--driver`: "qemu", "firecracker" */
  const char *display_name; /* in messages: "QEMU", "Firecracker" */
  /* The format of the VM's own disk (instance->disk_path): "qcow2", "raw".
   * Said, never probed: PromoteVM hands it to qemu-img as it is. */
  const char *disk_format;
  /* The VMM boots only an ELF vmlinux, never a bzImage: the runtime boots
   * the kernel's unpacked vmlinux (Firecracker). */
  gboolean needs_vmlinux;
  /* The runtime watches the console for a boot that stalls before the agent
   * answers and starts the VMM once more (QEMU: under TCG a kernel very
   * rarely stalls early in boot). */
  gboolean watch_boot_stall;
  /* What a saved state depends on beyond the VM's configuration: the VMM
   * binary (its path, size and mtime), so that a state saved by another
   * build of the VMM is never restored (docs/warm-start.md). NULL (the
   * function or its result): this driver's states are not reused across
   * VMs. Newly allocated. */
  char *(*state_compat) (void);
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

  /* Fills @instance's host-side paths for a VM directory (the same for
   * every start). */
  void (*instance_paths) (const char *vm_dir, BangerVmmInstance *instance);
  /* Whether @vm_dir already holds this driver's disk for the VM (a stopped
   * VM keeps its disk), so a failed start must not remove it. */
  gboolean (*has_disk) (const char *vm_dir);
  /* Whether a start runs the VMM in the helper's jail, from bangerd's
   * [firecracker] jailer setting (@jailer: 1 always, 0 never, -1 auto) and
   * @no_helper (why the helper cannot be reached; NULL if it can). FALSE
   * with @error when the setting cannot be met. */
  gboolean (*use_jail) (int jailer, const GError *no_helper, gboolean *jailed, GError **error);
  /* prepare_disk as a start calls it: @snapshot (banger_disk_copy()) makes
   * a dm-snapshot through the helper, which a driver uses where it can. */
  gboolean (*prepare_start_disk) (const BangerVmmConfig *config, BangerVmmInstance *instance,
                                  gboolean jailed, BangerDiskSnapshotFunc snapshot,
                                  gpointer snapshot_data, GError **error);
  /* launch() for a start use_jail() said is jailed: through the helper's
   * jail under @chroot_base (the helper's [jail] chroot_base). @helper is
   * bangerd's helper client (helper-client.h), here and in stop(). NULL
   * for a driver whose use_jail() never says jailed. */
  gboolean (*launch_jailed) (const BangerVmmConfig *config, BangerVmmInstance *instance,
                             const char *chroot_base, BangerHelperClient *helper, GError **error);
  /* Makes the VM's writable root disk (instance->disk_path, filled by
   * instance_paths()) from @template_disk, the disk of a VM whose state
   * was saved (warm start, docs/warm-start.md), cheaply: QEMU an overlay
   * backed by a hard link of it in the VM directory, so the VM keeps it
   * when the snapshot is pruned; Firecracker a reflink or sparse copy. */
  /* Optional, best effort: with a warm-start template's frozen disk just
   * written at @template_disk, makes beside it what prepare_clone_disk()
   * would otherwise make on the first clone's start (QEMU: the empty
   * overlay every clone copies). */
  void (*prepare_template_disk) (const char *template_disk);
  gboolean (*prepare_clone_disk) (const BangerVmmConfig *config, BangerVmmInstance *instance,
                                  const char *template_disk, GError **error);
  /* Opens the stream that carries the agent protocol to the guest agent at
   * @agent_socket (instance->agent_socket), within @timeout_ms (the guest
   * may still be booting), and says in *@handshake_ms how long the agent's
   * handshake may then take. Blocks (worker thread). */
  GIOStream *(*agent_connect) (const char *agent_socket, guint timeout_ms, guint *handshake_ms,
                               GCancellable *cancellable, GError **error);
  /* Ends the live VMM @pid of the VM @vm_id in @vm_dir. @graceful: the
   * guest was asked to power off and did not in time, so the driver's own
   * steps, told in *@how for the user; otherwise (Kill) SIGKILL at once.
   * TRUE when the VMM is gone. Blocks (worker thread). */
  gboolean (*stop) (const char *vm_id, const char *vm_dir, guint pid, gboolean graceful,
                    BangerHelperClient *helper, char **how, GError **error);
  /* The VM's jail directory under @chroot_base if it has one (the helper's
   * RemoveJail removes it when the VM is deleted), else NULL. */
  char *(*jail_dir) (const char *vm_id, const char *vm_dir, const char *chroot_base);
  /* Pauses the running guest and writes its memory and device state into
   * the existing, empty directory @state_dir (BANGER_VMM_STATE_FILE, and
   * BANGER_VMM_MEMORY_FILE where the driver keeps one), with the disk
   * flushed so that a copy of instance->disk_path taken right after is
   * consistent. On success the VMM still exists, paused: the caller quits
   * it (or resume_paused()). Files are written under temporary names and
   * renamed at the end, so a failed save (a full disk) leaves nothing that
   * looks like a state; on failure the guest runs again and @error names
   * the cause. Blocks (worker thread). */
  gboolean (*save_state) (BangerVmmInstance *instance, const char *state_dir, GError **error);
  /* save_state() for a warm-start template (docs/warm-start.md), for a
   * driver whose saved state names the disk file and opens it on a restore
   * (Firecracker; NULL for others, whose caller copies the disk after
   * save_state()): also copies the flushed disk to @disk_copy (in
   * @state_dir), and the state names @disk_as, the path that copy will
   * have once the caller renames @state_dir into place, instead of the
   * VM's own disk. A failure resumes the guest as save_state()'s does,
   * except when its drive could not be pointed back at its own disk: it
   * then stays paused (its start fails) rather than write to the copy. */
  gboolean (*save_template) (BangerVmmInstance *instance, const char *state_dir,
                             const char *disk_copy, const char *disk_as, GError **error);
  /* Continues a guest paused by save_state(). */
  gboolean (*resume_paused) (BangerVmmInstance *instance, GError **error);
} BangerVmmDriver;

/* Whether @state_dir holds a complete saved state (the files a successful
 * save_state() renamed into place), for the runtime and doctor. */
gboolean banger_vmm_state_complete (const char *state_dir);

/* @program (found on PATH)'s path, size and mtime, or NULL if it is not
 * found: for a driver's state_compat. */
char *banger_vmm_binary_identity (const char *program);

/* The driver called @name ("qemu", "firecracker"), or NULL if there is
 * none by that name. */
const BangerVmmDriver *banger_vmm_driver_by_name (const char *name);
/* The driver a VM record names: by name, else (""; a VM that never ran, or a
 * name this bangerd does not know) the fallback, qemu. */
const BangerVmmDriver *banger_vmm_driver_for_record (const char *name);

/* "firecracker" where a `firecracker` binary is on PATH (or $BANGER_FIRECRACKER
 * names one) and KVM really works (banger_vmm_qemu_accel() says "kvm");
 * otherwise "qemu". For the runtime to pick a VM's driver when the user
 * gave no --driver. */
const char *banger_vmm_default_driver (void);

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
