/* What reconcile.c does at bangerd's start for each VM its store says is
 * active: adopt a VM whose VMM still runs (watch it, re-attach its agent)
 * or release one whose VMM is gone (tap, lease, state). */

#include "vm-runtime-private.h"

#include "banger-error.h"

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

  banger_vm_record_set_str (&rec->state, "running");
  /* The VMM found, not the one recorded: a bangerd killed between
   * launching QEMU and recording its pid left 0 (the crash test). */
  rec->pid = e->pid;
  if (e->agent != NULL) {
    banger_vm_record_set_str (&rec->agent_version,
                              banger_agent_client_get_agent_version (e->agent));
    banger_vm_record_set_str (&rec->boot_id, banger_agent_client_get_boot_id (e->agent));
  }
  banger_vm_record_set_str (&rec->last_error, e->problem ? e->problem : "");
}

static void
adopt_done (AdoptOp *op, BangerAgentClient *agent)
{
  AdoptEdit edit = { agent, op->problem, op->run->pid };

  op->run->busy = FALSE;
  banger_vm_runtime_update_record (op->rt, op->run->id, edit_adopted, &edit);
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
    banger_vm_runtime_write_file (op->run->vm_dir, has_sshd, NULL);
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

static void
adopt_connect (AdoptOp *op)
{
  /* A guest that was still starting may still be booting. */
  banger_vm_run_get_agent_async (
      op->run, op->was_starting ? AGENT_START_TIMEOUT_MS : BANGER_AGENT_ATTACH_TIMEOUT_MS, NULL,
      adopt_agent_cb, op);
}

/* A start cut short by bangerd's end may have been saving its guest as a
 * warm-start snapshot (docs/warm-start.md), which pauses it: whatever
 * became of the save, the guest runs again. A guest that was not paused is
 * left as it is (the driver's continue is a no-op, or refused: ignored). */
static void
adopt_resume_thread (GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
  AdoptOp *op = data;
  BangerVmmInstance inst = { 0 };
  g_autoptr (GError) error = NULL;

  op->run->driver->instance_paths (op->run->vm_dir, &inst);
  inst.pid = op->run->pid;
  if (!op->run->driver->resume_paused (&inst, &error))
    g_debug ("VM %s: continuing its guest after a bangerd restart: %s", op->name, error->message);
  banger_vmm_instance_clear (&inst);
  g_task_return_boolean (task, TRUE);
}

static void
adopt_resumed_cb (GObject *source, GAsyncResult *res, gpointer user_data)
{
  adopt_connect (user_data);
}

static void
adopt_cut_restore_cb (GObject *source, GAsyncResult *res, gpointer user_data)
{
  AdoptOp *op = user_data;
  Teardown *t = g_task_get_task_data (G_TASK (res));
  g_autofree char *problem = g_strdup_printf (
      "bangerd ended while the VM was being restored from a snapshot%s%s", t->problem ? ": " : "",
      t->problem ? t->problem : "");

  banger_vm_clone_marker_remove (op->run->vm_dir);
  banger_vm_run_released (op->run);
  op->run->busy = FALSE;
  banger_vm_runtime_set_state (op->rt, op->run->id, "stopped", problem);
  g_task_return_boolean (op->task, TRUE);
  g_object_unref (op->task);
  adopt_op_free (op);
}

void
banger_vm_runtime_adopt_async (BangerVmRuntime *self, const BangerVmRecord *rec, guint pid,
                               GAsyncReadyCallback callback, gpointer user_data)
{
  AdoptOp *op = g_new0 (AdoptOp, 1);

  op->rt = self;
  op->run = banger_vm_run_get (self, rec->id);
  op->task = banger_vm_runtime_op_task_new (self, callback, user_data);
  op->name = g_strdup (rec->name);
  op->boot_id = g_strdup (rec->boot_id);
  op->was_starting = g_str_equal (rec->state, "starting");
  op->run->driver = banger_vm_runtime_driver_named (rec->driver);
  op->run->busy = TRUE;
  if (op->was_starting && banger_vm_clone_marker_exists (op->run->vm_dir)) {
    /* Ended while it was being restored from a snapshot (docs/warm-start.md):
     * its VMM may still wait for the state it was never given, or run a
     * guest with its template's identity. Never a VM the user had: it is
     * stopped, and its next start boots its disk. */
    Teardown *t = banger_vm_teardown_new (op->run, rec);

    g_warning ("VM %s: bangerd ended while the VM was being restored from a snapshot; stopping "
               "it",
               rec->name);
    t->force = TRUE;
    t->delete_tap = TRUE;
    banger_vm_teardown_run (t, adopt_cut_restore_cb, op);
    return;
  }
  banger_vm_run_watch (op->run, pid);
  if (rec->pid != pid)
    g_warning ("VM %s: recorded pid %u, but its VMM is pid %u", rec->name, rec->pid, pid);
  if (op->was_starting && op->run->driver->resume_paused != NULL) {
    g_autoptr (GTask) task = g_task_new (NULL, NULL, adopt_resumed_cb, op);
    g_task_set_task_data (task, op, NULL);
    g_task_run_in_thread (task, adopt_resume_thread);
    return;
  }
  adopt_connect (op);
}

static void
release_teardown_cb (GObject *source, GAsyncResult *res, gpointer user_data)
{
  GTask *task = user_data;
  VmRun *run = g_task_get_task_data (task);
  Teardown *t = g_task_get_task_data (G_TASK (res));

  banger_vm_run_released (run);
  run->busy = FALSE;
  banger_vm_runtime_set_state (run->rt, run->id, "stopped", t->problem ? t->problem : "");
  g_task_return_boolean (task, TRUE);
  g_object_unref (task);
}

void
banger_vm_runtime_release_async (BangerVmRuntime *self, const BangerVmRecord *rec,
                                 GAsyncReadyCallback callback, gpointer user_data)
{
  GTask *task = banger_vm_runtime_op_task_new (self, callback, user_data);
  VmRun *run = banger_vm_run_get (self, rec->id);
  Teardown *t;

  g_info ("VM %s: its VMM is gone; releasing its tap and lease", rec->name);
  run->driver = banger_vm_runtime_driver_named (rec->driver);
  g_task_set_task_data (task, run, NULL);
  run->busy = TRUE;
  t = banger_vm_teardown_new (run, rec);
  /* Whatever the record says: a bangerd killed between CreateTap and
   * recording the address left a tap the record does not show (the crash
   * test). No tap is NotFound, which DeleteTap's client takes as done. */
  t->delete_tap = TRUE;
  banger_vm_teardown_run (t, release_teardown_cb, task);
}
