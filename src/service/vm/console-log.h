#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* A guest's console log (<data>/vms/<id>/console.log) is written by its VMM
 * with whatever the guest prints: a hostile or broken guest can print
 * without end. So it is capped (issue 10, finding 8): above
 * BANGER_CONSOLE_LOG_MAX bytes its last half is kept as console.log.1 and
 * console.log starts over (QEMU writes it with append=on, so a truncation
 * is seen at once), and it is only ever read from its end. */
#define BANGER_CONSOLE_LOG_MAX  (8 * 1024 * 1024)
#define BANGER_CONSOLE_TAIL_MAX (64 * 1024)

/* The "Kernel panic" line of the last BANGER_CONSOLE_TAIL_MAX bytes of
 * @path if there is one (the lines after it are a stack dump), else the
 * last non-empty line; NULL if there is none. Valid UTF-8. */
char *banger_console_log_tail_line (const char *path);

/* Caps @path at @max bytes as above. TRUE if it was over and was cut. */
gboolean banger_console_log_cap (const char *path, guint64 max, GError **error);

/* Checks every <vms_dir>/<id>/console.log every @interval_ms and caps it at
 * @max bytes. A stat per VM per tick, nothing read unless one is over. */
typedef struct _BangerConsoleWatch BangerConsoleWatch;
BangerConsoleWatch *banger_console_watch_new (const char *vms_dir, guint64 max, guint interval_ms);
void banger_console_watch_free (BangerConsoleWatch *watch);

/* A new watch is active. Inactive, it has no timer: only a running VMM
 * writes a console log, so with none bangerd need not wake every
 * @interval_ms nor keep a thread for the checks (engine.c switches it). */
void banger_console_watch_set_active (BangerConsoleWatch *watch, gboolean active);
gboolean banger_console_watch_is_active (BangerConsoleWatch *watch);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BangerConsoleWatch, banger_console_watch_free)

G_END_DECLS
