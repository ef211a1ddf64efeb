#include "dbus-manager.h"

#include <config.h>

#include "banger-dbus.h"
#include "banger-error.h"
#include "banger-vcs.h"
#include "dbus-image.h"
#include "dbus-oci.h"
#include "dbus-warm.h"
#include "dbus-job.h"
#include "dbus-kernel.h"
#include "dbus-doctor.h"
#include "dbus-lifecycle.h"
#include "dbus-vm.h"
#include "helper-watch.h"
#include "dbus-update.h"

struct _BangerDbusManager {
  BangerEngine *root; /* outlives us */
  BangerVmList *engine;
  BangerManager *skeleton;
  GDBusObjectManagerServer *object_manager;
  GHashTable *vms; /* name → BangerObjectSkeleton (owned by the object manager too) */
  BangerHelperWatch *helper_watch;
  gulong engine_handlers[3];
};

static void
add_vm_object (BangerDbusManager *self, const BangerVmRecord *rec)
{
  g_autoptr (BangerObjectSkeleton) object = banger_dbus_vm_new (self->root, rec);

  g_hash_table_replace (self->vms, g_strdup (rec->name), g_object_ref (object));
  /* Emits InterfacesAdded once the server is on a connection. */
  g_dbus_object_manager_server_export (self->object_manager, G_DBUS_OBJECT_SKELETON (object));
}

static void
vm_added_cb (BangerVmList *engine, const BangerVmRecord *rec, BangerDbusManager *self)
{
  add_vm_object (self, rec);
}

static void
vm_changed_cb (BangerVmList *engine, const BangerVmRecord *rec, BangerDbusManager *self)
{
  BangerObjectSkeleton *object = g_hash_table_lookup (self->vms, rec->name);

  if (object != NULL)
    banger_dbus_vm_update (object, rec);
}

static void
vm_removed_cb (BangerVmList *engine, const char *name, BangerDbusManager *self)
{
  g_autofree char *path = banger_dbus_vm_object_path (name);

  g_dbus_object_manager_server_unexport (self->object_manager, path);
  g_hash_table_remove (self->vms, name);
}

static void
helper_changed_cb (gboolean available, gpointer user_data)
{
  BangerDbusManager *self = user_data;

  banger_manager_set_helper_available (self->skeleton, available);
}

static gboolean
handle_create_vm (BangerManager *skeleton, GDBusMethodInvocation *invocation, GVariant *spec,
                  BangerDbusManager *self)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (BangerVmRecord) rec = banger_vm_list_create_vm (self->engine, spec, &error);
  g_autofree char *path = NULL;

  if (rec == NULL) {
    banger_invocation_return_error (invocation, g_steal_pointer (&error));
    return G_DBUS_METHOD_INVOCATION_HANDLED;
  }
  path = banger_dbus_vm_object_path (rec->name);
  banger_manager_complete_create_vm (skeleton, invocation, path);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
handle_find_vm (BangerManager *skeleton, GDBusMethodInvocation *invocation, const char *name,
                BangerDbusManager *self)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (BangerVmRecord) rec = banger_vm_list_find_vm (self->engine, name, &error);
  g_autofree char *path = NULL;

  if (rec == NULL) {
    banger_invocation_return_error (invocation, g_steal_pointer (&error));
    return G_DBUS_METHOD_INVOCATION_HANDLED;
  }
  path = banger_dbus_vm_object_path (rec->name);
  banger_manager_complete_find_vm (skeleton, invocation, path);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
handle_list_vms (BangerManager *skeleton, GDBusMethodInvocation *invocation,
                 BangerDbusManager *self)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) vms = banger_vm_list_list_vms (self->engine, &error);
  g_autoptr (GPtrArray) paths = NULL;

  if (vms == NULL) {
    banger_invocation_return_error (invocation, g_steal_pointer (&error));
    return G_DBUS_METHOD_INVOCATION_HANDLED;
  }
  paths = g_ptr_array_new_with_free_func (g_free);
  for (guint i = 0; i < vms->len; i++) {
    BangerVmRecord *rec = g_ptr_array_index (vms, i);
    g_ptr_array_add (paths, banger_dbus_vm_object_path (rec->name));
  }
  g_ptr_array_add (paths, NULL);
  banger_manager_complete_list_vms (skeleton, invocation, (const char *const *)paths->pdata);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* Oldest first, then by name: ListVMs' order. */
static int
compare_vm_objects (gconstpointer a, gconstpointer b)
{
  BangerVM *va = banger_object_peek_vm (*(BangerObject *const *)a);
  BangerVM *vb = banger_object_peek_vm (*(BangerObject *const *)b);
  guint64 ta = banger_vm_get_created_at (va), tb = banger_vm_get_created_at (vb);

  if (ta != tb)
    return ta < tb ? -1 : 1;
  return g_strcmp0 (banger_vm_get_name (va), banger_vm_get_name (vb));
}

/* Read from the exported objects, so the rows are what their properties
 * say at this moment, and no store query is made. */
static gboolean
handle_list_vm_rows (BangerManager *skeleton, GDBusMethodInvocation *invocation,
                     BangerDbusManager *self)
{
  g_autoptr (GPtrArray) objects = g_ptr_array_sized_new (g_hash_table_size (self->vms));
  g_auto (GVariantBuilder) rows = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE ("a(ossssuuut)"));
  GHashTableIter iter;
  gpointer object;

  g_hash_table_iter_init (&iter, self->vms);
  while (g_hash_table_iter_next (&iter, NULL, &object))
    g_ptr_array_add (objects, object);
  g_ptr_array_sort (objects, compare_vm_objects);
  for (guint i = 0; i < objects->len; i++) {
    BangerObject *object = g_ptr_array_index (objects, i);
    BangerVM *vm = banger_object_peek_vm (object);

    g_variant_builder_add (&rows, "(ossssuuut)",
                           g_dbus_object_get_object_path (G_DBUS_OBJECT (object)),
                           banger_vm_get_name (vm) ? banger_vm_get_name (vm) : "",
                           banger_vm_get_state (vm) ? banger_vm_get_state (vm) : "",
                           banger_vm_get_image (vm) ? banger_vm_get_image (vm) : "",
                           banger_vm_get_ipv4 (vm) ? banger_vm_get_ipv4 (vm) : "",
                           banger_vm_get_vcpus (vm), banger_vm_get_memory_mi_b (vm),
                           banger_vm_get_disk_mi_b (vm), banger_vm_get_created_at (vm));
  }
  banger_manager_complete_list_vmrows (skeleton, invocation, g_variant_builder_end (&rows));
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
handle_prune_vms (BangerManager *skeleton, GDBusMethodInvocation *invocation,
                  BangerDbusManager *self)
{
  g_autoptr (GError) error = NULL;
  g_auto (GStrv) removed = banger_vm_list_prune_vms (self->engine, &error);

  if (removed == NULL) {
    banger_invocation_return_error (invocation, g_steal_pointer (&error));
    return G_DBUS_METHOD_INVOCATION_HANDLED;
  }
  banger_manager_complete_prune_vms (skeleton, invocation, (const char *const *)removed);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

BangerDbusManager *
banger_dbus_manager_new (BangerEngine *engine, GError **error)
{
  g_autoptr (BangerDbusManager) self = g_new0 (BangerDbusManager, 1);
  g_autoptr (GPtrArray) vms = NULL;

  self->root = engine;
  self->engine = g_object_ref (engine->vms);
  self->vms = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_object_unref);
  self->object_manager = g_dbus_object_manager_server_new (BANGER_MANAGER_OBJECT_PATH);

  self->skeleton = banger_manager_skeleton_new ();
  banger_manager_set_version (self->skeleton, PACKAGE_VERSION);
  banger_manager_set_commit (self->skeleton, BANGER_COMMIT);
  banger_manager_set_helper_available (self->skeleton, FALSE);
  banger_manager_set_default_image (self->skeleton, banger_vm_list_get_default_image (engine->vms));
  banger_manager_set_default_kernel (self->skeleton, banger_vm_list_get_default_kernel (engine->vms));
  banger_manager_set_data_dir (self->skeleton, banger_vm_list_get_data_dir (engine->vms));
  g_signal_connect (self->skeleton, "handle-create-vm", G_CALLBACK (handle_create_vm), self);
  g_signal_connect (self->skeleton, "handle-find-vm", G_CALLBACK (handle_find_vm), self);
  g_signal_connect (self->skeleton, "handle-list-vms", G_CALLBACK (handle_list_vms), self);
  g_signal_connect (self->skeleton, "handle-list-vmrows", G_CALLBACK (handle_list_vm_rows), self);
  g_signal_connect (self->skeleton, "handle-prune-vms", G_CALLBACK (handle_prune_vms), self);
  /* Images, kernels and jobs: their objects and Manager methods. */
  banger_dbus_jobs_attach (self->skeleton, self->object_manager, engine);
  banger_dbus_images_attach (self->skeleton, self->object_manager, engine);
  banger_dbus_oci_attach (self->skeleton, engine);
  banger_dbus_warm_attach (self->skeleton, engine);
  banger_dbus_kernels_attach (self->skeleton, self->object_manager, engine);
  banger_dbus_lifecycle_attach (self->skeleton, engine);
  banger_dbus_doctor_attach (self->skeleton, engine);
  banger_dbus_update_attach (self->skeleton, engine);

  /* The VMs recorded by earlier runs, with the Id and CreatedAt they had. */
  vms = banger_vm_list_list_vms (engine->vms, error);
  if (vms == NULL)
    return NULL;
  for (guint i = 0; i < vms->len; i++)
    add_vm_object (self, g_ptr_array_index (vms, i));

  self->engine_handlers[0] = g_signal_connect (engine->vms, "vm-added", G_CALLBACK (vm_added_cb), self);
  self->engine_handlers[1]
      = g_signal_connect (engine->vms, "vm-changed", G_CALLBACK (vm_changed_cb), self);
  self->engine_handlers[2]
      = g_signal_connect (engine->vms, "vm-removed", G_CALLBACK (vm_removed_cb), self);
  return g_steal_pointer (&self);
}

gboolean
banger_dbus_manager_export (BangerDbusManager *self, GDBusConnection *connection, GError **error)
{
  /* The Manager interface and the ObjectManager share one path: the server
   * only exports children of its path, so the Manager skeleton is exported
   * directly, and GDBus merges both into that path's introspection. */
  if (!g_dbus_interface_skeleton_export (G_DBUS_INTERFACE_SKELETON (self->skeleton), connection,
                                         BANGER_MANAGER_OBJECT_PATH, error))
    return FALSE;
  g_dbus_object_manager_server_set_connection (self->object_manager, connection);
  /* Watch the helper only once we are on the bus, so the first change is
   * announced with PropertiesChanged like every later one. */
  if (self->helper_watch == NULL)
    self->helper_watch = banger_helper_watch_new (helper_changed_cb, self);
  return TRUE;
}

void
banger_dbus_manager_free (BangerDbusManager *self)
{
  if (self == NULL)
    return;
  g_clear_pointer (&self->helper_watch, banger_helper_watch_free);
  for (guint i = 0; i < G_N_ELEMENTS (self->engine_handlers); i++)
    g_clear_signal_handler (&self->engine_handlers[i], self->engine);
  if (self->skeleton != NULL
      && g_dbus_interface_skeleton_get_connection (G_DBUS_INTERFACE_SKELETON (self->skeleton))) {
    g_dbus_interface_skeleton_unexport (G_DBUS_INTERFACE_SKELETON (self->skeleton));
  }
  g_clear_object (&self->skeleton);
  if (self->object_manager != NULL)
    g_dbus_object_manager_server_set_connection (self->object_manager, NULL);
  g_clear_object (&self->object_manager);
  g_clear_pointer (&self->vms, g_hash_table_unref);
  g_clear_object (&self->engine);
  g_free (self);
}
