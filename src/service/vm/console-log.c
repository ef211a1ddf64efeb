/* Guest console logs: capped while they grow, read from the end. */
#include "console-log.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "banger-error.h"

/* Reads up to @max bytes ending at the end of @fd. */
static char *
read_tail (int fd, gsize max, gsize *len_out)
{
  struct stat st;
  if (fstat (fd, &st) < 0 || !S_ISREG (st.st_mode))
    return NULL;
  gsize len = MIN ((guint64)st.st_size, (guint64)max);
  off_t from = st.st_size - (off_t)len;
  g_autofree char *buf = g_malloc (len + 1);
  gsize got = 0;
  while (got < len) {
    ssize_t n = pread (fd, buf + got, len - got, from + (off_t)got);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    got += (gsize)n;
  }
  buf[got] = '\0';
  *len_out = got;
  return g_steal_pointer (&buf);
}

char *
banger_console_log_tail_line (const char *path)
{
  g_autofree char *text = NULL;
  g_auto (GStrv) lines = NULL;
  gsize len = 0;
  int fd;

  if (path == NULL)
    return NULL;
  fd = open (path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0)
    return NULL;
  text = read_tail (fd, BANGER_CONSOLE_TAIL_MAX, &len);
  close (fd);
  if (text == NULL)
    return NULL;
  /* NULs (a guest can print them) would cut lines short: make them spaces. */
  for (gsize i = 0; i < len; i++)
    if (text[i] == '\0')
      text[i] = ' ';
  lines = g_strsplit (text, "\n", -1);
  for (gint i = (gint)g_strv_length (lines) - 1; i >= 0; i--) {
    if (strstr (lines[i], "Kernel panic") != NULL)
      return g_utf8_make_valid (g_strstrip (lines[i]), -1);
  }
  for (gint i = (gint)g_strv_length (lines) - 1; i >= 0; i--) {
    g_strstrip (lines[i]);
    if (*lines[i] != '\0')
      return g_utf8_make_valid (lines[i], -1);
  }
  return NULL;
}

gboolean
banger_console_log_cap (const char *path, guint64 max, GError **error)
{
  g_autofree char *old = NULL;
  g_autofree char *tmp = NULL;
  g_autofree char *tail = NULL;
  struct stat st;
  gsize len = 0;
  gboolean ok = FALSE;
  int fd;

  /* No following links: the VM directory is the user's, the file the VMM's. */
  fd = open (path, O_RDWR | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW | O_NONBLOCK);
  if (fd < 0) {
    if (errno == ENOENT)
      return FALSE;
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "cannot open %s: %s", path,
                 g_strerror (errno));
    return FALSE;
  }
  if (fstat (fd, &st) < 0 || !S_ISREG (st.st_mode) || (guint64)st.st_size <= max)
    goto out;
  /* The last half is kept beside it; what the VMM writes between this read
   * and the truncation below is lost, a few bytes at most. */
  tail = read_tail (fd, (gsize)(max / 2), &len);
  if (tail == NULL) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "cannot read %s", path);
    goto out;
  }
  old = g_strconcat (path, ".1", NULL);
  tmp = g_strconcat (path, ".1.tmp", NULL);
  if (!g_file_set_contents_full (tmp, tail, (gssize)len, G_FILE_SET_CONTENTS_NONE, 0600, error)
      || g_rename (tmp, old) < 0) {
    if (error != NULL && *error == NULL)
      g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "cannot keep %s: %s", old,
                   g_strerror (errno));
    g_unlink (tmp);
    goto out;
  }
  if (ftruncate (fd, 0) < 0) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "cannot truncate %s: %s", path,
                 g_strerror (errno));
    goto out;
  }
  g_debug ("%s reached %" G_GINT64_FORMAT " bytes: its last %" G_GSIZE_FORMAT
           " are in %s, and it starts over",
           path, (gint64)st.st_size, len, old);
  ok = TRUE;
out:
  close (fd);
  return ok;
}

struct _BangerConsoleWatch {
  char *vms_dir;
  guint64 max;
  guint interval_ms;
  guint source; /* 0 while inactive */
  /* The check reads and writes megabytes: it runs in a worker thread, one
   * at a time, never on bangerd's main loop (D-Bus and DNS answer there). */
  GThreadPool *pool;
  gint busy;
};

static void
watch_check (gpointer data, gpointer user_data)
{
  BangerConsoleWatch *w = user_data;
  g_autoptr (GDir) dir = g_dir_open (w->vms_dir, 0, NULL);
  const char *name;

  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL) {
    g_autofree char *path = g_build_filename (w->vms_dir, name, "console.log", NULL);
    g_autoptr (GError) error = NULL;
    GStatBuf st;
    if (g_lstat (path, &st) < 0 || (guint64)st.st_size <= w->max)
      continue;
    if (!banger_console_log_cap (path, w->max, &error) && error != NULL)
      g_warning ("capping a console log: %s", error->message);
  }
  g_atomic_int_set (&w->busy, 0);
}

static gboolean
watch_tick_cb (gpointer data)
{
  BangerConsoleWatch *w = data;
  if (g_atomic_int_compare_and_exchange (&w->busy, 0, 1))
    g_thread_pool_push (w->pool, GINT_TO_POINTER (1), NULL);
  return G_SOURCE_CONTINUE;
}

BangerConsoleWatch *
banger_console_watch_new (const char *vms_dir, guint64 max, guint interval_ms)
{
  BangerConsoleWatch *w = g_new0 (BangerConsoleWatch, 1);
  w->vms_dir = g_strdup (vms_dir);
  w->max = max;
  w->interval_ms = interval_ms;
  w->pool = g_thread_pool_new (watch_check, w, 1, FALSE, NULL);
  w->source = g_timeout_add (interval_ms, watch_tick_cb, w);
  return w;
}

void
banger_console_watch_set_active (BangerConsoleWatch *w, gboolean active)
{
  g_return_if_fail (w != NULL);
  if (active && w->source == 0) {
    w->source = g_timeout_add (w->interval_ms, watch_tick_cb, w);
  } else if (!active && w->source != 0) {
    /* A check already pushed still runs to its end in the pool. */
    g_source_remove (w->source);
    w->source = 0;
  }
}

gboolean
banger_console_watch_is_active (BangerConsoleWatch *w)
{
  g_return_val_if_fail (w != NULL, FALSE);
  return w->source != 0;
}

void
banger_console_watch_free (BangerConsoleWatch *w)
{
  if (w == NULL)
    return;
  if (w->source != 0)
    g_source_remove (w->source);
  /* Waits for a check that runs. */
  g_thread_pool_free (w->pool, FALSE, TRUE);
  g_free (w->vms_dir);
  g_free (w);
}
