/* Drives the host library (banger-agent-client) against the real
 * banger-agent started with --listen-unix as this test's child. */
#define G_LOG_DOMAIN "test-agent"

#include "agent-client.h"
#include "banger-error.h"
#include "remove-tree.h"
#include "protocol.h"

#include <gio/gunixinputstream.h>
#include <glib/gstdio.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define TIMEOUT_S 20
#include "agent-test-wait.h"

typedef struct {
  char *dir;
  char *sock;
  GSubprocess *agent;
  BangerAgentClient *client;
} Fixture;

/* ---- helpers ------------------------------------------------------------- */

/* The agent binary these tests drive: an instrumented copy under a sanitizer
 * build (BANGER_AGENT_UNDER_TEST), else the build tree's banger-agent. */
static char *
agent_under_test_path (const char *build)
{
  const char *env = g_getenv ("BANGER_AGENT_UNDER_TEST");

  if (env != NULL && *env)
    return g_strdup (env);
  return g_build_filename (build ? build : ".", "src", "agent", "banger-agent", NULL);
}

static BangerAgentClient *
connect_client (Fixture *f, GError **error)
{
  Wait w = { 0 };
  banger_agent_client_connect_unix_async (f->sock, 5000, NULL, store_result_cb, &w);
  g_autoptr (GAsyncResult) res = wait_result (&w, "connect");
  return banger_agent_client_connect_unix_finish (res, error);
}

static void
die_with_parent (gpointer data)
{
  prctl (PR_SET_PDEATHSIG, SIGKILL);
}

static void
start_agent (Fixture *f, const char *const *extra)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) argv = g_ptr_array_new ();
  const char *build = g_getenv ("BANGER_BUILD_ROOT");
  g_autofree char *agent = agent_under_test_path (build);
  g_ptr_array_add (argv, agent);
  g_ptr_array_add (argv, (gpointer) "--listen-unix");
  g_ptr_array_add (argv, f->sock);
  for (gsize i = 0; extra != NULL && extra[i] != NULL; i++)
    g_ptr_array_add (argv, (gpointer)extra[i]);
  g_ptr_array_add (argv, NULL);
  g_autoptr (GSubprocessLauncher) launcher
      = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE);
  /* If this test dies, the agent must not outlive it holding the harness's
   * stderr open. */
  g_subprocess_launcher_set_child_setup (launcher, die_with_parent, NULL, NULL);
  f->agent = g_subprocess_launcher_spawnv (launcher, (const char *const *)argv->pdata, &error);
  g_assert_no_error (error);
  /* The agent prints one line once it listens: wait for that event. */
  g_autoptr (GDataInputStream) out
      = g_data_input_stream_new (g_subprocess_get_stdout_pipe (f->agent));
  g_autofree char *line = g_data_input_stream_read_line (out, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (line);
  g_assert_true (g_str_has_prefix (line, "listening on"));
}

static void
fixture_setup_with (Fixture *f, const char *const *extra)
{
  g_autoptr (GError) error = NULL;
  f->dir = g_dir_make_tmp ("banger-agent-test-XXXXXX", &error);
  g_assert_no_error (error);
  f->sock = g_build_filename (f->dir, "agent.sock", NULL);
  start_agent (f, extra);
  f->client = connect_client (f, &error);
  g_assert_no_error (error);
  g_assert_true (banger_agent_client_is_connected (f->client));
}

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  fixture_setup_with (f, NULL);
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  if (f->client != NULL)
    banger_agent_client_close (f->client);
  g_clear_object (&f->client);
  if (f->agent != NULL) {
    g_subprocess_send_signal (f->agent, SIGTERM);
    g_subprocess_wait (f->agent, NULL, NULL);
    g_clear_object (&f->agent);
  }
  banger_remove_tree (f->dir, NULL);
  g_free (f->dir);
  g_free (f->sock);
}

/* Runs @argv to completion; stdout/stderr collected when the pointers are
 * given; stdin from @input if not NULL. */
static int
run_exec_full (BangerAgentClient *client, const char *const *argv, GVariant *options,
               const char *input, char **out, char **err, GError **error)
{
  int in_p[2] = { -1, -1 }, out_p[2], err_p[2];
  g_autoptr (GVariant) opts = options ? g_variant_ref_sink (options) : NULL;
  g_assert_no_errno (pipe (out_p));
  g_assert_no_errno (pipe (err_p));
  if (input != NULL) {
    g_assert_no_errno (pipe (in_p));
    g_assert_cmpint (write (in_p[1], input, strlen (input)), ==, (gssize)strlen (input));
    close (in_p[1]);
  }
  g_autoptr (BangerAgentExec) exec
      = banger_agent_client_exec (client, argv, opts, in_p[0], out_p[1], err_p[1], error);
  if (in_p[0] >= 0)
    close (in_p[0]);
  close (out_p[1]);
  close (err_p[1]);
  int status = -1;
  if (exec != NULL) {
    Wait w = { 0 };
    banger_agent_exec_wait_async (exec, NULL, store_result_cb, &w);
    g_autoptr (GAsyncResult) res = wait_result (&w, argv[0]);
    status = banger_agent_exec_wait_finish (exec, res, error);
  }
  /* The client closed its copies when the exec finished: read to EOF. */
  for (int i = 0; i < 2; i++) {
    int fd = i == 0 ? out_p[0] : err_p[0];
    char **dest = i == 0 ? out : err;
    g_autoptr (GString) s = g_string_new (NULL);
    char buf[4096];
    gssize n;
    while (exec != NULL && (n = read (fd, buf, sizeof buf)) > 0)
      g_string_append_len (s, buf, n);
    close (fd);
    if (dest != NULL)
      *dest = g_string_free (g_steal_pointer (&s), FALSE);
  }
  return status;
}

static int
run_exec (BangerAgentClient *client, const char *const *argv)
{
  g_autoptr (GError) error = NULL;
  int status = run_exec_full (client, argv, NULL, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  return status;
}

/* ---- exec ---------------------------------------------------------------- */

static void
test_exec_exit_codes (Fixture *f, gconstpointer data)
{
  const char *t[] = { "true", NULL };
  const char *fl[] = { "false", NULL };
  const char *k[] = { "sh", "-c", "kill -9 $$", NULL };
  const char *e[] = { "sh", "-c", "exit 42", NULL };
  g_assert_cmpint (run_exec (f->client, t), ==, 0);
  g_assert_cmpint (run_exec (f->client, fl), ==, 1);
  g_assert_cmpint (run_exec (f->client, k), ==, 137);
  g_assert_cmpint (run_exec (f->client, e), ==, 42);
}

static void
test_exec_not_found (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  const char *argv[] = { "/nonexistent/banger-no-such-command", NULL };
  int status = run_exec_full (f->client, argv, NULL, NULL, NULL, NULL, &error);
  g_assert_error (error, BANGER_ERROR, BANGER_ERROR_NOT_FOUND);
  g_assert_cmpint (status, ==, -1);
  g_assert_nonnull (strstr (error->message, "banger-no-such-command"));
}

static void
test_exec_output (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *out = NULL, *err = NULL;
  const char *argv[] = { "sh", "-c", "echo to-out; echo to-err >&2; echo more-out", NULL };
  int status = run_exec_full (f->client, argv, NULL, NULL, &out, &err, &error);
  g_assert_no_error (error);
  g_assert_cmpint (status, ==, 0);
  g_assert_cmpstr (out, ==, "to-out\nmore-out\n");
  g_assert_cmpstr (err, ==, "to-err\n");
}

static void
test_exec_stdin (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *out = NULL;
  const char *argv[] = { "cat", NULL };
  int status
      = run_exec_full (f->client, argv, NULL, "piped through cat\nline two\n", &out, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (status, ==, 0);
  g_assert_cmpstr (out, ==, "piped through cat\nline two\n");
}

typedef struct {
  int fd;
  gsize len;
  GString *got;
} PipeJob;

static gpointer
writer_thread (gpointer data)
{
  PipeJob *j = data;
  g_autofree guint8 *buf = g_malloc (j->len);
  for (gsize i = 0; i < j->len; i++)
    buf[i] = (guint8)(i * 7 + i / 251);
  gsize off = 0;
  while (off < j->len) {
    gssize n = write (j->fd, buf + off, j->len - off);
    g_assert_cmpint (n, >, 0);
    off += (gsize)n;
  }
  close (j->fd);
  return NULL;
}

static gpointer
reader_thread (gpointer data)
{
  PipeJob *j = data;
  char buf[65536];
  gssize n;
  while ((n = read (j->fd, buf, sizeof buf)) > 0)
    g_string_append_len (j->got, buf, n);
  close (j->fd);
  return NULL;
}

static void
stdin_through (Fixture *f, const char *const *argv, gsize len, const char *what)
{
  g_autoptr (GError) error = NULL;
  int in_p[2], out_p[2];
  g_assert_no_errno (pipe (in_p));
  g_assert_no_errno (pipe (out_p));
  g_autoptr (BangerAgentExec) exec
      = banger_agent_client_exec (f->client, argv, NULL, in_p[0], out_p[1], -1, &error);
  g_assert_no_error (error);
  close (in_p[0]);
  close (out_p[1]);
  PipeJob wj = { .fd = in_p[1], .len = len };
  PipeJob rj = { .fd = out_p[0], .got = g_string_new (NULL) };
  GThread *wt = g_thread_new ("writer", writer_thread, &wj);
  GThread *rt = g_thread_new ("reader", reader_thread, &rj);
  Wait w = { 0 };
  banger_agent_exec_wait_async (exec, NULL, store_result_cb, &w);
  g_autoptr (GAsyncResult) res = wait_result (&w, what);
  g_assert_cmpint (banger_agent_exec_wait_finish (exec, res, &error), ==, 0);
  g_assert_no_error (error);
  g_thread_join (wt);
  g_thread_join (rt);
  g_assert_cmpuint (rj.got->len, ==, len);
  for (gsize i = 0; i < len; i++)
    if ((guint8)rj.got->str[i] != (guint8)(i * 7 + i / 251))
      g_error ("byte %" G_GSIZE_FORMAT " differs", i);
  g_string_free (rj.got, TRUE);
}

/* 4 MiB through `cat`: more than any buffer on the way, so the flow control
 * in both directions is exercised. */
static void
test_exec_stdin_large (Fixture *f, gconstpointer data)
{
  const char *argv[] = { "cat", NULL };
  stdin_through (f, argv, 4 * 1024 * 1024, "cat of 4 MiB");
}

/* A command that does not read its stdin for a while (tar writing a big
 * file to a slow disk): the agent's stdin buffer fills, it stops reading
 * the host's frames, and those already received wait, whole, for as long
 * as it takes; not one byte is lost and the end of input still arrives.
 * (The wait is the guest command's own slowness, not synchronisation.) */
static void
test_exec_stdin_slow_reader (Fixture *f, gconstpointer data)
{
  const char *argv[] = { "sh", "-c", "sleep 2.5; exec cat", NULL };
  stdin_through (f, argv, 12 * 1024 * 1024, "a slow reader of 12 MiB");
}

static void
test_exec_env_cwd (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *out = NULL;
  const char *env[] = { "BANGER_TEST_VAR=hello world", "HOME=/banger-home", NULL };
  const char *argv[] = { "sh", "-c", "echo \"$BANGER_TEST_VAR\"; echo \"$HOME\"; pwd", NULL };
  GVariantDict d;
  g_variant_dict_init (&d, NULL);
  g_variant_dict_insert_value (&d, "env", g_variant_new_strv (env, -1));
  g_variant_dict_insert (&d, "cwd", "s", f->dir);
  g_variant_dict_insert (&d, "token", "s", "ignored-by-the-client");
  int status = run_exec_full (f->client, argv, g_variant_dict_end (&d), NULL, &out, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (status, ==, 0);
  g_autofree char *want = g_strdup_printf ("hello world\n/banger-home\n%s\n", f->dir);
  g_assert_cmpstr (out, ==, want);

  /* A bad option type is refused before anything is sent. */
  g_variant_dict_init (&d, NULL);
  g_variant_dict_insert (&d, "tty", "s", "yes");
  g_autoptr (GVariant) bad = g_variant_ref_sink (g_variant_dict_end (&d));
  g_autoptr (BangerAgentExec) exec
      = banger_agent_client_exec (f->client, argv, bad, -1, -1, -1, &error);
  g_assert_null (exec);
  g_assert_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT);
}

/* Collects a pipe's output in the main loop so a test can wait for text. */
typedef struct {
  GInputStream *in;
  GString *text;
  char buf[4096];
  gboolean eof;
} Collector;

static void
collect_cb (GObject *source, GAsyncResult *res, gpointer data)
{
  Collector *c = data;
  gssize n = g_input_stream_read_finish (c->in, res, NULL);
  if (n <= 0) {
    c->eof = TRUE;
    return;
  }
  g_string_append_len (c->text, c->buf, n);
  g_input_stream_read_async (c->in, c->buf, sizeof c->buf, G_PRIORITY_DEFAULT, NULL, collect_cb, c);
}

static void
collector_start (Collector *c, int fd)
{
  c->in = g_unix_input_stream_new (fd, TRUE);
  c->text = g_string_new (NULL);
  g_input_stream_read_async (c->in, c->buf, sizeof c->buf, G_PRIORITY_DEFAULT, NULL, collect_cb, c);
}

static void
collector_wait_for (Collector *c, const char *needle)
{
  guint id = g_timeout_add_seconds (TIMEOUT_S, timeout_cb, (gpointer)needle);
  while (strstr (c->text->str, needle) == NULL) {
    g_assert_false (c->eof);
    g_main_context_iteration (NULL, TRUE);
  }
  g_source_remove (id);
}

static void
collector_finish (Collector *c)
{
  while (!c->eof)
    g_main_context_iteration (NULL, TRUE);
  g_object_unref (c->in);
  g_string_free (c->text, TRUE);
}

static void
test_exec_pty (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  int out_p[2];
  /* The trap answers a window change with the new size. */
  const char *argv[] = { "sh", "-c",
                         "tty; stty size; trap 'stty size; exit 7' WINCH; echo ready; "
                         "while :; do sleep 0.05; done",
                         NULL };
  GVariantDict d;
  g_variant_dict_init (&d, NULL);
  g_variant_dict_insert (&d, "tty", "b", TRUE);
  g_variant_dict_insert (&d, "rows", "u", 30);
  g_variant_dict_insert (&d, "cols", "u", 100);
  g_autoptr (GVariant) opts = g_variant_ref_sink (g_variant_dict_end (&d));
  g_assert_no_errno (pipe (out_p));
  g_autoptr (BangerAgentExec) exec
      = banger_agent_client_exec (f->client, argv, opts, -1, out_p[1], -1, &error);
  g_assert_no_error (error);
  close (out_p[1]);
  Collector c = { 0 };
  collector_start (&c, out_p[0]);
  collector_wait_for (&c, "ready");
  g_assert_nonnull (strstr (c.text->str, "/dev/pts/"));
  g_assert_nonnull (strstr (c.text->str, "30 100"));
  g_assert_true (banger_agent_exec_resize (exec, 40, 120, &error));
  g_assert_no_error (error);
  collector_wait_for (&c, "40 120");
  Wait w = { 0 };
  banger_agent_exec_wait_async (exec, NULL, store_result_cb, &w);
  g_autoptr (GAsyncResult) res = wait_result (&w, "pty exec");
  g_assert_cmpint (banger_agent_exec_wait_finish (exec, res, &error), ==, 7);
  g_assert_no_error (error);
  collector_finish (&c);
}

static void
test_exec_signal (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  const char *argv[] = { "sleep", "100", NULL };
  g_autoptr (BangerAgentExec) exec
      = banger_agent_client_exec (f->client, argv, NULL, -1, -1, -1, &error);
  g_assert_no_error (error);
  /* Wait for the agent's report of the start (an event, not a delay). */
  guint id = g_timeout_add_seconds (TIMEOUT_S, timeout_cb, (gpointer) "exec start");
  while (banger_agent_exec_get_pid (exec) == 0)
    g_main_context_iteration (NULL, TRUE);
  g_source_remove (id);
  g_assert_true (banger_agent_exec_signal (exec, SIGINT, &error));
  g_assert_no_error (error);
  Wait w = { 0 };
  banger_agent_exec_wait_async (exec, NULL, store_result_cb, &w);
  g_autoptr (GAsyncResult) res = wait_result (&w, "sleep to end");
  g_assert_cmpint (banger_agent_exec_wait_finish (exec, res, &error), ==, 130);
  g_assert_no_error (error);
  g_assert_false (banger_agent_exec_signal (exec, SIGINT, &error));
  g_assert_error (error, BANGER_ERROR, BANGER_ERROR_BAD_STATE);
}

/* Two commands over one connection: the second completes while the first
 * still waits for its stdin. */
static void
test_exec_concurrent (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  int in_p[2], out_p[2];
  const char *cat[] = { "cat", NULL };
  const char *echo[] = { "echo", "second", NULL };
  g_assert_no_errno (pipe (in_p));
  g_assert_no_errno (pipe (out_p));
  g_autoptr (BangerAgentExec) first
      = banger_agent_client_exec (f->client, cat, NULL, in_p[0], out_p[1], -1, &error);
  g_assert_no_error (error);
  close (in_p[0]);
  close (out_p[1]);
  Collector c = { 0 };
  collector_start (&c, out_p[0]);
  g_assert_cmpint (write (in_p[1], "first\n", 6), ==, 6);
  collector_wait_for (&c, "first\n");

  g_autofree char *out = NULL;
  int status = run_exec_full (f->client, echo, NULL, NULL, &out, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (status, ==, 0);
  g_assert_cmpstr (out, ==, "second\n");

  close (in_p[1]);
  Wait w = { 0 };
  banger_agent_exec_wait_async (first, NULL, store_result_cb, &w);
  g_autoptr (GAsyncResult) res = wait_result (&w, "first exec");
  g_assert_cmpint (banger_agent_exec_wait_finish (first, res, &error), ==, 0);
  g_assert_no_error (error);
  collector_finish (&c);
}

/* ---- files --------------------------------------------------------------- */

static void
test_files_roundtrip (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  const gsize len = 300 * 1024 + 17;
  g_autofree guint8 *bytes = g_malloc (len);
  g_autofree char *path = g_build_filename (f->dir, "uploaded.bin", NULL);
  for (gsize i = 0; i < len; i++)
    bytes[i] = (guint8)g_random_int ();
  g_autoptr (GInputStream) src = g_memory_input_stream_new_from_data (bytes, len, NULL);
  Wait w = { 0 };
  banger_agent_client_put_file_async (f->client, path, 0640, src, NULL, store_result_cb, &w);
  g_autoptr (GAsyncResult) res = wait_result (&w, "put");
  g_assert_true (banger_agent_client_put_file_finish (f->client, res, &error));
  g_assert_no_error (error);
  struct stat st;
  g_assert_no_errno (stat (path, &st));
  g_assert_cmpuint (st.st_mode & 07777, ==, 0640);
  g_assert_cmpuint (st.st_size, ==, len);

  g_autoptr (GOutputStream) dest = g_memory_output_stream_new_resizable ();
  Wait w2 = { 0 };
  banger_agent_client_get_file_async (f->client, path, dest, NULL, store_result_cb, &w2);
  g_autoptr (GAsyncResult) res2 = wait_result (&w2, "get");
  guint mode = 0;
  g_assert_true (banger_agent_client_get_file_finish (f->client, res2, &mode, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (mode, ==, 0640);
  g_output_stream_close (dest, NULL, NULL);
  g_autoptr (GBytes) got = g_memory_output_stream_steal_as_bytes (G_MEMORY_OUTPUT_STREAM (dest));
  g_assert_cmpmem (g_bytes_get_data (got, NULL), g_bytes_get_size (got), bytes, len);

  /* A missing file is NotFound, and names the path. */
  g_autofree char *missing = g_build_filename (f->dir, "missing", NULL);
  g_autoptr (GOutputStream) dest2 = g_memory_output_stream_new_resizable ();
  Wait w3 = { 0 };
  banger_agent_client_get_file_async (f->client, missing, dest2, NULL, store_result_cb, &w3);
  g_autoptr (GAsyncResult) res3 = wait_result (&w3, "get missing");
  g_assert_false (banger_agent_client_get_file_finish (f->client, res3, NULL, &error));
  g_assert_error (error, BANGER_ERROR, BANGER_ERROR_NOT_FOUND);
  g_assert_nonnull (strstr (error->message, "missing"));
}

/* ---- stats, ports, boot id ----------------------------------------------- */

static guint64
meminfo_kib (const char *key)
{
  g_autofree char *text = NULL;
  g_assert_true (g_file_get_contents ("/proc/meminfo", &text, NULL, NULL));
  const char *p = strstr (text, key);
  g_assert_nonnull (p);
  return g_ascii_strtoull (p + strlen (key), NULL, 10);
}

static void
test_stats (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  Wait w = { 0 };
  banger_agent_client_get_stats_async (f->client, NULL, store_result_cb, &w);
  g_autoptr (GAsyncResult) res = wait_result (&w, "stats");
  g_autoptr (GVariant) stats = banger_agent_client_get_stats_finish (f->client, res, &error);
  g_assert_no_error (error);
  guint64 total = 0, avail = 0, disk_total = 0, disk_free = 0;
  double load1 = -1, uptime = -1;
  g_assert_true (g_variant_lookup (stats, "mem_total_bytes", "t", &total));
  g_assert_true (g_variant_lookup (stats, "mem_available_bytes", "t", &avail));
  g_assert_true (g_variant_lookup (stats, "disk_total_bytes", "t", &disk_total));
  g_assert_true (g_variant_lookup (stats, "disk_free_bytes", "t", &disk_free));
  g_assert_true (g_variant_lookup (stats, "load1", "d", &load1));
  g_assert_true (g_variant_lookup (stats, "uptime_seconds", "d", &uptime));
  g_assert_cmpuint (total, ==, meminfo_kib ("MemTotal:") * 1024);
  g_assert_cmpuint (avail, >, 0);
  g_assert_cmpuint (avail, <=, total);
  g_assert_cmpuint (disk_total, >, 0);
  g_assert_cmpuint (disk_free, <=, disk_total);
  g_assert_cmpfloat (load1, >=, 0);
  g_assert_cmpfloat (uptime, >, 0);
}

static void
test_ports (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  int fd = socket (AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
  socklen_t slen = sizeof sin;
  g_assert_no_errno (bind (fd, (struct sockaddr *)&sin, sizeof sin));
  g_assert_no_errno (listen (fd, 1));
  g_assert_no_errno (getsockname (fd, (struct sockaddr *)&sin, &slen));
  guint16 port = ntohs (sin.sin_port);

  Wait w = { 0 };
  banger_agent_client_list_ports_async (f->client, NULL, store_result_cb, &w);
  g_autoptr (GAsyncResult) res = wait_result (&w, "ports");
  g_autoptr (GVariant) ports = banger_agent_client_list_ports_finish (f->client, res, &error);
  g_assert_no_error (error);
  g_assert_true (g_variant_is_of_type (ports, G_VARIANT_TYPE ("a(ssqus)")));
  GVariantIter iter;
  const char *proto, *addr, *comm;
  guint16 p;
  guint32 pid;
  gboolean found = FALSE;
  g_variant_iter_init (&iter, ports);
  while (g_variant_iter_next (&iter, "(&s&squ&s)", &proto, &addr, &p, &pid, &comm)) {
    if (p != port || g_strcmp0 (proto, "tcp") != 0)
      continue;
    g_assert_cmpstr (addr, ==, "127.0.0.1");
    g_assert_cmpuint (pid, ==, getpid ());
    g_assert_true (g_str_has_prefix ("test-agent", comm));
    found = TRUE;
  }
  g_assert_true (found);
  close (fd);
}

static void
test_boot_id (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *host = NULL;
  g_assert_true (g_file_get_contents ("/proc/sys/kernel/random/boot_id", &host, NULL, NULL));
  g_strstrip (host);
  g_assert_cmpstr (banger_agent_client_get_boot_id (f->client), ==, host);
  g_assert_cmpuint (banger_agent_client_get_protocol_version (f->client), ==, 1);
  g_assert_cmpstr (banger_agent_client_get_agent_version (f->client), !=, "");
  Wait w = { 0 };
  banger_agent_client_get_boot_id_async (f->client, NULL, store_result_cb, &w);
  g_autoptr (GAsyncResult) res = wait_result (&w, "boot id");
  g_autofree char *id = banger_agent_client_get_boot_id_finish (f->client, res, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (id, ==, host);
}

/* ---- setup, power-off ---------------------------------------------------- */

static void
setup_root (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  f->dir = g_dir_make_tmp ("banger-agent-test-XXXXXX", &error);
  g_assert_no_error (error);
  f->sock = g_build_filename (f->dir, "agent.sock", NULL);
  g_autofree char *root = g_build_filename (f->dir, "root", NULL);
  g_assert_no_errno (g_mkdir (root, 0755));
  const char *extra[] = { "--root", root, NULL };
  start_agent (f, extra);
  f->client = connect_client (f, &error);
  g_assert_no_error (error);
}

static void
test_setup_keys (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *root = g_build_filename (f->dir, "root", NULL);
  Wait w = { 0 };
  gboolean sshd = TRUE;
  banger_agent_client_setup_async (f->client, "ssh-ed25519 AAAA user@host\n",
                                   "-----BEGIN OPENSSH PRIVATE KEY-----\nx\n", "ssh-ed25519 BBBB\n",
                                   NULL, store_result_cb, &w);
  g_autoptr (GAsyncResult) res = wait_result (&w, "setup");
  g_assert_true (banger_agent_client_setup_finish (f->client, res, &sshd, &error));
  g_assert_no_error (error);
  g_assert_false (sshd); /* never in test mode */

  static const struct {
    const char *rel, *content;
    guint mode;
  } want[] = {
    { "root/.ssh/authorized_keys", "ssh-ed25519 AAAA user@host\n", 0600 },
    { "etc/ssh/ssh_host_ed25519_key", "-----BEGIN OPENSSH PRIVATE KEY-----\nx\n", 0600 },
    { "etc/ssh/ssh_host_ed25519_key.pub", "ssh-ed25519 BBBB\n", 0644 },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (want); i++) {
    g_autofree char *path = g_build_filename (root, want[i].rel, NULL);
    g_autofree char *text = NULL;
    struct stat st;
    g_assert_true (g_file_get_contents (path, &text, NULL, NULL));
    g_assert_cmpstr (text, ==, want[i].content);
    g_assert_no_errno (stat (path, &st));
    g_assert_cmpuint (st.st_mode & 07777, ==, want[i].mode);
  }
  g_autofree char *ssh_dir = g_build_filename (root, "root", ".ssh", NULL);
  struct stat st;
  g_assert_no_errno (stat (ssh_dir, &st));
  g_assert_cmpuint (st.st_mode & 07777, ==, 0700);
}

/* Warm start (docs/warm-start.md): a clone's identity in SETUP. In test
 * mode the agent writes only the files under --root (the clock, hostname,
 * network and RNG are the host's), and says so in IDENTITY. */
static void
test_setup_identity (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *root = g_build_filename (f->dir, "root", NULL);
  g_autofree char *etc = g_build_filename (root, "etc", NULL);
  g_autoptr (GBytes) entropy = g_bytes_new_static ("0123456789abcdef", 16);
  BangerAgentIdentity id = {
    .mac = "52:54:00:12:34:56",
    .ip_cidr = "10.77.0.9/24",
    .gw = "10.77.0.1",
    .dns = "10.77.0.1",
    .hostname = "clone-a",
    .machine_id = "0123456789abcdef0123456789abcdef",
    .entropy = entropy,
    .clock_ns = (guint64)g_get_real_time () * 1000,
  };
  gboolean sshd = TRUE, applied = FALSE;

  g_assert_true (banger_agent_client_get_has_identity (f->client));
  g_assert_no_errno (g_mkdir (etc, 0755));
  {
    Wait w = { 0 };
    banger_agent_client_setup_identity_async (f->client, "ssh-ed25519 AAAA user@host\n", NULL,
                                              NULL, &id, NULL, store_result_cb, &w);
    g_autoptr (GAsyncResult) res = wait_result (&w, "setup identity");
    g_assert_true (banger_agent_client_setup_identity_finish (f->client, res, &sshd, &applied,
                                                              &error));
    g_assert_no_error (error);
  }
  g_assert_true (applied);
  static const struct {
    const char *rel, *content;
  } want[] = {
    { "etc/machine-id", "0123456789abcdef0123456789abcdef\n" },
    { "etc/hostname", "clone-a\n" },
    { "etc/resolv.conf", "nameserver 10.77.0.1\n" },
    { "root/.ssh/authorized_keys", "ssh-ed25519 AAAA user@host\n" },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (want); i++) {
    g_autofree char *path = g_build_filename (root, want[i].rel, NULL);
    g_autofree char *text = NULL;
    g_assert_true (g_file_get_contents (path, &text, NULL, NULL));
    g_assert_cmpstr (text, ==, want[i].content);
  }

  /* Without identity fields: no IDENTITY in the answer. */
  {
    Wait w = { 0 };
    banger_agent_client_setup_identity_async (f->client, NULL, NULL, NULL, NULL, NULL,
                                              store_result_cb, &w);
    g_autoptr (GAsyncResult) res = wait_result (&w, "setup without identity");
    g_assert_true (banger_agent_client_setup_identity_finish (f->client, res, NULL, &applied,
                                                              &error));
    g_assert_no_error (error);
    g_assert_false (applied);
  }

  /* Bad input is refused, naming it, and changes nothing: a multicast
   * MAC, a machine-id that is not 32 hex digits. */
  static const struct {
    const char *mac, *machine_id, *mentions;
  } bad[] = {
    { "53:54:00:12:34:56", "ffffffffffffffffffffffffffffffff", "53:54:00:12:34:56" },
    { "not-a-mac", "ffffffffffffffffffffffffffffffff", "not-a-mac" },
    { NULL, "../../etc/passwd", "machine-id" },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++) {
    BangerAgentIdentity b = { .mac = bad[i].mac, .hostname = "other",
                              .machine_id = bad[i].machine_id };
    Wait w = { 0 };
    g_autofree char *hostname = g_build_filename (root, "etc", "hostname", NULL);
    g_autofree char *text = NULL;

    banger_agent_client_setup_identity_async (f->client, NULL, NULL, NULL, &b, NULL,
                                              store_result_cb, &w);
    g_autoptr (GAsyncResult) res = wait_result (&w, "bad identity");
    g_assert_false (banger_agent_client_setup_identity_finish (f->client, res, NULL, NULL, &error));
    g_assert_nonnull (error);
    g_assert_nonnull (strstr (error->message, bad[i].mentions));
    g_clear_error (&error);
    g_assert_true (g_file_get_contents (hostname, &text, NULL, NULL));
    g_assert_cmpstr (text, ==, "clone-a\n");
  }
}

static void
test_poweroff (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  Wait w = { 0 };
  banger_agent_client_poweroff_async (f->client, NULL, store_result_cb, &w);
  g_autoptr (GAsyncResult) res = wait_result (&w, "poweroff");
  g_assert_true (banger_agent_client_poweroff_finish (f->client, res, &error));
  g_assert_no_error (error);
  /* In --listen-unix mode power-off means: exit 0. */
  g_assert_true (g_subprocess_wait (f->agent, NULL, &error));
  g_assert_no_error (error);
  g_assert_true (g_subprocess_get_if_exited (f->agent));
  g_assert_cmpint (g_subprocess_get_exit_status (f->agent), ==, 0);
  g_clear_object (&f->agent);
}

/* ---- reconnect ----------------------------------------------------------- */

/* /proc has no change notification: re-check it on a short tick, bounded
 * by the test timeout. */
static gboolean
tick_cb (gpointer data)
{
  return G_SOURCE_CONTINUE;
}

static void
test_reconnect (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  int out_p[2];
  const char *argv[] = { "sh", "-c", "echo started; exec yes banger-output-banger-output", NULL };
  g_assert_no_errno (pipe (out_p));
  g_autoptr (BangerAgentExec) exec
      = banger_agent_client_exec (f->client, argv, NULL, -1, out_p[1], -1, &error);
  g_assert_no_error (error);
  close (out_p[1]);
  Collector c = { 0 };
  collector_start (&c, out_p[0]);
  collector_wait_for (&c, "banger-output\n");
  guint pid = banger_agent_exec_get_pid (exec);
  g_assert_cmpuint (pid, >, 0);

  /* Drop the connection mid-output: the exec fails, the agent is left
   * with a half-sent stream in its queue for whoever connects next. */
  Wait w = { 0 };
  banger_agent_exec_wait_async (exec, NULL, store_result_cb, &w);
  banger_agent_client_close (f->client);
  g_autoptr (GAsyncResult) res = wait_result (&w, "exec to fail");
  g_assert_cmpint (banger_agent_exec_wait_finish (exec, res, &error), ==, -1);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED);
  g_clear_error (&error);
  g_clear_object (&f->client);
  collector_finish (&c);

  f->client = connect_client (f, &error);
  g_assert_no_error (error);
  /* The agent delivered what it had queued for the old host (as a
   * virtio-serial port does), starting mid-frame; the handshake skipped it. */
  g_test_message ("discarded %" G_GUINT64_FORMAT " bytes",
                  banger_agent_client_get_discarded_bytes (f->client));
  /* Not asserted: under load the agent may have flushed everything to the
   * socket before the close, leaving nothing stale (idle: ~64 KiB). */
  g_autofree char *out = NULL;
  const char *echo[] = { "echo", "after reconnect", NULL };
  int status = run_exec_full (f->client, echo, NULL, NULL, &out, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (status, ==, 0);
  g_assert_cmpstr (out, ==, "after reconnect\n");

  /* The old session's command was killed (its pid is gone once reaped). */
  guint id = g_timeout_add_seconds (TIMEOUT_S, timeout_cb, (gpointer) "old exec to die");
  guint tick = g_timeout_add (10, tick_cb, NULL);
  g_autofree char *proc = g_strdup_printf ("/proc/%u", pid);
  while (g_file_test (proc, G_FILE_TEST_EXISTS))
    g_main_context_iteration (NULL, TRUE);
  g_source_remove (tick);
  g_source_remove (id);
}

/* ---- malformed input, on a raw socket ------------------------------------- */

static int
raw_connect (Fixture *f)
{
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  struct timeval tv = { .tv_sec = TIMEOUT_S };
  int fd = socket (AF_UNIX, SOCK_STREAM, 0);
  g_strlcpy (addr.sun_path, f->sock, sizeof addr.sun_path);
  g_assert_no_errno (connect (fd, (struct sockaddr *)&addr, sizeof addr));
  /* A reply that never comes fails the test instead of hanging it. */
  g_assert_no_errno (setsockopt (fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv));
  return fd;
}

static void
raw_send (int fd, const void *data, gsize len)
{
  g_assert_cmpint (write (fd, data, len), ==, (gssize)len);
}

static void
raw_frame (int fd, guint8 type, guint32 stream, const BngrBuf *payload)
{
  BngrBuf b;
  bngr_buf_init (&b);
  g_assert_true (bngr_frame_append (&b, type, 0, stream, payload ? payload->data : NULL,
                                    payload ? payload->len : 0));
  raw_send (fd, b.data, b.len);
  bngr_buf_clear (&b);
}

typedef struct {
  BngrHeader hdr;
  GBytes *payload;
} RawFrame;

static gboolean
raw_read_frame (int fd, GByteArray *buf, RawFrame *out)
{
  for (;;) {
    BngrHeader hdr;
    const uint8_t *payload;
    size_t consumed;
    const char *reason;
    if (buf->len > 0) {
      BngrParseResult r = bngr_parse (buf->data, buf->len, &hdr, &payload, &consumed, &reason);
      if (r == BNGR_PARSE_FRAME) {
        out->hdr = hdr;
        out->payload = g_bytes_new (payload, hdr.length);
        g_byte_array_remove_range (buf, 0, consumed);
        return TRUE;
      }
      if (r == BNGR_PARSE_SKIPPED) {
        g_byte_array_remove_range (buf, 0, consumed);
        continue;
      }
    }
    guint8 tmp[4096];
    gssize n = read (fd, tmp, sizeof tmp);
    if (n <= 0)
      return FALSE;
    g_byte_array_append (buf, tmp, n);
  }
}

/* Reads until a frame on @stream of @type arrives; counts ERRORs on 0. */
static RawFrame
raw_expect (int fd, GByteArray *buf, guint32 stream, guint8 type, guint *conn_errors)
{
  RawFrame fr;
  for (;;) {
    g_assert_true (raw_read_frame (fd, buf, &fr));
    if (fr.hdr.stream == 0 && fr.hdr.type == BNGR_T_ERROR && conn_errors != NULL)
      (*conn_errors)++;
    if (fr.hdr.stream == stream && fr.hdr.type == type)
      return fr;
    g_bytes_unref (fr.payload);
  }
}

static void
raw_ping_ok (int fd, GByteArray *buf, guint32 stream, guint *conn_errors)
{
  raw_frame (fd, BNGR_T_PING, stream, NULL);
  RawFrame fr = raw_expect (fd, buf, stream, BNGR_T_OK, conn_errors);
  g_bytes_unref (fr.payload);
}

static void
test_malformed_garbage (Fixture *f, gconstpointer data)
{
  int fd = raw_connect (f);
  g_autoptr (GByteArray) buf = g_byte_array_new ();
  guint8 junk[5000];
  for (gsize i = 0; i < sizeof junk; i++)
    junk[i] = (guint8)g_random_int ();
  /* Garbage, including a lone magic and a truncated header. */
  raw_send (fd, junk, sizeof junk);
  raw_send (fd, "BNGR", 4);
  raw_send (fd, "BNGR\x01\x33\x00", 7);
  raw_ping_ok (fd, buf, 11, NULL);
  close (fd);
}

static void
test_malformed_bad_crc (Fixture *f, gconstpointer data)
{
  int fd = raw_connect (f);
  g_autoptr (GByteArray) buf = g_byte_array_new ();
  BngrBuf b, p;
  guint errors = 0;
  bngr_buf_init (&b);
  bngr_buf_init (&p);
  bngr_put_str (&p, BNGR_F_PATH, "/etc/hostname");
  /* Payload corrupted after the CRC was computed. */
  g_assert_true (bngr_frame_append (&b, BNGR_T_FILE_GET, 0, 5, p.data, p.len));
  b.data[BNGR_HEADER_SIZE + 7] ^= 0x40;
  raw_send (fd, b.data, b.len);
  /* And a header corrupted in its stream id. */
  b.len = 0;
  g_assert_true (bngr_frame_append (&b, BNGR_T_PING, 0, 6, NULL, 0));
  b.data[9] ^= 1;
  raw_send (fd, b.data, b.len);
  raw_ping_ok (fd, buf, 12, &errors);
  g_assert_cmpuint (errors, >=, 1);
  bngr_buf_clear (&b);
  bngr_buf_clear (&p);

  /* A well-framed request with a truncated field is an error reply. */
  guint8 bad_payload[] = { BNGR_F_ARGV, 0, 0xff, 0xff, 0, 0, 's', 'h' };
  BngrBuf bp = { .data = bad_payload, .len = sizeof bad_payload };
  raw_frame (fd, BNGR_T_EXEC, 13, &bp);
  RawFrame fr = raw_expect (fd, buf, 13, BNGR_T_ERROR, NULL);
  g_bytes_unref (fr.payload);
  /* Unknown frame type. */
  raw_frame (fd, 0x7f, 14, NULL);
  fr = raw_expect (fd, buf, 14, BNGR_T_ERROR, NULL);
  g_bytes_unref (fr.payload);
  raw_ping_ok (fd, buf, 15, NULL);
  close (fd);
}

static void
test_malformed_oversized (Fixture *f, gconstpointer data)
{
  int fd = raw_connect (f);
  g_autoptr (GByteArray) buf = g_byte_array_new ();
  guint8 hdr[BNGR_HEADER_SIZE];
  guint32 v;
  guint errors = 0;
  /* A valid header announcing 512 MiB: must be refused, not waited for. */
  v = GUINT32_TO_LE (BNGR_MAGIC);
  memcpy (hdr, &v, 4);
  hdr[4] = BNGR_PROTOCOL_VERSION;
  hdr[5] = BNGR_T_PING;
  hdr[6] = hdr[7] = 0;
  v = GUINT32_TO_LE (9);
  memcpy (hdr + 8, &v, 4);
  v = GUINT32_TO_LE (512u * 1024 * 1024);
  memcpy (hdr + 12, &v, 4);
  v = 0;
  memcpy (hdr + 16, &v, 4);
  v = GUINT32_TO_LE (bngr_crc32 (0, hdr, 20));
  memcpy (hdr + 20, &v, 4);
  raw_send (fd, hdr, sizeof hdr);
  raw_ping_ok (fd, buf, 16, &errors);
  g_assert_cmpuint (errors, ==, 1);
  close (fd);
}

/* A host that never completes its handshake gets G_IO_ERROR_TIMED_OUT. */
static void
test_handshake_timeout (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  int sv[2];
  g_assert_no_errno (socketpair (AF_UNIX, SOCK_STREAM, 0, sv));
  g_autoptr (GSocket) sock = g_socket_new_from_fd (sv[0], &error);
  g_assert_no_error (error);
  g_autoptr (GSocketConnection) conn = g_socket_connection_factory_create_connection (sock);
  g_autoptr (BangerAgentClient) client = banger_agent_client_new (G_IO_STREAM (conn));
  Wait w = { 0 };
  banger_agent_client_handshake_async (client, 200, NULL, store_result_cb, &w);
  g_autoptr (GAsyncResult) res = wait_result (&w, "handshake timeout");
  g_assert_false (banger_agent_client_handshake_finish (client, res, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
  close (sv[1]);
}

/* Network set-up from banger.* parameters, inside a network and UTS
 * namespace this test creates (a tap named eth0 stands in for virtio-net). */
static void
test_netconf (void)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("banger-agent-net-XXXXXX", &error);
  g_assert_no_error (error);
  g_autofree char *etc = g_build_filename (dir, "etc", NULL);
  g_assert_no_errno (g_mkdir (etc, 0755));
  const char *build = g_getenv ("BANGER_BUILD_ROOT");
  g_autofree char *agent = agent_under_test_path (build);
  g_autofree char *script = g_strdup_printf (
      "set -e; ip tuntap add dev eth0 mode tap; "
      "'%s' --root '%s' --apply-cmdline "
      "'console=ttyS0 banger.ip=10.77.0.9/24 banger.gw=10.77.0.1 banger.hostname=netvm "
      "banger.dns=10.77.0.1'; "
      "ip -4 -o addr show dev eth0; ip -4 route show default; ip -o link show lo; hostname",
      agent, dir);
  const char *argv[] = { "unshare", "-nu", "sh", "-c", script, NULL };
  g_autofree char *out = NULL, *err = NULL;
  int status = 0;
  g_spawn_sync (NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, &out, &err, &status,
                &error);
  g_assert_no_error (error);
  if (!g_spawn_check_wait_status (status, NULL))
    g_error ("netconf script failed: %s%s", out, err);
  g_assert_nonnull (strstr (out, "inet 10.77.0.9/24 brd 10.77.0.255"));
  g_assert_nonnull (strstr (out, "default via 10.77.0.1 dev eth0"));
  g_assert_nonnull (strstr (out, "<LOOPBACK,UP"));
  g_assert_true (g_str_has_suffix (out, "netvm\n"));
  g_autofree char *resolv_path = g_build_filename (etc, "resolv.conf", NULL);
  g_autofree char *hostname_path = g_build_filename (etc, "hostname", NULL);
  g_autofree char *resolv = NULL, *hostname = NULL;
  g_assert_true (g_file_get_contents (resolv_path, &resolv, NULL, NULL));
  g_assert_cmpstr (resolv, ==, "nameserver 10.77.0.1\n");
  g_assert_true (g_file_get_contents (hostname_path, &hostname, NULL, NULL));
  g_assert_cmpstr (hostname, ==, "netvm\n");
  banger_remove_tree (dir, NULL);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  signal (SIGPIPE, SIG_IGN);
#define T(path, fn) g_test_add (path, Fixture, NULL, fixture_setup, fn, fixture_teardown)
  T ("/agent/exec/exit-codes", test_exec_exit_codes);
  T ("/agent/exec/not-found", test_exec_not_found);
  T ("/agent/exec/output", test_exec_output);
  T ("/agent/exec/stdin", test_exec_stdin);
  T ("/agent/exec/stdin-large", test_exec_stdin_large);
  T ("/agent/exec/stdin-slow-reader", test_exec_stdin_slow_reader);
  T ("/agent/exec/env-cwd", test_exec_env_cwd);
  T ("/agent/exec/pty", test_exec_pty);
  T ("/agent/exec/signal", test_exec_signal);
  T ("/agent/exec/concurrent", test_exec_concurrent);
  T ("/agent/files/roundtrip", test_files_roundtrip);
  T ("/agent/stats", test_stats);
  T ("/agent/ports", test_ports);
  T ("/agent/boot-id", test_boot_id);
  T ("/agent/poweroff", test_poweroff);
  T ("/agent/reconnect", test_reconnect);
  T ("/agent/malformed/garbage", test_malformed_garbage);
  T ("/agent/malformed/bad-crc", test_malformed_bad_crc);
  T ("/agent/malformed/oversized", test_malformed_oversized);
  T ("/agent/handshake-timeout", test_handshake_timeout);
  g_test_add ("/agent/setup/keys", Fixture, NULL, setup_root, test_setup_keys, fixture_teardown);
  g_test_add ("/agent/setup/identity", Fixture, NULL, setup_root, test_setup_identity,
              fixture_teardown);
#undef T
  g_test_add_func ("/agent/netconf", test_netconf);
  return g_test_run ();
}
