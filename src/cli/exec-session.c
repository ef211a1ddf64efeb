#include "config.h"

#include "exec-session.h"

#include <gio/gunixfdlist.h>
#include <glib-unix.h>
#include <glib/gi18n.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include "banger-error.h"
#include "errors.h"

/* A signal can arrive before bangerd has registered the command under our
 * token (the Exec call is still on its way): retry for this long, then
 * give up on that signal. */
#define SIGNAL_RETRY_MS    100
#define SIGNAL_RETRY_COUNT 50

/* Ctrl-C this many times without the guest command ending: send SIGKILL,
 * for commands that ignore SIGINT. */
#define SIGINT_KILL_COUNT 3

typedef struct {
  BangerVM *vm;
  char *token;
  GMainLoop *loop;

  gboolean done;
  int exit_status;
  GError *error;

  int sigint_count;
  int pending_signal;
  guint retries;
  guint retry_id;
  gboolean signal_in_flight;
} Session;

static void send_pending_signal (Session *s);

static gboolean
retry_signal (gpointer data)
{
  Session *s = data;

  s->retry_id = 0;
  send_pending_signal (s);
  return G_SOURCE_REMOVE;
}

static void
on_signal_sent (GObject *source, GAsyncResult *res, gpointer data)
{
  Session *s = data;
  g_autoptr (GError) error = NULL;

  s->signal_in_flight = FALSE;
  if (banger_vm_call_signal_exec_finish (BANGER_VM (source), res, &error)) {
    s->pending_signal = 0;
    return;
  }
  g_debug ("SignalExec: %s", error->message);
  if (!s->done && g_error_matches (error, BANGER_ERROR, BANGER_ERROR_NOT_FOUND)
      && s->retries++ < SIGNAL_RETRY_COUNT) {
    s->retry_id = g_timeout_add (SIGNAL_RETRY_MS, retry_signal, s);
    return;
  }
  s->pending_signal = 0;
}

static void
send_pending_signal (Session *s)
{
  if (s->done || s->pending_signal == 0 || s->signal_in_flight || s->retry_id != 0)
    return;
  s->signal_in_flight = TRUE;
  banger_vm_call_signal_exec (s->vm, s->token, s->pending_signal, NULL, on_signal_sent, s);
}

static void
forward_signal (Session *s, int signum)
{
  if (signum == SIGINT && ++s->sigint_count >= SIGINT_KILL_COUNT)
    signum = SIGKILL;
  /* The newest signal wins; one in flight still goes out first. */
  s->pending_signal = signum;
  s->retries = 0;
  send_pending_signal (s);
}

static gboolean
on_sigint (gpointer data)
{
  forward_signal (data, SIGINT);
  return G_SOURCE_CONTINUE;
}

static gboolean
on_sigterm (gpointer data)
{
  forward_signal (data, SIGTERM);
  return G_SOURCE_CONTINUE;
}

static gboolean
on_sighup (gpointer data)
{
  forward_signal (data, SIGHUP);
  return G_SOURCE_CONTINUE;
}

static gboolean
get_window_size (guint *rows, guint *cols)
{
  struct winsize ws = { 0 };

  if ((ioctl (STDIN_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0)
      || (ioctl (STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0)) {
    *rows = ws.ws_row;
    *cols = ws.ws_col;
    return TRUE;
  }
  return FALSE;
}

static void
on_resized (GObject *source, GAsyncResult *res, gpointer data)
{
  g_autoptr (GError) error = NULL;

  if (!banger_vm_call_resize_exec_finish (BANGER_VM (source), res, &error))
    g_debug ("ResizeExec: %s", error->message);
}

static gboolean
on_sigwinch (gpointer data)
{
  Session *s = data;
  guint rows, cols;

  if (!s->done && get_window_size (&rows, &cols))
    banger_vm_call_resize_exec (s->vm, s->token, rows, cols, NULL, on_resized, s);
  return G_SOURCE_CONTINUE;
}

static void
on_exec_done (GObject *source, GAsyncResult *res, gpointer data)
{
  Session *s = data;

  banger_vm_call_exec_finish (BANGER_VM (source), &s->exit_status, NULL, res, &s->error);
  s->done = TRUE;
  g_main_loop_quit (s->loop);
}

gboolean
banger_cli_exec (BangerVM *vm, const char *name, const BangerExecSpec *spec, int *exit_status,
                 GError **error)
{
  Session s = { 0 };
  g_autoptr (GUnixFDList) fds = g_unix_fd_list_new ();
  g_auto (GVariantBuilder) options = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE_VARDICT);
  struct termios saved;
  gboolean raw = FALSE;
  guint sources[4] = { 0 };
  int timeout;

  for (int fd = 0; fd <= 2; fd++) {
    int pass = fd;
    int added;

    /* A probe's output would only confuse the user. */
    if (spec->quiet) {
      pass = open ("/dev/null", (fd == 0 ? O_RDONLY : O_WRONLY) | O_CLOEXEC);
      if (pass < 0) {
        g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errno),
                     _ ("cannot open /dev/null: %s"), g_strerror (errno));
        return FALSE;
      }
    }
    added = g_unix_fd_list_append (fds, pass, error);
    if (spec->quiet)
      close (pass);
    if (added < 0) {
      g_prefix_error (error, _ ("cannot pass descriptor %d to bangerd: "), fd);
      return FALSE;
    }
  }

  s.vm = vm;
  s.token = g_uuid_string_random ();
  s.loop = g_main_loop_new (NULL, FALSE);

  g_variant_builder_add (&options, "{sv}", "token", g_variant_new_string (s.token));
  if (spec->env != NULL && spec->env[0] != NULL)
    g_variant_builder_add (&options, "{sv}", "env", g_variant_new_strv (spec->env, -1));
  if (spec->cwd != NULL)
    g_variant_builder_add (&options, "{sv}", "cwd", g_variant_new_string (spec->cwd));
  if (spec->tty) {
    guint rows, cols;

    g_variant_builder_add (&options, "{sv}", "tty", g_variant_new_boolean (TRUE));
    if (get_window_size (&rows, &cols)) {
      g_variant_builder_add (&options, "{sv}", "rows", g_variant_new_uint32 (rows));
      g_variant_builder_add (&options, "{sv}", "cols", g_variant_new_uint32 (cols));
    }
    /* The guest's pty does the line editing, echo and ^C; ours must pass
     * every key through untouched. */
    if (isatty (STDIN_FILENO) && tcgetattr (STDIN_FILENO, &saved) == 0) {
      struct termios r = saved;

      cfmakeraw (&r);
      raw = tcsetattr (STDIN_FILENO, TCSANOW, &r) == 0;
    }
    sources[3] = g_unix_signal_add (SIGWINCH, on_sigwinch, &s);
  }
  /* Signals meant for the command go to the command (in raw mode ^C is a
   * byte, so SIGINT comes only from kill). */
  sources[0] = g_unix_signal_add (SIGINT, on_sigint, &s);
  sources[1] = g_unix_signal_add (SIGTERM, on_sigterm, &s);
  sources[2] = g_unix_signal_add (SIGHUP, on_sighup, &s);

  /* The command runs as long as it likes. */
  timeout = g_dbus_proxy_get_default_timeout (G_DBUS_PROXY (vm));
  g_dbus_proxy_set_default_timeout (G_DBUS_PROXY (vm), G_MAXINT);
  banger_vm_call_exec (vm, spec->argv, g_variant_builder_end (&options), g_variant_new_handle (0),
                       g_variant_new_handle (1), g_variant_new_handle (2), fds, NULL, on_exec_done,
                       &s);
  g_main_loop_run (s.loop);
  g_dbus_proxy_set_default_timeout (G_DBUS_PROXY (vm), timeout);

  if (raw)
    tcsetattr (STDIN_FILENO, TCSANOW, &saved);
  for (guint i = 0; i < G_N_ELEMENTS (sources); i++)
    if (sources[i] != 0)
      g_source_remove (sources[i]);
  if (s.retry_id != 0)
    g_source_remove (s.retry_id);
  /* A SignalExec or ResizeExec reply may still be on its way and refers
   * to @s: let it arrive before @s goes away. */
  while (s.signal_in_flight)
    g_main_context_iteration (NULL, TRUE);
  g_main_loop_unref (s.loop);
  g_free (s.token);

  if (s.error != NULL) {
    g_propagate_error (error, s.error);
    banger_cli_error_annotate_vm (error, name);
    return FALSE;
  }
  *exit_status = s.exit_status;
  return TRUE;
}
