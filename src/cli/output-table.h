#pragma once

#include <glib.h>
#include <stdio.h>

G_BEGIN_DECLS

/* A plain text table: a header row and aligned columns, two spaces apart,
 * no trailing blanks (so `column`/`awk` users and tests get clean lines). */
typedef struct _BangerTable BangerTable;

BangerTable *banger_table_new (const char *first_header, ...) G_GNUC_NULL_TERMINATED;
/* Adds a row; takes as many cells as there are headers (NULL prints "-"). */
void banger_table_add_row (BangerTable *table, ...);
void banger_table_print (BangerTable *table, FILE *out);
void banger_table_free (BangerTable *table);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (BangerTable, banger_table_free)

G_END_DECLS
