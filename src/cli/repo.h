#pragma once

/* Host side of copying (cmd-vm-copy.c) and of the repo workflow (repo.c):
 * docs/repo-workflow.md. */

#include <gio/gio.h>

#include "banger-dbus.h"

G_BEGIN_DECLS

/* CopyIn of the tar that @produce writes to a pipe (in a thread of its
 * own, while the call runs); @produce returns FALSE with @error set. */
typedef gboolean (*BangerTarProducer) (int fd, gpointer data, GError **error);
gboolean banger_cli_copy_in (BangerVM *vm, const char *guest_dir, BangerTarProducer produce,
                             gpointer data, GError **error);
/* CopyIn straight from @fd (a tar stream, e.g. stdin). */
gboolean banger_cli_copy_in_fd (BangerVM *vm, const char *guest_dir, int fd, GError **error);
/* CopyOut of @guest_path to @fd, or, with @fd < 0, extracted under
 * @host_dir (which must exist). */
gboolean banger_cli_copy_out (BangerVM *vm, const char *guest_path, int fd, const char *host_dir,
                              GError **error);
/* Writes a tar of @paths (relative to @root; NULL-terminated) to @fd. */
gboolean banger_cli_write_tar (int fd, const char *root, const char *const *paths, GError **error);

/* Checks, before any VM exists, that @dir is a directory in a git work
 * tree; a usage error names it otherwise. */
gboolean banger_repo_check (const char *dir, GError **error);
/* vm push: ships the work tree of the git repository at @repo_dir (tracked
 * and untracked-not-ignored files) to @guest_dir (NULL: /root/<name>),
 * and records what was shipped in <git dir>/banger/<vm>.base. */
gboolean banger_repo_push (BangerVM *vm, const char *vm_name, const char *repo_dir,
                           const char *guest_dir, char **shipped_to, GError **error);
/* vm diff: the binary patch from what was shipped to the guest's tree now. */
GBytes *banger_repo_diff (BangerVM *vm, const char *vm_name, const char *repo_dir, GError **error);
/* vm pull: applies that patch to the host repo (git apply --3way), or
 * changes nothing and fails when it does not apply. */
gboolean banger_repo_apply (const char *repo_dir, GBytes *patch, GError **error);
/* Saves @patch as <git dir>/banger/<vm>.patch and prints its stat to
 * stderr; @saved_path is where. */
gboolean banger_repo_save_patch (const char *repo_dir, const char *vm_name, GBytes *patch,
                                 char **saved_path, GError **error);
/* Forgets <git dir>/banger/<vm>.base. */
void banger_repo_forget (const char *repo_dir, const char *vm_name);

/* `vm cp`, `vm push`, `vm diff`, `vm pull` (cmd-vm-copy.c). */
extern const struct _BangerCommand banger_vm_cp_command;
extern const struct _BangerCommand banger_vm_push_command;
extern const struct _BangerCommand banger_vm_diff_command;
extern const struct _BangerCommand banger_vm_pull_command;
extern const struct _BangerCommand banger_vm_workspace_command;

G_END_DECLS
