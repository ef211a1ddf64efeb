/* `banger vm`: the command table of every `vm` verb, and the verbs that
 * make, list and drive VMs (create, list, ps, show, rm, prune, start,
 * stop, restart, kill) with the helpers the other cmd-vm-*.c files share
 * through cmd-vm-private.h: creating a VM, the sentence for a VM in the
 * wrong state, following the jobs a start waits for, the no-network
 * warning. `vm run` is in cmd-vm-run.c, exec and ssh in cmd-vm-shell.c,
 * logs, stats and ports in cmd-vm-logs.c. */

#include "config.h"

#include <glib/gi18n.h>
#include <stdio.h>

#include "banger-error.h"
#include "cli.h"
#include "cmd-common.h"
#include "cmd-vm-private.h"
#include "errors.h"
#include "job-progress.h"
#include "output-table.h"
#include "output-time.h"
#include "parse-size.h"
#include "repo.h"
#include "validate.h"
#include "vm-row.h"

/* Option storage. Only one command runs per process, so commands that share
 * an option (--json) share its variable. */
gboolean banger_cli_vm_opt_json;
static gboolean opt_all;
static gboolean opt_names;
static gboolean opt_force;
char *banger_cli_vm_opt_image;
char *banger_cli_vm_opt_kernel;
char *banger_cli_vm_opt_driver;
gboolean banger_cli_vm_opt_cold;

GVariant *
banger_cli_vm_start_options (void)
{
  g_auto (GVariantBuilder) options = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE_VARDICT);

  if (banger_cli_vm_opt_cold)
    g_variant_builder_add (&options, "{sv}", "warm", g_variant_new_boolean (FALSE));
  return g_variant_builder_end (&options);
}
static guint opt_cpus;
static guint opt_memory_mib;
static guint opt_disk_mib;
static int opt_timeout = -1;

gboolean
banger_cli_vm_parse_cpus (const char *option_name, const char *value, gpointer data, GError **error)
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

gboolean
banger_cli_vm_parse_memory (const char *option_name, const char *value, gpointer data,
                            GError **error)
{
  return banger_parse_size_mib (option_name, value, &opt_memory_mib, error);
}

gboolean
banger_cli_vm_parse_disk (const char *option_name, const char *value, gpointer data, GError **error)
{
  return banger_parse_size_mib (option_name, value, &opt_disk_mib, error);
}

static const GOptionEntry create_options[] = {
  { "image", 0, 0, G_OPTION_ARG_STRING, &banger_cli_vm_opt_image,
    N_ ("Image to boot (default: the manager's)"), N_ ("IMAGE") },
  { "kernel", 0, 0, G_OPTION_ARG_STRING, &banger_cli_vm_opt_kernel,
    N_ ("Kernel (default: the image's)"), N_ ("KERNEL") },
  { "cpus", 0, 0, G_OPTION_ARG_CALLBACK, banger_cli_vm_parse_cpus, N_ ("Number of virtual CPUs"),
    N_ ("N") },
  { "memory", 0, 0, G_OPTION_ARG_CALLBACK, banger_cli_vm_parse_memory,
    N_ ("Memory, in MiB or with a unit (512M, 2G)"), N_ ("SIZE") },
  { "disk", 0, 0, G_OPTION_ARG_CALLBACK, banger_cli_vm_parse_disk,
    N_ ("Disk size, in MiB or with a unit"), N_ ("SIZE") },
  { "driver", 0, 0, G_OPTION_ARG_STRING, &banger_cli_vm_opt_driver,
    N_ ("VMM driver: qemu or firecracker"), N_ ("DRIVER") },
  { NULL },
};

static const GOptionEntry list_options[] = {
  { "json", 0, 0, G_OPTION_ARG_NONE, &banger_cli_vm_opt_json, N_ ("Print JSON"), NULL },
  { "all", 'a', 0, G_OPTION_ARG_NONE, &opt_all, N_ ("Show all VMs, not only running ones"), NULL },
  /* For shell completion: one name per line, every VM. */
  { "names", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_NONE, &opt_names, N_ ("Print names only"),
    NULL },
  { NULL },
};

static const GOptionEntry json_options[] = {
  { "json", 0, 0, G_OPTION_ARG_NONE, &banger_cli_vm_opt_json, N_ ("Print JSON"), NULL },
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

static const GOptionEntry no_options[] = { { NULL } };

static const GOptionEntry start_options[] = {
  { "cold", 0, 0, G_OPTION_ARG_NONE, &banger_cli_vm_opt_cold,
    N_ ("Boot the guest, even where a snapshot of a booted one could be restored (warm start)"),
    NULL },
  { NULL },
};

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
    const BangerVmRow *vm = g_ptr_array_index (vms, i);
    g_autofree char *cpus = g_strdup_printf ("%u", vm->vcpus);
    g_autofree char *memory = format_mib (vm->memory_mib);
    g_autofree char *disk = format_mib (vm->disk_mib);
    g_autofree char *created = banger_format_time_ago (vm->created_at, now);

    banger_table_add_row (table, vm->name, vm->state, vm->image, cpus, memory, disk, vm->ipv4,
                          created);
  }
  banger_table_print (table, stdout);
}

/* ---- create ---- */

BangerVM *
banger_cli_vm_create_vm (BangerCli *cli, const char *name, GError **error)
{
  BangerManager *manager;
  g_auto (GVariantBuilder) spec = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE_VARDICT);
  g_autofree char *path = NULL;

  /* The same rules bangerd applies, checked here so the message comes
   * before any bus traffic and names the name. */
  if (!banger_validate_name ("VM", name, error))
    return NULL;

  g_variant_builder_add (&spec, "{sv}", "name", g_variant_new_string (name));
  if (banger_cli_vm_opt_image != NULL)
    g_variant_builder_add (&spec, "{sv}", "image", g_variant_new_string (banger_cli_vm_opt_image));
  if (banger_cli_vm_opt_kernel != NULL)
    g_variant_builder_add (&spec, "{sv}", "kernel",
                           g_variant_new_string (banger_cli_vm_opt_kernel));
  if (banger_cli_vm_opt_driver != NULL)
    g_variant_builder_add (&spec, "{sv}", "driver",
                           g_variant_new_string (banger_cli_vm_opt_driver));
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
  vm = banger_cli_vm_create_vm (cli, args[0], error);
  if (vm == NULL)
    return FALSE;
  printf ("%s\n", banger_vm_get_name (vm));
  return TRUE;
}

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
  case WANT_SUSPENDED:
    if (!g_str_equal (state, "suspended"))
      /* TRANSLATORS: the second %s is a state: running, stopped… */
      return g_strdup_printf (_ ("VM “%s” is not suspended (it is %s)"), name, state);
    return NULL;
  case WANT_IN_USE:
    if (g_str_equal (state, "suspended"))
      return g_strdup_printf (_ ("VM “%s” is suspended; resume it with “banger vm resume %s”"),
                              name, name);
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
void
banger_cli_vm_annotate_vm_call (GError **error, BangerVM *vm, const char *name, StateWanted wanted)
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
gboolean
banger_cli_vm_require_running (BangerVM *vm, const char *name, GError **error)
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
void
banger_cli_vm_job_watch_init (JobWatch *w, BangerVM *vm)
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

void
banger_cli_vm_job_watch_clear (JobWatch *w)
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
void
banger_cli_vm_job_watch_wait (JobWatch *w, const gboolean *done)
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
void
banger_cli_vm_warn_if_no_network (BangerVM *vm, const char *name)
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
  JobWatch watch = { 0 };
  StartCall call = { 0 };

  g_dbus_proxy_set_default_timeout (G_DBUS_PROXY (vm), START_TIMEOUT_MS);
  banger_cli_vm_job_watch_init (&watch, vm);
  banger_vm_call_start (vm, banger_cli_vm_start_options (), NULL, on_start_done, &call);
  banger_cli_vm_job_watch_wait (&watch, &call.done);
  banger_cli_vm_job_watch_clear (&watch);
  if (call.error != NULL) {
    g_propagate_error (error, call.error);
    banger_cli_vm_annotate_vm_call (error, vm, name, WANT_STOPPED);
    return FALSE;
  }
  banger_cli_vm_warn_if_no_network (vm, name);
  return TRUE;
}

/* ---- list / ps / show ---- */

static gboolean
list_vms (BangerCli *cli, gboolean running_only, GError **error)
{
  g_autoptr (GPtrArray) all = NULL;
  g_autoptr (GPtrArray) shown = g_ptr_array_new ();

  all = banger_cli_list_vm_rows (cli, banger_cli_vm_opt_json, error);
  if (all == NULL)
    return FALSE;
  for (guint i = 0; i < all->len; i++) {
    BangerVmRow *vm = g_ptr_array_index (all, i);

    if (!running_only || banger_cli_vm_state_is_running (vm->state))
      g_ptr_array_add (shown, vm);
  }
  if (opt_names) {
    for (guint i = 0; i < shown->len; i++) {
      const BangerVmRow *vm = g_ptr_array_index (shown, i);

      printf ("%s\n", vm->name != NULL ? vm->name : "(null)");
    }
  } else if (banger_cli_vm_opt_json) {
    g_autoptr (GPtrArray) properties = g_ptr_array_new ();

    for (guint i = 0; i < shown->len; i++)
      g_ptr_array_add (properties, ((BangerVmRow *)g_ptr_array_index (shown, i))->properties);
    banger_cli_print_json_vardicts (banger_vm_interface_info (), properties);
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
  if (banger_cli_vm_opt_json) {
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
  if (banger_vm_get_ipv4 (vm)[0] == '\0'
      && banger_cli_vm_state_is_running (banger_vm_get_state (vm))) {
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
  gboolean call_only; /* @action reads no cached property of the VM */
} VmActionData;

static gboolean
find_and_act (BangerCli *cli, const char *name, gpointer user_data, GError **error)
{
  VmActionData *data = user_data;
  g_autoptr (BangerVM) vm = data->call_only ? banger_cli_find_vm_to_call (cli, name, error)
                                            : banger_cli_find_vm (cli, name, error);

  return vm != NULL && data->action (vm, name, error);
}

/* Runs @action on every named VM, like `docker rm a b`: a failure is
 * reported and the rest still run; the last failure is returned. Names
 * that succeeded are printed, so scripts see what happened. */
static gboolean
for_each_vm (BangerCli *cli, char **args, VmAction action, GError **error)
{
  VmActionData data = { action, FALSE };

  return banger_cli_for_each_name (cli, args, find_and_act, &data, error);
}

/* The same for an @action that only calls a method (and reads the state
 * live when it explains an error). */
static gboolean
for_each_vm_call (BangerCli *cli, char **args, VmAction action, GError **error)
{
  VmActionData data = { action, TRUE };

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
    banger_cli_vm_annotate_vm_call (error, vm, name, WANT_RUNNING);
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
    banger_cli_vm_annotate_vm_call (error, vm, name, WANT_RUNNING);
    return FALSE;
  }
  return TRUE;
}

static gboolean
action_kill (BangerVM *vm, const char *name, GError **error)
{
  if (!banger_vm_call_kill_sync (vm, NULL, error)) {
    banger_cli_vm_annotate_vm_call (error, vm, name, WANT_RUNNING);
    return FALSE;
  }
  return TRUE;
}

/* Saving a big guest's memory to a slow disk takes a while. */
#define SUSPEND_TIMEOUT_MS (10 * 60 * 1000)

static gboolean
action_suspend (BangerVM *vm, const char *name, GError **error)
{
  g_dbus_proxy_set_default_timeout (G_DBUS_PROXY (vm), SUSPEND_TIMEOUT_MS);
  if (!banger_vm_call_suspend_sync (vm, NULL, error)) {
    banger_cli_vm_annotate_vm_call (error, vm, name, WANT_RUNNING);
    return FALSE;
  }
  return TRUE;
}

static gboolean
action_resume (BangerVM *vm, const char *name, GError **error)
{
  g_auto (GVariantBuilder) options = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE_VARDICT);

  g_dbus_proxy_set_default_timeout (G_DBUS_PROXY (vm), START_TIMEOUT_MS);
  if (!banger_vm_call_resume_sync (vm, g_variant_builder_end (&options), NULL, error)) {
    banger_cli_vm_annotate_vm_call (error, vm, name, WANT_SUSPENDED);
    return FALSE;
  }
  return TRUE;
}

static gboolean
vm_suspend (BangerCli *cli, char **args, GError **error)
{
  return for_each_vm_call (cli, args, action_suspend, error);
}

static gboolean
vm_resume (BangerCli *cli, char **args, GError **error)
{
  return for_each_vm_call (cli, args, action_resume, error);
}

static gboolean
vm_rm (BangerCli *cli, char **args, GError **error)
{
  return for_each_vm_call (cli, args, action_delete, error);
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
  return for_each_vm_call (cli, args, action_stop, error);
}

static gboolean
vm_restart (BangerCli *cli, char **args, GError **error)
{
  return for_each_vm_call (cli, args, action_restart, error);
}

static gboolean
vm_kill (BangerCli *cli, char **args, GError **error)
{
  return for_each_vm_call (cli, args, action_kill, error);
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

/* ---- the table ---- */

#define VM_ARGS BANGER_COMMAND_FLAG_VM_ARGS
#define LEAF(name, summary, params, options, handler, flags)                                       \
  static const BangerCommand vm_##handler##_command                                                \
      = { name, summary, params, options, vm_##handler, NULL, flags }
/* A row whose handler is in cmd-vm-run.c, cmd-vm-shell.c or cmd-vm-logs.c. */
#define LEAF_ELSEWHERE(name, summary, params, options, handler, flags)                             \
  static const BangerCommand vm_##handler##_command                                                \
      = { name, summary, params, options, banger_cli_vm_cmd_##handler, NULL, flags }

LEAF ("create", N_ ("Create a VM (it is not started)"), N_ ("NAME"), create_options, create, 0);
LEAF_ELSEWHERE ("run",
                N_ ("Create and start a VM, ship PATH (a git work tree) into it, run a command or "
                    "a shell there, then remove it"),
                N_ ("[PATH] [-- COMMAND [ARG…]]"), banger_cli_vm_run_options, run,
                BANGER_COMMAND_FLAG_STOP_AT_ARGS);
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
LEAF ("start", N_ ("Start VMs"), N_ ("NAME…"), start_options, start, VM_ARGS);
LEAF ("stop", N_ ("Stop VMs cleanly (forcing them after a timeout)"), N_ ("NAME…"), stop_options,
      stop, VM_ARGS);
LEAF ("restart", N_ ("Restart VMs"), N_ ("NAME…"), no_options, restart, VM_ARGS);
LEAF ("kill", N_ ("Kill VMs at once"), N_ ("NAME…"), no_options, kill, VM_ARGS);
LEAF ("suspend", N_ ("Save running VMs' memory to disk and end their VMMs"), N_ ("NAME…"),
      no_options, suspend, VM_ARGS);
LEAF ("resume", N_ ("Resume suspended VMs where they were"), N_ ("NAME…"), no_options, resume,
      VM_ARGS);
LEAF_ELSEWHERE ("exec", N_ ("Run a command in a VM"), N_ ("NAME [--] COMMAND [ARG…]"),
                banger_cli_vm_exec_options, exec, VM_ARGS | BANGER_COMMAND_FLAG_STOP_AT_ARGS);
LEAF_ELSEWHERE ("ssh", N_ ("Log in to a VM with ssh"), N_ ("NAME [--] [COMMAND [ARG…]]"),
                no_options, ssh, VM_ARGS | BANGER_COMMAND_FLAG_STOP_AT_ARGS);
LEAF_ELSEWHERE ("logs", N_ ("Print a VM's console log"), N_ ("NAME"), banger_cli_vm_logs_options,
                logs, VM_ARGS);
LEAF_ELSEWHERE ("stats", N_ ("Show a VM's resource use"), N_ ("NAME"), json_options, stats,
                VM_ARGS);
LEAF_ELSEWHERE ("ports", N_ ("List the ports a VM listens on"), N_ ("NAME"), json_options, ports,
                VM_ARGS);

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
  &vm_suspend_command,
  &vm_resume_command,
  &vm_exec_command,
  &vm_ssh_command,
  &vm_logs_command,
  &vm_stats_command,
  &vm_ports_command,
  &banger_vm_cp_command,
  &banger_vm_push_command,
  &banger_vm_diff_command,
  &banger_vm_pull_command,
  &banger_vm_workspace_command,
  NULL,
};

const BangerCommand banger_vm_command = {
  "vm", N_ ("Create, run and remove VMs"), NULL, NULL, NULL, vm_subcommands, 0,
};
