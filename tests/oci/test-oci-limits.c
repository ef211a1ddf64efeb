/* Limits of the layer scanner that a hostile registry would test (issue 10,
 * finding 9): whiteouts count against the entry limit (they are kept in
 * memory until the layer is applied), and a layer may expand only so much. */
#define G_LOG_DOMAIN "test-oci-limits"

#include "banger-error.h"
#include "oci-layers.h"

#include <archive.h>
#include <archive_entry.h>
#include <glib/gstdio.h>
#include <string.h>

static char *
write_layer (const char *dir, guint whiteouts, guint files)
{
  char *path = g_build_filename (dir, "layer.tar", NULL);
  struct archive *a = archive_write_new ();
  archive_write_set_format_pax_restricted (a);
  g_assert_cmpint (archive_write_open_filename (a, path), ==, ARCHIVE_OK);
  for (guint i = 0; i < whiteouts + files; i++) {
    g_autofree char *name
        = i < whiteouts ? g_strdup_printf ("d/.wh.gone-%u", i) : g_strdup_printf ("d/file-%u", i);
    struct archive_entry *e = archive_entry_new ();
    archive_entry_set_pathname (e, name);
    archive_entry_set_filetype (e, AE_IFREG);
    archive_entry_set_perm (e, 0644);
    archive_entry_set_size (e, 0);
    g_assert_cmpint (archive_write_header (a, e), ==, ARCHIVE_OK);
    archive_entry_free (e);
  }
  archive_write_close (a);
  archive_write_free (a);
  return path;
}

static void
test_whiteouts_count (void)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("banger-oci-limits-XXXXXX", &error);
  g_assert_no_error (error);
  banger_oci_layer_set_max_entries (100);

  /* 150 whiteouts and 10 files: over a limit of 100, whatever kind. */
  g_autofree char *path = write_layer (dir, 150, 10);
  g_autoptr (BangerOciLayer) layer = banger_oci_layer_scan (path, "whiteouts", NULL, &error);
  g_assert_null (layer);
  g_assert_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, "more than 100 entries"));
  g_clear_error (&error);
  g_unlink (path);

  /* Under the limit it scans. */
  g_autofree char *ok_path = write_layer (dir, 50, 10);
  g_autoptr (BangerOciLayer) ok = banger_oci_layer_scan (ok_path, "fine", NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (ok);
  g_assert_cmpuint (banger_oci_layer_get_entries (ok), ==, 10);
  g_unlink (ok_path);
  g_rmdir (dir);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/oci/limits/whiteouts-count", test_whiteouts_count);
  return g_test_run ();
}
