#pragma once

/* Shared by the VM runtime's files (vm-runtime.c: lifecycle; vm-exec.c:
 * talking to a running guest); not for anyone else. Main thread only. */

#include "agent-client.h"
#include "vm-runtime.h"
#include "vmm.h"

G_BEGIN_DECLS

struct _BangerVmRuntime {
  BangerEngine *engine; /* not owned: the runtime is the engine's data */
  char *data_dir;
  char *ssh_dir;
  char *known_hosts;
  GHashTable *runs; /* id → VmRun */
  /* [firecracker] in bangerd's config (docs/firecracker.md). */
  int jailer;        /* 1 always, 0 never, -1 auto: as non-root with a helper */
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

G_END_DECLS
