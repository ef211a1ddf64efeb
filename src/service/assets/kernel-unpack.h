#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* The ELF vmlinux inside a bzImage, which is what Firecracker boots (QEMU
 * boots the bzImage itself). The x86 boot protocol (2.08+) says where the
 * compressed kernel lies: payload_offset and payload_length at 0x248 and
 * 0x24c, counted from the end of the real-mode setup. The payload is
 * decompressed with the library of its format — gzip (GLib's zlib
 * converter), xz (liblzma), zstd (libzstd) or lz4 (liblz4; what Debian's
 * cloud kernels use) — and must turn out to be an ELF file.
 *
 * @dest is written under a temporary name beside it and renamed only once
 * complete. Errors: INVALID_ARGUMENT naming @bzimage for a file that is not
 * a bzImage or whose payload is corrupt, UNSUPPORTED naming the format for
 * bzip2, lzma and lzo payloads. */
gboolean banger_kernel_unpack_bzimage (const char *bzimage, const char *dest,
                                       GCancellable *cancellable, GError **error);

/* The payload's compression, from its magic ("gzip", "xz", "zstd", "lz4",
 * "lzma", "bzip2", "lzo"), or NULL if @bzimage is not a bzImage with a
 * payload it names. For tests and logs. */
char *banger_kernel_payload_format (const char *bzimage, GError **error);

G_END_DECLS
