#pragma once

#include "store.h"

G_BEGIN_DECLS

/* The images and kernels tables (migration 2), in the style of store.h:
 * insert fails with BANGER_ERROR_EXISTS on a duplicate name or id; get and
 * delete fail with BANGER_ERROR_NOT_FOUND naming what was asked for. Like
 * the rest of the store, these are called on the daemon's main thread only. */

typedef struct {
  char *id;     /* 16 hex digits; the image lives in <data>/images/<id>/ */
  char *name;   /* unique */
  char *source; /* "recipe:minimal", "file:<path>", an OCI reference, "vm:<name>" */
  char *digest; /* manifest digest for pulled images, "" otherwise */
  guint64 size_bytes;
  char *kernel; /* "" for the manager's default */
  gint64 created_at;
  char *config; /* JSON object (entrypoint, cmd, env, workdir, user); "{}" for none */
} BangerImageRecord;

typedef struct {
  char *id;           /* 16 hex digits; files in <data>/kernels/<id>/ */
  char *name;         /* unique */
  char *version;      /* the kernel release */
  char *source;       /* "file:<path>", "host:<path>", "catalog:<name>" */
  char *path;         /* what QEMU boots */
  char *vmlinux_path; /* "" if none */
  char *initrd_path;  /* "" for none */
  gint64 created_at;
} BangerKernelRecord;

BangerImageRecord *banger_image_record_new (void); /* strings "" (config "{}"), numbers 0 */
BangerImageRecord *banger_image_record_copy (const BangerImageRecord *rec);
void banger_image_record_free (BangerImageRecord *rec);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BangerImageRecord, banger_image_record_free)

BangerKernelRecord *banger_kernel_record_new (void);
BangerKernelRecord *banger_kernel_record_copy (const BangerKernelRecord *rec);
void banger_kernel_record_free (BangerKernelRecord *rec);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BangerKernelRecord, banger_kernel_record_free)

gboolean banger_store_image_insert (BangerStore *store, const BangerImageRecord *rec,
                                    GError **error);
BangerImageRecord *banger_store_image_get_by_name (BangerStore *store, const char *name,
                                                   GError **error);
/* Ordered by created_at, then name; element type BangerImageRecord. */
GPtrArray *banger_store_image_list (BangerStore *store, GError **error);
gboolean banger_store_image_delete (BangerStore *store, const char *name, GError **error);

gboolean banger_store_kernel_insert (BangerStore *store, const BangerKernelRecord *rec,
                                     GError **error);
BangerKernelRecord *banger_store_kernel_get_by_name (BangerStore *store, const char *name,
                                                     GError **error);
GPtrArray *banger_store_kernel_list (BangerStore *store, GError **error);
gboolean banger_store_kernel_delete (BangerStore *store, const char *name, GError **error);

/* Who uses an image or a kernel (what DeleteImage, DeleteKernel and UsedBy
 * ask): the names of the VMs, or of the images, that name it, oldest first;
 * an empty list when none does. A query, so the callers need not read every
 * record to filter them. */
GStrv banger_store_vm_names_using_image (BangerStore *store, const char *image, GError **error);
GStrv banger_store_vm_names_using_kernel (BangerStore *store, const char *kernel, GError **error);
GStrv banger_store_image_names_using_kernel (BangerStore *store, const char *kernel,
                                             GError **error);

G_END_DECLS
