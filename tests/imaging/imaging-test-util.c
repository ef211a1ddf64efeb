#define G_LOG_DOMAIN "imaging-test"

#include "imaging-test-util.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

char *
imaging_run (const char *const *argv, int *status_out, char **stderr_out)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GSubprocess) proc = NULL;
  g_autofree char *out = NULL;
  g_autofree char *err = NULL;

  proc = g_subprocess_newv (argv, G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE,
                            &error);
  g_assert_no_error (error);
  g_subprocess_communicate_utf8 (proc, NULL, NULL, &out, &err, &error);
  g_assert_no_error (error);
  if (status_out != NULL)
    *status_out = g_subprocess_get_if_exited (proc) ? g_subprocess_get_exit_status (proc) : -1;
  if (stderr_out != NULL)
    *stderr_out = g_steal_pointer (&err);
  return g_steal_pointer (&out);
}

char *
imaging_debugfs (const char *image, const char *cmd)
{
  const char *argv[] = { "debugfs", "-R", cmd, image, NULL };
  int status = 0;
  char *out = imaging_run (argv, &status, NULL);

  g_assert_cmpint (status, ==, 0);
  return out;
}

void
imaging_assert_fsck_clean (const char *image)
{
  const char *argv[] = { "e2fsck", "-fn", image, NULL };
  g_autofree char *err = NULL;
  g_autofree char *out = NULL;
  int status = 0;

  out = imaging_run (argv, &status, &err);
  if (status != 0)
    g_printerr ("e2fsck -fn %s exited %d:\n%s\n%s\n", image, status, out, err);
  g_assert_cmpint (status, ==, 0);
}

gint64
imaging_stat_field (const char *stat_output, const char *key)
{
  const char *p = strstr (stat_output, key);

  if (p == NULL)
    return -1;
  p += strlen (key);
  while (*p == ' ')
    p++;
  if (!g_ascii_isdigit (*p))
    return -1;
  /* debugfs prints modes in octal with a leading 0. */
  if (g_str_equal (key, "Mode:"))
    return g_ascii_strtoll (p, NULL, 8);
  return g_ascii_strtoll (p, NULL, 10);
}

GBytes *
imaging_dump (const char *image, const char *path)
{
  g_autofree char *dir = imaging_tmpdir ();
  g_autofree char *out = g_build_filename (dir, "dump", NULL);
  g_autofree char *cmd = g_strdup_printf ("dump \"%s\" \"%s\"", path, out);
  g_autofree char *ignored = imaging_debugfs (image, cmd);
  g_autoptr (GError) error = NULL;
  char *data = NULL;
  gsize len = 0;

  g_file_get_contents (out, &data, &len, &error);
  g_assert_no_error (error);
  imaging_rm_rf (dir);
  return g_bytes_new_take (data, len);
}

char *
imaging_tmpdir (void)
{
  g_autoptr (GError) error = NULL;
  char *dir = g_dir_make_tmp ("banger-imaging-XXXXXX", &error);

  g_assert_no_error (error);
  return dir;
}

static int
rm_one (const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
  remove (path);
  return 0;
}

void
imaging_rm_rf (const char *path)
{
  nftw (path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}
