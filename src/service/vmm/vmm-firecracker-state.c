/* The Firecracker driver's saved state (vmm.h: save_state, resume_paused,
 * config->incoming_state), through the snapshot API of the contract
 * (firecracker-v1.16.1.yaml): PATCH /vm Paused, PUT /snapshot/create of a
 * full snapshot (the microVM state and the guest memory, two files), and on
 * a fresh process PUT /snapshot/load (paused), PATCH /drives/rootfs with the
 * VM's own disk, PATCH /vm Resumed. A snapshot names the drive files of the
 * VM that made it and the load opens them, so a warm-start template
 * (save_template) is saved naming its frozen disk in the warm cache, and
 * every restore re-points the drive at the VM's own disk before the guest
 * runs (docs/warm-start.md).
 *
 * A jailed Firecracker sees only its chroot and runs as the user: it writes
 * its snapshot to /run/memory and /run/vmstate in the jail, and the
 * helper's TakeJailState moves them (checked: regular, the user's, one
 * link, bounded) into the state directory; a restore has the helper's
 * LaunchJailed bind-mount them read-only into the new jail as /vmstate and
 * /memory. Every
 * jail has the VM's own disk at /rootfs, so a jailed snapshot names
 * /rootfs, which in a clone's jail is the clone's own disk. */

#include "vmm-firecracker.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <unistd.h>

#include "banger-error.h"
#include "disk-copy.h"
#include "file-copy.h"
#include "firecracker-api.h"

/* A snapshot writes the whole guest memory: more than a configuration call. */
#define STATE_API_TIMEOUT_S (BANGER_VMM_STATE_TIMEOUT_MS / 1000)

/* Where a jailed snapshot is written, chroot-relative (the jail's /run is
 * the VM user's: Firecracker, running as that user, may create files
 * there), and where a restore finds the files LaunchJailed put in. */
#define JAIL_SAVE_STATE  "/run/" BANGER_VMM_STATE_FILE
#define JAIL_SAVE_MEMORY "/run/" BANGER_VMM_MEMORY_FILE
#define JAIL_LOAD_STATE  "/" BANGER_VMM_STATE_FILE
#define JAIL_LOAD_MEMORY "/" BANGER_VMM_MEMORY_FILE
#define JAIL_VSOCK       "/run/vsock.sock"
#define JAIL_DISK        "/rootfs"

/* A jailed VM's API socket in its directory is a symlink into the jail. */
static gboolean
is_jailed (const BangerVmmInstance *i)
{
  return i->control_socket != NULL && g_file_test (i->control_socket, G_FILE_TEST_IS_SYMLINK);
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
  ok = banger_file_reflink (src, dst, NULL) || banger_file_copy_sparse (src, dst, &local);
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

/* The jailed snapshot: written by Firecracker into its jail, then moved
 * into @state_dir by the helper's TakeJailState, which trusts nothing the
 * jail holds. The VM directory is named after the VM's id, which is the
 * jail's. */
static gboolean
create_snapshot_jailed (BangerFirecrackerApi *api, BangerVmmInstance *i, const char *state_dir,
                        GError **error)
{
  g_autofree char *link = g_file_read_link (i->control_socket, error);
  g_autofree char *run = link != NULL ? g_path_get_dirname (link) : NULL;
  g_autofree char *vm_dir = g_path_get_dirname (i->control_socket);
  g_autofree char *vm_id = g_path_get_basename (vm_dir);
  g_autofree char *jail_state = NULL;
  g_autofree char *jail_memory = NULL;
  g_autoptr (BangerHelperClient) helper = NULL;
  g_autoptr (JsonObject) body = json_object_new ();
  g_autoptr (JsonNode) node = json_node_new (JSON_NODE_OBJECT);
  gboolean ok;

  if (link == NULL)
    return FALSE;
  jail_state = g_build_filename (run, BANGER_VMM_STATE_FILE, NULL);
  jail_memory = g_build_filename (run, BANGER_VMM_MEMORY_FILE, NULL);
  /* What an earlier, failed save left (bangerd runs as the jail's user). */
  g_unlink (jail_state);
  g_unlink (jail_memory);
  json_object_set_string_member (body, "snapshot_type", "Full");
  json_object_set_string_member (body, "snapshot_path", JAIL_SAVE_STATE);
  json_object_set_string_member (body, "mem_file_path", JAIL_SAVE_MEMORY);
  json_node_set_object (node, body);
  ok = banger_firecracker_api_put (api, "/snapshot/create", node, error);
  if (ok) {
    helper = i->helper != NULL ? banger_helper_client_connect (i->helper, NULL, error) : NULL;
    if (helper == NULL && i->helper == NULL)
      g_set_error (error, BANGER_ERROR, BANGER_ERROR_UNSUPPORTED,
                   "a jailed VM's state is handed out by the root helper, which is not reachable");
    ok = helper != NULL && banger_helper_client_take_jail_state (helper, vm_id, state_dir, error);
    if (!ok)
      g_prefix_error (error, "taking the saved state out of the jail: ");
  }
  /* Handed out or failed: the jail keeps none of it. */
  g_unlink (jail_state);
  g_unlink (jail_memory);
  return ok;
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
  gboolean jailed = is_jailed (i);

  api = banger_firecracker_api_new (i->control_socket, STATE_API_TIMEOUT_S);
  /* The contract: a snapshot is taken of a paused microVM. */
  if (!set_vm_state (api, "Paused", error))
    return FALSE;
  if (jailed)
    return create_snapshot_jailed (api, i, state_dir, error) || save_failed (api, error);
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

  api = banger_firecracker_api_new (i->control_socket, STATE_API_TIMEOUT_S);
  if (!set_vm_state (api, "Paused", error))
    return FALSE;
  if (!copy_disk (i->disk_path, disk_copy, error))
    return save_failed (api, error);
  if (is_jailed (i)) {
    /* Its drive is /rootfs, which in every jail is that VM's own disk: the
     * snapshot names no file of this VM's, so nothing is re-pointed. */
    if (create_snapshot_jailed (api, i, state_dir, error))
      return TRUE;
    g_unlink (disk_copy);
    return save_failed (api, error);
  }
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

/* The load, with the paths as the Firecracker process sees them (host
 * paths when direct, chroot-relative in a jail). */
static gboolean
load_snapshot (const BangerVmmConfig *c, BangerVmmInstance *i, const char *state,
               const char *memory, const char *vsock_path, const char *disk, GError **error)
{
  g_autoptr (BangerFirecrackerApi) api = NULL;
  g_autoptr (JsonObject) body = json_object_new ();
  g_autoptr (JsonObject) backend = json_object_new ();
  g_autoptr (JsonObject) vsock = json_object_new ();
  g_autoptr (JsonNode) node = json_node_new (JSON_NODE_OBJECT);

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
  json_object_set_string_member (vsock, "uds_path", vsock_path);
  json_object_set_object_member (body, "vsock_override", g_steal_pointer (&vsock));
  json_node_set_object (node, body);
  if (!banger_firecracker_api_put (api, "/snapshot/load", node, error)) {
    g_prefix_error (error, "restoring the VM's state from %s: ", c->incoming_state);
    return FALSE;
  }
  /* The state names the disk of the VM that saved it (for a warm start,
   * the template's frozen disk, which must never be written): the guest
   * writes only to this VM's own. */
  if (disk != NULL && !set_drive (api, disk, error)) {
    g_prefix_error (error, "pointing the restored VM's drive at %s: ", disk);
    return FALSE;
  }
  if (!set_vm_state (api, "Resumed", error)) {
    g_prefix_error (error, "resuming the restored VM: ");
    return FALSE;
  }
  return TRUE;
}

gboolean
banger_vmm_firecracker_load_state (const BangerVmmConfig *c, BangerVmmInstance *i, GError **error)
{
  g_autofree char *state = g_build_filename (c->incoming_state, BANGER_VMM_STATE_FILE, NULL);
  g_autofree char *memory = g_build_filename (c->incoming_state, BANGER_VMM_MEMORY_FILE, NULL);

  if (!g_file_test (memory, G_FILE_TEST_IS_REGULAR)) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_NOT_FOUND, "the saved state in %s has no %s",
                 c->incoming_state, BANGER_VMM_MEMORY_FILE);
    return FALSE;
  }
  return load_snapshot (c, i, state, memory, i->agent_socket, i->disk_path, error);
}

gboolean
banger_vmm_firecracker_load_state_jailed (const BangerVmmConfig *c, BangerVmmInstance *i,
                                          GError **error)
{
  /* LaunchJailed linked the state's files and the VM's own disk in. */
  return load_snapshot (c, i, JAIL_LOAD_STATE, JAIL_LOAD_MEMORY, JAIL_VSOCK, JAIL_DISK, error);
}
