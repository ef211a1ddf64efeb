#include "config.h"

#include "job-progress.h"

#include <glib-unix.h>
#include <glib/gi18n.h>
#include <signal.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "banger-dbus.h"
#include "banger-error.h"
#include "errors.h"

#define MANAGER_NAME "org.banger.Manager"

/* After Cancel, how long to wait for the job to say it ended before giving
 * up on it: cancelling removes half-made files, which takes a moment. */
#define CANCEL_WAIT_S 30

/* Redraw the bar this often even without news, so rate and ETA stay fresh
 * while one big step runs. */
#define TICK_MS 500

/* The rate is an exponential moving average over samples at least this
 * far apart, so a burst of small updates does not make it jump. */
#define RATE_SAMPLE_US (250 * 1000)
#define RATE_WEIGHT    0.3

typedef struct {
  BangerJob *job;
  GMainLoop *loop;
  BangerProgressMode mode;
  char *job_path;

  gboolean ended;
  gboolean success;
  char *message;
  char *result;
  gboolean owner_lost;

  int interrupted; /* the signal that asked to cancel, 0 if none */
  guint cancel_timeout_id;

  /* rendering */
  gint64 start_us;
  gint64 sample_us;
  guint64 sample_bytes;
  double rate;
  char *last_line_message;
  int last_bucket;
  gboolean bar_drawn;
} Follow;

static void
follow_clear (Follow *f)
{
  g_clear_object (&f->job);
  g_clear_pointer (&f->loop, g_main_loop_unref);
  g_clear_pointer (&f->message, g_free);
  g_clear_pointer (&f->result, g_free);
  g_clear_pointer (&f->last_line_message, g_free);
  g_clear_pointer (&f->job_path, g_free);
  if (f->cancel_timeout_id != 0)
    g_source_remove (f->cancel_timeout_id);
}

static char *
format_duration (double seconds)
{
  guint64 s = (guint64)(seconds + 0.5);

  if (s >= 3600)
    return g_strdup_printf ("%" G_GUINT64_FORMAT ":%02u:%02u", s / 3600, (guint)(s / 60 % 60),
                            (guint)(s % 60));
  return g_strdup_printf ("%u:%02u", (guint)(s / 60), (guint)(s % 60));
}

static char *
format_bytes (guint64 bytes)
{
  return g_format_size_full (bytes, G_FORMAT_SIZE_IEC_UNITS);
}

char *
banger_job_format_bar (double progress, guint64 done, guint64 total, double rate, double eta_s,
                       const char *message, guint width)
{
  g_autoptr (GString) line = g_string_new (NULL);
  const guint bar_cells = 20;

  if (progress >= 0) {
    guint filled = (guint)(MIN (progress, 1.0) * bar_cells + 0.5);

    g_string_append_c (line, '[');
    for (guint i = 0; i < bar_cells; i++)
      g_string_append_c (line, i < filled ? '#' : '.');
    g_string_append_printf (line, "] %3d%%", (int)(MIN (progress, 1.0) * 100));
  }
  if (total > 0 || done > 0) {
    g_autofree char *d = format_bytes (done);

    if (line->len > 0)
      g_string_append (line, "  ");
    if (total > 0) {
      g_autofree char *t = format_bytes (total);
      g_string_append_printf (line, "%s/%s", d, t);
    } else {
      g_string_append (line, d);
    }
  }
  if (rate > 0) {
    g_autofree char *r = format_bytes ((guint64)rate);

    /* TRANSLATORS: a transfer rate, e.g. "4.1 MiB/s" */
    g_string_append_printf (line, _ ("  %s/s"), r);
  }
  if (eta_s >= 0) {
    g_autofree char *eta = format_duration (eta_s);

    /* TRANSLATORS: estimated time left, e.g. "ETA 0:05" */
    g_string_append_printf (line, _ ("  ETA %s"), eta);
  }
  if (message != NULL && message[0] != '\0') {
    if (line->len > 0)
      g_string_append (line, "  ");
    g_string_append (line, message);
  }

  /* Keep it on one terminal line: a wrapped line cannot be redrawn with
   * a carriage return. Cut by characters, not bytes. */
  if (width > 1 && (guint)g_utf8_strlen (line->str, -1) > width - 1) {
    const char *end = g_utf8_offset_to_pointer (line->str, width - 1);
    g_string_truncate (line, end - line->str);
  }
  return g_string_free (g_steal_pointer (&line), FALSE);
}

static guint
terminal_width (void)
{
  struct winsize ws = { 0 };

  if (ioctl (STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
    return ws.ws_col;
  return 80;
}

static void
update_rate (Follow *f, guint64 done)
{
  gint64 now = g_get_monotonic_time ();
  gint64 dt = now - f->sample_us;

  if (done < f->sample_bytes) {
    /* A job may count bytes per step; start over. */
    f->sample_bytes = done;
    f->sample_us = now;
    f->rate = 0;
    return;
  }
  if (dt < RATE_SAMPLE_US)
    return;
  {
    double inst = (double)(done - f->sample_bytes) * G_USEC_PER_SEC / (double)dt;

    f->rate = f->rate == 0 ? inst : (1 - RATE_WEIGHT) * f->rate + RATE_WEIGHT * inst;
  }
  f->sample_bytes = done;
  f->sample_us = now;
}

static double
estimate_eta (Follow *f, double progress, guint64 done, guint64 total)
{
  double elapsed = (double)(g_get_monotonic_time () - f->start_us) / G_USEC_PER_SEC;

  if (total > 0 && done <= total && f->rate > 0)
    return (double)(total - done) / f->rate;
  /* No bytes to go by: extrapolate from the share done so far. */
  if (progress > 0.01 && progress < 1 && elapsed > 1)
    return elapsed * (1 - progress) / progress;
  return -1;
}

/* A job is over when its State leaves "running". */
static gboolean
state_is_final (const char *state)
{
  return state != NULL && !g_str_equal (state, "running") && state[0] != '\0';
}

static void
render (Follow *f)
{
  double progress = banger_job_get_progress (f->job);
  guint64 done = banger_job_get_bytes_done (f->job);
  guint64 total = banger_job_get_bytes_total (f->job);
  const char *message = banger_job_get_message (f->job);
  const char *target = banger_job_get_target (f->job);
  const char *operation = banger_job_get_operation (f->job);

  /* A failed job's Message is its error, which the caller prints once as
   * the command's error: drawing it as progress too would say it twice. */
  if (state_is_final (banger_job_get_state (f->job))
      && !g_str_equal (banger_job_get_state (f->job), "succeeded"))
    return;
  update_rate (f, done);
  if (f->mode == BANGER_PROGRESS_BAR) {
    g_autofree char *line = banger_job_format_bar (progress, done, total, f->rate,
                                                   estimate_eta (f, progress, done, total), message,
                                                   terminal_width ());

    /* \r and "erase to end of line": redraw in place. */
    fprintf (stderr, "\r%s\033[K", line);
    fflush (stderr);
    f->bar_drawn = TRUE;
  } else if (f->mode == BANGER_PROGRESS_LINES) {
    int bucket = progress >= 0 ? (int)(MIN (progress, 1.0) * 10) : -1;
    gboolean new_message
        = message != NULL && message[0] != '\0' && g_strcmp0 (message, f->last_line_message) != 0;

    /* One line per new message or 10 % step: a log file or CI output
     * stays readable and its length bounded. */
    if (!new_message && bucket <= f->last_bucket)
      return;
    f->last_bucket = MAX (bucket, f->last_bucket);
    g_free (f->last_line_message);
    f->last_line_message = g_strdup (message);

    fprintf (stderr, "%s %s:", operation != NULL ? operation : "job", target != NULL ? target : "");
    if (progress >= 0)
      fprintf (stderr, " %d%%", (int)(MIN (progress, 1.0) * 100));
    if (total > 0) {
      g_autofree char *d = format_bytes (done);
      g_autofree char *t = format_bytes (total);

      /* TRANSLATORS: bytes done of bytes in all, e.g. "(1.2 MiB of 3.0 MiB)" */
      fprintf (stderr, _ (" (%s of %s)"), d, t);
    }
    if (message != NULL && message[0] != '\0')
      fprintf (stderr, " %s", message);
    fputc ('\n', stderr);
    fflush (stderr);
  }
}

static void
finish (Follow *f, gboolean success, const char *message, const char *result)
{
  if (f->ended)
    return;
  f->ended = TRUE;
  f->success = success;
  f->message = g_strdup (message);
  f->result = g_strdup (result);
  g_main_loop_quit (f->loop);
}

static void
finish_from_properties (Follow *f)
{
  const char *state = banger_job_get_state (f->job);

  if (!state_is_final (state))
    return;
  finish (f, g_str_equal (state, "succeeded"), banger_job_get_message (f->job),
          banger_job_get_result (f->job));
}

static void
on_completed (BangerJob *job, gboolean success, const char *message, const char *result, Follow *f)
{
  finish (f, success, message, result);
}

static void
on_properties_changed (GDBusProxy *proxy, GVariant *changed, GStrv invalidated, Follow *f)
{
  if (f->ended)
    return;
  render (f);
  finish_from_properties (f);
}

static void
on_owner_changed (GObject *object, GParamSpec *pspec, Follow *f)
{
  g_autofree char *owner = g_dbus_proxy_get_name_owner (G_DBUS_PROXY (object));

  if (owner != NULL || f->ended)
    return;
  f->owner_lost = TRUE;
  g_main_loop_quit (f->loop);
}

static gboolean
on_tick (gpointer data)
{
  Follow *f = data;

  if (!f->ended && f->interrupted == 0)
    render (f);
  return G_SOURCE_CONTINUE;
}

static gboolean
on_cancel_timeout (gpointer data)
{
  Follow *f = data;

  f->cancel_timeout_id = 0;
  g_main_loop_quit (f->loop);
  return G_SOURCE_REMOVE;
}

static void
on_cancel_done (GObject *source, GAsyncResult *res, gpointer data)
{
  g_autoptr (GError) error = NULL;

  /* A job that ended meanwhile refuses Cancel; its Completed tells the
   * rest, so the error is only worth a debug line. */
  if (!banger_job_call_cancel_finish (BANGER_JOB (source), res, &error))
    g_debug ("Job.Cancel: %s", error->message);
}

static gboolean
on_signal (Follow *f, int signum)
{
  if (f->interrupted != 0) {
    /* Asked twice: stop waiting for the job to wind down. */
    g_main_loop_quit (f->loop);
    return G_SOURCE_CONTINUE;
  }
  f->interrupted = signum;
  if (f->bar_drawn)
    fputc ('\n', stderr);
  f->bar_drawn = FALSE;
  if (f->mode != BANGER_PROGRESS_QUIET)
    fprintf (stderr, "%s\n", _ ("Cancelling…"));
  banger_job_call_cancel (f->job, NULL, on_cancel_done, f);
  f->cancel_timeout_id = g_timeout_add_seconds (CANCEL_WAIT_S, on_cancel_timeout, f);
  return G_SOURCE_CONTINUE;
}

static gboolean
on_sigint (gpointer data)
{
  return on_signal (data, SIGINT);
}

static gboolean
on_sigterm (gpointer data)
{
  return on_signal (data, SIGTERM);
}

gboolean
banger_job_progress_mode_parse (const char *progress, gboolean quiet, BangerProgressMode *mode,
                                GError **error)
{
  *mode = quiet ? BANGER_PROGRESS_QUIET : BANGER_PROGRESS_AUTO;
  if (progress == NULL || g_str_equal (progress, "auto"))
    return TRUE;
  if (g_str_equal (progress, "bar"))
    *mode = BANGER_PROGRESS_BAR;
  else if (g_str_equal (progress, "plain"))
    *mode = BANGER_PROGRESS_LINES;
  else if (g_str_equal (progress, "none"))
    *mode = BANGER_PROGRESS_QUIET;
  else {
    g_set_error (error, BANGER_CLI_ERROR, BANGER_CLI_ERROR_USAGE,
                 _ ("invalid value “%s” for --progress (use auto, bar, plain or none)"), progress);
    return FALSE;
  }
  return TRUE;
}

gboolean
banger_job_follow (GDBusConnection *connection, const char *job_path, BangerProgressMode mode,
                   char **result_path, GError **error)
{
  Follow f = { 0 };
  gboolean ok = FALSE;
  guint sigint_id, sigterm_id, tick_id = 0;

  if (mode == BANGER_PROGRESS_AUTO)
    mode = isatty (STDERR_FILENO) ? BANGER_PROGRESS_BAR : BANGER_PROGRESS_LINES;
  f.mode = mode;
  f.job_path = g_strdup (job_path);
  f.last_bucket = -1;
  f.start_us = f.sample_us = g_get_monotonic_time ();

  /* Catch the signals before anything can end: a Ctrl-C must never leave
   * a job running with nobody waiting for it. */
  f.loop = g_main_loop_new (NULL, FALSE);
  sigint_id = g_unix_signal_add (SIGINT, on_sigint, &f);
  sigterm_id = g_unix_signal_add (SIGTERM, on_sigterm, &f);

  /* Making the proxy subscribes to its signals before it loads the
   * properties, so a job that ends now is seen either way. */
  f.job = banger_job_proxy_new_sync (connection, G_DBUS_PROXY_FLAGS_DO_NOT_AUTO_START, MANAGER_NAME,
                                     job_path, NULL, error);
  if (f.job == NULL) {
    banger_cli_error_annotate_object (error, BANGER_CLI_OBJECT_JOB, job_path);
    goto out;
  }
  g_signal_connect (f.job, "completed", G_CALLBACK (on_completed), &f);
  g_signal_connect (f.job, "g-properties-changed", G_CALLBACK (on_properties_changed), &f);
  g_signal_connect (f.job, "notify::g-name-owner", G_CALLBACK (on_owner_changed), &f);

  if (banger_job_get_state (f.job) == NULL) {
    /* No properties: the object was gone before we looked. */
    g_set_error (error, BANGER_CLI_ERROR, BANGER_CLI_ERROR_FAILED,
                 _ ("job %s ended before banger could follow it"), job_path);
    goto out;
  }
  render (&f);
  finish_from_properties (&f);
  if (!f.ended) {
    if (mode == BANGER_PROGRESS_BAR)
      tick_id = g_timeout_add (TICK_MS, on_tick, &f);
    g_main_loop_run (f.loop);
  }

  if (f.bar_drawn) {
    /* Leave the last state of the bar on screen, then a new line. */
    if (f.ended && f.success) {
      g_autofree char *line = banger_job_format_bar (1.0, banger_job_get_bytes_total (f.job),
                                                     banger_job_get_bytes_total (f.job), 0, -1,
                                                     _ ("done"), terminal_width ());
      fprintf (stderr, "\r%s\033[K", line);
    }
    fputc ('\n', stderr);
  } else if (mode == BANGER_PROGRESS_LINES && f.ended && f.success) {
    fprintf (stderr, "%s %s: %s\n", banger_job_get_operation (f.job), banger_job_get_target (f.job),
             _ ("done"));
  }

  if (f.interrupted != 0) {
    g_set_error (error, BANGER_CLI_ERROR, BANGER_CLI_ERROR_INTERRUPTED,
                 f.ended ? (f.success ? _ ("interrupted (the job had already finished)")
                                      : _ ("interrupted; the job was cancelled"))
                         : _ ("interrupted; the job did not confirm it was cancelled"));
    goto out;
  }
  if (f.owner_lost) {
    g_set_error (error, BANGER_CLI_ERROR, BANGER_CLI_ERROR_UNREACHABLE,
                 _ ("bangerd went away while job %s ran"), job_path);
    goto out;
  }
  if (!f.success) {
    const char *state = banger_job_get_state (f.job);

    if (g_strcmp0 (state, "cancelled") == 0)
      g_set_error (error, BANGER_ERROR, BANGER_ERROR_CANCELLED, _ ("cancelled: %s"),
                   f.message != NULL && f.message[0] != '\0' ? f.message : job_path);
    else
      g_set_error_literal (error, BANGER_CLI_ERROR, BANGER_CLI_ERROR_FAILED,
                           f.message != NULL && f.message[0] != '\0' ? f.message
                                                                     : _ ("the job failed"));
    goto out;
  }
  if (result_path != NULL)
    *result_path = g_strdup (f.result != NULL ? f.result : "/");
  ok = TRUE;

out:
  if (tick_id != 0)
    g_source_remove (tick_id);
  g_source_remove (sigint_id);
  g_source_remove (sigterm_id);
  if (f.job != NULL)
    g_signal_handlers_disconnect_by_data (f.job, &f);
  follow_clear (&f);
  return ok;
}
