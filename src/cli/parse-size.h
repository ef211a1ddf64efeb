#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Parses a size for --memory/--disk into MiB: a plain number is MiB;
 * suffixes M, G, T (optionally followed by "iB" or "B", any case) are
 * powers of 1024. Zero, fractions of a MiB, overflow and anything else are
 * errors naming @flag and the text. */
gboolean banger_parse_size_mib (const char *flag, const char *text, guint *mib, GError **error);

G_END_DECLS
