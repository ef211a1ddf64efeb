#include "log.h"

#include <stdio.h>
#include <unistd.h>

static int banger_verbosity;
static const char *banger_ident = "banger";

static GLogWriterOutput
banger_log_writer (GLogLevelFlags level, const GLogField *fields, gsize n_fields,
                   gpointer user_data)
{
  const char *message = NULL;
  const char *domain = NULL;
  g_autoptr (GDateTime) now = NULL;
  g_autofree char *stamp = NULL;
  const char *tag;

  if ((level & G_LOG_LEVEL_DEBUG) && banger_verbosity < 2)
    return G_LOG_WRITER_HANDLED;
  if ((level & G_LOG_LEVEL_INFO) && banger_verbosity < 1)
    return G_LOG_WRITER_HANDLED;

  if (g_log_writer_is_journald (fileno (stderr)))
    return g_log_writer_journald (level, fields, n_fields, user_data);

  for (gsize i = 0; i < n_fields; i++) {
    if (g_str_equal (fields[i].key, "MESSAGE"))
      message = fields[i].value;
    else if (g_str_equal (fields[i].key, "GLIB_DOMAIN"))
      domain = fields[i].value;
  }
  if (level & G_LOG_LEVEL_ERROR)
    tag = "error";
  else if (level & G_LOG_LEVEL_CRITICAL)
    tag = "critical";
  else if (level & G_LOG_LEVEL_WARNING)
    tag = "warning";
  else if (level & G_LOG_LEVEL_MESSAGE)
    tag = "message";
  else if (level & G_LOG_LEVEL_INFO)
    tag = "info";
  else
    tag = "debug";

  now = g_date_time_new_now_local ();
  stamp = g_date_time_format (now, "%H:%M:%S.%f");
  fprintf (stderr, "%s[%d] %.12s %s %s: %s\n", banger_ident, (int) getpid (), stamp, tag,
           domain ? domain : "", message ? message : "");
  fflush (stderr);
  return G_LOG_WRITER_HANDLED;
}

void
banger_log_setup (const char *ident, int verbosity)
{
  banger_ident = ident;
  banger_verbosity = verbosity;
  g_log_set_writer_func (banger_log_writer, NULL, NULL);
}
