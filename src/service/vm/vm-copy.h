#pragma once

#include <gio/gio.h>

#include "vm-runtime.h"

G_BEGIN_DECLS

/* CopyIn / CopyOut (docs/repo-workflow.md, "How the bytes cross"): a tar
 * stream on the caller's descriptor, checked and rewritten by bangerd with
 * libarchive, carried to and from the guest's own `tar` over the agent's exec
 * streams. Main thread only; the tar work runs in a worker thread. Errors are
 * BANGER_ERROR: BadState when the VM is not running, InvalidArgument for a
 * tar entry that would escape the target or an option that is wrong. */

/* Extracts the tar read from @source_fd (duplicated) under @guest_dir.
 * Options: "owner" (s, "uid:gid"; default "0:0"). */
void banger_vm_copy_in_async (BangerVmRuntime *rt, const char *name, int source_fd,
                              const char *guest_dir, GVariant *options,
                              GAsyncReadyCallback callback, gpointer user_data);
/* Writes @guest_path (file, symlink or directory tree) as a PAX tar whose
 * top entry is the path's base name to @dest_fd (duplicated). No options. */
void banger_vm_copy_out_async (BangerVmRuntime *rt, const char *name, const char *guest_path,
                               int dest_fd, GVariant *options, GAsyncReadyCallback callback,
                               gpointer user_data);
gboolean banger_vm_copy_finish (GAsyncResult *result, GError **error);

/* Exposed for tests: the normalised form of a tar entry name (no leading
 * "./", no empty or "." components, no trailing "/"), or NULL with
 * InvalidArgument when it is absolute or has a ".." component. "" is the
 * archive's root. */
char *banger_vm_copy_normalize_entry (const char *name, GError **error);

G_END_DECLS
