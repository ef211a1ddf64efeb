/* `banger __agent-session NAME`: what the host's sshd runs for every
 * session of `ssh NAME.vm` when the VM's image has no sshd (sshd-inetd.c
 * writes it as sshd's ForceCommand). The session runs in the guest through
 * the agent, the way `banger vm ssh` does for such a VM: the command ssh
 * asked for (SSH_ORIGINAL_COMMAND) through the guest's /bin/sh, or a login
 * shell; on a pty when sshd gave us one (its size goes along, and so does
 * every resize, through exec-session.c); the exit status comes back as
 * ours, which sshd hands to ssh. scp (the SFTP protocol) and rsync need a
 * program on the far side: the host's own sftp-server and rsync go into
 * the guest on first use (guest-tool.c). docs/cli.md, "VMs without sshd". */

#include "config.h"

#include <glib/gi18n.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "cmd-vm-private.h"
#include "errors.h"
#include "exec-session.h"
#include "guest-tool.h"
#include "sshd-inetd.h"

static const GOptionEntry no_options[] = { { NULL } };

/* Where distributions put OpenSSH's sftp-server. */
static const char *const sftp_server_places[] = {
  "/usr/lib/openssh/sftp-server",
  "/usr/libexec/openssh/sftp-server",
  "/usr/libexec/sftp-server",
  "/usr/lib/ssh/sftp-server",
};

static char *
find_sftp_server (GError **error)
{
  for (guint i = 0; i < G_N_ELEMENTS (sftp_server_places); i++)
    if (g_file_test (sftp_server_places[i], G_FILE_TEST_IS_EXECUTABLE))
      return g_strdup (sftp_server_places[i]);
  g_set_error (error, BANGER_CLI_ERROR, BANGER_CLI_ERROR_FAILED,
               _ ("scp and sftp to a VM without sshd use this host's sftp-server, which is not "
                  "installed (Debian: openssh-sftp-server)"));
  return NULL;
}

/* The far sides of the transfer tools, as the first word of the command
 * ssh sends ("rsync --server …", "scp -t …", "git-upload-pack '/srv/repo'"),
 * and the host program that serves each. */
static const struct {
  const char *word;
  const char *program;
} shipped[] = {
  { "rsync", "rsync" },
  /* scp -O: the legacy protocol, "scp -t DIR" / "scp -f FILE" */
  { "scp", "scp" },
  { "git-upload-pack", "git" },
  { "git-receive-pack", "git" },
  { "git-upload-archive", "git" },
};

/* git's far sides are git under those names. */
static const char *const git_aliases[]
    = { "git-upload-pack", "git-receive-pack", "git-upload-archive", NULL };

/* The host tool a command line starts with, if it is one banger ships. */
static BangerGuestTool *
shipped_tool_of (const char *command, GError **error)
{
  g_auto (GStrv) words = NULL;

  if (!g_shell_parse_argv (command, NULL, &words, NULL) || words[0] == NULL)
    return NULL;
  for (guint i = 0; i < G_N_ELEMENTS (shipped); i++) {
    g_autofree char *program = NULL;

    if (!g_str_equal (words[0], shipped[i].word))
      continue;
    program = g_find_program_in_path (shipped[i].program);
    if (program == NULL) {
      g_set_error (error, BANGER_CLI_ERROR, BANGER_CLI_ERROR_FAILED,
                   _ ("“%s” in a VM without sshd runs this host's %s, which is not installed"),
                   shipped[i].word, shipped[i].program);
      return NULL;
    }
    return banger_guest_tool_new (
        program, g_str_equal (shipped[i].program, "git") ? git_aliases : NULL, error);
  }
  return NULL;
}

static gboolean
agent_session (BangerCli *cli, char **args, GError **error)
{
  const char *name;
  const char *command = g_getenv ("SSH_ORIGINAL_COMMAND");
  const char *term = g_getenv ("TERM");
  g_autoptr (BangerVM) vm = NULL;
  g_autoptr (BangerGuestTool) tool = NULL;
  g_auto (GStrv) argv = NULL;
  g_autofree char *script = NULL;
  g_autofree char *term_env = NULL;
  const char *env[2] = { NULL, NULL };
  BangerExecSpec spec = { 0 };

  if (!banger_cli_check_args (cli, args, 1, 1, error))
    return FALSE;
  name = args[0];
  vm = banger_cli_find_vm (cli, name, error);
  if (vm == NULL || !banger_cli_vm_require_running (vm, name, error))
    return FALSE;

  spec.tty = isatty (STDIN_FILENO);
  if (spec.tty && term != NULL) {
    term_env = g_strconcat ("TERM=", term, NULL);
    env[0] = term_env;
    spec.env = env;
  }
  if (command == NULL || command[0] == '\0') {
    /* `ssh NAME.vm`: the login `banger vm ssh` gives. */
    spec.argv = banger_cli_vm_login_shell;
  } else if (g_str_equal (command, BANGER_SSHD_SFTP_MARK)) {
    g_autofree char *program = find_sftp_server (error);
    const char *const sftp_args[] = { "-d", "/root", NULL };

    if (program == NULL)
      return FALSE;
    tool = banger_guest_tool_new (program, NULL, error);
    if (tool == NULL || !banger_guest_tool_ensure (tool, vm, name, error))
      return FALSE;
    /* The SFTP protocol's paths are relative to the home directory. */
    argv = banger_guest_tool_argv (tool, "sftp-server", sftp_args);
    spec.argv = (const char *const *)argv;
  } else {
    g_autoptr (GError) local = NULL;
    g_autoptr (GString) s = g_string_new (NULL);

    tool = shipped_tool_of (command, &local);
    if (local != NULL) {
      g_propagate_error (error, g_steal_pointer (&local));
      return FALSE;
    }
    /* As sshd runs a command: by the shell, in the home directory. */
    g_string_append (s, "cd 2>/dev/null; ");
    if (tool != NULL) {
      if (!banger_guest_tool_ensure (tool, vm, name, error))
        return FALSE;
      g_string_append_printf (s, "PATH='%s/bin':\"$PATH\"; export PATH; ",
                              banger_guest_tool_dir (tool));
    }
    g_string_append (s, command);
    script = g_string_free (g_steal_pointer (&s), FALSE);
    argv = g_new0 (char *, 4);
    argv[0] = g_strdup ("/bin/sh");
    argv[1] = g_strdup ("-c");
    argv[2] = g_strdup (script);
    spec.argv = (const char *const *)argv;
  }
  if (!banger_cli_exec (vm, name, &spec, &cli->exit_status, error)) {
    banger_cli_vm_annotate_vm_call (error, vm, name, WANT_IN_USE);
    return FALSE;
  }
  return TRUE;
}

/* sshd's ForceCommand (sshd-inetd.c): a session of `ssh NAME.vm`. */
const BangerCommand banger_agent_session_command = {
  "__agent-session",
  "Run an ssh session in a VM through the agent (sshd's ForceCommand)",
  "NAME",
  no_options,
  agent_session,
  NULL,
  BANGER_COMMAND_FLAG_HIDDEN,
};
