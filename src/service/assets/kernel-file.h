#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef enum {
  BANGER_KERNEL_FORMAT_UNKNOWN,
  BANGER_KERNEL_FORMAT_BZIMAGE, /* x86 boot protocol image (vmlinuz) */
  BANGER_KERNEL_FORMAT_ELF,     /* uncompressed vmlinux */
} BangerKernelFormat;

/* Reads enough of @path to tell a bzImage from an ELF vmlinux, and the
 * kernel release ("6.1.0-28-cloud-amd64") when the file carries it. A file
 * that is neither is an InvalidArgument error naming it. */
gboolean banger_kernel_file_inspect (const char *path, BangerKernelFormat *format, char **release,
                                     GError **error);

const char *banger_kernel_format_to_string (BangerKernelFormat format);

/* The newest distribution kernel on this host that can boot a guest:
 * /boot/vmlinuz-<release> with its module tree /lib/modules/<release>.
 * Returns FALSE (NotFound naming where it looked) if there is none.
 * @boot_dir and @modules_dir are parameters for tests. */
gboolean banger_kernel_find_host (const char *boot_dir, const char *modules_dir, char **path,
                                  char **release, GError **error);

/* TRUE if the kernel release's virtio block driver is a module (so the
 * guest needs an initramfs that loads it). */
gboolean banger_kernel_needs_initramfs (const char *modules_dir, const char *release);

G_END_DECLS
