#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* How large an ext4 file system as ext4-writer.c makes it (4 KiB blocks, a
 * journal) must be, shared by the host-tree estimate (imaging-tree.c) and
 * the OCI-layer one (oci-layers.c). Implemented in imaging-tree.c. */

/* ext2fs_default_journal_size(), in bytes, for a file system of @fs_bytes.
 * Kept here rather than called: libext2fs answers -1 below 8 MiB, where
 * a size check still needs a number. */
guint64 banger_ext4_journal_bytes (guint64 fs_bytes);

/* The size for @data_bytes of content and @inodes inodes, inode tables,
 * group metadata, the resize reserve, the root-reserved 5 % and the
 * journal; rounded up to a MiB and at least @min_bytes. */
guint64 banger_ext4_size_estimate (guint64 data_bytes, guint64 inodes, guint64 min_bytes);

G_END_DECLS
