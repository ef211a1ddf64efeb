/* Sparse copies and reflinks (file-copy.h). By hand rather than
 * g_file_copy() (which fills holes: a registered 1 GiB image with 240 MB
 * in it took 1 GiB) or copy_file_range() (which fills them on some
 * filesystems). */

#include "file-copy.h"

#include <errno.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#define COPY_CHUNK (1024 * 1024)

gboolean
banger_file_reflink (int src_fd, int dst_fd, GError **error)
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
                   "cannot read the original: %s", got < 0 ? g_strerror (errno) : "unexpected end");
      return FALSE;
    }
    while (put < got) {
      ssize_t n = pwrite (dst_fd, buf + put, (size_t)(got - put), start + put);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0) {
        g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errno), "cannot write the copy: %s",
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
banger_file_copy_sparse (int src_fd, int dst_fd, GError **error)
{
  struct stat st;
  off_t pos = 0;

  if (fstat (src_fd, &st) < 0 || ftruncate (dst_fd, st.st_size) < 0) {
    g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errno), "cannot size the copy: %s",
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
