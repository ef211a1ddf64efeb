/* What a VM boots: its image and kernel resolved from the image and kernel
 * lists, the defaults made on first use (boot-assets.h). */
#include "boot-assets.h"

#include <config.h>
#include <json-glib/json-glib.h>

#include "banger-error.h"
#include "image-list.h"
#include "kernel-file.h"
#include "image-recipes.h"
#include "kernel-list.h"

#include <unistd.h>

void
banger_boot_assets_free (BangerBootAssets *a)
{
  if (a == NULL)
    return;
  g_free (a->image_name);
  g_free (a->rootfs_path);
  g_clear_pointer (&a->image_config, g_variant_unref);
  g_free (a->kernel_name);
  g_free (a->kernel_path);
  g_free (a->initrd_path);
  g_free (a);
}

static gpointer
find_image_main (BangerImageList *self, gpointer data, GError **error)
{
  return banger_store_image_get_by_name (banger_image_list_get_store (self), data, error);
}

static gpointer
find_kernel_main (BangerKernelList *self, gpointer data, GError **error)
{
  return banger_store_kernel_get_by_name (banger_kernel_list_get_store (self), data, error);
}

static gpointer
build_main (BangerImageList *self, gpointer data, GError **error)
{
  /* uid 0 would be wrong for a job nobody asked for: it is bangerd's own. */
  return banger_image_list_build_image (self, data, data, (guint)getuid (), error);
}

static BangerImageRecord *
resolve_image (BangerImageList *self, const char *name, gboolean is_default, GError **error)
{
  g_autoptr (GError) local = NULL;
  BangerImageRecord *rec
      = banger_image_list_call_main (self, find_image_main, (gpointer)name, &local);
  g_autoptr (BangerEngineJob) job = NULL;
  static GMutex lock;

  if (rec != NULL)
    return rec;
  if (!is_default || !banger_image_recipe_is_known (name)
      || !g_error_matches (local, BANGER_ERROR, BANGER_ERROR_NOT_FOUND)) {
    g_propagate_error (error, g_steal_pointer (&local));
    return NULL;
  }
  /* Built once even if several VMs start at the same time: the others wait
   * for the same job (build_image hands out the running one). */
  g_mutex_lock (&lock);
  g_clear_error (&local);
  rec = banger_image_list_call_main (self, find_image_main, (gpointer)name, &local);
  if (rec == NULL) {
    g_clear_error (&local);
    g_info ("default image %s is missing: building it", name);
    job = banger_image_list_call_main (self, build_main, (gpointer)name, error);
    if (job != NULL && banger_engine_job_wait (job, error))
      rec = banger_image_list_call_main (self, find_image_main, (gpointer)name, error);
  }
  g_mutex_unlock (&lock);
  return rec;
}

static BangerKernelRecord *
resolve_kernel (BangerKernelList *self, const char *name, gboolean is_default,
                GCancellable *cancellable, GError **error)
{
  g_autoptr (GError) local = NULL;
  BangerKernelRecord *rec
      = banger_kernel_list_call_main (self, find_kernel_main, (gpointer)name, &local);
  static GMutex lock;

  if (rec != NULL)
    return rec;
  if (!is_default || !g_error_matches (local, BANGER_ERROR, BANGER_ERROR_NOT_FOUND)) {
    g_propagate_error (error, g_steal_pointer (&local));
    return NULL;
  }
  g_mutex_lock (&lock);
  g_clear_error (&local);
  rec = banger_kernel_list_call_main (self, find_kernel_main, (gpointer)name, &local);
  if (rec == NULL) {
    g_autofree char *path = NULL;
    g_autofree char *release = NULL;
    g_autofree char *source = NULL;
    const char *boot = g_getenv ("BANGER_HOST_BOOT_DIR");
    const char *modules = g_getenv ("BANGER_MODULES_DIR");

    g_clear_error (&local);
    if (banger_kernel_find_host (boot && *boot ? boot : "/boot",
                                 modules && *modules ? modules : "/lib/modules", &path, &release,
                                 error)) {
      g_info ("default kernel %s is missing: importing the host's %s", name, path);
      source = g_strconcat ("host:", path, NULL);
      rec = banger_kernel_list_import (self, path, name, NULL, source, cancellable, error);
    }
  }
  g_mutex_unlock (&lock);
  return rec;
}

/* The a{sv} of "vm run": entrypoint, cmd, env (as), workdir, user (s) from
 * the image's JSON config; banger's own keys are left out. */
GVariant *
banger_image_config_to_variant (const char *json)
{
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_auto (GVariantDict) dict = G_VARIANT_DICT_INIT (NULL);
  JsonObject *obj;
  static const char *const lists[] = { "entrypoint", "cmd", "env" };
  static const char *const strings[] = { "workdir", "user" };

  if (json != NULL && json_parser_load_from_data (parser, json, -1, NULL)
      && json_parser_get_root (parser) != NULL
      && JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser))) {
    obj = json_node_get_object (json_parser_get_root (parser));
    for (guint i = 0; i < G_N_ELEMENTS (lists); i++) {
      JsonArray *arr = json_object_has_member (obj, lists[i])
                           ? json_object_get_array_member (obj, lists[i])
                           : NULL;
      g_autoptr (GStrvBuilder) b = g_strv_builder_new ();
      g_auto (GStrv) v = NULL;
      if (arr == NULL)
        continue;
      for (guint j = 0; j < json_array_get_length (arr); j++) {
        const char *s = json_node_get_string (json_array_get_element (arr, j));
        if (s != NULL)
          g_strv_builder_add (b, s);
      }
      v = g_strv_builder_end (b);
      g_variant_dict_insert_value (&dict, lists[i],
                                   g_variant_new_strv ((const char *const *)v, -1));
    }
    for (guint i = 0; i < G_N_ELEMENTS (strings); i++) {
      const char *s = json_object_get_string_member_with_default (obj, strings[i], NULL);
      if (s != NULL)
        g_variant_dict_insert (&dict, strings[i], "s", s);
    }
  }
  return g_variant_ref_sink (g_variant_dict_end (&dict));
}

BangerBootAssets *
banger_image_list_resolve_boot_assets (BangerImageList *self, const char *image, const char *kernel,
                                       GCancellable *cancellable, GError **error)
{
  BangerConfig *config = banger_image_list_get_config (self);
  const char *default_image = banger_config_get_default_image (config);
  const char *default_kernel = banger_config_get_default_kernel (config);
  const char *image_name = image && *image ? image : default_image;
  const char *kernel_name;
  g_autoptr (BangerImageRecord) img = NULL;
  g_autoptr (BangerKernelRecord) krn = NULL;
  g_autoptr (BangerBootAssets) assets = NULL;

  img = resolve_image (self, image_name, g_strcmp0 (image_name, default_image) == 0, error);
  if (img == NULL)
    return NULL;
  kernel_name = kernel && *kernel ? kernel : (*img->kernel ? img->kernel : default_kernel);
  krn = resolve_kernel (banger_image_list_get_kernels (self), kernel_name,
                        g_strcmp0 (kernel_name, default_kernel) == 0, cancellable, error);
  if (krn == NULL)
    return NULL;

  assets = g_new0 (BangerBootAssets, 1);
  assets->image_name = g_strdup (img->name);
  assets->rootfs_path = banger_image_list_image_rootfs (self, img);
  assets->image_has_sshd = banger_image_record_has_sshd (img);
  assets->image_config = banger_image_config_to_variant (img->config);
  assets->kernel_name = g_strdup (krn->name);
  assets->kernel_path = g_strdup (krn->path);
  assets->initrd_path = g_strdup (krn->initrd_path);
  if (!g_file_test (assets->rootfs_path, G_FILE_TEST_IS_REGULAR)) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_NOT_FOUND,
                 "image “%s” has lost its root filesystem %s", img->name, assets->rootfs_path);
    return NULL;
  }
  if (!g_file_test (assets->kernel_path, G_FILE_TEST_IS_REGULAR)) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_NOT_FOUND, "kernel “%s” has lost its file %s",
                 krn->name, assets->kernel_path);
    return NULL;
  }
  return g_steal_pointer (&assets);
}
