#pragma once

/* A program of the host's, shipped into a guest so that `ssh NAME.vm` can
 * serve scp (sftp-server) and rsync to a VM whose image has neither
 * (docs/cli.md, "VMs without sshd"). It goes in with its shared libraries
 * and the host's dynamic loader, and runs through that loader, so it needs
 * nothing of the guest's: not even a C library (the minimal image is
 * busybox alone). */

#include <gio/gio.h>

#include "banger-dbus.h"

G_BEGIN_DECLS

typedef struct _BangerGuestTool BangerGuestTool;

/* @program (an absolute path on the host) and what `ldd` says it links;
 * bin/ in its guest directory runs it by its own name and by each of
 * @aliases (NULL-terminated, or NULL). */
BangerGuestTool *banger_guest_tool_new (const char *program, const char *const *aliases,
                                        GError **error);
void banger_guest_tool_free (BangerGuestTool *tool);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BangerGuestTool, banger_guest_tool_free)

/* The guest directory the tool lives in (bin/ under it goes on PATH): /.banger/tools/NAME-STAMP,
 * where STAMP changes with any of the host files (so an upgraded host ships again, and a copy that
 * is running is never overwritten). */
const char *banger_guest_tool_dir (const BangerGuestTool *tool);

/* Copies the tool into @vm unless an earlier call already did. */
gboolean banger_guest_tool_ensure (BangerGuestTool *tool, BangerVM *vm, const char *name,
                                   GError **error);

/* The guest argv that runs the tool under the name @argv0 with @args:
 * its loader, its library directory, then the program. */
char **banger_guest_tool_argv (const BangerGuestTool *tool, const char *argv0,
                               const char *const *args);

G_END_DECLS
