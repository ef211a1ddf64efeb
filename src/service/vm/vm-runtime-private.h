#pragma once

/* Shared by the VM runtime's files (vm-runtime.c: the type, the runs
 * table, record edits, the VMM watch; vm-agent.c: the agent connection;
 * vm-start.c, vm-stop.c, vm-teardown.c, vm-adopt.c: the operations;
 * vm-exec.c: talking to a running guest); not for anyone else. Main thread
 * only, except where a function says it runs in a worker. */

#include "agent-client.h"
#include "boot-assets.h"
#include "helper-client.h"
#include "vm-runtime.h"
#include "vmm.h"
#include "warm-cache.h"

G_BEGIN_DECLS

struct _BangerVmRuntime {
  BangerVmList *engine;    /* the parts below are the engine's, */
  BangerImageList *images; /* which outlive the runtime */
  BangerDnsResponder *dns;
  BangerHelperClient *helper;
  char *data_dir;
  char *ssh_dir;
  char *known_hosts;
  GHashTable *runs; /* id → VmRun */
  /* [firecracker] in bangerd's config (docs/firecracker.md). */
  int jailer;        /* 1 always, 0 never, -1 auto: as non-root with a helper */
  gboolean warm_start; /* [vm] warm_start (docs/warm-start.md) */
  char *chroot_base; /* the helper's [jail] chroot_base */
};

/* What bangerd knows about a VM beyond its record, while it lives. */
typedef struct {
  BangerVmRuntime *rt;
  char *id;
  char *vm_dir;
  const BangerVmmDriver *driver; /* the VM's driver (qemu until it is known) */
  gboolean busy;                 /* start, stop, kill, restart or delete in flight */
  guint pid;                     /* watched VMM, 0 if none */
  guint watch_id;
  int pidfd;
  BangerAgentClient *agent;
  gulong agent_closed_id;
  GPtrArray *agent_waiters; /* GTask waiting for a connection in progress */
  GHashTable *execs;        /* token → BangerAgentExec */
  /* Called (once) when the watched VMM exits while an operation is busy. */
  void (*on_vmm_exit) (gpointer data);
  gpointer on_vmm_exit_data;
  struct _StartOp *start_op; /* the start in flight, which Kill may abort */
} VmRun;

/* The VM's runtime state, created on first use. */
VmRun *banger_vm_run_get (BangerVmRuntime *self, const char *id);
BangerVmRecord *banger_vm_runtime_find_record (BangerVmRuntime *self, const char *name,
                                               GError **error);
/* The VM's agent connection, connecting (and doing the handshake) if there
 * is none; concurrent callers share one attempt. */
void banger_vm_run_get_agent_async (VmRun *run, guint timeout_ms, GCancellable *cancellable,
                                    GAsyncReadyCallback callback, gpointer user_data);
BangerAgentClient *banger_vm_run_get_agent_finish (GAsyncResult *res, GError **error);
/* has_sshd from the VM directory's runtime.ini (FALSE if unknown). */
gboolean banger_vm_runtime_read_has_sshd (const char *vm_dir);

/* A running agent answers a handshake in milliseconds. */
#define BANGER_AGENT_ATTACH_TIMEOUT_MS 10000
/* TCG boots take 3–6 s to reach the agent; a loaded CI machine more. */
#define AGENT_START_TIMEOUT_MS 60000

/* ---- vm-runtime.c ---- */

/* Record edits. banger_vm_runtime_update_record re-reads the record by id, lets @edit change it and
 * writes it back (which announces the change). Errors are logged: a state change that cannot be
 * stored is a broken database, not something a caller can act on. */
typedef void (*RecordEdit) (BangerVmRecord *rec, gpointer data);
void banger_vm_runtime_update_record (BangerVmRuntime *self, const char *id, RecordEdit edit,
                                      gpointer data);
void banger_vm_record_set_str (char **field, const char *value);
void banger_vm_runtime_set_state (BangerVmRuntime *self, const char *id, const char *state,
                                  const char *last_error);
void banger_vm_runtime_release_lease (BangerVmRuntime *self, const char *id);

/* The VMM watch: a pidfd on the VM's VMM (the runtime is not its parent). */
void banger_vm_run_watch (VmRun *run, guint pid);
void banger_vm_run_stop_watch (VmRun *run);
/* runtime.ini in the VM directory: what the record does not hold. */
void banger_vm_runtime_write_file (const char *vm_dir, gboolean has_sshd, const char *tap);
/* FALSE (Busy) while another operation on the VM runs. */
gboolean banger_vm_run_check_idle (VmRun *run, const BangerVmRecord *rec, GError **error);
/* A GTask for a public operation (finished by banger_vm_runtime_op_finish). */
GTask *banger_vm_runtime_op_task_new (BangerVmRuntime *self, GAsyncReadyCallback callback,
                                      gpointer user_data);

/* ---- vm-agent.c ---- */

void banger_vm_run_drop_agent (VmRun *run);
void banger_vm_run_set_agent (VmRun *run, BangerAgentClient *agent);
/* Connects to a guest agent and does the handshake within @timeout_ms. */
void banger_vm_agent_connect_async (const BangerVmmDriver *driver, const char *path,
                                    guint timeout_ms, GCancellable *cancellable,
                                    GAsyncReadyCallback callback, gpointer user_data);
BangerAgentClient *banger_vm_agent_connect_finish (GAsyncResult *res, GError **error);

/* ---- vm-teardown.c ---- */

/* Ends a VMM and frees what it held on the host. Runs in a worker thread:
 * waiting for a process and calling the helper both block. */
typedef struct {
  BangerHelperClient *helper; /* the engine's */
  char *id;
  char *vm_dir;
  const BangerVmmDriver *driver;
  guint graceful_ms; /* wait this long for the VMM to exit by itself */
  gboolean force;    /* then end it (driver->stop) */
  gboolean delete_tap;
  char *remove_disk;        /* an overlay this start created, or NULL */
  gboolean remove_snapshot; /* the dm-snapshot this start created (helper) */
  char *problem;            /* out: what could not be released, or NULL */
  gboolean exited;          /* out: the VMM was gone (or left) before being forced */
  char *forced;             /* out: how a graceful stop that timed out was forced, or NULL */
} Teardown;

/* @t is owned by the task; @callback reads the results from its task data. */
void banger_vm_teardown_run (Teardown *t, GAsyncReadyCallback callback, gpointer user_data);
Teardown *banger_vm_teardown_new (VmRun *run, const BangerVmRecord *rec);
void banger_vm_run_released (VmRun *run);
/* banger_vm_run_released() less the lease: a suspended VM keeps its address
 * for the resume (vm-suspend.c). */
void banger_vm_run_detached (VmRun *run);
void banger_vm_run_vmm_exited (VmRun *run);
gboolean banger_vm_remove_snapshot (BangerHelperClient *client, const char *vm_id,
                                    const char *vm_dir, GError **error);

/* ---- vm-start.c ---- */

typedef struct _StartOp {
  BangerVmRuntime *rt;
  VmRun *run;
  GTask *task;             /* the caller's */
  gboolean killed;         /* Kill (or Delete with force) arrived meanwhile */
  GPtrArray *kill_waiters; /* GTask of those calls, completed when the start is undone */
  BangerVmRecord *rec;
  guint agent_timeout_ms;
  const BangerVmmDriver *driver; /* the record's, else chosen in the worker */
  gboolean jailed;               /* through the helper's jail (driver->use_jail) */
  char *chroot_base;
  /* worker results */
  BangerBootAssets *assets;
  char *bridge;
  char *tap;
  BangerHelperClient *helper; /* kept for the address claim on the main loop */
  char *user_pub;
  char *host_priv;
  char *host_pub;
  gboolean disk_existed;
  /* main thread */
  gboolean leased;
  GPtrArray *taken; /* addresses the helper said other VMs hold */
  char *claiming;   /* the lease being claimed */
  guint claims;     /* claims tried */
  BangerVmmConfig config;
  BangerVmmInstance inst;
  GCancellable *agent_cancel;
  gboolean vmm_exited;
  char *agent_error; /* why the agent did not answer */
  BangerAgentClient *agent;
  char *error_step;
  /* boot stall watchdog (driver->watch_boot_stall) */
  guint stall_source;
  goffset console_size;
  gint64 console_changed_us;
  gboolean stalled;
  gboolean retried; /* this is the second launch after a stall */
  /* warm start (docs/warm-start.md) */
  gboolean warm_allowed;       /* [vm] warm_start and the start's "warm" option */
  char *warm_key;              /* this start's snapshot key, NULL if none applies */
  BangerWarmEntry *warm_entry; /* the snapshot to restore, set by the prepare step */
  gboolean warm_restored;      /* the VMM restored it (else it booted) */
  gboolean warm_failed;        /* the restored guest failed: boot instead */
  gboolean warm_save;          /* this boot saves the snapshot (its key claimed) */
  char *net_ip;                /* a.b.c.d/prefix, for a clone's identity */
  char *net_gw;
  /* Resuming a suspended VM (vm-suspend.c): the VMM restores <vm_dir>/
   * BANGER_VM_SUSPEND_DIR instead of booting; no new keys, no setup, no
   * stall watch, the same lease or none; a failure leaves it suspended. */
  gboolean resume;
  gboolean resume_spent; /* the restored guest ran: its state is gone */
} StartOp;

/* A restored clone's own identity (vm-start.c; docs/warm-start.md): fresh
 * entropy and machine-id, the host's time, the VM's name, MAC (with an
 * address only) and address. */
typedef struct {
  BangerAgentIdentity id;
  GBytes *entropy;
  char *machine_id;
} VmCloneIdentity;
void banger_vm_clone_identity_init (VmCloneIdentity *c, const char *name, const char *mac,
                                    const char *ip_cidr, const char *gw);
void banger_vm_clone_identity_clear (VmCloneIdentity *c);
/* warm-clone.ini in a VM directory: a start restoring a snapshot, until the
 * clone took its own identity (a bangerd restarted meanwhile stops the VM:
 * vm-adopt.c). It holds the address the clone takes, for a human. */
void banger_vm_clone_marker_write (const char *vm_dir, const char *ip_cidr, const char *gw);
gboolean banger_vm_clone_marker_exists (const char *vm_dir);
void banger_vm_clone_marker_remove (const char *vm_dir);

/* ---- vm-suspend.c ---- */

/* Stop or Kill of a suspended VM: its saved state is discarded, its lease
 * released; it becomes stopped. Completes @task. */
void banger_vm_runtime_discard_suspended (BangerVmRuntime *self, const BangerVmRecord *rec,
                                          GTask *task);
/* A GAsyncReadyCallback that completes the GTask @user_data with the
 * result of another runtime operation. */
void banger_vm_runtime_forward_cb (GObject *source, GAsyncResult *res, gpointer user_data);
/* Sets a resumed guest's clock to the host's now (through the agent);
 * always succeeds (a failure is logged). */
void banger_vm_resume_set_clock_async (BangerAgentClient *agent, const char *name,
                                       GAsyncReadyCallback callback, gpointer user_data);
/* Empties (or makes) <vm_dir>/BANGER_VM_SUSPEND_DIR; its path. */
char *banger_vm_suspend_dir_reset (const char *vm_dir, GError **error);

/* Starts @rec with the caller's @task (which it completes). */
void banger_vm_runtime_start_vm (BangerVmRuntime *self, const BangerVmRecord *rec,
                                 GVariant *options, GTask *task);

G_END_DECLS
