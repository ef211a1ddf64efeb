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
  const char *id, *status, *message, *hint, *message_;
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

  /* The one version only the CLI knows: its own, against bangerd's (the
   * daemon's rows compare bangerd, bangerd-root and install.toml). */
  {
    g_autoptr (GVariant) reply = g_dbus_connection_call_sync (
        g_dbus_proxy_get_connection (G_DBUS_PROXY (manager)), "org.banger.Manager",
        "/org/banger/Manager", "org.freedesktop.DBus.Properties", "Get",
        g_variant_new ("(ss)", "org.banger.Manager", "Version"), G_VARIANT_TYPE ("(v)"),
        G_DBUS_CALL_FLAGS_NONE, 10000, NULL, NULL);
    g_autoptr (GVariant) value = NULL;
    const char *daemon = NULL;
    GVariantBuilder b;
    g_autofree char *message = NULL;
    gboolean same;

    if (reply != NULL) {
      g_variant_get (reply, "(v)", &value);
      if (g_variant_is_of_type (value, G_VARIANT_TYPE_STRING))
        daemon = g_variant_get_string (value, NULL);
    }
    same = g_strcmp0 (daemon, PACKAGE_VERSION) == 0;

    g_variant_builder_init (&b, G_VARIANT_TYPE ("a(ssss)"));
    if (same)
      message = g_strdup_printf (_ ("banger %s, the same as bangerd"), PACKAGE_VERSION);
    else
      message = g_strdup_printf (_ ("banger %s, but bangerd is %s"), PACKAGE_VERSION,
                                 daemon != NULL ? daemon : "?");
    g_variant_builder_add (&b, "(ssss)", "cli-version", same ? "ok" : "warn", message,
                           same ? ""
                                : _ ("restart bangerd so the installed one runs (`systemctl "
                                     "--user restart bangerd`), or install one release of both"));
    g_variant_iter_init (&iter, checks);
    while (g_variant_iter_next (&iter, "(&s&s&s&s)", &id, &status, &message_, &hint))
      g_variant_builder_add (&b, "(ssss)", id, status, message_, hint);
    g_clear_pointer (&checks, g_variant_unref);
    checks = g_variant_ref_sink (g_variant_builder_end (&b));
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
