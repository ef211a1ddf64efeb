#include "vm-list.h"

#include <config.h>

#include "banger-error.h"
#include "image-list.h"
#include "vm-runtime.h"
#include "paths.h"
#include "validate.h"

struct _BangerVmList {
  GObject parent_instance;
  BangerConfig *config;
  BangerStore *store;       /* the engine's, which outlives us */
  BangerImageList *images;  /* a VM's image and kernel must exist */
};

G_DEFINE_TYPE (BangerVmList, banger_vm_list, G_TYPE_OBJECT)

enum { SIGNAL_VM_ADDED, SIGNAL_VM_CHANGED, SIGNAL_VM_REMOVED, SIGNAL_LAST };
static guint signals[SIGNAL_LAST];

static void
banger_vm_list_finalize (GObject *object)
{
  BangerVmList *self = BANGER_VM_LIST (object);

  g_clear_pointer (&self->config, banger_config_unref);
  g_clear_object (&self->images);
  G_OBJECT_CLASS (banger_vm_list_parent_class)->finalize (object);
}

static void
banger_vm_list_class_init (BangerVmListClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->finalize = banger_vm_list_finalize;
  /* Records are passed as pointers: they belong to the emitter and are only
   * valid during the emission. */
  signals[SIGNAL_VM_ADDED] = g_signal_new ("vm-added", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                                           0, NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_POINTER);
  signals[SIGNAL_VM_CHANGED]
      = g_signal_new ("vm-changed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
                      NULL, G_TYPE_NONE, 1, G_TYPE_POINTER);
  signals[SIGNAL_VM_REMOVED]
      = g_signal_new ("vm-removed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
                      NULL, G_TYPE_NONE, 1, G_TYPE_STRING);
}

static void
banger_vm_list_init (BangerVmList *self)
{
}

BangerVmList *
banger_vm_list_new (BangerConfig *config, BangerStore *store, BangerImageList *images)
{
  BangerVmList *self = g_object_new (BANGER_TYPE_VM_LIST, NULL);

  self->config = banger_config_ref (config);
  self->store = store;
  self->images = g_object_ref (images);
  return self;
}

const char *
banger_vm_list_get_data_dir (BangerVmList *self)
{
  return banger_config_get_data_dir (self->config);
}

const char *
banger_vm_list_get_default_image (BangerVmList *self)
{
  return banger_config_get_default_image (self->config);
}

const char *
banger_vm_list_get_default_kernel (BangerVmList *self)
{
  return banger_config_get_default_kernel (self->config);
}

gboolean
banger_vm_state_is_active (const char *state)
{
  return g_strcmp0 (state, "starting") == 0 || g_strcmp0 (state, "running") == 0
         || g_strcmp0 (state, "stopping") == 0 || g_strcmp0 (state, "suspending") == 0
         || g_strcmp0 (state, "resuming") == 0;
}

char *
banger_vm_mac_from_id (const char *id)
{
  guint8 b[4] = { 0 };

  for (guint i = 0; i < G_N_ELEMENTS (b) && id != NULL && id[2 * i] && id[2 * i + 1]; i++)
    b[i] = (g_ascii_xdigit_value (id[2 * i]) << 4) | g_ascii_xdigit_value (id[2 * i + 1]);
  return g_strdup_printf ("52:54:%02x:%02x:%02x:%02x", b[0], b[1], b[2], b[3]);
}

BangerStore *
banger_vm_list_get_store (BangerVmList *self)
{
  return self->store;
}

gboolean
banger_vm_list_update_vm (BangerVmList *self, const BangerVmRecord *rec, GError **error)
{
  g_autoptr (BangerVmRecord) stored = NULL;

  if (!banger_store_vm_update (self->store, rec, error))
    return FALSE;
  /* Re-read so the signal carries what the store holds (the lease is the
   * store's, not the caller's copy). */
  stored = banger_store_vm_get_by_id (self->store, rec->id, error);
  if (stored == NULL)
    return FALSE;
  g_signal_emit (self, signals[SIGNAL_VM_CHANGED], 0, stored);
  return TRUE;
}

GPtrArray *
banger_vm_list_list_vms (BangerVmList *self, GError **error)
{
  return banger_store_vm_list (self->store, error);
}

BangerVmRecord *
banger_vm_list_find_vm (BangerVmList *self, const char *name, GError **error)
{
  if (!banger_validate_name ("VM", name, error))
    return NULL;
  return banger_store_vm_get_by_name (self->store, name, error);
}

BangerVmRecord *
banger_vm_list_create_vm (BangerVmList *self, GVariant *spec_variant, GError **error)
{
  g_autoptr (BangerVmSpec) spec = banger_vm_spec_from_variant (spec_variant, error);
  g_autoptr (BangerVmRecord) rec = NULL;
  g_autoptr (BangerVmRecord) existing = NULL;
  g_autoptr (GError) lookup_error = NULL;

  if (spec == NULL)
    return NULL;

  /* Checked before the insert so the error names the VM; the store's unique
   * index still guards against a race. */
  existing = banger_store_vm_get_by_name (self->store, spec->name, &lookup_error);
  if (existing != NULL) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_EXISTS, "a VM called “%s” already exists",
                 spec->name);
    return NULL;
  }
  if (!g_error_matches (lookup_error, BANGER_ERROR, BANGER_ERROR_NOT_FOUND)) {
    g_propagate_error (error, g_steal_pointer (&lookup_error));
    return NULL;
  }

  rec = banger_vm_record_new ();
  g_free (rec->id);
  rec->id = banger_vm_id_new ();
  g_free (rec->name);
  rec->name = g_strdup (spec->name);
  g_free (rec->state);
  rec->state = g_strdup ("created");
  /* Images and kernels are not registered objects yet: the names are
   * recorded as given and resolved when the VM first starts. */
  g_free (rec->image);
  rec->image = g_strdup (spec->image ? spec->image : banger_config_get_default_image (self->config));
  g_free (rec->kernel);
  rec->kernel = g_strdup (spec->kernel ? spec->kernel : banger_config_get_default_kernel (self->config));
  /* Unknown names fail now rather than at the first start; the defaults
   * pass, they are made on first use (boot-assets.c). */
  if (!banger_image_list_check_vm_assets (self->images, rec->image, rec->kernel, error))
    return NULL;
  /* An empty driver means "choose at start" (qemu where Firecracker is absent). */
  g_free (rec->driver);
  rec->driver = g_strdup (spec->driver ? spec->driver : "");
  rec->vcpus = spec->vcpus;
  rec->memory_mib = spec->memory_mib;
  rec->disk_mib = spec->disk_mib;
  g_free (rec->mac);
  rec->mac = banger_vm_mac_from_id (rec->id);
  rec->created_at = g_get_real_time () / G_USEC_PER_SEC;

  if (!banger_store_vm_insert (self->store, rec, error))
    return NULL;
  g_info ("created VM %s (id %s, image %s, kernel %s, %u vCPUs, %u MiB)", rec->name, rec->id,
          rec->image, rec->kernel, rec->vcpus, rec->memory_mib);
  g_signal_emit (self, signals[SIGNAL_VM_ADDED], 0, rec);
  return g_steal_pointer (&rec);
}

static gboolean
remove_record (BangerVmList *self, const BangerVmRecord *rec, GError **error)
{
  g_autofree char *name = g_strdup (rec->name);

  if (!banger_store_vm_delete (self->store, rec->id, error))
    return FALSE;
  /* Its directory (overlay disk, console log, sockets) and its pinned host
   * key go with it; the lease went with the record. */
  banger_vm_files_remove (banger_config_get_data_dir (self->config), rec->id);
  g_info ("deleted VM %s (id %s)", name, rec->id);
  g_signal_emit (self, signals[SIGNAL_VM_REMOVED], 0, name);
  return TRUE;
}

gboolean
banger_vm_list_delete_vm (BangerVmList *self, const char *name, GError **error)
{
  g_autoptr (BangerVmRecord) rec = banger_vm_list_find_vm (self, name, error);

  if (rec == NULL)
    return FALSE;
  /* A forced Delete kills the VMM first (the runtime's delete, vm-teardown.c);
   * the record alone must never go while a VMM may run: its tap would be
   * orphaned. */
  if (banger_vm_state_is_active (rec->state)) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_BAD_STATE,
                 "VM “%s” is %s; stop it first or delete it with “force”", rec->name, rec->state);
    return FALSE;
  }
  return remove_record (self, rec, error);
}

GStrv
banger_vm_list_prune_vms (BangerVmList *self, GError **error)
{
  g_autoptr (GPtrArray) vms = banger_store_vm_list (self->store, error);
  g_autoptr (GStrvBuilder) removed = g_strv_builder_new ();

  if (vms == NULL)
    return NULL;
  for (guint i = 0; i < vms->len; i++) {
    BangerVmRecord *rec = g_ptr_array_index (vms, i);

    /* A suspended VM is kept: its saved state is work in progress, not
     * a leftover (docs/suspend.md). */
    if (banger_vm_state_is_active (rec->state) || g_str_equal (rec->state, "suspended"))
      continue;
    if (!remove_record (self, rec, error))
      return NULL;
    g_strv_builder_add (removed, rec->name);
  }
  return g_strv_builder_end (removed);
}
