#pragma once

#include <gio/gio.h>
#include <sys/types.h>

G_BEGIN_DECLS

/* The user a `banger system …` command acts for, and what root does on
 * their behalf: membership of group banger, linger, their user manager. */

#define BANGER_GROUP "banger"

typedef struct {
  char *name;
  uid_t uid;
  gid_t gid;
  char *home;
} BangerSystemUser;

/* --user NAME, else $SUDO_USER when root runs the command through sudo;
 * NULL (no error) when neither names anyone other than root. A NAME that
 * is no user is an error naming it. */
BangerSystemUser *banger_system_user_for_command (const char *opt_user, GError **error);
BangerSystemUser *banger_system_user_lookup (const char *name, GError **error);
void banger_system_user_free (BangerSystemUser *user);

/* In the group database (what polkit's isInGroup reads), not this
 * process's groups. */
gboolean banger_system_user_in_group (const char *name, gid_t primary, const char *group);

/* usermod -a -G. */
gboolean banger_system_user_add_to_group (const BangerSystemUser *user, const char *group,
                                          GError **error);

/* logind's linger flag, as /var/lib/systemd/linger/NAME records it. */
gboolean banger_system_user_has_linger (const char *name);
gboolean banger_system_user_set_linger (const BangerSystemUser *user, gboolean linger,
                                        GError **error);

/* Runs `systemctl --user ARGS…` as @user in their user manager (started
 * first when @start_manager). */
gboolean banger_system_user_systemctl (const BangerSystemUser *user, gboolean start_manager,
                                       const char *const *args, GError **error);

/* Runs @argv (argv[0] looked up in PATH and /usr/sbin, /sbin); fails with
 * the program's output in the message. @output may be NULL. */
gboolean banger_run_program (const char *const *argv, char **output, GError **error);

/* The banger directories of @home that the helper writes into (VM
 * directories with copy-on-write files and jails, staging). */
char **banger_system_user_banger_dirs (const char *home);

/* Every member of group banger (explicit members and users whose primary
 * group it is), sorted, plus @extra when not NULL. */
GPtrArray *banger_system_group_members (const char *extra);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (BangerSystemUser, banger_system_user_free)

G_END_DECLS
