#pragma once

#include <gio/gio.h>

#include "system-user.h"

G_BEGIN_DECLS

/* `banger system install`: copies banger's system integration files (bus
 * policy and activation files, polkit actions and rules, systemd units)
 * from the directory meson installed them to into the places the system
 * daemons read, creates the `banger` group and asks systemd and
 * dbus-daemon to reload. The choices are in docs/decisions.md. */

typedef enum {
  BANGER_SYSTEM_FILE_INSTALLED, /* was missing */
  BANGER_SYSTEM_FILE_UPDATED,   /* content or mode differed */
  BANGER_SYSTEM_FILE_UNCHANGED,
  BANGER_SYSTEM_FILE_SKIPPED, /* an administrator's symlink (a mask) or not a file */
} BangerSystemFileStatus;

typedef struct {
  char *source; /* the copy in the data directory */
  char *target; /* where the daemon reads it, e.g. /etc/systemd/system/… */
  char *path;   /* what is written: @target under --root */
  guint mode;
  BangerSystemFileStatus status;
  char *message; /* why it was skipped; NULL otherwise */
} BangerSystemFile;

/* One thing done after the files: the group, each daemon's reload. */
typedef struct {
  char *name;    /* "group", "systemd", "dbus-daemon", "systemd --user" */
  char *status;  /* a machine word: created, exists, reloaded, skipped, … */
  char *message; /* for people (translated); may be NULL */
} BangerSystemStep;

typedef struct {
  char *data_dir;
  char *root; /* NULL: the running system */
  gboolean dry_run;
  GPtrArray *files; /* BangerSystemFile */
  GPtrArray *steps; /* BangerSystemStep */
  gboolean failed;  /* a step failed (the files are in place) */
  char *user;       /* the user it was run for, or NULL */
  gboolean user_added;     /* this run added @user to the group */
  gboolean linger_enabled; /* this run enabled linger for @user */
} BangerSystemInstall;

/* The helper unit's drop-in that opens the group members' banger
 * directories. */
#define BANGER_SYSTEM_HELPER_DROPIN "/etc/systemd/system/bangerd-root.service.d/50-banger-users.conf"

/* Every path `install` writes (without --root), NULL-terminated. */
const char *const *banger_system_install_targets (void);

/* $BANGER_SYSTEM_DATA_DIR (the build tree's copies, for tests) or the
 * directory meson installed (${datadir}/banger/system). */
const char *banger_system_data_dir (void);

/* Installs or refreshes every file (only compares with @dry_run), then the
 * group and the reloads. With @root everything goes under @root and no
 * daemon is asked anything. Fails before writing anything when a source is
 * missing; a failed write names its file. */
BangerSystemInstall *banger_system_install_run (const char *data_dir, const char *root,
                                                gboolean dry_run, const BangerSystemUser *user,
                                                GError **error);

void banger_system_install_free (BangerSystemInstall *install);

/* "installed", "updated", "unchanged", "skipped" (the JSON words). */
const char *banger_system_file_status_to_string (BangerSystemFileStatus status);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (BangerSystemInstall, banger_system_install_free)

G_END_DECLS
