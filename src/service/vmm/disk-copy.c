#include "disk-copy.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "banger-error.h"
#include "file-copy.h"

gboolean
banger_disk_copy_have_device_mapper (void)
{
  return g_file_test ("/dev/mapper/control", G_FILE_TEST_EXISTS);
}

gboolean
banger_disk_copy (const char *origin, const char *dest, guint64 min_bytes,
                  BangerDiskSnapshotFunc snapshot, gpointer snapshot_data, char **mode_out,
                  char **path_out, GError **error)
{
  g_autofree char *tmp = NULL;
  g_autoptr (GError) local = NULL;
  const char *mode = NULL;
  struct stat st;
  int src_fd = -1, dst_fd = -1;
  gboolean ok = FALSE;

  if (g_file_test (dest, G_FILE_TEST_EXISTS)) {
    *mode_out = g_strdup ("existing");
    if (path_out)
      *path_out = g_strdup (dest);
    return TRUE;
  }
  src_fd = open (origin, O_RDONLY | O_CLOEXEC);
  if (src_fd < 0 || fstat (src_fd, &st) < 0) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_NOT_FOUND, "cannot open the image %s: %s",
                 origin, g_strerror (errno));
    goto out;
  }
  tmp = g_strconcat (dest, ".tmp", NULL);
  dst_fd = open (tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (dst_fd < 0) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "cannot create %s: %s", tmp,
                 g_strerror (errno));
    goto out;
  }

  if (banger_file_reflink (src_fd, dst_fd, &local)) {
    mode = "reflink";
  } else if (snapshot != NULL) {
    /* Not gated on banger_disk_copy_have_device_mapper(): the helper knows
     * its own device-mapper (its [storage] config) and answers Unsupported
     * without one, which only costs a call. */
    g_autofree char *device = NULL;

    g_debug ("no reflink (%s), trying a dm-snapshot", local->message);
    g_clear_error (&local);
    device = snapshot (origin, snapshot_data, &local);
    if (device != NULL) {
      close (dst_fd);
      dst_fd = -1;
      g_unlink (tmp);
      *mode_out = g_strdup ("dm-snapshot");
      if (path_out)
        *path_out = g_steal_pointer (&device);
      ok = TRUE;
      goto out;
    }
    g_debug ("no dm-snapshot (%s), copying", local->message);
  }
  if (mode == NULL) {
    g_clear_error (&local);
    if (!banger_file_copy_sparse (src_fd, dst_fd, &local)) {
      g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "copying %s to %s: %s", origin, dest,
                   local->message);
      goto out;
    }
    mode = "sparse-copy";
  }
  if ((guint64)st.st_size < min_bytes && ftruncate (dst_fd, (off_t)min_bytes) < 0) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "cannot grow %s: %s", tmp,
                 g_strerror (errno));
    goto out;
  }
  if (fsync (dst_fd) < 0 || close (dst_fd) < 0) {
    dst_fd = -1;
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "cannot write %s: %s", tmp,
                 g_strerror (errno));
    goto out;
  }
  dst_fd = -1;
  if (g_rename (tmp, dest) < 0) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "cannot create %s: %s", dest,
                 g_strerror (errno));
    goto out;
  }
  *mode_out = g_strdup (mode);
  if (path_out)
    *path_out = g_strdup (dest);
  ok = TRUE;
out:
  if (src_fd >= 0)
    close (src_fd);
  if (dst_fd >= 0)
    close (dst_fd);
  if (!ok && tmp != NULL)
    g_unlink (tmp);
  return ok;
}
