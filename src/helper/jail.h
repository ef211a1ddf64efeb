#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* LaunchJailed / KillJailed / RemoveJail: Firecracker under its jailer, for the calling
 * user (docs/firecracker.md). Configured from the [jail] group of the
 * helper's file:
 *
 *   [jail]
 *   jailer=/usr/bin/jailer
 *   firecracker=/usr/bin/firecracker
 *   chroot_base=/srv/jailer
 *   # where a user's banger files may come from; %h is the user's home,
 *   # %U the uid; separated by ';'
 *   user_dirs=%h/.local/share/banger;%h/.cache/banger
 *
 * A jail is <chroot_base>/<firecracker's file name>/<id>/root; its owner
 * uid is recorded in <chroot_base>/<name>/<id>/banger-owner (outside the
 * chroot, root's), and only that uid may relaunch or signal it. */

/* Reads the [jail] group of @path (a missing file or group: defaults). */
gboolean banger_jail_config_load (const char *path, GError **error);
void banger_jail_config_clear (void);

/* The checks that need the caller's uid, made before polkit is asked:
 * for LaunchJailed the id, the ownership of an existing jail and every path
 * (under the caller's directories, no symlinks, a regular file the caller
 * owns); for KillJailed and RemoveJail the ownership (RemoveJail: of a jail
 * that exists). TRUE for every other method. */
gboolean banger_jail_check_caller (const char *method, GVariant *parameters, uid_t uid,
                                   GError **error);

/* Opens @path read-only if it is a regular file @uid owns under one of
 * @uid's banger directories, reached without a symlink (what LaunchJailed
 * checks for its files; CreateSnapshot reuses it for the origin). If
 * @dirfd_out is not NULL it gets an O_PATH descriptor of that directory. */
int banger_jail_open_user_file (const char *what, const char *path, uid_t uid, int *dirfd_out,
                                GError **error);

/* LaunchJailed(@spec): returns the Firecracker pid. */
guint banger_jail_launch (GVariant *spec, uid_t uid, GError **error);

/* KillJailed(@id, @signum) for the jail's owner. */
gboolean banger_jail_kill (const char *id, int signum, uid_t uid, GError **error);

/* TakeJailState(@id, @dest_dir) for the jail's owner: the snapshot its
 * Firecracker wrote to /run/memory and /run/vmstate (chroot-relative),
 * each a regular file of @uid's with one link, reached without a symlink,
 * the memory at most the launch's memory size and the state at most 64 MiB,
 * moved into the existing directory @dest_dir (@uid's, under @uid's banger
 * directories, no symlink) as "memory" then "vmstate": hard links where
 * the filesystem allows, else copies owned by @uid. Never writes over a
 * name in @dest_dir (Exists); on any failure nothing is left there. */
gboolean banger_jail_take_state (const char *id, const char *dest_dir, uid_t uid, GError **error);

/* RemoveJail(@id) for the jail's owner: BadState while its Firecracker
 * runs; unmounts everything below the jail first (refusing if anything
 * stays mounted), then removes the tree through descriptors, never
 * following a symlink nor crossing onto another mount. An absent jail is
 * success. */
gboolean banger_jail_remove (const char *id, uid_t uid, GError **error);

G_END_DECLS
