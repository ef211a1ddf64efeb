/* `vm cp`, `vm push`, `vm diff`, `vm pull`, and the copy helpers they and
 * `vm run --repo` share: tar streams written and read with libarchive,
 * handed to VM.CopyIn / VM.CopyOut as pipes (docs/repo-workflow.md). */

#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <gio/gunixfdlist.h>
#include <glib-unix.h>
#include <glib/gi18n.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "archive-api.h"
#include "banger-error.h"
#include "cli.h"
#include "errors.h"
#include "repo.h"
#include "validate.h"

/* A copy of a big tree takes as long as it takes: no D-Bus timeout. */
#define COPY_TIMEOUT_MS G_MAXINT

static void
block_sigpipe (void)
{
  sigset_t set;

  /* A peer that went away must be a write error, not the end of banger. */
  sigemptyset (&set);
  sigaddset (&set, SIGPIPE);
  pthread_sigmask (SIG_BLOCK, &set, NULL);
}

static gboolean
archive_error (struct archive *a, const char *what, GError **error)
{
  const char *msg = archive_error_string (a);

  g_set_error (error, BANGER_CLI_ERROR, BANGER_CLI_ERROR_FAILED, "%s: %s", what,
               msg != NULL ? msg : _ ("unknown error"));
  return FALSE;
}

/* ---- writing a tar from host files ---------------------------------------------------- */

static gboolean
add_tree (struct archive *w, struct archive *disk, const char *root, const char *rel,
          GError **error)
{
  g_autofree char *top = g_build_filename (root, rel, NULL);
  g_autofree char *buf = g_malloc (64 * 1024);
  struct archive_entry *entry;
  int rc;

  if (archive_read_disk_open (disk, top) != ARCHIVE_OK)
    return archive_error (disk, top, error);
  for (;;) {
    const char *full;
    g_autofree char *name = NULL;

    entry = archive_entry_new ();
    rc = archive_read_next_header2 (disk, entry);
    if (rc == ARCHIVE_EOF) {
      archive_entry_free (entry);
      break;
    }
    if (rc < ARCHIVE_WARN) {
      archive_entry_free (entry);
      archive_read_close (disk);
      return archive_error (disk, top, error);
    }
    full = archive_entry_sourcepath (entry);
    name = g_strconcat (rel, full + strlen (top), NULL);
    archive_entry_set_pathname (entry, name);
    if (archive_read_disk_can_descend (disk))
      archive_read_disk_descend (disk);
    if (archive_write_header (w, entry) < ARCHIVE_WARN) {
      archive_entry_free (entry);
      archive_read_close (disk);
      return archive_error (w, _ ("writing the tar stream"), error);
    }
    if (archive_entry_filetype (entry) == AE_IFREG && archive_entry_size (entry) > 0) {
      int fd = open (full, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
      ssize_t n = 0;

      if (fd < 0) {
        g_set_error (error, BANGER_CLI_ERROR, BANGER_CLI_ERROR_FAILED, _ ("cannot open %s: %s"),
                     full, g_strerror (errno));
        archive_entry_free (entry);
        archive_read_close (disk);
        return FALSE;
      }
      while ((n = read (fd, buf, 64 * 1024)) > 0)
        if (archive_write_data (w, buf, n) < 0)
          break;
      close (fd);
      if (n != 0) {
        archive_entry_free (entry);
        archive_read_close (disk);
        return archive_error (w, full, error);
      }
    }
    archive_entry_free (entry);
  }
  archive_read_close (disk);
  return TRUE;
}

gboolean
banger_cli_write_tar (int fd, const char *root, const char *const *paths, GError **error)
{
  struct archive *w = archive_write_new ();
  struct archive *disk = archive_read_disk_new ();
  gboolean ok = FALSE;

  archive_write_set_format_pax_restricted (w);
  archive_write_set_bytes_per_block (w, 64 * 1024);
  /* Links are copied as links, never followed out of the tree. */
  archive_read_disk_set_symlink_physical (disk);
  archive_read_disk_set_standard_lookup (disk);
  if (archive_write_open_fd (w, fd) != ARCHIVE_OK) {
    archive_error (w, _ ("writing the tar stream"), error);
    goto out;
  }
  for (guint i = 0; paths[i] != NULL; i++)
    if (!add_tree (w, disk, root, paths[i], error))
      goto out;
  if (archive_write_close (w) != ARCHIVE_OK) {
    archive_error (w, _ ("writing the tar stream"), error);
    goto out;
  }
  ok = TRUE;
out:
  if (!ok)
    archive_write_fail (w);
  archive_write_free (w);
  archive_read_free (disk);
  return ok;
}

/* ---- CopyIn / CopyOut with a pipe -------------------------------------------------------- */

typedef struct {
  BangerTarProducer produce;
  gpointer data;
  int fd;
  GError *error;
} Producer;

static gpointer
producer_thread (gpointer data)
{
  Producer *p = data;

  block_sigpipe ();
  p->produce (p->fd, p->data, &p->error);
  close (p->fd);
  return NULL;
}

static gboolean
call_copy (BangerVM *vm, gboolean in, const char *guest_path, GUnixFDList *fds, GError **error)
{
  GVariant *options = g_variant_new ("a{sv}", NULL);

  if (in)
    return banger_vm_call_copy_in_sync (vm, g_variant_new_handle (0), guest_path, options, fds,
                                        NULL, NULL, error);
  return banger_vm_call_copy_out_sync (vm, guest_path, g_variant_new_handle (0), options, fds, NULL,
                                       NULL, error);
}

gboolean
banger_cli_copy_in_fd (BangerVM *vm, const char *guest_dir, int fd, GError **error)
{
  g_autoptr (GUnixFDList) fds = g_unix_fd_list_new ();

  if (g_unix_fd_list_append (fds, fd, error) < 0)
    return FALSE;
  g_dbus_proxy_set_default_timeout (G_DBUS_PROXY (vm), COPY_TIMEOUT_MS);
  return call_copy (vm, TRUE, guest_dir, fds, error);
}

gboolean
banger_cli_copy_in (BangerVM *vm, const char *guest_dir, BangerTarProducer produce, gpointer data,
                    GError **error)
{
  g_autoptr (GUnixFDList) fds = g_unix_fd_list_new ();
  Producer p = { produce, data, -1, NULL };
  GThread *thread;
  int pipefd[2];
  gboolean ok;

  if (!g_unix_open_pipe (pipefd, FD_CLOEXEC, error))
    return FALSE;
  if (g_unix_fd_list_append (fds, pipefd[0], error) < 0) {
    close (pipefd[0]);
    close (pipefd[1]);
    return FALSE;
  }
  close (pipefd[0]);
  p.fd = pipefd[1];
  thread = g_thread_new ("banger-tar", producer_thread, &p);
  g_dbus_proxy_set_default_timeout (G_DBUS_PROXY (vm), COPY_TIMEOUT_MS);
  ok = call_copy (vm, TRUE, guest_dir, fds, error);
  /* Without our read end the producer cannot block on a full pipe. */
  g_clear_object (&fds);
  g_thread_join (thread);
  if (!ok) {
    g_clear_error (&p.error);
    return FALSE;
  }
  if (p.error != NULL) {
    g_propagate_error (error, p.error);
    return FALSE;
  }
  return TRUE;
}

typedef struct {
  BangerVM *vm;
  const char *guest_path;
  GUnixFDList *fds;
  GError *error;
  gboolean ok;
} OutCall;

static gpointer
copy_out_thread (gpointer data)
{
  OutCall *c = data;

  c->ok = call_copy (c->vm, FALSE, c->guest_path, c->fds, &c->error);
  g_clear_object (&c->fds); /* the last write end: the reader sees EOF */
  return NULL;
}

static gboolean
extract (int fd, const char *host_dir, GError **error)
{
  struct archive *r = archive_read_new ();
  struct archive *w = archive_write_disk_new ();
  g_autofree char *buf = g_malloc (64 * 1024);
  struct archive_entry *entry;
  gboolean ok = FALSE;
  int rc;

  archive_read_support_format_tar (r);
  /* bangerd checked the names already; they are checked again here
   * (absolute ones below, ".." and links by libarchive), as names relative
   * to @host_dir: libarchive's own absolute-path check would refuse the
   * prefixed names. */
  archive_write_disk_set_options (w, ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_TIME
                                         | ARCHIVE_EXTRACT_SECURE_NODOTDOT
                                         | ARCHIVE_EXTRACT_SECURE_SYMLINKS);
  if (archive_read_open_fd (r, fd, 64 * 1024) != ARCHIVE_OK) {
    archive_error (r, _ ("reading the guest's tar stream"), error);
    goto out;
  }
  while ((rc = archive_read_next_header (r, &entry)) == ARCHIVE_OK || rc == ARCHIVE_WARN) {
    g_autofree char *path = g_build_filename (host_dir, archive_entry_pathname (entry), NULL);
    const char *hardlink = archive_entry_hardlink (entry);
    la_ssize_t n;

    if (g_path_is_absolute (archive_entry_pathname (entry))
        || (hardlink != NULL && g_path_is_absolute (hardlink))) {
      g_set_error (error, BANGER_CLI_ERROR, BANGER_CLI_ERROR_FAILED,
                   _ ("the guest's tar stream has an absolute name: %s"),
                   archive_entry_pathname (entry));
      goto out;
    }
    archive_entry_set_pathname (entry, path);
    if (hardlink != NULL) {
      g_autofree char *target = g_build_filename (host_dir, hardlink, NULL);
      archive_entry_set_hardlink (entry, target);
    }
    if (archive_write_header (w, entry) < ARCHIVE_WARN) {
      archive_error (w, path, error);
      goto out;
    }
    while ((n = archive_read_data (r, buf, 64 * 1024)) > 0)
      if (archive_write_data (w, buf, n) < 0) {
        archive_error (w, path, error);
        goto out;
      }
    if (n < 0) {
      archive_error (r, _ ("reading the guest's tar stream"), error);
      goto out;
    }
    if (archive_write_finish_entry (w) < ARCHIVE_WARN) {
      archive_error (w, path, error);
      goto out;
    }
  }
  if (rc != ARCHIVE_EOF) {
    archive_error (r, _ ("reading the guest's tar stream"), error);
    goto out;
  }
  ok = archive_write_close (w) == ARCHIVE_OK || archive_error (w, host_dir, error);
out:
  /* Drain, so that bangerd never writes into a closed pipe. */
  while (read (fd, buf, 64 * 1024) > 0)
    ;
  archive_write_free (w);
  archive_read_free (r);
  return ok;
}

gboolean
banger_cli_copy_out (BangerVM *vm, const char *guest_path, int fd, const char *host_dir,
                     GError **error)
{
  OutCall c = { vm, guest_path, g_unix_fd_list_new (), NULL, FALSE };
  GThread *thread;
  GError *local = NULL;
  int pipefd[2];

  g_dbus_proxy_set_default_timeout (G_DBUS_PROXY (vm), COPY_TIMEOUT_MS);
  if (fd >= 0) {
    gboolean ok = g_unix_fd_list_append (c.fds, fd, error) >= 0
                  && call_copy (vm, FALSE, guest_path, c.fds, error);
    g_clear_object (&c.fds);
    return ok;
  }
  if (!g_unix_open_pipe (pipefd, FD_CLOEXEC, error)) {
    g_clear_object (&c.fds);
    return FALSE;
  }
  if (g_unix_fd_list_append (c.fds, pipefd[1], error) < 0) {
    close (pipefd[0]);
    close (pipefd[1]);
    g_clear_object (&c.fds);
    return FALSE;
  }
  close (pipefd[1]);
  thread = g_thread_new ("banger-copy-out", copy_out_thread, &c);
  extract (pipefd[0], host_dir, &local);
  close (pipefd[0]);
  g_thread_join (thread);
  if (!c.ok) {
    g_clear_error (&local);
    g_propagate_error (error, c.error);
    return FALSE;
  }
  if (local != NULL) {
    g_propagate_error (error, local);
    return FALSE;
  }
  return TRUE;
}

/* ---- vm cp ------------------------------------------------------------------------------- */

/* "VM:PATH" → VM and PATH; anything else is a host path. A host path with
 * a colon can be written as ./a:b. */
static gboolean
split_vm_path (const char *arg, char **vm, char **path)
{
  const char *colon = strchr (arg, ':');
  g_autofree char *name = NULL;

  if (colon == NULL || colon == arg)
    return FALSE;
  name = g_strndup (arg, colon - arg);
  if (!banger_validate_name ("VM", name, NULL))
    return FALSE;
  *vm = g_steal_pointer (&name);
  *path = g_strdup (colon + 1);
  return TRUE;
}

typedef struct {
  const char *root;
  const char *name;
} TreeSource;

static gboolean
produce_tree (int fd, gpointer data, GError **error)
{
  TreeSource *t = data;
  const char *paths[] = { t->name, NULL };

  return banger_cli_write_tar (fd, t->root, paths, error);
}

static gboolean
vm_cp (BangerCli *cli, char **args, GError **error)
{
  g_autofree char *src_vm = NULL, *src_path = NULL, *dst_vm = NULL, *dst_path = NULL;
  g_autoptr (BangerVM) vm = NULL;
  gboolean src_in_vm, dst_in_vm;
  gboolean ok;

  if (!banger_cli_check_args (cli, args, 2, 2, error))
    return FALSE;
  /* Loads libarchive (archive-api.h) before anything is sent. */
  if (!banger_archive_load (error))
    return FALSE;
  src_in_vm = split_vm_path (args[0], &src_vm, &src_path);
  dst_in_vm = split_vm_path (args[1], &dst_vm, &dst_path);
  if (src_in_vm == dst_in_vm)
    return banger_cli_usage_error (cli, error,
                                   _ ("exactly one of SRC and DEST must be VM:PATH (got “%s” "
                                      "and “%s”)"),
                                   args[0], args[1]);
  vm = banger_cli_find_vm (cli, src_in_vm ? src_vm : dst_vm, error);
  if (vm == NULL)
    return FALSE;
  if (dst_in_vm) {
    if (g_str_equal (args[0], "-")) {
      ok = banger_cli_copy_in_fd (vm, dst_path, STDIN_FILENO, error);
    } else {
      g_autofree char *abs = g_canonicalize_filename (args[0], NULL);
      g_autofree char *root = g_path_get_dirname (abs);
      g_autofree char *name = g_path_get_basename (abs);
      TreeSource t = { root, name };
      struct stat st;

      if (lstat (abs, &st) < 0) {
        g_set_error (error, BANGER_CLI_ERROR, BANGER_CLI_ERROR_FAILED, _ ("cannot copy %s: %s"),
                     args[0], g_strerror (errno));
        return FALSE;
      }
      ok = banger_cli_copy_in (vm, dst_path, produce_tree, &t, error);
    }
  } else if (g_str_equal (args[1], "-")) {
    ok = banger_cli_copy_out (vm, src_path, STDOUT_FILENO, NULL, error);
  } else {
    if (g_mkdir_with_parents (args[1], 0755) < 0) {
      g_set_error (error, BANGER_CLI_ERROR, BANGER_CLI_ERROR_FAILED,
                   _ ("cannot create directory %s: %s"), args[1], g_strerror (errno));
      return FALSE;
    }
    ok = banger_cli_copy_out (vm, src_path, -1, args[1], error);
  }
  if (!ok)
    banger_cli_error_annotate_vm (error, src_in_vm ? src_vm : dst_vm);
  return ok;
}

/* ---- vm push, diff, pull -------------------------------------------------------------- */

static char *opt_to;

static const GOptionEntry push_options[] = {
  { "to", 0, 0, G_OPTION_ARG_FILENAME, &opt_to,
    N_ ("Directory in the guest (default: /root/<repository name>)"), N_ ("GUEST_DIR") },
  { NULL },
};

static const GOptionEntry no_options[] = { { NULL } };

static gboolean
vm_push (BangerCli *cli, char **args, GError **error)
{
  g_autoptr (BangerVM) vm = NULL;
  g_autofree char *to = NULL;

  if (!banger_cli_check_args (cli, args, 1, 2, error))
    return FALSE;
  if (!banger_archive_load (error))
    return FALSE;
  vm = banger_cli_find_vm (cli, args[0], error);
  if (vm == NULL)
    return FALSE;
  if (!banger_repo_push (vm, args[0], args[1] != NULL ? args[1] : ".", opt_to, &to, error)) {
    banger_cli_error_annotate_vm (error, args[0]);
    return FALSE;
  }
  printf ("%s\n", to);
  return TRUE;
}

static gboolean
vm_diff (BangerCli *cli, char **args, GError **error)
{
  g_autoptr (BangerVM) vm = NULL;
  g_autoptr (GBytes) patch = NULL;
  gsize len;
  const char *data;

  if (!banger_cli_check_args (cli, args, 1, 2, error))
    return FALSE;
  if (!banger_archive_load (error))
    return FALSE;
  vm = banger_cli_find_vm (cli, args[0], error);
  if (vm == NULL)
    return FALSE;
  patch = banger_repo_diff (vm, args[0], args[1] != NULL ? args[1] : ".", error);
  if (patch == NULL) {
    banger_cli_error_annotate_vm (error, args[0]);
    return FALSE;
  }
  data = g_bytes_get_data (patch, &len);
  /* No change is an empty patch, and fwrite's buffer must not be NULL. */
  if (len > 0)
    fwrite (data, 1, len, stdout);
  return TRUE;
}

static gboolean
vm_pull (BangerCli *cli, char **args, GError **error)
{
  g_autoptr (BangerVM) vm = NULL;
  g_autoptr (GBytes) patch = NULL;
  const char *repo = args[0] != NULL && args[1] != NULL ? args[1] : ".";

  if (!banger_cli_check_args (cli, args, 1, 2, error))
    return FALSE;
  if (!banger_archive_load (error))
    return FALSE;
  vm = banger_cli_find_vm (cli, args[0], error);
  if (vm == NULL)
    return FALSE;
  patch = banger_repo_diff (vm, args[0], repo, error);
  if (patch == NULL) {
    banger_cli_error_annotate_vm (error, args[0]);
    return FALSE;
  }
  if (g_bytes_get_size (patch) == 0) {
    fprintf (stderr, _ ("Nothing changed in VM “%s”.\n"), args[0]);
    return TRUE;
  }
  return banger_repo_apply (repo, patch, error);
}

#define VM_ARGS BANGER_COMMAND_FLAG_VM_ARGS

const BangerCommand banger_vm_cp_command = {
  "cp",
  N_ ("Copy files between the host and a VM (one side is VM:PATH; - is a tar stream)"),
  N_ ("SRC DEST"),
  no_options,
  vm_cp,
  NULL,
  0,
};
const BangerCommand banger_vm_push_command = {
  "push",
  N_ ("Ship a git work tree into a VM"),
  N_ ("NAME [REPO_DIR]"),
  push_options,
  vm_push,
  NULL,
  VM_ARGS,
};
const BangerCommand banger_vm_diff_command = {
  "diff",
  N_ ("Show what changed in a VM since vm push, as a git patch"),
  N_ ("NAME [REPO_DIR]"),
  no_options,
  vm_diff,
  NULL,
  VM_ARGS,
};
const BangerCommand banger_vm_pull_command = {
  "pull",
  N_ ("Apply what changed in a VM since vm push to the host repository"),
  N_ ("NAME [REPO_DIR]"),
  no_options,
  vm_pull,
  NULL,
  VM_ARGS,
};

/* `vm workspace push|diff|pull`: the seed's name for the repo workflow.
 * Each row is an alias sharing its target's handler and options. */
static const BangerCommand workspace_push_command = {
  "push", N_ ("Alias of “banger vm push”"), N_ ("NAME [REPO_DIR]"), push_options, vm_push, NULL,
  VM_ARGS | BANGER_COMMAND_FLAG_ALIAS,
};
static const BangerCommand workspace_diff_command = {
  "diff", N_ ("Alias of “banger vm diff”"), N_ ("NAME [REPO_DIR]"), no_options, vm_diff, NULL,
  VM_ARGS | BANGER_COMMAND_FLAG_ALIAS,
};
static const BangerCommand workspace_pull_command = {
  "pull", N_ ("Alias of “banger vm pull”"), N_ ("NAME [REPO_DIR]"), no_options, vm_pull, NULL,
  VM_ARGS | BANGER_COMMAND_FLAG_ALIAS,
};
static const BangerCommand *const workspace_subcommands[] = {
  &workspace_push_command,
  &workspace_diff_command,
  &workspace_pull_command,
  NULL,
};
const BangerCommand banger_vm_workspace_command = {
  "workspace",
  N_ ("Ship a host repository into a VM and bring its changes back (push, diff, pull)"),
  NULL,
  NULL,
  NULL,
  workspace_subcommands,
  0,
};
