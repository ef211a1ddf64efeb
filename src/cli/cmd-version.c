#include "config.h"

#include <glib/gi18n.h>
#include <json-glib/json-glib.h>
#include <stdio.h>

#include "banger-vcs.h"
#include "cli.h"
#include "output-json.h"

static gboolean opt_json;

static const GOptionEntry version_options[] = {
  { "json", 0, 0, G_OPTION_ARG_NONE, &opt_json, N_ ("Print JSON"), NULL },
  { NULL },
};

static gboolean
version_handler (BangerCli *cli, char **args, GError **error)
{
  g_autoptr (GError) daemon_error = NULL;
  BangerManager *manager;
  const char *daemon_version = NULL;
  const char *daemon_commit = NULL;

  if (!banger_cli_check_args (cli, args, 0, 0, error))
    return FALSE;

  /* The daemon's side is optional: the version of the CLI must print even
   * where bangerd cannot run. */
  manager = banger_cli_get_manager (cli, &daemon_error);
  if (manager != NULL) {
    daemon_version = banger_manager_get_version (manager);
    daemon_commit = banger_manager_get_commit (manager);
  } else {
    g_debug ("bangerd: %s", daemon_error->message);
  }

  if (opt_json) {
    g_autoptr (JsonBuilder) builder = json_builder_new ();
    g_autoptr (JsonNode) root = NULL;

    json_builder_begin_object (builder);
    json_builder_set_member_name (builder, "version");
    json_builder_add_string_value (builder, PACKAGE_VERSION);
    json_builder_set_member_name (builder, "commit");
    json_builder_add_string_value (builder, BANGER_COMMIT);
    json_builder_set_member_name (builder, "build_time");
    json_builder_add_string_value (builder, BANGER_BUILD_TIME);
    json_builder_set_member_name (builder, "daemon");
    if (daemon_version != NULL) {
      json_builder_begin_object (builder);
      json_builder_set_member_name (builder, "version");
      json_builder_add_string_value (builder, daemon_version);
      json_builder_set_member_name (builder, "commit");
      json_builder_add_string_value (builder, daemon_commit != NULL ? daemon_commit : "");
      json_builder_end_object (builder);
    } else {
      json_builder_add_null_value (builder);
    }
    json_builder_end_object (builder);
    root = json_builder_get_root (builder);
    banger_json_print (root, stdout);
    return TRUE;
  }

  printf ("banger %s\n", PACKAGE_VERSION);
  printf ("  %-8s %s\n", _ ("commit:"), BANGER_COMMIT);
  printf ("  %-8s %s\n", _ ("built:"), BANGER_BUILD_TIME);
  if (daemon_version != NULL)
    printf ("bangerd %s (%s %s)\n", daemon_version, _ ("commit"),
            daemon_commit != NULL ? daemon_commit : "?");
  else
    printf ("bangerd: %s\n", _ ("not reachable"));
  return TRUE;
}

const BangerCommand banger_version_command = {
  "version",
  N_ ("Show the versions of banger and bangerd"),
  NULL,
  version_options,
  version_handler,
  NULL,
  0,
};
