#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* A shared library loaded the first time banger needs it, instead of being
 * linked: a linked library is mapped, relocated and initialised in every
 * process from its start, which for the libraries only pulls, updates and
 * copies use was most of an idle bangerd's memory (docs/performance.md).
 *
 * A user of one (archive-api.h, soup-api.h, …) keeps a table of function
 * pointers typed with the library header's own declarations, so every call
 * is still checked by the compiler, and #defines the library's names to
 * entries of that table. */

typedef struct {
  const char *name;
  goffset offset; /* of the function's pointer in the table */
} BangerLazySymbol;

typedef struct {
  const char *what;   /* "libarchive", for messages */
  const char *soname; /* "libarchive.so.13" */
  const BangerLazySymbol *symbols;
  guint n_symbols;
  gpointer table;
  /*< private >*/
  gsize loaded;
  char *error; /* kept: the answer does not change */
} BangerLazyLibrary;

/* Loads @lib and fills its table if that is not done yet; FALSE with an
 * Unsupported error naming the library if it cannot be. Thread-safe. */
gboolean banger_lazy_library_load (BangerLazyLibrary *lib, GError **error);

/* @lib's table, loading it first if needed. A library that cannot be
 * loaded ends the process with a message naming it: callers call
 * banger_lazy_library_load() where an operation starts, so this only
 * happens if one was missed on a host where the library is missing (where
 * linking it would not have let the process start at all). */
gpointer banger_lazy_library_table (BangerLazyLibrary *lib);

G_END_DECLS
