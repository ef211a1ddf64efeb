/* The Firecracker driver's saved state (vmm.h: save_state, resume_paused,
 * config->incoming_state), through the snapshot API of the contract
 * (firecracker-v1.16.1.yaml): PATCH /vm Paused, PUT /snapshot/create of a
 * full snapshot (the microVM state and the guest memory, two files), and on
 * a fresh process PUT /snapshot/load (paused), PATCH /drives/rootfs with the
 * VM's own disk, PATCH /vm Resumed. A snapshot names the drive files of the
 * VM that made it and the load opens them, so a warm-start template
 * (save_template) is saved naming its frozen disk in the warm cache, and
 * every restore re-points the drive at the VM's own disk before the guest
 * runs (docs/warm-start.md). A jailed Firecracker sees only its chroot, so
 * its state would have to be moved in and out of the jail through the
 * helper: not done yet, refused with a clear error. */

#include "vmm-firecracker.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <unistd.h>

#include "banger-error.h"
#include "disk-copy.h"
#include "firecracker-api.h"

/* A snapshot writes the whole guest memory: more than a configuration call. */
#define STATE_API_TIMEOUT_S (BANGER_VMM_STATE_TIMEOUT_MS / 1000)

static gboolean
refuse_jailed (const char *control_socket, const char *what, GError **error)
{
  if (control_socket != NULL && g_file_test (control_socket, G_FILE_TEST_IS_SYMLINK)) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_UNSUPPORTED,
                 "%s is not supported for a jailed Firecracker yet (its files live in the jail)",
                 what);
    return TRUE;
  }
  return FALSE;
}

static gboolean
set_vm_state (BangerFirecrackerApi *api, const char *state, GError **error)
{
  g_autoptr (JsonObject) body = json_object_new ();
  g_autoptr (JsonNode) node = json_node_new (JSON_NODE_OBJECT);

  json_object_set_string_member (body, "state", state);
  json_node_set_object (node, body);
  return banger_firecracker_api_patch (api, "/vm", node, error);
}

/* Points the drive rootfs at @path (post-boot: also while paused). */
static gboolean
set_drive (BangerFirecrackerApi *api, const char *path, GError **error)
{
  g_autoptr (JsonObject) body = json_object_new ();
  g_autoptr (JsonNode) node = json_node_new (JSON_NODE_OBJECT);

  json_object_set_string_member (body, "drive_id", "rootfs");
  json_object_set_string_member (body, "path_on_host", path);
  json_node_set_object (node, body);
  return banger_firecracker_api_patch (api, "/drives/rootfs", node, error);
}

/* A reflink of @from, else a sparse copy, as the new file @to. */
static gboolean
copy_disk (const char *from, const char *to, GError **error)
{
  g_autoptr (GError) local = NULL;
  int src = open (from, O_RDONLY | O_CLOEXEC);
  int dst = -1;
  gboolean ok = FALSE;
  GStatBuf st;

  /* A dm-snapshot device has no size to stat nor holes to seek: its VM
   * makes no template (its clones could not be cheap copies anyway). */
  if (src >= 0 && (fstat (src, &st) < 0 || !S_ISREG (st.st_mode))) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_UNSUPPORTED,
                 "the disk %s is not a regular file (a dm-snapshot): no snapshot of it", from);
    close (src);
    return FALSE;
  }
  if (src >= 0)
    dst = open (to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (src < 0 || dst < 0) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "copying the disk %s to %s: %s", from,
                 to, g_strerror (errno));
    goto out;
  }
  ok = banger_disk_copy_reflink (src, dst, NULL) || banger_disk_copy_sparse (src, dst, &local);
  if (ok && fsync (dst) < 0) {
    g_set_error (&local, BANGER_ERROR, BANGER_ERROR_FAILED, "%s", g_strerror (errno));
    ok = FALSE;
  }
  if (!ok) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "copying the disk %s to %s: %s", from,
                 to, local->message);
    g_unlink (to);
  }
out:
  if (src >= 0)
    close (src);
  if (dst >= 0)
    close (dst);
  return ok;
}

/* The snapshot of the paused guest: under temporary names, then renamed
 * (the memory first, the state last: a state file in place means a
 * complete state, banger_vmm_state_complete()). */
static gboolean
create_snapshot (BangerFirecrackerApi *api, const char *state_dir, GError **error)
{
  g_autofree char *state = g_build_filename (state_dir, BANGER_VMM_STATE_FILE, NULL);
  g_autofree char *memory = g_build_filename (state_dir, BANGER_VMM_MEMORY_FILE, NULL);
  g_autofree char *state_tmp = g_strconcat (state, ".tmp", NULL);
  g_autofree char *memory_tmp = g_strconcat (memory, ".tmp", NULL);
  g_autoptr (JsonObject) body = json_object_new ();
  g_autoptr (JsonNode) node = json_node_new (JSON_NODE_OBJECT);
  g_autoptr (GError) local = NULL;

  json_object_set_string_member (body, "snapshot_type", "Full");
  json_object_set_string_member (body, "snapshot_path", state_tmp);
  json_object_set_string_member (body, "mem_file_path", memory_tmp);
  json_node_set_object (node, body);
  if (banger_firecracker_api_put (api, "/snapshot/create", node, &local)
      && g_rename (memory_tmp, memory) == 0 && g_rename (state_tmp, state) == 0)
    return TRUE;
  if (local == NULL)
    g_set_error (&local, BANGER_ERROR, BANGER_ERROR_FAILED, "cannot rename the snapshot in %s: %s",
                 state_dir, g_strerror (errno));
  g_unlink (state_tmp);
  g_unlink (memory_tmp);
  g_unlink (state);
  g_unlink (memory);
  g_propagate_error (error, g_steal_pointer (&local));
  return FALSE;
}

/* A failed save: the guest runs again, @error says why. */
static gboolean
save_failed (BangerFirecrackerApi *api, GError **error)
{
  g_autoptr (GError) resume_error = NULL;

  if (!set_vm_state (api, "Resumed", &resume_error))
    g_prefix_error (error, "(and the guest could not be resumed: %s) ", resume_error->message);
  return FALSE;
}

gboolean
banger_vmm_firecracker_save_state (BangerVmmInstance *i, const char *state_dir, GError **error)
{
  g_autoptr (BangerFirecrackerApi) api = NULL;

  if (refuse_jailed (i->control_socket, "saving a VM's state", error))
    return FALSE;
  api = banger_firecracker_api_new (i->control_socket, STATE_API_TIMEOUT_S);
  /* The contract: a snapshot is taken of a paused microVM. */
  if (!set_vm_state (api, "Paused", error))
    return FALSE;
  return create_snapshot (api, state_dir, error) || save_failed (api, error);
}

/* The state names @disk_as, which must exist when the drive is pointed at
 * it (Firecracker opens it) but is only in place once the caller renames
 * the entry: for the moment of the snapshot, @disk_as is a hard link to
 * the frozen copy, in a directory made for it and removed again. The
 * guest is paused throughout and its drive pointed back before anything
 * else, so it never writes to the copy. */
gboolean
banger_vmm_firecracker_save_template (BangerVmmInstance *i, const char *state_dir,
                                      const char *disk_copy, const char *disk_as, GError **error)
{
  g_autoptr (BangerFirecrackerApi) api = NULL;
  g_autofree char *as_dir = g_path_get_dirname (disk_as);
  gboolean made_dir = FALSE;
  gboolean ok;

  if (refuse_jailed (i->control_socket, "saving a VM's state", error))
    return FALSE;
  api = banger_firecracker_api_new (i->control_socket, STATE_API_TIMEOUT_S);
  if (!set_vm_state (api, "Paused", error))
    return FALSE;
  if (!copy_disk (i->disk_path, disk_copy, error))
    return save_failed (api, error);
  if (g_mkdir (as_dir, 0700) == 0)
    made_dir = TRUE;
  if (!made_dir || link (disk_copy, disk_as) < 0) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "cannot make %s: %s", disk_as,
                 g_strerror (errno));
    if (made_dir)
      g_rmdir (as_dir);
    g_unlink (disk_copy);
    return save_failed (api, error);
  }
  ok = set_drive (api, disk_as, error);
  ok = ok && create_snapshot (api, state_dir, error);
  /* Back on its own disk, whatever happened. */
  if (!set_drive (api, i->disk_path, ok ? error : NULL)) {
    g_autofree char *state = g_build_filename (state_dir, BANGER_VMM_STATE_FILE, NULL);

    /* Left paused: resumed, the guest would write to the copy, which goes
     * with the failed save; its start fails instead. */
    if (ok)
      g_prefix_error (error,
                      "pointing the drive back at %s (the guest stays paused): ", i->disk_path);
    else
      g_prefix_error (error,
                      "(the drive could not be pointed back at %s: the guest stays "
                      "paused) ",
                      i->disk_path);
    g_unlink (state);
    g_unlink (disk_as);
    g_rmdir (as_dir);
    return FALSE;
  }
  g_unlink (disk_as);
  g_rmdir (as_dir);
  if (!ok) {
    g_unlink (disk_copy);
    return save_failed (api, error);
  }
  return TRUE;
}

gboolean
banger_vmm_firecracker_resume_paused (BangerVmmInstance *i, GError **error)
{
  g_autoptr (BangerFirecrackerApi) api = banger_firecracker_api_new (i->control_socket, 10);

  return set_vm_state (api, "Resumed", error);
}

gboolean
banger_vmm_firecracker_load_state (const BangerVmmConfig *c, BangerVmmInstance *i, GError **error)
{
  g_autoptr (BangerFirecrackerApi) api = NULL;
  g_autofree char *state = g_build_filename (c->incoming_state, BANGER_VMM_STATE_FILE, NULL);
  g_autofree char *memory = g_build_filename (c->incoming_state, BANGER_VMM_MEMORY_FILE, NULL);
  g_autoptr (JsonObject) body = json_object_new ();
  g_autoptr (JsonObject) backend = json_object_new ();
  g_autoptr (JsonObject) vsock = json_object_new ();
  g_autoptr (JsonNode) node = json_node_new (JSON_NODE_OBJECT);

  if (!g_file_test (memory, G_FILE_TEST_IS_REGULAR)) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_NOT_FOUND, "the saved state in %s has no %s",
                 c->incoming_state, BANGER_VMM_MEMORY_FILE);
    return FALSE;
  }
  api = banger_firecracker_api_new (i->control_socket, STATE_API_TIMEOUT_S);
  json_object_set_string_member (body, "snapshot_path", state);
  json_object_set_string_member (backend, "backend_type", "File");
  json_object_set_string_member (backend, "backend_path", memory);
  json_object_set_object_member (body, "mem_backend", g_steal_pointer (&backend));
  /* Paused: its drive goes to its own disk first. */
  json_object_set_boolean_member (body, "resume_vm", FALSE);
  /* The devices' host ends as they are now (the tap may have been made
   * anew, the VM directory moved), not as the snapshot remembers them. */
  if (c->tap != NULL && *c->tap) {
    JsonArray *overrides = json_array_new ();
    JsonObject *net = json_object_new ();

    json_object_set_string_member (net, "iface_id", "eth0");
    json_object_set_string_member (net, "host_dev_name", c->tap);
    json_array_add_object_element (overrides, net);
    json_object_set_array_member (body, "network_overrides", overrides);
  }
  json_object_set_string_member (vsock, "uds_path", i->agent_socket);
  json_object_set_object_member (body, "vsock_override", g_steal_pointer (&vsock));
  json_node_set_object (node, body);
  if (!banger_firecracker_api_put (api, "/snapshot/load", node, error)) {
    g_prefix_error (error, "restoring the VM's state from %s: ", c->incoming_state);
    return FALSE;
  }
  /* The state names the disk of the VM that saved it (for a warm start,
   * the template's frozen disk, which must never be written): the guest
   * writes only to this VM's own. */
  if (i->disk_path != NULL && !set_drive (api, i->disk_path, error)) {
    g_prefix_error (error, "pointing the restored VM's drive at %s: ", i->disk_path);
    return FALSE;
  }
  if (!set_vm_state (api, "Resumed", error)) {
    g_prefix_error (error, "resuming the restored VM: ");
    return FALSE;
  }
  return TRUE;
}

gboolean
banger_vmm_firecracker_refuse_jailed_restore (const BangerVmmConfig *c, GError **error)
{
  if (c->incoming_state == NULL || !*c->incoming_state)
    return FALSE;
  g_set_error (error, BANGER_ERROR, BANGER_ERROR_UNSUPPORTED,
               "restoring a VM's state is not supported for a jailed Firecracker yet "
               "(its files live in the jail)");
  return TRUE;
}
