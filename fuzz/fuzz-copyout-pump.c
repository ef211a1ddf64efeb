/* The tar pump of CopyOut and CopyIn (src/service/vm/vm-copy.c, included to
 * reach its static pump()): CopyOut reads a tar stream the guest writes,
 * and re-writes it, checked, to the caller's descriptor. The first byte
 * picks CopyOut (even) or CopyIn (odd). */

#include <sys/mman.h>

/* First: it defines G_LOG_DOMAIN before GLib is included. */
#include "../src/service/vm/vm-copy.c"

#include "fuzz-common.h"

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  static int null_fd = -1;
  CopyOp op = { 0 };
  g_autoptr (GError) error = NULL;

  if (size < 1)
    return 0;
  if (null_fd < 0)
    null_fd = open ("/dev/null", O_WRONLY | O_CLOEXEC);
  int in_fd = memfd_create ("fuzz-tar", MFD_CLOEXEC);
  if (in_fd < 0 || write (in_fd, data + 1, size - 1) != (ssize_t)(size - 1))
    abort ();
  lseek (in_fd, 0, SEEK_SET);
  op.copy_in = data[0] & 1;
  op.uid = 1000;
  op.gid = 1000;
  op.caller_fd = -1;
  op.pump_fd = -1;
  op.stderr_fd = -1;
  op.top_names = g_ptr_array_new_with_free_func (g_free);
  if (!pump (&op, in_fd, null_fd, &error) && error == NULL)
    abort ();
  g_ptr_array_unref (op.top_names);
  close (in_fd);
  return 0;
}
