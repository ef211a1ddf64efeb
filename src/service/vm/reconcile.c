#include "reconcile.h"

#include "vm-runtime.h"
#include "vmm.h"

typedef struct {
  guint pending;
  guint adopted;
  guint released;
} Reconcile;

static void
one_done (GTask *task)
{
  Reconcile *r = g_task_get_task_data (task);

  if (--r->pending > 0)
    return;
  g_info ("reconciled: %u VM(s) still running, %u found stopped", r->adopted, r->released);
  g_task_return_boolean (task, TRUE);
}

static void
vm_done_cb (GObject *source, GAsyncResult *res, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  g_autoptr (GError) error = NULL;

  if (!banger_vm_runtime_op_finish (NULL, res, &error))
    g_warning ("reconciling a VM: %s", error->message);
  one_done (task);
}

void
banger_reconcile_async (BangerVmList *vm_list, BangerVmRuntime *runtime,
                        GAsyncReadyCallback callback, gpointer user_data)
{
  g_autoptr (GTask) task = g_task_new (vm_list, NULL, callback, user_data);
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) vms = banger_vm_list_list_vms (vm_list, &error);
  Reconcile *r = g_new0 (Reconcile, 1);

  g_task_set_task_data (task, r, g_free);
  /* One extra count, dropped below, so the task completes only after the
   * loop even when every VM finishes at once. */
  r->pending = 1;
  if (vms == NULL) {
    g_warning ("cannot list VMs to reconcile: %s", error->message);
    vms = g_ptr_array_new ();
  }
  for (guint i = 0; i < vms->len; i++) {
    const BangerVmRecord *rec = g_ptr_array_index (vms, i);
    const BangerVmmDriver *driver = banger_vm_runtime_driver_named (rec->driver);
    g_autofree char *vm_dir = NULL;
    guint pid;

    if (!banger_vm_state_is_active (rec->state))
      continue;
    vm_dir = banger_vm_dir (banger_vm_list_get_data_dir (vm_list), rec->id);
    /* qemu: its pidfile; Firecracker: a /proc scan for the API socket,
     * then (jailed) the jailer's pidfile. A few /proc reads: quick enough
     * for the main thread, and done before the name is owned anyway. The
     * adopted VM's disk, tap and lease are left exactly as they are. */
    pid = driver->find_pid (vm_dir);
    r->pending++;
    if (g_str_equal (rec->state, "suspending") || g_str_equal (rec->state, "resuming")) {
      /* Finished or undone by what its directory holds (vm-suspend.c). */
      if (pid != 0)
        r->adopted++;
      else
        r->released++;
      banger_vm_runtime_settle_async (runtime, rec, pid, vm_done_cb, g_object_ref (task));
    } else if (pid != 0) {
      r->adopted++;
      banger_vm_runtime_adopt_async (runtime, rec, pid, vm_done_cb, g_object_ref (task));
    } else {
      r->released++;
      banger_vm_runtime_release_async (runtime, rec, vm_done_cb, g_object_ref (task));
    }
  }
  one_done (task);
}

gboolean
banger_reconcile_finish (GAsyncResult *result, GError **error)
{
  return g_task_propagate_boolean (G_TASK (result), error);
}
