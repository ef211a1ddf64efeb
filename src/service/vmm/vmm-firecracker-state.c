/* The Firecracker driver's saved state (vmm.h: save_state, resume_paused,
 * config->incoming_state), through the snapshot API of the contract
 * (firecracker-v1.16.1.yaml): PATCH /vm Paused, PUT /snapshot/create of a
 * full snapshot (the microVM state and the guest memory, two files), and on
 * a fresh process PUT /snapshot/load with resume_vm. A jailed Firecracker
 * sees only its chroot, so its state would have to be moved in and out of
 * the jail through the helper: not done yet, refused with a clear error. */

#include "vmm-firecracker.h"

#include <errno.h>
#include <glib/gstdio.h>

#include "banger-error.h"
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

gboolean
banger_vmm_firecracker_save_state (BangerVmmInstance *i, const char *state_dir, GError **error)
{
  g_autoptr (BangerFirecrackerApi) api = NULL;
  g_autofree char *state = g_build_filename (state_dir, BANGER_VMM_STATE_FILE, NULL);
  g_autofree char *memory = g_build_filename (state_dir, BANGER_VMM_MEMORY_FILE, NULL);
  g_autofree char *state_tmp = g_strconcat (state, ".tmp", NULL);
  g_autofree char *memory_tmp = g_strconcat (memory, ".tmp", NULL);
  g_autoptr (JsonObject) body = json_object_new ();
  g_autoptr (JsonNode) node = json_node_new (JSON_NODE_OBJECT);
  g_autoptr (GError) local = NULL;

  if (refuse_jailed (i->control_socket, "saving a VM's state", error))
    return FALSE;
  api = banger_firecracker_api_new (i->control_socket, STATE_API_TIMEOUT_S);
  /* The contract: a snapshot is taken of a paused microVM. */
  if (!set_vm_state (api, "Paused", error))
    return FALSE;
  json_object_set_string_member (body, "snapshot_type", "Full");
  json_object_set_string_member (body, "snapshot_path", state_tmp);
  json_object_set_string_member (body, "mem_file_path", memory_tmp);
  json_node_set_object (node, body);
  /* The memory first, the state last: a state file in place means a
   * complete state (banger_vmm_state_complete()). */
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
  {
    g_autoptr (GError) resume_error = NULL;
    if (!set_vm_state (api, "Resumed", &resume_error))
      g_prefix_error (&local, "(and the guest could not be resumed: %s) ", resume_error->message);
  }
  g_propagate_error (error, g_steal_pointer (&local));
  return FALSE;
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
  json_object_set_boolean_member (body, "resume_vm", TRUE);
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
