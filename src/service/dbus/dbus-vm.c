#include "dbus-vm.h"

#include <gio/gunixfdlist.h>
#include <unistd.h>

#include "banger-error.h"
#include "dbus-vm-skeleton.h"
#include "validate.h"
#include "vm-copy.h"
#include "vm-runtime.h"

#define VMS_PATH "/org/banger/Manager/vms"

char *
banger_dbus_vm_object_path (const char *name)
{
  g_autofree char *escaped = g_dbus_escape_object_path (name);
  return g_strconcat (VMS_PATH "/", escaped, NULL);
}

/* Each call is handled on the main thread; the runtime does the work
 * asynchronously and the reply goes out when it is done. The invocation
 * carries the object (for the completion), which a Delete may unexport
 * before it completes, hence the references. */
typedef struct {
  BangerVM *vm;
  GDBusMethodInvocation *invocation;
  BangerVmRuntime *runtime;
} Call;

static Call *
call_new (BangerVM *vm, GDBusMethodInvocation *invocation, BangerEngine *engine)
{
  Call *call = g_new0 (Call, 1);

  call->vm = g_object_ref (vm);
  call->invocation = g_object_ref (invocation);
  call->runtime = engine->runtime;
  return call;
}

static void
call_free (Call *call)
{
  g_object_unref (call->vm);
  g_object_unref (call->invocation);
  g_free (call);
}

static gboolean
return_error (GDBusMethodInvocation *invocation, GError *error)
{
  banger_invocation_return_error (invocation, error);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static void
op_done_cb (GObject *source, GAsyncResult *res, gpointer user_data)
{
  Call *call = user_data;
  GError *error = NULL;

  if (!banger_vm_runtime_op_finish (call->runtime, res, &error))
    banger_invocation_return_error (call->invocation, error);
  else
    g_dbus_method_invocation_return_value (call->invocation, NULL);
  call_free (call);
}

static gboolean
handle_start (BangerVM *vm, GDBusMethodInvocation *invocation, GVariant *options,
              BangerEngine *engine)
{
  g_autofree char *name = banger_vm_dup_name (vm);
  Call *call = call_new (vm, invocation, engine);

  banger_vm_runtime_start_async (call->runtime, name, options, op_done_cb, call);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
handle_stop (BangerVM *vm, GDBusMethodInvocation *invocation, guint timeout_s, BangerEngine *engine)
{
  g_autofree char *name = banger_vm_dup_name (vm);
  Call *call = call_new (vm, invocation, engine);

  banger_vm_runtime_stop_async (call->runtime, name, timeout_s, op_done_cb, call);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
handle_restart (BangerVM *vm, GDBusMethodInvocation *invocation, GVariant *options,
                BangerEngine *engine)
{
  g_autofree char *name = banger_vm_dup_name (vm);
  Call *call = call_new (vm, invocation, engine);

  banger_vm_runtime_restart_async (call->runtime, name, options, op_done_cb, call);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
handle_kill (BangerVM *vm, GDBusMethodInvocation *invocation, BangerEngine *engine)
{
  g_autofree char *name = banger_vm_dup_name (vm);
  Call *call = call_new (vm, invocation, engine);

  banger_vm_runtime_kill_async (call->runtime, name, op_done_cb, call);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
handle_suspend (BangerVM *vm, GDBusMethodInvocation *invocation, BangerEngine *engine)
{
  g_autofree char *name = banger_vm_dup_name (vm);
  Call *call = call_new (vm, invocation, engine);

  banger_vm_runtime_suspend_async (call->runtime, name, op_done_cb, call);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
handle_resume (BangerVM *vm, GDBusMethodInvocation *invocation, GVariant *options,
               BangerEngine *engine)
{
  g_autofree char *name = banger_vm_dup_name (vm);
  Call *call = call_new (vm, invocation, engine);

  banger_vm_runtime_resume_async (call->runtime, name, options, op_done_cb, call);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
handle_delete (BangerVM *vm, GDBusMethodInvocation *invocation, GVariant *options,
               BangerEngine *engine)
{
  static const char *const allowed[] = { "force", "b", NULL };
  g_autoptr (GError) error = NULL;
  gboolean force = FALSE;
  g_autofree char *name = banger_vm_dup_name (vm);
  Call *call;

  if (!banger_validate_options (options, allowed, &error))
    return return_error (invocation, g_steal_pointer (&error));
  g_variant_lookup (options, "force", "b", &force);
  call = call_new (vm, invocation, engine);
  banger_vm_runtime_delete_async (call->runtime, name, force, op_done_cb, call);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static void
exec_done_cb (GObject *source, GAsyncResult *res, gpointer user_data)
{
  Call *call = user_data;
  GError *error = NULL;
  int status = banger_vm_runtime_exec_finish (call->runtime, res, &error);

  if (error != NULL)
    banger_invocation_return_error (call->invocation, error);
  else
    banger_vm_complete_exec (call->vm, call->invocation, NULL, status);
  call_free (call);
}

/* The handle @h indexes @fd_list; the descriptor returned is a duplicate
 * the caller closes. */
static int
fd_from_handle (GUnixFDList *fd_list, GVariant *h, const char *what, GError **error)
{
  gint32 index = g_variant_get_handle (h);

  if (fd_list == NULL || index < 0 || index >= g_unix_fd_list_get_length (fd_list)) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
                 "%s is not a file descriptor sent with the call (handle %d)", what, index);
    return -1;
  }
  return g_unix_fd_list_get (fd_list, index, error);
}

static gboolean
handle_exec (BangerVM *vm, GDBusMethodInvocation *invocation, GUnixFDList *fd_list,
             const char *const *argv, GVariant *options, GVariant *in, GVariant *out, GVariant *err,
             BangerEngine *engine)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *name = banger_vm_dup_name (vm);
  GVariant *handles[3] = { in, out, err };
  static const char *const what[3] = { "Exec: stdin", "Exec: stdout", "Exec: stderr" };
  int fds[3] = { -1, -1, -1 };
  Call *call;

  for (guint i = 0; i < 3; i++) {
    fds[i] = fd_from_handle (fd_list, handles[i], what[i], &error);
    if (fds[i] < 0) {
      for (guint j = 0; j < i; j++)
        close (fds[j]);
      return return_error (invocation, g_steal_pointer (&error));
    }
  }
  call = call_new (vm, invocation, engine);
  banger_vm_runtime_exec_async (call->runtime, name, argv, options, fds[0], fds[1], fds[2],
                                exec_done_cb, call);
  for (guint i = 0; i < 3; i++)
    close (fds[i]);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static void
copy_in_done_cb (GObject *source, GAsyncResult *res, gpointer user_data)
{
  Call *call = user_data;
  GError *error = NULL;

  if (!banger_vm_copy_finish (res, &error))
    banger_invocation_return_error (call->invocation, error);
  else
    banger_vm_complete_copy_in (call->vm, call->invocation, NULL);
  call_free (call);
}

static void
copy_out_done_cb (GObject *source, GAsyncResult *res, gpointer user_data)
{
  Call *call = user_data;
  GError *error = NULL;

  if (!banger_vm_copy_finish (res, &error))
    banger_invocation_return_error (call->invocation, error);
  else
    banger_vm_complete_copy_out (call->vm, call->invocation, NULL);
  call_free (call);
}

static gboolean
handle_copy_in (BangerVM *vm, GDBusMethodInvocation *invocation, GUnixFDList *fd_list,
                GVariant *source, const char *guest_dir, GVariant *options, BangerEngine *engine)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *name = banger_vm_dup_name (vm);
  int fd = fd_from_handle (fd_list, source, "CopyIn: source", &error);
  Call *call;

  if (fd < 0)
    return return_error (invocation, g_steal_pointer (&error));
  call = call_new (vm, invocation, engine);
  banger_vm_copy_in_async (call->runtime, name, fd, guest_dir, options, copy_in_done_cb, call);
  close (fd);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
handle_copy_out (BangerVM *vm, GDBusMethodInvocation *invocation, GUnixFDList *fd_list,
                 const char *guest_path, GVariant *dest, GVariant *options, BangerEngine *engine)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *name = banger_vm_dup_name (vm);
  int fd = fd_from_handle (fd_list, dest, "CopyOut: dest", &error);
  Call *call;

  if (fd < 0)
    return return_error (invocation, g_steal_pointer (&error));
  call = call_new (vm, invocation, engine);
  banger_vm_copy_out_async (call->runtime, name, guest_path, fd, options, copy_out_done_cb, call);
  close (fd);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
handle_signal_exec (BangerVM *vm, GDBusMethodInvocation *invocation, const char *token, int signum,
                    BangerEngine *engine)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *name = banger_vm_dup_name (vm);

  if (!banger_vm_runtime_signal_exec (engine->runtime, name, token, signum, &error))
    return return_error (invocation, g_steal_pointer (&error));
  banger_vm_complete_signal_exec (vm, invocation);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
handle_resize_exec (BangerVM *vm, GDBusMethodInvocation *invocation, const char *token, guint rows,
                    guint cols, BangerEngine *engine)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *name = banger_vm_dup_name (vm);

  if (!banger_vm_runtime_resize_exec (engine->runtime, name, token, rows, cols,
                                      &error))
    return return_error (invocation, g_steal_pointer (&error));
  banger_vm_complete_resize_exec (vm, invocation);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static void
variant_done_cb (GObject *source, GAsyncResult *res, gpointer user_data)
{
  Call *call = user_data;
  GError *error = NULL;
  g_autoptr (GVariant) value = banger_vm_runtime_variant_finish (call->runtime, res, &error);

  if (value == NULL)
    banger_invocation_return_error (call->invocation, error);
  else
    g_dbus_method_invocation_return_value (call->invocation, g_variant_new_tuple (&value, 1));
  call_free (call);
}

static gboolean
handle_get_stats (BangerVM *vm, GDBusMethodInvocation *invocation, BangerEngine *engine)
{
  g_autofree char *name = banger_vm_dup_name (vm);
  Call *call = call_new (vm, invocation, engine);

  banger_vm_runtime_get_stats_async (call->runtime, name, variant_done_cb, call);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
handle_list_ports (BangerVM *vm, GDBusMethodInvocation *invocation, BangerEngine *engine)
{
  g_autofree char *name = banger_vm_dup_name (vm);
  Call *call = call_new (vm, invocation, engine);

  banger_vm_runtime_list_ports_async (call->runtime, name, variant_done_cb, call);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
handle_open_log (BangerVM *vm, GDBusMethodInvocation *invocation, GUnixFDList *in_fds,
                 GVariant *options, BangerEngine *engine)
{
  static const char *const allowed[] = { NULL };
  g_autoptr (GError) error = NULL;
  g_autofree char *name = banger_vm_dup_name (vm);
  g_autoptr (GUnixFDList) fd_list = NULL;
  int fd;
  int index;

  if (!banger_validate_options (options, allowed, &error))
    return return_error (invocation, g_steal_pointer (&error));
  fd = banger_vm_runtime_open_log (engine->runtime, name, &error);
  if (fd < 0)
    return return_error (invocation, g_steal_pointer (&error));
  fd_list = g_unix_fd_list_new_from_array (&fd, 1); /* takes the descriptor */
  index = 0;
  banger_vm_complete_open_log (vm, invocation, fd_list, g_variant_new_handle (index));
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
handle_get_ssh_config (BangerVM *vm, GDBusMethodInvocation *invocation, BangerEngine *engine)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *name = banger_vm_dup_name (vm);
  GVariant *config
      = banger_vm_runtime_get_ssh_config (engine->runtime, name, &error);

  if (config == NULL)
    return return_error (invocation, g_steal_pointer (&error));
  banger_vm_complete_get_sshconfig (vm, invocation, config);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

void
banger_dbus_vm_update (BangerObjectSkeleton *object, const BangerVmRecord *rec)
{
  g_autoptr (BangerVM) vm = banger_object_get_vm (BANGER_OBJECT (object));

  g_return_if_fail (vm != NULL);
  banger_vm_set_name (vm, rec->name);
  banger_vm_set_id (vm, rec->id);
  banger_vm_set_state (vm, rec->state);
  banger_vm_set_driver (vm, rec->driver);
  banger_vm_set_image (vm, rec->image);
  banger_vm_set_kernel (vm, rec->kernel);
  banger_vm_set_vcpus (vm, rec->vcpus);
  banger_vm_set_memory_mi_b (vm, rec->memory_mib);
  banger_vm_set_disk_mi_b (vm, rec->disk_mib);
  banger_vm_set_ipv4 (vm, rec->ipv4);
  banger_vm_set_mac (vm, rec->mac);
  banger_vm_set_pid (vm, rec->pid);
  banger_vm_set_created_at (vm, (guint64)MAX (rec->created_at, 0));
  banger_vm_set_started_at (vm, (guint64)MAX (rec->started_at, 0));
  banger_vm_set_agent_version (vm, rec->agent_version);
  banger_vm_set_boot_id (vm, rec->boot_id);
  banger_vm_set_disk_mode (vm, rec->disk_mode);
  banger_vm_set_last_error (vm, rec->last_error);
}

BangerObjectSkeleton *
banger_dbus_vm_new (BangerEngine *engine, const BangerVmRecord *rec)
{
  g_autofree char *path = banger_dbus_vm_object_path (rec->name);
  g_autoptr (BangerObjectSkeleton) object = banger_object_skeleton_new (path);
  g_autoptr (BangerVM) vm = banger_dbus_vm_skeleton_new ();

  banger_object_skeleton_set_vm (object, vm);
  banger_dbus_vm_update (object, rec);
  g_signal_connect (vm, "handle-start", G_CALLBACK (handle_start), engine);
  g_signal_connect (vm, "handle-stop", G_CALLBACK (handle_stop), engine);
  g_signal_connect (vm, "handle-restart", G_CALLBACK (handle_restart), engine);
  g_signal_connect (vm, "handle-kill", G_CALLBACK (handle_kill), engine);
  g_signal_connect (vm, "handle-suspend", G_CALLBACK (handle_suspend), engine);
  g_signal_connect (vm, "handle-resume", G_CALLBACK (handle_resume), engine);
  g_signal_connect (vm, "handle-delete", G_CALLBACK (handle_delete), engine);
  g_signal_connect (vm, "handle-exec", G_CALLBACK (handle_exec), engine);
  g_signal_connect (vm, "handle-copy-in", G_CALLBACK (handle_copy_in), engine);
  g_signal_connect (vm, "handle-copy-out", G_CALLBACK (handle_copy_out), engine);
  g_signal_connect (vm, "handle-signal-exec", G_CALLBACK (handle_signal_exec), engine);
  g_signal_connect (vm, "handle-resize-exec", G_CALLBACK (handle_resize_exec), engine);
  g_signal_connect (vm, "handle-get-stats", G_CALLBACK (handle_get_stats), engine);
  g_signal_connect (vm, "handle-list-ports", G_CALLBACK (handle_list_ports), engine);
  g_signal_connect (vm, "handle-open-log", G_CALLBACK (handle_open_log), engine);
  g_signal_connect (vm, "handle-get-sshconfig", G_CALLBACK (handle_get_ssh_config), engine);
  return g_steal_pointer (&object);
}
