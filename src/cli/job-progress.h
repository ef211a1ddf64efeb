#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* How a followed job shows its progress (always on stderr, so stdout keeps
 * only the result for scripts). */
typedef enum {
  BANGER_PROGRESS_AUTO,  /* a bar when stderr is a terminal, lines otherwise */
  BANGER_PROGRESS_BAR,   /* one line redrawn in place: bar, bytes, rate, ETA */
  BANGER_PROGRESS_LINES, /* a plain line per new message or 10 % step */
  BANGER_PROGRESS_QUIET, /* nothing */
} BangerProgressMode;

/* The mode for the -q/--quiet and --progress MODE options of commands that
 * follow a job; an unknown MODE is a usage error naming it. */
gboolean banger_job_progress_mode_parse (const char *progress, gboolean quiet,
                                         BangerProgressMode *mode, GError **error);

/* Follows the org.banger.Job at @job_path on @connection until it ends,
 * showing its progress on stderr as @mode says.
 *
 * SIGINT (Ctrl-C) and SIGTERM call Job.Cancel() and wait for the job to
 * end; the error is then BANGER_CLI_ERROR_INTERRUPTED (exit status 130).
 * A job that fails gives an error with the job's Message; bangerd going
 * away while the job runs is an error too.
 *
 * On success @result_path (if not NULL) gets the job's Result object
 * path ("/" when the job made no object). */
gboolean banger_job_follow (GDBusConnection *connection, const char *job_path,
                            BangerProgressMode mode, char **result_path, GError **error);

/* Formats a progress line for the terminal bar, @width columns wide at
 * most. Exposed for the same rendering everywhere (and for tests through
 * the CLI). @progress is 0..1 or negative when unknown; @rate in bytes/s,
 * 0 when unknown; @eta_s negative when unknown. */
char *banger_job_format_bar (double progress, guint64 done, guint64 total, double rate,
                             double eta_s, const char *message, guint width);

G_END_DECLS
