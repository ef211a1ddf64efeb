/* bare-boot: the baseline of bench/boot. Starts QEMU with exactly the
 * command line bangerd used for a VM (read from a file, NUL-separated as in
 * /proc/<pid>/cmdline), then does what `banger vm run -- true` waits for:
 * connects to the guest agent, handshakes, runs `true` and waits for its
 * exit. Prints the seconds from spawning QEMU to that exit, then stops QEMU.
 *
 * Usage: bare-boot ARGV-FILE PIDFILE AGENT-SOCKET */
#define G_LOG_DOMAIN "bare-boot"

#include <gio/gio.h>
#include <signal.h>
#include <stdlib.h>

#include "agent-client.h"

typedef struct {
  GMainLoop *loop;
  GAsyncResult *result;
} Wait;

static void
store_cb (GObject *source, GAsyncResult *res, gpointer data)
{
  Wait *w = data;
  w->result = g_object_ref (res);
  g_main_loop_quit (w->loop);
}

static GAsyncResult *
wait_for (Wait *w)
{
  g_main_loop_run (w->loop);
  return g_steal_pointer (&w->result);
}

int
main (int argc, char **argv)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *contents = NULL;
  gsize len = 0;
  g_autoptr (GPtrArray) qemu_argv = g_ptr_array_new ();
  g_autoptr (GMainLoop) loop = g_main_loop_new (NULL, FALSE);
  Wait w = { loop, NULL };
  g_autoptr (BangerAgentClient) client = NULL;
  g_autoptr (BangerAgentExec) exec = NULL;
  g_autoptr (GAsyncResult) res = NULL;
  g_autofree char *pid_text = NULL;
  const char *true_argv[] = { "true", NULL };
  gint64 start, end;
  int status = 0;

  if (argc != 4) {
    g_printerr ("usage: bare-boot ARGV-FILE PIDFILE AGENT-SOCKET\n");
    return 2;
  }
  if (!g_file_get_contents (argv[1], &contents, &len, &error))
    g_error ("%s", error->message);
  for (gsize off = 0; off < len; off += strlen (contents + off) + 1)
    g_ptr_array_add (qemu_argv, contents + off);
  g_ptr_array_add (qemu_argv, NULL);

  start = g_get_monotonic_time ();
  /* QEMU daemonizes: the spawn returns once the VM is set up. */
  if (!g_spawn_sync (NULL, (char **)qemu_argv->pdata, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL,
                     NULL, &status, &error)
      || !g_spawn_check_wait_status (status, &error))
    g_error ("starting QEMU: %s", error ? error->message : "failed");

  banger_agent_client_connect_unix_async (argv[3], 120000, NULL, store_cb, &w);
  res = wait_for (&w);
  client = banger_agent_client_connect_unix_finish (res, &error);
  if (client == NULL)
    g_error ("agent: %s", error->message);
  g_clear_object (&res);

  exec = banger_agent_client_exec (client, true_argv, NULL, -1, -1, -1, &error);
  if (exec == NULL)
    g_error ("exec: %s", error->message);
  banger_agent_exec_wait_async (exec, NULL, store_cb, &w);
  res = wait_for (&w);
  status = banger_agent_exec_wait_finish (exec, res, &error);
  end = g_get_monotonic_time ();
  if (status != 0)
    g_error ("true exited %d: %s", status, error ? error->message : "");
  g_print ("%.3f\n", (double)(end - start) / G_USEC_PER_SEC);

  banger_agent_client_close (client);
  if (g_file_get_contents (argv[2], &pid_text, NULL, NULL))
    kill ((pid_t)atoi (pid_text), SIGKILL);
  return 0;
}
