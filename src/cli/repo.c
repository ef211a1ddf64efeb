/* The repo workflow on the host (docs/repo-workflow.md): what `vm push`
 * ships, how the shipped state is kept (a git tree object in the host
 * repository, named in <git dir>/banger/<vm>.base), and the patch `vm diff`
 * computes with git on the host from the tree CopyOut brings back (images
 * need not have git). git runs with argv vectors through GSubprocess. */

#include "config.h"

#include <errno.h>
#include <glib/gi18n.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <sys/stat.h>

#include "cli.h"
#include "errors.h"
#include "remove-tree.h"
#include "repo.h"

/* Runs git in @cwd with @env (KEY=VALUE, or NULL) added; @input goes to its
 * stdin; its stdout is returned (NULL with @error naming git's stderr). */
static GBytes *
git (const char *cwd, const char *const *env, GBytes *input, GError **error, ...)
{
  g_autoptr (GSubprocessLauncher) launcher
      = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE
                                   | G_SUBPROCESS_FLAGS_STDERR_PIPE);
  g_autoptr (GPtrArray) argv = g_ptr_array_new ();
  g_autoptr (GSubprocess) proc = NULL;
  g_autoptr (GBytes) out = NULL;
  g_autoptr (GBytes) err = NULL;
  g_autoptr (GBytes) empty = NULL;
  va_list ap;
  const char *arg;

  g_ptr_array_add (argv, (gpointer) "git");
  /* File names are names, never patterns. */
  g_ptr_array_add (argv, (gpointer) "--literal-pathspecs");
  va_start (ap, error);
  while ((arg = va_arg (ap, const char *)) != NULL)
    g_ptr_array_add (argv, (gpointer)arg);
  va_end (ap);
  g_ptr_array_add (argv, NULL);
  g_subprocess_launcher_set_cwd (launcher, cwd);
  for (guint i = 0; env != NULL && env[i] != NULL; i++) {
    g_autofree char *key = g_strndup (env[i], strcspn (env[i], "="));
    g_subprocess_launcher_setenv (launcher, key, strchr (env[i], '=') + 1, TRUE);
  }
  proc = g_subprocess_launcher_spawnv (launcher, (const char *const *)argv->pdata, error);
  if (proc == NULL) {
    g_prefix_error (error, _ ("cannot run git: "));
    return NULL;
  }
  if (input == NULL)
    input = empty = g_bytes_new_static ("", 0);
  if (!g_subprocess_communicate (proc, input, NULL, &out, &err, error))
    return NULL;
  if (!g_subprocess_get_if_exited (proc) || g_subprocess_get_exit_status (proc) != 0) {
    g_autofree char *msg = g_strndup (g_bytes_get_data (err, NULL), g_bytes_get_size (err));
    g_set_error (error, BANGER_CLI_ERROR, BANGER_CLI_ERROR_FAILED, _ ("git %s failed: %s"),
                 (const char *)argv->pdata[2], g_strstrip (msg));
    return NULL;
  }
  return g_steal_pointer (&out);
}

static char *
git_line (const char *cwd, GError **error, const char *a, const char *b)
{
  g_autoptr (GBytes) out = git (cwd, NULL, NULL, error, a, b, NULL);
  char *s;

  if (out == NULL)
    return NULL;
  s = g_strndup (g_bytes_get_data (out, NULL), g_bytes_get_size (out));
  return g_strstrip (s);
}

typedef struct {
  char *top;     /* the work tree's top directory */
  char *git_dir; /* absolute */
  char *state;   /* <git dir>/banger */
} Repo;

static void
repo_clear (Repo *r)
{
  g_free (r->top);
  g_free (r->git_dir);
  g_free (r->state);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Repo, repo_clear)

static gboolean
repo_open (const char *dir, Repo *r, GError **error)
{
  r->top = git_line (dir, error, "rev-parse", "--show-toplevel");
  if (r->top == NULL) {
    g_prefix_error (error, _ ("%s is not in a git work tree: "), dir);
    return FALSE;
  }
  r->git_dir = git_line (dir, error, "rev-parse", "--absolute-git-dir");
  if (r->git_dir == NULL)
    return FALSE;
  r->state = g_build_filename (r->git_dir, "banger", NULL);
  if (g_mkdir_with_parents (r->state, 0700) < 0) {
    g_set_error (error, BANGER_CLI_ERROR, BANGER_CLI_ERROR_FAILED, _ ("cannot create %s: %s"),
                 r->state, g_strerror (errno));
    return FALSE;
  }
  return TRUE;
}

gboolean
banger_repo_check (const char *dir, GError **error)
{
  g_autofree char *top = NULL;
  g_autoptr (GError) local = NULL;

  if (!g_file_test (dir, G_FILE_TEST_IS_DIR)) {
    g_set_error (error, BANGER_CLI_ERROR, BANGER_CLI_ERROR_USAGE,
                 _ ("“%s” is not a directory: vm run ships a git work tree (give its path, or "
                    "put the command after “--”)"),
                 dir);
    return FALSE;
  }
  top = git_line (dir, &local, "rev-parse", "--show-toplevel");
  if (top == NULL || top[0] == '\0') {
    g_set_error (error, BANGER_CLI_ERROR, BANGER_CLI_ERROR_USAGE,
                 _ ("“%s” is not in a git work tree, so there is nothing to ship (%s)"), dir,
                 local != NULL ? local->message : "git rev-parse");
    return FALSE;
  }
  return TRUE;
}

static char *
state_file (const Repo *r, const char *vm_name, const char *suffix)
{
  g_autofree char *base = g_strconcat (vm_name, suffix, NULL);
  return g_build_filename (r->state, base, NULL);
}

static gboolean
produce_files (int fd, gpointer data, GError **error)
{
  const Repo *r = ((gpointer *)data)[0];
  GPtrArray *files = ((gpointer *)data)[1];

  return banger_cli_write_tar (fd, r->top, (const char *const *)files->pdata, error);
}

gboolean
banger_repo_push (BangerVM *vm, const char *vm_name, const char *repo_dir, const char *guest_dir,
                  char **shipped_to, GError **error)
{
  g_auto (Repo) r = { 0 };
  g_autoptr (GBytes) listing = NULL;
  g_autoptr (GPtrArray) files = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GString) pathspec = g_string_new (NULL);
  g_autoptr (GBytes) spec_bytes = NULL;
  g_autoptr (GBytes) tree = NULL;
  g_autofree char *index = NULL;
  g_autofree char *index_env = NULL;
  g_autofree char *base_file = NULL;
  g_autofree char *base = NULL;
  g_autofree char *to = NULL;
  g_autofree char *tree_id = NULL;
  const char *data;
  gsize len;
  gpointer producer_data[2];

  if (!repo_open (repo_dir, &r, error))
    return FALSE;
  listing = git (r.top, NULL, NULL, error, "ls-files", "-z", "-co", "--exclude-standard", NULL);
  if (listing == NULL)
    return FALSE;
  data = g_bytes_get_data (listing, &len);
  for (gsize i = 0; i < len; i += strlen (data + i) + 1) {
    g_autofree char *path = g_build_filename (r.top, data + i, NULL);
    struct stat st;

    /* Tracked files deleted on the host are not shipped, and neither are
     * submodules (directories): what is shipped is files and links. */
    if (lstat (path, &st) < 0 || S_ISDIR (st.st_mode))
      continue;
    g_ptr_array_add (files, g_strdup (data + i));
    g_string_append_len (pathspec, data + i, strlen (data + i) + 1);
  }
  g_ptr_array_add (files, NULL);

  /* The shipped state, as a tree object in the repository's own object
   * store: a private index holds exactly the shipped files. */
  index = state_file (&r, vm_name, ".index");
  index_env = g_strconcat ("GIT_INDEX_FILE=", index, NULL);
  {
    const char *env[] = { index_env, NULL };
    g_autoptr (GBytes) out = NULL;

    g_unlink (index);
    spec_bytes = g_string_free_to_bytes (g_steal_pointer (&pathspec));
    out = git (r.top, env, NULL, error, "read-tree", "--empty", NULL);
    if (out != NULL && g_bytes_get_size (spec_bytes) > 0) {
      g_clear_pointer (&out, g_bytes_unref);
      out = git (r.top, env, spec_bytes, error, "add", "-f", "--pathspec-from-file=-",
                 "--pathspec-file-nul", NULL);
    }
    if (out != NULL)
      tree = git (r.top, env, NULL, error, "write-tree", NULL);
    g_unlink (index);
    if (tree == NULL)
      return FALSE;
  }
  tree_id = g_strstrip (g_strndup (g_bytes_get_data (tree, NULL), g_bytes_get_size (tree)));

  if (guest_dir != NULL) {
    to = g_strdup (guest_dir);
  } else {
    g_autofree char *name = g_path_get_basename (r.top);
    to = g_build_filename ("/root", name, NULL);
  }
  producer_data[0] = &r;
  producer_data[1] = files;
  if (!banger_cli_copy_in (vm, to, produce_files, producer_data, error))
    return FALSE;
  base_file = state_file (&r, vm_name, ".base");
  base = g_strdup_printf ("%s\n%s\n", tree_id, to);
  if (!g_file_set_contents (base_file, base, -1, error))
    return FALSE;
  *shipped_to = g_steal_pointer (&to);
  return TRUE;
}

GBytes *
banger_repo_diff (BangerVM *vm, const char *vm_name, const char *repo_dir, GError **error)
{
  g_auto (Repo) r = { 0 };
  g_autofree char *base_file = NULL;
  g_autofree char *base = NULL;
  g_auto (GStrv) lines = NULL;
  g_autofree char *tmp = NULL;
  g_autofree char *work = NULL;
  g_autofree char *name = NULL;
  g_autofree char *index = NULL;
  g_autofree char *env_index = NULL, *env_work = NULL, *env_dir = NULL;
  GBytes *patch = NULL;

  if (!repo_open (repo_dir, &r, error))
    return NULL;
  base_file = state_file (&r, vm_name, ".base");
  if (!g_file_get_contents (base_file, &base, NULL, NULL)) {
    g_set_error (error, BANGER_CLI_ERROR, BANGER_CLI_ERROR_FAILED,
                 _ ("nothing was pushed from %s to VM “%s” (use banger vm push first)"), r.top,
                 vm_name);
    return NULL;
  }
  lines = g_strsplit (base, "\n", 3);
  if (g_strv_length (lines) < 2 || *lines[0] == '\0' || *lines[1] != '/') {
    g_set_error (error, BANGER_CLI_ERROR, BANGER_CLI_ERROR_FAILED, _ ("%s is damaged"), base_file);
    return NULL;
  }
  tmp = g_dir_make_tmp ("banger-diff-XXXXXX", error);
  if (tmp == NULL)
    return NULL;
  name = g_path_get_basename (lines[1]);
  work = g_build_filename (tmp, name, NULL);
  index = g_build_filename (tmp, ".banger-index", NULL);
  if (banger_cli_copy_out (vm, lines[1], -1, tmp, error)) {
    env_index = g_strconcat ("GIT_INDEX_FILE=", index, NULL);
    env_work = g_strconcat ("GIT_WORK_TREE=", work, NULL);
    env_dir = g_strconcat ("GIT_DIR=", r.git_dir, NULL);
    {
      const char *env[] = { env_index, env_work, env_dir, NULL };
      g_autoptr (GBytes) out = git (work, env, NULL, error, "read-tree", lines[0], NULL);

      if (out != NULL) {
        g_clear_pointer (&out, g_bytes_unref);
        out = git (work, env, NULL, error, "add", "-A", NULL);
      }
      if (out != NULL)
        patch = git (work, env, NULL, error, "diff", "--cached", "--binary", "--no-color",
                     "--no-ext-diff", "--no-renames", lines[0], NULL);
    }
  }
  {
    g_autoptr (GError) local = NULL;
    if (!banger_remove_tree (tmp, &local))
      g_warning ("%s", local->message);
  }
  return patch;
}

gboolean
banger_repo_apply (const char *repo_dir, GBytes *patch, GError **error)
{
  g_auto (Repo) r = { 0 };
  g_autoptr (GBytes) out = NULL;

  if (!repo_open (repo_dir, &r, error))
    return FALSE;
  /* Checked first, so that a patch that does not apply changes nothing. */
  out = git (r.top, NULL, patch, error, "apply", "--check", NULL);
  if (out == NULL) {
    g_prefix_error (error, _ ("the VM's changes do not apply to %s, nothing was changed: "), r.top);
    return FALSE;
  }
  g_clear_pointer (&out, g_bytes_unref);
  out = git (r.top, NULL, patch, error, "apply", NULL);
  return out != NULL;
}

gboolean
banger_repo_save_patch (const char *repo_dir, const char *vm_name, GBytes *patch, char **saved_path,
                        GError **error)
{
  g_auto (Repo) r = { 0 };
  g_autofree char *path = NULL;
  g_autoptr (GBytes) stat = NULL;

  if (!repo_open (repo_dir, &r, error))
    return FALSE;
  path = state_file (&r, vm_name, ".patch");
  if (!g_file_set_contents (path, g_bytes_get_data (patch, NULL), g_bytes_get_size (patch), error))
    return FALSE;
  if (g_bytes_get_size (patch) > 0) {
    stat = git (r.top, NULL, patch, error, "apply", "--stat", NULL);
    if (stat == NULL)
      return FALSE;
    if (g_bytes_get_size (stat) > 0)
      fwrite (g_bytes_get_data (stat, NULL), 1, g_bytes_get_size (stat), stderr);
  }
  *saved_path = g_steal_pointer (&path);
  return TRUE;
}

void
banger_repo_forget (const char *repo_dir, const char *vm_name)
{
  g_auto (Repo) r = { 0 };
  g_autofree char *base_file = NULL;

  if (!repo_open (repo_dir, &r, NULL))
    return;
  base_file = state_file (&r, vm_name, ".base");
  g_unlink (base_file);
}
