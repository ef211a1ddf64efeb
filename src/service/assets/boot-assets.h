#pragma once

#include <gio/gio.h>

#include "image-list.h"

G_BEGIN_DECLS

/* What a VM boots, resolved from its image and kernel names: the contract
 * between the kernels/images code (which implements it in boot-assets.c) and
 * the VM runtime (which calls it when a VM starts). */
typedef struct {
  char *image_name;
  char *rootfs_path; /* the image's raw ext4 rootfs, never written by a VM */
  gboolean image_has_sshd;
  GVariant *image_config; /* a{sv}: "entrypoint", "cmd", "env" (as), "workdir", "user" (s) */
  char *kernel_name;
  char *kernel_path; /* what QEMU boots (bzImage or vmlinux) */
  char *initrd_path; /* "" for none */
} BangerBootAssets;

void banger_boot_assets_free (BangerBootAssets *assets);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BangerBootAssets, banger_boot_assets_free)

/* Resolves @image (NULL/"": the engine's default image) and @kernel
 * (NULL/"": the image's kernel, else the engine's default kernel). The
 * default image ("minimal") is built and the default kernel ("default", the
 * host's distribution kernel with a banger-written initramfs) is imported
 * on first use if absent. NotFound (naming it) for any other missing name.
 * Blocks (seconds at most for the defaults): call it from a worker thread. */
BangerBootAssets *banger_image_list_resolve_boot_assets (BangerImageList *self, const char *image,
                                                         const char *kernel,
                                                         GCancellable *cancellable, GError **error);

G_END_DECLS
