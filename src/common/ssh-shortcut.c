#include "ssh-shortcut.h"

#include <string.h>

#include "paths.h"

char *
banger_ssh_user_config_path (void)
{
  const char *home = g_getenv ("HOME");

  if (home == NULL || !g_path_is_absolute (home))
    home = g_get_home_dir ();
  return g_build_filename (home, ".ssh", "config", NULL);
}

char *
banger_ssh_shortcut_path (void)
{
  g_autofree char *dir = banger_config_dir ();

  return g_build_filename (dir, "ssh_config", NULL);
}

/* A word of an ssh_config line: quoted when it has a blank or a quote. */
static char *
config_word (const char *word)
{
  if (strpbrk (word, " \t\"'\\") == NULL)
    return g_strdup (word);
  return g_strdup_printf ("\"%s\"", word);
}

char *
banger_ssh_include_block (const char *shortcut_path)
{
  g_autofree char *word = config_word (shortcut_path);

  return g_strdup_printf ("# Added by “banger ssh-config”: ssh NAME.vm reaches banger's VMs "
                          "(undo: banger ssh-config --remove)\n"
                          "Include %s\n",
                          word);
}

char *
banger_ssh_shortcut_text (const char *banger_program)
{
  g_autofree char *data = banger_data_dir ();
  g_autofree char *identity = g_build_filename (data, "ssh", "id_ed25519", NULL);
  g_autofree char *identity_word = config_word (identity);
  /* ProxyCommand goes through the user's shell; KnownHostsCommand is split
   * by ssh itself. Single quotes mean the same to both. */
  g_autofree char *program = g_shell_quote (banger_program);
  g_autofree char *user_word = config_word (g_get_user_name ());

  /* The Match block comes first: OpenSSH keeps the first value it reads,
   * so for a VM without sshd the login name is the user's own, the only
   * one a non-root `sshd -i` can log in (docs/cli.md, "VMs without
   * sshd"). */
  return g_strdup_printf (
      "# Written by “banger ssh-config”; it rewrites this file, so edits are lost.\n"
      "# program: %s\n"
      "# `ssh NAME.vm` (and scp, rsync -e ssh, git) reaches banger's running VM NAME:\n"
      "# banger asks bangerd for its address (no DNS needed) and its pinned host key.\n"
      "# A VM whose image has no sshd is reached through banger's guest agent: the\n"
      "# ProxyCommand runs this host's sshd in inetd mode, as you, with the VM's host key.\n"
      "Match host *.vm exec \"%s __ssh-uses-agent %%h\"\n"
      "    User %s\n"
      "Host *.vm\n"
      "    User root\n"
      "    IdentityFile %s\n"
      "    IdentitiesOnly yes\n"
      "    ProxyCommand %s __ssh-proxy %%h %%p %%r\n"
      "    KnownHostsCommand %s __ssh-known-hosts %%h %%H\n"
      "    UserKnownHostsFile /dev/null\n"
      "    GlobalKnownHostsFile /dev/null\n"
      "    StrictHostKeyChecking yes\n"
      "    CheckHostIP no\n",
      banger_program, program, user_word, identity_word, program, program);
}

char *
banger_ssh_shortcut_program (const char *text)
{
  const char *line = strstr (text, "\n# program: ");
  const char *end;

  if (line == NULL || !g_str_has_prefix (text, "# Written by “banger ssh-config”"))
    return NULL;
  line += strlen ("\n# program: ");
  end = strchr (line, '\n');
  if (end == NULL || end == line)
    return NULL;
  return g_strndup (line, (gsize)(end - line));
}

gssize
banger_ssh_find_block (const char *config, const char *block)
{
  const char *p = config;

  while ((p = strstr (p, block)) != NULL) {
    if (p == config || p[-1] == '\n')
      return p - config;
    p++;
  }
  return -1;
}

gboolean
banger_ssh_offset_is_global (const char *config, gsize offset)
{
  const char *p = config;

  while (p < config + offset && *p != '\0') {
    const char *end = strchr (p, '\n');
    g_autofree char *line = g_strndup (p, end != NULL ? (gsize)(end - p) : strlen (p));
    char *word = g_strstrip (line);

    /* Keywords are case-insensitive and may be followed by '='. */
    if (g_ascii_strncasecmp (word, "host", 4) == 0
        && (word[4] == ' ' || word[4] == '\t' || word[4] == '='))
      return FALSE;
    if (g_ascii_strncasecmp (word, "match", 5) == 0
        && (word[5] == ' ' || word[5] == '\t' || word[5] == '='))
      return FALSE;
    if (end == NULL)
      break;
    p = end + 1;
  }
  return TRUE;
}

char *
banger_ssh_find_sshd (void)
{
  /* sbin is often not on a user's PATH: the usual places first. */
  static const char *const places[] = { "/usr/sbin/sshd", "/usr/local/sbin/sshd", "/sbin/sshd" };
  char *found;

  for (guint i = 0; i < G_N_ELEMENTS (places); i++)
    if (g_file_test (places[i], G_FILE_TEST_IS_EXECUTABLE))
      return g_strdup (places[i]);
  found = g_find_program_in_path ("sshd");
  /* sshd must be run by an absolute path. */
  if (found != NULL && !g_path_is_absolute (found)) {
    char *abs = g_canonicalize_filename (found, NULL);

    g_free (found);
    found = abs;
  }
  return found;
}
