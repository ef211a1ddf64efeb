/* Suspend, Resume and the discarding of a suspended VM (docs/suspend.md).
 *
 * Suspend: running → suspending → suspended. In a worker the driver saves
 * the guest's memory and device state into <vm_dir>/suspend (vmm.h
 * save_state), then the paused VMM is ended. The lease stays in the store
 * and the tap on the host, with its claim on the guest's MAC and address
 * (the helper's), so no other user's VM takes the address the guest still
 * has, and neither a suspend nor a resume pays for a network device
 * (deleting one alone took ~20 ms of a ~0.2 s suspend). A save that fails
 * leaves the guest running and no state: never half of each.
 *
 * Resume is a start of the suspended VM (vm-start.c, StartOp.resume): the
 * tap found (or made again, after a reboot), the same lease, the VMM
 * restoring the state. Stop and Kill of a suspended VM discard the state
 * and release the tap and lease: it becomes stopped. */

#include "vm-runtime-private.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <unistd.h>

#include "banger-error.h"
#include "helper-client.h"
#include "remove-tree.h"

char *
banger_vm_suspend_dir_reset (const char *vm_dir, GError **error)
{
  g_autofree char *dir = g_build_filename (vm_dir, BANGER_VM_SUSPEND_DIR, NULL);
  gboolean ok;
  int fd;

  /* Emptied rather than removed: the directory may be a mount point of the
   * admin's choosing (a faster disk for big guests). */
  if (g_mkdir (dir, 0700) < 0 && errno != EEXIST) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "cannot create %s: %s", dir,
                 g_strerror (errno));
    return NULL;
  }
  fd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "cannot open %s: %s", dir,
                 g_strerror (errno));
    return NULL;
  }
  ok = banger_remove_tree_contents (fd, dir, NULL, error);
  close (fd);
  return ok ? g_steal_pointer (&dir) : NULL;
}

/* ---- Suspend ------------------------------------------------------------------ */

typedef struct {
  BangerVmRuntime *rt;
  VmRun *run;
  char *name;
  BangerHelperClient *helper; /* the engine's */
  const BangerVmmDriver *driver;
  char *id;
  char *vm_dir;
  guint pid;
} SuspendOp;

static void
suspend_op_free (SuspendOp *op)
{
  g_free (op->name);
  g_free (op->id);
  g_free (op->vm_dir);
  g_free (op);
}

static void
suspend_thread (GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
  SuspendOp *op = task_data;
  BangerVmmInstance inst = { 0 };
  g_autofree char *dir = NULL;
  g_autofree char *how = NULL;
  GError *error = NULL;

  dir = banger_vm_suspend_dir_reset (op->vm_dir, &error);
  if (dir == NULL) {
    g_task_return_error (task, error);
    return;
  }
  op->driver->instance_paths (op->vm_dir, &inst);
  inst.pid = op->pid;
  /* A jailed VM's state comes out of its jail through the helper. */
  inst.helper = op->helper;
  if (!op->driver->save_state (&inst, dir, &error)) {
    /* The driver resumed the guest; nothing of the state is left. */
    banger_vmm_instance_clear (&inst);
    g_rmdir (dir);
    g_task_return_error (task, error);
    return;
  }
  /* The state is complete and the disk flushed: the paused VMM has nothing
   * left to write, so SIGKILL loses nothing and takes no guest time. */
  if (!op->driver->stop (op->id, op->vm_dir, op->pid, FALSE, op->helper, &how, &error)) {
    g_autoptr (GError) cont = NULL;

    /* Still there: it must not stay paused behind a "running" record. */
    if (!op->driver->resume_paused (&inst, &cont))
      g_prefix_error (&error, "(and the guest could not be resumed: %s) ", cont->message);
    banger_vmm_instance_clear (&inst);
    g_free (banger_vm_suspend_dir_reset (op->vm_dir, NULL));
    g_rmdir (dir);
    g_task_return_error (task, error);
    return;
  }
  banger_vmm_instance_clear (&inst);
  g_task_return_boolean (task, TRUE);
}

static void
suspend_done_cb (GObject *source, GAsyncResult *res, gpointer user_data)
{
  GTask *task = user_data;
  SuspendOp *op = g_task_get_task_data (G_TASK (res));
  GError *error = NULL;

  op->run->busy = FALSE;
  if (!g_task_propagate_boolean (G_TASK (res), &error)) {
    /* The guest runs on, with its agent connection (a pause does not end
     * it) and its watch. */
    g_prefix_error (&error, "suspending VM “%s” failed (it is still running): ", op->name);
    g_warning ("%s", error->message);
    banger_vm_runtime_set_state (op->rt, op->id, "running", NULL);
    /* Unless its VMM ended meanwhile (the guest powered off): the watch saw
     * it while the VM was busy and left it to us. */
    if (op->run->watch_id == 0)
      banger_vm_run_vmm_exited (op->run);
    g_task_return_error (task, error);
    g_object_unref (task);
    return;
  }
  banger_vm_run_detached (op->run);
  banger_vm_runtime_set_state (op->rt, op->id, "suspended", "");
  g_info ("VM %s suspended", op->name);
  g_task_return_boolean (task, TRUE);
  g_object_unref (task);
}

void
banger_vm_runtime_suspend_async (BangerVmRuntime *self, const char *name,
                                 GAsyncReadyCallback callback, gpointer user_data)
{
  GTask *task = banger_vm_runtime_op_task_new (self, callback, user_data);
  GError *error = NULL;
  g_autoptr (BangerVmRecord) rec = banger_vm_runtime_find_record (self, name, &error);
  g_autoptr (GTask) worker = NULL;
  SuspendOp *op;
  VmRun *run;

  if (rec == NULL) {
    g_task_return_error (task, error);
    g_object_unref (task);
    return;
  }
  run = banger_vm_run_get (self, rec->id);
  if (!banger_vm_run_check_idle (run, rec, &error)) {
    g_task_return_error (task, error);
    g_object_unref (task);
    return;
  }
  if (!g_str_equal (rec->state, "running") || run->pid == 0) {
    g_task_return_new_error (task, BANGER_ERROR, BANGER_ERROR_BAD_STATE,
                             "VM “%s” is %s; only a running VM can be suspended", rec->name,
                             rec->state);
    g_object_unref (task);
    return;
  }
  op = g_new0 (SuspendOp, 1);
  op->rt = self;
  op->run = run;
  op->name = g_strdup (rec->name);
  op->helper = self->helper;
  op->driver = run->driver;
  op->id = g_strdup (rec->id);
  op->vm_dir = g_strdup (run->vm_dir);
  op->pid = run->pid;
  run->busy = TRUE;
  banger_vm_runtime_set_state (self, rec->id, "suspending", "");
  g_info ("suspending VM %s", rec->name);
  worker = g_task_new (NULL, NULL, suspend_done_cb, task);
  g_task_set_task_data (worker, op, (GDestroyNotify)suspend_op_free);
  g_task_run_in_thread (worker, suspend_thread);
}

/* ---- Resume ----------------------------------------------------------------------- */

void
banger_vm_runtime_resume_async (BangerVmRuntime *self, const char *name, GVariant *options,
                                GAsyncReadyCallback callback, gpointer user_data)
{
  GTask *task = banger_vm_runtime_op_task_new (self, callback, user_data);
  GError *error = NULL;
  g_autoptr (BangerVmRecord) rec = banger_vm_runtime_find_record (self, name, &error);

  if (rec == NULL) {
    g_task_return_error (task, error);
    g_object_unref (task);
    return;
  }
  if (!g_str_equal (rec->state, "suspended")) {
    g_task_return_new_error (task, BANGER_ERROR, BANGER_ERROR_BAD_STATE,
                             "VM “%s” is %s; only a suspended VM can be resumed", rec->name,
                             rec->state);
    g_object_unref (task);
    return;
  }
  banger_vm_runtime_start_vm (self, rec, options, task);
}

/* ---- Stop/Kill of a suspended VM --------------------------------------------------- */

void
banger_vm_runtime_discard_suspended (BangerVmRuntime *self, const BangerVmRecord *rec, GTask *task)
{
  VmRun *run = banger_vm_run_get (self, rec->id);
  g_autoptr (GError) error = NULL;
  g_autofree char *dir = NULL;

  if (!banger_vm_run_check_idle (run, rec, &error)) {
    g_task_return_error (task, g_steal_pointer (&error));
    g_object_unref (task);
    return;
  }
  /* Files of a guest's memory: removing them takes a moment, not a worker. */
  dir = banger_vm_suspend_dir_reset (run->vm_dir, &error);
  if (dir == NULL) {
    g_prefix_error (&error, "VM “%s” stays suspended: ", rec->name);
    g_task_return_error (task, g_steal_pointer (&error));
    g_object_unref (task);
    return;
  }
  g_rmdir (dir);
  g_info ("VM %s: its suspended state discarded", rec->name);
  /* Then its tap (a worker: the helper is called) and its lease. */
  banger_vm_runtime_release_async (self, rec, banger_vm_runtime_forward_cb, task);
}

/* ---- reconcile: a bangerd that ended mid-suspend or mid-resume ---------------- */

typedef enum {
  SETTLE_ADOPT,     /* the VMM runs the guest: adopt it (running) */
  SETTLE_RELEASE,   /* nothing to go on with: release it (stopped) */
  SETTLE_SUSPENDED, /* a complete state, no VMM: suspended */
} SettleOutcome;

typedef struct {
  BangerVmRuntime *rt;
  BangerVmRecord *rec;
  VmRun *run;
  GTask *task; /* the caller's */
  guint pid;
  SettleOutcome outcome;
  char *problem;
} SettleOp;

static void
settle_op_free (SettleOp *op)
{
  banger_vm_record_free (op->rec);
  g_free (op->problem);
  g_free (op);
}

/* Worker: finishes or undoes what the dead bangerd was doing. */
static void
settle_thread (GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
  SettleOp *op = task_data;
  const BangerVmmDriver *driver = op->run->driver;
  g_autofree char *dir = g_build_filename (op->run->vm_dir, BANGER_VM_SUSPEND_DIR, NULL);
  gboolean complete = banger_vmm_state_complete (dir);
  gboolean suspending = g_str_equal (op->rec->state, "suspending");
  g_autoptr (GError) error = NULL;
  g_autofree char *how = NULL;

  if (op->pid != 0 && suspending && complete) {
    /* The save was done: finish the suspend. */
    if (driver->stop (op->rec->id, op->run->vm_dir, op->pid, FALSE, op->rt->helper, &how, &error))
      op->pid = 0;
    else
      op->problem = g_strdup (error->message);
  } else if (op->pid != 0 && complete) {
    /* Mid-resume, the restored guest not yet running (its state goes once
     * it runs: vm-start.c): that VMM is ended, the VM stays suspended. */
    if (driver->stop (op->rec->id, op->run->vm_dir, op->pid, FALSE, op->rt->helper, &how, &error))
      op->pid = 0;
    else
      op->problem = g_strdup (error->message);
  } else if (op->pid != 0 && suspending) {
    /* Cut short mid-save: the guest may be paused; it goes on. */
    BangerVmmInstance inst = { 0 };

    driver->instance_paths (op->run->vm_dir, &inst);
    inst.pid = op->pid;
    if (!driver->resume_paused (&inst, &error))
      g_debug ("VM %s: continuing its guest: %s", op->rec->name, error->message);
    banger_vmm_instance_clear (&inst);
  }
  if (op->pid != 0) {
    /* The guest runs: whatever state is on disk is behind it now. */
    g_free (banger_vm_suspend_dir_reset (op->run->vm_dir, NULL));
    g_rmdir (dir);
    op->outcome = SETTLE_ADOPT;
  } else if (complete) {
    /* Its tap stays, as after any suspend. */
    op->outcome = SETTLE_SUSPENDED;
  } else {
    g_free (banger_vm_suspend_dir_reset (op->run->vm_dir, NULL));
    g_rmdir (dir);
    op->outcome = SETTLE_RELEASE;
  }
  g_task_return_boolean (task, TRUE);
}

static void
settle_done_cb (GObject *source, GAsyncResult *res, gpointer user_data)
{
  SettleOp *op = g_task_get_task_data (G_TASK (res));
  GTask *task = op->task;

  op->run->busy = FALSE;
  switch (op->outcome) {
  case SETTLE_ADOPT:
    g_info ("VM %s: bangerd ended while it was %s; its VMM runs, adopting it", op->rec->name,
            op->rec->state);
    banger_vm_runtime_adopt_async (op->rt, op->rec, op->pid, banger_vm_runtime_forward_cb, task);
    break;
  case SETTLE_SUSPENDED:
    g_info ("VM %s: bangerd ended while it was %s; its saved state is complete: suspended",
            op->rec->name, op->rec->state);
    banger_vm_runtime_set_state (op->rt, op->rec->id, "suspended", op->problem ? op->problem : "");
    g_task_return_boolean (task, TRUE);
    g_object_unref (task);
    break;
  case SETTLE_RELEASE:
    banger_vm_runtime_release_async (op->rt, op->rec, banger_vm_runtime_forward_cb, task);
    break;
  }
}

void
banger_vm_runtime_settle_async (BangerVmRuntime *self, const BangerVmRecord *rec, guint pid,
                                GAsyncReadyCallback callback, gpointer user_data)
{
  g_autoptr (GTask) worker = NULL;
  SettleOp *op = g_new0 (SettleOp, 1);

  op->rt = self;
  op->rec = banger_vm_record_copy (rec);
  op->run = banger_vm_run_get (self, rec->id);
  op->run->driver = banger_vm_runtime_driver_named (rec->driver);
  op->run->busy = TRUE;
  op->task = banger_vm_runtime_op_task_new (self, callback, user_data);
  op->pid = pid;
  worker = g_task_new (NULL, NULL, settle_done_cb, NULL);
  g_task_set_task_data (worker, op, (GDestroyNotify)settle_op_free);
  g_task_run_in_thread (worker, settle_thread);
}

void
banger_vm_runtime_forward_cb (GObject *source, GAsyncResult *res, gpointer user_data)
{
  GTask *task = user_data;
  GError *error = NULL;

  if (g_task_propagate_boolean (G_TASK (res), &error))
    g_task_return_boolean (task, TRUE);
  else
    g_task_return_error (task, error);
  g_object_unref (task);
}

/* ---- the guest's clock after a resume ----------------------------------------- */

/* A guest whose date hangs must not hold the resume. */
#define CLOCK_TIMEOUT_S 10

typedef struct {
  char *name;
  BangerAgentExec *exec;
  GSource *timeout;
} ClockOp;

static void
clock_op_free (ClockOp *op)
{
  if (op->timeout != NULL) {
    /* Destroying a source that already fired is fine. */
    g_source_destroy (op->timeout);
    g_source_unref (op->timeout);
  }
  g_clear_object (&op->exec);
  g_free (op->name);
  g_free (op);
}

static gboolean
clock_timeout_cb (gpointer data)
{
  ClockOp *op = data;

  /* The exec then completes (128 + 9) and the resume goes on. */
  banger_agent_exec_signal (op->exec, SIGKILL, NULL);
  return G_SOURCE_REMOVE;
}

static void
clock_done_cb (GObject *source, GAsyncResult *res, gpointer user_data)
{
  GTask *task = user_data;
  ClockOp *op = g_task_get_task_data (task);
  g_autoptr (GError) error = NULL;
  int status = banger_agent_exec_wait_finish (BANGER_AGENT_EXEC (source), res, &error);

  if (status != 0)
    g_message ("VM %s: its clock was not set after the resume: %s", op->name,
               error ? error->message : "`date -s` failed or hung in the guest");
  g_task_return_boolean (task, TRUE);
  g_object_unref (task);
}

void
banger_vm_resume_set_clock_async (BangerAgentClient *agent, const char *name,
                                  GAsyncReadyCallback callback, gpointer user_data)
{
  GTask *task = g_task_new (NULL, NULL, callback, user_data);
  g_autofree char *now
      = g_strdup_printf ("@%" G_GINT64_FORMAT, g_get_real_time () / G_USEC_PER_SEC);
  const char *argv[] = { "date", "-u", "-s", now, NULL };
  g_autoptr (GVariant) options = g_variant_ref_sink (g_variant_new ("a{sv}", NULL));
  g_autoptr (GError) error = NULL;
  ClockOp *op = g_new0 (ClockOp, 1);

  op->name = g_strdup (name);
  g_task_set_task_data (task, op, (GDestroyNotify)clock_op_free);
  /* The guest's clock stood still while it was saved (its timers are part
   * of the state): stepped to the host's now through the agent, with the
   * guest's own date (busybox and coreutils both take @SECONDS). */
  op->exec = banger_agent_client_exec (agent, argv, options, -1, -1, -1, &error);
  if (op->exec == NULL) {
    g_message ("VM %s: its clock was not set after the resume: %s", name, error->message);
    g_task_return_boolean (task, TRUE);
    g_object_unref (task);
    return;
  }
  op->timeout = g_timeout_source_new_seconds (CLOCK_TIMEOUT_S);
  g_source_set_callback (op->timeout, clock_timeout_cb, op, NULL);
  g_source_attach (op->timeout, NULL);
  banger_agent_exec_wait_async (op->exec, NULL, clock_done_cb, task);
}
