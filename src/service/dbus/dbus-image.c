/* The org.banger.Image objects and the Manager's image methods
 * (dbus-image.h), over the engine's image list. */
#include "dbus-image.h"

#include "banger-error.h"
#include "boot-assets.h"
#include "dbus-common.h"
#include "image-list.h"
#include "validate.h"

#define IMAGES_PATH "/org/banger/Manager/images"

typedef struct {
  BangerEngine *engine;
  BangerVmList *vms;
  BangerImageList *images;
  GDBusObjectManagerServer *om;
  GHashTable *objects; /* name → BangerObjectSkeleton */
} DbusImages;

static void
dbus_images_free (DbusImages *d)
{
  g_hash_table_unref (d->objects);
  g_object_unref (d->om);
  g_object_unref (d->vms);
  g_free (d);
}

char *
banger_dbus_image_object_path (const char *name)
{
  g_autofree char *escaped = g_dbus_escape_object_path (name);
  return g_strconcat (IMAGES_PATH "/", escaped, NULL);
}

static void
update_used_by (DbusImages *d, BangerObjectSkeleton *object, const char *name)
{
  g_autoptr (BangerImage) iface = banger_object_get_image (BANGER_OBJECT (object));
  g_auto (GStrv) users = banger_image_list_image_used_by (d->images, name);

  const char *const *current = banger_image_get_used_by (iface);

  if (current == NULL || !g_strv_equal ((const char *const *)users, current))
    banger_image_set_used_by (iface, (const char *const *)users);
}

static void
add_image_object (DbusImages *d, const BangerImageRecord *rec)
{
  g_autofree char *path = banger_dbus_image_object_path (rec->name);
  g_autoptr (BangerObjectSkeleton) object = banger_object_skeleton_new (path);
  g_autoptr (BangerImage) iface = banger_image_skeleton_new ();
  g_autoptr (GVariant) config = banger_image_config_to_variant (rec->config);

  banger_object_skeleton_set_image (object, iface);
  banger_image_set_name (iface, rec->name);
  banger_image_set_id (iface, rec->id);
  banger_image_set_source (iface, rec->source);
  banger_image_set_digest (iface, rec->digest);
  banger_image_set_size_bytes (iface, rec->size_bytes);
  banger_image_set_kernel (iface, rec->kernel);
  banger_image_set_created_at (iface, (guint64)MAX (rec->created_at, 0));
  banger_image_set_config (iface, config);
  update_used_by (d, object, rec->name);
  g_hash_table_replace (d->objects, g_strdup (rec->name), g_object_ref (object));
  g_dbus_object_manager_server_export (d->om, G_DBUS_OBJECT_SKELETON (object));
}

static void
image_added_cb (BangerImageList *images, const BangerImageRecord *rec, BangerManager *skeleton)
{
  add_image_object (g_object_get_data (G_OBJECT (skeleton), "banger-dbus-images"), rec);
}

static void
image_removed_cb (BangerImageList *images, const char *name, BangerManager *skeleton)
{
  DbusImages *d = g_object_get_data (G_OBJECT (skeleton), "banger-dbus-images");
  g_autofree char *path = banger_dbus_image_object_path (name);

  g_dbus_object_manager_server_unexport (d->om, path);
  g_hash_table_remove (d->objects, name);
}

/* UsedBy follows the VMs: any VM change may add or drop a user. */
static void
vms_changed_cb (BangerVmList *vms, gpointer arg, BangerManager *skeleton)
{
  DbusImages *d = g_object_get_data (G_OBJECT (skeleton), "banger-dbus-images");
  GHashTableIter iter;
  gpointer name, object;

  g_hash_table_iter_init (&iter, d->objects);
  while (g_hash_table_iter_next (&iter, &name, &object))
    update_used_by (d, object, name);
}

/* ---- Manager methods ---- */

typedef struct {
  char *recipe;
  char *name;
} BuildArgs;

static void
build_args_free (BuildArgs *a)
{
  g_free (a->recipe);
  g_free (a->name);
  g_free (a);
}

static BangerEngineJob *
start_build (BangerEngine *engine, gpointer data, guint uid, GError **error)
{
  BuildArgs *a = data;
  return banger_image_list_build_image (engine->images, a->recipe, a->name, uid, error);
}

static gboolean
handle_build_image (BangerManager *skeleton, GDBusMethodInvocation *invocation, const char *recipe,
                    GVariant *options, gpointer user_data)
{
  static const char *const allowed[] = { "name", "s", NULL };
  DbusImages *d = g_object_get_data (G_OBJECT (skeleton), "banger-dbus-images");
  BuildArgs *a;

  if (!banger_dbus_check_options (invocation, options, allowed))
    return G_DBUS_METHOD_INVOCATION_HANDLED;
  a = g_new0 (BuildArgs, 1);
  a->recipe = g_strdup (recipe);
  g_variant_lookup (options, "name", "s", &a->name);
  banger_dbus_job_start_for_caller (skeleton, invocation, d->engine, start_build,
                                    banger_manager_complete_build_image, a,
                                    (GDestroyNotify)build_args_free);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static void
register_done_cb (GObject *source, GAsyncResult *res, gpointer user_data)
{
  GDBusMethodInvocation *invocation = user_data;
  g_autoptr (GError) error = NULL;
  g_autoptr (BangerImageRecord) rec
      = banger_image_list_register_image_finish (BANGER_IMAGE_LIST (source), res, &error);
  g_autofree char *path = NULL;
  BangerManager *skeleton;

  if (rec == NULL) {
    banger_invocation_return_error (invocation, g_steal_pointer (&error));
    return;
  }
  skeleton = g_object_get_data (G_OBJECT (invocation), "banger-skeleton");
  path = banger_dbus_image_object_path (rec->name);
  banger_manager_complete_register_image (skeleton, invocation, path);
}

static gboolean
handle_register_image (BangerManager *skeleton, GDBusMethodInvocation *invocation, const char *name,
                       const char *rootfs, GVariant *options, gpointer user_data)
{
  static const char *const allowed[] = { "kernel", "s", NULL };
  DbusImages *d = g_object_get_data (G_OBJECT (skeleton), "banger-dbus-images");
  g_autofree char *kernel = NULL;

  if (!banger_dbus_check_options (invocation, options, allowed))
    return G_DBUS_METHOD_INVOCATION_HANDLED;
  g_variant_lookup (options, "kernel", "s", &kernel);
  g_object_set_data_full (G_OBJECT (invocation), "banger-skeleton", g_object_ref (skeleton),
                          g_object_unref);
  banger_image_list_register_image_async (d->images, name, rootfs, kernel, NULL, register_done_cb,
                                          invocation);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
handle_delete_image (BangerManager *skeleton, GDBusMethodInvocation *invocation, const char *name,
                     GVariant *options, gpointer user_data)
{
  DbusImages *d = g_object_get_data (G_OBJECT (skeleton), "banger-dbus-images");
  g_autoptr (GError) error = NULL;
  gboolean force;

  if (!banger_dbus_delete_options (invocation, options, &force))
    return G_DBUS_METHOD_INVOCATION_HANDLED;
  if (!banger_image_list_delete_image (d->images, name, force, &error))
    banger_invocation_return_error (invocation, g_steal_pointer (&error));
  else
    banger_manager_complete_delete_image (skeleton, invocation);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

void
banger_dbus_images_attach (BangerManager *skeleton, GDBusObjectManagerServer *om,
                           BangerEngine *engine)
{
  DbusImages *d = g_new0 (DbusImages, 1);
  g_autoptr (GPtrArray) images = NULL;
  g_autoptr (GError) error = NULL;

  d->engine = engine;
  d->vms = g_object_ref (engine->vms);
  d->images = engine->images;
  d->om = g_object_ref (om);
  d->objects = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_object_unref);
  g_object_set_data_full (G_OBJECT (skeleton), "banger-dbus-images", d,
                          (GDestroyNotify)dbus_images_free);

  images = banger_image_list_list_images (d->images, &error);
  if (images == NULL)
    g_warning ("cannot list images: %s", error->message);
  for (guint i = 0; images != NULL && i < images->len; i++)
    add_image_object (d, g_ptr_array_index (images, i));

  g_signal_connect_object (d->images, "image-added", G_CALLBACK (image_added_cb), skeleton, 0);
  g_signal_connect_object (d->images, "image-removed", G_CALLBACK (image_removed_cb), skeleton, 0);
  g_signal_connect_object (engine->vms, "vm-added", G_CALLBACK (vms_changed_cb), skeleton, 0);
  g_signal_connect_object (engine->vms, "vm-changed", G_CALLBACK (vms_changed_cb), skeleton, 0);
  g_signal_connect_object (engine->vms, "vm-removed", G_CALLBACK (vms_changed_cb), skeleton, 0);
  g_signal_connect (skeleton, "handle-build-image", G_CALLBACK (handle_build_image), NULL);
  g_signal_connect (skeleton, "handle-register-image", G_CALLBACK (handle_register_image), NULL);
  g_signal_connect (skeleton, "handle-delete-image", G_CALLBACK (handle_delete_image), NULL);
}
