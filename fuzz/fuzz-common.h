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
fuzz_dir_remove (void)
{
  g_autoptr (GDir) d = g_dir_open (fuzz_dir, 0, NULL);
  const char *n;
  while (d != NULL && (n = g_dir_read_name (d)) != NULL) {
    g_autofree char *p = g_build_filename (fuzz_dir, n, NULL);
    g_unlink (p);
  }
  g_rmdir (fuzz_dir);
}

static const char *
fuzz_scratch (void)
{
  if (fuzz_dir == NULL) {
    fuzz_dir = g_dir_make_tmp ("banger-fuzz-XXXXXX", NULL);
    if (fuzz_dir == NULL)
      abort ();
    atexit (fuzz_dir_remove);
  }
  return fuzz_dir;
}

/* Writes the input to <scratch>/@name and returns that path. */
static char *
fuzz_write_file (const char *name, const uint8_t *data, size_t size)
{
  char *path = g_build_filename (fuzz_scratch (), name, NULL);
  if (!g_file_set_contents (path, (const char *)data, (gssize)size, NULL))
    abort ();
  return path;
}

/* Quiet GLib's log output: the parsers log what they refuse. */
static void
fuzz_quiet_log (const char *domain, GLogLevelFlags level, const char *message, gpointer data)
{
  if (level & (G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_ERROR)) {
    fprintf (stderr, "%s: %s\n", domain ? domain : "", message);
    abort ();
  }
}

static void
fuzz_init_glib (void)
{
  g_log_set_default_handler (fuzz_quiet_log, NULL);
  g_log_set_writer_func (g_log_writer_default, NULL, NULL);
}
