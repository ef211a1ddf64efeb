#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* A VM's own raw root disk, made from an image's raw rootfs (which is never
 * written). Firecracker has no qcow2, so the copy must be cheap some other
 * way. In order of preference:
 *
 *   "reflink"      FICLONE: the filesystem shares the blocks (btrfs, xfs,
 *                  bcachefs, ...); instant, no extra space;
 *   "dm-snapshot"  a device-mapper snapshot over the image, made by the
 *                  helper (CreateSnapshot) where it has device-mapper; the
 *                  snapshot function fails (Unsupported) where it has none;
 *   "sparse-copy"  a copy that skips holes (SEEK_DATA/SEEK_HOLE) and
 *                  leaves them as holes in the copy.
 *
 * The mode chosen is what `vm show` and `doctor` report. */

/* Makes a dm-snapshot of @origin for the VM and returns the device's path;
 * the runtime passes one that calls the helper's CreateSnapshot. */
typedef char *(*BangerDiskSnapshotFunc) (const char *origin, gpointer user_data, GError **error);

/* TRUE if device-mapper is usable on this host. */
gboolean banger_disk_copy_have_device_mapper (void);

/* Makes @dest from @origin (at least @min_bytes long; the file is extended,
 * the filesystem inside is not). @snapshot may be NULL (no helper). On
 * success *@mode_out is one of the modes above and *@path_out (may be NULL)
 * the disk's path: @dest, or the snapshot device. @dest is created under a
 * temporary name and renamed, so a failure leaves nothing that looks like a
 * disk. An existing @dest is kept (a stopped VM keeps its disk): its mode
 * is then "existing". */
gboolean banger_disk_copy (const char *origin, const char *dest, guint64 min_bytes,
                           BangerDiskSnapshotFunc snapshot, gpointer snapshot_data, char **mode_out,
                           char **path_out, GError **error);


G_END_DECLS
