/* Helpers shared by the fuzz harnesses. */
#pragma once

#include <glib.h>
#include <glib/gstdio.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);
int LLVMFuzzerInitialize (int *argc, char ***argv);

/* A scratch directory for the whole run (parsers that take paths), removed
 * at exit. */
static char *fuzz_dir;

static void
fuzz_remove_tree (const char *dir)
{
  g_autoptr (GDir) d = g_dir_open (dir, 0, NULL);
  const char *n;
  while (d != NULL && (n = g_dir_read_name (d)) != NULL) {
    g_autofree char *p = g_build_filename (dir, n, NULL);
    if (g_file_test (p, G_FILE_TEST_IS_DIR) && !g_file_test (p, G_FILE_TEST_IS_SYMLINK))
      fuzz_remove_tree (p);
    else
      g_unlink (p);
  }
  g_rmdir (dir);
}

static void
fuzz_dir_remove (void)
{
  fuzz_remove_tree (fuzz_dir);
}

static const char *
fuzz_scratch (void)
{
  if (fuzz_dir == NULL) {
    /* tmpfs where there is one: parsers that take paths write and sync
     * files on every input. */
    if (g_file_test ("/dev/shm", G_FILE_TEST_IS_DIR) && access ("/dev/shm", W_OK) == 0) {
      fuzz_dir = g_strdup ("/dev/shm/banger-fuzz-XXXXXX");
      if (g_mkdtemp (fuzz_dir) == NULL)
        g_clear_pointer (&fuzz_dir, g_free);
    }
    if (fuzz_dir == NULL)
      fuzz_dir = g_dir_make_tmp ("banger-fuzz-XXXXXX", NULL);
    if (fuzz_dir == NULL)
      abort ();
    atexit (fuzz_dir_remove);
  }
  return fuzz_dir;
}

/* Writes @size bytes to @path (no fsync, unlike g_file_set_contents). */
static void
fuzz_put (const char *path, const uint8_t *data, size_t size)
{
  FILE *f = fopen (path, "wb");
  if (f == NULL || (size > 0 && fwrite (data, 1, size, f) != size) || fclose (f) != 0)
    abort ();
}

/* Writes the input to <scratch>/@name and returns that path. */
static char *
fuzz_write_file (const char *name, const uint8_t *data, size_t size)
{
  char *path = g_build_filename (fuzz_scratch (), name, NULL);
  fuzz_put (path, data, size);
  return path;
}

/* GLib's log: quiet (the parsers log what they refuse), and a critical (a
 * failed g_return_if_fail: a bug) aborts. Not G_DEBUG=fatal-criticals: that
 * ends in SIGTRAP, which libFuzzer does not catch, so no input is kept. */
static void
fuzz_quiet_log (const char *domain, GLogLevelFlags level, const char *message, gpointer data)
{
  if (level & (G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_ERROR)) {
    fprintf (stderr, "%s: %s\n", domain ? domain : "", message);
    abort ();
  }
}

static GLogWriterOutput
fuzz_quiet_writer (GLogLevelFlags level, const GLogField *fields, gsize n_fields, gpointer data)
{
  if (level & (G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_ERROR)) {
    for (gsize i = 0; i < n_fields; i++)
      if (g_strcmp0 (fields[i].key, "MESSAGE") == 0 && fields[i].length < 0)
        fprintf (stderr, "%s\n", (const char *)fields[i].value);
    abort ();
  }
  return G_LOG_WRITER_HANDLED;
}

__attribute__ ((constructor)) static void
fuzz_init_glib (void)
{
  g_log_set_default_handler (fuzz_quiet_log, NULL);
  g_log_set_writer_func (fuzz_quiet_writer, NULL, NULL);
}
