#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Normalises a module name the way kmod does: '-' becomes '_'. */
char *banger_kmod_normalize_name (const char *name);

/* The .ko files to load, in order, for @modules of kernel @kver whose tree is
 * @modules_root/@kver (e.g. "/lib/modules"): dependencies first, each module
 * once, soft dependencies of the kernel's own modules.softdep honoured,
 * modules built into the kernel (modules.builtin) skipped, names looked up
 * in modules.dep and then in modules.alias. This is the order that
 * `modprobe -S KVER --show-depends` prints for each name in turn, without
 * the repeats, and without anything from the host's /etc/modprobe.d (the
 * modules are for a guest).
 *
 * Returns paths relative to @modules_root/@kver, e.g.
 * "kernel/drivers/virtio/virtio_ring.ko". A name that is neither a module
 * nor built in is a BANGER_ERROR_NOT_FOUND error naming it. */
GPtrArray *banger_kmod_resolve_order (const char *modules_root, const char *kver,
                                      const char *const *modules, GError **error);

G_END_DECLS
