/* `banger ssh-config`: plain `ssh NAME.vm` (scp, rsync -e ssh, git) from any
 * terminal (docs/cli.md, "The ssh shortcut"). It writes banger's own file
 * ($XDG_CONFIG_HOME/banger/ssh_config, src/common/ssh-shortcut.c) and puts
 * an Include of it at the top of ~/.ssh/config, changing no other byte;
 * --remove takes exactly those bytes out again. The file's Host block runs
 * two hidden commands of this program: `__ssh-proxy` (ProxyCommand) asks
 * bangerd for the VM's address and relays the connection to its sshd, so no
 * resolver is needed; `__ssh-known-hosts` (KnownHostsCommand) prints the
 * host key bangerd pinned for that VM, so there is never a
 * trust-on-first-use prompt. A VM whose image has no sshd is reached
 * through the agent: `__ssh-uses-agent` (a Match exec) makes the login
 * name the user's own, and `__ssh-proxy` becomes this host's sshd in
 * inetd mode (sshd-inetd.c, cmd-agent-session.c). */

#include "config.h"

#include <errno.h>
#include <glib/gi18n.h>
#include <glib/gstdio.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "banger-error.h"
#include "cli.h"
#include "errors.h"
#include "paths.h"
#include "ssh-shortcut.h"
#include "sshd-inetd.h"
#include "validate.h"

static gboolean opt_print;
static gboolean opt_remove;

static const GOptionEntry ssh_config_options[] = {
  { "print", 0, 0, G_OPTION_ARG_NONE, &opt_print,
    N_ ("Print the Host block instead of writing anything"), NULL },
  { "remove", 0, 0, G_OPTION_ARG_NONE, &opt_remove,
    N_ ("Take the Include out of ~/.ssh/config again and remove banger's file"), NULL },
  { NULL },
};

static const GOptionEntry no_options[] = { { NULL } };

/* This program, as an absolute path: the ssh config runs it. */
static char *
self_program (GError **error)
{
  g_autoptr (GError) local = NULL;
  char *path = g_file_read_link ("/proc/self/exe", &local);

  if (path == NULL)
    g_set_error (error, BANGER_CLI_ERROR, BANGER_CLI_ERROR_FAILED,
                 _ ("cannot find the path of the banger program: %s"), local->message);
  return path;
}

/* Reads @path; a missing file is empty (*@exists FALSE). */
static gboolean
read_optional (const char *path, char **contents, gsize *len, gboolean *exists, GError **error)
{
  g_autoptr (GError) local = NULL;

  *exists = g_file_get_contents (path, contents, len, &local);
  if (*exists)
    return TRUE;
  if (!g_error_matches (local, G_FILE_ERROR, G_FILE_ERROR_NOENT)) {
    g_set_error (error, BANGER_CLI_ERROR, BANGER_CLI_ERROR_FAILED, _ ("cannot read %s: %s"), path,
                 local->message);
    return FALSE;
  }
  *contents = g_strdup ("");
  *len = 0;
  return TRUE;
}

/* Writes @path atomically with @mode; a symbolic link (dotfile managers)
 * is written through, not replaced. */
static gboolean
write_file (const char *path, const char *contents, gsize len, int mode, GError **error)
{
  g_autoptr (GError) local = NULL;
  g_autofree char *target = g_canonicalize_filename (path, NULL);
  char *resolved = realpath (path, NULL);

  if (resolved != NULL) {
    g_free (target);
    target = resolved;
  }
  if (!g_file_set_contents_full (target, contents, (gssize)len,
                                 G_FILE_SET_CONTENTS_CONSISTENT, mode, &local)) {
    g_set_error (error, BANGER_CLI_ERROR, BANGER_CLI_ERROR_FAILED, _ ("cannot write %s: %s"),
                 target, local->message);
    return FALSE;
  }
  return TRUE;
}

static int
file_mode (const char *path, int fallback)
{
  GStatBuf st;

  if (g_stat (path, &st) == 0)
    return (int)(st.st_mode & 07777);
  return fallback;
}

static gboolean
ensure_dir (const char *dir, GError **error)
{
  if (g_mkdir_with_parents (dir, 0700) < 0) {
    g_set_error (error, BANGER_CLI_ERROR, BANGER_CLI_ERROR_FAILED, _ ("cannot create %s: %s"),
                 dir, g_strerror (errno));
    return FALSE;
  }
  return TRUE;
}

static gboolean
ssh_config_remove (const char *user_config, const char *shortcut, const char *block,
                   GError **error)
{
  g_autofree char *contents = NULL;
  gsize len;
  gboolean exists;
  gssize at;

  if (!read_optional (user_config, &contents, &len, &exists, error))
    return FALSE;
  at = exists ? banger_ssh_find_block (contents, block) : -1;
  if (at >= 0) {
    g_autoptr (GString) out = g_string_new_len (contents, at);

    g_string_append_len (out, contents + at + strlen (block), (gssize)(len - (gsize)at
                                                                        - strlen (block)));
    /* A file banger created holds nothing else: it goes as it came. */
    if (out->len == 0) {
      if (g_unlink (user_config) < 0) {
        g_set_error (error, BANGER_CLI_ERROR, BANGER_CLI_ERROR_FAILED,
                     _ ("cannot remove %s: %s"), user_config, g_strerror (errno));
        return FALSE;
      }
      printf (_ ("removed %s (banger's Include was all it held)\n"), user_config);
    } else {
      if (!write_file (user_config, out->str, out->len, file_mode (user_config, 0600), error))
        return FALSE;
      printf (_ ("removed banger's Include from %s\n"), user_config);
    }
  } else {
    printf (_ ("%s has no Include of banger's: nothing to take out\n"), user_config);
  }
  if (g_unlink (shortcut) == 0)
    printf (_ ("removed %s\n"), shortcut);
  else if (errno != ENOENT) {
    g_set_error (error, BANGER_CLI_ERROR, BANGER_CLI_ERROR_FAILED, _ ("cannot remove %s: %s"),
                 shortcut, g_strerror (errno));
    return FALSE;
  }
  return TRUE;
}

static gboolean
ssh_config (BangerCli *cli, char **args, GError **error)
{
  g_autofree char *program = NULL;
  g_autofree char *text = NULL;
  g_autofree char *shortcut = banger_ssh_shortcut_path ();
  g_autofree char *user_config = banger_ssh_user_config_path ();
  g_autofree char *block = banger_ssh_include_block (shortcut);
  g_autofree char *ssh_dir = g_path_get_dirname (user_config);
  g_autofree char *shortcut_dir = g_path_get_dirname (shortcut);
  g_autofree char *contents = NULL;
  g_autofree char *old_text = NULL;
  gsize len, old_len;
  gboolean exists, old_exists;
  gssize at;

  if (!banger_cli_check_args (cli, args, 0, 0, error))
    return FALSE;
  if (opt_print && opt_remove)
    return banger_cli_usage_error (cli, error, _ ("--print and --remove cannot be used together"));
  if (opt_remove)
    return ssh_config_remove (user_config, shortcut, block, error);

  program = self_program (error);
  if (program == NULL)
    return FALSE;
  text = banger_ssh_shortcut_text (program);
  if (opt_print) {
    fputs (text, stdout);
    return TRUE;
  }

  /* banger's own file: rewritten whenever it differs. */
  if (!read_optional (shortcut, &old_text, &old_len, &old_exists, error))
    return FALSE;
  if (old_exists && g_str_equal (old_text, text)) {
    printf (_ ("%s is up to date\n"), shortcut);
  } else {
    if (!ensure_dir (shortcut_dir, error)
        || !write_file (shortcut, text, strlen (text), 0644, error))
      return FALSE;
    printf (old_exists ? _ ("updated %s\n") : _ ("wrote %s\n"), shortcut);
  }

  /* The Include, once, before any Host or Match line of the user's. */
  if (!read_optional (user_config, &contents, &len, &exists, error))
    return FALSE;
  at = banger_ssh_find_block (contents, block);
  if (at >= 0 && banger_ssh_offset_is_global (contents, (gsize)at)) {
    printf (_ ("%s already includes it\n"), user_config);
    return TRUE;
  }
  {
    g_autoptr (GString) out = g_string_new (block);

    if (at >= 0) {
      /* Ours, but after a Host line (moved by hand): it would only apply
       * to that block, so it moves back to the top. */
      g_string_append_len (out, contents, at);
      g_string_append (out, contents + at + strlen (block));
    } else {
      g_string_append_len (out, contents, (gssize)len);
    }
    if (!ensure_dir (ssh_dir, error)
        || !write_file (user_config, out->str, out->len, file_mode (user_config, 0600), error))
      return FALSE;
  }
  printf (_ ("added “Include %s” at the top of %s\n"), shortcut, user_config);
  fputs (_ ("Now “ssh NAME.vm” reaches the running VM NAME.\n"), stdout);
  return TRUE;
}

/* ---- what the Host block runs ---- */

/* "dev.vm" → "dev": the VM name, checked as bangerd checks it. */
static char *
vm_name_of_host (const char *host, GError **error)
{
  g_autofree char *lower = g_ascii_strdown (host, -1);
  g_autofree char *name = NULL;

  if (g_str_has_suffix (lower, ".vm."))
    lower[strlen (lower) - 1] = '\0';
  if (g_str_has_suffix (lower, ".vm"))
    name = g_strndup (lower, strlen (lower) - 3);
  else
    name = g_strdup (lower);
  if (!banger_validate_name ("VM", name, error))
    return NULL;
  return g_steal_pointer (&name);
}

/* GetSSHConfig of the VM @host names. */
static GVariant *
ssh_config_of_host (BangerCli *cli, const char *host, char **name_out, GError **error)
{
  g_autofree char *name = vm_name_of_host (host, error);
  g_autoptr (BangerVM) vm = NULL;
  g_autoptr (GVariant) config = NULL;

  if (name == NULL)
    return NULL;
  vm = banger_cli_find_vm (cli, name, error);
  if (vm == NULL)
    return NULL;
  if (!banger_vm_call_get_sshconfig_sync (vm, &config, NULL, error)) {
    banger_cli_error_annotate_vm_call (error, name);
    return NULL;
  }
  *name_out = g_steal_pointer (&name);
  return g_steal_pointer (&config);
}

static gboolean
ssh_known_hosts (BangerCli *cli, char **args, GError **error)
{
  g_autoptr (GVariant) config = NULL;
  g_autofree char *name = NULL;
  g_autofree char *contents = NULL;
  g_auto (GStrv) lines = NULL;
  const char *known_hosts = NULL, *alias = NULL;
  const char *pattern;
  g_autoptr (GError) local = NULL;

  if (!banger_cli_check_args (cli, args, 1, 2, error))
    return FALSE;
  pattern = args[1] != NULL ? args[1] : args[0];
  config = ssh_config_of_host (cli, args[0], &name, error);
  if (config == NULL)
    return FALSE;
  g_variant_lookup (config, "known_hosts_file", "&s", &known_hosts);
  g_variant_lookup (config, "host_key_alias", "&s", &alias);
  if (known_hosts == NULL || alias == NULL) {
    g_set_error (error, BANGER_CLI_ERROR, BANGER_CLI_ERROR_FAILED,
                 _ ("bangerd named no pinned host key for VM “%s”"), name);
    return FALSE;
  }
  if (!g_file_get_contents (known_hosts, &contents, NULL, &local)) {
    g_set_error (error, BANGER_CLI_ERROR, BANGER_CLI_ERROR_FAILED, _ ("cannot read %s: %s"),
                 known_hosts, local->message);
    return FALSE;
  }
  /* The lines pinned under the VM's alias, under the name ssh looks up. */
  lines = g_strsplit (contents, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++) {
    const char *line = lines[i];

    if (g_str_has_prefix (line, alias) && line[strlen (alias)] == ' ')
      printf ("%s%s\n", pattern, line + strlen (alias));
  }
  return TRUE;
}

/* Connects to @address:@port; sshd may come up a moment after the agent
 * answered Start, so a refused connection is tried again for a while. */
static int
connect_guest (const char *address, guint16 port, GError **error)
{
  struct sockaddr_in sa = { 0 };
  gint64 deadline = g_get_monotonic_time () + 60 * G_USEC_PER_SEC;

  sa.sin_family = AF_INET;
  sa.sin_port = htons (port);
  if (inet_pton (AF_INET, address, &sa.sin_addr) != 1) {
    g_set_error (error, BANGER_CLI_ERROR, BANGER_CLI_ERROR_FAILED,
                 _ ("bangerd gave “%s” as the VM's address, which is not an IPv4 address"),
                 address);
    return -1;
  }
  for (;;) {
    int fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int saved;

    if (fd < 0) {
      g_set_error (error, BANGER_CLI_ERROR, BANGER_CLI_ERROR_FAILED,
                   _ ("cannot make a socket: %s"), g_strerror (errno));
      return -1;
    }
    if (connect (fd, (struct sockaddr *)&sa, sizeof sa) == 0)
      return fd;
    saved = errno;
    close (fd);
    if ((saved != ECONNREFUSED && saved != EHOSTUNREACH)
        || g_get_monotonic_time () > deadline) {
      g_set_error (error, BANGER_CLI_ERROR, BANGER_CLI_ERROR_FAILED,
                   _ ("cannot connect to %s port %u: %s"), address, port, g_strerror (saved));
      return -1;
    }
    g_usleep (G_USEC_PER_SEC / 4);
  }
}

/* Writes all of @buf to @fd. */
static gboolean
write_all (int fd, const char *buf, gsize len)
{
  while (len > 0) {
    gssize n = write (fd, buf, len);

    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return FALSE;
    buf += n;
    len -= (gsize)n;
  }
  return TRUE;
}

/* Relays stdin to @sock and @sock to stdout until the guest closes. */
static gboolean
relay (int sock, GError **error)
{
  struct pollfd fds[2] = { { STDIN_FILENO, POLLIN, 0 }, { sock, POLLIN, 0 } };
  char buf[65536];

  for (;;) {
    int n = poll (fds, 2, -1);

    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      g_set_error (error, BANGER_CLI_ERROR, BANGER_CLI_ERROR_FAILED, "poll: %s",
                   g_strerror (errno));
      return FALSE;
    }
    if (fds[0].revents != 0) {
      gssize r = read (STDIN_FILENO, buf, sizeof buf);

      if (r < 0 && errno == EINTR)
        continue;
      if (r <= 0) {
        /* ssh is done sending: half-close, keep reading the guest. */
        shutdown (sock, SHUT_WR);
        fds[0].fd = -1;
      } else if (!write_all (sock, buf, (gsize)r)) {
        return TRUE;
      }
    }
    if (fds[1].revents != 0) {
      gssize r = read (sock, buf, sizeof buf);

      if (r < 0 && errno == EINTR)
        continue;
      if (r <= 0 || !write_all (STDOUT_FILENO, buf, (gsize)r))
        return TRUE;
    }
  }
}

static gboolean
ssh_proxy (BangerCli *cli, char **args, GError **error)
{
  g_autoptr (GVariant) config = NULL;
  g_autofree char *name = NULL;
  const char *address = NULL;
  gboolean has_sshd = FALSE;
  guint64 port = 22;
  int sock;
  gboolean ok;

  if (!banger_cli_check_args (cli, args, 1, 3, error))
    return FALSE;
  if (args[1] != NULL && !g_ascii_string_to_unsigned (args[1], 10, 1, 65535, &port, NULL))
    return banger_cli_usage_error (cli, error, _ ("invalid port “%s”"), args[1]);
  config = ssh_config_of_host (cli, args[0], &name, error);
  if (config == NULL)
    return FALSE;
  g_variant_lookup (config, "host", "&s", &address);
  g_variant_lookup (config, "has_sshd", "b", &has_sshd);
  if (!has_sshd) {
    /* No sshd in the guest: this host's, in inetd mode, relays each
     * session to the agent (sshd-inetd.c). */
    g_autofree char *program = self_program (error);

    if (program == NULL)
      return FALSE;
    return banger_cli_sshd_inetd_exec (program, name, config, args[1] != NULL ? args[2] : NULL,
                                       error);
  }
  if (address == NULL || address[0] == '\0') {
    g_set_error (error, BANGER_CLI_ERROR, BANGER_CLI_ERROR_FAILED,
                 _ ("VM “%s” has no IPv4 address"), name);
    return FALSE;
  }
  sock = connect_guest (address, (guint16)port, error);
  if (sock < 0)
    return FALSE;
  ok = relay (sock, error);
  close (sock);
  return ok;
}

/* The shortcut file's `Match exec`: exit status 0 when HOST names a
 * running VM whose image has no sshd (its login name is then the user's
 * own), 1 otherwise, silently: any error is the ProxyCommand's to tell. */
static gboolean
ssh_uses_agent (BangerCli *cli, char **args, GError **error)
{
  g_autoptr (GVariant) config = NULL;
  g_autofree char *name = NULL;
  g_autoptr (GError) local = NULL;
  gboolean has_sshd = TRUE;

  if (!banger_cli_check_args (cli, args, 1, 1, error))
    return FALSE;
  config = ssh_config_of_host (cli, args[0], &name, &local);
  if (config != NULL)
    g_variant_lookup (config, "has_sshd", "b", &has_sshd);
  else
    g_debug ("%s", local->message);
  cli->exit_status = config != NULL && !has_sshd ? 0 : 1;
  return TRUE;
}

const BangerCommand banger_ssh_config_command = {
  "ssh-config",
  N_ ("Set up plain “ssh NAME.vm” (scp, rsync, git) through an Include in ~/.ssh/config"),
  NULL,
  ssh_config_options,
  ssh_config,
  NULL,
  0,
};

/* What banger's ssh_config runs (ProxyCommand, KnownHostsCommand). */
const BangerCommand banger_ssh_proxy_command = {
  "__ssh-proxy",
  "Relay stdin and stdout to a VM's sshd, or be this host's sshd for a VM without one (ssh's "
  "ProxyCommand)",
  "HOST [PORT [USER]]",
  no_options,    ssh_proxy, NULL, BANGER_COMMAND_FLAG_HIDDEN,
};
const BangerCommand banger_ssh_known_hosts_command = {
  "__ssh-known-hosts",
  "Print a VM's pinned host key as a known_hosts line (ssh's KnownHostsCommand)",
  "HOST [NAME]",
  no_options,
  ssh_known_hosts,
  NULL,
  BANGER_COMMAND_FLAG_HIDDEN,
};
const BangerCommand banger_ssh_uses_agent_command = {
  "__ssh-uses-agent",
  "Exit 0 when HOST is a running VM without sshd (the ssh shortcut's Match exec)",
  "HOST",
  no_options,
  ssh_uses_agent,
  NULL,
  BANGER_COMMAND_FLAG_HIDDEN,
};
