/* `image pull`, `image promote` and `image cache list|prune`: the commands
 * of issue 4 that turn registries, catalogs and VMs into images. */

#include "config.h"

#include <glib/gi18n.h>
#include <stdio.h>

#include "banger-error.h"
#include "cli.h"
#include "cmd-common.h"
#include "errors.h"
#include "image-pull.h"
#include "job-progress.h"
#include "output-json.h"
#include "output-table.h"
#include "output-time.h"
#include "parse-size.h"
#include "validate.h"

static char *opt_name;
static guint opt_size_mib;
static gboolean opt_insecure;
static gboolean opt_quiet;
static char *opt_progress;
static gboolean opt_json;

static gboolean
parse_size (const char *option_name, const char *value, gpointer data, GError **error)
{
  return banger_parse_size_mib (option_name, value, &opt_size_mib, error);
}

static const GOptionEntry pull_options[] = {
  { "name", 0, 0, G_OPTION_ARG_STRING, &opt_name,
    N_ ("Name of the new image (default: from the repository and tag)"), N_ ("NAME") },
  { "size", 0, 0, G_OPTION_ARG_CALLBACK, parse_size,
    N_ ("Size of the root file system, in MiB or with a unit (default: the content plus room)"),
    N_ ("SIZE") },
  { "insecure", 0, 0, G_OPTION_ARG_NONE, &opt_insecure,
    N_ ("Allow plain HTTP and any certificate for this registry"), NULL },
  { "quiet", 'q', 0, G_OPTION_ARG_NONE, &opt_quiet, N_ ("Show no progress"), NULL },
  { "progress", 0, 0, G_OPTION_ARG_STRING, &opt_progress,
    N_ ("How to show progress: auto, bar, plain or none"), N_ ("MODE") },
  { NULL },
};

static const GOptionEntry promote_options[] = {
  { "quiet", 'q', 0, G_OPTION_ARG_NONE, &opt_quiet, N_ ("Show no progress"), NULL },
  { "progress", 0, 0, G_OPTION_ARG_STRING, &opt_progress,
    N_ ("How to show progress: auto, bar, plain or none"), N_ ("MODE") },
  { NULL },
};

static const GOptionEntry cache_list_options[] = {
  { "json", 0, 0, G_OPTION_ARG_NONE, &opt_json, N_ ("Print JSON"), NULL },
  { NULL },
};

static const GOptionEntry no_options[] = { { NULL } };

static gboolean
image_pull (BangerCli *cli, char **args, GError **error)
{
  BangerPullOptions options = { 0 };
  BangerProgressMode mode;
  g_autofree char *name = NULL;

  if (!banger_cli_check_args (cli, args, 1, 1, error))
    return FALSE;
  if (!banger_job_progress_mode_parse (opt_progress, opt_quiet, &mode, error))
    return FALSE;
  if (opt_name != NULL && !banger_validate_name ("image", opt_name, error))
    return FALSE;
  options.name = opt_name;
  options.size_mib = opt_size_mib;
  options.insecure = opt_insecure;
  if (!banger_cli_pull_image (cli, args[0], &options, mode, &name, error))
    return FALSE;
  printf ("%s\n", name);
  return TRUE;
}

static gboolean
image_promote (BangerCli *cli, char **args, GError **error)
{
  BangerManager *manager;
  g_auto (GVariantBuilder) options = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE_VARDICT);
  g_autofree char *job_path = NULL;
  BangerProgressMode mode;

  if (!banger_cli_check_args (cli, args, 2, 2, error))
    return FALSE;
  if (!banger_job_progress_mode_parse (opt_progress, opt_quiet, &mode, error))
    return FALSE;
  if (!banger_validate_name ("VM", args[0], error)
      || !banger_validate_name ("image", args[1], error))
    return FALSE;
  manager = banger_cli_get_manager (cli, error);
  if (manager == NULL)
    return FALSE;
  if (!banger_manager_call_promote_vm_sync (
          manager, args[0], args[1], g_variant_builder_end (&options), &job_path, NULL, error)) {
    /* NotFound and BadState are about the VM; Exists and Busy about the
     * new image's name. */
    if (g_error_matches (*error, BANGER_ERROR, BANGER_ERROR_EXISTS)
        || g_error_matches (*error, BANGER_ERROR, BANGER_ERROR_BUSY))
      banger_cli_error_annotate_object (error, BANGER_CLI_OBJECT_IMAGE, args[1]);
    else
      banger_cli_error_annotate_vm (error, args[0]);
    return FALSE;
  }
  if (!banger_job_follow (cli->session, job_path, mode, NULL, error)) {
    if (!g_error_matches (*error, BANGER_CLI_ERROR, BANGER_CLI_ERROR_INTERRUPTED))
      g_prefix_error (error, _ ("promoting VM “%s” to image “%s” failed: "), args[0], args[1]);
    return FALSE;
  }
  printf ("%s\n", args[1]);
  return TRUE;
}

/* One blob of Manager.ListCache. */
typedef struct {
  char *digest;
  guint64 size;
  guint64 last_used;
} CacheBlob;

static void
cache_blob_free (CacheBlob *blob)
{
  g_free (blob->digest);
  g_free (blob);
}

static GPtrArray *
list_cache (BangerCli *cli, GError **error)
{
  BangerManager *manager = banger_cli_get_manager (cli, error);
  g_autoptr (GVariant) blobs = NULL;
  g_autoptr (GPtrArray) out = NULL;
  GVariantIter iter;
  const char *digest;
  guint64 size, last_used;

  if (manager == NULL)
    return NULL;
  if (!banger_manager_call_list_cache_sync (manager, &blobs, NULL, error)) {
    banger_cli_error_annotate (error);
    return NULL;
  }
  out = g_ptr_array_new_with_free_func ((GDestroyNotify)cache_blob_free);
  g_variant_iter_init (&iter, blobs);
  while (g_variant_iter_next (&iter, "(&stt)", &digest, &size, &last_used)) {
    CacheBlob *blob = g_new0 (CacheBlob, 1);

    blob->digest = g_strdup (digest);
    blob->size = size;
    blob->last_used = last_used;
    g_ptr_array_add (out, blob);
  }
  return g_steal_pointer (&out);
}

static gboolean
cache_list (BangerCli *cli, char **args, GError **error)
{
  g_autoptr (GPtrArray) blobs = NULL;
  gint64 now = g_get_real_time () / G_USEC_PER_SEC;

  if (!banger_cli_check_args (cli, args, 0, 0, error))
    return FALSE;
  blobs = list_cache (cli, error);
  if (blobs == NULL)
    return FALSE;
  if (opt_json) {
    g_autoptr (JsonBuilder) builder = json_builder_new ();
    g_autoptr (JsonNode) root = NULL;

    json_builder_begin_array (builder);
    for (guint i = 0; i < blobs->len; i++) {
      CacheBlob *blob = g_ptr_array_index (blobs, i);

      json_builder_begin_object (builder);
      json_builder_set_member_name (builder, "digest");
      json_builder_add_string_value (builder, blob->digest);
      json_builder_set_member_name (builder, "size_bytes");
      json_builder_add_int_value (builder, (gint64)blob->size);
      json_builder_set_member_name (builder, "last_used");
      json_builder_add_int_value (builder, (gint64)blob->last_used);
      json_builder_end_object (builder);
    }
    json_builder_end_array (builder);
    root = json_builder_get_root (builder);
    banger_json_print (root, stdout);
    return TRUE;
  }
  {
    g_autoptr (BangerTable) table
        = banger_table_new (_ ("DIGEST"), _ ("SIZE"), _ ("LAST USED"), NULL);

    for (guint i = 0; i < blobs->len; i++) {
      CacheBlob *blob = g_ptr_array_index (blobs, i);
      g_autofree char *size = g_format_size_full (blob->size, G_FORMAT_SIZE_IEC_UNITS);
      g_autofree char *used = banger_format_time_ago (blob->last_used, now);

      banger_table_add_row (table, blob->digest, size, used);
    }
    banger_table_print (table, stdout);
  }
  return TRUE;
}

static gboolean
cache_prune (BangerCli *cli, char **args, GError **error)
{
  BangerManager *manager;
  g_auto (GVariantBuilder) options = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE_VARDICT);
  g_autoptr (GPtrArray) before = NULL;
  g_autoptr (GPtrArray) after = NULL;
  g_autoptr (GHashTable) kept = g_hash_table_new (g_str_hash, g_str_equal);
  g_autofree char *total = NULL;
  guint64 freed;
  guint removed = 0;

  if (!banger_cli_check_args (cli, args, 0, 0, error))
    return FALSE;
  manager = banger_cli_get_manager (cli, error);
  if (manager == NULL)
    return FALSE;
  /* PruneCache says only how many bytes it freed; the listings before and
   * after say which blobs they were (a pull running meanwhile can only add
   * blobs, which never show as removed). */
  before = list_cache (cli, error);
  if (before == NULL)
    return FALSE;
  if (!banger_manager_call_prune_cache_sync (manager, g_variant_builder_end (&options), &freed,
                                             NULL, error)) {
    banger_cli_error_annotate (error);
    return FALSE;
  }
  after = list_cache (cli, error);
  if (after == NULL)
    return FALSE;
  for (guint i = 0; i < after->len; i++)
    g_hash_table_add (kept, ((CacheBlob *)g_ptr_array_index (after, i))->digest);
  for (guint i = 0; i < before->len; i++) {
    CacheBlob *blob = g_ptr_array_index (before, i);
    g_autofree char *size = NULL;

    if (g_hash_table_contains (kept, blob->digest))
      continue;
    size = g_format_size_full (blob->size, G_FORMAT_SIZE_IEC_UNITS);
    /* TRANSLATORS: a blob removed from the cache: its digest and size */
    printf (_ ("removed %s (%s)\n"), blob->digest, size);
    removed++;
  }
  total = g_format_size_full (freed, G_FORMAT_SIZE_IEC_UNITS);
  /* TRANSLATORS: "freed 12.0 MiB (3 blobs)" */
  printf (g_dngettext (GETTEXT_PACKAGE, "freed %s (%u blob)\n", "freed %s (%u blobs)\n", removed),
          total, removed);
  return TRUE;
}

const BangerCommand banger_image_pull_command = {
  "pull",
  N_ ("Pull an image from an OCI registry or the catalog"),
  N_ ("REFERENCE|CATALOG-NAME"),
  pull_options,
  image_pull,
  NULL,
  0,
};

const BangerCommand banger_image_promote_command = {
  "promote",
  N_ ("Make a stopped VM's disk a new image"),
  N_ ("VM NAME"),
  promote_options,
  image_promote,
  NULL,
  BANGER_COMMAND_FLAG_VM_ARGS,
};

static const BangerCommand cache_list_command = {
  "list", N_ ("List the blobs in the download cache"), NULL, cache_list_options, cache_list, NULL,
  0,
};

static const BangerCommand cache_prune_command = {
  "prune", N_ ("Remove cached blobs no image needs"), NULL, no_options, cache_prune, NULL, 0,
};

static const BangerCommand *const cache_subcommands[] = {
  &cache_list_command,
  &cache_prune_command,
  NULL,
};

const BangerCommand banger_image_cache_command = {
  "cache", N_ ("Show and free the download cache"), NULL, NULL, NULL, cache_subcommands, 0,
};
