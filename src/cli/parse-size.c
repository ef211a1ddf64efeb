#include "config.h"

#include "parse-size.h"

#include <glib/gi18n.h>

#include "errors.h"

gboolean
banger_parse_size_mib (const char *flag, const char *text, guint *mib, GError **error)
{
  guint64 value = 0;
  guint64 factor = 1;
  const char *p = text;
  const char *suffix;

  /* g_ascii_string_to_unsigned() wants the whole string to be a number,
   * so the digits are taken by hand and the suffix checked after. */
  if (!g_ascii_isdigit (*p))
    goto bad;
  while (g_ascii_isdigit (*p)) {
    value = value * 10 + (guint64)(*p - '0');
    if (value > G_MAXUINT)
      goto too_big;
    p++;
  }
  suffix = p;
  if (*suffix != '\0') {
    switch (g_ascii_toupper (*suffix)) {
    case 'M':
      factor = 1;
      break;
    case 'G':
      factor = 1024;
      break;
    case 'T':
      factor = 1024 * 1024;
      break;
    default:
      goto bad;
    }
    suffix++;
    if (g_ascii_strcasecmp (suffix, "") != 0 && g_ascii_strcasecmp (suffix, "b") != 0
        && g_ascii_strcasecmp (suffix, "ib") != 0)
      goto bad;
  }
  if (value == 0)
    goto bad;
  if (value * factor > G_MAXUINT)
    goto too_big;
  *mib = (guint)(value * factor);
  return TRUE;

bad:
  g_set_error (error, BANGER_CLI_ERROR, BANGER_CLI_ERROR_USAGE,
               _ ("invalid size “%s” for %s (use e.g. 512, 512M or 2G)"), text, flag);
  return FALSE;
too_big:
  g_set_error (error, BANGER_CLI_ERROR, BANGER_CLI_ERROR_USAGE, _ ("size “%s” for %s is too large"),
               text, flag);
  return FALSE;
}
