#include "config.h"

#include "output-time.h"

#include <glib/gi18n.h>

char *
banger_format_time_ago (guint64 then, gint64 now)
{
  gint64 delta;
  guint n;

  if (then == 0)
    return g_strdup (_ ("never"));
  delta = now - (gint64)then;
  /* A clock a little behind the daemon's must not print "in 2 seconds". */
  if (delta < 2)
    return g_strdup (_ ("just now"));
  if (delta < 60) {
    n = (guint)delta;
    return g_strdup_printf (g_dngettext (GETTEXT_PACKAGE, "%u second ago", "%u seconds ago", n), n);
  }
  if (delta < 3600) {
    n = (guint)(delta / 60);
    return g_strdup_printf (g_dngettext (GETTEXT_PACKAGE, "%u minute ago", "%u minutes ago", n), n);
  }
  if (delta < 86400) {
    n = (guint)(delta / 3600);
    return g_strdup_printf (g_dngettext (GETTEXT_PACKAGE, "%u hour ago", "%u hours ago", n), n);
  }
  if (delta < 30 * 86400) {
    n = (guint)(delta / 86400);
    return g_strdup_printf (g_dngettext (GETTEXT_PACKAGE, "%u day ago", "%u days ago", n), n);
  }
  {
    g_autoptr (GDateTime) dt = g_date_time_new_from_unix_local ((gint64)then);

    return dt != NULL ? g_date_time_format (dt, "%Y-%m-%d") : g_strdup ("?");
  }
}

char *
banger_format_time_absolute (guint64 then)
{
  g_autoptr (GDateTime) dt = NULL;

  if (then == 0)
    return g_strdup ("-");
  dt = g_date_time_new_from_unix_utc ((gint64)then);
  return dt != NULL ? g_date_time_format (dt, "%Y-%m-%d %H:%M:%S UTC") : g_strdup ("?");
}
