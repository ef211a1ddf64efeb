/* `banger update`: the client's half of the self-update (docs/update.md).
 * bangerd's Update job downloads, verifies and stages. The swap is asked
 * for here, with the text polkit agent registered, so the administrator's
 * password is typed in this terminal (bangerd has no agent in any
 * session); the restart, the doctor (the new bangerd and the new
 * bangerd-root) and the commit or rollback are done here too, because the
 * daemon that ran the job is one of the programs being replaced. */

#include "config.h"

#include <errno.h>
#include <glib/gi18n.h>
#include <signal.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <poll.h>
#include <unistd.h>

#include "banger-error.h"
#include "bus-name.h"
#include "cli.h"
#include "errors.h"
#include "install-config.h"
#include "job-progress.h"
#include "paths.h"
#include "polkit-agent.h"
#include "remove-tree.h"

#define MANAGER_NAME       "org.banger.Manager"
#define MANAGER_PATH       "/org/banger/Manager"
#define HELPER_NAME        "org.banger.Helper"
#define HELPER_PATH        "/org/banger/Helper"
#define RESTART_TIMEOUT_MS 10000

static gboolean opt_check;
static char *opt_to;
static gboolean opt_dry_run;
static gboolean opt_force;
static gboolean opt_quiet;
static char *opt_progress;

static const GOptionEntry update_options[] = {
  { "check", 0, 0, G_OPTION_ARG_NONE, &opt_check, N_ ("Only say whether an update is available"),
    NULL },
  { "to", 0, 0, G_OPTION_ARG_STRING, &opt_to, N_ ("Install this version instead of the latest"),
    N_ ("VERSION") },
  { "dry-run", 0, 0, G_OPTION_ARG_NONE, &opt_dry_run,
    N_ ("Show what would be installed, from where, and what restarted; download only the signed "
        "file list"),
    NULL },
  { "force", 0, 0, G_OPTION_ARG_NONE, &opt_force, N_ ("Update even while VM operations run"),
    NULL },
  { "quiet", 'q', 0, G_OPTION_ARG_NONE, &opt_quiet, N_ ("Show no progress"), NULL },
  { "progress", 0, 0, G_OPTION_ARG_STRING, &opt_progress,
    N_ ("How to show progress: auto, bar, plain or none"), N_ ("MODE") },
  { NULL },
};

/* Doctor's rows as id → status; NULL (with @error) when bangerd does not
 * answer. Auto-starts bangerd, which after a swap is the new one. */
static GHashTable *
doctor_statuses (GDBusConnection *session, GError **error)
{
  g_autoptr (GVariant) reply = NULL;
  g_autoptr (GVariant) checks = NULL;
  GHashTable *out;
  GVariantIter iter;
  const char *id, *status;

  reply = g_dbus_connection_call_sync (session, MANAGER_NAME, MANAGER_PATH, MANAGER_NAME, "Doctor",
                                       NULL, G_VARIANT_TYPE ("(a(ssss))"), G_DBUS_CALL_FLAGS_NONE,
                                       60000, NULL, error);
  if (reply == NULL)
    return NULL;
  checks = g_variant_get_child_value (reply, 0);
  out = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  g_variant_iter_init (&iter, checks);
  while (g_variant_iter_next (&iter, "(&s&s&s&s)", &id, &status, NULL, NULL))
    g_hash_table_insert (out, g_strdup (id), g_strdup (status));
  return out;
}

typedef struct {
  const char *job;
  char *result;
  gboolean timed_out;
} RestartWait;

static void
on_job_removed (GDBusConnection *bus, const char *sender, const char *path, const char *iface,
                const char *signal, GVariant *params, gpointer data)
{
  RestartWait *w = data;
  const char *job, *result;
  guint32 id;

  g_variant_get (params, "(u&o&s&s)", &id, &job, NULL, &result);
  if (w->job != NULL && g_str_equal (job, w->job) && w->result == NULL)
    w->result = g_strdup (result);
}

static gboolean
on_restart_timeout (gpointer data)
{
  ((RestartWait *)data)->timed_out = TRUE;
  return G_SOURCE_REMOVE;
}

/* RestartUnit only queues a job: the doctor must not ask before the job
 * ended, or it reaches the old bangerd as it stops (NoReply). For a
 * Type=dbus unit the job ends once the new process owns its bus name. */
static gboolean
restart_unit_and_wait (GDBusConnection *session, const char *unit, GError **error)
{
  g_autoptr (GMainContext) context = g_main_context_new ();
  g_autoptr (GVariant) job = NULL;
  g_autoptr (GVariant) subscribed = NULL;
  g_autoptr (GSource) timeout = NULL;
  RestartWait w = { 0 };
  guint sub;
  gboolean ok = FALSE;

  g_main_context_push_thread_default (context);
  /* Subscribed before the job exists, so its end cannot be missed. */
  sub = g_dbus_connection_signal_subscribe (
      session, "org.freedesktop.systemd1", "org.freedesktop.systemd1.Manager", "JobRemoved",
      "/org/freedesktop/systemd1", NULL, G_DBUS_SIGNAL_FLAGS_NONE, on_job_removed, &w, NULL);
  /* systemd sends its signals only once some client asked for them. */
  subscribed = g_dbus_connection_call_sync (session, "org.freedesktop.systemd1",
                                            "/org/freedesktop/systemd1",
                                            "org.freedesktop.systemd1.Manager", "Subscribe",
                                            NULL, NULL, G_DBUS_CALL_FLAGS_NONE, 5000, NULL, NULL);
  job = g_dbus_connection_call_sync (
      session, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
      "org.freedesktop.systemd1.Manager", "RestartUnit", g_variant_new ("(ss)", unit, "replace"),
      G_VARIANT_TYPE ("(o)"), G_DBUS_CALL_FLAGS_NONE, 30000, NULL, error);
  if (job != NULL) {
    g_variant_get (job, "(&o)", &w.job);
    timeout = g_timeout_source_new (RESTART_TIMEOUT_MS * 3);
    g_source_set_callback (timeout, on_restart_timeout, &w, NULL);
    g_source_attach (timeout, context);
    while (w.result == NULL && !w.timed_out)
      g_main_context_iteration (context, TRUE);
    g_source_destroy (timeout);
    if (w.result == NULL)
      g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED,
                   _ ("%s did not restart within %d s"), unit, RESTART_TIMEOUT_MS * 3 / 1000);
    else if (!g_str_equal (w.result, "done"))
      g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, _ ("restarting %s: %s"), unit,
                   w.result);
    else
      ok = TRUE;
  }
  g_dbus_connection_signal_unsubscribe (session, sub);
  g_main_context_pop_thread_default (context);
  g_free (w.result);
  return ok;
}

/* The restart of bangerd: where a user systemd runs bangerd.service, the
 * unit is restarted; otherwise the process owning the name is stopped and
 * the next call D-Bus-activates the installed binary. */
static gboolean
restart_bangerd (GDBusConnection *session, GError **error)
{
  g_autoptr (GVariant) unit = NULL;
  g_autoptr (GVariant) pid_reply = NULL;
  guint32 pid;
  int pidfd;

  unit = g_dbus_connection_call_sync (
      session, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
      "org.freedesktop.systemd1.Manager", "GetUnit", g_variant_new ("(s)", "bangerd.service"), NULL,
      G_DBUS_CALL_FLAGS_NO_AUTO_START, 5000, NULL, NULL);
  if (unit != NULL)
    return restart_unit_and_wait (session, "bangerd.service", error);
  pid_reply = g_dbus_connection_call_sync (
      session, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
      "GetConnectionUnixProcessID", g_variant_new ("(s)", MANAGER_NAME), G_VARIANT_TYPE ("(u)"),
      G_DBUS_CALL_FLAGS_NONE, 5000, NULL, NULL);
  if (pid_reply == NULL)
    return TRUE; /* not running: the next call starts the installed one */
  g_variant_get (pid_reply, "(u)", &pid);
  pidfd = (int)syscall (SYS_pidfd_open, (pid_t)pid, 0);
  if (pidfd < 0)
    return TRUE;
  if (kill ((pid_t)pid, SIGTERM) < 0 && errno != ESRCH) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, _ ("cannot stop bangerd (pid %u): %s"),
                 pid, g_strerror (errno));
    close (pidfd);
    return FALSE;
  }
  {
    struct pollfd p = { .fd = pidfd, .events = POLLIN };
    int rc = poll (&p, 1, RESTART_TIMEOUT_MS);
    close (pidfd);
    if (rc <= 0) {
      g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED,
                   _ ("bangerd (pid %u) did not stop within %d s"), pid, RESTART_TIMEOUT_MS / 1000);
      return FALSE;
    }
  }
  return TRUE;
}

/* The helper that makes the swap must also check, finish or roll it back:
 * it keeps the swap pending for this connection, needs no second password
 * from it, and is not the new helper being judged. So every step goes to
 * the unique name that owned org.banger.Helper at the swap. */
typedef struct {
  GDBusConnection *system;
  char *owner;
  char *staging;
} HelperSteps;

static void
helper_steps_clear (HelperSteps *h)
{
  g_clear_object (&h->system);
  g_clear_pointer (&h->owner, g_free);
  g_clear_pointer (&h->staging, g_free);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (HelperSteps, helper_steps_clear)

/* Starts the helper if it does not run (D-Bus activation) and remembers
 * which process it is. */
static gboolean
helper_steps_init (HelperSteps *h, const char *staging, GError **error)
{
  g_autoptr (GVariant) reply = NULL;

  /* The helper's errors arrive as BANGER_ERROR once its D-Bus names are
   * registered, which the quark does. */
  (void)BANGER_ERROR;
  h->system = g_bus_get_sync (G_BUS_TYPE_SYSTEM, NULL, error);
  if (h->system == NULL)
    return FALSE;
  h->staging = g_strdup (staging);
  /* Running or started alike; a failure shows in GetNameOwner. */
  banger_bus_ensure_service (h->system, HELPER_NAME, 30000, NULL, NULL);
  reply = g_dbus_connection_call_sync (h->system, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                       "org.freedesktop.DBus", "GetNameOwner",
                                       g_variant_new ("(s)", HELPER_NAME), G_VARIANT_TYPE ("(s)"),
                                       G_DBUS_CALL_FLAGS_NONE, 5000, NULL, error);
  if (reply == NULL) {
    g_dbus_error_strip_remote_error (*error);
    g_prefix_error (error, _ ("bangerd-root is not running and could not be started: "));
    return FALSE;
  }
  g_variant_get (reply, "(s)", &h->owner);
  return TRUE;
}

/* One InstallRelease step; @extra (a{sv}, may be NULL) adds options. */
static gboolean
helper_step (HelperSteps *h, const char *step, GVariant *extra, GError **error)
{
  g_autoptr (GVariant) reply = NULL;
  GVariantBuilder options;

  g_variant_builder_init (&options, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add (&options, "{sv}", "interactive", g_variant_new_boolean (TRUE));
  if (step != NULL)
    g_variant_builder_add (&options, "{sv}", step, g_variant_new_boolean (TRUE));
  if (extra != NULL) {
    GVariantIter iter;
    const char *key;
    GVariant *value;

    g_variant_iter_init (&iter, extra);
    while (g_variant_iter_next (&iter, "{&sv}", &key, &value)) {
      g_variant_builder_add (&options, "{sv}", key, value);
      g_variant_unref (value);
    }
  }
  /* No timeout: polkit may be asking for a password. */
  reply = g_dbus_connection_call_sync (h->system, h->owner, HELPER_PATH, HELPER_NAME,
                                       "InstallRelease",
                                       g_variant_new ("(sa{sv})", h->staging, &options), NULL,
                                       G_DBUS_CALL_FLAGS_NONE, G_MAXINT, NULL, error);
  /* The helper that made the swap is gone (killed, crashed): a rollback is
   * still wanted, from whichever helper is installed now (the old one
   * rolled back by itself if it was stopped cleanly). That one does not
   * know this client, so polkit asks again. */
  if (reply == NULL && g_strcmp0 (step, "rollback") == 0
      && (g_error_matches (*error, G_DBUS_ERROR, G_DBUS_ERROR_SERVICE_UNKNOWN)
          || g_error_matches (*error, G_DBUS_ERROR, G_DBUS_ERROR_NAME_HAS_NO_OWNER))) {
    g_clear_error (error);
    g_variant_builder_init (&options, G_VARIANT_TYPE_VARDICT);
    g_variant_builder_add (&options, "{sv}", "interactive", g_variant_new_boolean (TRUE));
    g_variant_builder_add (&options, "{sv}", step, g_variant_new_boolean (TRUE));
    reply = g_dbus_connection_call_sync (h->system, HELPER_NAME, HELPER_PATH, HELPER_NAME,
                                         "InstallRelease",
                                         g_variant_new ("(sa{sv})", h->staging, &options), NULL,
                                         G_DBUS_CALL_FLAGS_NONE, G_MAXINT, NULL, error);
    /* Nothing to roll back: the old helper did it as it was stopped. */
    if (reply == NULL && g_error_matches (*error, BANGER_ERROR, BANGER_ERROR_BAD_STATE)) {
      g_clear_error (error);
      return TRUE;
    }
  }
  if (reply == NULL)
    banger_cli_error_annotate_helper (error);
  return reply != NULL;
}

/* What the staged release says it is, as swap options (written and checked
 * by bangerd's job; the helper checks the shapes again). */
static GVariant *
staged_build_info (const char *staging, GError **error)
{
  g_autofree char *path = g_build_filename (staging, "BUILDINFO", NULL);
  g_autoptr (GKeyFile) kf = g_key_file_new ();
  g_autofree char *version = NULL, *commit = NULL, *built_at = NULL;
  GVariantBuilder b;

  if (!g_key_file_load_from_file (kf, path, G_KEY_FILE_NONE, error)
      || (version = g_key_file_get_string (kf, "release", "version", error)) == NULL
      || (commit = g_key_file_get_string (kf, "release", "commit", error)) == NULL
      || (built_at = g_key_file_get_string (kf, "release", "built_at", error)) == NULL) {
    g_prefix_error (error, _ ("the staged release is incomplete (%s): "), path);
    return NULL;
  }
  g_variant_builder_init (&b, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add (&b, "{sv}", "version", g_variant_new_string (version));
  g_variant_builder_add (&b, "{sv}", "commit", g_variant_new_string (commit));
  g_variant_builder_add (&b, "{sv}", "built_at", g_variant_new_string (built_at));
  return g_variant_ref_sink (g_variant_builder_end (&b));
}

/* The doctor after the restart passes if bangerd answers and no check that
 * passed before now fails; the reason otherwise. */
static char *
doctor_regression (GDBusConnection *session, GHashTable *before, HelperSteps *helper)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GHashTable) after = doctor_statuses (session, &error);
  GHashTableIter iter;
  gpointer id, status;

  if (after == NULL)
    return g_strdup_printf (_ ("the new bangerd does not answer: %s"), error->message);
  /* bangerd's own helper checks still reach the old bangerd-root (it holds
   * the name until the update is finished); the new one is judged by the
   * old one running it as root (--self-check), and must say it is the
   * version being installed. */
  if (!helper_step (helper, "check", NULL, &error))
    return g_strdup (error->message);
  g_hash_table_iter_init (&iter, after);
  while (g_hash_table_iter_next (&iter, &id, &status)) {
    const char *was = before != NULL ? g_hash_table_lookup (before, id) : NULL;
    if (g_str_equal (status, "fail") && g_strcmp0 (was, "fail") != 0)
      return g_strdup_printf (_ ("doctor check “%s” fails with the new release"), (char *)id);
  }
  return NULL;
}

static gboolean
print_check (GVariant *info)
{
  const char *current = "", *latest = "";
  gboolean available = FALSE;

  g_variant_lookup (info, "current", "&s", &current);
  g_variant_lookup (info, "latest", "&s", &latest);
  g_variant_lookup (info, "available", "b", &available);
  if (available)
    printf (_ ("banger %s is installed; %s is available\n"), current, latest);
  else
    printf (_ ("banger %s is installed; it is the latest release\n"), current);
  return available;
}

/* How the restart of bangerd would be done (restart_bangerd() does it). */
static char *
bangerd_restart_plan (GDBusConnection *session)
{
  g_autoptr (GVariant) unit = NULL;
  g_autoptr (GVariant) pid = NULL;
  guint32 p;

  unit = g_dbus_connection_call_sync (
      session, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
      "org.freedesktop.systemd1.Manager", "GetUnit", g_variant_new ("(s)", "bangerd.service"), NULL,
      G_DBUS_CALL_FLAGS_NO_AUTO_START, 5000, NULL, NULL);
  if (unit != NULL)
    return g_strdup (_ ("bangerd: the user unit bangerd.service is restarted"));
  pid = g_dbus_connection_call_sync (
      session, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
      "GetConnectionUnixProcessID", g_variant_new ("(s)", MANAGER_NAME), G_VARIANT_TYPE ("(u)"),
      G_DBUS_CALL_FLAGS_NONE, 5000, NULL, NULL);
  if (pid == NULL)
    return g_strdup (_ ("bangerd: not running; the next call starts the new one"));
  g_variant_get (pid, "(u)", &p);
  return g_strdup_printf (_ ("bangerd: process %u is stopped; the next call starts the new one"),
                          p);
}

/* The plan of `--dry-run`: bangerd fetched the manifest, SHA256SUMS and
 * its signature and verified it; the tarball was not downloaded. The
 * destinations are root's helper.conf [update] (the helper swaps there,
 * never where a caller says), else the build's directories. */
static void
print_plan (GVariant *plan, GDBusConnection *session)
{
  const char *current = "", *version = "", *manifest = "", *tarball = "", *tarball_sha256 = "";
  const char *sums = "", *signature = "", *busy = "";
  g_autofree char *bindir = banger_helper_conf_string ("update", "bindir");
  g_autofree char *libexecdir = banger_helper_conf_string ("update", "libexecdir");
  g_autofree char *restart = bangerd_restart_plan (session);
  g_autofree char *record = banger_install_record_path ();
  g_autoptr (GVariant) files = NULL;
  guint64 size = 0;
  GVariantIter iter;
  const char *name, *sha;
  struct {
    const char *name;
    const char *dir;
    const char *sub;
  } swapped[] = {
    { "bangerd", bindir ? bindir : BANGER_BINDIR, NULL },
    { "banger", bindir ? bindir : BANGER_BINDIR, NULL },
    { "bangerd-root", libexecdir ? libexecdir : BANGER_LIBEXECDIR, NULL },
    { "banger-agent", libexecdir ? libexecdir : BANGER_LIBEXECDIR, "banger" },
  };

  g_variant_lookup (plan, "current", "&s", &current);
  g_variant_lookup (plan, "version", "&s", &version);
  g_variant_lookup (plan, "manifest", "&s", &manifest);
  g_variant_lookup (plan, "tarball", "&s", &tarball);
  g_variant_lookup (plan, "tarball_sha256", "&s", &tarball_sha256);
  g_variant_lookup (plan, "sha256sums", "&s", &sums);
  g_variant_lookup (plan, "signature", "&s", &signature);
  g_variant_lookup (plan, "busy", "&s", &busy);
  g_variant_lookup (plan, "size", "t", &size);
  files = g_variant_lookup_value (plan, "files", G_VARIANT_TYPE ("a(ss)"));

  printf (_ ("Dry run: nothing was downloaded but the signed file list, nothing was changed.\n"));
  printf (_ ("  installed version: %s\n"), current);
  printf (_ ("  new version:       %s\n"), version);
  printf (_ ("  manifest:          %s\n"), manifest);
  printf (_ ("  SHA256SUMS:        %s (signature %s verified with the release key)\n"), sums,
          signature);
  if (size > 0)
    printf (_ ("  tarball:           %s (%llu bytes, not downloaded)\n"), tarball,
            (unsigned long long)size);
  else
    printf (_ ("  tarball:           %s (not downloaded)\n"), tarball);
  printf (_ ("  tarball sha256:    %s\n"), tarball_sha256);
  printf (_ ("Signed files:\n"));
  if (files != NULL) {
    g_variant_iter_init (&iter, files);
    while (g_variant_iter_next (&iter, "(&s&s)", &name, &sha))
      printf ("  %s  %s\n", sha, name);
  }
  printf (_ ("Would replace (from the tarball, after an administrator's password):\n"));
  for (guint i = 0; i < G_N_ELEMENTS (swapped); i++) {
    g_autofree char *path = g_build_filename (swapped[i].dir, swapped[i].sub ? swapped[i].sub : "",
                                              swapped[i].name, NULL);
    printf ("  %s\n", path);
  }
  printf (_ ("  %s (the install record, written last)\n"), record);
  printf (_ ("Would restart:\n  %s\n"), restart);
  printf ("  %s\n",
          _ ("bangerd-root: exits after the update; the next call starts the new one"));
  if (*busy != '\0')
    printf (_ ("Would refuse now: %s\n"), busy);
}

static gboolean
update_handler (BangerCli *cli, char **args, GError **error)
{
  BangerManager *manager;
  g_autoptr (GVariant) info = NULL;
  g_autoptr (GHashTable) before = NULL;
  g_autofree char *job_path = NULL;
  g_autofree char *cache = NULL;
  g_autofree char *staging = NULL;
  g_autofree char *why = NULL;
  g_autofree char *version = NULL;
  g_autoptr (GVariant) build_info = NULL;
  g_auto (HelperSteps) helper = { 0 };
  gpointer agent = NULL;
  gboolean ok;
  g_auto (GVariantBuilder) options = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE_VARDICT);
  BangerProgressMode mode;
  const char *latest = NULL;

  if (!banger_cli_check_args (cli, args, 0, 0, error))
    return FALSE;
  if (!banger_job_progress_mode_parse (opt_progress, opt_quiet, &mode, error))
    return FALSE;
  manager = banger_cli_get_manager (cli, error);
  if (manager == NULL)
    return FALSE;
  if (opt_to == NULL || opt_check) {
    if (!banger_manager_call_check_update_sync (manager, &info, NULL, error)) {
      banger_cli_error_annotate (error);
      return FALSE;
    }
    if (!print_check (info) && opt_to == NULL)
      return TRUE;
    if (opt_check)
      return TRUE;
    g_variant_lookup (info, "latest", "&s", &latest);
  }
  version = g_strdup (opt_to != NULL ? (opt_to[0] == 'v' ? opt_to + 1 : opt_to) : latest);
  g_variant_builder_add (&options, "{sv}", "to", g_variant_new_string (version));
  if (opt_dry_run) {
    g_autoptr (GVariant) plan = NULL;

    /* PlanUpdate, not Update {dry_run}: the plan needs only the signed
     * file list, so the tarball (tens of MiB) is not downloaded. */
    if (!banger_manager_call_plan_update_sync (manager, g_variant_builder_end (&options), &plan,
                                               NULL, error)) {
      banger_cli_error_annotate (error);
      g_prefix_error (error, _ ("cannot plan the update to %s: "), version);
      return FALSE;
    }
    print_plan (plan, cli->session);
    return TRUE;
  }
  before = doctor_statuses (cli->session, NULL);
  g_variant_builder_add (&options, "{sv}", "force", g_variant_new_boolean (opt_force));
  if (!banger_manager_call_update_sync (manager, g_variant_builder_end (&options), &job_path, NULL,
                                        error)) {
    banger_cli_error_annotate (error);
    return FALSE;
  }
  if (!banger_job_follow (cli->session, job_path, mode, NULL, error)) {
    if (!g_error_matches (*error, BANGER_CLI_ERROR, BANGER_CLI_ERROR_INTERRUPTED))
      g_prefix_error (error, _ ("updating to %s failed: "), version);
    return FALSE;
  }
  cache = banger_cache_dir ();
  staging = g_build_filename (cache, "update", "staging", NULL);
  build_info = staged_build_info (staging, error);
  if (build_info == NULL)
    return FALSE;
  if (!helper_steps_init (&helper, staging, error)) {
    banger_remove_tree (staging, NULL);
    return FALSE;
  }
  /* The swap needs an administrator (org.banger.system.update is always
   * auth_admin): with our agent registered, polkit asks in this terminal
   * unless a desktop agent serves the session. The agent stays until the
   * end in case the helper that made the swap is gone and a rollback has
   * to ask again. */
  agent = banger_polkit_agent_register ();
  if (!helper_step (&helper, NULL, build_info, error)) {
    banger_polkit_agent_unregister (agent);
    banger_remove_tree (staging, NULL);
    g_prefix_error (error, _ ("banger %s was not installed: "), version);
    return FALSE;
  }
  if (restart_bangerd (cli->session, error)
      && (why = doctor_regression (cli->session, before, &helper)) == NULL) {
    if (!helper_step (&helper, "finish", NULL, error)) {
      banger_polkit_agent_unregister (agent);
      g_prefix_error (error, _ ("banger %s is installed but install.toml was not written: "),
                      version);
      return FALSE;
    }
    banger_polkit_agent_unregister (agent);
    banger_remove_tree (staging, NULL);
    printf (_ ("banger updated to %s\n"), version);
    return TRUE;
  }
  if (why == NULL)
    why = g_strdup ((*error)->message);
  g_clear_error (error);
  g_printerr (_ ("banger: %s; rolling back\n"), why);
  ok = helper_step (&helper, "rollback", NULL, error);
  banger_polkit_agent_unregister (agent);
  if (!ok) {
    g_prefix_error (error, _ ("the rollback failed too (%s): "), why);
    return FALSE;
  }
  restart_bangerd (cli->session, NULL);
  banger_remove_tree (staging, NULL);
  g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, _ ("update to %s rolled back: %s"),
               version, why);
  return FALSE;
}

const BangerCommand banger_update_command = {
  "update",
  N_ ("Update banger to a new signed release"),
  NULL,
  update_options,
  update_handler,
  NULL,
  0,
};
