#define G_LOG_DOMAIN "bangerd-vm-runtime"

#include "vm-runtime-private.h"

#include <errno.h>
#include <fcntl.h>
#include <glib-unix.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "agent-client.h"
#include "banger-error.h"
#include "boot-assets.h"
#include "console-log.h"
#include "dns-responder.h"
#include "firecracker-api.h"
#include "helper-client.h"
#include "net-lease.h"
#include "paths.h"
#include "remove-tree.h"
#include "ssh-keys.h"
#include "store-catalog.h"
#include "validate.h"
#include "vmm-firecracker.h"
#include "vmm.h"

/* TCG boots take 3–6 s to reach the agent; a loaded CI machine more. */
#define AGENT_START_TIMEOUT_MS 60000
/* A QEMU guest whose console stays silent this long before its agent
 * answers is stuck (under TCG a kernel very rarely stalls early in boot,
 * with nothing printed after the stall): its VMM is started once more. */
#define BOOT_STALL_S           15
#define STOP_DEFAULT_TIMEOUT_S 10
#define KILL_WAIT_MS           5000
#define RUNTIME_DATA_KEY       "banger-vm-runtime"
#define RUNTIME_FILE           "runtime.ini"
#define DEFAULT_CHROOT_BASE    "/srv/jailer"

/* A forced Firecracker stop (fc_force_stop): how long each step may take. */
#define FC_CTRL_ALT_DEL_MS 3000
#define FC_SIGTERM_WAIT_MS 2000
/* In a VM directory: the path of its dm-snapshot device (disk-copy.h), so a
 * restart finds the snapshot the helper still holds (CreateSnapshot answers
 * Exists for it) instead of making a new one over its data. */
#define SNAPSHOT_DEVICE_FILE "disk.dev"

static gboolean banger_vm_remove_snapshot (const char *vm_id, const char *vm_dir, GError **error);

static void vm_run_stop_watch (VmRun *run);
static void vm_run_drop_agent (VmRun *run);

static void
vm_run_free (VmRun *run)
{
  vm_run_stop_watch (run);
  vm_run_drop_agent (run);
  g_clear_pointer (&run->agent_waiters, g_ptr_array_unref);
  g_clear_pointer (&run->execs, g_hash_table_unref);
  g_free (run->id);
  g_free (run->vm_dir);
  g_free (run);
}

static void
banger_vm_runtime_free (BangerVmRuntime *self)
{
  g_hash_table_unref (self->runs);
  g_free (self->data_dir);
  g_free (self->ssh_dir);
  g_free (self->known_hosts);
  g_free (self->chroot_base);
  g_free (self);
}

/* [firecracker] of $XDG_CONFIG_HOME/banger/config: whether VMs run under
 * the jailer (jailer = true | false | auto) and where the helper's jails
 * are (chroot_base, which must equal the helper's [jail] chroot_base: the
 * helper answers LaunchJailed with a pid only). Read once: a changed
 * setting applies from bangerd's next start. */
static void
load_firecracker_config (BangerVmRuntime *self)
{
  g_autofree char *config_dir = banger_config_dir ();
  g_autofree char *path = g_build_filename (config_dir, "config", NULL);
  g_autoptr (GKeyFile) kf = g_key_file_new ();
  g_autofree char *jailer = NULL;

  self->jailer = -1;
  if (g_key_file_load_from_file (kf, path, G_KEY_FILE_NONE, NULL)) {
    jailer = g_key_file_get_string (kf, "firecracker", "jailer", NULL);
    self->chroot_base = g_key_file_get_string (kf, "firecracker", "chroot_base", NULL);
  }
  if (jailer != NULL) {
    g_strstrip (jailer);
    if (g_ascii_strcasecmp (jailer, "true") == 0 || g_str_equal (jailer, "1"))
      self->jailer = 1;
    else if (g_ascii_strcasecmp (jailer, "false") == 0 || g_str_equal (jailer, "0"))
      self->jailer = 0;
    else if (g_ascii_strcasecmp (jailer, "auto") != 0)
      g_warning ("%s: [firecracker] jailer=%s is not true, false or auto; using auto", path,
                 jailer);
  }
  if (self->chroot_base == NULL || !g_path_is_absolute (self->chroot_base)) {
    g_free (self->chroot_base);
    self->chroot_base = g_strdup (DEFAULT_CHROOT_BASE);
  }
}

const BangerVmmDriver *
banger_vm_runtime_driver_named (const char *name)
{
  if (g_strcmp0 (name, "firecracker") == 0)
    return banger_vmm_firecracker_driver ();
  return banger_vmm_qemu_driver ();
}

static gboolean
is_firecracker (const BangerVmmDriver *driver)
{
  return driver == banger_vmm_firecracker_driver ();
}

static void
driver_instance_paths (const BangerVmmDriver *driver, const char *vm_dir, BangerVmmInstance *inst)
{
  if (is_firecracker (driver))
    banger_vmm_firecracker_instance_paths (vm_dir, inst);
  else
    banger_vmm_qemu_instance_paths (vm_dir, inst);
}

/* A jailed Firecracker's API socket in the VM directory is a symlink into
 * its jail (banger_vmm_firecracker_start_jailed); a direct one's is the
 * socket itself. So the VM directory says how the VM was launched, even
 * after a restart of bangerd or a change of its configuration. */
static gboolean
vm_dir_is_jailed (const char *vm_dir)
{
  g_autofree char *api_sock = g_build_filename (vm_dir, "firecracker.sock", NULL);

  return g_file_test (api_sock, G_FILE_TEST_IS_SYMLINK);
}

BangerVmRuntime *
banger_vm_runtime_get (BangerEngine *engine)
{
  BangerVmRuntime *self = g_object_get_data (G_OBJECT (engine), RUNTIME_DATA_KEY);

  if (self != NULL)
    return self;
  self = g_new0 (BangerVmRuntime, 1);
  self->engine = engine;
  self->data_dir = g_strdup (banger_engine_get_data_dir (engine));
  self->ssh_dir = g_build_filename (self->data_dir, "ssh", NULL);
  self->known_hosts = g_build_filename (self->ssh_dir, "known_hosts", NULL);
  self->runs = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, (GDestroyNotify)vm_run_free);
  load_firecracker_config (self);
  g_object_set_data_full (G_OBJECT (engine), RUNTIME_DATA_KEY, self,
                          (GDestroyNotify)banger_vm_runtime_free);
  return self;
}

char *
banger_vm_dir (const char *data_dir, const char *id)
{
  return g_build_filename (data_dir, "vms", id, NULL);
}

VmRun *
banger_vm_run_get (BangerVmRuntime *self, const char *id)
{
  VmRun *run = g_hash_table_lookup (self->runs, id);

  if (run != NULL)
    return run;
  run = g_new0 (VmRun, 1);
  run->rt = self;
  run->id = g_strdup (id);
  run->vm_dir = banger_vm_dir (self->data_dir, id);
  run->pidfd = -1;
  run->driver = banger_vmm_qemu_driver ();
  run->agent_waiters = g_ptr_array_new ();
  run->execs = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_object_unref);
  g_hash_table_insert (self->runs, run->id, run);
  return run;
}

/* ---- records ------------------------------------------------------------- */

BangerVmRecord *
banger_vm_runtime_find_record (BangerVmRuntime *self, const char *name, GError **error)
{
  return banger_engine_find_vm (self->engine, name, error);
}

/* Re-reads the record by id, lets @edit change it and writes it back (which
 * announces the change). Errors are logged: a state change that cannot be
 * stored is a broken database, not something a caller can act on. */
typedef void (*RecordEdit) (BangerVmRecord *rec, gpointer data);

static void
update_record (BangerVmRuntime *self, const char *id, RecordEdit edit, gpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (BangerVmRecord) rec
      = banger_store_vm_get_by_id (banger_engine_get_store (self->engine), id, &error);

  if (rec == NULL) {
    g_debug ("VM %s: record gone: %s", id, error->message);
    return;
  }
  edit (rec, data);
  if (!banger_engine_update_vm (self->engine, rec, &error))
    g_warning ("VM %s: cannot store its new state: %s", rec->name, error->message);
}

static void
set_str (char **field, const char *value)
{
  g_free (*field);
  *field = g_strdup (value ? value : "");
}

typedef struct {
  const char *state;
  const char *last_error;
} StateChange;

static void
edit_state (BangerVmRecord *rec, gpointer data)
{
  const StateChange *c = data;

  set_str (&rec->state, c->state);
  if (c->last_error != NULL)
    set_str (&rec->last_error, c->last_error);
  if (!banger_vm_state_is_active (c->state))
    rec->pid = 0;
}

static void
set_state (BangerVmRuntime *self, const char *id, const char *state, const char *last_error)
{
  StateChange c = { state, last_error };
  update_record (self, id, edit_state, &c);
}

static void
release_lease (BangerVmRuntime *self, const char *id)
{
  g_autoptr (GError) error = NULL;

  if (!banger_store_lease_release (banger_engine_get_store (self->engine), id, &error))
    g_debug ("VM %s: releasing its lease: %s", id, error->message);
}

/* ---- the VMM watch --------------------------------------------------------- */

static void vmm_exited_on_its_own (VmRun *run);

static gboolean
pidfd_ready_cb (int fd, GIOCondition condition, gpointer user_data)
{
  VmRun *run = user_data;

  g_info ("VM %s: VMM (pid %u) exited", run->id, run->pid);
  run->watch_id = 0;
  vm_run_stop_watch (run);
  if (run->on_vmm_exit != NULL) {
    void (*func) (gpointer) = run->on_vmm_exit;
    run->on_vmm_exit = NULL;
    func (run->on_vmm_exit_data);
  } else if (!run->busy) {
    vmm_exited_on_its_own (run);
  }
  return G_SOURCE_REMOVE;
}

/* A pidfd turns readable when the process exits, whoever its parent is
 * (QEMU daemonizes, so it is not bangerd's child). */
static void
vm_run_watch (VmRun *run, guint pid)
{
  int fd;

  vm_run_stop_watch (run);
  run->pid = pid;
  fd = (int)syscall (SYS_pidfd_open, (pid_t)pid, 0);
  if (fd < 0) {
    g_warning ("VM %s: cannot watch VMM pid %u: %s", run->id, pid, g_strerror (errno));
    return;
  }
  run->pidfd = fd;
  run->watch_id = g_unix_fd_add (fd, G_IO_IN, pidfd_ready_cb, run);
}

static void
vm_run_stop_watch (VmRun *run)
{
  g_clear_handle_id (&run->watch_id, g_source_remove);
  if (run->pidfd >= 0) {
    close (run->pidfd);
    run->pidfd = -1;
  }
}

/* ---- the agent connection -------------------------------------------------- */

static void
agent_closed_cb (BangerAgentClient *agent, GError *error, VmRun *run)
{
  g_debug ("VM %s: agent connection closed: %s", run->id, error ? error->message : "closed");
  if (run->agent == agent)
    vm_run_drop_agent (run);
}

static void
vm_run_drop_agent (VmRun *run)
{
  g_autoptr (BangerAgentClient) agent = g_steal_pointer (&run->agent);

  if (agent == NULL)
    return;
  g_clear_signal_handler (&run->agent_closed_id, agent);
  banger_agent_client_close (agent);
  g_hash_table_remove_all (run->execs);
}

static void
vm_run_set_agent (VmRun *run, BangerAgentClient *agent)
{
  vm_run_drop_agent (run);
  run->agent = g_object_ref (agent);
  run->agent_closed_id = g_signal_connect (agent, "closed", G_CALLBACK (agent_closed_cb), run);
}

/* Where the VM's agent is reached: QEMU's virtio-serial chardev socket, or
 * Firecracker's hybrid vsock. */
static char *
agent_socket_path (VmRun *run)
{
  return g_build_filename (run->vm_dir, is_firecracker (run->driver) ? "vsock.sock" : "agent.sock",
                           NULL);
}

static void
vsock_connect_thread (GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
  const char *path = task_data;
  guint timeout_ms = GPOINTER_TO_UINT (g_object_get_data (G_OBJECT (task), "timeout-ms"));
  GError *error = NULL;
  GIOStream *stream = banger_vmm_firecracker_vsock_connect (path, BANGER_FIRECRACKER_AGENT_PORT,
                                                            timeout_ms, cancellable, &error);

  if (stream == NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, stream, g_object_unref);
}

static void
vsock_handshake_cb (GObject *source, GAsyncResult *res, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  /* The reference vsock_connected_cb made. */
  g_autoptr (BangerAgentClient) agent = BANGER_AGENT_CLIENT (source);
  GError *error = NULL;

  if (!banger_agent_client_handshake_finish (agent, res, &error)) {
    banger_agent_client_close (agent);
    g_task_return_error (task, error);
    return;
  }
  g_task_return_pointer (task, g_steal_pointer (&agent), g_object_unref);
}

static void
vsock_connected_cb (GObject *source, GAsyncResult *res, gpointer user_data)
{
  GTask *task = user_data;
  GError *error = NULL;
  g_autoptr (GIOStream) stream = g_task_propagate_pointer (G_TASK (res), &error);
  BangerAgentClient *agent;

  if (stream == NULL) {
    g_task_return_error (task, error);
    g_object_unref (task);
    return;
  }
  /* CONNECT answered OK: the agent listens, so the handshake is quick. */
  agent = banger_agent_client_new (stream);
  banger_agent_client_handshake_async (agent, BANGER_AGENT_ATTACH_TIMEOUT_MS,
                                       g_task_get_cancellable (task), vsock_handshake_cb, task);
}

static void
unix_connected_cb (GObject *source, GAsyncResult *res, gpointer user_data)
{
  GTask *task = user_data;
  GError *error = NULL;
  BangerAgentClient *agent = banger_agent_client_connect_unix_finish (res, &error);

  if (agent == NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, agent, g_object_unref);
  g_object_unref (task);
}

/* Connects to a guest agent and does the handshake, within @timeout_ms
 * (the guest may still be booting). Firecracker's hybrid vsock needs its
 * CONNECT line first, retried while nothing in the guest listens: that
 * blocks, so it runs in a worker thread. */
static void
agent_connect_async (const BangerVmmDriver *driver, const char *path, guint timeout_ms,
                     GCancellable *cancellable, GAsyncReadyCallback callback, gpointer user_data)
{
  GTask *task = g_task_new (NULL, cancellable, callback, user_data);
  g_autoptr (GTask) vsock = NULL;

  if (!is_firecracker (driver)) {
    banger_agent_client_connect_unix_async (path, timeout_ms, cancellable, unix_connected_cb, task);
    return;
  }
  vsock = g_task_new (NULL, cancellable, vsock_connected_cb, task);
  g_task_set_task_data (vsock, g_strdup (path), g_free);
  g_object_set_data (G_OBJECT (vsock), "timeout-ms", GUINT_TO_POINTER (timeout_ms));
  g_task_run_in_thread (vsock, vsock_connect_thread);
}

static BangerAgentClient *
agent_connect_finish (GAsyncResult *res, GError **error)
{
  return g_task_propagate_pointer (G_TASK (res), error);
}

static void
agent_connected_cb (GObject *source, GAsyncResult *res, gpointer user_data)
{
  VmRun *run = user_data;
  g_autoptr (GError) error = NULL;
  g_autoptr (BangerAgentClient) agent = agent_connect_finish (res, &error);
  g_autoptr (GPtrArray) waiters = g_steal_pointer (&run->agent_waiters);

  run->agent_waiters = g_ptr_array_new ();
  if (agent != NULL)
    vm_run_set_agent (run, agent);
  for (guint i = 0; i < waiters->len; i++) {
    g_autoptr (GTask) task = g_ptr_array_index (waiters, i);
    if (agent != NULL)
      g_task_return_pointer (task, g_object_ref (agent), g_object_unref);
    else
      g_task_return_new_error (task, BANGER_ERROR, BANGER_ERROR_FAILED,
                               "cannot reach the guest agent: %s", error->message);
  }
}

/* The VM's agent connection, connecting (and doing the handshake) if there
 * is none; concurrent callers share one attempt, because every new
 * connection's HELLO ends the previous session's commands. */
void
banger_vm_run_get_agent_async (VmRun *run, guint timeout_ms, GCancellable *cancellable,
                               GAsyncReadyCallback callback, gpointer user_data)
{
  GTask *task = g_task_new (NULL, cancellable, callback, user_data);
  g_autofree char *path = NULL;

  if (run->agent != NULL && banger_agent_client_is_connected (run->agent)) {
    g_task_return_pointer (task, g_object_ref (run->agent), g_object_unref);
    g_object_unref (task);
    return;
  }
  g_ptr_array_add (run->agent_waiters, task);
  if (run->agent_waiters->len > 1)
    return;
  path = agent_socket_path (run);
  agent_connect_async (run->driver, path, timeout_ms, cancellable, agent_connected_cb, run);
}

BangerAgentClient *
banger_vm_run_get_agent_finish (GAsyncResult *res, GError **error)
{
  return g_task_propagate_pointer (G_TASK (res), error);
}

/* ---- runtime.ini: what the record does not hold ------------------------------ */

static void
write_runtime_file (const char *vm_dir, gboolean has_sshd, const char *tap)
{
  g_autoptr (GKeyFile) kf = g_key_file_new ();
  g_autofree char *path = g_build_filename (vm_dir, RUNTIME_FILE, NULL);
  g_autoptr (GError) error = NULL;

  g_key_file_set_boolean (kf, "guest", "has_sshd", has_sshd);
  g_key_file_set_string (kf, "host", "tap", tap ? tap : "");
  if (!g_key_file_save_to_file (kf, path, &error))
    g_warning ("%s: %s", path, error->message);
}

gboolean
banger_vm_runtime_read_has_sshd (const char *vm_dir)
{
  g_autoptr (GKeyFile) kf = g_key_file_new ();
  g_autofree char *path = g_build_filename (vm_dir, RUNTIME_FILE, NULL);

  if (!g_key_file_load_from_file (kf, path, G_KEY_FILE_NONE, NULL))
    return FALSE;
  return g_key_file_get_boolean (kf, "guest", "has_sshd", NULL);
}

/* ---- tear-down (worker thread) ---------------------------------------------- */

/* Ends a VMM and frees what it held on the host. Runs in a worker thread:
 * waiting for a process and calling the helper both block. */
typedef struct {
  char *id;
  char *vm_dir;
  const BangerVmmDriver *driver;
  guint graceful_ms; /* wait this long for the VMM to exit by itself */
  gboolean force;    /* then end it (QMP quit, SIGKILL) */
  gboolean delete_tap;
  char *remove_disk;        /* an overlay this start created, or NULL */
  gboolean remove_snapshot; /* the dm-snapshot this start created (helper) */
  char *problem;            /* out: what could not be released, or NULL */
  gboolean exited;          /* out: the VMM was gone (or left) before being forced */
  char *forced;             /* out: how a graceful stop that timed out was forced, or NULL */
} Teardown;

static void
teardown_free (Teardown *t)
{
  g_free (t->id);
  g_free (t->vm_dir);
  g_free (t->remove_disk);
  g_free (t->problem);
  g_free (t->forced);
  g_free (t);
}

/* The last resort for a jailed Firecracker that bangerd could not end
 * itself (it runs as the user, so normally bangerd can): the helper's
 * KillJailed, which acts on the caller's own jail only. */
static gboolean
kill_jailed (const char *id, guint pid, GError **error)
{
  g_autoptr (BangerHelperClient) helper = banger_helper_client_new (NULL, error);

  if (helper == NULL || !banger_helper_client_kill_jailed (helper, id, SIGKILL, error))
    return FALSE;
  if (!banger_vmm_signal_and_wait (pid, 0, KILL_WAIT_MS)) {
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
 * the driver's quit(), done here so a jailed VMM is signalled through the
 * helper and @how can tell the user which steps it took. */
static gboolean
fc_force_stop (const char *id, gboolean jailed, BangerVmmInstance *inst, GString *how,
               GError **error)
{
  g_autoptr (BangerHelperClient) helper = NULL;
  g_autoptr (GError) api_error = NULL;

  if (inst->control_socket != NULL) {
    g_autoptr (BangerFirecrackerApi) api = banger_firecracker_api_new (inst->control_socket, 2);

    g_string_append (how, "SendCtrlAltDel");
    if (banger_firecracker_api_action (api, "SendCtrlAltDel", &api_error)
        && banger_vmm_signal_and_wait (inst->pid, 0, FC_CTRL_ALT_DEL_MS))
      return TRUE;
    g_string_append (how, api_error != NULL ? " (refused)" : " (ignored)");
  }
  if (jailed) {
    g_autoptr (GError) local = NULL;

    helper = banger_helper_client_new (NULL, &local);
    if (helper == NULL)
      g_debug ("VM %s: no helper for KillJailed (%s); signalling directly", id, local->message);
  }
  if (fc_signal_step (id, inst->pid, SIGTERM, FC_SIGTERM_WAIT_MS, helper, how))
    return TRUE;
  g_string_append (how, " (ignored)");
  if (fc_signal_step (id, inst->pid, SIGKILL, KILL_WAIT_MS, helper, how))
    return TRUE;
  if (helper != NULL && fc_signal_step (id, inst->pid, SIGKILL, KILL_WAIT_MS, NULL, how))
    return TRUE;
  g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "Firecracker (pid %u) did not exit (%s)",
               inst->pid, how->str);
  return FALSE;
}

static void
teardown_thread (GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
  Teardown *t = task_data;
  const BangerVmmDriver *driver = t->driver;
  /* Looked up again here: only a pid verified as this VM's VMM is signalled. */
  guint pid = driver->find_pid (t->vm_dir);
  gboolean jailed = is_firecracker (driver) && vm_dir_is_jailed (t->vm_dir);
  g_autoptr (GString) problems = g_string_new (NULL);

  if (pid != 0 && t->graceful_ms > 0 && banger_vmm_signal_and_wait (pid, 0, t->graceful_ms))
    pid = 0;
  t->exited = pid == 0;
  if (pid != 0 && t->force) {
    BangerVmmInstance inst = { 0 };
    g_autoptr (GError) error = NULL;
    gboolean gone;

    driver_instance_paths (driver, t->vm_dir, &inst);
    inst.pid = pid;
    if (t->graceful_ms > 0 && is_firecracker (driver)) {
      /* A graceful stop that timed out: said in the log and LastError,
       * with the steps it took (stop_teardown_cb). */
      g_autoptr (GString) how = g_string_new (NULL);

      gone = fc_force_stop (t->id, jailed, &inst, how, &error);
      if (gone)
        t->forced = g_string_free (g_steal_pointer (&how), FALSE);
    } else if (t->graceful_ms > 0) {
      /* The driver's way to end its VMM (QEMU: QMP quit, then SIGKILL). */
      gone = driver->quit (&inst, &error);
      if (gone)
        t->forced = g_strdup ("the driver’s quit (QMP quit, then SIGKILL)");
    } else {
      gone = banger_vmm_signal_and_wait (pid, SIGKILL, KILL_WAIT_MS);
      if (!gone)
        g_set_error (&error, BANGER_ERROR, BANGER_ERROR_FAILED, "%s (pid %u) survived SIGKILL",
                     is_firecracker (driver) ? "Firecracker" : "QEMU", pid);
    }
    if (!gone && jailed) {
      g_autoptr (GError) jail_error = NULL;
      if (kill_jailed (t->id, pid, &jail_error))
        g_clear_error (&error);
      else
        g_prefix_error (&error, "%s; ", jail_error->message);
    }
    if (error != NULL)
      g_string_append_printf (problems, "%s; ", error->message);
    banger_vmm_instance_clear (&inst);
  }
  if (t->delete_tap) {
    g_autoptr (GError) error = NULL;
    if (!banger_helper_delete_tap_if_any (t->id, &error))
      g_string_append_printf (problems, "%s; ", error->message);
  }
  if (t->remove_snapshot) {
    g_autoptr (GError) error = NULL;
    if (!banger_vm_remove_snapshot (t->id, t->vm_dir, &error))
      g_string_append_printf (problems, "%s; ", error->message);
  }
  if (t->remove_disk != NULL && g_unlink (t->remove_disk) < 0 && errno != ENOENT)
    g_string_append_printf (problems, "cannot remove %s: %s; ", t->remove_disk, g_strerror (errno));
  if (problems->len > 0) {
    g_string_truncate (problems, problems->len - 2);
    t->problem = g_string_free (g_steal_pointer (&problems), FALSE);
  }
  g_task_return_boolean (task, TRUE);
}

static void
teardown_run (Teardown *t, GAsyncReadyCallback callback, gpointer user_data)
{
  g_autoptr (GTask) task = g_task_new (NULL, NULL, callback, user_data);

  g_task_set_task_data (task, t, (GDestroyNotify)teardown_free);
  g_task_run_in_thread (task, teardown_thread);
}

static Teardown *
teardown_new (VmRun *run, const BangerVmRecord *rec)
{
  Teardown *t = g_new0 (Teardown, 1);

  t->id = g_strdup (run->id);
  t->vm_dir = g_strdup (run->vm_dir);
  t->driver = run->driver;
  /* A VM holds a lease exactly when this runtime gave it a tap. */
  t->delete_tap = rec != NULL && rec->ipv4 != NULL && *rec->ipv4;
  return t;
}

/* Frees what a VM held once its VMM is gone: the lease (store), the agent
 * connection and the watch. */
static void
vm_run_released (VmRun *run)
{
  vm_run_stop_watch (run);
  vm_run_drop_agent (run);
  run->pid = 0;
  release_lease (run->rt, run->id);
}

/* A VMM that exited by itself: the guest powered off, panicked or was
 * killed from outside. */
static void
exited_teardown_cb (GObject *source, GAsyncResult *res, gpointer user_data)
{
  VmRun *run = user_data;
  Teardown *t = g_task_get_task_data (G_TASK (res));

  vm_run_released (run);
  run->busy = FALSE;
  set_state (run->rt, run->id, "stopped", t->problem ? t->problem : "");
}

static void
vmm_exited_on_its_own (VmRun *run)
{
  g_autoptr (BangerVmRecord) rec
      = banger_store_vm_get_by_id (banger_engine_get_store (run->rt->engine), run->id, NULL);

  if (rec == NULL || !banger_vm_state_is_active (rec->state))
    return;
  g_info ("VM %s: its VMM exited on its own; marking it stopped", rec->name);
  run->busy = TRUE;
  vm_run_drop_agent (run);
  teardown_run (teardown_new (run, rec), exited_teardown_cb, run);
}

/* ---- Start ------------------------------------------------------------------- */

typedef struct _StartOp {
  BangerVmRuntime *rt;
  VmRun *run;
  GTask *task;             /* the caller's */
  gboolean killed;         /* Kill (or Delete with force) arrived meanwhile */
  GPtrArray *kill_waiters; /* GTask of those calls, completed when the start is undone */
  BangerVmRecord *rec;
  guint agent_timeout_ms;
  const BangerVmmDriver *driver; /* the record's, else chosen in the worker */
  gboolean jailed;               /* Firecracker through the helper's LaunchJailed */
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
  GPtrArray *taken;   /* addresses the helper said other VMs hold */
  char *claiming;     /* the lease being claimed */
  guint claims;       /* claims tried */
  BangerVmmConfig config;
  BangerVmmInstance inst;
  GCancellable *agent_cancel;
  gboolean vmm_exited;
  char *agent_error; /* why the agent did not answer */
  BangerAgentClient *agent;
  char *error_step;
  /* boot stall watchdog (QEMU only) */
  guint stall_source;
  goffset console_size;
  gint64 console_changed_us;
  gboolean stalled;
  gboolean retried; /* this is the second launch after a stall */
} StartOp;

static void
start_op_free (StartOp *op)
{
  g_clear_pointer (&op->rec, banger_vm_record_free);
  g_clear_pointer (&op->assets, banger_boot_assets_free);
  g_free (op->bridge);
  g_free (op->chroot_base);
  g_free (op->tap);
  g_clear_pointer (&op->helper, banger_helper_client_free);
  g_clear_pointer (&op->taken, g_ptr_array_unref);
  g_free (op->claiming);
  g_free (op->user_pub);
  if (op->host_priv != NULL)
    memset (op->host_priv, 0, strlen (op->host_priv));
  g_free (op->host_priv);
  g_free (op->host_pub);
  banger_vmm_config_clear (&op->config);
  banger_vmm_instance_clear (&op->inst);
  g_clear_handle_id (&op->stall_source, g_source_remove);
  g_clear_object (&op->agent_cancel);
  g_clear_object (&op->agent);
  g_free (op->error_step);
  g_free (op->agent_error);
  g_clear_pointer (&op->kill_waiters, g_ptr_array_unref);
  g_free (op);
}

static guint64
host_memory_mib (void)
{
  g_autofree char *text = NULL;
  const char *line;

  if (!g_file_get_contents ("/proc/meminfo", &text, NULL, NULL))
    return 0;
  line = strstr (text, "MemTotal:");
  return line ? g_ascii_strtoull (line + 9, NULL, 10) / 1024 : 0;
}

/* Step 1 (worker): what to boot, the network, the keys. */
static void
start_prepare_thread (GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
  StartOp *op = task_data;
  GError *error = NULL;
  g_autoptr (GError) helper_error = NULL;
  g_autoptr (BangerHelperClient) helper = NULL;
  g_autofree char *disk = NULL;
  guint64 host_mib = host_memory_mib ();

  if (host_mib > 0 && op->rec->memory_mib > host_mib) {
    g_task_return_new_error (task, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
                             "the VM asks for %u MiB of memory but this host has %" G_GUINT64_FORMAT
                             " MiB",
                             op->rec->memory_mib, host_mib);
    return;
  }
  op->assets = banger_engine_resolve_boot_assets (op->rt->engine, op->rec->image, op->rec->kernel,
                                                  cancellable, &error);
  if (op->assets == NULL) {
    g_prefix_error (&error, "boot assets: ");
    g_task_return_error (task, error);
    return;
  }
  if (!banger_ensure_dir (op->run->vm_dir, &error)
      || !banger_ensure_dir (op->rt->ssh_dir, &error)) {
    g_task_return_error (task, error);
    return;
  }
  if (op->driver == NULL) {
    /* First start without a --driver: the host decides (probing KVM can
     * take a moment, hence here), and the record keeps the choice. */
    op->driver = banger_vm_runtime_driver_named (banger_vmm_default_driver ());
  }
  disk = g_build_filename (op->run->vm_dir, is_firecracker (op->driver) ? "disk.raw" : "disk.qcow2",
                           NULL);
  op->disk_existed = g_file_test (disk, G_FILE_TEST_EXISTS);
  if (is_firecracker (op->driver) && !op->disk_existed) {
    g_autofree char *dev = g_build_filename (op->run->vm_dir, SNAPSHOT_DEVICE_FILE, NULL);
    op->disk_existed = g_file_test (dev, G_FILE_TEST_EXISTS);
  }

  {
    /* VMs starting together must not both run ssh-keygen for the one
     * user key. */
    static GMutex user_key_lock;
    g_mutex_lock (&user_key_lock);
    op->user_pub = banger_ssh_ensure_user_key (op->rt->ssh_dir, &error);
    g_mutex_unlock (&user_key_lock);
  }
  if (op->user_pub == NULL
      || !banger_ssh_new_host_key (op->run->vm_dir, &op->host_priv, &op->host_pub, &error)) {
    g_prefix_error (&error, "ssh keys: ");
    g_task_return_error (task, error);
    return;
  }

  helper = banger_helper_client_new (cancellable, &helper_error);
  if (helper == NULL) {
    /* No helper, no network: the VM still boots and is reachable through
     * its agent (docs/vm-runtime.md). */
    g_message ("VM %s boots without a network device: %s", op->rec->name, helper_error->message);
  } else {
    op->bridge = banger_helper_client_ensure_network (helper, &error);
    if (op->bridge == NULL) {
      g_prefix_error (&error, "network: ");
      g_task_return_error (task, error);
      return;
    }
    /* With the bridge up, .vm lookups can be routed to the responder
     * (failure only logged: docs/dns.md). */
    banger_dns_route_vm_domain (op->rt->engine, helper);
    op->tap = banger_helper_client_create_tap (helper, op->rec->id, &error);
    if (op->tap == NULL) {
      g_prefix_error (&error, "network: ");
      g_task_return_error (task, error);
      return;
    }
  }
  if (is_firecracker (op->driver)) {
    /* auto: a user without root cannot give Firecracker its devices, the
     * helper's jail can; root runs it directly (docs/firecracker.md). */
    op->jailed = op->rt->jailer == 1 || (op->rt->jailer < 0 && geteuid () != 0 && helper != NULL);
    if (op->jailed && helper == NULL) {
      g_task_return_new_error (task, BANGER_ERROR, BANGER_ERROR_UNSUPPORTED,
                               "Firecracker: bangerd's config says [firecracker] jailer=true, but "
                               "the root helper is not running: %s",
                               helper_error->message);
      return;
    }
  }
  /* The tap's address is claimed from the main loop once it is leased. */
  if (op->tap != NULL)
    op->helper = g_steal_pointer (&helper);
  g_task_return_boolean (task, TRUE);
}

/* Firecracker under the helper's jailer: the helper links the checked
 * files into the jail and returns the pid; bangerd then configures and
 * starts the VM through the API socket (now linked from the VM directory). */
static gboolean
launch_jailed (StartOp *op, GError **error)
{
  const BangerVmmConfig *c = &op->config;
  g_autoptr (BangerHelperClient) helper = banger_helper_client_new (NULL, error);
  g_auto (GVariantBuilder) spec = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE_VARDICT);
  g_autofree char *chroot = NULL;
  guint pid;

  if (helper == NULL)
    return FALSE;
  g_variant_builder_add (&spec, "{sv}", "vm_id", g_variant_new_string (c->vm_id));
  g_variant_builder_add (&spec, "{sv}", "kernel", g_variant_new_string (c->kernel));
  g_variant_builder_add (&spec, "{sv}", "rootfs", g_variant_new_string (op->inst.disk_path));
  if (c->initrd != NULL && *c->initrd)
    g_variant_builder_add (&spec, "{sv}", "initrd", g_variant_new_string (c->initrd));
  if (c->tap != NULL && *c->tap)
    g_variant_builder_add (&spec, "{sv}", "tap", g_variant_new_string (c->tap));
  g_variant_builder_add (&spec, "{sv}", "vcpus", g_variant_new_uint32 (c->vcpus));
  g_variant_builder_add (&spec, "{sv}", "memory_mib", g_variant_new_uint32 (c->memory_mib));
  pid = banger_helper_client_launch_jailed (helper, g_variant_builder_end (&spec), error);
  if (pid == 0)
    return FALSE;
  chroot = g_build_filename (op->chroot_base, "firecracker", c->vm_id, "root", NULL);
  return banger_vmm_firecracker_start_jailed (c, &op->inst, chroot, pid, error);
}

/* banger_disk_copy()'s snapshot step for a direct Firecracker (worker
 * thread): the helper's CreateSnapshot. Any failure means "copy instead";
 * Unsupported (no device-mapper) is the usual answer and only logged at
 * debug level. */
static char *
snapshot_through_helper (const char *origin, gpointer user_data, GError **error)
{
  StartOp *op = user_data;
  g_autoptr (GError) local = NULL;
  g_autoptr (BangerHelperClient) helper = banger_helper_client_new (NULL, &local);
  g_autofree char *record = g_build_filename (op->config.vm_dir, SNAPSHOT_DEVICE_FILE, NULL);
  g_autofree char *device = NULL;

  if (helper != NULL)
    device = banger_helper_client_create_snapshot (helper, op->config.vm_id, origin, &local);
  if (device == NULL && g_error_matches (local, BANGER_ERROR, BANGER_ERROR_EXISTS)
      && g_file_get_contents (record, &device, NULL, NULL)) {
    /* A stopped VM's snapshot (kept until the VM is deleted): its disk. */
    g_strstrip (device);
    return g_steal_pointer (&device);
  }
  if (device == NULL) {
    if (g_error_matches (local, BANGER_ERROR, BANGER_ERROR_UNSUPPORTED))
      g_debug ("VM %s: no dm-snapshot: %s", op->rec->name, local->message);
    else
      g_info ("VM %s: no dm-snapshot, copying the image instead: %s", op->rec->name,
              local->message);
    g_propagate_error (error, g_steal_pointer (&local));
    return NULL;
  }
  if (!g_file_set_contents (record, device, -1, &local)) {
    g_autoptr (GError) undo = NULL;
    if (!banger_helper_client_remove_snapshot (helper, op->config.vm_id, &undo))
      g_warning ("VM %s: %s", op->rec->name, undo->message);
    g_propagate_error (error, g_steal_pointer (&local));
    return NULL;
  }
  return g_steal_pointer (&device);
}

static gboolean
banger_vm_remove_snapshot (const char *vm_id, const char *vm_dir, GError **error)
{
  g_autofree char *record = g_build_filename (vm_dir, SNAPSHOT_DEVICE_FILE, NULL);
  g_autoptr (GError) local = NULL;
  g_autoptr (BangerHelperClient) helper = banger_helper_client_new (NULL, &local);

  if (helper == NULL) {
    g_propagate_prefixed_error (error, g_steal_pointer (&local),
                                "cannot remove the dm-snapshot of %s: ", vm_id);
    return FALSE;
  }
  if (!banger_helper_client_remove_snapshot (helper, vm_id, error))
    return FALSE;
  g_unlink (record);
  return TRUE;
}

/* Step 3 (worker): the disk and the VMM. */
static void
start_launch_thread (GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
  StartOp *op = task_data;
  const BangerVmmDriver *driver = op->driver;
  const char *what = is_firecracker (driver) ? "Firecracker" : "QEMU";
  GError *error = NULL;
  gboolean disk_ok;

  /* A direct Firecracker may run on a dm-snapshot (the helper's); a jail
   * needs a regular file to link, so a jailed one never does. */
  if (is_firecracker (driver) && !op->jailed)
    disk_ok = banger_vmm_firecracker_prepare_disk (&op->config, &op->inst, snapshot_through_helper,
                                                   op, &error);
  else
    disk_ok = driver->prepare_disk (&op->config, &op->inst, &error);
  if (!disk_ok) {
    g_prefix_error (&error, "disk: ");
    g_task_return_error (task, error);
    return;
  }
  if (op->jailed ? !launch_jailed (op, &error) : !driver->launch (&op->config, &op->inst, &error)) {
    g_prefix_error (&error, "%s%s: ", what, op->jailed ? " (jailed)" : "");
    g_task_return_error (task, error);
    return;
  }
  g_task_return_boolean (task, TRUE);
}

static void start_fail (StartOp *op, GError *error);
static void start_vm_launch (BangerVmRuntime *self, const BangerVmRecord *rec, GTask *task,
                             guint agent_timeout_ms, gboolean retried);

/* What the console log says last, for error messages: the kernel's panic
 * line if there is one, else the last non-empty line; read from the log's
 * end only (console-log.h). */
#define console_tail banger_console_log_tail_line

static void
edit_failed (BangerVmRecord *rec, gpointer data)
{
  set_str (&rec->state, "error");
  set_str (&rec->last_error, data);
  rec->pid = 0;
}

static void
start_failed_teardown_cb (GObject *source, GAsyncResult *res, gpointer user_data)
{
  StartOp *op = user_data;
  Teardown *t = g_task_get_task_data (G_TASK (res));
  GError *error = g_task_get_task_data (op->task);
  g_autofree char *message = NULL;

  if (t->problem != NULL)
    g_warning ("VM %s: cleaning up after a failed start: %s", op->rec->name, t->problem);
  vm_run_released (op->run);
  op->run->busy = FALSE;
  if (op->agent_error != NULL) {
    /* Only now is it known whether the guest died (QEMU exits on a panic)
     * or just never answered. */
    g_autofree char *tail = console_tail (op->inst.console_log);
    if (op->vmm_exited || t->exited) {
      g_free (error->message);
      error->message = g_strdup_printf (
          "starting VM “%s” failed: the VMM exited before the guest agent answered (the guest "
          "crashed or powered off; console log %s%s%s)",
          op->rec->name, op->inst.console_log, tail ? ", last line: " : "", tail ? tail : "");
    } else if (tail != NULL) {
      /* The guest still runs but never answered: what it printed last
       * (a stuck boot, an agent complaint) is the best clue there is. */
      g_autofree char *old = error->message;
      error->message
          = g_strdup_printf ("%s (console log %s, last line: %s)", old, op->inst.console_log, tail);
    }
    g_warning ("%s", error->message);
  }
  op->run->start_op = NULL;
  if (op->killed) {
    /* Killed while starting: stopped, like any killed VM. */
    set_state (op->rt, op->rec->id, "stopped", t->problem ? t->problem : "");
    for (guint i = 0; op->kill_waiters != NULL && i < op->kill_waiters->len; i++) {
      GTask *waiter = g_ptr_array_index (op->kill_waiters, i);
      g_task_return_boolean (waiter, TRUE);
      g_object_unref (waiter);
    }
  } else if (op->stalled && !op->retried && !op->vmm_exited && !t->exited) {
    /* Everything of the stalled boot is undone (VMM, tap, lease, a first
     * boot's disk): boot once more, for the same caller. Replacing the
     * task's start-op frees @op, so nothing here touches it afterwards. */
    BangerVmRuntime *rt = op->rt;
    GTask *task = op->task;
    guint timeout_ms = op->agent_timeout_ms;
    g_autoptr (BangerVmRecord) rec = banger_vm_record_copy (op->rec);

    g_warning ("VM %s: %s; starting its VMM once more", rec->name, error->message);
    g_task_set_task_data (task, NULL, NULL);
    start_vm_launch (rt, rec, task, timeout_ms, TRUE);
    return;
  } else {
    message = g_strdup (error->message);
    update_record (op->rt, op->rec->id, edit_failed, message);
  }
  g_task_return_error (op->task, g_error_copy (error));
  g_object_unref (op->task);
}

static gboolean
start_check_killed (StartOp *op)
{
  if (!op->killed)
    return FALSE;
  start_fail (op, g_error_new (BANGER_ERROR, BANGER_ERROR_CANCELLED,
                               "VM “%s” was killed while it was starting", op->rec->name));
  return TRUE;
}

/* Everything this start acquired is released: the VMM, the tap, the lease
 * and (on a first boot) the overlay it made. */
static void
start_fail (StartOp *op, GError *error)
{
  Teardown *t = teardown_new (op->run, NULL);

  banger_error_convert (&error);
  if (op->agent_error == NULL) {
    g_prefix_error (&error, "starting VM “%s” failed: ", op->rec->name);
    g_warning ("%s", error->message);
  }
  g_task_set_task_data (op->task, error, (GDestroyNotify)g_error_free);
  op->run->on_vmm_exit = NULL;
  vm_run_drop_agent (op->run);
  t->force = TRUE;
  t->delete_tap = op->tap != NULL;
  if (!op->disk_existed && g_strcmp0 (op->inst.disk_mode, "dm-snapshot") == 0)
    t->remove_snapshot = TRUE;
  else if (!op->disk_existed && op->inst.disk_path != NULL)
    t->remove_disk = g_strdup (op->inst.disk_path);
  /* Give a VMM whose guest just died a moment to be seen exiting. */
  if (op->agent_error != NULL)
    t->graceful_ms = 1000;
  teardown_run (t, start_failed_teardown_cb, op);
}

static void
edit_running (BangerVmRecord *rec, gpointer data)
{
  StartOp *op = data;

  set_str (&rec->state, "running");
  set_str (&rec->last_error, "");
  set_str (&rec->agent_version, banger_agent_client_get_agent_version (op->agent));
  set_str (&rec->boot_id, banger_agent_client_get_boot_id (op->agent));
  rec->started_at = g_get_real_time () / G_USEC_PER_SEC;
  rec->pid = op->inst.pid;
}

static void
start_setup_cb (GObject *source, GAsyncResult *res, gpointer user_data)
{
  StartOp *op = user_data;
  GError *error = NULL;
  gboolean has_sshd = FALSE;

  if (!banger_agent_client_setup_finish (op->agent, res, &has_sshd, &error)) {
    if (op->killed) {
      g_clear_error (&error);
      start_check_killed (op);
      return;
    }
    g_prefix_error (&error, "guest agent setup: ");
    start_fail (op, error);
    return;
  }
  if (start_check_killed (op))
    return;
  write_runtime_file (op->run->vm_dir, op->assets->image_has_sshd || has_sshd, op->tap);
  vm_run_set_agent (op->run, op->agent);
  op->run->on_vmm_exit = NULL;
  op->run->busy = FALSE;
  op->run->start_op = NULL;
  update_record (op->rt, op->rec->id, edit_running, op);
  g_info ("VM %s running (pid %u, boot id %s, agent %s)", op->rec->name, op->inst.pid,
          banger_agent_client_get_boot_id (op->agent),
          banger_agent_client_get_agent_version (op->agent));
  g_task_return_boolean (op->task, TRUE);
  g_object_unref (op->task);
}

static void
start_agent_cb (GObject *source, GAsyncResult *res, gpointer user_data)
{
  StartOp *op = user_data;
  GError *error = NULL;

  g_clear_handle_id (&op->stall_source, g_source_remove);
  op->agent = agent_connect_finish (res, &error);
  if (op->agent == NULL && op->killed) {
    g_clear_error (&error);
    start_check_killed (op);
    return;
  }
  if (op->agent == NULL && op->stalled && !op->vmm_exited) {
    op->agent_error = g_strdup_printf ("starting VM “%s” failed: the guest's boot stalled (its "
                                       "console stayed silent for %u s and its agent did not "
                                       "answer)",
                                       op->rec->name, BOOT_STALL_S);
    g_clear_error (&error);
    start_fail (op, g_error_new_literal (BANGER_ERROR, BANGER_ERROR_FAILED, op->agent_error));
    return;
  }
  if (op->agent == NULL) {
    op->agent_error = g_strdup_printf ("starting VM “%s” failed: the guest agent did not answer "
                                       "within %u s: %s",
                                       op->rec->name, op->agent_timeout_ms / 1000, error->message);
    g_clear_error (&error);
    start_fail (op, g_error_new_literal (BANGER_ERROR, BANGER_ERROR_FAILED, op->agent_error));
    return;
  }
  banger_agent_client_setup_async (op->agent, op->user_pub, op->host_priv, op->host_pub, NULL,
                                   start_setup_cb, op);
}

static void
start_vmm_exited (gpointer data)
{
  StartOp *op = data;

  op->vmm_exited = TRUE;
  g_cancellable_cancel (op->agent_cancel);
}

/* Once a second while the agent has not answered: is the guest still
 * printing? Silence for BOOT_STALL_S means a stuck boot (see there). */
static gboolean
start_stall_check_cb (gpointer data)
{
  StartOp *op = data;
  GStatBuf st;
  gint64 now = g_get_monotonic_time ();

  if (g_stat (op->inst.console_log, &st) == 0 && st.st_size != op->console_size) {
    op->console_size = st.st_size;
    op->console_changed_us = now;
    return G_SOURCE_CONTINUE;
  }
  if (now - op->console_changed_us < (gint64)BOOT_STALL_S * G_USEC_PER_SEC)
    return G_SOURCE_CONTINUE;
  op->stalled = TRUE;
  op->stall_source = 0;
  g_cancellable_cancel (op->agent_cancel);
  return G_SOURCE_REMOVE;
}

static void
edit_launched (BangerVmRecord *rec, gpointer data)
{
  StartOp *op = data;

  rec->pid = op->inst.pid;
  set_str (&rec->disk_mode, op->inst.disk_mode);
  set_str (&rec->driver, op->driver->name);
}

static void
edit_driver (BangerVmRecord *rec, gpointer data)
{
  set_str (&rec->driver, data);
}

static void
start_launched_cb (GObject *source, GAsyncResult *res, gpointer user_data)
{
  StartOp *op = user_data;
  GError *error = NULL;

  if (!g_task_propagate_boolean (G_TASK (res), &error)) {
    start_fail (op, error);
    return;
  }
  update_record (op->rt, op->rec->id, edit_launched, op);
  if (start_check_killed (op))
    return;
  vm_run_watch (op->run, op->inst.pid);
  /* A guest that dies while we wait for its agent fails the start at once
   * instead of after the whole timeout. */
  op->agent_cancel = g_cancellable_new ();
  op->run->on_vmm_exit = start_vmm_exited;
  op->run->on_vmm_exit_data = op;
  agent_connect_async (op->driver, op->inst.agent_socket, op->agent_timeout_ms, op->agent_cancel,
                       start_agent_cb, op);
  if (!is_firecracker (op->driver) && op->agent_timeout_ms > BOOT_STALL_S * 1000) {
    op->console_size = -1;
    op->console_changed_us = g_get_monotonic_time ();
    op->stall_source = g_timeout_add_seconds (1, start_stall_check_cb, op);
  }
}

static void start_claim_next (StartOp *op);
static void start_launch (StartOp *op, const char *ip);

static void
start_prepared_cb (GObject *source, GAsyncResult *res, gpointer user_data)
{
  StartOp *op = user_data;
  GError *error = NULL;

  if (!g_task_propagate_boolean (G_TASK (res), &error)) {
    start_fail (op, error);
    return;
  }
  if (start_check_killed (op))
    return;
  /* Recorded before anything is launched, so a bangerd that ends from here
   * on finds the VMM again with the right driver. */
  op->run->driver = op->driver;
  if (!g_str_equal (op->rec->driver, op->driver->name))
    update_record (op->rt, op->rec->id, edit_driver, (gpointer)op->driver->name);
  if (is_firecracker (op->driver)) {
    /* Firecracker boots only an ELF vmlinux, never a bzImage. */
    g_autoptr (BangerKernelRecord) krn = banger_store_kernel_get_by_name (
        banger_engine_get_store (op->rt->engine), op->assets->kernel_name, &error);
    if (krn == NULL) {
      g_prefix_error (&error, "boot assets: ");
      start_fail (op, error);
      return;
    }
    if (*krn->vmlinux_path == '\0') {
      start_fail (op, g_error_new (BANGER_ERROR, BANGER_ERROR_UNSUPPORTED,
                                   "kernel “%s” has no ELF vmlinux, and Firecracker cannot boot "
                                   "its %s (import it again: a bzImage is unpacked on import)",
                                   krn->name, krn->path));
      return;
    }
    g_free (op->assets->kernel_path);
    op->assets->kernel_path = g_strdup (krn->vmlinux_path);
  }
  if (op->tap != NULL) {
    start_claim_next (op);
    return;
  }
  start_launch (op, NULL);
}

/* Step 3 (main) for a VM with a tap: the lease, claimed for the tap through
 * the helper (CreateTap with the guest's MAC and address, asynchronously:
 * the main loop never waits on the helper). The tap may then send from
 * those only, and an address another user's VM holds (which this user's
 * store cannot know) is refused with Exists: the next one is leased and
 * claimed, up to 8 times. */
#define START_CLAIM_ATTEMPTS 8

static void start_claimed_cb (GObject *source, GAsyncResult *res, gpointer user_data);

static void
start_claim_next (StartOp *op)
{
  BangerStore *store = banger_engine_get_store (op->rt->engine);
  GError *error = NULL;

  if (op->taken == NULL)
    op->taken = g_ptr_array_new_with_free_func (g_free);
  g_ptr_array_add (op->taken, NULL);
  g_free (op->claiming);
  op->claiming = banger_lease_acquire_excluding (store, op->rec->id, op->bridge,
                                                 (const char *const *)op->taken->pdata, &error);
  g_ptr_array_remove_index (op->taken, op->taken->len - 1);
  if (op->claiming == NULL) {
    g_prefix_error (&error, "network: ");
    start_fail (op, error);
    return;
  }
  /* Held from here: an undone start releases it. */
  op->leased = TRUE;
  op->claims++;
  banger_helper_client_claim_tap_async (op->helper, op->rec->id, op->rec->mac, op->claiming,
                                        start_claimed_cb, op);
}

static void
start_claimed_cb (GObject *source, GAsyncResult *res, gpointer user_data)
{
  StartOp *op = user_data;
  GError *error = NULL;
  gboolean ok = banger_helper_client_claim_tap_finish (op->helper, res, &error);

  if (start_check_killed (op)) {
    g_clear_error (&error);
    return;
  }
  if (!ok) {
    if (g_error_matches (error, BANGER_ERROR, BANGER_ERROR_EXISTS)
        && op->claims < START_CLAIM_ATTEMPTS) {
      g_info ("VM %s: %s; trying another address", op->rec->name, error->message);
      g_error_free (error);
      g_ptr_array_add (op->taken, g_steal_pointer (&op->claiming));
      start_claim_next (op);
      return;
    }
    g_prefix_error (&error, "network: ");
    start_fail (op, error);
    return;
  }
  start_launch (op, op->claiming);
}

/* The rest of step 3 (main): kernel arguments, the host key, the config;
 * then step 4 in a worker. @ip is the claimed lease, or NULL (no tap). */
static void
start_launch (StartOp *op, const char *ip)
{
  GError *error = NULL;
  g_autofree char *alias = NULL;
  g_autoptr (GString) args = g_string_new (NULL);
  g_autoptr (GTask) task = NULL;

  if (ip != NULL) {
    guint32 addr;
    guint prefix;
    g_autofree char *gw = g_strdup (op->bridge);
    char *slash;

    if (!banger_parse_cidr (op->bridge, &addr, &prefix, &error)) {
      g_prefix_error (&error, "network: ");
      start_fail (op, error);
      return;
    }
    slash = strchr (gw, '/');
    if (slash != NULL)
      *slash = '\0';
    g_string_append_printf (args, "banger.ip=%s/%u banger.gw=%s ", ip, prefix, gw);
  }
  g_string_append_printf (args, "banger.hostname=%s", op->rec->name);

  alias = g_strdup_printf ("banger-%s", op->rec->id);
  if (!banger_ssh_pin_host_key (op->rt->known_hosts, alias, op->host_pub, &error)) {
    g_prefix_error (&error, "ssh keys: ");
    start_fail (op, error);
    return;
  }

  op->config.vm_id = g_strdup (op->rec->id);
  op->config.name = g_strdup (op->rec->name);
  op->config.vm_dir = g_strdup (op->run->vm_dir);
  op->config.kernel = g_strdup (op->assets->kernel_path);
  op->config.initrd = g_strdup (op->assets->initrd_path);
  op->config.rootfs = g_strdup (op->assets->rootfs_path);
  op->config.vcpus = op->rec->vcpus;
  op->config.memory_mib = op->rec->memory_mib;
  op->config.disk_mib = op->rec->disk_mib;
  op->config.tap = g_strdup (op->tap);
  op->config.mac = g_strdup (op->rec->mac);
  op->config.kernel_args = g_string_free (g_steal_pointer (&args), FALSE);
  driver_instance_paths (op->driver, op->run->vm_dir, &op->inst);

  task = g_task_new (NULL, NULL, start_launched_cb, op);
  g_task_set_task_data (task, op, NULL);
  g_task_run_in_thread (task, start_launch_thread);
}

static gboolean
check_vm_idle (VmRun *run, const BangerVmRecord *rec, GError **error)
{
  if (run->busy) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_BUSY,
                 "VM “%s” is %s: another operation on it is in progress", rec->name, rec->state);
    return FALSE;
  }
  return TRUE;
}

static void
edit_starting (BangerVmRecord *rec, gpointer data)
{
  set_str (&rec->state, "starting");
  set_str (&rec->last_error, "");
}

/* Starts @rec with the caller's @task (which it completes). */
static void
start_vm (BangerVmRuntime *self, const BangerVmRecord *rec, GVariant *options, GTask *task)
{
  static const char *const allowed[] = { "timeout", "u", NULL };
  VmRun *run = banger_vm_run_get (self, rec->id);
  GError *error = NULL;
  guint timeout_s = 0;

  if (options != NULL && !banger_validate_options (options, allowed, &error)) {
    g_task_return_error (task, error);
    g_object_unref (task);
    return;
  }
  if (options != NULL)
    g_variant_lookup (options, "timeout", "u", &timeout_s);
  if (!check_vm_idle (run, rec, &error)) {
    g_task_return_error (task, error);
    g_object_unref (task);
    return;
  }
  if (!g_str_equal (rec->state, "created") && !g_str_equal (rec->state, "stopped")
      && !g_str_equal (rec->state, "error")) {
    g_task_return_new_error (task, BANGER_ERROR, BANGER_ERROR_BAD_STATE,
                             "VM “%s” is %s; only a created, stopped or failed VM can be started",
                             rec->name, rec->state);
    g_object_unref (task);
    return;
  }
  if (*rec->driver && !g_str_equal (rec->driver, "qemu")
      && !g_str_equal (rec->driver, "firecracker")) {
    g_task_return_new_error (task, BANGER_ERROR, BANGER_ERROR_UNSUPPORTED,
                             "VM “%s” asks for the %s driver, which bangerd does not know",
                             rec->name, rec->driver);
    g_object_unref (task);
    return;
  }

  start_vm_launch (self, rec, task, timeout_s > 0 ? timeout_s * 1000 : AGENT_START_TIMEOUT_MS,
                   FALSE);
}

/* Start, once start_vm checked that it may (or again after a stalled
 * boot, @retried). */
static void
start_vm_launch (BangerVmRuntime *self, const BangerVmRecord *rec, GTask *task,
                 guint agent_timeout_ms, gboolean retried)
{
  VmRun *run = banger_vm_run_get (self, rec->id);
  StartOp *op;
  g_autoptr (GTask) prepare = NULL;

  op = g_new0 (StartOp, 1);
  op->rt = self;
  op->run = run;
  op->task = task;
  op->rec = banger_vm_record_copy (rec);
  op->agent_timeout_ms = agent_timeout_ms;
  op->retried = retried;
  op->driver = *rec->driver ? banger_vm_runtime_driver_named (rec->driver) : NULL;
  op->chroot_base = g_strdup (self->chroot_base);
  if (op->driver != NULL)
    run->driver = op->driver;
  g_object_set_data_full (G_OBJECT (task), "start-op", op, (GDestroyNotify)start_op_free);
  run->busy = TRUE;
  run->start_op = op;
  update_record (self, rec->id, edit_starting, NULL);
  g_info ("starting VM %s (image %s, kernel %s)", rec->name, rec->image, rec->kernel);

  prepare = g_task_new (NULL, NULL, start_prepared_cb, op);
  g_task_set_task_data (prepare, op, NULL);
  g_task_run_in_thread (prepare, start_prepare_thread);
}

static GTask *
op_task_new (BangerVmRuntime *self, GAsyncReadyCallback callback, gpointer user_data)
{
  /* The engine stays alive while an operation runs. */
  GTask *task = g_task_new (self->engine, NULL, callback, user_data);
  g_task_set_source_tag (task, banger_vm_runtime_op_finish);
  return task;
}

void
banger_vm_runtime_start_async (BangerVmRuntime *self, const char *name, GVariant *options,
                               GAsyncReadyCallback callback, gpointer user_data)
{
  GTask *task = op_task_new (self, callback, user_data);
  GError *error = NULL;
  g_autoptr (BangerVmRecord) rec = banger_vm_runtime_find_record (self, name, &error);

  if (rec == NULL) {
    g_task_return_error (task, error);
    g_object_unref (task);
    return;
  }
  start_vm (self, rec, options, task);
}

gboolean
banger_vm_runtime_op_finish (BangerVmRuntime *self, GAsyncResult *result, GError **error)
{
  return g_task_propagate_boolean (G_TASK (result), error);
}

/* ---- Stop, Kill ------------------------------------------------------------------ */

typedef struct {
  BangerVmRuntime *rt;
  VmRun *run;
  GTask *task;
  char *name;
  /* Restart: what to start afterwards. */
  gboolean restart;
  GVariant *start_options;
} StopOp;

static void
stop_op_free (StopOp *op)
{
  g_free (op->name);
  g_clear_pointer (&op->start_options, g_variant_unref);
  g_free (op);
}

static void
stop_teardown_cb (GObject *source, GAsyncResult *res, gpointer user_data)
{
  StopOp *op = user_data;
  Teardown *t = g_task_get_task_data (G_TASK (res));
  GTask *task = op->task;
  g_autoptr (BangerVmRecord) rec = NULL;

  g_autofree char *forced = NULL;

  vm_run_released (op->run);
  op->run->busy = FALSE;
  if (t->forced != NULL) {
    /* The guest ignored the power-off: not an error of the stop, but the
     * user should know the guest did not shut down cleanly. */
    forced = g_strdup_printf ("stopped by force: the guest did not power off within %u s; %s "
                              "ended it",
                              t->graceful_ms / 1000, t->forced);
    g_warning ("VM %s %s", op->name, forced);
  }
  if (t->problem != NULL)
    set_state (op->rt, op->run->id, "stopped", t->problem);
  else
    set_state (op->rt, op->run->id, "stopped", forced != NULL ? forced : "");
  g_info ("VM %s stopped", op->name);
  if (op->restart) {
    GError *error = NULL;
    rec = banger_vm_runtime_find_record (op->rt, op->name, &error);
    if (rec == NULL) {
      g_task_return_error (task, error);
      g_object_unref (task);
    } else {
      start_vm (op->rt, rec, op->start_options, task);
    }
  } else {
    g_task_return_boolean (task, TRUE);
    g_object_unref (task);
  }
  stop_op_free (op);
}

static void
poweroff_cb (GObject *source, GAsyncResult *res, gpointer user_data)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *id = user_data;

  if (!banger_agent_client_poweroff_finish (BANGER_AGENT_CLIENT (source), res, &error))
    g_debug ("VM %s: power-off request: %s", id, error->message);
}

static void
edit_stopping (BangerVmRecord *rec, gpointer data)
{
  set_str (&rec->state, "stopping");
}

/* @graceful_ms 0: kill at once. */
static void
stop_vm (BangerVmRuntime *self, const BangerVmRecord *rec, guint graceful_ms, StopOp *op)
{
  Teardown *t = teardown_new (op->run, rec);

  op->run->busy = TRUE;
  update_record (self, rec->id, edit_stopping, NULL);
  if (graceful_ms > 0 && op->run->agent != NULL) {
    /* The agent replies, then syncs and powers the guest off; QEMU exits
     * when it does (-no-reboot). The wait below is what bounds it. */
    banger_agent_client_poweroff_async (op->run->agent, NULL, poweroff_cb, g_strdup (rec->id));
  }
  t->graceful_ms = graceful_ms;
  t->force = TRUE;
  teardown_run (t, stop_teardown_cb, op);
}

static StopOp *
stop_op_new (BangerVmRuntime *self, const char *name, GTask *task, BangerVmRecord **rec_out,
             GError **error)
{
  g_autoptr (BangerVmRecord) rec = banger_vm_runtime_find_record (self, name, error);
  VmRun *run;
  StopOp *op;

  if (rec == NULL)
    return NULL;
  run = banger_vm_run_get (self, rec->id);
  if (!check_vm_idle (run, rec, error))
    return NULL;
  op = g_new0 (StopOp, 1);
  op->rt = self;
  op->run = run;
  op->task = task;
  op->name = g_strdup (rec->name);
  *rec_out = g_steal_pointer (&rec);
  return op;
}

void
banger_vm_runtime_stop_async (BangerVmRuntime *self, const char *name, guint timeout_s,
                              GAsyncReadyCallback callback, gpointer user_data)
{
  GTask *task = op_task_new (self, callback, user_data);
  GError *error = NULL;
  g_autoptr (BangerVmRecord) rec = NULL;
  StopOp *op = stop_op_new (self, name, task, &rec, &error);

  if (op != NULL && !g_str_equal (rec->state, "running")) {
    g_set_error (&error, BANGER_ERROR, BANGER_ERROR_BAD_STATE, "VM “%s” is %s, not running",
                 rec->name, rec->state);
    g_clear_pointer (&op, stop_op_free);
  }
  if (op == NULL) {
    g_task_return_error (task, error);
    g_object_unref (task);
    return;
  }
  stop_vm (self, rec, (timeout_s > 0 ? timeout_s : STOP_DEFAULT_TIMEOUT_S) * 1000, op);
}

void
banger_vm_runtime_restart_async (BangerVmRuntime *self, const char *name, GVariant *options,
                                 GAsyncReadyCallback callback, gpointer user_data)
{
  GTask *task = op_task_new (self, callback, user_data);
  GError *error = NULL;
  g_autoptr (BangerVmRecord) rec = NULL;
  StopOp *op = stop_op_new (self, name, task, &rec, &error);

  if (op == NULL) {
    g_task_return_error (task, error);
    g_object_unref (task);
    return;
  }
  if (!g_str_equal (rec->state, "running")) {
    /* Like `systemctl restart`: a VM that is not running is just started. */
    stop_op_free (op);
    start_vm (self, rec, options, task);
    return;
  }
  op->restart = TRUE;
  op->start_options = options ? g_variant_ref (options) : NULL;
  stop_vm (self, rec, STOP_DEFAULT_TIMEOUT_S * 1000, op);
}

void
banger_vm_runtime_kill_async (BangerVmRuntime *self, const char *name, GAsyncReadyCallback callback,
                              gpointer user_data)
{
  GTask *task = op_task_new (self, callback, user_data);
  GError *error = NULL;
  g_autoptr (BangerVmRecord) rec = banger_vm_runtime_find_record (self, name, &error);
  StopOp *op = NULL;
  VmRun *run = rec ? banger_vm_run_get (self, rec->id) : NULL;

  if (run != NULL && run->start_op != NULL) {
    /* A start in flight is undone (its VMM killed, everything released);
     * this call completes when that is done. */
    StartOp *start = run->start_op;
    start->killed = TRUE;
    if (start->kill_waiters == NULL)
      start->kill_waiters = g_ptr_array_new ();
    g_ptr_array_add (start->kill_waiters, task);
    if (start->agent_cancel != NULL)
      g_cancellable_cancel (start->agent_cancel);
    return;
  }
  g_clear_pointer (&rec, banger_vm_record_free);
  if (run != NULL || error == NULL)
    op = stop_op_new (self, name, task, &rec, &error);

  if (op != NULL && !banger_vm_state_is_active (rec->state)) {
    g_set_error (&error, BANGER_ERROR, BANGER_ERROR_BAD_STATE, "VM “%s” is %s, not running",
                 rec->name, rec->state);
    g_clear_pointer (&op, stop_op_free);
  }
  if (op == NULL) {
    g_task_return_error (task, error);
    g_object_unref (task);
    return;
  }
  stop_vm (self, rec, 0, op);
}

/* ---- Delete ------------------------------------------------------------------------ */

static void
delete_record (BangerVmRuntime *self, const char *name, GTask *task)
{
  GError *error = NULL;
  g_autoptr (BangerVmRecord) rec = banger_vm_runtime_find_record (self, name, &error);

  if (rec == NULL || !banger_engine_delete_vm (self->engine, name, FALSE, &error)) {
    g_task_return_error (task, error);
  } else {
    g_hash_table_remove (self->runs, rec->id);
    g_task_return_boolean (task, TRUE);
  }
  g_object_unref (task);
}

typedef struct {
  BangerVmRuntime *rt;
  char *name;
  GTask *task;
  char *id;
  char *vm_dir;
  gboolean snapshot; /* the VM's disk is the helper's dm-snapshot */
  char *jail;        /* the VM's jail directory, if it has one */
} DeleteOp;

static void
delete_op_free (DeleteOp *op)
{
  g_free (op->name);
  g_free (op->id);
  g_free (op->vm_dir);
  g_free (op->jail);
  g_free (op);
}

/* The jail of a deleted VM goes too (the helper's RemoveJail: it is root's
 * directory). Like libvirt's undefine with storage removal, the VM is
 * deleted even when this fails: the failure is a warning naming what was
 * left (docs/firecracker.md). */
static void
delete_remove_jail (DeleteOp *op)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (BangerHelperClient) helper = banger_helper_client_new (NULL, &error);

  if (helper == NULL || !banger_helper_client_remove_jail (helper, op->id, &error))
    g_warning ("VM %s is deleted, but its jail %s is left behind: %s", op->name, op->jail,
               error->message);
  else
    g_debug ("VM %s: jail %s removed", op->name, op->jail);
}

static void
delete_snapshot_thread (GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
  DeleteOp *op = task_data;
  GError *error = NULL;

  if (op->snapshot && !banger_vm_remove_snapshot (op->id, op->vm_dir, &error)) {
    g_task_return_error (task, error);
    return;
  }
  if (op->jail != NULL)
    delete_remove_jail (op);
  g_task_return_boolean (task, TRUE);
}

static void
delete_snapshot_cb (GObject *source, GAsyncResult *res, gpointer user_data)
{
  DeleteOp *op = g_task_get_task_data (G_TASK (res));
  GError *error = NULL;

  if (!g_task_propagate_boolean (G_TASK (res), &error)) {
    /* Kept, record and directory (which holds the COW file): deleting
     * them would leave the loop devices and the dm target behind. */
    g_prefix_error (&error, "VM “%s” is kept: ", op->name);
    g_task_return_error (op->task, error);
    g_object_unref (op->task);
    return;
  }
  delete_record (op->rt, op->name, op->task);
}

/* A Firecracker VM's jail: linked from its directory once it ran jailed,
 * or present under the chroot base (a jailed start that failed before the
 * link). NULL for every other VM. */
static char *
vm_jail_dir (BangerVmRuntime *self, const BangerVmRecord *rec, const char *vm_dir)
{
  g_autofree char *jail = NULL;

  if (g_strcmp0 (rec->driver, "firecracker") != 0)
    return NULL;
  jail = g_build_filename (self->chroot_base, "firecracker", rec->id, NULL);
  if (vm_dir_is_jailed (vm_dir) || g_file_test (jail, G_FILE_TEST_EXISTS))
    return g_steal_pointer (&jail);
  return NULL;
}

/* delete_record, after the helper removed the VM's dm-snapshot if it has
 * one (its COW file is in the directory delete_record removes) and its
 * jail if it has one (the VMM is gone: delete refuses or kills first). */
static void
delete_vm (BangerVmRuntime *self, const char *name, GTask *task)
{
  GError *error = NULL;
  g_autoptr (BangerVmRecord) rec = banger_vm_runtime_find_record (self, name, &error);
  g_autoptr (GTask) worker = NULL;
  g_autofree char *jail = NULL;
  const char *vm_dir;
  DeleteOp *op;

  if (rec == NULL) {
    g_clear_error (&error);
    delete_record (self, name, task);
    return;
  }
  vm_dir = banger_vm_run_get (self, rec->id)->vm_dir;
  jail = vm_jail_dir (self, rec, vm_dir);
  if (g_strcmp0 (rec->disk_mode, "dm-snapshot") != 0 && jail == NULL) {
    delete_record (self, name, task);
    return;
  }
  op = g_new0 (DeleteOp, 1);
  op->rt = self;
  op->name = g_strdup (name);
  op->task = task;
  op->id = g_strdup (rec->id);
  op->vm_dir = g_strdup (vm_dir);
  op->snapshot = g_strcmp0 (rec->disk_mode, "dm-snapshot") == 0;
  op->jail = g_steal_pointer (&jail);
  worker = g_task_new (NULL, NULL, delete_snapshot_cb, NULL);
  g_task_set_task_data (worker, op, (GDestroyNotify)delete_op_free);
  g_task_run_in_thread (worker, delete_snapshot_thread);
}

static void
delete_killed_cb (GObject *source, GAsyncResult *res, gpointer user_data)
{
  DeleteOp *op = user_data;
  GError *error = NULL;

  if (!banger_vm_runtime_op_finish (op->rt, res, &error)) {
    g_task_return_error (op->task, error);
    g_object_unref (op->task);
  } else {
    delete_vm (op->rt, op->name, op->task);
  }
  delete_op_free (op);
}

void
banger_vm_runtime_delete_async (BangerVmRuntime *self, const char *name, gboolean force,
                                GAsyncReadyCallback callback, gpointer user_data)
{
  GTask *task = op_task_new (self, callback, user_data);
  GError *error = NULL;
  g_autoptr (BangerVmRecord) rec = banger_vm_runtime_find_record (self, name, &error);
  VmRun *run;

  if (rec == NULL) {
    g_task_return_error (task, error);
    g_object_unref (task);
    return;
  }
  run = banger_vm_run_get (self, rec->id);
  if (force && (banger_vm_state_is_active (rec->state) || run->start_op != NULL)) {
    /* Kill first (aborting a start in flight), then delete, so no VMM or
     * tap outlives its record. */
    DeleteOp *op = g_new0 (DeleteOp, 1);
    op->rt = self;
    op->name = g_strdup (rec->name);
    op->task = task;
    banger_vm_runtime_kill_async (self, rec->name, delete_killed_cb, op);
    return;
  }
  if (!check_vm_idle (run, rec, &error)) {
    g_task_return_error (task, error);
    g_object_unref (task);
    return;
  }
  delete_vm (self, name, task);
}

void
banger_vm_files_remove (const char *data_dir, const char *id)
{
  g_autofree char *dir = banger_vm_dir (data_dir, id);
  g_autofree char *known_hosts = g_build_filename (data_dir, "ssh", "known_hosts", NULL);
  g_autofree char *alias = g_strdup_printf ("banger-%s", id);
  g_autoptr (GError) error = NULL;

  /* Recursive: a VM directory can hold more than flat files (a jailed
   * VM's links, files a later version adds). */
  if (!banger_remove_tree (dir, &error))
    g_warning ("cannot remove VM directory: %s", error->message);
  g_clear_error (&error);
  if (g_file_test (known_hosts, G_FILE_TEST_EXISTS)
      && !banger_ssh_unpin_host_key (known_hosts, alias, &error))
    g_warning ("cannot unpin %s: %s", alias, error->message);
}

/* ---- reconcile: adopt or release ------------------------------------------------------ */

typedef struct {
  BangerVmRuntime *rt;
  VmRun *run;
  GTask *task;
  char *name;
  char *boot_id;         /* recorded */
  gboolean was_starting; /* bangerd died between launching QEMU and SETUP */
  char *problem;
} AdoptOp;

static void
adopt_op_free (AdoptOp *op)
{
  g_free (op->name);
  g_free (op->boot_id);
  g_free (op->problem);
  g_free (op);
}

typedef struct {
  BangerAgentClient *agent;
  const char *problem;
  guint pid;
} AdoptEdit;

static void
edit_adopted (BangerVmRecord *rec, gpointer data)
{
  AdoptEdit *e = data;

  set_str (&rec->state, "running");
  /* The VMM found, not the one recorded: a bangerd killed between
   * launching QEMU and recording its pid left 0 (the crash test). */
  rec->pid = e->pid;
  if (e->agent != NULL) {
    set_str (&rec->agent_version, banger_agent_client_get_agent_version (e->agent));
    set_str (&rec->boot_id, banger_agent_client_get_boot_id (e->agent));
  }
  set_str (&rec->last_error, e->problem ? e->problem : "");
}

static void
adopt_done (AdoptOp *op, BangerAgentClient *agent)
{
  AdoptEdit edit = { agent, op->problem, op->run->pid };

  op->run->busy = FALSE;
  update_record (op->rt, op->run->id, edit_adopted, &edit);
  g_task_return_boolean (op->task, TRUE);
  g_object_unref (op->task);
  adopt_op_free (op);
}

static void
adopt_setup_cb (GObject *source, GAsyncResult *res, gpointer user_data)
{
  AdoptOp *op = user_data;
  BangerAgentClient *agent = BANGER_AGENT_CLIENT (source);
  g_autoptr (GError) error = NULL;
  gboolean has_sshd = FALSE;

  if (!banger_agent_client_setup_finish (agent, res, &has_sshd, &error)) {
    g_free (op->problem);
    op->problem = g_strdup_printf ("guest agent setup after a bangerd restart: %s", error->message);
    g_warning ("VM %s: %s", op->name, op->problem);
  } else {
    write_runtime_file (op->run->vm_dir, has_sshd, NULL);
  }
  adopt_done (op, agent);
}

/* A VM whose start was cut short by bangerd's end never got its keys: send
 * the ones that start made (the user key, the host key it pinned). */
static gboolean
adopt_send_setup (AdoptOp *op, BangerAgentClient *agent)
{
  g_autofree char *user_pub_path = g_build_filename (op->rt->ssh_dir, "id_ed25519.pub", NULL);
  g_autofree char *host_path = g_build_filename (op->run->vm_dir, "ssh_host_ed25519_key", NULL);
  g_autofree char *host_pub_path = g_strconcat (host_path, ".pub", NULL);
  g_autofree char *user_pub = NULL;
  g_autofree char *host_key = NULL;
  g_autofree char *host_pub = NULL;

  if (!g_file_get_contents (user_pub_path, &user_pub, NULL, NULL)
      || !g_file_get_contents (host_path, &host_key, NULL, NULL)
      || !g_file_get_contents (host_pub_path, &host_pub, NULL, NULL))
    return FALSE;
  banger_agent_client_setup_async (agent, user_pub, host_key, host_pub, NULL, adopt_setup_cb, op);
  memset (host_key, 0, strlen (host_key));
  return TRUE;
}

static void
adopt_agent_cb (GObject *source, GAsyncResult *res, gpointer user_data)
{
  AdoptOp *op = user_data;
  g_autoptr (GError) error = NULL;
  g_autoptr (BangerAgentClient) agent = banger_vm_run_get_agent_finish (res, &error);
  g_autofree char *problem = NULL;

  if (agent == NULL) {
    /* The VMM lives, so the VM stays running (never tear down a live VM);
     * the agent is tried again on the next call that needs it. */
    problem = g_strdup_printf ("re-attaching after a bangerd restart: %s", error->message);
    g_warning ("VM %s: %s", op->name, problem);
  } else if (*op->boot_id
             && g_strcmp0 (op->boot_id, banger_agent_client_get_boot_id (agent)) != 0) {
    problem = g_strdup_printf ("the guest rebooted while bangerd was away (boot id %s, was %s)",
                               banger_agent_client_get_boot_id (agent), op->boot_id);
    g_warning ("VM %s: %s", op->name, problem);
  } else {
    g_info ("VM %s re-attached (pid %u, boot id %s)", op->name, op->run->pid,
            banger_agent_client_get_boot_id (agent));
  }
  op->problem = g_steal_pointer (&problem);
  if (agent != NULL && op->was_starting && adopt_send_setup (op, agent))
    return;
  adopt_done (op, agent);
}

void
banger_vm_runtime_adopt_async (BangerVmRuntime *self, const BangerVmRecord *rec, guint pid,
                               GAsyncReadyCallback callback, gpointer user_data)
{
  AdoptOp *op = g_new0 (AdoptOp, 1);

  op->rt = self;
  op->run = banger_vm_run_get (self, rec->id);
  op->task = op_task_new (self, callback, user_data);
  op->name = g_strdup (rec->name);
  op->boot_id = g_strdup (rec->boot_id);
  op->was_starting = g_str_equal (rec->state, "starting");
  op->run->driver = banger_vm_runtime_driver_named (rec->driver);
  op->run->busy = TRUE;
  vm_run_watch (op->run, pid);
  if (rec->pid != pid)
    g_warning ("VM %s: recorded pid %u, but its VMM is pid %u", rec->name, rec->pid, pid);
  /* A guest that was still starting may still be booting. */
  banger_vm_run_get_agent_async (
      op->run, op->was_starting ? AGENT_START_TIMEOUT_MS : BANGER_AGENT_ATTACH_TIMEOUT_MS, NULL,
      adopt_agent_cb, op);
}

static void
release_teardown_cb (GObject *source, GAsyncResult *res, gpointer user_data)
{
  GTask *task = user_data;
  VmRun *run = g_task_get_task_data (task);
  Teardown *t = g_task_get_task_data (G_TASK (res));

  vm_run_released (run);
  run->busy = FALSE;
  set_state (run->rt, run->id, "stopped", t->problem ? t->problem : "");
  g_task_return_boolean (task, TRUE);
  g_object_unref (task);
}

void
banger_vm_runtime_release_async (BangerVmRuntime *self, const BangerVmRecord *rec,
                                 GAsyncReadyCallback callback, gpointer user_data)
{
  GTask *task = op_task_new (self, callback, user_data);
  VmRun *run = banger_vm_run_get (self, rec->id);

  Teardown *t;

  g_info ("VM %s: its VMM is gone; releasing its tap and lease", rec->name);
  run->driver = banger_vm_runtime_driver_named (rec->driver);
  g_task_set_task_data (task, run, NULL);
  run->busy = TRUE;
  t = teardown_new (run, rec);
  /* Whatever the record says: a bangerd killed between CreateTap and
   * recording the address left a tap the record does not show (the crash
   * test). No tap is NotFound, which DeleteTap's client takes as done. */
  t->delete_tap = TRUE;
  teardown_run (t, release_teardown_cb, task);
}
