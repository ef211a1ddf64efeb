/* `image warm list|prune` and the warm-start lines of `image show`: the
 * snapshots of booted guests that new VMs start from (docs/warm-start.md). */

#include "config.h"

#include <glib/gi18n.h>
#include <stdio.h>

#include "banger-error.h"
#include "cli.h"
#include "cmd-common.h"
#include "errors.h"
#include "output-json.h"
#include "output-table.h"
#include "output-time.h"

static gboolean opt_json;

static const GOptionEntry list_options[] = {
  { "json", 0, 0, G_OPTION_ARG_NONE, &opt_json, N_ ("Print JSON"), NULL },
  { NULL },
};

static const GOptionEntry no_options[] = { { NULL } };

/* Manager.ListWarmSnapshots, or NULL with @error. */
static GVariant *
list_snapshots (BangerCli *cli, GError **error)
{
  BangerManager *manager = banger_cli_get_manager (cli, error);
  GVariant *list = NULL;

  if (manager == NULL)
    return NULL;
  if (!banger_manager_call_list_warm_snapshots_sync (manager, &list, NULL, error)) {
    banger_cli_error_annotate (error);
    return NULL;
  }
  return list;
}

static const char *
dict_str (GVariant *dict, const char *key)
{
  const char *value = NULL;

  g_variant_lookup (dict, key, "&s", &value);
  return value != NULL ? value : "";
}

static guint64
dict_u64 (GVariant *dict, const char *key)
{
  guint64 value = 0;
  guint32 small = 0;

  if (g_variant_lookup (dict, key, "t", &value))
    return value;
  g_variant_lookup (dict, key, "u", &small);
  return small;
}

void
banger_cli_image_print_warm (BangerCli *cli, const char *image)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) list = list_snapshots (cli, &error);
  g_autofree char *text = NULL;
  guint count = 0;
  guint64 bytes = 0;

  /* An older bangerd without the method: nothing to say. */
  if (list == NULL)
    return;
  for (gsize i = 0; i < g_variant_n_children (list); i++) {
    g_autoptr (GVariant) dict = g_variant_get_child_value (list, i);
    if (g_strcmp0 (dict_str (dict, "image"), image) != 0)
      continue;
    count++;
    bytes += dict_u64 (dict, "size_bytes");
  }
  if (count > 0) {
    g_autofree char *size = g_format_size_full (bytes, G_FORMAT_SIZE_IEC_UNITS);
    /* TRANSLATORS: warm-start snapshots of an image: "2 (214.0 MiB)" */
    text = g_strdup_printf (_ ("%u (%s)"), count, size);
  }
  banger_cli_print_field (_ ("Warm snapshots"), count > 0 ? text : _ ("none"));
}

static gboolean
warm_list (BangerCli *cli, char **args, GError **error)
{
  g_autoptr (GVariant) list = NULL;
  gint64 now = g_get_real_time () / G_USEC_PER_SEC;

  if (!banger_cli_check_args (cli, args, 0, 0, error))
    return FALSE;
  list = list_snapshots (cli, error);
  if (list == NULL)
    return FALSE;
  if (opt_json) {
    g_autoptr (JsonNode) root = json_gvariant_serialize (list);
    banger_json_print (root, stdout);
    return TRUE;
  }
  {
    g_autoptr (BangerTable) table = banger_table_new (_ ("KEY"), _ ("IMAGE"), _ ("KERNEL"),
                                                      _ ("SHAPE"), _ ("SIZE"), _ ("CREATED"), NULL);

    for (gsize i = 0; i < g_variant_n_children (list); i++) {
      g_autoptr (GVariant) dict = g_variant_get_child_value (list, i);
      gboolean network = FALSE;
      g_autofree char *key = g_strndup (dict_str (dict, "key"), 12);
      g_autofree char *size = g_format_size_full (dict_u64 (dict, "size_bytes"),
                                                  G_FORMAT_SIZE_IEC_UNITS);
      g_autofree char *created = banger_format_time_ago (dict_u64 (dict, "created"), now);
      g_autofree char *shape = NULL;

      g_variant_lookup (dict, "network", "b", &network);
      /* TRANSLATORS: a snapshot's VM shape: driver, vCPUs, memory, network or not */
      shape = g_strdup_printf (_ ("%s %u vCPU %u MiB%s"), dict_str (dict, "driver"),
                               (guint)dict_u64 (dict, "vcpus"), (guint)dict_u64 (dict, "memory_mib"),
                               network ? _ (" net") : "");
      banger_table_add_row (table, key, dict_str (dict, "image"), dict_str (dict, "kernel"), shape,
                            size, created);
    }
    banger_table_print (table, stdout);
  }
  return TRUE;
}

static gboolean
warm_prune (BangerCli *cli, char **args, GError **error)
{
  BangerManager *manager;
  g_auto (GVariantBuilder) options = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE_VARDICT);
  g_autofree char *total = NULL;
  guint removed = 0;
  guint64 freed = 0;

  if (!banger_cli_check_args (cli, args, 0, 1, error))
    return FALSE;
  manager = banger_cli_get_manager (cli, error);
  if (manager == NULL)
    return FALSE;
  if (args[0] != NULL)
    g_variant_builder_add (&options, "{sv}", "image", g_variant_new_string (args[0]));
  if (!banger_manager_call_prune_warm_snapshots_sync (manager, g_variant_builder_end (&options),
                                                      &removed, &freed, NULL, error)) {
    banger_cli_error_annotate (error);
    return FALSE;
  }
  total = g_format_size_full (freed, G_FORMAT_SIZE_IEC_UNITS);
  /* TRANSLATORS: "freed 214.0 MiB (2 snapshots)" */
  printf (g_dngettext (GETTEXT_PACKAGE, "freed %s (%u snapshot)\n", "freed %s (%u snapshots)\n",
                       removed),
          total, removed);
  return TRUE;
}

static const BangerCommand warm_list_command = {
  "list", N_ ("List the snapshots new VMs start from"), NULL, list_options, warm_list, NULL, 0,
};

static const BangerCommand warm_prune_command = {
  "prune", N_ ("Remove the snapshots (of IMAGE only, if given)"), N_ ("[IMAGE]"), no_options,
  warm_prune, NULL, BANGER_COMMAND_FLAG_IMAGE_ARGS,
};

static const BangerCommand *const warm_subcommands[] = {
  &warm_list_command,
  &warm_prune_command,
  NULL,
};

const BangerCommand banger_image_warm_command = {
  "warm", N_ ("Show and remove the snapshots of booted guests that VMs start from"), NULL, NULL,
  NULL, warm_subcommands, 0,
};
