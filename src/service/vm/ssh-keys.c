#include "ssh-keys.h"

#include <errno.h>
#include <gio/gio.h>
#include <glib/gstdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "banger-error.h"
#include "paths.h"

struct _BangerSshKeygen {
  GPid pid;   /* 0 once waited for */
  int err_fd; /* the read end of its stderr */
};

/* ssh-keygen is started and waited for by hand (g_spawn_async_with_pipes,
 * not reaped by GLib; read and waitpid() in the thread that finishes it)
 * rather than with GSubprocess, whose exit goes through a child watch in
 * GLib's worker thread: with many VMs starting at once that hand-over was
 * seen to never arrive (vmm-qemu.c run_argv has the story). */
static BangerSshKeygen *
keygen_begin (const char *path, const char *comment, GError **error)
{
  const char *argv[]
      = { "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", path, NULL };
  g_autoptr (GError) local = NULL;
  BangerSshKeygen *k = g_new0 (BangerSshKeygen, 1);

  /* stdin is /dev/null: ssh-keygen never waits on a question. */
  if (!g_spawn_async_with_pipes (NULL, (char **)argv, NULL,
                                 G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD
                                     | G_SPAWN_STDOUT_TO_DEV_NULL | G_SPAWN_CLOEXEC_PIPES,
                                 NULL, NULL, &k->pid, NULL, NULL, &k->err_fd, &local)) {
    g_free (k);
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "cannot run ssh-keygen: %s",
                 local->message);
    return NULL;
  }
  return k;
}

/* Reads what ssh-keygen says (up to 4 KiB kept) until it closes stderr,
 * then reaps it; its wait status in *@status. */
static char *
keygen_wait (BangerSshKeygen *k, int *status)
{
  GString *text = g_string_new (NULL);
  char buf[512];

  for (;;) {
    ssize_t n = read (k->err_fd, buf, sizeof buf);

    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    if (text->len < 4096)
      g_string_append_len (text, buf, n);
  }
  close (k->err_fd);
  k->err_fd = -1;
  while (waitpid (k->pid, status, 0) < 0 && errno == EINTR)
    ;
  k->pid = 0;
  return g_string_free (text, FALSE);
}

void
banger_ssh_keygen_free (BangerSshKeygen *k)
{
  int status;

  if (k == NULL)
    return;
  /* Abandoned (a start that failed meanwhile): still reaped, no zombie. */
  if (k->pid != 0)
    g_free (keygen_wait (k, &status));
  g_free (k);
}

static gboolean
keygen_finish (BangerSshKeygen *k, const char *path, GError **error)
{
  int status = 0;
  g_autofree char *err_text = keygen_wait (k, &status);

  if (!g_spawn_check_wait_status (status, NULL)) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "ssh-keygen failed for %s: %s", path,
                 *err_text ? g_strstrip (err_text) : "(no message)");
    return FALSE;
  }
  return TRUE;
}

static gboolean
run_keygen (const char *path, const char *comment, GError **error)
{
  g_autoptr (BangerSshKeygen) k = keygen_begin (path, comment, error);

  return k != NULL && keygen_finish (k, path, error);
}

static char *
read_key (const char *path, GError **error)
{
  char *text = NULL;

  if (!g_file_get_contents (path, &text, NULL, error)) {
    banger_error_convert (error);
    return NULL;
  }
  return g_strstrip (text);
}

char *
banger_ssh_ensure_user_key (const char *ssh_dir, GError **error)
{
  g_autofree char *key = g_build_filename (ssh_dir, "id_ed25519", NULL);
  g_autofree char *pub = g_strconcat (key, ".pub", NULL);

  if (!banger_ensure_dir (ssh_dir, error))
    return NULL;
  if (!g_file_test (key, G_FILE_TEST_EXISTS) || !g_file_test (pub, G_FILE_TEST_EXISTS)) {
    g_unlink (key);
    g_unlink (pub);
    if (!run_keygen (key, "banger", error))
      return NULL;
  }
  return read_key (pub, error);
}

BangerSshKeygen *
banger_ssh_new_host_key_begin (const char *dir, GError **error)
{
  g_autofree char *key = g_build_filename (dir, "ssh_host_ed25519_key", NULL);
  g_autofree char *pub = g_strconcat (key, ".pub", NULL);

  g_unlink (key);
  g_unlink (pub);
  return keygen_begin (key, "banger-vm", error);
}

gboolean
banger_ssh_new_host_key (const char *dir, char **private_key, char **public_key, GError **error)
{
  g_autoptr (BangerSshKeygen) keygen = banger_ssh_new_host_key_begin (dir, error);

  return keygen != NULL
         && banger_ssh_new_host_key_finish (keygen, dir, private_key, public_key, error);
}

gboolean
banger_ssh_new_host_key_finish (BangerSshKeygen *keygen, const char *dir, char **private_key,
                                char **public_key, GError **error)
{
  g_autofree char *key = g_build_filename (dir, "ssh_host_ed25519_key", NULL);
  g_autofree char *pub = g_strconcat (key, ".pub", NULL);
  g_autofree char *priv_text = NULL;
  g_autofree char *pub_text = NULL;

  if (!keygen_finish (keygen, key, error))
    return FALSE;
  priv_text = read_key (key, error);
  if (priv_text == NULL)
    return FALSE;
  pub_text = read_key (pub, error);
  if (pub_text == NULL)
    return FALSE;
  if (private_key)
    *private_key = g_strconcat (priv_text, "\n", NULL);
  if (public_key)
    *public_key = g_steal_pointer (&pub_text);
  return TRUE;
}

/* Rewrites @known_hosts without @alias's line, then with @line if given. */
static gboolean
rewrite_known_hosts (const char *known_hosts, const char *alias, const char *line, GError **error)
{
  g_autofree char *old = NULL;
  g_autoptr (GString) out = g_string_new (NULL);
  g_autofree char *prefix = g_strconcat (alias, " ", NULL);

  if (g_file_get_contents (known_hosts, &old, NULL, NULL)) {
    g_auto (GStrv) lines = g_strsplit (old, "\n", -1);
    for (guint i = 0; lines[i] != NULL; i++) {
      if (*lines[i] == '\0' || g_str_has_prefix (lines[i], prefix))
        continue;
      g_string_append_printf (out, "%s\n", lines[i]);
    }
  }
  if (line != NULL)
    g_string_append_printf (out, "%s\n", line);
  if (!g_file_set_contents_full (known_hosts, out->str, (gssize)out->len,
                                 G_FILE_SET_CONTENTS_CONSISTENT, 0600, error)) {
    banger_error_convert (error);
    return FALSE;
  }
  return TRUE;
}

gboolean
banger_ssh_pin_host_key (const char *known_hosts, const char *alias, const char *public_key,
                         GError **error)
{
  g_auto (GStrv) fields = g_strsplit (public_key, " ", 3);
  g_autofree char *line = NULL;

  if (g_strv_length (fields) < 2 || strchr (alias, ' ') != NULL) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
                 "cannot pin host key for %s: malformed key", alias);
    return FALSE;
  }
  /* Only type and key: the comment is not part of the pin. */
  line = g_strdup_printf ("%s %s %s", alias, fields[0], fields[1]);
  return rewrite_known_hosts (known_hosts, alias, line, error);
}

gboolean
banger_ssh_unpin_host_key (const char *known_hosts, const char *alias, GError **error)
{
  if (!g_file_test (known_hosts, G_FILE_TEST_EXISTS))
    return TRUE;
  return rewrite_known_hosts (known_hosts, alias, NULL, error);
}
