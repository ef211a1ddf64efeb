#define G_LOG_DOMAIN "bangerd"

#include <config.h>

#include <glib-unix.h>
#include <locale.h>
#include <signal.h>
#include <stdio.h>

#include "banger-vcs.h"
#include "dbus-manager.h"
#include "log.h"
#include "engine.h"
#include "update-key.h"
#include "orphans.h"
#include "paths.h"
#include "reconcile.h"

typedef struct {
  GMainLoop *loop;
  BangerEngine *engine;
  BangerDbusManager *dbus;
  int exit_status;
  gboolean acquired;
  gboolean replace;
  guint owner_id;
} Daemon;

static int verbosity;

static gboolean
verbose_cb (const char *option_name, const char *value, gpointer data, GError **error)
{
  /* -vv arrives as two -v. */
  verbosity++;
  return TRUE;
}

static void
bus_acquired_cb (GDBusConnection *connection, const char *name, gpointer user_data)
{
  Daemon *d = user_data;
  g_autoptr (GError) error = NULL;

  if (!banger_dbus_manager_export (d->dbus, connection, &error)) {
    g_warning ("cannot export %s: %s", BANGER_MANAGER_OBJECT_PATH, error->message);
    d->exit_status = 1;
    g_main_loop_quit (d->loop);
  }
}

static void
name_acquired_cb (GDBusConnection *connection, const char *name, gpointer user_data)
{
  Daemon *d = user_data;

  d->acquired = TRUE;
  g_info ("owns %s", name);
  /* Start-up is over (store opened and checked, VMs reconciled, objects
   * exported): what it left cached or free goes back before bangerd idles. */
  banger_engine_release_memory (d->engine);
}

static void
name_lost_cb (GDBusConnection *connection, const char *name, gpointer user_data)
{
  Daemon *d = user_data;

  if (!d->acquired) {
    g_warning ("cannot own %s on the session bus (another bangerd runs? use --replace)", name);
    d->exit_status = 1;
  } else {
    g_message ("lost %s, exiting", name);
  }
  g_main_loop_quit (d->loop);
}

static gboolean
quit_signal_cb (gpointer user_data)
{
  Daemon *d = user_data;

  g_info ("terminating on signal");
  g_main_loop_quit (d->loop);
  return G_SOURCE_CONTINUE;
}

/* The name is owned only once reconcile has run, so no caller ever sees a
 * VM whose VMM is gone as running, or a live one not yet re-attached. */
static void
reconciled_cb (GObject *source, GAsyncResult *res, gpointer user_data)
{
  Daemon *d = user_data;
  g_autoptr (GError) error = NULL;

  if (!banger_reconcile_finish (res, &error))
    g_warning ("reconcile: %s", error->message);
  d->owner_id = g_bus_own_name (G_BUS_TYPE_SESSION, BANGER_MANAGER_BUS_NAME,
                                G_BUS_NAME_OWNER_FLAGS_ALLOW_REPLACEMENT
                                    | (d->replace ? G_BUS_NAME_OWNER_FLAGS_REPLACE : 0),
                                bus_acquired_cb, name_acquired_cb, name_lost_cb, d, NULL);
}

static int
check_migrations (const char *db_path)
{
  g_autofree char *path = db_path ? g_strdup (db_path) : banger_db_path ();
  g_autoptr (GError) error = NULL;

  if (!banger_store_check_migrations (path, &error)) {
    fprintf (stderr, "bangerd: cannot run on %s: %s\n", path, error->message);
    return 1;
  }
  g_print ("%s: ok for schema version %d\n", path, banger_store_schema_version ());
  return 0;
}

int
main (int argc, char **argv)
{
  gboolean replace = FALSE;
  gboolean version = FALSE;
  gboolean check = FALSE;
  g_autofree char *db_path = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (GOptionContext) context = NULL;
  g_autoptr (BangerEngine) engine = NULL;
  g_autofree char *data_dir = NULL;
  g_autofree char *config_dir = NULL;
  g_autofree char *config_path = NULL;
  Daemon d = { 0 };
  const GOptionEntry entries[]
      = { { "verbose", 'v', G_OPTION_FLAG_NO_ARG, G_OPTION_ARG_CALLBACK, verbose_cb,
            "Show info messages (-vv: debug messages too)", NULL },
          { "replace", 'r', 0, G_OPTION_ARG_NONE, &replace, "Replace a running bangerd", NULL },
          { "version", 0, 0, G_OPTION_ARG_NONE, &version, "Print the version and exit", NULL },
          { "check-migrations", 0, 0, G_OPTION_ARG_NONE, &check,
            "Exit 0 if this bangerd can run on the database, non-zero (with the reason) if not",
            NULL },
          { "db", 0, 0, G_OPTION_ARG_FILENAME, &db_path,
            "Database to use instead of $XDG_DATA_HOME/banger/banger.db", "PATH" },
          { NULL } };

  setlocale (LC_ALL, "");
  /* Command output goes to the caller's descriptors from worker threads
   * (agent-client.c); a caller that closed its end (`vm exec … | head`)
   * must give those writes EPIPE, not end bangerd and every VM session.
   * GSocket's class init does the same, but only once a socket exists. */
  signal (SIGPIPE, SIG_IGN);
  context = g_option_context_new ("— banger's VM manager on the session bus");
  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error)) {
    fprintf (stderr, "bangerd: %s\n", error->message);
    return 2;
  }
  if (version) {
    g_print ("bangerd %s (%s)\n", PACKAGE_VERSION, BANGER_COMMIT);
    return 0;
  }
  banger_log_setup ("bangerd", verbosity);
  if (check)
    return check_migrations (db_path);

  data_dir = banger_data_dir ();
  if (db_path == NULL)
    db_path = banger_db_path ();
  config_dir = banger_config_dir ();
  config_path = g_build_filename (config_dir, "config", NULL);

  engine = banger_engine_new (data_dir, db_path, config_path, &error);
  if (engine == NULL) {
    g_printerr ("bangerd: %s\n", error->message);
    return 1;
  }
  banger_orphans_remove (engine->vms); /* dirs of pulls/builds a killed bangerd left */
  banger_engine_set_release (engine, banger_release_pubkey_pem, banger_release_manifest_url ());
  banger_engine_start_services (engine);
  d.dbus = banger_dbus_manager_new (engine, &error);
  if (d.dbus == NULL) {
    g_printerr ("bangerd: %s\n", error->message);
    return 1;
  }

  d.loop = g_main_loop_new (NULL, FALSE);
  d.engine = engine;
  g_unix_signal_add (SIGTERM, quit_signal_cb, &d);
  g_unix_signal_add (SIGINT, quit_signal_cb, &d);
  d.replace = replace;
  banger_reconcile_async (engine->vms, engine->runtime, reconciled_cb, &d);
  g_main_loop_run (d.loop);

  if (d.owner_id != 0)
    g_bus_unown_name (d.owner_id);
  g_clear_pointer (&d.dbus, banger_dbus_manager_free);
  g_main_loop_unref (d.loop);
  return d.exit_status;
}
