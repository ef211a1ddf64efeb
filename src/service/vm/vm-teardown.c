/* Ending a VM and freeing what it held: the tear-down worker (end the VMM,
 * delete the tap, remove a disk or dm-snapshot a failed start made), what
 * follows a VMM that exited on its own, and Delete (the record, the
 * VM's directory, its dm-snapshot and jail). */

#include "vm-runtime-private.h"

#include <errno.h>
#include <glib/gstdio.h>

#include "banger-error.h"
#include "helper-client.h"
#include "remove-tree.h"
#include "ssh-keys.h"
#include "vmm.h"

/* ---- tear-down (worker thread) ---------------------------------------------- */

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

static void
teardown_thread (GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
  Teardown *t = task_data;
  const BangerVmmDriver *driver = t->driver;
  /* Looked up again here: only a pid verified as this VM's VMM is signalled. */
  guint pid = driver->find_pid (t->vm_dir);
  g_autoptr (GString) problems = g_string_new (NULL);

  if (pid != 0 && t->graceful_ms > 0 && banger_vmm_signal_and_wait (pid, 0, t->graceful_ms))
    pid = 0;
  t->exited = pid == 0;
  if (pid != 0 && t->force) {
    g_autoptr (GError) error = NULL;
    g_autofree char *how = NULL;

    /* After a graceful stop that timed out, the driver's own steps, said in
     * the log and LastError (stop_teardown_cb); else (Kill) SIGKILL. A
     * jailed VMM is signalled through the helper. */
    if (driver->stop (t->id, t->vm_dir, pid, t->graceful_ms > 0, t->helper, &how, &error))
      t->forced = g_steal_pointer (&how);
    else
      g_string_append_printf (problems, "%s; ", error->message);
  }
  if (t->delete_tap) {
    g_autoptr (GError) error = NULL;
    if (!banger_helper_delete_tap_if_any (t->helper, t->id, &error))
      g_string_append_printf (problems, "%s; ", error->message);
  }
  if (t->remove_snapshot) {
    g_autoptr (GError) error = NULL;
    if (!banger_vm_remove_snapshot (t->helper, t->id, t->vm_dir, &error))
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

void
banger_vm_teardown_run (Teardown *t, GAsyncReadyCallback callback, gpointer user_data)
{
  g_autoptr (GTask) task = g_task_new (NULL, NULL, callback, user_data);

  g_task_set_task_data (task, t, (GDestroyNotify)teardown_free);
  g_task_run_in_thread (task, teardown_thread);
}

Teardown *
banger_vm_teardown_new (VmRun *run, const BangerVmRecord *rec)
{
  Teardown *t = g_new0 (Teardown, 1);

  t->helper = run->rt->helper;
  t->id = g_strdup (run->id);
  t->vm_dir = g_strdup (run->vm_dir);
  t->driver = run->driver;
  /* A VM holds a lease exactly when this runtime gave it a tap. */
  t->delete_tap = rec != NULL && rec->ipv4 != NULL && *rec->ipv4;
  return t;
}

/* Frees what a VM held once its VMM is gone: the lease (store), the agent
 * connection and the watch. */
void
banger_vm_run_detached (VmRun *run)
{
  banger_vm_run_stop_watch (run);
  banger_vm_run_drop_agent (run);
  run->pid = 0;
}

void
banger_vm_run_released (VmRun *run)
{
  banger_vm_run_detached (run);
  banger_vm_runtime_release_lease (run->rt, run->id);
}

/* A VMM that exited by itself: the guest powered off, panicked or was
 * killed from outside. */
static void
exited_teardown_cb (GObject *source, GAsyncResult *res, gpointer user_data)
{
  VmRun *run = user_data;
  Teardown *t = g_task_get_task_data (G_TASK (res));

  banger_vm_run_released (run);
  run->busy = FALSE;
  banger_vm_runtime_set_state (run->rt, run->id, "stopped", t->problem ? t->problem : "");
}

void
banger_vm_run_vmm_exited (VmRun *run)
{
  g_autoptr (BangerVmRecord) rec
      = banger_store_vm_get_by_id (banger_vm_list_get_store (run->rt->engine), run->id, NULL);

  if (rec == NULL || !banger_vm_state_is_active (rec->state))
    return;
  g_info ("VM %s: its VMM exited on its own; marking it stopped", rec->name);
  run->busy = TRUE;
  banger_vm_run_drop_agent (run);
  banger_vm_teardown_run (banger_vm_teardown_new (run, rec), exited_teardown_cb, run);
}

gboolean
banger_vm_remove_snapshot (BangerHelperClient *client, const char *vm_id, const char *vm_dir,
                           GError **error)
{
  g_autofree char *record = g_build_filename (vm_dir, BANGER_VMM_SNAPSHOT_DEVICE_FILE, NULL);
  g_autoptr (GError) local = NULL;
  g_autoptr (BangerHelperClient) helper = banger_helper_client_connect (client, NULL, &local);

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

/* ---- Delete ------------------------------------------------------------------------ */

static void
delete_record (BangerVmRuntime *self, const char *name, GTask *task)
{
  GError *error = NULL;
  g_autoptr (BangerVmRecord) rec = banger_vm_runtime_find_record (self, name, &error);

  if (rec == NULL || !banger_vm_list_delete_vm (self->engine, name, &error)) {
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
  g_autoptr (BangerHelperClient) helper
      = banger_helper_client_connect (op->rt->helper, NULL, &error);

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

  if (op->snapshot && !banger_vm_remove_snapshot (op->rt->helper, op->id, op->vm_dir, &error)) {
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

/* The VM's jail if it has one (its driver's: Firecracker's, linked from its
 * directory once it ran jailed, or present under the chroot base after a
 * jailed start that failed before the link). NULL for every other VM. */
static char *
vm_jail_dir (BangerVmRuntime *self, const BangerVmRecord *rec, const char *vm_dir)
{
  const BangerVmmDriver *driver = banger_vm_runtime_driver_named (rec->driver);

  return driver->jail_dir (rec->id, vm_dir, self->chroot_base);
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
  GTask *task = banger_vm_runtime_op_task_new (self, callback, user_data);
  GError *error = NULL;
  g_autoptr (BangerVmRecord) rec = banger_vm_runtime_find_record (self, name, &error);
  VmRun *run;

  if (rec == NULL) {
    g_task_return_error (task, error);
    g_object_unref (task);
    return;
  }
  run = banger_vm_run_get (self, rec->id);
  if ((force && (banger_vm_state_is_active (rec->state) || run->start_op != NULL))
      || g_str_equal (rec->state, "suspended")) {
    /* Kill first (aborting a start in flight; a suspended VM's Kill
     * discards its state and releases the tap it keeps), then delete, so
     * no VMM or tap outlives its record. */
    DeleteOp *op = g_new0 (DeleteOp, 1);
    op->rt = self;
    op->name = g_strdup (rec->name);
    op->task = task;
    banger_vm_runtime_kill_async (self, rec->name, delete_killed_cb, op);
    return;
  }
  if (!banger_vm_run_check_idle (run, rec, &error)) {
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
