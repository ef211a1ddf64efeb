#pragma once

#include "disk-copy.h"
#include "vmm.h"

G_BEGIN_DECLS

/* The Firecracker driver (docs/firecracker.md). Two ways to run it:
 *
 * - direct, where the user may open /dev/kvm: driver->launch() spawns
 *   `firecracker --api-sock <vm_dir>/firecracker.sock --id <vm_id>` in its
 *   own session, writes <vm_dir>/firecracker.pid, configures the VM over the
 *   API and sends InstanceStart;
 * - jailed: bangerd calls the helper's LaunchJailed (which returns the pid),
 *   then banger_vmm_firecracker_start_jailed() links the jail's files into
 *   the VM directory and configures and starts the VM the same way.
 *
 * Either way the VM directory then holds: firecracker.sock (API),
 * vsock.sock (hybrid vsock: write "CONNECT 1024\n", read "OK <n>\n", then
 * the agent protocol), console.log, firecracker.log, metrics.json and
 * disk.raw. In a jail the first four are symlinks into <chroot>/run/. */

#define BANGER_FIRECRACKER_AGENT_PORT 1024
#define BANGER_FIRECRACKER_GUEST_CID  3

const BangerVmmDriver *banger_vmm_firecracker_driver (void);

/* banger_vmm_default_driver() (vmm.h) is defined with this driver. */

/* The firecracker binary the driver runs ($BANGER_FIRECRACKER or PATH). */
const char *banger_vmm_firecracker_binary (void);

/* The driver's prepare_disk with a snapshot function (banger_disk_copy()):
 * the runtime passes one that calls the helper's CreateSnapshot for a
 * direct Firecracker (a jail needs a regular file to link). */
gboolean banger_vmm_firecracker_prepare_disk (const BangerVmmConfig *config,
                                              BangerVmmInstance *instance,
                                              BangerDiskSnapshotFunc snapshot,
                                              gpointer snapshot_data, GError **error);

/* Fills @instance's host-side paths for a VM directory. */
void banger_vmm_firecracker_instance_paths (const char *vm_dir, BangerVmmInstance *instance);

/* The kernel command line: console, "reboot=k panic=1 pci=off", the root
 * device, banger's agent as init, then config->kernel_args. */
char *banger_vmm_firecracker_boot_args (const BangerVmmConfig *config);

/* After LaunchJailed returned @pid for the jail whose chroot is @chroot_dir
 * (<chroot-base>/firecracker/<id>/root, where the helper linked the kernel
 * as /vmlinux, the initrd as /initrd and the disk as /rootfs): points the
 * VM directory's sockets and logs into the jail, configures the VM with
 * chroot-relative paths, starts it and fills @instance. */
gboolean banger_vmm_firecracker_start_jailed (const BangerVmmConfig *config,
                                              BangerVmmInstance *instance, const char *chroot_dir,
                                              guint pid, GError **error);

/* find_pid with explicit arguments (the driver's find_pid uses
 * <vm_dir>/firecracker.sock and the VM directory's name as the id):
 * 1. /proc scan for a "firecracker" whose command line carries @api_sock
 *    (what `pgrep -n -f <api-sock>` finds; the newest wins);
 * 2. if @api_sock is a symlink into a jail, the jailer's pidfile (the
 *    sibling firecracker.pid of its target, or <chroot>/firecracker.pid when
 *    the target is <chroot>/run/firecracker.socket), accepted only if
 *    /proc/<pid>/comm is "firecracker" and the command line has "--id @vm_id".
 * 0 if there is no such live process. */
guint banger_vmm_firecracker_find_pid_full (const char *api_sock, const char *vm_id);

/* Opens the hybrid vsock at @uds_path and asks for guest port @port,
 * retrying (the guest's agent may not listen yet) until @timeout_ms. The
 * returned stream carries the agent protocol: hand it to
 * banger_agent_client_new(). */
GIOStream *banger_vmm_firecracker_vsock_connect (const char *uds_path, guint port, guint timeout_ms,
                                                 GCancellable *cancellable, GError **error);

/* The saved state (vmm-firecracker-state.c): save_state, resume_paused,
 * and the restore fc_launch() does instead of configuring a boot when
 * config->incoming_state is set (on the fresh process, API already up). */
gboolean banger_vmm_firecracker_save_state (BangerVmmInstance *instance, const char *state_dir,
                                            GError **error);
gboolean banger_vmm_firecracker_save_template (BangerVmmInstance *instance, const char *state_dir,
                                               const char *disk_copy, const char *disk_as,
                                               GError **error);
gboolean banger_vmm_firecracker_resume_paused (BangerVmmInstance *instance, GError **error);
gboolean banger_vmm_firecracker_load_state (const BangerVmmConfig *config,
                                            BangerVmmInstance *instance, GError **error);
/* load_state in a jail: the state and memory LaunchJailed put in as
 * /vmstate and /memory, the VM's own disk at /rootfs. */
gboolean banger_vmm_firecracker_load_state_jailed (const BangerVmmConfig *config,
                                                   BangerVmmInstance *instance, GError **error);

G_END_DECLS
