#pragma once

#include "image-list.h"

G_BEGIN_DECLS

/* Kernels in the catalog (images.h): <data>/kernels/<id>/ holds the kernel
 * as QEMU boots it (vmlinuz for a bzImage, vmlinux for an ELF file) and,
 * for a distribution kernel whose virtio drivers are modules, the
 * initramfs banger wrote (initramfs.img: the modules from
 * /lib/modules/<release> and the agent as /init) or the one given. */

GPtrArray *banger_image_list_list_kernels (BangerImageList *self, GError **error);
BangerKernelRecord *banger_image_list_find_kernel (BangerImageList *self, const char *name,
                                                GError **error);
/* Busy while an image or VM uses it, unless @force. */
gboolean banger_image_list_delete_kernel (BangerImageList *self, const char *name, gboolean force,
                                       GError **error);

/* Imports @path as kernel @name (NULL: "linux-<release>"), with @initrd (NULL
 * or "": banger writes one if the kernel needs it). InvalidArgument naming
 * the file if it is not a kernel; nothing is registered then. */
void banger_image_list_import_kernel_async (BangerImageList *self, const char *path, const char *name,
                                         const char *initrd, GCancellable *cancellable,
                                         GAsyncReadyCallback callback, gpointer user_data);
BangerKernelRecord *banger_image_list_import_kernel_finish (BangerImageList *self, GAsyncResult *result,
                                                         GError **error);

/* The same, blocking, from a worker thread (or the main context). @source
 * is recorded as given ("file:<path>" when NULL). */
BangerKernelRecord *banger_image_list_import_kernel (BangerImageList *self, const char *path,
                                                  const char *name, const char *initrd,
                                                  const char *source, GCancellable *cancellable,
                                                  GError **error);

/* The first half of an import, from a worker thread: the files in
 * <data>/kernels/<id>/ (a bzImage also unpacked to an ELF vmlinux, see
 * kernel-unpack.h) and the record, not yet inserted. On failure nothing is
 * left. */
BangerKernelRecord *banger_image_list_prepare_kernel (BangerImageList *self, const char *path,
                                                   const char *name, const char *initrd,
                                                   const char *source, GCancellable *cancellable,
                                                   GError **error);
/* The second half, on the main context: inserts and announces @rec. */
gboolean banger_image_list_insert_kernel (BangerImageList *self, const BangerKernelRecord *rec,
                                       GError **error);
/* <data>/kernels/<id> */
char *banger_image_list_kernel_dir (BangerImageList *self, const BangerKernelRecord *rec);

/* A kernel name from a release: "linux-6-1-0-28-cloud-amd64". */
char *banger_kernel_name_from_release (const char *release);

G_END_DECLS
