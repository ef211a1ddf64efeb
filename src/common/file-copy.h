#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* Copies of big files that may be sparse (images, disks): bangerd's VM
 * disks (vmm/disk-copy.c), a Firecracker state taken out of its jail and
 * an image registered from the user's file (assets/image-list.c). */

/* FICLONE: @dst_fd shares @src_fd's blocks. FALSE with
 * G_IO_ERROR_NOT_SUPPORTED where the filesystem cannot (or the two are on
 * different ones): copy instead. */
gboolean banger_file_reflink (int src_fd, int dst_fd, GError **error);

/* Copies @src_fd into @dst_fd (sized to it first), data regions only: the
 * holes stay holes. */
gboolean banger_file_copy_sparse (int src_fd, int dst_fd, GError **error);

G_END_DECLS
