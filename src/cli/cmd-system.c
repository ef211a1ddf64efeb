#define G_LOG_DOMAIN "banger-cli"

#include "config.h"

#include <glib/gi18n.h>
#include <stdio.h>

#include "banger-helper-dbus.h"
#include "cli.h"
#include "errors.h"
#include "polkit-agent.h"

#define HELPER_NAME "org.banger.Helper"
#define HELPER_PATH "/org/banger/Helper"

/* A polkit prompt waits for a person; do not time out under them. */
#define HELPER_TIMEOUT_MS (10 * 60 * 1000)

static const GOptionEntry no_options[] = { { NULL } };

static BangerHelper *
get_helper (GError **error)
{
  BangerHelper *helper;

  helper = banger_helper_proxy_new_for_bus_sync (G_BUS_TYPE_SYSTEM, G_DBUS_PROXY_FLAGS_NONE,
                                                 HELPER_NAME, HELPER_PATH, NULL, error);
  if (helper == NULL) {
    banger_cli_error_unreachable (error, _ ("bangerd-root on the system bus"));
    return NULL;
  }
  g_dbus_proxy_set_default_timeout (G_DBUS_PROXY (helper), HELPER_TIMEOUT_MS);
  return helper;
}

static GVariant *
interactive_options (void)
{
  g_auto (GVariantBuilder) options = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE_VARDICT);

  g_variant_builder_add (&options, "{sv}", "interactive", g_variant_new_boolean (TRUE));
  return g_variant_builder_end (&options);
}

static gboolean
network_up (BangerCli *cli, char **args, GError **error)
{
  g_autoptr (BangerHelper) helper = NULL;
  g_autofree char *address = NULL;
  gpointer agent;
  gboolean ok;

  if (!banger_cli_check_args (cli, args, 0, 0, error))
    return FALSE;
  helper = get_helper (error);
  if (helper == NULL)
    return FALSE;
  agent = banger_polkit_agent_register ();
  ok = banger_helper_call_ensure_network_sync (helper, interactive_options (), &address, NULL,
                                               error);
  banger_polkit_agent_unregister (agent);
  if (!ok) {
    banger_cli_error_annotate_helper (error);
    return FALSE;
  }
  printf (_ ("Network ready: bridge banger0 at %s\n"), address);
  return TRUE;
}

static gboolean
network_down (BangerCli *cli, char **args, GError **error)
{
  g_autoptr (BangerHelper) helper = NULL;
  gpointer agent;
  gboolean ok;

  if (!banger_cli_check_args (cli, args, 0, 0, error))
    return FALSE;
  helper = get_helper (error);
  if (helper == NULL)
    return FALSE;
  agent = banger_polkit_agent_register ();
  ok = banger_helper_call_teardown_network_sync (helper, interactive_options (), NULL, error);
  banger_polkit_agent_unregister (agent);
  if (!ok) {
    banger_cli_error_annotate_helper (error);
    return FALSE;
  }
  printf ("%s\n", _ ("Network removed"));
  return TRUE;
}

static const BangerCommand network_up_command = {
  "up",       N_ ("Create the bridge, forwarding and NAT (asks polkit)"),
  NULL,       no_options,
  network_up, NULL,
  0,
};
static const BangerCommand network_down_command = {
  "down",
  N_ ("Remove the bridge, NAT rules and banger's taps (asks polkit)"),
  NULL,
  no_options,
  network_down,
  NULL,
  0,
};
static const BangerCommand *const network_subcommands[] = {
  &network_up_command,
  &network_down_command,
  NULL,
};
static const BangerCommand network_command = {
  "network", N_ ("Set up or remove the host network for VMs"),
  NULL,      NULL,
  NULL,      network_subcommands,
  0,
};
static const BangerCommand *const system_subcommands[] = {
  &network_command,
  NULL,
};

const BangerCommand banger_system_command = {
  "system", N_ ("Set up the host (through the root helper)"), NULL, NULL, NULL, system_subcommands,
  0,
};
