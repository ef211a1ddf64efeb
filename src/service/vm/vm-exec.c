/* Talking to a running guest for D-Bus callers: Exec (with the caller's
 * descriptors) and its signals and resizes, stats, ports, the console log
 * and the ssh configuration. docs/vm-runtime.md has the contract. */

#include "vm-runtime-private.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "banger-error.h"
#include "validate.h"
#include "vmm.h"

/* ---- Exec ---------------------------------------------------------------------------- */

typedef struct {
  VmRun *run;
  GTask *task;
  char **argv;
  GVariant *options;
  int fds[3];
  char *token;
  BangerAgentExec *exec;
} ExecOp;

static void
exec_op_free (ExecOp *op)
{
  g_strfreev (op->argv);
  g_clear_pointer (&op->options, g_variant_unref);
  for (guint i = 0; i < 3; i++) {
    if (op->fds[i] >= 0)
      close (op->fds[i]);
  }
  g_free (op->token);
  g_clear_object (&op->exec);
  g_free (op);
}

static gboolean
banger_vm_runtime_require_running (const BangerVmRecord *rec, GError **error)
{
  if (g_str_equal (rec->state, "running"))
    return TRUE;
  g_set_error (error, BANGER_ERROR, BANGER_ERROR_BAD_STATE, "VM “%s” is %s, not running", rec->name,
               rec->state);
  return FALSE;
}

static void
exec_finish (ExecOp *op, GError *error, int status)
{
  if (op->token != NULL) {
    BangerAgentExec *current = g_hash_table_lookup (op->run->execs, op->token);
    if (current != NULL && current == op->exec)
      g_hash_table_remove (op->run->execs, op->token);
  }
  if (error != NULL)
    g_task_return_error (op->task, error);
  else
    g_task_return_int (op->task, status);
  g_object_unref (op->task);
  exec_op_free (op);
}

static void
exec_waited_cb (GObject *source, GAsyncResult *res, gpointer user_data)
{
  ExecOp *op = user_data;
  GError *error = NULL;
  int status = banger_agent_exec_wait_finish (BANGER_AGENT_EXEC (source), res, &error);

  if (error != NULL && error->domain != BANGER_ERROR)
    g_prefix_error (&error, "the command's connection to the guest ended: ");
  exec_finish (op, error, status);
}

static void
exec_agent_cb (GObject *source, GAsyncResult *res, gpointer user_data)
{
  ExecOp *op = user_data;
  GError *error = NULL;
  g_autoptr (BangerAgentClient) agent = banger_vm_run_get_agent_finish (res, &error);

  if (agent == NULL) {
    exec_finish (op, error, -1);
    return;
  }
  if (op->token != NULL && g_hash_table_contains (op->run->execs, op->token)) {
    exec_finish (op,
                 g_error_new (BANGER_ERROR, BANGER_ERROR_EXISTS,
                              "a command with token “%s” is already running", op->token),
                 -1);
    return;
  }
  op->exec = banger_agent_client_exec (agent, (const char *const *)op->argv, op->options,
                                       op->fds[0], op->fds[1], op->fds[2], &error);
  if (op->exec == NULL) {
    exec_finish (op, error, -1);
    return;
  }
  /* The client duplicated the descriptors; ours are no longer needed, and
   * holding them would keep the caller's pipes open after the command. */
  for (guint i = 0; i < 3; i++) {
    if (op->fds[i] >= 0)
      close (op->fds[i]);
    op->fds[i] = -1;
  }
  if (op->token != NULL)
    g_hash_table_insert (op->run->execs, g_strdup (op->token), g_object_ref (op->exec));
  banger_agent_exec_wait_async (op->exec, NULL, exec_waited_cb, op);
}

void
banger_vm_runtime_exec_async (BangerVmRuntime *self, const char *name, const char *const *argv,
                              GVariant *options, int stdin_fd, int stdout_fd, int stderr_fd,
                              GAsyncReadyCallback callback, gpointer user_data)
{
  static const char *const allowed[]
      = { "env", "as", "cwd", "s", "tty", "b", "rows", "u", "cols", "u", "token", "s", NULL };
  GTask *task = g_task_new (self->engine, NULL, callback, user_data);
  GError *error = NULL;
  g_autoptr (BangerVmRecord) rec = banger_vm_runtime_find_record (self, name, &error);
  ExecOp *op;
  const int in[3] = { stdin_fd, stdout_fd, stderr_fd };

  if (rec != NULL && !banger_vm_runtime_require_running (rec, &error))
    g_clear_pointer (&rec, banger_vm_record_free);
  if (rec != NULL && !banger_validate_options (options, allowed, &error))
    g_clear_pointer (&rec, banger_vm_record_free);
  if (rec != NULL && (argv == NULL || argv[0] == NULL || *argv[0] == '\0')) {
    g_set_error_literal (&error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
                         "Exec needs a command (argv is empty)");
    g_clear_pointer (&rec, banger_vm_record_free);
  }
  if (rec == NULL) {
    g_task_return_error (task, error);
    g_object_unref (task);
    return;
  }
  op = g_new0 (ExecOp, 1);
  op->run = banger_vm_run_get (self, rec->id);
  op->task = task;
  op->argv = g_strdupv ((char **)argv);
  op->options = g_variant_ref (options);
  for (guint i = 0; i < 3; i++)
    op->fds[i] = in[i] >= 0 ? fcntl (in[i], F_DUPFD_CLOEXEC, 3) : -1;
  if (!g_variant_lookup (options, "token", "s", &op->token))
    op->token = NULL;
  banger_vm_run_get_agent_async (op->run, BANGER_AGENT_ATTACH_TIMEOUT_MS, NULL, exec_agent_cb, op);
}

int
banger_vm_runtime_exec_finish (BangerVmRuntime *self, GAsyncResult *result, GError **error)
{
  return (int)g_task_propagate_int (G_TASK (result), error);
}

static BangerAgentExec *
find_exec (BangerVmRuntime *self, const char *name, const char *token, GError **error)
{
  g_autoptr (BangerVmRecord) rec = banger_vm_runtime_find_record (self, name, error);
  BangerAgentExec *exec;

  if (rec == NULL)
    return NULL;
  exec = g_hash_table_lookup (banger_vm_run_get (self, rec->id)->execs, token);
  if (exec == NULL)
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_NOT_FOUND,
                 "no running command in VM “%s” has token “%s”", rec->name, token);
  return exec;
}

gboolean
banger_vm_runtime_signal_exec (BangerVmRuntime *self, const char *name, const char *token,
                               int signum, GError **error)
{
  BangerAgentExec *exec = find_exec (self, name, token, error);

  if (exec == NULL)
    return FALSE;
  if (signum <= 0 || signum >= 65) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT, "%d is not a signal number",
                 signum);
    return FALSE;
  }
  return banger_agent_exec_signal (exec, signum, error);
}

gboolean
banger_vm_runtime_resize_exec (BangerVmRuntime *self, const char *name, const char *token,
                               guint rows, guint cols, GError **error)
{
  BangerAgentExec *exec = find_exec (self, name, token, error);

  if (exec == NULL)
    return FALSE;
  return banger_agent_exec_resize (exec, rows, cols, error);
}

/* ---- GetStats, ListPorts ------------------------------------------------------------- */

typedef struct {
  GTask *task;
  VmRun *run;
  gboolean ports;
  GVariantDict *host; /* stats only */
} QueryOp;

static void
query_op_free (QueryOp *op)
{
  g_clear_pointer (&op->host, g_variant_dict_unref);
  g_free (op);
}

static void
query_done (QueryOp *op, GVariant *value, GError *error)
{
  if (error != NULL) {
    banger_error_convert (&error);
    g_task_return_error (op->task, error);
  } else {
    g_task_return_pointer (op->task, g_variant_ref_sink (value), (GDestroyNotify)g_variant_unref);
  }
  g_object_unref (op->task);
  query_op_free (op);
}

static void
stats_cb (GObject *source, GAsyncResult *res, gpointer user_data)
{
  QueryOp *op = user_data;
  GError *error = NULL;
  g_autoptr (GVariant) guest
      = banger_agent_client_get_stats_finish (BANGER_AGENT_CLIENT (source), res, &error);
  GVariantIter iter;
  const char *key;
  GVariant *value;

  if (guest == NULL) {
    query_done (op, NULL, error);
    return;
  }
  g_variant_iter_init (&iter, guest);
  while (g_variant_iter_next (&iter, "{&sv}", &key, &value)) {
    g_variant_dict_insert_value (op->host, key, value);
    g_variant_unref (value);
  }
  query_done (op, g_variant_dict_end (op->host), NULL);
}

static void
ports_cb (GObject *source, GAsyncResult *res, gpointer user_data)
{
  QueryOp *op = user_data;
  GError *error = NULL;
  g_autoptr (GVariant) ports
      = banger_agent_client_list_ports_finish (BANGER_AGENT_CLIENT (source), res, &error);

  query_done (op, ports, error);
}

static void
query_agent_cb (GObject *source, GAsyncResult *res, gpointer user_data)
{
  QueryOp *op = user_data;
  GError *error = NULL;
  g_autoptr (BangerAgentClient) agent = banger_vm_run_get_agent_finish (res, &error);

  if (agent == NULL)
    query_done (op, NULL, error);
  else if (op->ports)
    banger_agent_client_list_ports_async (agent, NULL, ports_cb, op);
  else
    banger_agent_client_get_stats_async (agent, NULL, stats_cb, op);
}

static void
query_start (BangerVmRuntime *self, const char *name, gboolean ports, GAsyncReadyCallback callback,
             gpointer user_data)
{
  GTask *task = g_task_new (self->engine, NULL, callback, user_data);
  GError *error = NULL;
  g_autoptr (BangerVmRecord) rec = banger_vm_runtime_find_record (self, name, &error);
  QueryOp *op;

  if (rec != NULL && !banger_vm_runtime_require_running (rec, &error))
    g_clear_pointer (&rec, banger_vm_record_free);
  if (rec == NULL) {
    g_task_return_error (task, error);
    g_object_unref (task);
    return;
  }
  op = g_new0 (QueryOp, 1);
  op->task = task;
  op->run = banger_vm_run_get (self, rec->id);
  op->ports = ports;
  if (!ports) {
    op->host = g_variant_dict_new (NULL);
    if (!banger_vmm_host_stats (rec->pid, op->host, &error)) {
      query_done (op, NULL, error);
      return;
    }
  }
  banger_vm_run_get_agent_async (op->run, BANGER_AGENT_ATTACH_TIMEOUT_MS, NULL, query_agent_cb, op);
}

void
banger_vm_runtime_get_stats_async (BangerVmRuntime *self, const char *name,
                                   GAsyncReadyCallback callback, gpointer user_data)
{
  query_start (self, name, FALSE, callback, user_data);
}

void
banger_vm_runtime_list_ports_async (BangerVmRuntime *self, const char *name,
                                    GAsyncReadyCallback callback, gpointer user_data)
{
  query_start (self, name, TRUE, callback, user_data);
}

GVariant *
banger_vm_runtime_variant_finish (BangerVmRuntime *self, GAsyncResult *result, GError **error)
{
  return g_task_propagate_pointer (G_TASK (result), error);
}

/* ---- OpenLog, GetSSHConfig ------------------------------------------------------------ */

int
banger_vm_runtime_open_log (BangerVmRuntime *self, const char *name, GError **error)
{
  g_autoptr (BangerVmRecord) rec = banger_vm_runtime_find_record (self, name, error);
  g_autofree char *dir = NULL;
  g_autofree char *path = NULL;
  int fd;

  if (rec == NULL)
    return -1;
  dir = banger_vm_dir (self->data_dir, rec->id);
  path = g_build_filename (dir, "console.log", NULL);
  fd = open (path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    int saved = errno;
    if (saved == ENOENT)
      g_set_error (error, BANGER_ERROR, BANGER_ERROR_NOT_FOUND,
                   "VM “%s” has no console log yet: it has never started", rec->name);
    else
      g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "cannot open %s: %s", path,
                   g_strerror (saved));
  }
  return fd;
}

GVariant *
banger_vm_runtime_get_ssh_config (BangerVmRuntime *self, const char *name, GError **error)
{
  g_autoptr (BangerVmRecord) rec = banger_vm_runtime_find_record (self, name, error);
  g_autofree char *dir = NULL;
  g_autofree char *identity = NULL;
  g_autofree char *alias = NULL;
  g_autofree char *host_key = NULL;
  GVariantDict dict;

  if (rec == NULL || !banger_vm_runtime_require_running (rec, error))
    return NULL;
  if (*rec->ipv4 == '\0') {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_BAD_STATE,
                 "VM “%s” has no IPv4 address: it was started without banger's root helper, "
                 "so it has no network (use Exec instead)",
                 rec->name);
    return NULL;
  }
  dir = banger_vm_dir (self->data_dir, rec->id);
  identity = g_build_filename (self->ssh_dir, "id_ed25519", NULL);
  alias = g_strdup_printf ("banger-%s", rec->id);
  host_key = g_build_filename (dir, "ssh_host_ed25519_key", NULL);
  g_variant_dict_init (&dict, NULL);
  g_variant_dict_insert (&dict, "host", "s", rec->ipv4);
  g_variant_dict_insert (&dict, "port", "q", (guint16)22);
  g_variant_dict_insert (&dict, "user", "s", "root");
  g_variant_dict_insert (&dict, "identity_file", "s", identity);
  g_variant_dict_insert (&dict, "known_hosts_file", "s", self->known_hosts);
  g_variant_dict_insert (&dict, "host_key_alias", "s", alias);
  /* The VM's private host key, readable by the user: `ssh NAME.vm` to a VM
   * without sshd runs the host's sshd -i with it (docs/cli.md). */
  g_variant_dict_insert (&dict, "host_key_file", "s", host_key);
  g_variant_dict_insert (&dict, "has_sshd", "b", banger_vm_runtime_read_has_sshd (dir));
  return g_variant_dict_end (&dict);
}
