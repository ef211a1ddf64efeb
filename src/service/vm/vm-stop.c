/* Stop, Restart and Kill: ask the guest to power off (Stop, Restart),
 * then the tear-down (vm-teardown.c) ends the VMM; Restart then starts it
 * again (vm-start.c); Kill of a VM that is starting undoes the start. */

#include "vm-runtime-private.h"

#include "banger-error.h"

#define STOP_DEFAULT_TIMEOUT_S 10

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

  banger_vm_run_released (op->run);
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
    banger_vm_runtime_set_state (op->rt, op->run->id, "stopped", t->problem);
  else
    banger_vm_runtime_set_state (op->rt, op->run->id, "stopped", forced != NULL ? forced : "");
  g_info ("VM %s stopped", op->name);
  if (op->restart) {
    GError *error = NULL;
    rec = banger_vm_runtime_find_record (op->rt, op->name, &error);
    if (rec == NULL) {
      g_task_return_error (task, error);
      g_object_unref (task);
    } else {
      banger_vm_runtime_start_vm (op->rt, rec, op->start_options, task);
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
  banger_vm_record_set_str (&rec->state, "stopping");
}

/* @graceful_ms 0: kill at once. */
static void
stop_vm (BangerVmRuntime *self, const BangerVmRecord *rec, guint graceful_ms, StopOp *op)
{
  Teardown *t = banger_vm_teardown_new (op->run, rec);

  op->run->busy = TRUE;
  banger_vm_runtime_update_record (self, rec->id, edit_stopping, NULL);
  if (graceful_ms > 0 && op->run->agent != NULL) {
    /* The agent replies, then syncs and powers the guest off; QEMU exits
     * when it does (-no-reboot). The wait below is what bounds it. */
    banger_agent_client_poweroff_async (op->run->agent, NULL, poweroff_cb, g_strdup (rec->id));
  }
  t->graceful_ms = graceful_ms;
  t->force = TRUE;
  banger_vm_teardown_run (t, stop_teardown_cb, op);
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
  if (!banger_vm_run_check_idle (run, rec, error))
    return NULL;
  op = g_new0 (StopOp, 1);
  op->rt = self;
  op->run = run;
  op->task = task;
  op->name = g_strdup (rec->name);
  *rec_out = g_steal_pointer (&rec);
  return op;
}

static gboolean
state_is_running (const char *state)
{
  return g_str_equal (state, "running");
}

/* Whether Stop or Kill goes on with @op: when it could not be made (@error
 * says why) or the VM's state is not one @stoppable accepts, *@op is freed,
 * @task ends with the error and the caller only returns. */
static gboolean
stop_op_ready (StopOp **op, const BangerVmRecord *rec, gboolean (*stoppable) (const char *state),
               GTask *task, GError *error)
{
  if (*op != NULL && !stoppable (rec->state)) {
    g_set_error (&error, BANGER_ERROR, BANGER_ERROR_BAD_STATE, "VM “%s” is %s, not running",
                 rec->name, rec->state);
    g_clear_pointer (op, stop_op_free);
  }
  if (*op == NULL) {
    g_task_return_error (task, error);
    g_object_unref (task);
    return FALSE;
  }
  return TRUE;
}

void
banger_vm_runtime_stop_async (BangerVmRuntime *self, const char *name, guint timeout_s,
                              GAsyncReadyCallback callback, gpointer user_data)
{
  GTask *task = banger_vm_runtime_op_task_new (self, callback, user_data);
  GError *error = NULL;
  g_autoptr (BangerVmRecord) rec = NULL;
  StopOp *op = stop_op_new (self, name, task, &rec, &error);

  if (op != NULL && g_str_equal (rec->state, "suspended")) {
    stop_op_free (op);
    banger_vm_runtime_discard_suspended (self, rec, task);
    return;
  }
  if (!stop_op_ready (&op, rec, state_is_running, task, error))
    return;
  stop_vm (self, rec, (timeout_s > 0 ? timeout_s : STOP_DEFAULT_TIMEOUT_S) * 1000, op);
}

void
banger_vm_runtime_restart_async (BangerVmRuntime *self, const char *name, GVariant *options,
                                 GAsyncReadyCallback callback, gpointer user_data)
{
  GTask *task = banger_vm_runtime_op_task_new (self, callback, user_data);
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
    banger_vm_runtime_start_vm (self, rec, options, task);
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
  GTask *task = banger_vm_runtime_op_task_new (self, callback, user_data);
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
  if (op != NULL && g_str_equal (rec->state, "suspended")) {
    stop_op_free (op);
    banger_vm_runtime_discard_suspended (self, rec, task);
    return;
  }

  if (!stop_op_ready (&op, rec, banger_vm_state_is_active, task, error))
    return;
  stop_vm (self, rec, 0, op);
}
