#include "config.h"

#include <errno.h>
#include <glib-unix.h>
#include <signal.h>
#include <sys/inotify.h>
#include <gio/gunixfdlist.h>
#include <gio/gunixinputstream.h>
#include <gio/gunixoutputstream.h>
#include <glib/gi18n.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include "banger-error.h"
#include "cli.h"
#include "cmd-common.h"
#include "errors.h"
#include "exec-session.h"
#include "image-pull.h"
#include "job-progress.h"
#include "output-json.h"
#include "output-table.h"
#include "output-time.h"
#include "parse-size.h"
#include "repo.h"
#include "run-config.h"
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
static char *opt_name;

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

/* `vm run` takes what `vm create` takes, and a name is optional. */
static char *opt_repo;

static gboolean
parse_repo (const char *option_name, const char *value, gpointer data, GError **error)
{
  g_free (opt_repo);
  opt_repo = g_strdup (value != NULL ? value : ".");
  return TRUE;
}

static const GOptionEntry run_options[] = {
  { "repo", 0, G_OPTION_FLAG_OPTIONAL_ARG | G_OPTION_FLAG_FILENAME, G_OPTION_ARG_CALLBACK,
    parse_repo,
    N_ ("Push the git work tree of DIR (default: .) first, run the command in it, and save "
        "its changes as a patch"),
    N_ ("DIR") },
  { "name", 0, 0, G_OPTION_ARG_STRING, &opt_name,
    N_ ("Name of the VM (default: run-<6 hex digits>)"), N_ ("NAME") },
  { "image", 0, 0, G_OPTION_ARG_STRING, &opt_image,
    N_ ("Image to boot, or a reference or catalog name to pull first (default: the manager's)"),
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
    banger_cli_error_annotate_vm_call (error, name);
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

/* What a verb wanted of the VM, for the words when its state was wrong. */
typedef enum {
  WANT_STOPPED, /* start */
  WANT_RUNNING, /* stop, restart, kill */
  WANT_IN_USE,  /* exec, ssh, stats, ports: needs a running guest */
} StateWanted;

static gboolean
state_is_up (const char *state)
{
  return g_strcmp0 (state, "running") == 0 || g_strcmp0 (state, "starting") == 0;
}

/* The sentence for VM @name in @state when the verb wanted @wanted, or
 * NULL when the state does not explain the refusal. */
static char *
state_sentence (const char *name, const char *state, StateWanted wanted)
{
  if (state == NULL)
    return NULL;
  switch (wanted) {
  case WANT_STOPPED:
    if (state_is_up (state))
      return g_strdup_printf (_ ("VM “%s” is already running"), name);
    if (g_str_equal (state, "stopping"))
      return g_strdup_printf (_ ("VM “%s” is still stopping; start it once it has stopped"), name);
    return NULL;
  case WANT_RUNNING:
    if (!banger_cli_vm_state_is_running (state))
      /* TRANSLATORS: the second %s is a state: created, stopped or error */
      return g_strdup_printf (_ ("VM “%s” is not running (it is %s)"), name, state);
    return NULL;
  case WANT_IN_USE:
    if (g_str_equal (state, "running"))
      return NULL;
    if (g_str_equal (state, "starting"))
      return g_strdup_printf (_ ("VM “%s” is still starting; try again in a moment"), name);
    return g_strdup_printf (_ ("VM “%s” is not running (it is %s); start it with “banger vm "
                               "start %s”"),
                            name, state, name);
  default:
    return NULL;
  }
}

/* A string property of the VM as bangerd has it now. The proxy's cached
 * value trails behind: bangerd batches PropertiesChanged after a main-loop
 * turn, so right after Start returns the cache may still say "starting"
 * and have no address. @cached is the fallback when the Get fails. */
static char *
live_property (BangerVM *vm, const char *property, const char *cached)
{
  g_autoptr (GVariant) reply = NULL;
  g_autoptr (GVariant) value = NULL;

  reply = g_dbus_connection_call_sync (
      g_dbus_proxy_get_connection (G_DBUS_PROXY (vm)), g_dbus_proxy_get_name (G_DBUS_PROXY (vm)),
      g_dbus_proxy_get_object_path (G_DBUS_PROXY (vm)), "org.freedesktop.DBus.Properties", "Get",
      g_variant_new ("(ss)", "org.banger.VM", property), G_VARIANT_TYPE ("(v)"),
      G_DBUS_CALL_FLAGS_NO_AUTO_START, -1, NULL, NULL);
  if (reply == NULL)
    return g_strdup (cached);
  g_variant_get (reply, "(v)", &value);
  if (!g_variant_is_of_type (value, G_VARIANT_TYPE_STRING))
    return g_strdup (cached);
  return g_variant_dup_string (value, NULL);
}

static char *
current_state (BangerVM *vm)
{
  return live_property (vm, "State", banger_vm_get_state (vm));
}

/* Annotates an error from a call on @vm; a BadState refusal becomes a
 * sentence about the state the VM is in. */
static void
annotate_vm_call (GError **error, BangerVM *vm, const char *name, StateWanted wanted)
{
  gboolean bad_state = g_error_matches (*error, BANGER_ERROR, BANGER_ERROR_BAD_STATE);
  g_autofree char *sentence = NULL;
  g_autofree char *state = NULL;

  banger_cli_error_annotate_vm_call (error, name);
  if (!bad_state)
    return;
  state = current_state (vm);
  sentence = state_sentence (name, state, wanted);
  if (sentence != NULL) {
    g_clear_error (error);
    g_set_error_literal (error, BANGER_ERROR, BANGER_ERROR_BAD_STATE, sentence);
  }
}

/* Refuses early, with a clear sentence, verbs that need a running guest. */
static gboolean
require_running (BangerVM *vm, const char *name, GError **error)
{
  g_autofree char *state = current_state (vm);
  g_autofree char *sentence = state_sentence (name, state, WANT_IN_USE);

  if (sentence == NULL)
    return TRUE;
  g_set_error_literal (error, BANGER_ERROR, BANGER_ERROR_BAD_STATE, sentence);
  return FALSE;
}

/* ---- jobs a start waits for ----
 *
 * Start blocks while bangerd builds a missing default image as an
 * org.banger.Job; without this the command would sit silent for minutes.
 * The job is not in Start's reply, so watch the object manager for it. */

typedef struct {
  GDBusObjectManager *objects;
  GQueue pending; /* job paths (char *) not followed yet */
  BangerProgressMode mode;
} JobWatch;

/* Only image builds: Start makes no other job, and following someone
 * else's pull would keep this command waiting after its VM is up. */
static gboolean
job_is_start_build (BangerJob *job)
{
  return g_strcmp0 (banger_job_get_operation (job), "build-image") == 0;
}

static void
on_watch_object_added (GDBusObjectManager *manager, GDBusObject *object, gpointer data)
{
  JobWatch *w = data;
  g_autoptr (BangerJob) job = banger_object_get_job (BANGER_OBJECT (object));

  if (job == NULL || !job_is_start_build (job))
    return;
  g_queue_push_tail (&w->pending, g_strdup (g_dbus_object_get_object_path (object)));
}

/* Starts watching; without an object manager (an old bangerd, say) the
 * start still works, only silently, so failures are debug lines. */
static void
job_watch_init (JobWatch *w, BangerVM *vm)
{
  g_autoptr (GError) local = NULL;
  GList *list;

  g_queue_init (&w->pending);
  w->mode = BANGER_PROGRESS_AUTO;
  w->objects = banger_object_manager_client_new_sync (
      g_dbus_proxy_get_connection (G_DBUS_PROXY (vm)), G_DBUS_OBJECT_MANAGER_CLIENT_FLAGS_NONE,
      g_dbus_proxy_get_name (G_DBUS_PROXY (vm)), "/org/banger/Manager", NULL, &local);
  if (w->objects == NULL) {
    g_debug ("cannot watch bangerd's jobs: %s", local->message);
    return;
  }
  g_signal_connect (w->objects, "object-added", G_CALLBACK (on_watch_object_added), w);

  /* Concurrent starts share one build: one already running for this VM's
   * image is the one this start will wait for. */
  list = g_dbus_object_manager_get_objects (w->objects);
  for (GList *l = list; l != NULL; l = l->next) {
    g_autoptr (BangerJob) job = banger_object_get_job (BANGER_OBJECT (l->data));

    if (job != NULL && job_is_start_build (job)
        && g_strcmp0 (banger_job_get_state (job), "running") == 0
        && g_strcmp0 (banger_job_get_target (job), banger_vm_get_image (vm)) == 0)
      g_queue_push_tail (&w->pending, g_strdup (g_dbus_object_get_object_path (l->data)));
  }
  g_list_free_full (list, g_object_unref);
}

static void
job_watch_clear (JobWatch *w)
{
  if (w->objects != NULL)
    g_signal_handlers_disconnect_by_data (w->objects, w);
  g_clear_object (&w->objects);
  g_queue_clear_full (&w->pending, g_free);
}

/* Runs the default main context until *@done, following each job that
 * appears meanwhile. A job's own failure or Ctrl-C is not this command's
 * outcome: Start fails or returns because of it, so keep waiting for
 * Start and report what it says. */
static void
job_watch_wait (JobWatch *w, const gboolean *done)
{
  while (!*done) {
    g_autofree char *path = g_queue_pop_head (&w->pending);

    if (path != NULL) {
      g_autoptr (GError) local = NULL;

      if (!banger_job_follow (g_dbus_object_manager_client_get_connection (
                                  G_DBUS_OBJECT_MANAGER_CLIENT (w->objects)),
                              path, w->mode, NULL, &local))
        g_debug ("job %s: %s", path, local->message);
      continue;
    }
    g_main_context_iteration (NULL, TRUE);
  }
}

typedef struct {
  gboolean done;
  GError *error;
} StartCall;

static void
on_start_done (GObject *source, GAsyncResult *res, gpointer data)
{
  StartCall *call = data;

  banger_vm_call_start_finish (BANGER_VM (source), res, &call->error);
  call->done = TRUE;
}

/* ---- a VM without network ---- */

/* Why a running VM has no address: its start found no root helper to
 * make its tap. The reason and the one command that fixes it. */
static char *
no_network_reason (const char *name)
{
  g_autoptr (GDBusConnection) bus = g_bus_get_sync (G_BUS_TYPE_SYSTEM, NULL, NULL);
  g_autoptr (GVariant) reply = NULL;
  g_autofree const char **names = NULL;
  gboolean activatable = FALSE;

  if (bus != NULL)
    reply = g_dbus_connection_call_sync (bus, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                         "org.freedesktop.DBus", "ListActivatableNames", NULL,
                                         G_VARIANT_TYPE ("(as)"), G_DBUS_CALL_FLAGS_NONE, -1,
                                         NULL, NULL);
  if (reply != NULL) {
    g_autoptr (GVariant) list = g_variant_get_child_value (reply, 0);

    names = g_variant_get_strv (list, NULL);
    activatable = g_strv_contains (names, "org.banger.Helper");
  }
  if (!activatable)
    return g_strdup_printf (_ ("the root helper bangerd-root is not installed, so VMs get no "
                               "network: run `sudo banger system install --user %s`, then "
                               "`banger vm restart %s`"),
                            g_get_user_name (), name);
  return g_strdup_printf (_ ("the root helper bangerd-root did not answer when the VM started: "
                             "see `banger system status` and `journalctl -u bangerd-root`, then "
                             "`banger vm restart %s`"),
                          name);
}

/* Says on stderr that a VM that just started has no network: before,
 * such a VM booted without an address and nothing said so. */
static void
warn_if_no_network (BangerVM *vm, const char *name)
{
  g_autofree char *ipv4 = live_property (vm, "IPv4", banger_vm_get_ipv4 (vm));
  g_autofree char *reason = NULL;

  if (ipv4 != NULL && *ipv4 != '\0')
    return;
  reason = no_network_reason (name);
  g_printerr (_ ("warning: VM “%s” has no network (no IPv4 address, no %s.vm name): %s\n"), name,
              name, reason);
}

static gboolean
start_vm (BangerVM *vm, const char *name, GError **error)
{
  g_auto (GVariantBuilder) options = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE_VARDICT);
  JobWatch watch = { 0 };
  StartCall call = { 0 };

  g_dbus_proxy_set_default_timeout (G_DBUS_PROXY (vm), START_TIMEOUT_MS);
  job_watch_init (&watch, vm);
  banger_vm_call_start (vm, g_variant_builder_end (&options), NULL, on_start_done, &call);
  job_watch_wait (&watch, &call.done);
  job_watch_clear (&watch);
  if (call.error != NULL) {
    g_propagate_error (error, call.error);
    annotate_vm_call (error, vm, name, WANT_STOPPED);
    return FALSE;
  }
  warn_if_no_network (vm, name);
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
  banger_cli_print_list (shown, opt_names, opt_json, print_vm_table);
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
  g_autofree char *dns_name = NULL;

  if (!banger_cli_check_args (cli, args, 1, 1, error))
    return FALSE;
  vm = banger_cli_find_vm (cli, args[0], error);
  if (vm == NULL)
    return FALSE;
  if (opt_json) {
    banger_cli_print_json (G_DBUS_PROXY (vm));
    return TRUE;
  }
  cpus = g_strdup_printf ("%u", banger_vm_get_vcpus (vm));
  memory = format_mib (banger_vm_get_memory_mi_b (vm));
  disk = format_mib (banger_vm_get_disk_mi_b (vm));
  pid = banger_vm_get_pid (vm) ? g_strdup_printf ("%u", banger_vm_get_pid (vm)) : NULL;
  created = banger_cli_format_time_both (banger_vm_get_created_at (vm), now);
  started = banger_cli_format_time_both (banger_vm_get_started_at (vm), now);

  banger_cli_print_field (_ ("Name"), banger_vm_get_name (vm));
  banger_cli_print_field (_ ("Id"), banger_vm_get_id (vm));
  banger_cli_print_field (_ ("State"), banger_vm_get_state (vm));
  banger_cli_print_field (_ ("Driver"), banger_vm_get_driver (vm));
  banger_cli_print_field (_ ("Image"), banger_vm_get_image (vm));
  banger_cli_print_field (_ ("Kernel"), banger_vm_get_kernel (vm));
  banger_cli_print_field (_ ("CPUs"), cpus);
  banger_cli_print_field (_ ("Memory"), memory);
  banger_cli_print_field (_ ("Disk"), disk);
  banger_cli_print_field (_ ("Disk mode"), banger_vm_get_disk_mode (vm));
  banger_cli_print_field (_ ("IPv4"), banger_vm_get_ipv4 (vm));
  if (banger_vm_get_ipv4 (vm)[0] == '\0' && banger_cli_vm_state_is_running (banger_vm_get_state (vm))) {
    g_autofree char *reason = no_network_reason (banger_vm_get_name (vm));

    banger_cli_print_field (_ ("Network"), reason);
  }
  /* The name bangerd's DNS responder answers while the VM holds its lease
   * (docs/dns.md). */
  if (banger_vm_get_ipv4 (vm)[0] != '\0')
    dns_name = g_strdup_printf ("%s.vm", banger_vm_get_name (vm));
  banger_cli_print_field (_ ("DNS name"), dns_name);
  banger_cli_print_field (_ ("MAC"), banger_vm_get_mac (vm));
  banger_cli_print_field (_ ("PID"), pid);
  banger_cli_print_field (_ ("Created"), created);
  banger_cli_print_field (_ ("Started"), started);
  banger_cli_print_field (_ ("Agent"), banger_vm_get_agent_version (vm));
  banger_cli_print_field (_ ("Last error"), banger_vm_get_last_error (vm));
  return TRUE;
}

/* ---- verbs on one or more VMs ---- */

typedef gboolean (*VmAction) (BangerVM *vm, const char *name, GError **error);

typedef struct {
  VmAction action;
} VmActionData;

static gboolean
find_and_act (BangerCli *cli, const char *name, gpointer user_data, GError **error)
{
  VmActionData *data = user_data;
  g_autoptr (BangerVM) vm = banger_cli_find_vm (cli, name, error);

  return vm != NULL && data->action (vm, name, error);
}

/* Runs @action on every named VM, like `docker rm a b`: a failure is
 * reported and the rest still run; the last failure is returned. Names
 * that succeeded are printed, so scripts see what happened. */
static gboolean
for_each_vm (BangerCli *cli, char **args, VmAction action, GError **error)
{
  VmActionData data = { action };

  return banger_cli_for_each_name (cli, args, find_and_act, &data, error);
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
    annotate_vm_call (error, vm, name, WANT_RUNNING);
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
    annotate_vm_call (error, vm, name, WANT_RUNNING);
    return FALSE;
  }
  return TRUE;
}

static gboolean
action_kill (BangerVM *vm, const char *name, GError **error)
{
  if (!banger_vm_call_kill_sync (vm, NULL, error)) {
    annotate_vm_call (error, vm, name, WANT_RUNNING);
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

/* The guest command after NAME: option parsing stopped at NAME, so a "--"
 * after it is still there. */
static char **
command_after_name (char **args)
{
  if (args[0] == NULL)
    return args;
  return args[1] != NULL && g_str_equal (args[1], "--") ? args + 2 : args + 1;
}

static gboolean
exec_in_vm (BangerVM *vm, const char *name, const char *const *argv, gboolean tty, int *status,
            GError **error)
{
  BangerExecSpec spec = {
    .argv = argv,
    .env = (const char *const *)opt_env,
    .cwd = opt_workdir,
    .tty = tty,
  };

  if (!require_running (vm, name, error))
    return FALSE;
  if (!banger_cli_exec (vm, name, &spec, status, error)) {
    annotate_vm_call (error, vm, name, WANT_IN_USE);
    return FALSE;
  }
  return TRUE;
}

static gboolean
vm_exec (BangerCli *cli, char **args, GError **error)
{
  g_autoptr (BangerVM) vm = NULL;
  char **command;

  if (!banger_cli_check_args (cli, args, 1, G_MAXUINT, error))
    return FALSE;
  command = command_after_name (args);
  if (command[0] == NULL)
    return banger_cli_usage_error (cli, error, _ ("missing argument: %s"), _ ("COMMAND"));
  for (guint i = 0; opt_env != NULL && opt_env[i] != NULL; i++)
    if (strchr (opt_env[i], '=') == NULL || opt_env[i][0] == '=')
      return banger_cli_usage_error (cli, error, _ ("invalid value “%s” for --env (use KEY=VALUE)"),
                                     opt_env[i]);
  vm = banger_cli_find_vm (cli, args[0], error);
  if (vm == NULL)
    return FALSE;
  return exec_in_vm (vm, args[0], (const char *const *)command, opt_tty, &cli->exit_status, error);
}

/* GetSSHConfig: how OpenSSH reaches the guest. */
typedef struct {
  GVariant *config;
  const char *host, *user, *identity, *known_hosts, *alias;
  guint16 port;
  gboolean has_sshd;
} SshConfig;

static void
ssh_config_clear (SshConfig *c)
{
  g_clear_pointer (&c->config, g_variant_unref);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (SshConfig, ssh_config_clear)

static gboolean
get_ssh_config (BangerVM *vm, const char *name, SshConfig *c, GError **error)
{
  c->port = 22;
  c->user = "root";
  c->has_sshd = FALSE;
  if (!banger_vm_call_get_sshconfig_sync (vm, &c->config, NULL, error)) {
    annotate_vm_call (error, vm, name, WANT_IN_USE);
    return FALSE;
  }
  g_variant_lookup (c->config, "host", "&s", &c->host);
  g_variant_lookup (c->config, "port", "q", &c->port);
  g_variant_lookup (c->config, "user", "&s", &c->user);
  g_variant_lookup (c->config, "identity_file", "&s", &c->identity);
  g_variant_lookup (c->config, "known_hosts_file", "&s", &c->known_hosts);
  g_variant_lookup (c->config, "host_key_alias", "&s", &c->alias);
  g_variant_lookup (c->config, "has_sshd", "b", &c->has_sshd);
  if (c->host == NULL || c->host[0] == '\0')
    c->has_sshd = FALSE;
  return TRUE;
}

/* The argv of real OpenSSH for @c: banger's key only, and the VM's host
 * key pinned in banger's known_hosts under its alias, so there is never a
 * trust-on-first-use prompt and a changed key is refused. */
static GPtrArray *
ssh_argv (const SshConfig *c, char **command)
{
  GPtrArray *argv = g_ptr_array_new_with_free_func (g_free);

  g_ptr_array_add (argv, g_strdup ("ssh"));
  if (c->port != 22) {
    g_ptr_array_add (argv, g_strdup ("-p"));
    g_ptr_array_add (argv, g_strdup_printf ("%u", c->port));
  }
  if (c->identity != NULL) {
    g_ptr_array_add (argv, g_strdup ("-i"));
    g_ptr_array_add (argv, g_strdup (c->identity));
  }
  if (c->known_hosts != NULL) {
    g_ptr_array_add (argv, g_strdup ("-o"));
    g_ptr_array_add (argv, g_strdup_printf ("UserKnownHostsFile=%s", c->known_hosts));
  }
  if (c->alias != NULL) {
    g_ptr_array_add (argv, g_strdup ("-o"));
    g_ptr_array_add (argv, g_strdup_printf ("HostKeyAlias=%s", c->alias));
  }
  g_ptr_array_add (argv, g_strdup ("-o"));
  g_ptr_array_add (argv, g_strdup ("StrictHostKeyChecking=yes"));
  g_ptr_array_add (argv, g_strdup ("-o"));
  g_ptr_array_add (argv, g_strdup ("IdentitiesOnly=yes"));
  /* sshd may come up a moment after the agent answered Start: let ssh
   * retry a refused connection (once a second) instead of failing. */
  g_ptr_array_add (argv, g_strdup ("-o"));
  g_ptr_array_add (argv, g_strdup ("ConnectionAttempts=10"));
  /* "--": nothing after it is an ssh option, whatever the command says. */
  g_ptr_array_add (argv, g_strdup ("--"));
  g_ptr_array_add (argv, g_strdup_printf ("%s@%s", c->user, c->host));
  for (guint i = 0; command != NULL && command[i] != NULL; i++)
    g_ptr_array_add (argv, g_strdup (command[i]));
  g_ptr_array_add (argv, NULL);
  return argv;
}

static const char *const login_shell[] = { "/bin/sh", "-l", NULL };

/* Without sshd the agent's pty stands in: a login shell, or the command
 * (on a pty only when there is a terminal to drive it). */
static gboolean
exec_instead_of_ssh (BangerVM *vm, const char *name, char **command, int *status, GError **error)
{
  if (command == NULL || command[0] == NULL)
    return exec_in_vm (vm, name, login_shell, TRUE, status, error);
  return exec_in_vm (vm, name, (const char *const *)command, isatty (STDIN_FILENO), status, error);
}

static gboolean
vm_ssh (BangerCli *cli, char **args, GError **error)
{
  g_autoptr (BangerVM) vm = NULL;
  g_autoptr (GPtrArray) argv = NULL;
  g_auto (SshConfig) config = { 0 };
  char **command;

  if (!banger_cli_check_args (cli, args, 1, G_MAXUINT, error))
    return FALSE;
  command = command_after_name (args);
  vm = banger_cli_find_vm (cli, args[0], error);
  if (vm == NULL)
    return FALSE;
  if (!require_running (vm, args[0], error))
    return FALSE;
  if (!get_ssh_config (vm, args[0], &config, error))
    return FALSE;
  if (!config.has_sshd) {
    g_info ("VM “%s” has no sshd: using the agent's pty", args[0]);
    return exec_instead_of_ssh (vm, args[0], command, &cli->exit_status, error);
  }

  argv = ssh_argv (&config, command);
  /* ssh takes over the terminal: replace this process (argv, no shell). */
  fflush (stdout);
  execvp ("ssh", (char **)argv->pdata);
  g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errno),
               _ ("cannot run ssh: %s (install OpenSSH's client)"), g_strerror (errno));
  return FALSE;
}

/* ---- logs ---- */

typedef struct {
  GMainLoop *loop;
  GInputStream *in;
  GOutputStream *out;
  GError *error;
  gboolean stop;
} LogFollow;

static gboolean
copy_available (LogFollow *f)
{
  gssize n = g_output_stream_splice (f->out, f->in, G_OUTPUT_STREAM_SPLICE_NONE, NULL, &f->error);

  if (n < 0) {
    g_main_loop_quit (f->loop);
    return FALSE;
  }
  g_output_stream_flush (f->out, NULL, NULL);
  return TRUE;
}

static gboolean
on_log_event (gpointer data)
{
  LogFollow *f = data;

  copy_available (f);
  return G_SOURCE_CONTINUE;
}

static gboolean
on_inotify (int fd, GIOCondition condition, gpointer data)
{
  char buf[4096];

  /* The events only say "look again"; drain them. */
  while (read (fd, buf, sizeof buf) > 0)
    ;
  return on_log_event (data);
}

static void
on_log_vm_state (GObject *object, GParamSpec *pspec, gpointer data)
{
  LogFollow *f = data;

  /* Like `docker logs -f`: following ends when the VM stops. */
  if (!banger_cli_vm_state_is_running (banger_vm_get_state (BANGER_VM (object)))) {
    copy_available (f);
    g_main_loop_quit (f->loop);
  }
}

static gboolean
on_log_interrupt (gpointer data)
{
  LogFollow *f = data;

  g_main_loop_quit (f->loop);
  return G_SOURCE_CONTINUE;
}

/* Follows the console log: bangerd gave us a descriptor on a regular file,
 * where poll() always says "readable". inotify on /proc/self/fd/N watches
 * the file itself (the link is resolved at watch time), so new output
 * wakes us at once; a slow timer covers systems without inotify. */
static gboolean
follow_log (BangerVM *vm, int fd, GInputStream *in, GOutputStream *out, GError **error)
{
  LogFollow f = { 0 };
  g_autofree char *proc_path = g_strdup_printf ("/proc/self/fd/%d", fd);
  int ino;
  guint ino_source = 0, timer, sigint, sigterm;
  gulong handler;

  f.loop = g_main_loop_new (NULL, FALSE);
  f.in = in;
  f.out = out;

  ino = inotify_init1 (IN_NONBLOCK | IN_CLOEXEC);
  if (ino >= 0 && inotify_add_watch (ino, proc_path, IN_MODIFY) >= 0)
    ino_source = g_unix_fd_add (ino, G_IO_IN, on_inotify, &f);
  timer = g_timeout_add (ino_source != 0 ? 2000 : 250, on_log_event, &f);
  sigint = g_unix_signal_add (SIGINT, on_log_interrupt, &f);
  sigterm = g_unix_signal_add (SIGTERM, on_log_interrupt, &f);
  handler = g_signal_connect (vm, "notify::state", G_CALLBACK (on_log_vm_state), &f);

  if (banger_cli_vm_state_is_running (banger_vm_get_state (vm)))
    g_main_loop_run (f.loop);

  g_signal_handler_disconnect (vm, handler);
  g_source_remove (sigint);
  g_source_remove (sigterm);
  g_source_remove (timer);
  if (ino_source != 0)
    g_source_remove (ino_source);
  if (ino >= 0)
    close (ino);
  g_main_loop_unref (f.loop);
  if (f.error != NULL) {
    g_propagate_error (error, f.error);
    return FALSE;
  }
  return TRUE;
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
  if (g_output_stream_splice (out, in, G_OUTPUT_STREAM_SPLICE_NONE, NULL, error) < 0)
    return FALSE;
  g_output_stream_flush (out, NULL, NULL);
  if (!opt_follow)
    return TRUE;
  return follow_log (vm, fd, in, out, error);
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
  if (!require_running (vm, args[0], error))
    return FALSE;
  if (!banger_vm_call_get_stats_sync (vm, &stats, NULL, error)) {
    annotate_vm_call (error, vm, args[0], WANT_IN_USE);
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
  if (!require_running (vm, args[0], error))
    return FALSE;
  if (!banger_vm_call_list_ports_sync (vm, &ports, NULL, error)) {
    annotate_vm_call (error, vm, args[0], WANT_IN_USE);
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

/* ---- run ---- */

typedef struct {
  GError *error;
  gboolean starting;
  gboolean start_done;
  int interrupted;
} RunState;

static void
on_run_started (GObject *source, GAsyncResult *res, gpointer data)
{
  RunState *r = data;

  banger_vm_call_start_finish (BANGER_VM (source), res, &r->error);
  r->start_done = TRUE;
}

static gboolean
on_run_signal (RunState *r, int signum)
{
  /* While the command runs, exec forwards signals to it; here only the
   * boot can be interrupted, and the VM is removed once Start returns
   * (bangerd cannot remove a VM in the middle of booting it). */
  if (r->starting && r->interrupted == 0) {
    r->interrupted = signum;
    fprintf (stderr, "%s\n", _ ("Interrupted: removing the VM once its boot has stopped…"));
  }
  return G_SOURCE_CONTINUE;
}

static gboolean
on_run_sigint (gpointer data)
{
  return on_run_signal (data, SIGINT);
}

static gboolean
on_run_sigterm (gpointer data)
{
  return on_run_signal (data, SIGTERM);
}

static gboolean
run_start (BangerVM *vm, const char *name, RunState *r, GError **error)
{
  g_auto (GVariantBuilder) options = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE_VARDICT);

  JobWatch watch = { 0 };

  g_dbus_proxy_set_default_timeout (G_DBUS_PROXY (vm), START_TIMEOUT_MS);
  r->starting = TRUE;
  job_watch_init (&watch, vm);
  banger_vm_call_start (vm, g_variant_builder_end (&options), NULL, on_run_started, r);
  job_watch_wait (&watch, &r->start_done);
  job_watch_clear (&watch);
  r->starting = FALSE;
  if (r->error != NULL) {
    g_propagate_error (error, g_steal_pointer (&r->error));
    annotate_vm_call (error, vm, name, WANT_STOPPED);
    return FALSE;
  }
  if (r->interrupted != 0) {
    g_set_error (error, BANGER_CLI_ERROR, BANGER_CLI_ERROR_INTERRUPTED,
                 _ ("interrupted; VM “%s” was removed"), name);
    return FALSE;
  }
  warn_if_no_network (vm, name);
  return TRUE;
}

/* Runs OpenSSH as a child (not exec: the VM must be removed after it). */
static gboolean
run_ssh (const SshConfig *config, int *status, GError **error)
{
  g_autoptr (GPtrArray) argv = ssh_argv (config, NULL);
  g_autoptr (GSubprocess) ssh = NULL;

  /* GSubprocess gives a child /dev/null as stdin unless told otherwise:
   * the login needs this terminal. */
  ssh = g_subprocess_newv ((const char *const *)argv->pdata, G_SUBPROCESS_FLAGS_STDIN_INHERIT,
                          error);
  if (ssh == NULL) {
    g_prefix_error (error, _ ("cannot run ssh: "));
    return FALSE;
  }
  if (!g_subprocess_wait (ssh, NULL, error))
    return FALSE;
  if (g_subprocess_get_if_signaled (ssh))
    *status = 128 + g_subprocess_get_term_sig (ssh);
  else
    *status = g_subprocess_get_exit_status (ssh);
  return TRUE;
}

static void
remove_vm (BangerVM *vm, const char *name)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) reply = NULL;
  g_auto (GVariantBuilder) options = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE_VARDICT);

  g_variant_builder_add (&options, "{sv}", "force", g_variant_new_boolean (TRUE));
  /* Through the connection rather than the proxy: if bangerd went away
   * meanwhile, this call starts it again (the VM proxy never
   * auto-starts), and the VM it reconciles is still removed. */
  reply = g_dbus_connection_call_sync (
      g_dbus_proxy_get_connection (G_DBUS_PROXY (vm)), "org.banger.Manager",
      g_dbus_proxy_get_object_path (G_DBUS_PROXY (vm)), "org.banger.VM", "Delete",
      g_variant_new ("(a{sv})", &options), NULL, G_DBUS_CALL_FLAGS_NONE, START_TIMEOUT_MS, NULL,
      &error);
  if (reply == NULL) {
    banger_cli_error_annotate_vm (&error, name);
    fprintf (stderr, _ ("banger: could not remove VM “%s”: %s\n"), name, error->message);
  }
}

/* `vm run --image REF`: REF is used as it is when an image has that name
 * or it is the default image (built on first use). Otherwise an image
 * pulled from REF before is reused (matched by its Source), and failing
 * that REF is pulled now, with its progress shown, and the VM boots the
 * new image. A plain word that is not a registered image is pulled too:
 * bangerd looks it up in the catalog, then on Docker Hub. */
static gboolean
resolve_run_image (BangerCli *cli, GError **error)
{
  g_autoptr (BangerImage) image = NULL;
  g_autoptr (GError) local = NULL;
  g_autofree char *pulled = NULL;
  BangerPullOptions options = { 0 };
  BangerManager *manager;

  if (opt_image == NULL)
    return TRUE;
  image = banger_cli_find_image (cli, opt_image, &local);
  if (image != NULL)
    return TRUE;
  if (!g_error_matches (local, BANGER_ERROR, BANGER_ERROR_NOT_FOUND)) {
    g_propagate_error (error, g_steal_pointer (&local));
    return FALSE;
  }
  g_clear_error (&local);
  manager = banger_cli_get_manager (cli, error);
  if (manager == NULL)
    return FALSE;
  if (g_strcmp0 (opt_image, banger_manager_get_default_image (manager)) == 0)
    return TRUE;
  pulled = banger_cli_find_pulled_image (cli, opt_image);
  if (pulled != NULL) {
    g_info ("“%s” was pulled before as image “%s”", opt_image, pulled);
  } else {
    fprintf (stderr, _ ("No image named “%s”: pulling it…\n"), opt_image);
    if (!banger_cli_pull_image (cli, opt_image, &options, BANGER_PROGRESS_AUTO, &pulled, &local)) {
      /* A plain word may just be a mistyped image name: say both. */
      if (!banger_cli_looks_like_reference (opt_image)
          && !g_error_matches (local, BANGER_CLI_ERROR, BANGER_CLI_ERROR_INTERRUPTED)
          && !g_error_matches (local, BANGER_CLI_ERROR, BANGER_CLI_ERROR_UNREACHABLE))
        g_prefix_error (&local, _ ("no image named “%s” is registered; "), opt_image);
      g_propagate_error (error, g_steal_pointer (&local));
      return FALSE;
    }
  }
  g_free (opt_image);
  opt_image = g_steal_pointer (&pulled);
  return TRUE;
}

/* The run configuration of the image @vm boots; FALSE when it names no
 * command (or the image is gone). */
static gboolean
image_run_config (BangerCli *cli, BangerVM *vm, BangerRunConfig *rc)
{
  g_autoptr (BangerImage) image = NULL;
  g_autoptr (GError) local = NULL;
  const char *name = banger_vm_get_image (vm);

  memset (rc, 0, sizeof *rc);
  if (name == NULL || name[0] == '\0')
    return FALSE;
  image = banger_cli_find_image (cli, name, &local);
  if (image == NULL) {
    g_debug ("image %s: %s", name, local->message);
    return FALSE;
  }
  return banger_run_config_parse (banger_image_get_config (image), rc);
}

/* Runs the image's own command as Docker would: entrypoint + cmd, with
 * the image's environment and working directory, as its user. */
static gboolean
run_image_command (BangerVM *vm, const char *name, const BangerRunConfig *rc, int *status,
                   GError **error)
{
  g_auto (GStrv) argv = NULL;
  BangerExecSpec spec = { 0 };

  if (!require_running (vm, name, error))
    return FALSE;
  argv = rc->user != NULL ? banger_run_config_user_argv (vm, name, rc) : g_strdupv (rc->argv);
  {
    g_autofree char *joined = g_strjoinv (" ", argv);

    g_info ("running the image's command: %s", joined);
  }
  spec.argv = (const char *const *)argv;
  spec.env = (const char *const *)rc->env;
  spec.cwd = rc->workdir;
  spec.tty = isatty (STDIN_FILENO) && isatty (STDOUT_FILENO);
  if (!banger_cli_exec (vm, name, &spec, status, error)) {
    annotate_vm_call (error, vm, name, WANT_IN_USE);
    return FALSE;
  }
  return TRUE;
}

/* The interactive login of `vm run PATH` without a command, in the
 * shipped tree @dir: OpenSSH with a remote command that changes to it and
 * starts the user's login shell when the image has sshd, the agent's pty
 * with @dir as working directory otherwise. */
static gboolean
login_in_dir (BangerVM *vm, const char *name, const char *dir, int *status, GError **error)
{
  g_auto (SshConfig) config = { 0 };
  g_autoptr (GPtrArray) argv = NULL;
  g_autoptr (GSubprocess) ssh = NULL;
  g_autofree char *quoted = NULL;
  g_autofree char *remote = NULL;
  char *command[2] = { NULL, NULL };

  if (!get_ssh_config (vm, name, &config, error))
    return FALSE;
  if (!config.has_sshd)
    return exec_in_vm (vm, name, login_shell, TRUE, status, error);
  /* ssh hands a command to the remote user's shell as one string: the
   * directory is quoted for it, nothing else comes from outside. */
  quoted = g_shell_quote (dir);
  remote = g_strdup_printf ("cd %s && exec \"${SHELL:-/bin/sh}\" -l", quoted);
  command[0] = remote;
  argv = ssh_argv (&config, command);
  /* -t: a terminal for the shell even though a command is given. */
  g_ptr_array_insert (argv, 1, g_strdup ("-t"));
  /* GSubprocess gives a child /dev/null as stdin unless told otherwise:
   * the login needs this terminal. */
  ssh = g_subprocess_newv ((const char *const *)argv->pdata, G_SUBPROCESS_FLAGS_STDIN_INHERIT,
                          error);
  if (ssh == NULL) {
    g_prefix_error (error, _ ("cannot run ssh: "));
    return FALSE;
  }
  if (!g_subprocess_wait (ssh, NULL, error))
    return FALSE;
  if (g_subprocess_get_if_signaled (ssh))
    *status = 128 + g_subprocess_get_term_sig (ssh);
  else
    *status = g_subprocess_get_exit_status (ssh);
  return TRUE;
}

/* `vm run --repo`: push, run the command in the shipped tree, then save
 * the guest's changes as a patch before the VM is removed. */
static gboolean
run_with_repo (BangerVM *vm, const char *name, const char *const *command, int *status,
               GError **error)
{
  g_autofree char *guest_dir = NULL;
  g_autofree char *saved = NULL;
  g_autoptr (GBytes) patch = NULL;
  gboolean ok;

  if (!require_running (vm, name, error))
    return FALSE;
  if (!banger_repo_push (vm, name, opt_repo, NULL, &guest_dir, error))
    return FALSE;
  g_free (opt_workdir);
  opt_workdir = g_strdup (guest_dir);
  if (command != NULL && command[0] != NULL)
    ok = exec_in_vm (vm, name, command, isatty (STDIN_FILENO) && isatty (STDOUT_FILENO), status,
                     error);
  else
    ok = login_in_dir (vm, name, guest_dir, status, error);
  if (ok) {
    patch = banger_repo_diff (vm, name, opt_repo, error);
    ok = patch != NULL && banger_repo_save_patch (opt_repo, name, patch, &saved, error);
    if (ok)
      fprintf (stderr, _ ("The changes made in VM “%s” are saved in %s\n"), name, saved);
  }
  banger_repo_forget (opt_repo, name);
  return ok;
}

static gboolean
vm_run (BangerCli *cli, char **args, GError **error)
{
  g_autoptr (BangerVM) vm = NULL;
  g_autofree char *name = NULL;
  RunState r = { 0 };
  guint sigint, sigterm;
  gboolean ok = FALSE;
  char **command = args;

  /* `vm run PATH [-- CMD…]`: a first argument before any "--" is the
   * repository to ship (what `--repo=PATH` says); `vm run -- CMD…` runs
   * CMD without one. */
  if (!cli->dashdash_first && args[0] != NULL) {
    if (opt_repo != NULL)
      return banger_cli_usage_error (
          cli, error, _ ("give the repository once: as PATH or as --repo, not both (“%s”)"),
          args[0]);
    opt_repo = g_strdup (args[0]);
    command = args[1] != NULL && g_str_equal (args[1], "--") ? args + 2 : args + 1;
  }
  /* Before any VM exists: a path that cannot be shipped leaves nothing. */
  if (opt_repo != NULL && !banger_repo_check (opt_repo, error))
    return FALSE;

  if (opt_name != NULL) {
    name = g_strdup (opt_name);
    if (!banger_validate_name ("VM", name, error))
      return FALSE;
  }
  /* Before the VM exists: Ctrl-C during a pull cancels the pull's job. */
  if (!resolve_run_image (cli, error))
    return FALSE;

  /* From here on a signal must not kill banger before it has removed
   * what it made. */
  sigint = g_unix_signal_add (SIGINT, on_run_sigint, &r);
  sigterm = g_unix_signal_add (SIGTERM, on_run_sigterm, &r);

  for (int attempt = 0; vm == NULL; attempt++) {
    g_autoptr (GError) local = NULL;

    if (opt_name == NULL) {
      g_free (name);
      name = g_strdup_printf ("run-%06x", g_random_int () & 0xffffff);
    }
    vm = create_vm (cli, name, &local);
    if (vm != NULL)
      break;
    /* A generated name that happens to be taken: draw another. */
    if (opt_name != NULL || attempt >= 3
        || !g_error_matches (local, BANGER_ERROR, BANGER_ERROR_EXISTS)) {
      g_propagate_error (error, g_steal_pointer (&local));
      goto out;
    }
  }
  g_info ("created VM “%s”", name);

  if (!run_start (vm, name, &r, error))
    goto removal;

  if (opt_repo != NULL) {
    /* With or without a command: a login runs in the shipped tree too. */
    ok = run_with_repo (vm, name, (const char *const *)command, &cli->exit_status, error);
  } else if (command[0] != NULL) {
    /* A pty only when there is a terminal on both ends to drive it;
     * otherwise stdout and stderr stay apart for scripts. */
    ok = exec_in_vm (vm, name, (const char *const *)command,
                     isatty (STDIN_FILENO) && isatty (STDOUT_FILENO), &cli->exit_status, error);
  } else {
    g_auto (SshConfig) config = { 0 };
    g_auto (BangerRunConfig) rc = { 0 };

    if (image_run_config (cli, vm, &rc)) {
      ok = run_image_command (vm, name, &rc, &cli->exit_status, error);
    } else if (get_ssh_config (vm, name, &config, error)) {
      if (config.has_sshd)
        ok = run_ssh (&config, &cli->exit_status, error);
      else
        ok = exec_instead_of_ssh (vm, name, NULL, &cli->exit_status, error);
    }
  }

removal:
  remove_vm (vm, name);
out:
  g_source_remove (sigint);
  g_source_remove (sigterm);
  return ok;
}

/* ---- the table ---- */

#define VM_ARGS BANGER_COMMAND_FLAG_VM_ARGS
#define LEAF(name, summary, params, options, handler, flags)                                       \
  static const BangerCommand vm_##handler##_command                                                \
      = { name, summary, params, options, vm_##handler, NULL, flags }

LEAF ("create", N_ ("Create a VM (it is not started)"), N_ ("NAME"), create_options, create, 0);
LEAF ("run",
      N_ ("Create and start a VM, ship PATH (a git work tree) into it, run a command or a shell "
          "there, then remove it"),
      N_ ("[PATH] [-- COMMAND [ARG…]]"), run_options, run, BANGER_COMMAND_FLAG_STOP_AT_ARGS);
LEAF ("list", N_ ("List all VMs"), NULL, list_options, list, 0);
LEAF ("ps", N_ ("List running VMs (all with -a)"), NULL, list_options, ps, 0);
/* `banger ps`, the seed's (and docker's) top-level name for `vm ps`: the
 * same handler and options in a row of the root table. */
const BangerCommand banger_ps_command = {
  "ps", N_ ("Alias of “banger vm ps”"), NULL, list_options, vm_ps, NULL, BANGER_COMMAND_FLAG_ALIAS,
};
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
LEAF ("ssh", N_ ("Log in to a VM with ssh"), N_ ("NAME [--] [COMMAND [ARG…]]"), no_options, ssh,
      VM_ARGS | BANGER_COMMAND_FLAG_STOP_AT_ARGS);
LEAF ("logs", N_ ("Print a VM's console log"), N_ ("NAME"), logs_options, logs, VM_ARGS);
LEAF ("stats", N_ ("Show a VM's resource use"), N_ ("NAME"), json_options, stats, VM_ARGS);
LEAF ("ports", N_ ("List the ports a VM listens on"), N_ ("NAME"), json_options, ports, VM_ARGS);

static const BangerCommand *const vm_subcommands[] = {
  &vm_create_command,      &vm_run_command,         &vm_list_command,
  &vm_ps_command,          &vm_show_command,        &vm_rm_command,
  &vm_prune_command,       &vm_start_command,       &vm_stop_command,
  &vm_restart_command,     &vm_kill_command,        &vm_exec_command,
  &vm_ssh_command,         &vm_logs_command,        &vm_stats_command,
  &vm_ports_command,       &banger_vm_cp_command,   &banger_vm_push_command,
  &banger_vm_diff_command, &banger_vm_pull_command, &banger_vm_workspace_command,
  NULL,
};

const BangerCommand banger_vm_command = {
  "vm", N_ ("Create, run and remove VMs"), NULL, NULL, NULL, vm_subcommands, 0,
};
