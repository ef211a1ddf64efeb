/* Console logs are capped while a guest writes them and read from their end
 * only (issue 10, finding 8): src/service/console-log.c. A guest flooding
 * its console is stood in for by this test appending to the file the way
 * QEMU does with append=on. */
#define G_LOG_DOMAIN "test-console-log"

#include "console-log.h"

#include <fcntl.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#define TIMEOUT_S 20

static char *
make_vm_dir (char **vms_out)
{
  g_autoptr (GError) error = NULL;
  char *vms = g_dir_make_tmp ("banger-console-XXXXXX", &error);
  g_assert_no_error (error);
  g_autofree char *vm = g_build_filename (vms, "0123abcd", NULL);
  g_assert_no_errno (g_mkdir (vm, 0700));
  *vms_out = vms;
  return g_build_filename (vm, "console.log", NULL);
}

static void
rm_vms (const char *vms, const char *log)
{
  g_autofree char *old = g_strconcat (log, ".1", NULL);
  g_autofree char *vm = g_path_get_dirname (log);
  g_unlink (log);
  g_unlink (old);
  g_rmdir (vm);
  g_rmdir (vms);
}

static void
append (int fd, const char *text, gsize len)
{
  while (len > 0) {
    ssize_t n = write (fd, text, len);
    g_assert_cmpint (n, >, 0);
    text += n;
    len -= (gsize)n;
  }
}

static goffset
file_size (const char *path)
{
  GStatBuf st;
  return g_stat (path, &st) == 0 ? st.st_size : -1;
}

/* The panic line at the very start of a large log is not looked for: only
 * the last 64 KiB are read. The last line is found. */
static void
test_tail_reads_the_end (void)
{
  g_autofree char *vms = NULL;
  g_autofree char *log = make_vm_dir (&vms);
  int fd = open (log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  g_assert_cmpint (fd, >=, 0);
  append (fd, "Kernel panic - not syncing: early\n", 34);
  g_autofree char *filler = g_strnfill (1023, 'x');
  for (int i = 0; i < 1024; i++) {
    append (fd, filler, 1023);
    append (fd, "\n", 1);
  }
  append (fd, "\0\0late line \xff\n\n", 16);
  close (fd);
  g_autofree char *tail = banger_console_log_tail_line (log);
  g_assert_cmpstr (tail, ==, "late line \xef\xbf\xbd");
  g_assert_null (banger_console_log_tail_line ("/nonexistent/console.log"));
  rm_vms (vms, log);
}

/* A guest that prints without end: the watch keeps the log under its cap
 * (plus what one tick lets through) and keeps the last half beside it. */
static void
test_watch_caps_a_flood (void)
{
  g_autofree char *vms = NULL;
  g_autofree char *log = make_vm_dir (&vms);
  g_autofree char *old = g_strconcat (log, ".1", NULL);
  const guint64 max = 256 * 1024;
  g_autoptr (BangerConsoleWatch) watch = banger_console_watch_new (vms, max, 50);
  int fd = open (log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  g_assert_cmpint (fd, >=, 0);
  g_autofree char *line = g_strnfill (4095, 'y');
  gint64 deadline = g_get_monotonic_time () + TIMEOUT_S * G_USEC_PER_SEC;
  guint64 written = 0, largest = 0;
  guint cuts = 0;

  /* Write 4 MiB in 64 KiB bursts; after each burst the main loop runs the
   * watch's due ticks (it is what bangerd's main loop does). */
  while (written < 4u * 1024 * 1024) {
    goffset before = file_size (log);
    for (int i = 0; i < 16; i++) {
      append (fd, line, 4095);
      append (fd, "\n", 1);
    }
    written += 64 * 1024;
    largest = MAX (largest, (guint64)file_size (log));
    /* Wait for the watch to act whenever the log is over its cap. */
    while ((guint64)file_size (log) > max) {
      g_assert_cmpint (g_get_monotonic_time (), <, deadline);
      g_main_context_iteration (NULL, TRUE);
    }
    if (file_size (log) < before)
      cuts++;
  }
  close (fd);
  g_test_message ("%" G_GUINT64_FORMAT " bytes written, %u cuts, at most %" G_GUINT64_FORMAT
                  " bytes on disk at once",
                  written, cuts, largest);
  g_assert_cmpuint (cuts, >=, 10);
  g_assert_cmpuint (largest, <=, max + 64 * 1024);
  /* The last half kept, ending with whole lines of the flood. */
  g_assert_cmpint (file_size (old), ==, (goffset)(max / 2));
  g_autofree char *tail = banger_console_log_tail_line (old);
  g_assert_cmpstr (tail, ==, line);
  rm_vms (vms, log);
}

/* A link where the log should be is not followed (the directory is the
 * user's). */
static void
test_cap_refuses_a_link (void)
{
  g_autofree char *vms = NULL;
  g_autofree char *log = make_vm_dir (&vms);
  g_autofree char *target = g_build_filename (vms, "elsewhere", NULL);
  g_autofree char *big = g_strnfill (8192, 'z');
  g_autoptr (GError) error = NULL;
  g_assert_true (g_file_set_contents (target, big, -1, NULL));
  g_assert_no_errno (symlink (target, log));
  g_assert_false (banger_console_log_cap (log, 1024, &error));
  g_assert_nonnull (error);
  g_assert_cmpint (file_size (target), ==, 8192);
  g_unlink (target);
  rm_vms (vms, log);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/console-log/tail-reads-the-end", test_tail_reads_the_end);
  g_test_add_func ("/console-log/watch-caps-a-flood", test_watch_caps_a_flood);
  g_test_add_func ("/console-log/cap-refuses-a-link", test_cap_refuses_a_link);
  return g_test_run ();
}
