#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* "just now", "3 minutes ago", "2 days ago" for unix time @then seen at
 * @now; "never" for 0. Past dates further than 30 days print the date. */
char *banger_format_time_ago (guint64 then, gint64 now);

/* "2024-05-01 12:03:04 UTC" for unix time @then; "-" for 0. */
char *banger_format_time_absolute (guint64 then);

G_END_DECLS
