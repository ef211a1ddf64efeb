#pragma once

#include <gio/gio.h>

#include "banger-config.h"
#include "job-list.h"
#include "store-images.h"

G_BEGIN_DECLS

/* BangerKernelList: the engine's kernels. <data>/kernels/<id>/ holds the
 * kernel as QEMU boots it (vmlinuz for a bzImage, vmlinux for an ELF file)
 * and, for a distribution kernel whose virtio drivers are modules, the
 * initramfs banger wrote (initramfs.img: the modules from
 * /lib/modules/<release> and the agent as /init) or the one given; the
 * records are the store's. One per engine, made by it (engine.c); the image
 * list is given it for the images' kernels. It knows nothing about D-Bus:
 * dbus-kernel.c follows its signals.
 *
 * Calls are made on the main context unless said otherwise; imports run in
 * worker threads, and records are only ever written on the main context
 * (the store's rule).
 *
 * Signals (main context):
 *   "kernel-added"   (const BangerKernelRecord *)
 *   "kernel-removed" (const char *name) */
#define BANGER_TYPE_KERNEL_LIST (banger_kernel_list_get_type ())
G_DECLARE_FINAL_TYPE (BangerKernelList, banger_kernel_list, BANGER, KERNEL_LIST, GObject)

/* Made once, by the engine, on the main context (whose jobs finish there);
 * @store is the engine's and outlives the list. */
BangerKernelList *banger_kernel_list_new (BangerConfig *config, BangerStore *store,
                                          BangerJobList *jobs);
BangerConfig *banger_kernel_list_get_config (BangerKernelList *self);
BangerStore *banger_kernel_list_get_store (BangerKernelList *self);
/* The engine's job list: a pull runs there (kernel-pull.c). */
BangerJobList *banger_kernel_list_get_jobs (BangerKernelList *self);

/* Runs @func on the list's main context and waits for it (main-call.h). */
typedef gpointer (*BangerKernelListMainFunc) (BangerKernelList *self, gpointer data,
                                              GError **error);
gpointer banger_kernel_list_call_main (BangerKernelList *self, BangerKernelListMainFunc func,
                                       gpointer data, GError **error);

GPtrArray *banger_kernel_list_get_all (BangerKernelList *self, GError **error);
BangerKernelRecord *banger_kernel_list_find (BangerKernelList *self, const char *name,
                                             GError **error);
/* Busy while an image or VM uses it, unless @force. */
gboolean banger_kernel_list_delete (BangerKernelList *self, const char *name, gboolean force,
                                    GError **error);

/* Exists, naming @name (followed by @hint if not NULL), if a kernel called
 * @name is registered; a failed look-up is returned as is. */
gboolean banger_kernel_list_check_free (BangerKernelList *self, const char *name, const char *hint,
                                        GError **error);
/* CreateVM's and RegisterImage's check: NotFound naming @name unless it is
 * registered or is the engine's default kernel (imported on first use). */
gboolean banger_kernel_list_check_known (BangerKernelList *self, const char *name, GError **error);

/* Imports @path as kernel @name (NULL: "linux-<release>"), with @initrd (NULL
 * or "": banger writes one if the kernel needs it). InvalidArgument naming
 * the file if it is not a kernel; nothing is registered then. */
void banger_kernel_list_import_async (BangerKernelList *self, const char *path, const char *name,
                                      const char *initrd, GCancellable *cancellable,
                                      GAsyncReadyCallback callback, gpointer user_data);
BangerKernelRecord *banger_kernel_list_import_finish (BangerKernelList *self, GAsyncResult *result,
                                                      GError **error);

/* The same, blocking, from a worker thread (or the main context). @source
 * is recorded as given ("file:<path>" when NULL). */
BangerKernelRecord *banger_kernel_list_import (BangerKernelList *self, const char *path,
                                               const char *name, const char *initrd,
                                               const char *source, GCancellable *cancellable,
                                               GError **error);

/* The first half of an import, from a worker thread: the files in
 * <data>/kernels/<id>/ (a bzImage also unpacked to an ELF vmlinux, see
 * kernel-unpack.h) and the record, not yet inserted. On failure nothing is
 * left. */
BangerKernelRecord *banger_kernel_list_prepare (BangerKernelList *self, const char *path,
                                                const char *name, const char *initrd,
                                                const char *source, GCancellable *cancellable,
                                                GError **error);
/* The second half, on the main context: inserts and announces @rec. */
gboolean banger_kernel_list_insert (BangerKernelList *self, const BangerKernelRecord *rec,
                                    GError **error);
/* <data>/kernels/<id> */
char *banger_kernel_list_dir (BangerKernelList *self, const BangerKernelRecord *rec);

/* A kernel name from a release: "linux-6-1-0-28-cloud-amd64". */
char *banger_kernel_name_from_release (const char *release);

G_END_DECLS
