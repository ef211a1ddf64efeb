#include "output-table.h"

#include <stdarg.h>

struct _BangerTable {
  GPtrArray *headers; /* char * */
  GPtrArray *rows;    /* GPtrArray of char * */
};

BangerTable *
banger_table_new (const char *first_header, ...)
{
  BangerTable *table = g_new0 (BangerTable, 1);
  va_list args;

  table->headers = g_ptr_array_new_with_free_func (g_free);
  table->rows = g_ptr_array_new_with_free_func ((GDestroyNotify)g_ptr_array_unref);
  va_start (args, first_header);
  for (const char *h = first_header; h != NULL; h = va_arg (args, const char *))
    g_ptr_array_add (table->headers, g_strdup (h));
  va_end (args);
  return table;
}

void
banger_table_add_row (BangerTable *table, ...)
{
  GPtrArray *row = g_ptr_array_new_with_free_func (g_free);
  va_list args;

  va_start (args, table);
  for (guint i = 0; i < table->headers->len; i++) {
    const char *cell = va_arg (args, const char *);

    g_ptr_array_add (row, g_strdup (cell != NULL && cell[0] != '\0' ? cell : "-"));
  }
  va_end (args);
  g_ptr_array_add (table->rows, row);
}

/* Width on a terminal: characters, counting East Asian wide ones twice. */
static gsize
display_width (const char *s)
{
  gsize width = 0;

  for (const char *p = s; *p != '\0'; p = g_utf8_next_char (p)) {
    gunichar c = g_utf8_get_char (p);

    if (g_unichar_iszerowidth (c))
      continue;
    width += g_unichar_iswide (c) ? 2 : 1;
  }
  return width;
}

static void
print_row (GPtrArray *cells, const gsize *widths, FILE *out)
{
  for (guint i = 0; i < cells->len; i++) {
    const char *cell = g_ptr_array_index (cells, i);

    fputs (cell, out);
    if (i + 1 < cells->len)
      for (gsize pad = display_width (cell); pad < widths[i] + 2; pad++)
        fputc (' ', out);
  }
  fputc ('\n', out);
}

void
banger_table_print (BangerTable *table, FILE *out)
{
  g_autofree gsize *widths = g_new0 (gsize, table->headers->len);

  for (guint i = 0; i < table->headers->len; i++)
    widths[i] = display_width (g_ptr_array_index (table->headers, i));
  for (guint r = 0; r < table->rows->len; r++) {
    GPtrArray *row = g_ptr_array_index (table->rows, r);

    for (guint i = 0; i < row->len; i++)
      widths[i] = MAX (widths[i], display_width (g_ptr_array_index (row, i)));
  }
  print_row (table->headers, widths, out);
  for (guint r = 0; r < table->rows->len; r++)
    print_row (g_ptr_array_index (table->rows, r), widths, out);
}

void
banger_table_free (BangerTable *table)
{
  g_ptr_array_unref (table->headers);
  g_ptr_array_unref (table->rows);
  g_free (table);
}
