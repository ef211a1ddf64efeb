#pragma once

#include <gio/gio.h>

#include "banger-config.h"
#include "dns-responder.h"
#include "helper-client.h"
#include "image-list.h"
#include "vm-list.h"
#include "vmm.h"

G_BEGIN_DECLS

/* The VM runtime: starts, stops and watches VMMs and talks to their guest
 * agents, over the VMM driver (vmm.h), the agent client, the root helper
 * (helper-client.h) and the engine's store. One per engine, living on the
 * main thread; blocking work (boot assets, QEMU, ssh-keygen, helper calls,
 * waiting for a VMM to exit) runs in GTask worker threads, and every state
 * change goes through banger_vm_list_update_vm() so it is announced with
 * PropertiesChanged. docs/vm-runtime.md describes each operation.
 *
 * All calls are made on the main thread and take the VM's name. Errors are
 * BANGER_ERROR: NotFound for an unknown VM, BadState when the VM's state
 * does not allow the call, Busy while another operation on it runs. */
typedef struct _BangerVmRuntime BangerVmRuntime;

/* Made once by the engine, from its parts (which outlive the runtime). */
BangerVmRuntime *banger_vm_runtime_new (BangerVmList *vms, BangerImageList *images,
                                        BangerDnsResponder *dns, BangerHelperClient *helper,
                                        BangerConfig *config);
void banger_vm_runtime_free (BangerVmRuntime *self);

/* Start: created/stopped/error → starting → running (returns when the guest
 * agent has answered and taken the ssh keys). Options: "timeout" (u,
 * seconds to wait for the agent; 0 or absent: 60). */
void banger_vm_runtime_start_async (BangerVmRuntime *self, const char *name, GVariant *options,
                                    GAsyncReadyCallback callback, gpointer user_data);
/* Stop: running → stopping → stopped; the guest is asked to power off and
 * the VMM is forced after @timeout_s (0: 10 s). */
void banger_vm_runtime_stop_async (BangerVmRuntime *self, const char *name, guint timeout_s,
                                   GAsyncReadyCallback callback, gpointer user_data);
/* Restart: Stop (if running) then Start. */
void banger_vm_runtime_restart_async (BangerVmRuntime *self, const char *name, GVariant *options,
                                      GAsyncReadyCallback callback, gpointer user_data);
/* Kill: SIGKILL to the VMM, then stopped. */
void banger_vm_runtime_kill_async (BangerVmRuntime *self, const char *name,
                                   GAsyncReadyCallback callback, gpointer user_data);
/* Delete: with @force a VM that is running is killed first. */
void banger_vm_runtime_delete_async (BangerVmRuntime *self, const char *name, gboolean force,
                                     GAsyncReadyCallback callback, gpointer user_data);
/* Suspend: running → suspending → suspended; the guest's memory and device
 * state saved in its directory, its VMM ended, its tap deleted, its lease
 * kept (docs/suspend.md). BadState unless running; on failure it runs on.
 * Resume: suspended → resuming → running (Start of a suspended VM does the
 * same); BadState unless suspended; on failure it stays suspended. Stop and
 * Kill of a suspended VM discard its state: it becomes stopped. */
void banger_vm_runtime_suspend_async (BangerVmRuntime *self, const char *name,
                                      GAsyncReadyCallback callback, gpointer user_data);
void banger_vm_runtime_resume_async (BangerVmRuntime *self, const char *name, GVariant *options,
                                     GAsyncReadyCallback callback, gpointer user_data);
/* Finishes any of the seven above. */
gboolean banger_vm_runtime_op_finish (BangerVmRuntime *self, GAsyncResult *result, GError **error);

/* Exec: runs @argv in the guest with the caller's descriptors (duplicated;
 * the caller closes its own). The result is the exit status, or 128+signal. */
void banger_vm_runtime_exec_async (BangerVmRuntime *self, const char *name, const char *const *argv,
                                   GVariant *options, int stdin_fd, int stdout_fd, int stderr_fd,
                                   GAsyncReadyCallback callback, gpointer user_data);
int banger_vm_runtime_exec_finish (BangerVmRuntime *self, GAsyncResult *result, GError **error);
gboolean banger_vm_runtime_signal_exec (BangerVmRuntime *self, const char *name, const char *token,
                                        int signum, GError **error);
gboolean banger_vm_runtime_resize_exec (BangerVmRuntime *self, const char *name, const char *token,
                                        guint rows, guint cols, GError **error);

/* GetStats (a{sv}) and ListPorts (a(ssqus)): finished with
 * banger_vm_runtime_variant_finish. */
void banger_vm_runtime_get_stats_async (BangerVmRuntime *self, const char *name,
                                        GAsyncReadyCallback callback, gpointer user_data);
void banger_vm_runtime_list_ports_async (BangerVmRuntime *self, const char *name,
                                         GAsyncReadyCallback callback, gpointer user_data);
GVariant *banger_vm_runtime_variant_finish (BangerVmRuntime *self, GAsyncResult *result,
                                            GError **error);

/* OpenLog: a read-only descriptor on the console log (the caller owns it). */
int banger_vm_runtime_open_log (BangerVmRuntime *self, const char *name, GError **error);
/* GetSSHConfig: an a{sv} as documented in org.banger.VM.xml. */
GVariant *banger_vm_runtime_get_ssh_config (BangerVmRuntime *self, const char *name,
                                            GError **error);

/* Used by reconcile.c at start-up. Adopt: the VMM @pid of @rec is alive;
 * watch it, re-attach the agent (the boot id must be the recorded one) and
 * keep the VM running. Release: the VMM is gone; delete its tap, release
 * its lease and mark it stopped. Both always succeed in the end (what went
 * wrong is logged and put in LastError). */
void banger_vm_runtime_adopt_async (BangerVmRuntime *self, const BangerVmRecord *rec, guint pid,
                                    GAsyncReadyCallback callback, gpointer user_data);
void banger_vm_runtime_release_async (BangerVmRuntime *self, const BangerVmRecord *rec,
                                      GAsyncReadyCallback callback, gpointer user_data);

/* Used by reconcile.c for a VM whose bangerd ended mid-suspend or
 * mid-resume ("suspending", "resuming"), @pid its live VMM or 0: a complete
 * saved state and no VMM (or a finished save, whose VMM is then ended) is
 * suspended; a live VMM is adopted (a half-done save's guest continued);
 * anything else is released. Always succeeds in the end. */
void banger_vm_runtime_settle_async (BangerVmRuntime *self, const BangerVmRecord *rec, guint pid,
                                     GAsyncReadyCallback callback, gpointer user_data);

/* The driver a VM record names ("firecracker"; "qemu" or "" → qemu). */
const BangerVmmDriver *banger_vm_runtime_driver_named (const char *name);

/* <data>/vms/<id> */
char *banger_vm_dir (const char *data_dir, const char *id);
/* In a VM directory: the saved state of a suspended VM (vmm.h save_state;
 * docs/suspend.md). */
#define BANGER_VM_SUSPEND_DIR "suspend"
/* Removes a deleted VM's directory and its pinned host key (errors logged). */
void banger_vm_files_remove (const char *data_dir, const char *id);

G_END_DECLS
