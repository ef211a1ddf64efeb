#pragma once

#include <gio/gio.h>

#include "ext4-writer.h"

G_BEGIN_DECLS

/* OCI image layers (tar, plain or gzip or zstd compressed) flattened into
 * an ext4 image: libarchive reads each layer and its entries go straight
 * into the ext4 writer, so nothing is ever unpacked to the host filesystem
 * and no root is needed to keep owners, setuid bits or device nodes.
 *
 * Each layer is read twice: banger_oci_layer_scan() checks every entry
 * before anything is written (paths that are absolute or climb with "..",
 * hard links that do, absurd sizes) and notes the layer's whiteouts and
 * what its content needs; banger_oci_layer_apply() then applies the
 * whiteouts first — they hide what lower layers had, never what the same
 * layer adds, whatever their order in the tar — and writes the entries.
 * Escapes through symlinks are refused by the writer itself, which resolves
 * every path inside the image. Errors (INVALID_ARGUMENT for a bad layer)
 * name the layer and the entry. */
typedef struct _BangerOciLayer BangerOciLayer;

/* Limits: one entry, and the sum of a whole image. */
#define BANGER_OCI_MAX_ENTRY_BYTES (64ULL << 30)
#define BANGER_OCI_MAX_IMAGE_BYTES (512ULL << 30)
#define BANGER_OCI_MAX_ENTRIES     (16u << 20)
/* What a layer may expand to: this many times its own (compressed) size,
 * and at least BANGER_OCI_EXPANSION_FLOOR. gzip reaches ~1000:1 on zeros, so
 * without it a 1 MiB layer could make bangerd write a 512 GiB image. Real
 * layers expand 2–10 times. */
#define BANGER_OCI_MAX_EXPANSION   64u
#define BANGER_OCI_EXPANSION_FLOOR (1ULL << 30)

/* @name (e.g. the layer's digest) is used in errors. */
/* Tests only: lowers BANGER_OCI_MAX_ENTRIES. */
void banger_oci_layer_set_max_entries (guint n);

BangerOciLayer *banger_oci_layer_scan (const char *path, const char *name,
                                       GCancellable *cancellable, GError **error);
void banger_oci_layer_free (BangerOciLayer *layer);

/* Bytes of file data (rounded to blocks) and entries the layer adds. */
guint64 banger_oci_layer_get_data_bytes (BangerOciLayer *layer);
guint64 banger_oci_layer_get_entries (BangerOciLayer *layer);

gboolean banger_oci_layer_apply (BangerOciLayer *layer, BangerExt4Writer *writer,
                                 GCancellable *cancellable, GError **error);

/* An image size for @data_bytes in @entries with 25 % headroom plus the
 * file system's own metadata and journal (at least 64 MiB), or exactly
 * @size_mib MiB when it is not 0. INVALID_ARGUMENT if @size_mib is too
 * small for the content. */
gboolean banger_oci_rootfs_size (guint64 data_bytes, guint64 entries, guint size_mib,
                                 guint64 *size_out, guint64 *inodes_out, GError **error);

/* Normalises a path from a layer to "/a/b" ("/" for the root): strips
 * "./" and empty components; absolute paths and ".." are refused. */
char *banger_oci_layer_clean_path (const char *raw, GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (BangerOciLayer, banger_oci_layer_free)

G_END_DECLS
