/* Start (and the start half of Restart): prepare (boot assets, keys, the
 * network) in a worker, claim the lease, launch the VMM in a worker, wait
 * for the guest agent (with the boot-stall watchdog), hand it the keys;
 * on any failure undo all of it through the tear-down (vm-teardown.c). */

#include "vm-runtime-private.h"

#include <glib/gstdio.h>
#include <sys/random.h>

#include "banger-error.h"
#include "boot-assets.h"
#include "console-log.h"
#include "dns-responder.h"
#include "helper-client.h"
#include "net-lease.h"
#include "paths.h"
#include "ssh-keys.h"
#include "store-images.h"
#include "validate.h"
#include "vmm.h"

/* A guest whose console stays silent this long before its agent answers
 * is stuck, where the driver says boots can stall (QEMU: under TCG a kernel
 * very rarely stalls early in boot, with nothing printed after the stall):
 * its VMM is started once more. */
#define BOOT_STALL_S 15

/* A guest restored from a snapshot answers within a second or so; one that
 * has not in this time is broken (a corrupt state that QEMU loaded) and is
 * booted instead. Generous: a loaded CI machine. */
#define WARM_AGENT_TIMEOUT_MS 30000

/* Restores under way at once. A restore holds its worker thread until the
 * guest runs (QEMU loading its state), and a burst of them on a small,
 * busy host (the load test: 20 starts beside 100 clients) starved the
 * worker pool every start needs; beyond this many, a start boots instead,
 * which holds a worker only until QEMU daemonizes. */
#define WARM_MAX_RESTORES 4
static gint warm_restoring;

/* Snapshot keys a start is saving now: the first boot of a key saves it,
 * the VMs starting beside it boot without saving the same thing again. */
static GMutex warm_saving_lock;
static GHashTable *warm_saving;

static gboolean
warm_claim_save (const char *key)
{
  gboolean claimed;

  g_mutex_lock (&warm_saving_lock);
  if (warm_saving == NULL)
    warm_saving = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  claimed = g_hash_table_add (warm_saving, g_strdup (key));
  g_mutex_unlock (&warm_saving_lock);
  return claimed;
}

static void
warm_release_save (const char *key)
{
  g_mutex_lock (&warm_saving_lock);
  g_hash_table_remove (warm_saving, key);
  g_mutex_unlock (&warm_saving_lock);
}

/* ---- Start ------------------------------------------------------------------- */

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
  if (op->warm_save)
    warm_release_save (op->warm_key);
  g_free (op->warm_key);
  g_clear_pointer (&op->warm_entry, banger_warm_entry_free);
  g_free (op->net_ip);
  g_free (op->net_gw);
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

#define CLONE_MARKER "warm-clone.ini"

void
banger_vm_clone_marker_write (const char *vm_dir, const char *ip_cidr, const char *gw)
{
  g_autoptr (GKeyFile) kf = g_key_file_new ();
  g_autofree char *path = g_build_filename (vm_dir, CLONE_MARKER, NULL);
  g_autoptr (GError) error = NULL;

  g_key_file_set_string (kf, "identity", "ip", ip_cidr != NULL ? ip_cidr : "");
  g_key_file_set_string (kf, "identity", "gw", gw != NULL ? gw : "");
  if (!g_key_file_save_to_file (kf, path, &error))
    g_warning ("%s", error->message);
}

gboolean
banger_vm_clone_marker_exists (const char *vm_dir)
{
  g_autofree char *path = g_build_filename (vm_dir, CLONE_MARKER, NULL);

  return g_file_test (path, G_FILE_TEST_EXISTS);
}

void
banger_vm_clone_marker_remove (const char *vm_dir)
{
  g_autofree char *path = g_build_filename (vm_dir, CLONE_MARKER, NULL);

  g_unlink (path);
}

/* What a VM's warm-start snapshot key is made of (warm-cache.h): the
 * lookup and the save must hash the same inputs. */
static BangerWarmInputs
warm_inputs (const StartOp *op)
{
  return (BangerWarmInputs){
    .driver = op->driver,
    .image = op->assets->image_name,
    .kernel = op->assets->kernel_name,
    .rootfs = op->assets->rootfs_path,
    .kernel_path = op->assets->kernel_path,
    .initrd_path = op->assets->initrd_path,
    .vcpus = op->rec->vcpus,
    .memory_mib = op->rec->memory_mib,
    .disk_mib = op->rec->disk_mib,
    .network = op->tap != NULL,
    .jailed = op->jailed,
  };
}

/* Part of step 1 (worker), for a VM's first start: its snapshot key; the
 * snapshot to restore if there is a usable one, else whether this boot
 * saves one. A broken entry is removed (and saved anew by this boot). */
static void
start_warm_lookup (StartOp *op)
{
  g_autoptr (GError) error = NULL;
  BangerWarmInputs in = warm_inputs (op);

  op->warm_key = banger_warm_cache_key (&in, &error);
  if (op->warm_key == NULL) {
    g_debug ("VM %s: no warm start: %s", op->rec->name, error->message);
    return;
  }
  op->warm_entry = banger_warm_cache_lookup (op->rt->data_dir, op->warm_key, &error);
  if (op->warm_entry != NULL)
    return;
  if (error != NULL) {
    g_autoptr (GError) rm_error = NULL;
    g_warning ("VM %s: %s; removing it, the VM boots instead", op->rec->name, error->message);
    if (!banger_warm_cache_remove (op->rt->data_dir, op->warm_key, &rm_error))
      g_warning ("%s", rm_error->message);
  }
  op->warm_save = warm_claim_save (op->warm_key);
}

/* Step 1 (worker): what to boot, the network, the keys. */
static void
start_prepare_thread (GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
  StartOp *op = task_data;
  GError *error = NULL;
  g_autoptr (GError) helper_error = NULL;
  g_autoptr (BangerHelperClient) helper = NULL;
  g_autoptr (BangerSshKeygen) keygen = NULL;
  guint64 host_mib = host_memory_mib ();

  if (host_mib > 0 && op->rec->memory_mib > host_mib) {
    g_task_return_new_error (task, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
                             "the VM asks for %u MiB of memory but this host has %" G_GUINT64_FORMAT
                             " MiB",
                             op->rec->memory_mib, host_mib);
    return;
  }
  op->assets = banger_image_list_resolve_boot_assets (op->rt->images, op->rec->image,
                                                      op->rec->kernel, cancellable, &error);
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
  op->disk_existed = op->driver->has_disk (op->run->vm_dir);
  if (op->resume) {
    g_autofree char *state = g_build_filename (op->run->vm_dir, BANGER_VM_SUSPEND_DIR, NULL);

    if (!banger_vmm_state_complete (state) || !op->disk_existed) {
      g_task_return_new_error (task, BANGER_ERROR, BANGER_ERROR_NOT_FOUND,
                               "its saved state (%s) or its disk is missing; “vm stop” "
                               "discards what is left, and a start then boots it",
                               state);
      return;
    }
  }

  if (!op->resume) {
    /* (A resumed guest already has its keys: it continues where it was.)
     * VMs starting together must not both run ssh-keygen for the one
     * user key. */
    static GMutex user_key_lock;
    g_mutex_lock (&user_key_lock);
    op->user_pub = banger_ssh_ensure_user_key (op->rt->ssh_dir, &error);
    g_mutex_unlock (&user_key_lock);
    /* The VM's host key is made while the helper sets up the network
     * (finished below): part of every start, warm ones included. */
    if (op->user_pub == NULL
        || (keygen = banger_ssh_new_host_key_begin (op->run->vm_dir, &error)) == NULL) {
      g_prefix_error (&error, "ssh keys: ");
      g_task_return_error (task, error);
      return;
    }
  }

  helper = banger_helper_client_connect (op->rt->helper, cancellable, &helper_error);
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
    banger_dns_route_vm_domain (op->rt->dns, helper);
    op->tap = banger_helper_client_create_tap (helper, op->rec->id, &error);
    if (op->tap == NULL) {
      g_prefix_error (&error, "network: ");
      g_task_return_error (task, error);
      return;
    }
  }
  /* Jailed or direct is the driver's decision (Firecracker's: by the
   * [firecracker] jailer setting and whether the helper answers). */
  if (!op->driver->use_jail (op->rt->jailer, helper == NULL ? helper_error : NULL, &op->jailed,
                             &error)) {
    g_task_return_error (task, error);
    return;
  }
  if (keygen != NULL && !banger_ssh_new_host_key_finish (keygen, op->run->vm_dir, &op->host_priv,
                                                         &op->host_pub, &error)) {
    g_prefix_error (&error, "ssh keys: ");
    g_task_return_error (task, error);
    return;
  }
  /* The tap's address is claimed from the main loop once it is leased. */
  if (op->tap != NULL)
    op->helper = g_steal_pointer (&helper);
  if (op->warm_allowed && !op->disk_existed)
    start_warm_lookup (op);
  g_task_return_boolean (task, TRUE);
}

/* banger_disk_copy()'s snapshot step, for a driver that uses one (a direct
 * Firecracker; worker thread): the helper's CreateSnapshot. Any failure means "copy instead";
 * Unsupported (no device-mapper) is the usual answer and only logged at
 * debug level. */
static char *
snapshot_through_helper (const char *origin, gpointer user_data, GError **error)
{
  StartOp *op = user_data;
  g_autoptr (GError) local = NULL;
  g_autoptr (BangerHelperClient) helper
      = banger_helper_client_connect (op->rt->helper, NULL, &local);
  g_autofree char *record
      = g_build_filename (op->config.vm_dir, BANGER_VMM_SNAPSHOT_DEVICE_FILE, NULL);
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

/* Step 3 (worker) from a snapshot: the VM's disk on the snapshot's, the
 * VMM restoring its state with the template's command line. FALSE (all of
 * it undone, the snapshot removed, a warning logged) when that fails: the
 * caller boots instead. */
static gboolean
start_warm_restore (StartOp *op)
{
  const BangerVmmDriver *driver = op->driver;
  g_autoptr (GError) error = NULL;
  g_autoptr (GError) rm_error = NULL;
  g_autofree char *disk = g_build_filename (op->warm_entry->dir, BANGER_WARM_DISK_FILE, NULL);
  char *own_args = op->config.kernel_args;
  gboolean ok;

  if (g_atomic_int_add (&warm_restoring, 1) >= WARM_MAX_RESTORES) {
    g_atomic_int_add (&warm_restoring, -1);
    g_info ("VM %s: %d restores under way: booting instead", op->rec->name, WARM_MAX_RESTORES);
    g_clear_pointer (&op->warm_entry, banger_warm_entry_free);
    return FALSE;
  }

  /* The guest already booted with the template's arguments; the command
   * line must equal the template's for the state to load, and the clone's
   * own identity arrives through the agent instead. */
  op->config.kernel_args = g_strdup (op->warm_entry->kernel_args);
  op->config.incoming_state = g_strdup (op->warm_entry->dir);
  /* Until its identity is applied: a bangerd restarted meanwhile sends it
   * (vm-adopt.c). */
  banger_vm_clone_marker_write (op->run->vm_dir, op->net_ip, op->net_gw);
  /* A jailed clone: the helper puts the state and the clone's own disk
   * into its jail (docs/warm-start.md). */
  ok = driver->prepare_clone_disk (&op->config, &op->inst, disk, &error)
       && (op->jailed ? driver->launch_jailed (&op->config, &op->inst, op->chroot_base,
                                               op->rt->helper, &error)
                      : driver->launch (&op->config, &op->inst, &error));
  g_free (op->config.kernel_args);
  op->config.kernel_args = own_args;
  g_clear_pointer (&op->config.incoming_state, g_free);
  g_atomic_int_add (&warm_restoring, -1);
  if (ok) {
    op->warm_restored = TRUE;
    g_info ("VM %s: restored from snapshot %s", op->rec->name, op->warm_entry->key);
    return TRUE;
  }
  g_warning ("VM %s: starting from snapshot %s failed (%s); removing the snapshot, the VM boots "
             "instead",
             op->rec->name, op->warm_entry->dir, error->message);
  if (op->inst.disk_path != NULL)
    g_unlink (op->inst.disk_path);
  banger_vm_clone_marker_remove (op->run->vm_dir);
  if (!banger_warm_cache_remove (op->rt->data_dir, op->warm_entry->key, &rm_error))
    g_warning ("%s", rm_error->message);
  g_clear_pointer (&op->warm_entry, banger_warm_entry_free);
  /* This boot saves a good one again. */
  op->warm_save = warm_claim_save (op->warm_key);
  op->config.ram_shared = op->warm_save;
  return FALSE;
}

/* Step 3 (worker): the disk and the VMM. */
static void
start_launch_thread (GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
  StartOp *op = task_data;
  const BangerVmmDriver *driver = op->driver;
  GError *error = NULL;

  if (op->warm_entry != NULL && start_warm_restore (op))
    goto launched;
  /* Booted: whatever an earlier, cut-short restore left says nothing now. */
  banger_vm_clone_marker_remove (op->run->vm_dir);
  /* The driver uses the helper's dm-snapshot where it can (a direct
   * Firecracker). */
  if (!driver->prepare_start_disk (&op->config, &op->inst, op->jailed, snapshot_through_helper, op,
                                   &error)) {
    g_prefix_error (&error, "disk: ");
    g_task_return_error (task, error);
    return;
  }
  if (op->jailed
          ? !driver->launch_jailed (&op->config, &op->inst, op->chroot_base, op->rt->helper, &error)
          : !driver->launch (&op->config, &op->inst, &error)) {
    g_prefix_error (&error, "%s%s: ", driver->display_name, op->jailed ? " (jailed)" : "");
    g_task_return_error (task, error);
    return;
  }
launched:
  g_task_return_boolean (task, TRUE);
}

static void start_fail (StartOp *op, GError *error);

static void start_vm_launch (BangerVmRuntime *self, const BangerVmRecord *rec, GTask *task,
                             guint agent_timeout_ms, gboolean retried, gboolean warm);

/* What the console log says last, for error messages: the kernel's panic
 * line if there is one, else the last non-empty line; read from the log's
 * end only (console-log.h). */
#define console_tail banger_console_log_tail_line

static void
edit_failed (BangerVmRecord *rec, gpointer data)
{
  banger_vm_record_set_str (&rec->state, "error");
  banger_vm_record_set_str (&rec->last_error, data);
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
  /* A failed resume stays suspended unless its restored guest ran (its
   * state is spent then, and its disk moved on). */
  if (op->resume && !op->killed && !op->resume_spent) {
    /* The saved state and the lease stay: the VM is suspended as before,
     * and LastError says why it did not resume. */
    banger_vm_run_detached (op->run);
    op->run->busy = FALSE;
    banger_vm_runtime_set_state (op->rt, op->rec->id, "suspended", error->message);
    g_task_return_error (op->task, g_error_copy (error));
    g_object_unref (op->task);
    return;
  }
  banger_vm_run_released (op->run);
  op->run->busy = FALSE;
  if (op->killed) {
    if (op->resume) {
      /* Kill discards a suspended VM's state, also mid-resume. */
      g_autofree char *dir = banger_vm_suspend_dir_reset (op->run->vm_dir, NULL);
      if (dir != NULL)
        g_rmdir (dir);
    }
    /* Killed while starting: stopped, like any killed VM. */
    banger_vm_runtime_set_state (op->rt, op->rec->id, "stopped", t->problem ? t->problem : "");
    for (guint i = 0; op->kill_waiters != NULL && i < op->kill_waiters->len; i++) {
      GTask *waiter = g_ptr_array_index (op->kill_waiters, i);
      g_task_return_boolean (waiter, TRUE);
      g_object_unref (waiter);
    }
  } else if (op->warm_failed && !op->retried) {
    /* A clone that failed after its restore: its snapshot is removed and
     * the VM boots, for the same caller (as after a stall, below). */
    BangerVmRuntime *rt = op->rt;
    GTask *task = op->task;
    guint timeout_ms = op->agent_timeout_ms;
    g_autoptr (BangerVmRecord) rec = banger_vm_record_copy (op->rec);
    g_autoptr (GError) rm_error = NULL;

    g_warning ("VM %s: %s; removing the snapshot, the VM boots instead", rec->name,
               error->message);
    banger_vm_clone_marker_remove (op->run->vm_dir);
    if (!banger_warm_cache_remove (rt->data_dir, op->warm_key, &rm_error))
      g_warning ("%s", rm_error->message);
    g_task_set_task_data (task, NULL, NULL);
    start_vm_launch (rt, rec, task, timeout_ms, TRUE, FALSE);
    return;
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
    start_vm_launch (rt, rec, task, timeout_ms, TRUE, FALSE);
    return;
  } else {
    message = g_strdup (error->message);
    banger_vm_runtime_update_record (op->rt, op->rec->id, edit_failed, message);
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
  Teardown *t = banger_vm_teardown_new (op->run, NULL);

  banger_error_convert (&error);
  if (op->agent_error == NULL) {
    g_prefix_error (&error, "%s VM “%s” failed: ", op->resume ? "resuming" : "starting",
                    op->rec->name);
    g_warning ("%s", error->message);
  }
  g_task_set_task_data (op->task, error, (GDestroyNotify)g_error_free);
  op->run->on_vmm_exit = NULL;
  banger_vm_run_drop_agent (op->run);
  t->force = TRUE;
  t->delete_tap = op->tap != NULL;
  if (!op->disk_existed && g_strcmp0 (op->inst.disk_mode, "dm-snapshot") == 0)
    t->remove_snapshot = TRUE;
  else if (!op->disk_existed && op->inst.disk_path != NULL)
    t->remove_disk = g_strdup (op->inst.disk_path);
  /* Give a VMM whose guest just died a moment to be seen exiting. */
  if (op->agent_error != NULL)
    t->graceful_ms = 1000;
  banger_vm_teardown_run (t, start_failed_teardown_cb, op);
}

static void
edit_running (BangerVmRecord *rec, gpointer data)
{
  StartOp *op = data;

  banger_vm_record_set_str (&rec->state, "running");
  banger_vm_record_set_str (&rec->last_error, "");
  banger_vm_record_set_str (&rec->agent_version, banger_agent_client_get_agent_version (op->agent));
  banger_vm_record_set_str (&rec->boot_id, banger_agent_client_get_boot_id (op->agent));
  /* A resumed guest goes on with the boot it had. */
  if (!op->resume)
    rec->started_at = g_get_real_time () / G_USEC_PER_SEC;
  rec->pid = op->inst.pid;
}

static void
start_done (StartOp *op, gboolean has_sshd)
{
  if (start_check_killed (op))
    return;
  banger_vm_runtime_write_file (op->run->vm_dir, op->assets->image_has_sshd || has_sshd, op->tap);
  banger_vm_run_set_agent (op->run, op->agent);
  op->run->on_vmm_exit = NULL;
  op->run->busy = FALSE;
  op->run->start_op = NULL;
  banger_vm_runtime_update_record (op->rt, op->rec->id, edit_running, op);
  g_info ("VM %s running (pid %u, boot id %s, agent %s)", op->rec->name, op->inst.pid,
          banger_agent_client_get_boot_id (op->agent),
          banger_agent_client_get_agent_version (op->agent));
  g_task_return_boolean (op->task, TRUE);
  g_object_unref (op->task);
}

static void
start_setup_cb (GObject *source, GAsyncResult *res, gpointer user_data)
{
  StartOp *op = user_data;
  GError *error = NULL;
  gboolean has_sshd = FALSE, applied = FALSE;

  if (!banger_agent_client_setup_identity_finish (op->agent, res, &has_sshd, &applied, &error)) {
    if (op->killed) {
      g_clear_error (&error);
      start_check_killed (op);
      return;
    }
    g_prefix_error (&error, "guest agent setup: ");
    /* A clone that cannot take its own identity is booted instead. */
    op->warm_failed = op->warm_restored;
    start_fail (op, error);
    return;
  }
  if (op->warm_restored && !applied) {
    op->warm_failed = TRUE;
    start_fail (op, g_error_new (BANGER_ERROR, BANGER_ERROR_FAILED,
                                 "the guest agent restored from snapshot %s did not take the "
                                 "VM's own identity",
                                 op->warm_key));
    return;
  }
  if (op->warm_restored)
    banger_vm_clone_marker_remove (op->run->vm_dir);
  start_done (op, has_sshd);
}

/* Step 5 (main): the keys, and for a clone (@clone) its own identity: MAC,
 * address, hostname, a fresh machine-id, entropy and the time; after a
 * save the time alone (the guest's clock stood still while it was paused). */
void
banger_vm_clone_identity_init (VmCloneIdentity *c, const char *name, const char *mac,
                               const char *ip_cidr, const char *gw)
{
  guint8 seed[64];

  memset (c, 0, sizeof *c);
  /* getrandom() from the host kernel's CRNG: never the template's state. */
  if (getrandom (seed, sizeof seed, 0) == (ssize_t)sizeof seed)
    c->entropy = g_bytes_new (seed, sizeof seed);
  else
    g_warning ("VM %s: getrandom: %s; no entropy for its RNG", name, g_strerror (errno));
  memset (seed, 0, sizeof seed);
  if (getrandom (seed, 16, 0) == 16) {
    GString *hex = g_string_new (NULL);
    for (guint i = 0; i < 16; i++)
      g_string_append_printf (hex, "%02x", seed[i]);
    c->machine_id = g_string_free (hex, FALSE);
  }
  c->id.mac = ip_cidr != NULL ? mac : NULL;
  c->id.ip_cidr = ip_cidr;
  c->id.gw = gw;
  c->id.hostname = name;
  c->id.machine_id = c->machine_id;
  c->id.entropy = c->entropy;
  c->id.clock_ns = (guint64)g_get_real_time () * 1000;
}

void
banger_vm_clone_identity_clear (VmCloneIdentity *c)
{
  g_clear_pointer (&c->entropy, g_bytes_unref);
  g_clear_pointer (&c->machine_id, g_free);
}

static void
start_setup (StartOp *op, gboolean clone)
{
  VmCloneIdentity c = { 0 };
  BangerAgentIdentity *id = NULL;

  if (clone) {
    banger_vm_clone_identity_init (&c, op->rec->name, op->rec->mac, op->net_ip, op->net_gw);
    id = &c.id;
  } else if (op->warm_save && banger_agent_client_get_has_identity (op->agent)) {
    /* The clock alone: it stood still while the guest was paused. */
    c.id.clock_ns = (guint64)g_get_real_time () * 1000;
    id = &c.id;
  }
  banger_agent_client_setup_identity_async (op->agent, op->user_pub, op->host_priv, op->host_pub,
                                            id, NULL, start_setup_cb, op);
  banger_vm_clone_identity_clear (&c);
}

static void
start_warm_saved_cb (GObject *source, GAsyncResult *res, gpointer user_data)
{
  StartOp *op = user_data;
  g_autoptr (GError) error = NULL;

  if (!g_task_propagate_boolean (G_TASK (res), &error))
    g_warning ("VM %s: no snapshot for warm starts: %s", op->rec->name, error->message);
  if (start_check_killed (op))
    return;
  start_setup (op, FALSE);
}

/* Step 4b (worker), on a key's first boot: the guest, booted and idle,
 * saved as the snapshot its later clones restore. */
static void
start_warm_save_thread (GTask *task, gpointer source, gpointer task_data,
                        GCancellable *cancellable)
{
  StartOp *op = task_data;
  GError *error = NULL;
  gint64 t0 = g_get_monotonic_time ();
  BangerWarmInputs in = warm_inputs (op);

  /* A jailed VM's state comes out of its jail through the helper. */
  op->inst.helper = op->rt->helper;
  if (!banger_warm_cache_save (op->rt->data_dir, op->warm_key, &in, &op->config, &op->inst,
                               banger_agent_client_get_agent_version (op->agent), &error)) {
    g_task_return_error (task, error);
    return;
  }
  g_info ("VM %s: saved snapshot %s for warm starts in %.2f s", op->rec->name, op->warm_key,
          (double)(g_get_monotonic_time () - t0) / G_USEC_PER_SEC);
  g_task_return_boolean (task, TRUE);
}

/* Saves the snapshot before the VM's own setup (its keys): what clones
 * share is then only what every VM of the image has. An agent that cannot
 * take a clone's identity is not saved. */
static void
start_warm_save (StartOp *op)
{
  g_autoptr (GTask) task = NULL;

  if (!banger_agent_client_get_has_identity (op->agent)) {
    g_info ("VM %s: its agent (%s) cannot give clones their own identity: no snapshot",
            op->rec->name, banger_agent_client_get_agent_version (op->agent));
    start_setup (op, FALSE);
    return;
  }
  task = g_task_new (NULL, NULL, start_warm_saved_cb, op);
  g_task_set_task_data (task, op, NULL);
  g_task_run_in_thread (task, start_warm_save_thread);
}

static void
start_clock_cb (GObject *source, GAsyncResult *res, gpointer user_data)
{
  StartOp *op = user_data;

  g_task_propagate_boolean (G_TASK (res), NULL);
  start_done (op, banger_vm_runtime_read_has_sshd (op->run->vm_dir));
}

static void
start_agent_cb (GObject *source, GAsyncResult *res, gpointer user_data)
{
  StartOp *op = user_data;
  GError *error = NULL;

  g_clear_handle_id (&op->stall_source, g_source_remove);
  op->agent = banger_vm_agent_connect_finish (res, &error);
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
  if (op->agent == NULL && op->warm_restored && !op->vmm_exited) {
    op->warm_failed = TRUE;
    op->agent_error = g_strdup_printf ("starting VM “%s” from snapshot %s failed: the restored "
                                       "guest's agent did not answer: %s",
                                       op->rec->name, op->warm_key, error->message);
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
  if (op->resume) {
    /* The same guest as before the suspend: its keys and sshd are set up;
     * only its clock is behind. */
    banger_vm_resume_set_clock_async (op->agent, op->rec->name, start_clock_cb, op);
    return;
  }
  if (op->warm_restored) {
    start_setup (op, TRUE);
    return;
  }
  if (op->warm_save) {
    start_warm_save (op);
    return;
  }
  start_setup (op, FALSE);
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
  banger_vm_record_set_str (&rec->disk_mode, op->inst.disk_mode);
  banger_vm_record_set_str (&rec->driver, op->driver->name);
}

static void
edit_driver (BangerVmRecord *rec, gpointer data)
{
  banger_vm_record_set_str (&rec->driver, data);
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
  banger_vm_runtime_update_record (op->rt, op->rec->id, edit_launched, op);
  if (op->resume) {
    /* The guest runs again (launch() returns only then) and its disk moves
     * on: the state is spent, and must never be restored again. Removed
     * before anything else can fail, so a state on disk always means a
     * guest that has not run since (reconcile relies on it). */
    g_autofree char *dir = banger_vm_suspend_dir_reset (op->run->vm_dir, NULL);
    if (dir != NULL)
      g_rmdir (dir);
    op->resume_spent = TRUE;
  }
  if (start_check_killed (op))
    return;
  banger_vm_run_watch (op->run, op->inst.pid);
  /* A guest that dies while we wait for its agent fails the start at once
   * instead of after the whole timeout. */
  op->agent_cancel = g_cancellable_new ();
  op->run->on_vmm_exit = start_vmm_exited;
  op->run->on_vmm_exit_data = op;
  /* A restored guest prints nothing on its console: no stall watch, but a
   * shorter wait (WARM_AGENT_TIMEOUT_MS) before booting it instead. */
  banger_vm_agent_connect_async (op->driver, op->inst.agent_socket,
                                 op->warm_restored
                                     ? MIN (op->agent_timeout_ms, WARM_AGENT_TIMEOUT_MS)
                                     : op->agent_timeout_ms,
                                 op->agent_cancel, start_agent_cb, op);
  /* A restored guest prints nothing: silence is no stall there (a resume,
   * a warm start). */
  if (op->driver->watch_boot_stall && !op->resume && !op->warm_restored
      && op->agent_timeout_ms > BOOT_STALL_S * 1000) {
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
    banger_vm_runtime_update_record (op->rt, op->rec->id, edit_driver, (gpointer)op->driver->name);
  if (op->driver->needs_vmlinux) {
    /* The driver boots only an ELF vmlinux, never a bzImage. */
    g_autoptr (BangerKernelRecord) krn = banger_store_kernel_get_by_name (
        banger_vm_list_get_store (op->rt->engine), op->assets->kernel_name, &error);
    if (krn == NULL) {
      g_prefix_error (&error, "boot assets: ");
      start_fail (op, error);
      return;
    }
    if (*krn->vmlinux_path == '\0') {
      start_fail (op, g_error_new (BANGER_ERROR, BANGER_ERROR_UNSUPPORTED,
                                   "kernel “%s” has no ELF vmlinux, and %s cannot boot "
                                   "its %s (import it again: a bzImage is unpacked on import)",
                                   krn->name, op->driver->display_name, krn->path));
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
  BangerStore *store = banger_vm_list_get_store (op->rt->engine);
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
    /* A resumed guest keeps the address it has: no other one will do. */
    if (g_error_matches (error, BANGER_ERROR, BANGER_ERROR_EXISTS) && !op->resume
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
    op->net_ip = g_strdup_printf ("%s/%u", ip, prefix);
    op->net_gw = g_strdup (gw);
  }
  g_string_append_printf (args, "banger.hostname=%s", op->rec->name);

  alias = g_strdup_printf ("banger-%s", op->rec->id);
  if (!op->resume && !banger_ssh_pin_host_key (op->rt->known_hosts, alias, op->host_pub, &error)) {
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
  /* The boot that saves the key's snapshot keeps the guest memory where the
   * save can write it as a file the clones map (docs/warm-start.md). */
  op->config.ram_shared = op->warm_save;
  if (op->resume)
    op->config.incoming_state = g_build_filename (op->run->vm_dir, BANGER_VM_SUSPEND_DIR, NULL);
  op->driver->instance_paths (op->run->vm_dir, &op->inst);

  task = g_task_new (NULL, NULL, start_launched_cb, op);
  g_task_set_task_data (task, op, NULL);
  g_task_run_in_thread (task, start_launch_thread);
}

static void
edit_starting (BangerVmRecord *rec, gpointer data)
{
  StartOp *op = data;

  banger_vm_record_set_str (&rec->state, op->resume ? "resuming" : "starting");
  banger_vm_record_set_str (&rec->last_error, "");
}

/* Starts @rec with the caller's @task (which it completes). */
void
banger_vm_runtime_start_vm (BangerVmRuntime *self, const BangerVmRecord *rec, GVariant *options,
                            GTask *task)
{
  static const char *const allowed[] = { "timeout", "u", "warm", "b", NULL };
  VmRun *run = banger_vm_run_get (self, rec->id);
  GError *error = NULL;
  guint timeout_s = 0;
  gboolean warm = self->warm_start;

  if (options != NULL && !banger_validate_options (options, allowed, &error)) {
    g_task_return_error (task, error);
    g_object_unref (task);
    return;
  }
  if (options != NULL) {
    g_variant_lookup (options, "timeout", "u", &timeout_s);
    /* Off for this start whatever the config says; on only where the
     * config allows it. */
    if (g_variant_lookup (options, "warm", "b", &warm))
      warm = warm && self->warm_start;
  }
  if (!banger_vm_run_check_idle (run, rec, &error)) {
    g_task_return_error (task, error);
    g_object_unref (task);
    return;
  }
  /* A suspended VM's start is its resume, as `virsh start` of a domain
   * with a managed save (docs/suspend.md). */
  if (!g_str_equal (rec->state, "created") && !g_str_equal (rec->state, "stopped")
      && !g_str_equal (rec->state, "error") && !g_str_equal (rec->state, "suspended")) {
    g_task_return_new_error (task, BANGER_ERROR, BANGER_ERROR_BAD_STATE,
                             "VM “%s” is %s; only a created, stopped, suspended or failed VM can "
                             "be started",
                             rec->name, rec->state);
    g_object_unref (task);
    return;
  }
  if (*rec->driver && banger_vmm_driver_by_name (rec->driver) == NULL) {
    g_task_return_new_error (task, BANGER_ERROR, BANGER_ERROR_UNSUPPORTED,
                             "VM “%s” asks for the %s driver, which bangerd does not know",
                             rec->name, rec->driver);
    g_object_unref (task);
    return;
  }

  start_vm_launch (self, rec, task, timeout_s > 0 ? timeout_s * 1000 : AGENT_START_TIMEOUT_MS,
                   FALSE, warm);
}

/* Start, once banger_vm_runtime_start_vm checked that it may (or again after a stalled
 * boot, @retried). */
static void
start_vm_launch (BangerVmRuntime *self, const BangerVmRecord *rec, GTask *task,
                 guint agent_timeout_ms, gboolean retried, gboolean warm)
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
  /* A second launch (after a stall or a failed clone) always boots. */
  op->warm_allowed = warm && !retried;
  op->resume = g_str_equal (rec->state, "suspended");
  op->driver = *rec->driver ? banger_vm_runtime_driver_named (rec->driver) : NULL;
  op->chroot_base = g_strdup (self->chroot_base);
  if (op->driver != NULL)
    run->driver = op->driver;
  g_object_set_data_full (G_OBJECT (task), "start-op", op, (GDestroyNotify)start_op_free);
  run->busy = TRUE;
  run->start_op = op;
  banger_vm_runtime_update_record (self, rec->id, edit_starting, op);
  g_info ("starting VM %s (image %s, kernel %s)", rec->name, rec->image, rec->kernel);

  prepare = g_task_new (NULL, NULL, start_prepared_cb, op);
  g_task_set_task_data (prepare, op, NULL);
  g_task_run_in_thread (prepare, start_prepare_thread);
}

void
banger_vm_runtime_start_async (BangerVmRuntime *self, const char *name, GVariant *options,
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
  banger_vm_runtime_start_vm (self, rec, options, task);
}
