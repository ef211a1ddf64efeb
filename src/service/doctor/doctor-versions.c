#include "doctor-versions.h"

#include <stdlib.h>
#include <string.h>

static void
split (const char *v, guint64 out[3])
{
  const char *p = v;

  out[0] = out[1] = out[2] = 0;
  for (guint i = 0; i < 3 && p != NULL && g_ascii_isdigit (*p); i++) {
    char *end = NULL;
    out[i] = g_ascii_strtoull (p, &end, 10);
    p = (end != NULL && *end == '.') ? end + 1 : NULL;
  }
}

int
banger_doctor_version_compare (const char *a, const char *b)
{
  guint64 x[3], y[3];

  split (a, x);
  split (b, y);
  for (guint i = 0; i < 3; i++)
    if (x[i] != y[i])
      return x[i] < y[i] ? -1 : 1;
  return 0;
}

char *
banger_doctor_parse_version (const char *text, const char *prefix)
{
  const char *p;
  guint64 v[3];

  if (text == NULL)
    return NULL;
  p = strstr (text, prefix);
  if (p == NULL)
    return NULL;
  p += strlen (prefix);
  if (*p == 'v')
    p++;
  if (!g_ascii_isdigit (*p))
    return NULL;
  /* At least "X.Y": a lone number is not a release version. */
  {
    const char *q = p;
    while (g_ascii_isdigit (*q))
      q++;
    if (*q != '.' || !g_ascii_isdigit (q[1]))
      return NULL;
  }
  split (p, v);
  return g_strdup_printf ("%" G_GUINT64_FORMAT ".%" G_GUINT64_FORMAT ".%" G_GUINT64_FORMAT, v[0],
                          v[1], v[2]);
}
