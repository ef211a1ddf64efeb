#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Sets up logging for a daemon or the CLI: @verbosity 0 shows messages and
 * warnings, 1 (-v) adds info, 2 (-vv) adds debug. When stderr is the journal
 * the structured journald writer is used so priorities survive. */
void banger_log_setup (const char *ident, int verbosity);

G_END_DECLS
