/* agent-rtt: round trips per second of a no-op request (PING) between the
 * host library and a real banger-agent on a unix socket, one at a time.
 * Usage: agent-rtt [COUNT] (BANGER_BUILD_ROOT locates the agent). */
#define G_LOG_DOMAIN "agent-rtt"

#include "agent-client.h"

#include <glib/gstdio.h>
#include <signal.h>
#include <stdlib.h>

typedef struct {
  BangerAgentClient *client;
  GMainLoop *loop;
  guint left;
  GError *error;
} Bench;

static void ping_cb (GObject *source, GAsyncResult *res, gpointer data);

static void
next (Bench *b)
{
  if (b->left-- == 0 || b->error != NULL) {
    g_main_loop_quit (b->loop);
    return;
  }
  banger_agent_client_ping_async (b->client, NULL, ping_cb, b);
}

static void
ping_cb (GObject *source, GAsyncResult *res, gpointer data)
{
  Bench *b = data;
  banger_agent_client_ping_finish (b->client, res, &b->error);
  next (b);
}

static void
connected_cb (GObject *source, GAsyncResult *res, gpointer data)
{
  Bench *b = data;
  b->client = banger_agent_client_connect_unix_finish (res, &b->error);
  g_main_loop_quit (b->loop);
}

int
main (int argc, char **argv)
{
  g_autoptr (GError) error = NULL;
  guint count = argc > 1 ? (guint)atoi (argv[1]) : 20000;
  const char *build = g_getenv ("BANGER_BUILD_ROOT");
  g_autofree char *agent
      = g_build_filename (build ? build : ".", "src", "agent", "banger-agent", NULL);
  g_autofree char *dir = g_dir_make_tmp ("banger-agent-rtt-XXXXXX", &error);
  g_assert_no_error (error);
  g_autofree char *sock = g_build_filename (dir, "agent.sock", NULL);
  const char *args[] = { agent, "--listen-unix", sock, NULL };
  g_autoptr (GSubprocess) proc = g_subprocess_newv (args, G_SUBPROCESS_FLAGS_STDOUT_PIPE, &error);
  g_assert_no_error (error);
  g_autoptr (GDataInputStream) out = g_data_input_stream_new (g_subprocess_get_stdout_pipe (proc));
  g_autofree char *line = g_data_input_stream_read_line (out, NULL, NULL, &error);
  g_assert_no_error (error);

  Bench b = { .loop = g_main_loop_new (NULL, FALSE), .left = count };
  banger_agent_client_connect_unix_async (sock, 5000, NULL, connected_cb, &b);
  g_main_loop_run (b.loop);
  g_assert_no_error (b.error);

  gint64 start = g_get_monotonic_time ();
  next (&b);
  g_main_loop_run (b.loop);
  gint64 us = g_get_monotonic_time () - start;
  g_assert_no_error (b.error);
  g_print ("%u round trips in %.3f s: %.0f per second, %.1f µs each\n", count, us / 1e6,
           count / (us / 1e6), (double)us / count);

  banger_agent_client_close (b.client);
  g_object_unref (b.client);
  g_main_loop_unref (b.loop);
  g_subprocess_send_signal (proc, SIGTERM);
  g_subprocess_wait (proc, NULL, NULL);
  g_unlink (sock);
  g_rmdir (dir);
  return 0;
}
