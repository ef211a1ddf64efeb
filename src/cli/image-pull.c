#include "config.h"

#include "image-pull.h"

#include <glib/gi18n.h>

#include "banger-error.h"
#include "errors.h"
#include "job-command.h"
#include "oci-reference.h"

gboolean
banger_cli_pull_image (BangerCli *cli, const char *reference, const BangerPullOptions *options,
                       BangerProgressMode mode, char **image_name, GError **error)
{
  BangerManager *manager;
  g_auto (GVariantBuilder) builder = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE_VARDICT);
  g_autofree char *job_path = NULL;
  g_autofree char *name = NULL;

  if (options->name != NULL)
    g_variant_builder_add (&builder, "{sv}", "name", g_variant_new_string (options->name));
  if (options->size_mib > 0)
    g_variant_builder_add (&builder, "{sv}", "size_mib", g_variant_new_uint32 (options->size_mib));
  if (options->insecure)
    g_variant_builder_add (&builder, "{sv}", "insecure", g_variant_new_boolean (TRUE));
  manager = banger_cli_get_manager (cli, error);
  if (manager == NULL)
    return FALSE;
  if (!banger_manager_call_pull_image_sync (manager, reference, g_variant_builder_end (&builder),
                                            &job_path, NULL, error)) {
    /* "Exists" names the local name itself; anything else is about the
     * reference. */
    gboolean exists = g_error_matches (*error, BANGER_ERROR, BANGER_ERROR_EXISTS);

    if (exists && options->name != NULL)
      banger_cli_error_annotate_object (error, BANGER_CLI_OBJECT_IMAGE, options->name);
    else
      banger_cli_error_annotate (error);
    if (!exists && (*error)->domain != BANGER_CLI_ERROR)
      g_prefix_error (error, _ ("cannot pull “%s”: "), reference);
    return FALSE;
  }
  if (!banger_cli_follow_job (cli, job_path, mode, "org.banger.Image", &name, error,
                              _ ("pulling “%s” failed: "), reference))
    return FALSE;
  if (name == NULL) {
    g_set_error (error, BANGER_CLI_ERROR, BANGER_CLI_ERROR_FAILED,
                 _ ("pulling “%s” succeeded but bangerd named no image"), reference);
    return FALSE;
  }
  *image_name = g_steal_pointer (&name);
  return TRUE;
}

gboolean
banger_cli_looks_like_reference (const char *text)
{
  return strpbrk (text, "/:@") != NULL;
}

char *
banger_cli_find_pulled_image (BangerCli *cli, const char *reference)
{
  g_autoptr (GPtrArray) images = NULL;
  g_autoptr (BangerOciReference) ref = NULL;
  g_autofree char *canonical = NULL;
  g_autofree char *catalog = g_strdup_printf ("catalog:%s", reference);

  /* The daemon's own parser (src/service/oci-reference.c, built into the
   * CLI too), so "debian", "docker.io/library/debian:latest" and the Source
   * bangerd recorded agree exactly. */
  ref = banger_oci_reference_parse (reference, NULL);
  if (ref != NULL)
    canonical = banger_oci_reference_to_string (ref);
  images = banger_cli_list_images (cli, NULL);
  if (images == NULL)
    return NULL;
  for (guint i = 0; i < images->len; i++) {
    BangerImage *image = g_ptr_array_index (images, i);
    const char *source = banger_image_get_source (image);

    if (source == NULL)
      continue;
    if (g_str_equal (source, reference) || g_str_equal (source, catalog)
        || (canonical != NULL && g_str_equal (source, canonical)))
      return g_strdup (banger_image_get_name (image));
  }
  return NULL;
}
