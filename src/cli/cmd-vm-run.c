/* `banger vm run`: create a VM, start it, ship a repository into it,
 * run a command or a login there, and remove the VM whatever happens
 * (Ctrl-C included); with --image, a reference is pulled first. */

#include "config.h"

#include <glib-unix.h>
#include <glib/gi18n.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "banger-error.h"
#include "cli.h"
#include "cmd-vm-private.h"
#include "errors.h"
#include "exec-session.h"
#include "image-pull.h"
#include "job-progress.h"
#include "repo.h"
#include "run-config.h"
#include "validate.h"

/* `vm run` takes what `vm create` takes, and a name is optional. */
static char *opt_repo;
static char *opt_name;

static gboolean
parse_repo (const char *option_name, const char *value, gpointer data, GError **error)
{
  g_free (opt_repo);
  opt_repo = g_strdup (value != NULL ? value : ".");
  return TRUE;
}

const GOptionEntry banger_cli_vm_run_options[] = {
  { "repo", 0, G_OPTION_FLAG_OPTIONAL_ARG | G_OPTION_FLAG_FILENAME, G_OPTION_ARG_CALLBACK,
    parse_repo,
    N_ ("Push the git work tree of DIR (default: .) first, run the command in it, and save "
        "its changes as a patch"),
    N_ ("DIR") },
  { "name", 0, 0, G_OPTION_ARG_STRING, &opt_name,
    N_ ("Name of the VM (default: run-<6 hex digits>)"), N_ ("NAME") },
  { "image", 0, 0, G_OPTION_ARG_STRING, &banger_cli_vm_opt_image,
    N_ ("Image to boot, or a reference or catalog name to pull first (default: the manager's)"),
    N_ ("IMAGE") },
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
  { "cold", 0, 0, G_OPTION_ARG_NONE, &banger_cli_vm_opt_cold,
    N_ ("Boot the guest, even where a snapshot of a booted one could be restored (warm start)"),
    NULL },
  { NULL },
};

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
  JobWatch watch = { 0 };

  g_dbus_proxy_set_default_timeout (G_DBUS_PROXY (vm), START_TIMEOUT_MS);
  r->starting = TRUE;
  banger_cli_vm_job_watch_init (&watch, vm);
  banger_vm_call_start (vm, banger_cli_vm_start_options (), NULL, on_run_started, r);
  banger_cli_vm_job_watch_wait (&watch, &r->start_done);
  banger_cli_vm_job_watch_clear (&watch);
  r->starting = FALSE;
  if (r->error != NULL) {
    g_propagate_error (error, g_steal_pointer (&r->error));
    banger_cli_vm_annotate_vm_call (error, vm, name, WANT_STOPPED);
    return FALSE;
  }
  if (r->interrupted != 0) {
    g_set_error (error, BANGER_CLI_ERROR, BANGER_CLI_ERROR_INTERRUPTED,
                 _ ("interrupted; VM “%s” was removed"), name);
    return FALSE;
  }
  banger_cli_vm_warn_if_no_network (vm, name);
  return TRUE;
}

/* Runs OpenSSH as a child (not exec: the VM must be removed after it). */
static gboolean
run_ssh (const SshConfig *config, int *status, GError **error)
{
  g_autoptr (GPtrArray) argv = banger_cli_vm_ssh_argv (config, NULL);
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

  if (banger_cli_vm_opt_image == NULL)
    return TRUE;
  image = banger_cli_find_image (cli, banger_cli_vm_opt_image, &local);
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
  if (g_strcmp0 (banger_cli_vm_opt_image, banger_manager_get_default_image (manager)) == 0)
    return TRUE;
  pulled = banger_cli_find_pulled_image (cli, banger_cli_vm_opt_image);
  if (pulled != NULL) {
    g_info ("“%s” was pulled before as image “%s”", banger_cli_vm_opt_image, pulled);
  } else {
    fprintf (stderr, _ ("No image named “%s”: pulling it…\n"), banger_cli_vm_opt_image);
    if (!banger_cli_pull_image (cli, banger_cli_vm_opt_image, &options, BANGER_PROGRESS_AUTO,
                                &pulled, &local)) {
      /* A plain word may just be a mistyped image name: say both. */
      if (!banger_cli_looks_like_reference (banger_cli_vm_opt_image)
          && !g_error_matches (local, BANGER_CLI_ERROR, BANGER_CLI_ERROR_INTERRUPTED)
          && !g_error_matches (local, BANGER_CLI_ERROR, BANGER_CLI_ERROR_UNREACHABLE))
        g_prefix_error (&local, _ ("no image named “%s” is registered; "), banger_cli_vm_opt_image);
      g_propagate_error (error, g_steal_pointer (&local));
      return FALSE;
    }
  }
  g_free (banger_cli_vm_opt_image);
  banger_cli_vm_opt_image = g_steal_pointer (&pulled);
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

  if (!banger_cli_vm_require_running (vm, name, error))
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
    banger_cli_vm_annotate_vm_call (error, vm, name, WANT_IN_USE);
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

  if (!banger_cli_vm_get_ssh_config (vm, name, &config, error))
    return FALSE;
  if (!config.has_sshd)
    return banger_cli_vm_exec_in_vm (vm, name, banger_cli_vm_login_shell, TRUE, status, error);
  /* ssh hands a command to the remote user's shell as one string: the
   * directory is quoted for it, nothing else comes from outside. */
  quoted = g_shell_quote (dir);
  remote = g_strdup_printf ("cd %s && exec \"${SHELL:-/bin/sh}\" -l", quoted);
  command[0] = remote;
  argv = banger_cli_vm_ssh_argv (&config, command);
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

  if (!banger_cli_vm_require_running (vm, name, error))
    return FALSE;
  if (!banger_repo_push (vm, name, opt_repo, NULL, &guest_dir, error))
    return FALSE;
  g_free (banger_cli_vm_opt_workdir);
  banger_cli_vm_opt_workdir = g_strdup (guest_dir);
  if (command != NULL && command[0] != NULL)
    ok = banger_cli_vm_exec_in_vm (vm, name, command,
                                   isatty (STDIN_FILENO) && isatty (STDOUT_FILENO), status, error);
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

gboolean
banger_cli_vm_cmd_run (BangerCli *cli, char **args, GError **error)
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
    vm = banger_cli_vm_create_vm (cli, name, &local);
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
    ok = banger_cli_vm_exec_in_vm (vm, name, (const char *const *)command,
                                   isatty (STDIN_FILENO) && isatty (STDOUT_FILENO),
                                   &cli->exit_status, error);
  } else {
    g_auto (SshConfig) config = { 0 };
    g_auto (BangerRunConfig) rc = { 0 };

    if (image_run_config (cli, vm, &rc)) {
      ok = run_image_command (vm, name, &rc, &cli->exit_status, error);
    } else if (banger_cli_vm_get_ssh_config (vm, name, &config, error)) {
      if (config.has_sshd)
        ok = run_ssh (&config, &cli->exit_status, error);
      else
        ok = banger_cli_vm_exec_instead_of_ssh (vm, name, NULL, &cli->exit_status, error);
    }
  }

removal:
  remove_vm (vm, name);
out:
  g_source_remove (sigint);
  g_source_remove (sigterm);
  return ok;
}
