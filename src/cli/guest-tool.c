#include "config.h"

#include "guest-tool.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gi18n.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "archive-api.h"
#include "errors.h"
#include "exec-session.h"
#include "repo.h"

#define TOOLS_DIR "/.banger/tools"
/* The last entry of the tar: its presence means the rest is in place. */
#define DONE_MARK "complete"

typedef struct {
  char *host_path; /* the file (a link is followed) */
  char *name;      /* its name in the guest, relative to the tool's dir */
  int mode;
} ToolFile;

struct _BangerGuestTool {
  char *name;   /* the program's base name */
  char *dir;    /* TOOLS_DIR/NAME-STAMP */
  char *loader; /* the loader's name in lib/ */
  GArray *files;
  GStrv aliases; /* more names the tool answers to in bin/ */
};

static void
tool_file_clear (gpointer data)
{
  ToolFile *f = data;

  g_free (f->host_path);
  g_free (f->name);
}

void
banger_guest_tool_free (BangerGuestTool *tool)
{
  if (tool == NULL)
    return;
  g_free (tool->name);
  g_free (tool->dir);
  g_free (tool->loader);
  g_array_unref (tool->files);
  g_strfreev (tool->aliases);
  g_free (tool);
}

const char *
banger_guest_tool_dir (const BangerGuestTool *tool)
{
  return tool->dir;
}

static void
add_file (BangerGuestTool *tool, const char *host_path, const char *name, int mode)
{
  ToolFile f = { g_strdup (host_path), g_strdup (name), mode };

  g_array_append_val (tool->files, f);
}

/* `ldd PROGRAM`'s lines: "libz.so.1 => /lib/.../libz.so.1 (0x…)" for a
 * library, "/lib64/ld-linux-x86-64.so.2 (0x…)" for the loader, and the
 * vDSO, which has no file. */
static gboolean
read_ldd (BangerGuestTool *tool, const char *program, GError **error)
{
  const char *argv[] = { "ldd", program, NULL };
  g_autoptr (GSubprocess) proc = NULL;
  g_autofree char *out = NULL;
  g_autofree char *err = NULL;
  g_auto (GStrv) lines = NULL;

  proc = g_subprocess_newv (argv, G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE,
                            error);
  if (proc == NULL || !g_subprocess_communicate_utf8 (proc, NULL, NULL, &out, &err, error)) {
    g_prefix_error (error, _ ("cannot list the libraries of %s with ldd: "), program);
    return FALSE;
  }
  if (!g_subprocess_get_successful (proc)) {
    g_set_error (error, BANGER_CLI_ERROR, BANGER_CLI_ERROR_FAILED,
                 _ ("cannot list the libraries of %s with ldd: %s"), program, g_strstrip (err));
    return FALSE;
  }
  lines = g_strsplit (out, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++) {
    g_auto (GStrv) words = g_strsplit_set (g_strstrip (lines[i]), " \t", -1);
    g_autofree char *lib = NULL;

    if (words[0] == NULL || words[0][0] == '\0')
      continue;
    if (words[1] != NULL && g_str_equal (words[1], "=>")) {
      if (words[2] == NULL || words[2][0] != '/')
        continue; /* the vDSO, or "not found" (the tool would not run here either) */
      lib = g_build_filename ("lib", words[0], NULL);
      add_file (tool, words[2], lib, 0644);
    } else if (words[0][0] == '/') {
      g_autofree char *base = g_path_get_basename (words[0]);

      g_free (tool->loader);
      tool->loader = g_strdup (base);
      lib = g_build_filename ("lib", base, NULL);
      add_file (tool, words[0], lib, 0755);
    }
  }
  if (tool->loader == NULL) {
    g_set_error (error, BANGER_CLI_ERROR, BANGER_CLI_ERROR_FAILED,
                 _ ("%s is not a dynamically linked program (ldd names no loader)"), program);
    return FALSE;
  }
  return TRUE;
}

/* What identifies this set of host files: a change of any of them (an
 * upgrade) gives a new directory in the guest. */
static char *
stamp_of (BangerGuestTool *tool, GError **error)
{
  g_autoptr (GChecksum) sum = g_checksum_new (G_CHECKSUM_SHA256);
  g_autofree char *hex = NULL;

  for (guint i = 0; i < tool->files->len; i++) {
    ToolFile *f = &g_array_index (tool->files, ToolFile, i);
    GStatBuf st;
    g_autofree char *line = NULL;

    if (g_stat (f->host_path, &st) < 0) {
      g_set_error (error, BANGER_CLI_ERROR, BANGER_CLI_ERROR_FAILED, _ ("cannot read %s: %s"),
                   f->host_path, g_strerror (errno));
      return NULL;
    }
    line = g_strdup_printf (
        "%s\n%s\n%" G_GINT64_FORMAT "\n%" G_GINT64_FORMAT "\n%" G_GUINT64_FORMAT "\n", f->name,
        f->host_path, (gint64)st.st_size, (gint64)st.st_mtime, (guint64)st.st_ino);
    g_checksum_update (sum, (const guchar *)line, -1);
  }
  for (guint i = 0; tool->aliases[i] != NULL; i++) {
    g_checksum_update (sum, (const guchar *)tool->aliases[i], -1);
    g_checksum_update (sum, (const guchar *)"\n", 1);
  }
  hex = g_strdup (g_checksum_get_string (sum));
  hex[16] = '\0';
  return g_steal_pointer (&hex);
}

BangerGuestTool *
banger_guest_tool_new (const char *program, const char *const *aliases, GError **error)
{
  g_autoptr (BangerGuestTool) tool = g_new0 (BangerGuestTool, 1);
  g_autofree char *stamp = NULL;
  const char *const none[] = { NULL };

  tool->aliases = g_strdupv ((char **)(aliases != NULL ? aliases : none));
  tool->files = g_array_new (FALSE, TRUE, sizeof (ToolFile));
  g_array_set_clear_func (tool->files, tool_file_clear);
  tool->name = g_path_get_basename (program);
  if (!g_file_test (program, G_FILE_TEST_IS_EXECUTABLE)) {
    g_set_error (error, BANGER_CLI_ERROR, BANGER_CLI_ERROR_FAILED,
                 _ ("%s is not installed on this host"), program);
    return NULL;
  }
  add_file (tool, program, tool->name, 0755);
  if (!read_ldd (tool, program, error))
    return NULL;
  stamp = stamp_of (tool, error);
  if (stamp == NULL)
    return NULL;
  tool->dir = g_strdup_printf (TOOLS_DIR "/%s-%s", tool->name, stamp);
  return g_steal_pointer (&tool);
}

char **
banger_guest_tool_argv (const BangerGuestTool *tool, const char *argv0, const char *const *args)
{
  GPtrArray *argv = g_ptr_array_new ();

  g_ptr_array_add (argv, g_strdup_printf ("%s/lib/%s", tool->dir, tool->loader));
  g_ptr_array_add (argv, g_strdup ("--library-path"));
  g_ptr_array_add (argv, g_strdup_printf ("%s/lib", tool->dir));
  /* What the program sees as its own name (rsync reports errors under it). */
  g_ptr_array_add (argv, g_strdup ("--argv0"));
  g_ptr_array_add (argv, g_strdup (argv0));
  g_ptr_array_add (argv, g_strdup_printf ("%s/%s", tool->dir, tool->name));
  for (guint i = 0; args != NULL && args[i] != NULL; i++)
    g_ptr_array_add (argv, g_strdup (args[i]));
  g_ptr_array_add (argv, NULL);
  return (char **)g_ptr_array_free (argv, FALSE);
}

/* ---- the tar ---- */

static gboolean
tar_error (struct archive *a, GError **error)
{
  const char *msg = archive_error_string (a);

  g_set_error (error, BANGER_CLI_ERROR, BANGER_CLI_ERROR_FAILED, _ ("writing the tar stream: %s"),
               msg != NULL ? msg : _ ("unknown error"));
  return FALSE;
}

static gboolean
tar_add (struct archive *w, const char *name, int mode, const char *data, gsize len, GError **error)
{
  struct archive_entry *entry = archive_entry_new ();
  gboolean ok;

  archive_entry_set_pathname (entry, name);
  archive_entry_set_filetype (entry, AE_IFREG);
  archive_entry_set_perm (entry, (mode_t)mode);
  archive_entry_set_size (entry, (la_int64_t)len);
  archive_entry_set_mtime (entry, g_get_real_time () / G_USEC_PER_SEC, 0);
  ok = archive_write_header (w, entry) >= ARCHIVE_WARN
       && (len == 0 || archive_write_data (w, data, len) == (la_ssize_t)len);
  archive_entry_free (entry);
  return ok ? TRUE : tar_error (w, error);
}

/* A shell script bin/@argv0 that runs the tool under that name, for
 * commands that name it (`rsync --server …` arrives as a shell command
 * line, and git runs `git` from PATH). */
static char *
wrapper_script (const BangerGuestTool *tool, const char *argv0)
{
  g_auto (GStrv) argv = banger_guest_tool_argv (tool, argv0, NULL);
  g_autoptr (GString) s = g_string_new ("#!/bin/sh\n# Written by banger: the host's ");

  g_string_append_printf (s, "%s, run by the host's loader (docs/cli.md).\nexec", tool->name);
  for (guint i = 0; argv[i] != NULL; i++) {
    g_autofree char *q = g_shell_quote (argv[i]);

    g_string_append_printf (s, " %s", q);
  }
  g_string_append (s, " \"$@\"\n");
  return g_string_free (g_steal_pointer (&s), FALSE);
}

static gboolean
tar_add_wrapper (struct archive *w, const BangerGuestTool *tool, const char *base,
                 const char *argv0, GError **error)
{
  g_autofree char *script = wrapper_script (tool, argv0);
  g_autofree char *name = g_strdup_printf ("%s/bin/%s", base, argv0);

  return tar_add (w, name, 0755, script, strlen (script), error);
}

static gboolean
produce_tool (int fd, gpointer data, GError **error)
{
  BangerGuestTool *tool = data;
  struct archive *w;
  g_autofree char *base = g_path_get_basename (tool->dir);
  g_autofree char *done_name = g_strdup_printf ("%s/" DONE_MARK, base);
  gboolean ok = FALSE;

  if (!banger_archive_load (error))
    return FALSE;
  w = archive_write_new ();
  archive_write_set_format_pax_restricted (w);
  if (archive_write_open_fd (w, fd) != ARCHIVE_OK) {
    tar_error (w, error);
    goto out;
  }
  for (guint i = 0; i < tool->files->len; i++) {
    ToolFile *f = &g_array_index (tool->files, ToolFile, i);
    g_autofree char *contents = NULL;
    g_autofree char *name = g_build_filename (base, f->name, NULL);
    gsize len;

    /* Read whole: a library is a few megabytes at most. */
    if (!g_file_get_contents (f->host_path, &contents, &len, error))
      goto out;
    if (!tar_add (w, name, f->mode, contents, len, error))
      goto out;
  }
  if (!tar_add_wrapper (w, tool, base, tool->name, error))
    goto out;
  for (guint i = 0; tool->aliases[i] != NULL; i++)
    if (!tar_add_wrapper (w, tool, base, tool->aliases[i], error))
      goto out;
  if (!tar_add (w, done_name, 0644, "", 0, error))
    goto out;
  if (archive_write_close (w) != ARCHIVE_OK) {
    tar_error (w, error);
    goto out;
  }
  ok = TRUE;
out:
  if (!ok)
    archive_write_fail (w);
  archive_write_free (w);
  return ok;
}

gboolean
banger_guest_tool_ensure (BangerGuestTool *tool, BangerVM *vm, const char *name, GError **error)
{
  g_autofree char *done = g_strdup_printf ("%s/" DONE_MARK, tool->dir);
  const char *probe[] = { "test", "-e", done, NULL };
  BangerExecSpec spec = { .argv = probe, .quiet = TRUE };
  int status = -1;

  g_autoptr (GError) local = NULL;

  /* A guest without `test` answers 127: the tool goes in again, which
   * costs time but nothing else. */
  if (!banger_cli_exec (vm, name, &spec, &status, error))
    return FALSE;
  if (status == 0)
    return TRUE;
  g_info ("copying the host's %s into VM “%s” (%s)", tool->name, name, tool->dir);
  if (banger_cli_copy_in (vm, TOOLS_DIR, produce_tool, tool, &local))
    return TRUE;
  /* Two first sessions at once (rsync in parallel) both copy; the second
   * one's links may then find the files in place. Whoever finished, the
   * tool is there. */
  status = -1;
  if (banger_cli_exec (vm, name, &spec, &status, NULL) && status == 0)
    return TRUE;
  g_propagate_prefixed_error (error, g_steal_pointer (&local),
                              _ ("cannot copy the host's %s into VM “%s”: "), tool->name, name);
  return FALSE;
}
