#include "config.h"

#include <glib/gi18n.h>
#include <json-glib/json-glib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "banger-error.h"
#include "banger-helper-dbus.h"
#include "cli.h"
#include "errors.h"
#include "output-json.h"
#include "polkit-agent.h"
#include "system-install.h"
#include "system-status.h"
#include "system-uninstall.h"
#include "system-user.h"

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

static gboolean opt_network_down_force;

static const GOptionEntry network_down_options[] = {
  { "force", 'f', 0, G_OPTION_ARG_NONE, &opt_network_down_force,
    N_ ("Take the network down even while VMs run (they lose their network)"), NULL },
  { NULL },
};

/* Banger taps on this host: for root, who takes everyone's down, any
 * owner's; otherwise @uid's. A tap lives as long as its VM runs or is
 * suspended. */
static guint
count_taps (uid_t uid, gboolean any_owner)
{
  g_autoptr (GDir) dir = g_dir_open ("/sys/class/net", 0, NULL);
  const char *name;
  guint n = 0;

  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL) {
    g_autofree char *path = NULL;
    g_autofree char *owner = NULL;

    if (!g_str_has_prefix (name, "bg") || strlen (name) != 14
        || strspn (name + 2, "0123456789abcdef") != 12)
      continue;
    path = g_build_filename ("/sys/class/net", name, "owner", NULL);
    if (!g_file_get_contents (path, &owner, NULL, NULL))
      continue;
    if (any_owner || g_ascii_strtoll (g_strstrip (owner), NULL, 10) == (gint64)uid)
      n++;
  }
  return n;
}

/* TeardownNetwork deletes the caller's taps (everyone's for root), and a
 * running VM without its tap is cut off for good (a restart is the only
 * way back). So refuse unless --force, naming what would be cut off:
 * bangerd's VMs that are running (or on their way up or down), or the
 * count of taps when there are more of them (root; bangerd not answering). */
static gboolean
check_no_vm_runs (BangerCli *cli, GError **error)
{
  g_autoptr (GPtrArray) vms = NULL;
  g_autoptr (GError) local = NULL;
  g_autoptr (GString) names = g_string_new (NULL);
  guint n = 0, kept = 0, taps;

  vms = banger_cli_list_vms (cli, &local);
  if (vms == NULL)
    g_debug ("cannot list VMs (%s); counting taps only", local->message);
  for (guint i = 0; vms != NULL && i < vms->len; i++) {
    BangerVM *vm = vms->pdata[i];
    const char *state = banger_vm_get_state (vm);

    /* Every state with a VMM (a suspended VM has none: it survives). */
    if (banger_cli_vm_state_is_running (state)) {
      g_string_append_printf (names, "%s%s", names->len ? ", " : "", banger_vm_get_name (vm));
      n++;
    } else if (g_strcmp0 (state, "suspended") == 0) {
      /* Its tap is on the bridge, but nothing uses it: the resume makes
       * the network and the tap again. */
      kept++;
    }
  }
  /* The taps cover what bangerd cannot name: root's call takes every
   * user's, and a bangerd that does not answer still leaves VMs running. */
  taps = count_taps (geteuid (), geteuid () == 0);
  if (taps > n + kept) {
    n = taps - kept;
    g_string_truncate (names, 0);
  }
  if (n == 0)
    return TRUE;
  if (names->len > 0)
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_BUSY,
                 ngettext ("%u VM is running (%s): stop it first (banger vm stop), or pass "
                           "--force to take the network down anyway (it loses its network)",
                           "%u VMs are running (%s): stop them first (banger vm stop), or "
                           "pass --force to take the network down anyway (they lose their "
                           "network)",
                           n),
                 n, names->str);
  else
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_BUSY,
                 ngettext ("%u VM is running (its tap is on the bridge): stop it first, or pass "
                           "--force to take the network down anyway (it loses its network)",
                           "%u VMs are running (their taps are on the bridge): stop them first, "
                           "or pass --force to take the network down anyway (they lose their "
                           "network)",
                           n),
                 n);
  return FALSE;
}

static gboolean
network_down (BangerCli *cli, char **args, GError **error)
{
  g_autoptr (BangerHelper) helper = NULL;
  gpointer agent;
  gboolean ok;

  if (!banger_cli_check_args (cli, args, 0, 0, error))
    return FALSE;
  if (!opt_network_down_force && !check_no_vm_runs (cli, error))
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
  N_ ("Remove the bridge, NAT rules and banger's taps; refused while VMs run unless --force "
      "(asks polkit)"),
  NULL,
  network_down_options,
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
/* ---- system install --------------------------------------------------- */

static char *opt_install_root;
static gboolean opt_install_dry_run;
static gboolean opt_install_json;
static char *opt_install_user;

static const GOptionEntry install_options[] = {
  { "root", 0, 0, G_OPTION_ARG_FILENAME, &opt_install_root,
    N_ ("Install under DIR (like DESTDIR); no daemon is reloaded"), N_ ("DIR") },
  { "dry-run", 'n', 0, G_OPTION_ARG_NONE, &opt_install_dry_run,
    N_ ("Print what would change, change nothing"), NULL },
  { "json", 0, 0, G_OPTION_ARG_NONE, &opt_install_json, N_ ("Print JSON"), NULL },
  { "user", 'u', 0, G_OPTION_ARG_STRING, &opt_install_user,
    N_ ("Set banger up for this user (default: the user who ran sudo)"), N_ ("NAME") },
  { NULL },
};

static void
print_install_json (const BangerSystemInstall *install)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  g_autoptr (JsonNode) root = NULL;

  json_builder_begin_object (b);
  banger_json_add_string (b, "source", install->data_dir);
  banger_json_add_string (b, "root", install->root);
  json_builder_set_member_name (b, "dry_run");
  json_builder_add_boolean_value (b, install->dry_run);
  json_builder_set_member_name (b, "files");
  json_builder_begin_array (b);
  for (guint i = 0; i < install->files->len; i++) {
    const BangerSystemFile *f = g_ptr_array_index (install->files, i);
    g_autofree char *mode = g_strdup_printf ("%04o", f->mode);

    json_builder_begin_object (b);
    banger_json_add_string (b, "target", f->target);
    banger_json_add_string (b, "path", f->path);
    banger_json_add_string (b, "source", f->source);
    banger_json_add_string (b, "mode", mode);
    banger_json_add_string (b, "status", banger_system_file_status_to_string (f->status));
    banger_json_add_string (b, "message", f->message);
    json_builder_end_object (b);
  }
  json_builder_end_array (b);
  json_builder_set_member_name (b, "steps");
  json_builder_begin_array (b);
  for (guint i = 0; i < install->steps->len; i++) {
    const BangerSystemStep *s = g_ptr_array_index (install->steps, i);

    json_builder_begin_object (b);
    banger_json_add_string (b, "name", s->name);
    banger_json_add_string (b, "status", s->status);
    banger_json_add_string (b, "message", s->message);
    json_builder_end_object (b);
  }
  json_builder_end_array (b);
  json_builder_end_object (b);
  root = json_builder_get_root (b);
  banger_json_print (root, stdout);
}

static const char *
file_status_words (BangerSystemFileStatus status, gboolean dry_run)
{
  switch (status) {
  case BANGER_SYSTEM_FILE_INSTALLED:
    return dry_run ? _ ("would install") : _ ("installed");
  case BANGER_SYSTEM_FILE_UPDATED:
    return dry_run ? _ ("would update") : _ ("updated");
  case BANGER_SYSTEM_FILE_UNCHANGED:
    return _ ("unchanged");
  case BANGER_SYSTEM_FILE_SKIPPED:
  default:
    return _ ("skipped");
  }
}

static const char *
step_status_words (const char *status)
{
  static const struct {
    const char *word;
    const char *text;
  } words[] = {
    { "created", N_ ("created") },
    { "exists", N_ ("exists") },
    { "would-create", N_ ("would create") },
    { "reloaded", N_ ("reloaded") },
    { "would-reload", N_ ("would reload") },
    { "not-needed", N_ ("not needed: nothing it reads changed") },
    { "skipped", N_ ("skipped") },
    { "failed", N_ ("failed") },
    { "added", N_ ("added") },
    { "would-add", N_ ("would add") },
    { "enabled", N_ ("enabled") },
    { "would-enable", N_ ("would enable") },
  };

  for (guint i = 0; i < G_N_ELEMENTS (words); i++)
    if (g_str_equal (words[i].word, status))
      return _ (words[i].text);
  return status;
}

static void
print_install_text (const BangerSystemInstall *install)
{
  int width = 0;

  for (guint i = 0; i < install->files->len; i++) {
    const BangerSystemFile *f = g_ptr_array_index (install->files, i);
    width = MAX (width, (int)g_utf8_strlen (file_status_words (f->status, install->dry_run), -1));
  }
  for (guint i = 0; i < install->files->len; i++) {
    const BangerSystemFile *f = g_ptr_array_index (install->files, i);
    const char *words = file_status_words (f->status, install->dry_run);
    /* printf pads bytes, not characters: pad translated words by hand. */
    int pad = width - (int)g_utf8_strlen (words, -1);

    printf ("%s%*s  %s", words, pad, "", f->path);
    if (f->message != NULL)
      printf (" (%s)", f->message);
    printf ("\n");
  }
  for (guint i = 0; i < install->steps->len; i++) {
    const BangerSystemStep *s = g_ptr_array_index (install->steps, i);

    if (g_str_equal (s->name, "group"))
      printf (_ ("group banger: %s"), step_status_words (s->status));
    else if (g_str_equal (s->name, "member"))
      printf (_ ("member of group banger: %s"), step_status_words (s->status));
    else if (g_str_equal (s->name, "linger"))
      printf (_ ("linger (VMs keep running after logout): %s"), step_status_words (s->status));
    else
      printf ("%s: %s", s->name, step_status_words (s->status));
    if (s->message != NULL)
      printf (": %s", s->message);
    printf ("\n");
  }
  if (install->dry_run || install->root != NULL)
    return;
  printf ("\n");
  if (install->user == NULL)
    printf ("%s\n", _ ("Next: add each user of banger with `sudo banger system install --user "
                       "NAME` (group banger and linger)."));
  else if (!install->failed)
    printf (_ ("Next: %s can run `banger vm run -- uname -a` now (polkit reads group banger from "
               "the group database; a new login is only needed for the group to show in `id`). "
               "With linger, VMs keep running after logout.\n"),
            install->user);
  else
    printf ("%s\n", _ ("Some steps failed (above); fix them and run the install again."));
}

static gboolean
system_install (BangerCli *cli, char **args, GError **error)
{
  g_autoptr (BangerSystemInstall) install = NULL;
  g_autoptr (BangerSystemUser) user = NULL;
  g_autofree char *root = g_steal_pointer (&opt_install_root);
  g_autofree char *user_name = g_steal_pointer (&opt_install_user);

  if (!banger_cli_check_args (cli, args, 0, 0, error))
    return FALSE;
  if (root != NULL && *root == '\0')
    return banger_cli_usage_error (cli, error, _ ("--root needs a directory"));
  /* Checked before anything is read, so the message is about root and
   * not about the first file that could not be written. A dry run only
   * reads, which anyone may. */
  if (root == NULL && !opt_install_dry_run && geteuid () != 0) {
    g_set_error_literal (error, BANGER_CLI_ERROR, BANGER_CLI_ERROR_FAILED,
                         _ ("installing banger's system files needs root (they go to /etc and "
                            "/usr/share): run it with sudo, or use --root DIR"));
    return FALSE;
  }

  /* Under --root the users are the target's, not this host's. */
  if (root == NULL) {
    g_autoptr (GError) local = NULL;

    user = banger_system_user_for_command (user_name, &local);
    if (user == NULL && local != NULL) {
      g_propagate_error (error, g_steal_pointer (&local));
      return FALSE;
    }
  } else if (user_name != NULL)
    return banger_cli_usage_error (cli, error, _ ("--user cannot be used with --root"));

  install = banger_system_install_run (banger_system_data_dir (), root, opt_install_dry_run, user,
                                       error);
  if (install == NULL)
    return FALSE;
  {
    g_autoptr (GError) local = NULL;

    if (!banger_system_install_record (install, &local))
      g_printerr (_ ("warning: cannot record what was installed for %s: %s\n"), install->user,
                  local->message);
  }
  if (opt_install_json)
    print_install_json (install);
  else
    print_install_text (install);
  if (install->failed)
    cli->exit_status = BANGER_EXIT_FAILURE;
  return TRUE;
}

static const BangerCommand install_command = {
  "install",
  N_ ("Install or refresh banger's units, D-Bus and polkit files and the banger group"),
  NULL,
  install_options,
  system_install,
  NULL,
  0,
};

/* ---- system status ---------------------------------------------------- */

static gboolean opt_status_json;

static const GOptionEntry status_options[] = {
  { "json", 0, 0, G_OPTION_ARG_NONE, &opt_status_json, N_ ("Print JSON"), NULL },
  { NULL },
};

/* Exit status when something is wrong: 3, as `systemctl status` uses for
 * a unit that is not active (1 stays "the command itself failed"). */
#define STATUS_EXIT_PROBLEMS 3

static gboolean
system_status (BangerCli *cli, char **args, GError **error)
{
  g_autoptr (BangerSystemStatus) st = NULL;

  if (!banger_cli_check_args (cli, args, 0, 0, error))
    return FALSE;
  st = banger_system_status_collect ();
  if (opt_status_json) {
    g_autoptr (JsonNode) root = banger_system_status_to_json (st);

    banger_json_print (root, stdout);
  } else {
    banger_system_status_print (st, stdout);
  }
  if (st->problems->len > 0)
    cli->exit_status = STATUS_EXIT_PROBLEMS;
  return TRUE;
}

static const BangerCommand status_command = {
  "status",
  N_ ("Show whether banger is installed and usable: units, versions, group, linger, network"),
  NULL,
  status_options,
  system_status,
  NULL,
  0,
};

/* ---- system restart --------------------------------------------------- */

static char *opt_restart_user;

static const GOptionEntry restart_options[] = {
  { "user", 'u', 0, G_OPTION_ARG_STRING, &opt_restart_user,
    N_ ("As root: restart this user's bangerd (default: the user who ran sudo)"), N_ ("NAME") },
  { NULL },
};

/* Both units are KillMode=process and VMMs live in their own scopes (or
 * are the jailer's), so a restart reaches only the daemons: guests keep
 * running and the new daemons adopt them (reconcile). systemctl, not
 * RestartUnit by hand: it waits for the job and asks polkit (the rules
 * let group banger restart bangerd-root.service without a prompt). */
static gboolean
system_restart (BangerCli *cli, char **args, GError **error)
{
  const char *helper_reset[] = { "systemctl", "reset-failed", "bangerd-root.service", NULL };
  const char *helper[] = { "systemctl", "restart", "bangerd-root.service", NULL };
  const char *manager_reset[] = { "systemctl", "--user", "reset-failed", "bangerd.service", NULL };
  const char *manager[] = { "systemctl", "--user", "restart", "bangerd.service", NULL };
  const char *user_reset[] = { "reset-failed", "bangerd.service", NULL };
  const char *user_restart[] = { "restart", "bangerd.service", NULL };
  g_autofree char *user_name = g_steal_pointer (&opt_restart_user);
  g_autoptr (BangerSystemUser) user = NULL;

  if (!banger_cli_check_args (cli, args, 0, 0, error))
    return FALSE;
  if (!g_file_test ("/run/systemd/system", G_FILE_TEST_IS_DIR)) {
    g_set_error_literal (error, BANGER_CLI_ERROR, BANGER_CLI_ERROR_FAILED,
                         _ ("systemd is not running here: bangerd and bangerd-root are started by "
                            "D-Bus activation; stop them and the next call starts them again"));
    return FALSE;
  }
  if (geteuid () == 0) {
    g_autoptr (GError) local = NULL;

    user = banger_system_user_for_command (user_name, &local);
    if (user == NULL && local != NULL) {
      g_propagate_error (error, g_steal_pointer (&local));
      return FALSE;
    }
  } else if (user_name != NULL) {
    return banger_cli_usage_error (cli, error, _ ("--user needs root"));
  }
  /* A unit started more than 5 times in 10 s (systemd's default start
   * limit) refuses the next start: a few restarts in a row, or a helper
   * that D-Bus activation started and idled out, would make an explicit
   * restart fail. Clearing the counter first is what an administrator
   * would do; failure to clear it is not an error. */
  banger_run_program (helper_reset, NULL, NULL);
  if (!banger_run_program (helper, NULL, error))
    return FALSE;
  printf ("%s\n", _ ("bangerd-root.service restarted"));
  if (geteuid () != 0) {
    banger_run_program (manager_reset, NULL, NULL);
    if (!banger_run_program (manager, NULL, error))
      return FALSE;
    printf ("%s\n", _ ("bangerd.service restarted"));
  } else if (user != NULL) {
    banger_system_user_systemctl (user, FALSE, user_reset, NULL);
    if (!banger_system_user_systemctl (user, FALSE, user_restart, error))
      return FALSE;
    printf (_ ("bangerd.service of %s restarted\n"), user->name);
  }
  return TRUE;
}

static const BangerCommand restart_command = {
  "restart",
  N_ ("Restart bangerd-root and your bangerd; running VMs are not touched"),
  NULL,
  restart_options,
  system_restart,
  NULL,
  0,
};

/* ---- system uninstall ------------------------------------------------- */

static gboolean opt_uninstall_purge;
static gboolean opt_uninstall_purge_data;
static gboolean opt_uninstall_force;

static const GOptionEntry uninstall_options[] = {
  { "purge", 0, 0, G_OPTION_ARG_NONE, &opt_uninstall_purge, N_ ("Also delete group banger"),
    NULL },
  { "purge-data", 0, 0, G_OPTION_ARG_NONE, &opt_uninstall_purge_data,
    N_ ("Also delete the banger data of group banger's members: images, VMs, settings"), NULL },
  { "force", 'f', 0, G_OPTION_ARG_NONE, &opt_uninstall_force,
    N_ ("Uninstall even while VMs run (they keep running, without network)"), NULL },
  { NULL },
};

static gboolean
system_uninstall (BangerCli *cli, char **args, GError **error)
{
  BangerSystemUninstallOptions o = {
    .purge = opt_uninstall_purge,
    .purge_data = opt_uninstall_purge_data,
    .force = opt_uninstall_force,
    .data_dir = banger_system_data_dir (),
  };
  gboolean failed = FALSE;

  if (!banger_cli_check_args (cli, args, 0, 0, error))
    return FALSE;
  if (!banger_system_uninstall_run (&o, &failed, error))
    return FALSE;
  if (failed)
    cli->exit_status = BANGER_EXIT_FAILURE;
  return TRUE;
}

static const BangerCommand uninstall_command = {
  "uninstall",
  N_ ("Remove what system install wrote; group and user data only when asked"),
  NULL,
  uninstall_options,
  system_uninstall,
  NULL,
  0,
};

static const BangerCommand *const system_subcommands[] = {
  &install_command, &status_command, &restart_command, &uninstall_command, &network_command, NULL,
};

const BangerCommand banger_system_command = {
  "system",
  N_ ("Set up the host: install, status, restart, uninstall, network"),
  NULL,
  NULL,
  NULL,
  system_subcommands,
  0,
};

/* The same subcommand table under the seed's name. */
const BangerCommand banger_daemon_command = {
  "daemon",
  N_ ("Alias of “banger system”"),
  NULL,
  NULL,
  NULL,
  system_subcommands,
  BANGER_COMMAND_FLAG_ALIAS,
};
