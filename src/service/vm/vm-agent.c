/* The VM runtime's connection to a guest agent (one per VM, shared by
 * every caller): connecting over the driver's transport, the handshake,
 * and dropping it when it closes. */

#include "vm-runtime-private.h"

#include "banger-error.h"
#include "vmm.h"

static void
agent_closed_cb (BangerAgentClient *agent, GError *error, VmRun *run)
{
  g_debug ("VM %s: agent connection closed: %s", run->id, error ? error->message : "closed");
  if (run->agent == agent)
    banger_vm_run_drop_agent (run);
}

void
banger_vm_run_drop_agent (VmRun *run)
{
  g_autoptr (BangerAgentClient) agent = g_steal_pointer (&run->agent);

  if (agent == NULL)
    return;
  g_clear_signal_handler (&run->agent_closed_id, agent);
  banger_agent_client_close (agent);
  g_hash_table_remove_all (run->execs);
}

void
banger_vm_run_set_agent (VmRun *run, BangerAgentClient *agent)
{
  banger_vm_run_drop_agent (run);
  run->agent = g_object_ref (agent);
  run->agent_closed_id = g_signal_connect (agent, "closed", G_CALLBACK (agent_closed_cb), run);
}

/* Where the VM's agent is reached (the driver's instance paths: QEMU's
 * virtio-serial chardev socket, Firecracker's hybrid vsock). */
static char *
agent_socket_path (VmRun *run)
{
  BangerVmmInstance inst = { 0 };
  char *path;

  run->driver->instance_paths (run->vm_dir, &inst);
  path = g_steal_pointer (&inst.agent_socket);
  banger_vmm_instance_clear (&inst);
  return path;
}

/* One connection attempt: the driver's blocking connect (worker thread),
 * then the handshake on the main loop. */
typedef struct {
  const BangerVmmDriver *driver;
  char *path;
  guint timeout_ms;
  guint handshake_ms; /* the driver's answer */
} AgentConnect;

static void
agent_connect_free (AgentConnect *c)
{
  g_free (c->path);
  g_free (c);
}

static void
agent_stream_thread (GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
  AgentConnect *c = task_data;
  GError *error = NULL;
  GIOStream *stream
      = c->driver->agent_connect (c->path, c->timeout_ms, &c->handshake_ms, cancellable, &error);

  if (stream == NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, stream, g_object_unref);
}

static void
agent_handshake_cb (GObject *source, GAsyncResult *res, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  /* The reference agent_stream_cb made. */
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
agent_stream_cb (GObject *source, GAsyncResult *res, gpointer user_data)
{
  GTask *task = user_data;
  AgentConnect *c = g_task_get_task_data (G_TASK (res));
  GError *error = NULL;
  g_autoptr (GIOStream) stream = g_task_propagate_pointer (G_TASK (res), &error);
  BangerAgentClient *agent;

  if (stream == NULL) {
    g_task_return_error (task, error);
    g_object_unref (task);
    return;
  }
  agent = banger_agent_client_new (stream);
  banger_agent_client_handshake_async (agent, c->handshake_ms, g_task_get_cancellable (task),
                                       agent_handshake_cb, task);
}

/* Connects to a guest agent and does the handshake, within @timeout_ms
 * (the guest may still be booting). The driver's connect may block (a
 * hybrid vsock's CONNECT is retried while nothing in the guest listens),
 * so it runs in a worker thread. */
void
banger_vm_agent_connect_async (const BangerVmmDriver *driver, const char *path, guint timeout_ms,
                               GCancellable *cancellable, GAsyncReadyCallback callback,
                               gpointer user_data)
{
  GTask *task = g_task_new (NULL, cancellable, callback, user_data);
  g_autoptr (GTask) stream = g_task_new (NULL, cancellable, agent_stream_cb, task);
  AgentConnect *c = g_new0 (AgentConnect, 1);

  c->driver = driver;
  c->path = g_strdup (path);
  c->timeout_ms = timeout_ms;
  g_task_set_task_data (stream, c, (GDestroyNotify)agent_connect_free);
  g_task_run_in_thread (stream, agent_stream_thread);
}

BangerAgentClient *
banger_vm_agent_connect_finish (GAsyncResult *res, GError **error)
{
  return g_task_propagate_pointer (G_TASK (res), error);
}

static void
agent_connected_cb (GObject *source, GAsyncResult *res, gpointer user_data)
{
  VmRun *run = user_data;
  g_autoptr (GError) error = NULL;
  g_autoptr (BangerAgentClient) agent = banger_vm_agent_connect_finish (res, &error);
  g_autoptr (GPtrArray) waiters = g_steal_pointer (&run->agent_waiters);

  run->agent_waiters = g_ptr_array_new ();
  if (agent != NULL)
    banger_vm_run_set_agent (run, agent);
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
  banger_vm_agent_connect_async (run->driver, path, timeout_ms, cancellable, agent_connected_cb,
                                 run);
}

BangerAgentClient *
banger_vm_run_get_agent_finish (GAsyncResult *res, GError **error)
{
  return g_task_propagate_pointer (G_TASK (res), error);
}
