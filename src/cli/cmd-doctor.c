#define G_LOG_DOMAIN "banger-cli"

#include "config.h"

#include <glib/gi18n.h>
#include <json-glib/json-glib.h>
#include <stdio.h>

#include "cli.h"
#include "errors.h"
#include "output-json.h"
#include "output-table.h"

static gboolean opt_json;

static const GOptionEntry doctor_options[] = {
  { "json", 0, 0, G_OPTION_ARG_NONE, &opt_json, N_ ("Print JSON"), NULL },
  { NULL },
};

static gboolean
doctor_handler (BangerCli *cli, char **args, GError **error)
{
  BangerManager *manager;
  g_autoptr (GVariant) checks = NULL;
  GVariantIter iter;
  const char *id, *status, *message, *hint;
  guint failed = 0;

  if (!banger_cli_check_args (cli, args, 0, 0, error))
    return FALSE;
  manager = banger_cli_get_manager (cli, error);
  if (manager == NULL)
    return FALSE;
  if (!banger_manager_call_doctor_sync (manager, &checks, NULL, error)) {
    banger_cli_error_annotate (error);
    return FALSE;
  }

  g_variant_iter_init (&iter, checks);
  if (opt_json) {
    g_autoptr (JsonBuilder) builder = json_builder_new ();
    g_autoptr (JsonNode) root = NULL;

    json_builder_begin_array (builder);
    while (g_variant_iter_next (&iter, "(&s&s&s&s)", &id, &status, &message, &hint)) {
      failed += g_str_equal (status, "fail");
      json_builder_begin_object (builder);
      json_builder_set_member_name (builder, "id");
      json_builder_add_string_value (builder, id);
      json_builder_set_member_name (builder, "status");
      json_builder_add_string_value (builder, status);
      json_builder_set_member_name (builder, "message");
      json_builder_add_string_value (builder, message);
      json_builder_set_member_name (builder, "hint");
      json_builder_add_string_value (builder, hint);
      json_builder_end_object (builder);
    }
    json_builder_end_array (builder);
    root = json_builder_get_root (builder);
    banger_json_print (root, stdout);
  } else {
    g_autoptr (BangerTable) table
        = banger_table_new (_ ("CHECK"), _ ("STATUS"), _ ("MESSAGE"), _ ("HINT"), NULL);

    while (g_variant_iter_next (&iter, "(&s&s&s&s)", &id, &status, &message, &hint)) {
      failed += g_str_equal (status, "fail");
      banger_table_add_row (table, id, status, message, hint);
    }
    banger_table_print (table, stdout);
  }

  /* Scripts (and `banger update`) rely on the status: any failed check
   * means this host cannot run VMs as configured. */
  if (failed > 0)
    cli->exit_status = BANGER_EXIT_FAILURE;
  return TRUE;
}

const BangerCommand banger_doctor_command = {
  "doctor", N_ ("Check what this host can do"), NULL, doctor_options, doctor_handler, NULL, 0,
};
