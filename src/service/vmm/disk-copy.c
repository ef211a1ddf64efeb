#include "disk-copy.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "banger-error.h"

#define COPY_CHUNK (1024 * 1024)

gboolean
banger_disk_copy_have_device_mapper (void)
{
  return g_file_test ("/dev/mapper/control", G_FILE_TEST_EXISTS);
}

gboolean
banger_disk_copy_reflink (int src_fd, int dst_fd, GError **error)
{
  if (ioctl (dst_fd, FICLONE, src_fd) == 0)
    return TRUE;
  /* EOPNOTSUPP/EINVAL: this filesystem cannot share blocks; EXDEV: the
   * two files are on different filesystems. All mean "copy instead". */
  g_set_error (error, G_IO_ERROR,
               errno == EOPNOTSUPP || errno == EINVAL || errno == EXDEV || errno == ENOTTY
                   ? G_IO_ERROR_NOT_SUPPORTED
                   : g_io_error_from_errno (errno),
               "reflink: %s", g_strerror (errno));
  return FALSE;
}

static gboolean
copy_range (int src_fd, int dst_fd, off_t start, off_t end, GError **error)
{
  g_autofree char *buf = g_malloc (COPY_CHUNK);

  while (start < end) {
    size_t want = (size_t)MIN ((off_t)COPY_CHUNK, end - start);
    ssize_t got = pread (src_fd, buf, want, start);
    ssize_t put = 0;

    if (got < 0 && errno == EINTR)
      continue;
    if (got <= 0) {
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (got < 0 ? errno : EIO),
                   "reading the image: %s", got < 0 ? g_strerror (errno) : "unexpected end");
      return FALSE;
    }
    while (put < got) {
      ssize_t n = pwrite (dst_fd, buf + put, (size_t)(got - put), start + put);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0) {
        g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errno), "writing the disk: %s",
                     g_strerror (errno));
        return FALSE;
      }
      put += n;
    }
    start += got;
  }
  return TRUE;
}

gboolean
banger_disk_copy_sparse (int src_fd, int dst_fd, GError **error)
{
  struct stat st;
  off_t pos = 0;

  if (fstat (src_fd, &st) < 0 || ftruncate (dst_fd, st.st_size) < 0) {
    g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errno), "sizing the disk: %s",
                 g_strerror (errno));
    return FALSE;
  }
  /* Only the data extents are copied; the holes stay holes because the
   * destination was truncated to size first. copy_file_range() would do
   * the same in the kernel but fills holes on some filesystems. */
  while (pos < st.st_size) {
    off_t data = lseek (src_fd, pos, SEEK_DATA);
    off_t hole;

    if (data < 0 && errno == ENXIO)
      break; /* only a hole is left */
    if (data < 0) {
      /* No SEEK_DATA here: copy everything. */
      return copy_range (src_fd, dst_fd, pos, st.st_size, error);
    }
    hole = lseek (src_fd, data, SEEK_HOLE);
    if (hole < 0)
      hole = st.st_size;
    if (!copy_range (src_fd, dst_fd, data, hole, error))
      return FALSE;
    pos = hole;
  }
  return TRUE;
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

  if (banger_disk_copy_reflink (src_fd, dst_fd, &local)) {
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
    if (!banger_disk_copy_sparse (src_fd, dst_fd, &local)) {
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
