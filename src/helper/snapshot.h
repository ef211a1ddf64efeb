#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* CreateSnapshot / RemoveSnapshot: a device-mapper snapshot of a raw image
 * for one VM of the calling user (docs/helper.md). Configured from the
 * [storage] group of the helper's file:
 *
 *   [storage]
 *   dmsetup=dmsetup                  ; run by argv, found on PATH by default
 *   losetup=losetup
 *   dm_control=/dev/mapper/control   ; absent: device-mapper is unavailable
 *   dev_dir=/dev                     ; where /mapper/<name> and dm-N appear
 *   state_dir=/run/banger/snapshots  ; one owner record per snapshot
 *
 * The origin must pass the same test as a jail's files ([jail] user_dirs):
 * a regular file the caller owns, under one of the caller's banger
 * directories, reached without a symlink. The copy-on-write file is
 * <that directory>/vms/<vm_id>/snapshot.cow, owned by the caller; removing
 * it is the caller's business (RemoveSnapshot leaves it). */

gboolean banger_snapshot_config_load (const char *path, GError **error);
void banger_snapshot_config_clear (void);

/* The checks that need the caller's uid, made before polkit is asked: for
 * CreateSnapshot the origin and an existing snapshot's owner, for
 * RemoveSnapshot the owner. TRUE for every other method. */
gboolean banger_snapshot_check_caller (const char *method, GVariant *parameters, uid_t uid,
                                       GError **error);

/* Returns the snapshot device's path (<dev_dir>/mapper/banger-<vm_id>). */
char *banger_snapshot_create (const char *vm_id, const char *origin, uid_t uid, GError **error);

gboolean banger_snapshot_remove (const char *vm_id, uid_t uid, GError **error);

G_END_DECLS
