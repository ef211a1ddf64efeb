#pragma once

#include <gio/gio.h>

#include "kmod-deps.h"

G_BEGIN_DECLS

/* The modules a distribution kernel (Debian's cloud kernel builds virtio as
 * modules) needs to find its disk, network, console and entropy in a
 * microVM, in the order asked. */
#define BANGER_INITRAMFS_DEFAULT_MODULES                                                           \
  ((const char *const[]){ "virtio_mmio", "virtio_pci", "virtio_blk", "virtio_net",                 \
                          "virtio_console", "virtio-rng", "button", "evdev", NULL })

/* Writes @dest, a gzip-compressed newc cpio archive holding:
 *   init                         @init_binary (the guest agent acting as init), 0755
 *   etc/banger/modules           one module path per line, relative to
 *                                lib/modules/@kver, in load order
 *   lib/modules/@kver/...        the .ko files of @modules and their
 *                                dependencies (banger_kmod_resolve_order())
 *   dev proc sys root            empty directories, and dev/console (char 5:1)
 * @modules_root is the directory holding the kernel's module tree, e.g.
 * "/lib/modules". Compressed modules (.ko.xz, .ko.zst, .ko.gz) are refused:
 * /init loads them with a plain init_module(). @dest is replaced atomically. */
gboolean banger_initramfs_write (const char *modules_root, const char *kver,
                                 const char *const *modules, const char *init_binary,
                                 const char *dest, GError **error);

G_END_DECLS
