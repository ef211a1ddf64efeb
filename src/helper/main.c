#define G_LOG_DOMAIN "bangerd-root"

#include "config.h"

#include <glib/gi18n.h>
#include <locale.h>
#include <unistd.h>

#include "helper-daemon.h"
#include "install-release.h"
#include "jail.h"
#include "snapshot.h"
#include "log.h"

static int verbosity = 0;

static gboolean
count_verbose (const char *name, const char *value, gpointer data, GError **error)
{
  verbosity++;
  return TRUE;
}

int
main (int argc, char **argv)
{
  g_autoptr (GOptionContext) context = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (BangerHelperConfig) config = NULL;
  g_autoptr (BangerHelperDaemon) daemon = NULL;
  g_autofree char *config_path = NULL;
  gboolean replace = FALSE;
  gboolean self_check = FALSE;
  gint idle_timeout = 0;
  const GOptionEntry entries[] = {
    { "replace", 'r', 0, G_OPTION_ARG_NONE, &replace, N_ ("Replace a running helper"), NULL },
    { "verbose", 'v', G_OPTION_FLAG_NO_ARG, G_OPTION_ARG_CALLBACK, count_verbose,
      N_ ("More output (-vv for debug)"), NULL },
    { "config", 'c', 0, G_OPTION_ARG_FILENAME, &config_path, N_ ("Configuration file"), "PATH" },
    { "idle-timeout", 0, 0, G_OPTION_ARG_INT, &idle_timeout,
      N_ ("Exit after this many idle seconds (0: never)"), "SECONDS" },
    { "self-check", 0, 0, G_OPTION_ARG_NONE, &self_check,
      N_ ("Check that this helper could serve (config, system bus, polkit), print its version "
          "and exit"),
      NULL },
    { NULL },
  };

  setlocale (LC_ALL, "");
  bindtextdomain (GETTEXT_PACKAGE, LOCALEDIR);

  context = g_option_context_new (NULL);
  g_option_context_set_summary (context, _ ("banger's privileged helper on the system bus"));
  g_option_context_add_main_entries (context, entries, GETTEXT_PACKAGE);
  if (!g_option_context_parse (context, &argc, &argv, &error)) {
    g_printerr ("bangerd-root: %s\n", error->message);
    return 2;
  }
  if (idle_timeout < 0) {
    g_printerr ("bangerd-root: --idle-timeout must not be negative\n");
    return 2;
  }
  banger_log_setup ("bangerd-root", verbosity);

  if (geteuid () != 0)
    g_warning ("not running as root: privileged calls will fail");

  config = banger_helper_config_load (config_path ? config_path : BANGER_SYSCONFDIR "/helper.conf",
                                      &error);
  if (config == NULL) {
    g_printerr ("bangerd-root: %s\n", error->message);
    return 1;
  }
  /* The [jail] and [storage] groups of the same file (jail.h, snapshot.h). */
  if (!banger_jail_config_load (config_path ? config_path : BANGER_SYSCONFDIR "/helper.conf",
                                &error)
      || !banger_snapshot_config_load (config_path ? config_path : BANGER_SYSCONFDIR "/helper.conf",
                                       &error)) {
    g_printerr ("bangerd-root: %s\n", error->message);
    return 1;
  }
  if (self_check) {
    if (!banger_helper_self_check (config, &error)) {
      g_printerr ("bangerd-root: self-check: %s\n", error->message);
      return 1;
    }
    return 0;
  }
  /* The new helper's --self-check after an update reads the same file. */
  banger_install_release_set_config_path (config_path ? config_path
                                                      : BANGER_SYSCONFDIR "/helper.conf");
  daemon
      = banger_helper_daemon_new (g_steal_pointer (&config), (guint)idle_timeout, replace, &error);
  if (daemon == NULL) {
    g_printerr ("bangerd-root: %s\n", error->message);
    return 1;
  }
  return banger_helper_daemon_run (daemon);
}
