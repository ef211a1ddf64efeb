#define G_LOG_DOMAIN "banger-cli"

#include "config.h"

#include <errno.h>
#include <gio/gunixfdlist.h>
#include <gio/gunixinputstream.h>
#include <gio/gunixoutputstream.h>
#include <glib/gi18n.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include "cli.h"
#include "errors.h"
#include "output-json.h"
#include "output-table.h"
#include "output-time.h"
#include "parse-size.h"
#include "validate.h"

/* Option storage. Only one command runs per process, so commands that share
 * an option (--json) share its variable. */
static gboolean opt_json;
static gboolean opt_all;
static gboolean opt_names;
static gboolean opt_force;
static gboolean opt_follow;
static gboolean opt_tty;
static char *opt_image;
static char *opt_kernel;
static char *opt_driver;
static char *opt_workdir;
static char **opt_env;
static guint opt_cpus;
static guint opt_memory_mib;
static guint opt_disk_mib;
static int opt_timeout = -1;

static gboolean
parse_cpus (const char *option_name, const char *value, gpointer data, GError **error)
{
  guint64 n;

  if (!g_ascii_string_to_unsigned (value, 10, 1, G_MAXUINT, &n, NULL)) {
    g_set_error (error, BANGER_CLI_ERROR, BANGER_CLI_ERROR_USAGE,
                 _ ("invalid number of CPUs “%s” for %s"), value, option_name);
    return FALSE;
  }
  opt_cpus = (guint)n;
  return TRUE;
}

static gboolean
parse_memory (const char *option_name, const char *value, gpointer data, GError **error)
{
  return banger_parse_size_mib (option_name, value, &opt_memory_mib, error);
}

static gboolean
parse_disk (const char *option_name, const char *value, gpointer data, GError **error)
{
  return banger_parse_size_mib (option_name, value, &opt_disk_mib, error);
}

static const GOptionEntry create_options[] = {
  { "image", 0, 0, G_OPTION_ARG_STRING, &opt_image, N_ ("Image to boot (default: the manager's)"),
    N_ ("IMAGE") },
  { "kernel", 0, 0, G_OPTION_ARG_STRING, &opt_kernel, N_ ("Kernel (default: the image's)"),
    N_ ("KERNEL") },
  { "cpus", 0, 0, G_OPTION_ARG_CALLBACK, parse_cpus, N_ ("Number of virtual CPUs"), N_ ("N") },
  { "memory", 0, 0, G_OPTION_ARG_CALLBACK, parse_memory,
    N_ ("Memory, in MiB or with a unit (512M, 2G)"), N_ ("SIZE") },
  { "disk", 0, 0, G_OPTION_ARG_CALLBACK, parse_disk, N_ ("Disk size, in MiB or with a unit"),
    N_ ("SIZE") },
  { "driver", 0, 0, G_OPTION_ARG_STRING, &opt_driver, N_ ("VMM driver: qemu or firecracker"),
    N_ ("DRIVER") },
  { NULL },
};

static const GOptionEntry list_options[] = {
  { "json", 0, 0, G_OPTION_ARG_NONE, &opt_json, N_ ("Print JSON"), NULL },
  { "all", 'a', 0, G_OPTION_ARG_NONE, &opt_all, N_ ("Show all VMs, not only running ones"), NULL },
  /* For shell completion: one name per line, every VM. */
  { "names", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_NONE, &opt_names, N_ ("Print names only"),
    NULL },
  { NULL },
};

static const GOptionEntry json_options[] = {
  { "json", 0, 0, G_OPTION_ARG_NONE, &opt_json, N_ ("Print JSON"), NULL },
  { NULL },
};

static const GOptionEntry rm_options[] = {
  { "force", 'f', 0, G_OPTION_ARG_NONE, &opt_force, N_ ("Kill a running VM first"), NULL },
  { NULL },
};

static const GOptionEntry stop_options[] = {
  { "time", 't', 0, G_OPTION_ARG_INT, &opt_timeout,
    N_ ("Seconds to wait for a clean shutdown before forcing it (default 10)"), N_ ("SECONDS") },
  { NULL },
};

static const GOptionEntry exec_options[] = {
  { "tty", 't', 0, G_OPTION_ARG_NONE, &opt_tty, N_ ("Run the command on a pseudo-terminal"), NULL },
  { "env", 'e', 0, G_OPTION_ARG_STRING_ARRAY, &opt_env, N_ ("Set an environment variable"),
    N_ ("KEY=VALUE") },
  { "workdir", 'w', 0, G_OPTION_ARG_STRING, &opt_workdir, N_ ("Working directory in the guest"),
    N_ ("DIR") },
  { NULL },
};

static const GOptionEntry logs_options[] = {
  { "follow", 'f', 0, G_OPTION_ARG_NONE, &opt_follow, N_ ("Keep printing new output"), NULL },
  { NULL },
};

static const GOptionEntry no_options[] = { { NULL } };

/* ---- rendering ---- */

static char *
format_mib (guint mib)
{
  if (mib == 0)
    return g_strdup ("-");
  return g_format_size_full ((guint64)mib * 1024 * 1024, G_FORMAT_SIZE_IEC_UNITS);
}

static void
print_vm_table (GPtrArray *vms)
{
  g_autoptr (BangerTable) table = NULL;
  gint64 now = g_get_real_time () / G_USEC_PER_SEC;

  table = banger_table_new (_ ("NAME"), _ ("STATE"), _ ("IMAGE"), _ ("CPUS"), _ ("MEMORY"),
                            _ ("DISK"), _ ("IP"), _ ("CREATED"), NULL);
  for (guint i = 0; i < vms->len; i++) {
    BangerVM *vm = g_ptr_array_index (vms, i);
    g_autofree char *cpus = g_strdup_printf ("%u", banger_vm_get_vcpus (vm));
    g_autofree char *memory = format_mib (banger_vm_get_memory_mi_b (vm));
    g_autofree char *disk = format_mib (banger_vm_get_disk_mi_b (vm));
    g_autofree char *created = banger_format_time_ago (banger_vm_get_created_at (vm), now);

    banger_table_add_row (table, banger_vm_get_name (vm), banger_vm_get_state (vm),
                          banger_vm_get_image (vm), cpus, memory, disk, banger_vm_get_ipv4 (vm),
                          created);
  }
  banger_table_print (table, stdout);
}

static void
print_vm_json_array (GPtrArray *vms)
{
  g_autoptr (JsonNode) root = json_node_new (JSON_NODE_ARRAY);
  g_autoptr (JsonArray) array = json_array_new ();

  for (guint i = 0; i < vms->len; i++)
    json_array_add_element (array, banger_json_from_proxy (g_ptr_array_index (vms, i)));
  json_node_set_array (root, array);
  banger_json_print (root, stdout);
}

/* ---- create / run ---- */

static BangerVM *
create_vm (BangerCli *cli, const char *name, GError **error)
{
  BangerManager *manager;
  g_auto (GVariantBuilder) spec = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE_VARDICT);
  g_autofree char *path = NULL;

  /* The same rules bangerd applies, checked here so the message comes
   * before any bus traffic and names the name. */
  if (!banger_validate_name ("VM", name, error))
    return NULL;

  g_variant_builder_add (&spec, "{sv}", "name", g_variant_new_string (name));
  if (opt_image != NULL)
    g_variant_builder_add (&spec, "{sv}", "image", g_variant_new_string (opt_image));
  if (opt_kernel != NULL)
    g_variant_builder_add (&spec, "{sv}", "kernel", g_variant_new_string (opt_kernel));
  if (opt_driver != NULL)
    g_variant_builder_add (&spec, "{sv}", "driver", g_variant_new_string (opt_driver));
  if (opt_cpus > 0)
    g_variant_builder_add (&spec, "{sv}", "vcpus", g_variant_new_uint32 (opt_cpus));
  if (opt_memory_mib > 0)
    g_variant_builder_add (&spec, "{sv}", "memory_mib", g_variant_new_uint32 (opt_memory_mib));
  if (opt_disk_mib > 0)
    g_variant_builder_add (&spec, "{sv}", "disk_mib", g_variant_new_uint32 (opt_disk_mib));

  manager = banger_cli_get_manager (cli, error);
  if (manager == NULL)
    return NULL;
  if (!banger_manager_call_create_vm_sync (manager, g_variant_builder_end (&spec), &path, NULL,
                                           error)) {
    banger_cli_error_annotate_vm (error, name);
    return NULL;
  }
  return banger_cli_find_vm (cli, name, error);
}

static gboolean
vm_create (BangerCli *cli, char **args, GError **error)
{
  g_autoptr (BangerVM) vm = NULL;

  if (!banger_cli_check_args (cli, args, 1, 1, error))
    return FALSE;
  vm = create_vm (cli, args[0], error);
  if (vm == NULL)
    return FALSE;
  printf ("%s\n", banger_vm_get_name (vm));
  return TRUE;
}

/* Start takes as long as the guest needs to boot (seconds to a minute
 * under TCG); it is not hung while that lasts. */
#define START_TIMEOUT_MS (10 * 60 * 1000)

static gboolean
start_vm (BangerVM *vm, const char *name, GError **error)
{
  g_auto (GVariantBuilder) options = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE_VARDICT);

  g_dbus_proxy_set_default_timeout (G_DBUS_PROXY (vm), START_TIMEOUT_MS);
  if (!banger_vm_call_start_sync (vm, g_variant_builder_end (&options), NULL, error)) {
    banger_cli_error_annotate_vm (error, name);
    return FALSE;
  }
  return TRUE;
}

static gboolean
vm_run (BangerCli *cli, char **args, GError **error)
{
  g_autoptr (BangerVM) vm = NULL;

  if (!banger_cli_check_args (cli, args, 1, 1, error))
    return FALSE;
  vm = create_vm (cli, args[0], error);
  if (vm == NULL)
    return FALSE;
  if (!start_vm (vm, args[0], error))
    return FALSE;
  printf ("%s\n", args[0]);
  return TRUE;
}

/* ---- list / ps / show ---- */

static gboolean
list_vms (BangerCli *cli, gboolean running_only, GError **error)
{
  g_autoptr (GPtrArray) all = NULL;
  g_autoptr (GPtrArray) shown = g_ptr_array_new ();

  all = banger_cli_list_vms (cli, error);
  if (all == NULL)
    return FALSE;
  for (guint i = 0; i < all->len; i++) {
    BangerVM *vm = g_ptr_array_index (all, i);

    if (!running_only || banger_cli_vm_state_is_running (banger_vm_get_state (vm)))
      g_ptr_array_add (shown, vm);
  }
  if (opt_names) {
    for (guint i = 0; i < shown->len; i++)
      printf ("%s\n", banger_vm_get_name (g_ptr_array_index (shown, i)));
  } else if (opt_json) {
    print_vm_json_array (shown);
  } else {
    print_vm_table (shown);
  }
  return TRUE;
}

static gboolean
vm_list (BangerCli *cli, char **args, GError **error)
{
  if (!banger_cli_check_args (cli, args, 0, 0, error))
    return FALSE;
  /* `list` shows every VM; -a is accepted so `ps -a` habits work. */
  return list_vms (cli, FALSE, error);
}

static gboolean
vm_ps (BangerCli *cli, char **args, GError **error)
{
  if (!banger_cli_check_args (cli, args, 0, 0, error))
    return FALSE;
  return list_vms (cli, !opt_all && !opt_names, error);
}

static void
print_field (const char *label, const char *value)
{
  /* Labels are translated, so pad by display width rather than bytes. */
  glong width = g_utf8_strlen (label, -1);

  printf ("%s:", label);
  for (glong i = width; i < 12; i++)
    putchar (' ');
  printf (" %s\n", value != NULL && value[0] != '\0' ? value : "-");
}

static char *
format_time_both (guint64 t, gint64 now)
{
  g_autofree char *abs = NULL;
  g_autofree char *ago = NULL;

  if (t == 0)
    return g_strdup (_ ("never"));
  abs = banger_format_time_absolute (t);
  ago = banger_format_time_ago (t, now);
  return g_strdup_printf ("%s (%s)", abs, ago);
}

static gboolean
vm_show (BangerCli *cli, char **args, GError **error)
{
  g_autoptr (BangerVM) vm = NULL;
  gint64 now = g_get_real_time () / G_USEC_PER_SEC;
  g_autofree char *cpus = NULL;
  g_autofree char *memory = NULL;
  g_autofree char *disk = NULL;
  g_autofree char *pid = NULL;
  g_autofree char *created = NULL;
  g_autofree char *started = NULL;

  if (!banger_cli_check_args (cli, args, 1, 1, error))
    return FALSE;
  vm = banger_cli_find_vm (cli, args[0], error);
  if (vm == NULL)
    return FALSE;
  if (opt_json) {
    g_autoptr (JsonNode) node = banger_json_from_proxy (G_DBUS_PROXY (vm));

    banger_json_print (node, stdout);
    return TRUE;
  }
  cpus = g_strdup_printf ("%u", banger_vm_get_vcpus (vm));
  memory = format_mib (banger_vm_get_memory_mi_b (vm));
  disk = format_mib (banger_vm_get_disk_mi_b (vm));
  pid = banger_vm_get_pid (vm) ? g_strdup_printf ("%u", banger_vm_get_pid (vm)) : NULL;
  created = format_time_both (banger_vm_get_created_at (vm), now);
  started = format_time_both (banger_vm_get_started_at (vm), now);

  print_field (_ ("Name"), banger_vm_get_name (vm));
  print_field (_ ("Id"), banger_vm_get_id (vm));
  print_field (_ ("State"), banger_vm_get_state (vm));
  print_field (_ ("Driver"), banger_vm_get_driver (vm));
  print_field (_ ("Image"), banger_vm_get_image (vm));
  print_field (_ ("Kernel"), banger_vm_get_kernel (vm));
  print_field (_ ("CPUs"), cpus);
  print_field (_ ("Memory"), memory);
  print_field (_ ("Disk"), disk);
  print_field (_ ("Disk mode"), banger_vm_get_disk_mode (vm));
  print_field (_ ("IPv4"), banger_vm_get_ipv4 (vm));
  print_field (_ ("MAC"), banger_vm_get_mac (vm));
  print_field (_ ("PID"), pid);
  print_field (_ ("Created"), created);
  print_field (_ ("Started"), started);
  print_field (_ ("Agent"), banger_vm_get_agent_version (vm));
  print_field (_ ("Last error"), banger_vm_get_last_error (vm));
  return TRUE;
}

/* ---- verbs on one or more VMs ---- */

typedef gboolean (*VmAction) (BangerVM *vm, const char *name, GError **error);

/* Runs @action on every named VM, like `docker rm a b`: a failure is
 * reported and the rest still run; the last failure is returned. Names
 * that succeeded are printed, so scripts see what happened. */
static gboolean
for_each_vm (BangerCli *cli, char **args, VmAction action, GError **error)
{
  g_autoptr (GError) last = NULL;

  if (!banger_cli_check_args (cli, args, 1, G_MAXUINT, error))
    return FALSE;
  for (guint i = 0; args[i] != NULL; i++) {
    g_autoptr (GError) local = NULL;
    g_autoptr (BangerVM) vm = banger_cli_find_vm (cli, args[i], &local);

    if (vm != NULL && action (vm, args[i], &local)) {
      printf ("%s\n", args[i]);
      continue;
    }
    /* Without a daemon the other names would fail the same way. */
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

static gboolean
action_delete (BangerVM *vm, const char *name, GError **error)
{
  g_auto (GVariantBuilder) options = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE_VARDICT);

  if (opt_force)
    g_variant_builder_add (&options, "{sv}", "force", g_variant_new_boolean (TRUE));
  if (!banger_vm_call_delete_sync (vm, g_variant_builder_end (&options), NULL, error)) {
    banger_cli_error_annotate_vm (error, name);
    return FALSE;
  }
  return TRUE;
}

static gboolean
action_stop (BangerVM *vm, const char *name, GError **error)
{
  guint timeout = opt_timeout < 0 ? 0 : (guint)opt_timeout;

  /* The daemon waits up to @timeout (default 10 s) before forcing. */
  g_dbus_proxy_set_default_timeout (G_DBUS_PROXY (vm), (int)(timeout + 60) * 1000);
  if (!banger_vm_call_stop_sync (vm, timeout, NULL, error)) {
    banger_cli_error_annotate_vm (error, name);
    return FALSE;
  }
  return TRUE;
}

static gboolean
action_restart (BangerVM *vm, const char *name, GError **error)
{
  g_auto (GVariantBuilder) options = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE_VARDICT);

  g_dbus_proxy_set_default_timeout (G_DBUS_PROXY (vm), START_TIMEOUT_MS);
  if (!banger_vm_call_restart_sync (vm, g_variant_builder_end (&options), NULL, error)) {
    banger_cli_error_annotate_vm (error, name);
    return FALSE;
  }
  return TRUE;
}

static gboolean
action_kill (BangerVM *vm, const char *name, GError **error)
{
  if (!banger_vm_call_kill_sync (vm, NULL, error)) {
    banger_cli_error_annotate_vm (error, name);
    return FALSE;
  }
  return TRUE;
}

static gboolean
vm_rm (BangerCli *cli, char **args, GError **error)
{
  return for_each_vm (cli, args, action_delete, error);
}

static gboolean
vm_start (BangerCli *cli, char **args, GError **error)
{
  return for_each_vm (cli, args, start_vm, error);
}

static gboolean
vm_stop (BangerCli *cli, char **args, GError **error)
{
  if (opt_timeout < -1)
    return banger_cli_usage_error (cli, error, _ ("invalid value %d for --time"), opt_timeout);
  return for_each_vm (cli, args, action_stop, error);
}

static gboolean
vm_restart (BangerCli *cli, char **args, GError **error)
{
  return for_each_vm (cli, args, action_restart, error);
}

static gboolean
vm_kill (BangerCli *cli, char **args, GError **error)
{
  return for_each_vm (cli, args, action_kill, error);
}

static gboolean
vm_prune (BangerCli *cli, char **args, GError **error)
{
  BangerManager *manager;
  g_auto (GStrv) removed = NULL;

  if (!banger_cli_check_args (cli, args, 0, 0, error))
    return FALSE;
  manager = banger_cli_get_manager (cli, error);
  if (manager == NULL)
    return FALSE;
  if (!banger_manager_call_prune_vms_sync (manager, &removed, NULL, error)) {
    banger_cli_error_annotate (error);
    return FALSE;
  }
  for (guint i = 0; removed[i] != NULL; i++)
    printf ("%s\n", removed[i]);
  return TRUE;
}

/* ---- exec / ssh / logs / stats / ports ---- */

static gboolean
vm_exec (BangerCli *cli, char **args, GError **error)
{
  g_autoptr (BangerVM) vm = NULL;
  g_autoptr (GUnixFDList) fds = g_unix_fd_list_new ();
  g_auto (GVariantBuilder) options = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE_VARDICT);
  struct termios saved;
  gboolean raw = FALSE;
  int status = 0;
  gboolean ok;
  char **command;

  if (!banger_cli_check_args (cli, args, 2, G_MAXUINT, error))
    return FALSE;
  /* Option parsing stopped at NAME, so a "--" after it is still here. */
  command = g_str_equal (args[1], "--") ? args + 2 : args + 1;
  if (command[0] == NULL)
    return banger_cli_usage_error (cli, error, _ ("missing argument: %s"), _ ("COMMAND"));
  vm = banger_cli_find_vm (cli, args[0], error);
  if (vm == NULL)
    return FALSE;

  for (int fd = 0; fd <= 2; fd++)
    if (g_unix_fd_list_append (fds, fd, error) < 0)
      return FALSE;
  if (opt_env != NULL)
    g_variant_builder_add (&options, "{sv}", "env",
                           g_variant_new_strv ((const char *const *)opt_env, -1));
  if (opt_workdir != NULL)
    g_variant_builder_add (&options, "{sv}", "cwd", g_variant_new_string (opt_workdir));
  if (opt_tty) {
    struct winsize ws = { 0 };

    g_variant_builder_add (&options, "{sv}", "tty", g_variant_new_boolean (TRUE));
    if (ioctl (STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0) {
      g_variant_builder_add (&options, "{sv}", "rows", g_variant_new_uint32 (ws.ws_row));
      g_variant_builder_add (&options, "{sv}", "cols", g_variant_new_uint32 (ws.ws_col));
    }
    /* The guest's pty does the line editing and echo; ours must pass
     * every key through untouched. */
    if (isatty (STDIN_FILENO) && tcgetattr (STDIN_FILENO, &saved) == 0) {
      struct termios r = saved;

      cfmakeraw (&r);
      raw = tcsetattr (STDIN_FILENO, TCSANOW, &r) == 0;
    }
  }

  /* The command runs as long as it likes. */
  g_dbus_proxy_set_default_timeout (G_DBUS_PROXY (vm), G_MAXINT);
  ok = banger_vm_call_exec_sync (
      vm, (const char *const *)args + 1, g_variant_builder_end (&options), g_variant_new_handle (0),
      g_variant_new_handle (1), g_variant_new_handle (2), fds, &status, NULL, NULL, error);
  if (raw)
    tcsetattr (STDIN_FILENO, TCSANOW, &saved);
  if (!ok) {
    banger_cli_error_annotate_vm (error, args[0]);
    return FALSE;
  }
  cli->exit_status = status;
  return TRUE;
}

static gboolean
vm_ssh (BangerCli *cli, char **args, GError **error)
{
  g_autoptr (BangerVM) vm = NULL;
  g_autoptr (GVariant) config = NULL;
  g_autoptr (GPtrArray) argv = g_ptr_array_new_with_free_func (g_free);
  const char *host = NULL, *user = "root", *identity = NULL, *known_hosts = NULL, *alias = NULL;
  guint16 port = 22;
  gboolean has_sshd = TRUE;

  if (!banger_cli_check_args (cli, args, 1, G_MAXUINT, error))
    return FALSE;
  vm = banger_cli_find_vm (cli, args[0], error);
  if (vm == NULL)
    return FALSE;
  if (!banger_vm_call_get_sshconfig_sync (vm, &config, NULL, error)) {
    banger_cli_error_annotate_vm (error, args[0]);
    return FALSE;
  }
  g_variant_lookup (config, "host", "&s", &host);
  g_variant_lookup (config, "port", "q", &port);
  g_variant_lookup (config, "user", "&s", &user);
  g_variant_lookup (config, "identity_file", "&s", &identity);
  g_variant_lookup (config, "known_hosts_file", "&s", &known_hosts);
  g_variant_lookup (config, "host_key_alias", "&s", &alias);
  g_variant_lookup (config, "has_sshd", "b", &has_sshd);
  if (host == NULL || !has_sshd) {
    g_set_error (error, BANGER_CLI_ERROR, BANGER_CLI_ERROR_FAILED,
                 _ ("VM “%s” has no ssh server; use “banger vm exec -t %s -- sh”"), args[0],
                 args[0]);
    return FALSE;
  }

  g_ptr_array_add (argv, g_strdup ("ssh"));
  g_ptr_array_add (argv, g_strdup ("-p"));
  g_ptr_array_add (argv, g_strdup_printf ("%u", port));
  if (identity != NULL) {
    g_ptr_array_add (argv, g_strdup ("-i"));
    g_ptr_array_add (argv, g_strdup (identity));
    g_ptr_array_add (argv, g_strdup ("-o"));
    g_ptr_array_add (argv, g_strdup ("IdentitiesOnly=yes"));
  }
  if (known_hosts != NULL) {
    g_ptr_array_add (argv, g_strdup ("-o"));
    g_ptr_array_add (argv, g_strdup_printf ("UserKnownHostsFile=%s", known_hosts));
    g_ptr_array_add (argv, g_strdup ("-o"));
    g_ptr_array_add (argv, g_strdup ("StrictHostKeyChecking=yes"));
  }
  if (alias != NULL) {
    g_ptr_array_add (argv, g_strdup ("-o"));
    g_ptr_array_add (argv, g_strdup_printf ("HostKeyAlias=%s", alias));
  }
  g_ptr_array_add (argv, g_strdup_printf ("%s@%s", user, host));
  for (guint i = args[1] != NULL && g_str_equal (args[1], "--") ? 2 : 1; args[i] != NULL; i++)
    g_ptr_array_add (argv, g_strdup (args[i]));
  g_ptr_array_add (argv, NULL);

  /* ssh takes over the terminal: replace this process (argv, no shell). */
  fflush (stdout);
  execvp ("ssh", (char **)argv->pdata);
  g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errno), _ ("cannot run ssh: %s"),
               g_strerror (errno));
  return FALSE;
}

static gboolean
vm_logs (BangerCli *cli, char **args, GError **error)
{
  g_autoptr (BangerVM) vm = NULL;
  g_autoptr (GVariant) handle = NULL;
  g_autoptr (GUnixFDList) out_fds = NULL;
  g_auto (GVariantBuilder) options = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE_VARDICT);
  g_autoptr (GInputStream) in = NULL;
  g_autoptr (GOutputStream) out = NULL;
  int fd;

  if (!banger_cli_check_args (cli, args, 1, 1, error))
    return FALSE;
  vm = banger_cli_find_vm (cli, args[0], error);
  if (vm == NULL)
    return FALSE;
  if (!banger_vm_call_open_log_sync (vm, g_variant_builder_end (&options), NULL, &handle, &out_fds,
                                     NULL, error)) {
    banger_cli_error_annotate_vm (error, args[0]);
    return FALSE;
  }
  fd = out_fds != NULL ? g_unix_fd_list_get (out_fds, g_variant_get_handle (handle), error) : -1;
  if (fd < 0) {
    if (error != NULL && *error == NULL)
      g_set_error (error, BANGER_CLI_ERROR, BANGER_CLI_ERROR_FAILED,
                   _ ("bangerd sent no log descriptor for VM “%s”"), args[0]);
    return FALSE;
  }
  in = g_unix_input_stream_new (fd, TRUE);
  out = g_unix_output_stream_new (STDOUT_FILENO, FALSE);
  for (;;) {
    gssize n = g_output_stream_splice (out, in, G_OUTPUT_STREAM_SPLICE_NONE, NULL, error);

    if (n < 0)
      return FALSE;
    if (!opt_follow)
      break;
    /* The console log is a regular file: at its end there is nothing to
     * wait on (poll says readable, inotify needs a path), so follow it the
     * way tail -f does, by looking again a little later. */
    g_usleep (G_USEC_PER_SEC / 4);
  }
  return TRUE;
}

static gboolean
vm_stats (BangerCli *cli, char **args, GError **error)
{
  g_autoptr (BangerVM) vm = NULL;
  g_autoptr (GVariant) stats = NULL;
  g_autoptr (BangerTable) table = NULL;
  GVariantIter iter;
  const char *key;
  GVariant *value;

  if (!banger_cli_check_args (cli, args, 1, 1, error))
    return FALSE;
  vm = banger_cli_find_vm (cli, args[0], error);
  if (vm == NULL)
    return FALSE;
  if (!banger_vm_call_get_stats_sync (vm, &stats, NULL, error)) {
    banger_cli_error_annotate_vm (error, args[0]);
    return FALSE;
  }
  if (opt_json) {
    g_autoptr (JsonNode) node = json_gvariant_serialize (stats);

    banger_json_print (node, stdout);
    return TRUE;
  }
  table = banger_table_new (_ ("KEY"), _ ("VALUE"), NULL);
  g_variant_iter_init (&iter, stats);
  while (g_variant_iter_next (&iter, "{&sv}", &key, &value)) {
    g_autofree char *text = NULL;

    if (g_str_has_suffix (key, "_bytes") && g_variant_is_of_type (value, G_VARIANT_TYPE_UINT64))
      text = g_format_size_full (g_variant_get_uint64 (value), G_FORMAT_SIZE_IEC_UNITS);
    else if (g_variant_is_of_type (value, G_VARIANT_TYPE_DOUBLE))
      text = g_strdup_printf ("%.2f", g_variant_get_double (value));
    else
      text = g_variant_print (value, FALSE);
    banger_table_add_row (table, key, text);
    g_variant_unref (value);
  }
  banger_table_print (table, stdout);
  return TRUE;
}

static gboolean
vm_ports (BangerCli *cli, char **args, GError **error)
{
  g_autoptr (BangerVM) vm = NULL;
  g_autoptr (GVariant) ports = NULL;
  GVariantIter iter;
  const char *proto, *address, *process;
  guint16 port;
  guint32 pid;

  if (!banger_cli_check_args (cli, args, 1, 1, error))
    return FALSE;
  vm = banger_cli_find_vm (cli, args[0], error);
  if (vm == NULL)
    return FALSE;
  if (!banger_vm_call_list_ports_sync (vm, &ports, NULL, error)) {
    banger_cli_error_annotate_vm (error, args[0]);
    return FALSE;
  }
  g_variant_iter_init (&iter, ports);
  if (opt_json) {
    g_autoptr (JsonBuilder) builder = json_builder_new ();
    g_autoptr (JsonNode) root = NULL;

    json_builder_begin_array (builder);
    while (g_variant_iter_next (&iter, "(&s&squ&s)", &proto, &address, &port, &pid, &process)) {
      json_builder_begin_object (builder);
      json_builder_set_member_name (builder, "protocol");
      json_builder_add_string_value (builder, proto);
      json_builder_set_member_name (builder, "address");
      json_builder_add_string_value (builder, address);
      json_builder_set_member_name (builder, "port");
      json_builder_add_int_value (builder, port);
      json_builder_set_member_name (builder, "pid");
      json_builder_add_int_value (builder, pid);
      json_builder_set_member_name (builder, "process");
      json_builder_add_string_value (builder, process);
      json_builder_end_object (builder);
    }
    json_builder_end_array (builder);
    root = json_builder_get_root (builder);
    banger_json_print (root, stdout);
    return TRUE;
  }
  {
    g_autoptr (BangerTable) table
        = banger_table_new (_ ("PROTO"), _ ("ADDRESS"), _ ("PORT"), _ ("PID"), _ ("PROCESS"), NULL);

    while (g_variant_iter_next (&iter, "(&s&squ&s)", &proto, &address, &port, &pid, &process)) {
      g_autofree char *port_s = g_strdup_printf ("%u", port);
      g_autofree char *pid_s = pid ? g_strdup_printf ("%u", pid) : NULL;

      banger_table_add_row (table, proto, address, port_s, pid_s, process);
    }
    banger_table_print (table, stdout);
  }
  return TRUE;
}

/* ---- the table ---- */

#define VM_ARGS BANGER_COMMAND_FLAG_VM_ARGS
#define LEAF(name, summary, params, options, handler, flags)                                       \
  static const BangerCommand vm_##handler##_command                                                \
      = { name, summary, params, options, vm_##handler, NULL, flags }

LEAF ("create", N_ ("Create a VM (it is not started)"), N_ ("NAME"), create_options, create, 0);
LEAF ("run", N_ ("Create a VM and start it"), N_ ("NAME"), create_options, run, 0);
LEAF ("list", N_ ("List all VMs"), NULL, list_options, list, 0);
LEAF ("ps", N_ ("List running VMs (all with -a)"), NULL, list_options, ps, 0);
LEAF ("show", N_ ("Show a VM's details"), N_ ("NAME"), json_options, show, VM_ARGS);
LEAF ("rm", N_ ("Remove VMs"), N_ ("NAME…"), rm_options, rm, VM_ARGS);
LEAF ("prune", N_ ("Remove every VM that is not running"), NULL, no_options, prune, 0);
LEAF ("start", N_ ("Start VMs"), N_ ("NAME…"), no_options, start, VM_ARGS);
LEAF ("stop", N_ ("Stop VMs cleanly (forcing them after a timeout)"), N_ ("NAME…"), stop_options,
      stop, VM_ARGS);
LEAF ("restart", N_ ("Restart VMs"), N_ ("NAME…"), no_options, restart, VM_ARGS);
LEAF ("kill", N_ ("Kill VMs at once"), N_ ("NAME…"), no_options, kill, VM_ARGS);
LEAF ("exec", N_ ("Run a command in a VM"), N_ ("NAME [--] COMMAND [ARG…]"), exec_options, exec,
      VM_ARGS | BANGER_COMMAND_FLAG_STOP_AT_ARGS);
LEAF ("ssh", N_ ("Log in to a VM with ssh"), N_ ("NAME [SSH-ARG…]"), no_options, ssh,
      VM_ARGS | BANGER_COMMAND_FLAG_STOP_AT_ARGS);
LEAF ("logs", N_ ("Print a VM's console log"), N_ ("NAME"), logs_options, logs, VM_ARGS);
LEAF ("stats", N_ ("Show a VM's resource use"), N_ ("NAME"), json_options, stats, VM_ARGS);
LEAF ("ports", N_ ("List the ports a VM listens on"), N_ ("NAME"), json_options, ports, VM_ARGS);

static const BangerCommand *const vm_subcommands[] = {
  &vm_create_command,
  &vm_run_command,
  &vm_list_command,
  &vm_ps_command,
  &vm_show_command,
  &vm_rm_command,
  &vm_prune_command,
  &vm_start_command,
  &vm_stop_command,
  &vm_restart_command,
  &vm_kill_command,
  &vm_exec_command,
  &vm_ssh_command,
  &vm_logs_command,
  &vm_stats_command,
  &vm_ports_command,
  NULL,
};

const BangerCommand banger_vm_command = {
  "vm", N_ ("Create, run and remove VMs"), NULL, NULL, NULL, vm_subcommands, 0,
};
