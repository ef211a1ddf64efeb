#include "config.h"

#include "cmd-common.h"

#include <glib/gi18n.h>
#include <json-glib/json-glib.h>
#include <stdio.h>

#include "banger-error.h"
#include "errors.h"
#include "output-json.h"
#include "output-time.h"

void
banger_cli_print_field (const char *label, const char *value)
{
  glong width = g_utf8_strlen (label, -1);

  /* Wide enough for the longest translated label ("Ponto de entrada"), so
   * the values line up in every language we ship. */
  printf ("%s:", label);
  for (glong i = width; i < 16; i++)
    putchar (' ');
  printf (" %s\n", value != NULL && value[0] != '\0' ? value : "-");
}

char *
banger_cli_format_time_both (guint64 t, gint64 now)
{
  g_autofree char *abs = NULL;
  g_autofree char *ago = NULL;

  if (t == 0)
    return g_strdup (_ ("never"));
  abs = banger_format_time_absolute (t);
  ago = banger_format_time_ago (t, now);
  return g_strdup_printf ("%s (%s)", abs, ago);
}

void
banger_cli_print_json (GDBusProxy *proxy)
{
  g_autoptr (JsonNode) node = banger_json_from_proxy (proxy);

  banger_json_print (node, stdout);
}

void
banger_cli_print_json_array (GPtrArray *proxies)
{
  g_autoptr (JsonNode) root = json_node_new (JSON_NODE_ARRAY);
  g_autoptr (JsonArray) array = json_array_new ();

  for (guint i = 0; i < proxies->len; i++)
    json_array_add_element (array, banger_json_from_proxy (g_ptr_array_index (proxies, i)));
  json_node_set_array (root, array);
  banger_json_print (root, stdout);
}

void
banger_cli_print_json_vardicts (GDBusInterfaceInfo *info, GPtrArray *properties)
{
  g_autoptr (JsonNode) root = json_node_new (JSON_NODE_ARRAY);
  g_autoptr (JsonArray) array = json_array_new ();

  for (guint i = 0; i < properties->len; i++)
    json_array_add_element (array,
                            banger_json_from_vardict (info, g_ptr_array_index (properties, i)));
  json_node_set_array (root, array);
  banger_json_print (root, stdout);
}

gboolean
banger_cli_for_each_name (BangerCli *cli, char **args, BangerNameAction action, gpointer user_data,
                          GError **error)
{
  g_autoptr (GError) last = NULL;

  if (!banger_cli_check_args (cli, args, 1, G_MAXUINT, error))
    return FALSE;
  for (guint i = 0; args[i] != NULL; i++) {
    g_autoptr (GError) local = NULL;

    if (action (cli, args[i], user_data, &local)) {
      printf ("%s\n", args[i]);
      continue;
    }
    if (g_error_matches (local, BANGER_CLI_ERROR, BANGER_CLI_ERROR_UNREACHABLE)) {
      g_propagate_error (error, g_steal_pointer (&local));
      return FALSE;
    }
    if (last != NULL)
      fprintf (stderr, "banger: %s\n", last->message);
    g_clear_error (&last);
    last = g_steal_pointer (&local);
  }
  if (last != NULL) {
    g_propagate_error (error, g_steal_pointer (&last));
    return FALSE;
  }
  return TRUE;
}

char *
banger_cli_absolute_file (const char *path, const char *what, GError **error)
{
  g_autofree char *abs = g_canonicalize_filename (path, NULL);

  if (!g_file_test (abs, G_FILE_TEST_EXISTS)) {
    /* TRANSLATORS: first %s is "kernel", "initrd" or "root filesystem" */
    g_set_error (error, BANGER_CLI_ERROR, BANGER_CLI_ERROR_FAILED,
                 _ ("%s file “%s” does not exist"), what, path);
    return NULL;
  }
  if (!g_file_test (abs, G_FILE_TEST_IS_REGULAR)) {
    g_set_error (error, BANGER_CLI_ERROR, BANGER_CLI_ERROR_FAILED,
                 _ ("%s file “%s” is not a regular file"), what, path);
    return NULL;
  }
  return g_steal_pointer (&abs);
}

void
banger_cli_print_list (GPtrArray *proxies, gboolean names, gboolean json,
                       void (*print_table) (GPtrArray *proxies))
{
  if (names) {
    for (guint i = 0; i < proxies->len; i++) {
      g_autoptr (GVariant) name
          = g_dbus_proxy_get_cached_property (g_ptr_array_index (proxies, i), "Name");

      printf ("%s\n", name != NULL ? g_variant_get_string (name, NULL) : "(null)");
    }
  } else if (json) {
    banger_cli_print_json_array (proxies);
  } else {
    print_table (proxies);
  }
}

char *
banger_cli_object_name_at (BangerCli *cli, const char *path, const char *interface)
{
  g_autoptr (GDBusProxy) proxy = NULL;
  g_autoptr (GVariant) name = NULL;

  if (path == NULL || g_str_equal (path, "/"))
    return NULL;
  proxy = g_dbus_proxy_new_sync (cli->session, G_DBUS_PROXY_FLAGS_DO_NOT_AUTO_START, NULL,
                                 "org.banger.Manager", path, interface, NULL, NULL);
  if (proxy == NULL)
    return NULL;
  name = g_dbus_proxy_get_cached_property (proxy, "Name");
  if (name == NULL || !g_variant_is_of_type (name, G_VARIANT_TYPE_STRING))
    return NULL;
  return g_variant_dup_string (name, NULL);
}

static gboolean
delete_one (BangerCli *cli, const char *name, gpointer user_data, GError **error)
{
  const BangerDelete *del = user_data;
  BangerManager *manager = banger_cli_get_manager (cli, error);
  g_auto (GVariantBuilder) options = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE_VARDICT);

  if (manager == NULL)
    return FALSE;
  if (del->force)
    g_variant_builder_add (&options, "{sv}", "force", g_variant_new_boolean (TRUE));
  if (!del->call (manager, name, g_variant_builder_end (&options), NULL, error)) {
    gboolean busy = g_error_matches (*error, BANGER_ERROR, BANGER_ERROR_BUSY);

    banger_cli_error_annotate_object (error, del->object, name);
    if (busy && !del->force) {
      g_autofree char *message = g_strdup ((*error)->message);

      g_clear_error (error);
      /* busy_hint is one of our own translated formats. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
      g_set_error (error, BANGER_ERROR, BANGER_ERROR_BUSY, del->busy_hint, message, name);
#pragma GCC diagnostic pop
    }
    return FALSE;
  }
  return TRUE;
}

gboolean
banger_cli_delete_names (BangerCli *cli, char **args, const BangerDelete *del, GError **error)
{
  return banger_cli_for_each_name (cli, args, delete_one, (gpointer)del, error);
}
