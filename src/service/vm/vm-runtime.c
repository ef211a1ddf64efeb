/* The VM runtime (vm-runtime.h): the BangerVmRuntime type and its
 * construction, the runs table (VmRun: what bangerd knows about a live VM),
 * the record edits every operation makes, the VMM watch and runtime.ini.
 * The operations live beside it: vm-start.c, vm-stop.c, vm-teardown.c,
 * vm-adopt.c, vm-agent.c (the agent connection), vm-exec.c. */

#include "vm-runtime-private.h"

#include <errno.h>
#include <glib-unix.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "banger-error.h"
#include "paths.h"
#include "vmm.h"

#define RUNTIME_FILE "runtime.ini"

static void
vm_run_free (VmRun *run)
{
  banger_vm_run_stop_watch (run);
  banger_vm_run_drop_agent (run);
  g_clear_pointer (&run->agent_waiters, g_ptr_array_unref);
  g_clear_pointer (&run->execs, g_hash_table_unref);
  g_free (run->id);
  g_free (run->vm_dir);
  g_free (run);
}

void
banger_vm_runtime_free (BangerVmRuntime *self)
{
  if (self == NULL)
    return;
  g_signal_handlers_disconnect_by_data (self->images, self);
  g_hash_table_unref (self->runs);
  g_free (self->data_dir);
  g_free (self->ssh_dir);
  g_free (self->known_hosts);
  g_free (self->chroot_base);
  g_free (self);
}

typedef struct {
  char *data_dir;
  char *image;
} WarmPrune;

static void
warm_prune_free (WarmPrune *w)
{
  g_free (w->data_dir);
  g_free (w->image);
  g_free (w);
}

static void
warm_prune_thread (GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
  WarmPrune *w = data;
  g_autoptr (GError) error = NULL;
  guint64 freed = 0;
  guint n = banger_warm_cache_prune (w->data_dir, w->image, &freed, &error);

  if (error != NULL)
    g_warning ("removing the warm-start snapshots of image %s: %s", w->image, error->message);
  else if (n > 0)
    g_info ("removed %u warm-start snapshot(s) of image %s (%" G_GUINT64_FORMAT " bytes)", n,
            w->image, freed);
  g_task_return_boolean (task, TRUE);
}

/* An image's snapshots can never be used again once it is gone (a new
 * image of that name is another file, another key): freed at once rather
 * than at the next prune (docs/warm-start.md). VMs made from them keep
 * their own link to the disk. */
static void
image_removed_cb (BangerImageList *images, const char *name, BangerVmRuntime *self)
{
  g_autoptr (GTask) task = g_task_new (NULL, NULL, NULL, NULL);
  WarmPrune *w = g_new0 (WarmPrune, 1);

  w->data_dir = g_strdup (self->data_dir);
  w->image = g_strdup (name);
  g_task_set_task_data (task, w, (GDestroyNotify)warm_prune_free);
  g_task_run_in_thread (task, warm_prune_thread);
}

const BangerVmmDriver *
banger_vm_runtime_driver_named (const char *name)
{
  return banger_vmm_driver_for_record (name);
}

BangerVmRuntime *
banger_vm_runtime_new (BangerVmList *vms, BangerImageList *images, BangerDnsResponder *dns,
                       BangerHelperClient *helper, BangerConfig *config)
{
  BangerVmRuntime *self = g_new0 (BangerVmRuntime, 1);

  self->engine = vms;
  self->images = images;
  self->dns = dns;
  self->helper = helper;
  self->data_dir = g_strdup (banger_config_get_data_dir (config));
  self->warm_start = banger_config_get_warm_start (config);
  g_signal_connect (images, "image-removed", G_CALLBACK (image_removed_cb), self);
  self->ssh_dir = g_build_filename (self->data_dir, "ssh", NULL);
  self->known_hosts = g_build_filename (self->ssh_dir, "known_hosts", NULL);
  self->runs = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, (GDestroyNotify)vm_run_free);
  /* [firecracker] of the config (docs/firecracker.md), read once: a changed
   * setting applies from bangerd's next start. */
  self->jailer = banger_config_get_jailer (config);
  self->chroot_base = g_strdup (banger_config_get_jail_base (config));
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
  run->driver = banger_vmm_driver_for_record (""); /* until the record says */
  run->agent_waiters = g_ptr_array_new ();
  run->execs = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_object_unref);
  g_hash_table_insert (self->runs, run->id, run);
  return run;
}

/* ---- records ------------------------------------------------------------- */

BangerVmRecord *
banger_vm_runtime_find_record (BangerVmRuntime *self, const char *name, GError **error)
{
  return banger_vm_list_find_vm (self->engine, name, error);
}

void
banger_vm_runtime_update_record (BangerVmRuntime *self, const char *id, RecordEdit edit,
                                 gpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (BangerVmRecord) rec
      = banger_store_vm_get_by_id (banger_vm_list_get_store (self->engine), id, &error);

  if (rec == NULL) {
    g_debug ("VM %s: record gone: %s", id, error->message);
    return;
  }
  edit (rec, data);
  if (!banger_vm_list_update_vm (self->engine, rec, &error))
    g_warning ("VM %s: cannot store its new state: %s", rec->name, error->message);
}

void
banger_vm_record_set_str (char **field, const char *value)
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

  banger_vm_record_set_str (&rec->state, c->state);
  if (c->last_error != NULL)
    banger_vm_record_set_str (&rec->last_error, c->last_error);
  if (!banger_vm_state_is_active (c->state))
    rec->pid = 0;
}

void
banger_vm_runtime_set_state (BangerVmRuntime *self, const char *id, const char *state,
                             const char *last_error)
{
  StateChange c = { state, last_error };
  banger_vm_runtime_update_record (self, id, edit_state, &c);
}

void
banger_vm_runtime_release_lease (BangerVmRuntime *self, const char *id)
{
  g_autoptr (GError) error = NULL;

  if (!banger_store_lease_release (banger_vm_list_get_store (self->engine), id, &error))
    g_debug ("VM %s: releasing its lease: %s", id, error->message);
}

/* ---- the VMM watch --------------------------------------------------------- */

static gboolean
pidfd_ready_cb (int fd, GIOCondition condition, gpointer user_data)
{
  VmRun *run = user_data;

  g_info ("VM %s: VMM (pid %u) exited", run->id, run->pid);
  run->watch_id = 0;
  banger_vm_run_stop_watch (run);
  if (run->on_vmm_exit != NULL) {
    void (*func) (gpointer) = run->on_vmm_exit;
    run->on_vmm_exit = NULL;
    func (run->on_vmm_exit_data);
  } else if (!run->busy) {
    banger_vm_run_vmm_exited (run);
  }
  return G_SOURCE_REMOVE;
}

/* A pidfd turns readable when the process exits, whoever its parent is
 * (QEMU daemonizes, so it is not bangerd's child). */
void
banger_vm_run_watch (VmRun *run, guint pid)
{
  int fd;

  banger_vm_run_stop_watch (run);
  run->pid = pid;
  fd = (int)syscall (SYS_pidfd_open, (pid_t)pid, 0);
  if (fd < 0) {
    g_warning ("VM %s: cannot watch VMM pid %u: %s", run->id, pid, g_strerror (errno));
    return;
  }
  run->pidfd = fd;
  run->watch_id = g_unix_fd_add (fd, G_IO_IN, pidfd_ready_cb, run);
}

void
banger_vm_run_stop_watch (VmRun *run)
{
  g_clear_handle_id (&run->watch_id, g_source_remove);
  if (run->pidfd >= 0) {
    close (run->pidfd);
    run->pidfd = -1;
  }
}

/* ---- runtime.ini: what the record does not hold ------------------------------ */

void
banger_vm_runtime_write_file (const char *vm_dir, gboolean has_sshd, const char *tap)
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

/* ---- shared by the operations -------------------------------------------- */

gboolean
banger_vm_run_check_idle (VmRun *run, const BangerVmRecord *rec, GError **error)
{
  if (run->busy) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_BUSY,
                 "VM “%s” is %s: another operation on it is in progress", rec->name, rec->state);
    return FALSE;
  }
  return TRUE;
}

GTask *
banger_vm_runtime_op_task_new (BangerVmRuntime *self, GAsyncReadyCallback callback,
                               gpointer user_data)
{
  /* The engine stays alive while an operation runs. */
  GTask *task = g_task_new (self->engine, NULL, callback, user_data);
  g_task_set_source_tag (task, banger_vm_runtime_op_finish);
  return task;
}

gboolean
banger_vm_runtime_op_finish (BangerVmRuntime *self, GAsyncResult *result, GError **error)
{
  return g_task_propagate_boolean (G_TASK (result), error);
}
