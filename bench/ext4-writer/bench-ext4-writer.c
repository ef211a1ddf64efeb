#define G_LOG_DOMAIN "bench-ext4-writer"

/* Time to write a 256 MiB ext4 image from a busybox tree with
 * BangerExt4Writer, against `mke2fs -t ext4 -d` of the same tree.
 *
 *   bench-ext4-writer [BUSYBOX] [RUNS]
 *
 * The tree is /bin/busybox plus a symlink per applet (`busybox
 * --list-full`), a few directories and, as root, /dev/console. */

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "ext4-writer.h"

#define IMAGE_BYTES (256ULL * 1024 * 1024)

static char *
run (const char *const *argv)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GSubprocess) proc = g_subprocess_newv (argv, G_SUBPROCESS_FLAGS_STDOUT_PIPE, &error);
  char *out = NULL;

  if (proc == NULL || !g_subprocess_communicate_utf8 (proc, NULL, NULL, &out, NULL, &error)
      || !g_subprocess_get_successful (proc))
    g_error ("%s failed: %s", argv[0], error ? error->message : "non-zero exit");
  return out;
}

static void
make_tree (const char *tree, const char *busybox)
{
  const char *argv[] = { busybox, "--list-full", NULL };
  g_autofree char *list = run (argv);
  g_auto (GStrv) applets = g_strsplit (list, "\n", -1);
  g_autofree char *bin = g_build_filename (tree, "bin", NULL);
  g_autofree char *bb = g_build_filename (tree, "bin", "busybox", NULL);
  g_autofree char *data = NULL;
  gsize len = 0;
  const char *dirs[] = { "dev",  "proc",    "sys",      "etc",     "tmp", "root",
                         "sbin", "usr/bin", "usr/sbin", "var/log", NULL };

  for (guint i = 0; dirs[i] != NULL; i++) {
    g_autofree char *d = g_build_filename (tree, dirs[i], NULL);
    g_mkdir_with_parents (d, 0755);
  }
  g_mkdir_with_parents (bin, 0755);
  if (!g_file_get_contents (busybox, &data, &len, NULL)
      || !g_file_set_contents (bb, data, len, NULL))
    g_error ("cannot copy %s", busybox);
  chmod (bb, 0755);
  for (guint i = 0; applets[i] != NULL; i++) {
    g_autofree char *path = NULL;
    g_autofree char *parent = NULL;
    g_autofree char *target = NULL;
    guint depth = 0;

    if (applets[i][0] == '\0' || g_str_equal (applets[i], "bin/busybox"))
      continue;
    path = g_build_filename (tree, applets[i], NULL);
    parent = g_path_get_dirname (path);
    g_mkdir_with_parents (parent, 0755);
    for (const char *p = applets[i]; *p; p++)
      depth += *p == '/';
    target = g_strdup ("bin/busybox");
    for (guint d = 0; d < depth; d++) {
      char *t = g_strconcat ("../", target, NULL);
      g_free (target);
      target = t;
    }
    symlink (target, path);
  }
  if (geteuid () == 0) {
    g_autofree char *console = g_build_filename (tree, "dev", "console", NULL);
    mknod (console, S_IFCHR | 0600, makedev (5, 1));
  }
}

static double
time_writer (const char *tree, const char *image)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (BangerExt4Writer) w = NULL;
  gint64 start = g_get_monotonic_time ();

  w = banger_ext4_writer_new (image, IMAGE_BYTES, 0, &error);
  if (w == NULL || !banger_ext4_writer_add_tree (w, tree, "/", &error)
      || !banger_ext4_writer_finish (w, &error))
    g_error ("writer: %s", error->message);
  return (g_get_monotonic_time () - start) / 1e6;
}

static double
time_mke2fs (const char *tree, const char *image, gboolean same_geometry)
{
  const char *plain[] = { "mke2fs", "-q", "-F", "-t", "ext4", "-d", tree, image, "256M", NULL };
  const char *same[] = { "mke2fs", "-q", "-F",    "-t", "ext4", "-b",  "4096", "-I",
                         "256",    "-i", "16384", "-d", tree,   image, "256M", NULL };
  gint64 start;

  unlink (image);
  start = g_get_monotonic_time ();
  g_free (run (same_geometry ? same : plain));
  return (g_get_monotonic_time () - start) / 1e6;
}

static int
compare_double (gconstpointer a, gconstpointer b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double
median (double *v, guint n)
{
  qsort (v, n, sizeof (double), (int (*) (const void *, const void *))compare_double);
  return v[n / 2];
}

int
main (int argc, char **argv)
{
  const char *busybox = argc > 1 ? argv[1] : "/bin/busybox";
  guint runs = argc > 2 ? (guint)atoi (argv[2]) : 5;
  g_autofree char *dir = g_dir_make_tmp ("bench-ext4-XXXXXX", NULL);
  g_autofree char *tree = g_build_filename (dir, "tree", NULL);
  g_autofree char *img_w = g_build_filename (dir, "writer.ext4", NULL);
  g_autofree char *img_m = g_build_filename (dir, "mke2fs.ext4", NULL);
  g_autofree double *tw = g_new0 (double, runs);
  g_autofree double *tm = g_new0 (double, runs);
  g_autofree double *ts = g_new0 (double, runs);
  double w, m, s;

  if (runs == 0)
    runs = 1;
  make_tree (tree, busybox);
  for (guint i = 0; i < runs; i++) {
    tw[i] = time_writer (tree, img_w);
    tm[i] = time_mke2fs (tree, img_m, FALSE);
    ts[i] = time_mke2fs (tree, img_m, TRUE);
  }
  w = median (tw, runs);
  m = median (tm, runs);
  s = median (ts, runs);
  printf ("busybox tree into a 256 MiB ext4 image, median of %u runs\n", runs);
  printf ("  BangerExt4Writer (4 KiB blocks)         %.3f s\n", w);
  printf ("  mke2fs -t ext4 -d (its default geometry) %.3f s  ratio writer/mke2fs %.2f\n", m,
          w / m);
  printf ("  mke2fs -t ext4 -b 4096 -d (same geometry) %.3f s  ratio writer/mke2fs %.2f\n", s,
          w / s);
  {
    const char *rm[] = { "rm", "-rf", dir, NULL };
    g_free (run (rm));
  }
  return 0;
}
