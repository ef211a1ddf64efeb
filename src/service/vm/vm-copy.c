/* CopyIn and CopyOut. The bytes cross as a tar stream between bangerd and
 * the guest's own `tar` (busybox or GNU), over the agent's exec stdin and
 * stdout; bangerd reads every archive with libarchive on the way, in both
 * directions, so that an entry that would escape its target is refused
 * before the guest sees it, and the guest's output is checked before the
 * caller sees it. CopyIn extracts into a fresh staging directory inside the
 * target and only then hard-links the finished entries into place (`cp -a
 * -l`), so a failed or cancelled copy leaves no half-written file under a
 * final name. docs/repo-workflow.md explains the choice. */

#include "vm-copy.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "archive-api.h"
#include "banger-error.h"
#include "validate.h"

#define COPY_BLOCK (64 * 1024)
#define STDERR_MAX 2048

typedef struct {
  BangerVmRuntime *rt;
  GTask *task;
  char *name;
  gboolean copy_in;
  char *guest_dir;  /* CopyIn target */
  char *staging;    /* CopyIn: guest_dir/.banger-copy-<random> */
  char *guest_path; /* CopyOut source */
  guint32 uid, gid; /* CopyIn owner */
  int caller_fd;
  int pump_fd;   /* our end of the socket pair the guest's tar talks to */
  int stderr_fd; /* memfd the guest's tar writes its complaints to */
  char *token;
  GPtrArray *top_names; /* CopyIn: first components of the entries */
  guint pending;        /* transfer step: the exec and the pump */
  GError *pump_error;
  gboolean pump_write_failed; /* the pump's error is the guest side's */
  GError *exec_error;
  int exec_status;
  GError *final_error;
} CopyOp;

static void
copy_op_free (CopyOp *op)
{
  g_free (op->name);
  g_free (op->guest_dir);
  g_free (op->staging);
  g_free (op->guest_path);
  if (op->caller_fd >= 0)
    close (op->caller_fd);
  if (op->pump_fd >= 0)
    close (op->pump_fd);
  if (op->stderr_fd >= 0)
    close (op->stderr_fd);
  g_free (op->token);
  g_clear_pointer (&op->top_names, g_ptr_array_unref);
  g_clear_error (&op->pump_error);
  g_clear_error (&op->exec_error);
  g_clear_error (&op->final_error);
  g_free (op);
}

static void
copy_op_return (CopyOp *op, GError *error)
{
  if (error != NULL) {
    banger_error_convert (&error);
    g_task_return_error (op->task, error);
  } else {
    g_task_return_boolean (op->task, TRUE);
  }
  g_object_unref (op->task);
  copy_op_free (op);
}

/* ---- entry names ---------------------------------------------------------------------- */

char *
banger_vm_copy_normalize_entry (const char *name, GError **error)
{
  g_auto (GStrv) parts = NULL;
  g_autoptr (GString) out = g_string_new (NULL);

  if (name == NULL || *name == '/') {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
                 "tar entry “%s” is an absolute path: it would escape the target directory",
                 name != NULL ? name : "");
    return NULL;
  }
  parts = g_strsplit (name, "/", -1);
  for (guint i = 0; parts[i] != NULL; i++) {
    if (*parts[i] == '\0' || g_str_equal (parts[i], "."))
      continue;
    if (g_str_equal (parts[i], "..")) {
      g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
                   "tar entry “%s” has a “..” component: it would escape the target directory",
                   name);
      return NULL;
    }
    if (out->len > 0)
      g_string_append_c (out, '/');
    g_string_append (out, parts[i]);
  }
  return g_string_free (g_steal_pointer (&out), FALSE);
}

/* A path of the archive that has a symlink of the same archive as a
 * proper prefix would be written through that link, wherever it points. */
static gboolean
check_not_through_symlink (GHashTable *symlinks, const char *entry, const char *path,
                           GError **error)
{
  for (const char *p = strchr (path, '/'); p != NULL; p = strchr (p + 1, '/')) {
    g_autofree char *prefix = g_strndup (path, p - path);
    if (g_hash_table_contains (symlinks, prefix)) {
      g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
                   "tar entry “%s” goes through the symlink “%s” of the same archive: "
                   "it could escape the target directory",
                   entry, prefix);
      return FALSE;
    }
  }
  return TRUE;
}

/* ---- the pump: caller's tar → guest (CopyIn) or guest → caller (CopyOut) ------------- */

typedef struct {
  int fd;
  gboolean discard; /* the copy failed: write nothing more (no tar trailer) */
} WriteTarget;

static la_ssize_t
fd_write_cb (struct archive *a, void *data, const void *buf, size_t len)
{
  WriteTarget *t = data;
  ssize_t n;

  if (t->discard)
    return (la_ssize_t)len;
  do {
    n = send (t->fd, buf, len, MSG_NOSIGNAL);
    if (n < 0 && errno == ENOTSOCK)
      n = write (t->fd, buf, len); /* SIGPIPE is blocked in pump threads */
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    archive_set_error (a, errno, "%s", g_strerror (errno));
    return -1;
  }
  return n;
}

static gboolean
archive_fail (struct archive *a, const char *what, GError **error)
{
  const char *msg = archive_error_string (a);
  g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "%s: %s", what,
               msg != NULL ? msg : "unknown libarchive error");
  return FALSE;
}

static gboolean
pump (CopyOp *op, int in_fd, int out_fd, GError **error)
{
  struct archive *r = archive_read_new ();
  struct archive *w = archive_write_new ();
  g_autoptr (GHashTable) symlinks = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_autoptr (GHashTable) tops = g_hash_table_new (g_str_hash, g_str_equal);
  g_autofree char *buf = g_malloc (COPY_BLOCK);
  const char *from = op->copy_in ? "the tar stream sent to CopyIn" : "the guest's tar stream";
  const char *to = op->copy_in ? "the guest" : "the CopyOut descriptor";
  WriteTarget target = { out_fd, FALSE };
  struct archive_entry *entry;
  gboolean ok = FALSE;
  int rc;

  archive_read_support_format_tar (r);
  archive_write_set_format_pax_restricted (w);
  /* Fewer, larger writes: each becomes an agent DATA frame (at most 64 KiB). */
  archive_write_set_bytes_per_block (w, COPY_BLOCK);
  if (archive_read_open_fd (r, in_fd, COPY_BLOCK) != ARCHIVE_OK) {
    archive_fail (r, from, error);
    goto out;
  }
  if (archive_write_open (w, &target, NULL, fd_write_cb, NULL) != ARCHIVE_OK) {
    archive_fail (w, to, error);
    goto out;
  }
  while ((rc = archive_read_next_header (r, &entry)) == ARCHIVE_OK || rc == ARCHIVE_WARN) {
    const char *raw = archive_entry_pathname (entry);
    const char *hardlink = archive_entry_hardlink (entry);
    mode_t type = archive_entry_filetype (entry);
    g_autofree char *path = banger_vm_copy_normalize_entry (raw, error);
    g_autofree char *link = NULL;
    la_ssize_t n;

    if (path == NULL)
      goto out;
    if (*path == '\0')
      continue; /* "." itself: the target directory is the caller's, not the archive's */
    if (hardlink == NULL && type != AE_IFREG && type != AE_IFDIR && type != AE_IFLNK) {
      g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
                   "tar entry “%s” is a device, fifo or socket: only files, directories and "
                   "links are copied",
                   raw);
      goto out;
    }
    if (!check_not_through_symlink (symlinks, raw, path, error))
      goto out;
    if (g_hash_table_contains (symlinks, path)) {
      if (type == AE_IFDIR) {
        g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
                     "tar entry “%s” is a directory over the symlink of the same name: "
                     "it could escape the target directory",
                     raw);
        goto out;
      }
      g_hash_table_remove (symlinks, path);
    }
    if (hardlink != NULL) {
      link = banger_vm_copy_normalize_entry (hardlink, error);
      if (link == NULL || !check_not_through_symlink (symlinks, hardlink, link, error))
        goto out;
      if (*link == '\0') {
        g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
                     "tar entry “%s” is a hard link to the archive's root", raw);
        goto out;
      }
      archive_entry_set_hardlink (entry, link);
    } else if (type == AE_IFLNK) {
      g_hash_table_add (symlinks, g_strdup (path));
    }
    archive_entry_set_pathname (entry, path);
    if (op->copy_in) {
      g_autofree char *top = g_strndup (path, strcspn (path, "/"));
      /* Owners are the caller's choice, never names the guest would look up. */
      archive_entry_set_uid (entry, op->uid);
      archive_entry_set_gid (entry, op->gid);
      archive_entry_set_uname (entry, NULL);
      archive_entry_set_gname (entry, NULL);
      if (!g_hash_table_contains (tops, top)) {
        g_ptr_array_add (op->top_names, g_strdup (top));
        g_hash_table_add (tops, g_ptr_array_index (op->top_names, op->top_names->len - 1));
      }
    }
    if (archive_write_header (w, entry) < ARCHIVE_WARN) {
      op->pump_write_failed = TRUE;
      archive_fail (w, to, error);
      goto out;
    }
    while ((n = archive_read_data (r, buf, COPY_BLOCK)) > 0) {
      if (archive_write_data (w, buf, n) < 0) {
        op->pump_write_failed = TRUE;
        archive_fail (w, to, error);
        goto out;
      }
    }
    if (n < 0) {
      archive_fail (r, from, error);
      goto out;
    }
  }
  if (rc != ARCHIVE_EOF) {
    archive_fail (r, from, error);
    goto out;
  }
  if (archive_write_close (w) != ARCHIVE_OK) {
    op->pump_write_failed = TRUE;
    archive_fail (w, to, error);
    goto out;
  }
  ok = TRUE;
out:
  /* A failed copy must not end with a tar trailer: the reader on the
   * other side is to see a broken archive, not a shorter valid one. The
   * writer is still closed, into nowhere, because archive_write_fail() +
   * free skips the close and leaks the 64 KiB block buffer, and a close
   * whose write fails leaks the writer's state: on every failed copy
   * (found by fuzz/fuzz-copyout-pump). */
  if (!ok) {
    target.discard = TRUE;
    archive_write_close (w);
  }
  archive_write_free (w);
  archive_read_free (r);
  return ok;
}

static gboolean
kill_guest_tar_cb (gpointer user_data)
{
  CopyOp *op = user_data;
  g_autoptr (GError) error = NULL;

  if (!banger_vm_runtime_signal_exec (op->rt, op->name, op->token, SIGKILL, &error))
    g_debug ("stopping the guest's tar: %s", error->message);
  return G_SOURCE_REMOVE;
}

static void
pump_thread (GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
  CopyOp *op = task_data;
  GError *error = NULL;
  sigset_t pipe_set;
  int in_fd = op->copy_in ? op->caller_fd : op->pump_fd;
  int out_fd = op->copy_in ? op->pump_fd : op->caller_fd;

  /* A reader that went away must be an error, not the end of bangerd. */
  sigemptyset (&pipe_set);
  sigaddset (&pipe_set, SIGPIPE);
  pthread_sigmask (SIG_BLOCK, &pipe_set, NULL);
  if (!pump (op, in_fd, out_fd, &error)) {
    struct timespec zero = { 0, 0 };
    while (sigtimedwait (&pipe_set, NULL, &zero) > 0)
      ;
    if (!op->copy_in) {
      /* The agent client writes the guest's output into our socket and
       * must not meet a closed end: stop the guest's tar, then read what
       * is still coming until it ends. */
      char sink[4096];
      g_main_context_invoke (g_task_get_context (task), kill_guest_tar_cb, op);
      while (read (op->pump_fd, sink, sizeof sink) > 0)
        ;
    }
    g_task_return_error (task, error);
    return;
  }
  g_task_return_boolean (task, TRUE);
}

/* ---- running commands in the guest ---------------------------------------------------- */

static char *
read_stderr (CopyOp *op)
{
  char buf[STDERR_MAX + 1];
  ssize_t n = pread (op->stderr_fd, buf, STDERR_MAX, 0);

  if (n <= 0)
    return g_strdup ("(no message)");
  buf[n] = '\0';
  return g_strstrip (g_strdup (buf));
}

static void
run_guest (CopyOp *op, const char *const *argv, int in_fd, int out_fd, gboolean with_token,
           GAsyncReadyCallback callback)
{
  GVariantDict dict;
  g_autoptr (GVariant) options = NULL;

  /* Each command starts with an empty stderr file; the duplicates the
   * agent client holds share its offset, hence the seek. */
  if (ftruncate (op->stderr_fd, 0) < 0 || lseek (op->stderr_fd, 0, SEEK_SET) < 0)
    g_debug ("resetting the stderr memfd: %s", g_strerror (errno));
  g_variant_dict_init (&dict, NULL);
  if (with_token)
    g_variant_dict_insert (&dict, "token", "s", op->token);
  options = g_variant_ref_sink (g_variant_dict_end (&dict));
  banger_vm_runtime_exec_async (op->rt, op->name, argv, options, in_fd, out_fd, op->stderr_fd,
                                callback, op);
}

/* The guest command's error (BadState, connection) or, for a non-zero
 * exit, one that says what failed with the command's own message. */
static GError *
guest_result (CopyOp *op, GAsyncResult *res, const char *what)
{
  GError *error = NULL;
  int status = banger_vm_runtime_exec_finish (op->rt, res, &error);
  g_autofree char *msg = NULL;

  if (error != NULL)
    return error;
  if (status == 0)
    return NULL;
  msg = read_stderr (op);
  return g_error_new (BANGER_ERROR,
                      strstr (msg, "No such file") != NULL ? BANGER_ERROR_NOT_FOUND
                                                           : BANGER_ERROR_FAILED,
                      "%s in VM “%s” failed (exit status %d): %s", what, op->name, status, msg);
}

/* ---- CopyIn --------------------------------------------------------------------------- */

static void
in_cleaned_cb (GObject *source, GAsyncResult *res, gpointer user_data)
{
  CopyOp *op = user_data;
  g_autoptr (GError) error = guest_result (op, res, "removing the staging directory");

  if (error != NULL)
    g_warning ("CopyIn into %s: %s", op->guest_dir, error->message);
  copy_op_return (op, g_steal_pointer (&op->final_error));
}

static void
in_cleanup (CopyOp *op)
{
  const char *argv[] = { "rm", "-rf", op->staging, NULL };
  run_guest (op, argv, -1, -1, FALSE, in_cleaned_cb);
}

static void
in_committed_cb (GObject *source, GAsyncResult *res, gpointer user_data)
{
  CopyOp *op = user_data;

  op->final_error = guest_result (op, res, "moving the copied entries into place");
  in_cleanup (op);
}

static void
in_commit (CopyOp *op)
{
  g_autoptr (GPtrArray) argv = g_ptr_array_new_with_free_func (g_free);

  if (op->top_names->len == 0) {
    in_cleanup (op);
    return;
  }
  /* -l: each file appears under its final name whole (a link to the
   * finished staging copy), never half-written; cp refuses to write
   * through a symlink that already sits in the target. */
  g_ptr_array_add (argv, g_strdup ("cp"));
  g_ptr_array_add (argv, g_strdup ("-a"));
  g_ptr_array_add (argv, g_strdup ("-l"));
  g_ptr_array_add (argv, g_strdup ("-f"));
  for (guint i = 0; i < op->top_names->len; i++)
    g_ptr_array_add (argv,
                     g_build_filename (op->staging, g_ptr_array_index (op->top_names, i), NULL));
  g_ptr_array_add (argv, g_strconcat (op->guest_dir, "/", NULL));
  g_ptr_array_add (argv, NULL);
  run_guest (op, (const char *const *)argv->pdata, -1, -1, FALSE, in_committed_cb);
}

static void
transfer_step_done (CopyOp *op)
{
  g_debug ("%s in VM %s: a transfer step is done (%u left)", op->copy_in ? "CopyIn" : "CopyOut",
           op->name, op->pending - 1);
  if (--op->pending > 0)
    return;
  /* The more telling error: a refused entry or a broken source rather than
   * the guest's complaint about the stream we then cut; but the guest's own
   * error (BadState, tar failing) rather than our broken pipe to it. */
  if (op->pump_error != NULL && op->copy_in && !op->pump_write_failed)
    op->final_error = g_steal_pointer (&op->pump_error);
  else if (op->exec_error != NULL)
    op->final_error = g_steal_pointer (&op->exec_error);
  else if (op->pump_error != NULL)
    op->final_error = g_steal_pointer (&op->pump_error);
  if (!op->copy_in) {
    copy_op_return (op, g_steal_pointer (&op->final_error));
  } else if (op->final_error != NULL) {
    in_cleanup (op);
  } else {
    in_commit (op);
  }
}

static void
pump_done_cb (GObject *source, GAsyncResult *res, gpointer user_data)
{
  CopyOp *op = user_data;

  g_task_propagate_boolean (G_TASK (res), &op->pump_error);
  g_debug ("%s in VM %s: the host side of the stream ended%s%s", op->copy_in ? "CopyIn" : "CopyOut",
           op->name, op->pump_error ? ": " : "", op->pump_error ? op->pump_error->message : "");
  close (op->pump_fd);
  op->pump_fd = -1;
  transfer_step_done (op);
}

static void
transfer_exec_cb (GObject *source, GAsyncResult *res, gpointer user_data)
{
  CopyOp *op = user_data;

  op->exec_error
      = guest_result (op, res, op->copy_in ? "extracting with tar" : "archiving with tar");
  g_debug ("%s in VM %s: the guest's tar ended%s%s", op->copy_in ? "CopyIn" : "CopyOut", op->name,
           op->exec_error ? ": " : "", op->exec_error ? op->exec_error->message : "");
  transfer_step_done (op);
}

static void
start_transfer (CopyOp *op, const char *const *argv)
{
  int sv[2];
  g_autoptr (GTask) pump_task = NULL;

  if (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
    copy_op_return (
        op, g_error_new (BANGER_ERROR, BANGER_ERROR_FAILED, "socketpair: %s", g_strerror (errno)));
    return;
  }
  op->pump_fd = sv[0];
  op->pending = 2;
  run_guest (op, argv, op->copy_in ? sv[1] : -1, op->copy_in ? -1 : sv[1], TRUE, transfer_exec_cb);
  close (sv[1]); /* the exec holds its own duplicate */
  pump_task = g_task_new (NULL, NULL, pump_done_cb, op);
  g_task_set_task_data (pump_task, op, NULL);
  g_task_run_in_thread (pump_task, pump_thread);
}

static void
in_prepared_cb (GObject *source, GAsyncResult *res, gpointer user_data)
{
  CopyOp *op = user_data;
  GError *error = guest_result (op, res, "creating the target directory");
  const char *argv[] = { "tar", "-x", "-f", "-", "-C", op->staging, NULL };

  if (error != NULL) {
    copy_op_return (op, error);
    return;
  }
  start_transfer (op, argv);
}

static gboolean
parse_owner (const char *owner, guint32 *uid, guint32 *gid, GError **error)
{
  g_auto (GStrv) parts = g_strsplit (owner, ":", -1);
  guint64 u, g;

  if (g_strv_length (parts) != 2
      || !g_ascii_string_to_unsigned (parts[0], 10, 0, G_MAXUINT32 - 1, &u, NULL)
      || !g_ascii_string_to_unsigned (parts[1], 10, 0, G_MAXUINT32 - 1, &g, NULL)) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
                 "owner “%s” is not numeric “uid:gid”", owner);
    return FALSE;
  }
  *uid = u;
  *gid = g;
  return TRUE;
}

static gboolean
check_guest_path (const char *what, const char *path, GError **error)
{
  if (path == NULL || *path != '/') {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
                 "%s “%s” is not an absolute path", what, path != NULL ? path : "");
    return FALSE;
  }
  return TRUE;
}

static CopyOp *
copy_op_new (BangerVmRuntime *rt, const char *name, int fd, GAsyncReadyCallback callback,
             gpointer user_data)
{
  CopyOp *op = g_new0 (CopyOp, 1);
  guint8 nonce[8];

  op->rt = rt;
  op->task = g_task_new (NULL, NULL, callback, user_data);
  op->name = g_strdup (name);
  op->caller_fd = fcntl (fd, F_DUPFD_CLOEXEC, 3);
  op->pump_fd = -1;
  op->stderr_fd = memfd_create ("banger-copy-stderr", MFD_CLOEXEC);
  for (guint i = 0; i < sizeof nonce; i++)
    nonce[i] = g_random_int_range (0, 256);
  op->token = g_strdup_printf ("banger-copy-%02x%02x%02x%02x%02x%02x%02x%02x", nonce[0], nonce[1],
                               nonce[2], nonce[3], nonce[4], nonce[5], nonce[6], nonce[7]);
  op->top_names = g_ptr_array_new_with_free_func (g_free);
  return op;
}

void
banger_vm_copy_in_async (BangerVmRuntime *rt, const char *name, int source_fd,
                         const char *guest_dir, GVariant *options, GAsyncReadyCallback callback,
                         gpointer user_data)
{
  static const char *const allowed[] = { "owner", "s", NULL };
  CopyOp *op = copy_op_new (rt, name, source_fd, callback, user_data);
  const char *owner = "0:0";
  GError *error = NULL;

  op->copy_in = TRUE;
  g_variant_lookup (options, "owner", "&s", &owner);
  if (!banger_validate_options (options, allowed, &error)
      || !check_guest_path ("CopyIn: guest_dir", guest_dir, &error)
      || !parse_owner (owner, &op->uid, &op->gid, &error) || !banger_archive_load (&error)) {
    copy_op_return (op, error);
    return;
  }
  if (op->caller_fd < 0 || op->stderr_fd < 0) {
    copy_op_return (op, g_error_new (BANGER_ERROR, BANGER_ERROR_FAILED, "CopyIn: no descriptor: %s",
                                     g_strerror (errno)));
    return;
  }
  op->guest_dir = g_canonicalize_filename (guest_dir, "/");
  /* The token is random, so the staging name cannot meet an entry of the
   * target; the leading dot keeps it out of a plain `ls`. */
  op->staging = g_strdup_printf ("%s%s.%s", op->guest_dir,
                                 g_str_equal (op->guest_dir, "/") ? "" : "/", op->token);
  {
    const char *argv[] = { "mkdir", "-p", op->guest_dir, op->staging, NULL };
    run_guest (op, argv, -1, -1, FALSE, in_prepared_cb);
  }
}

/* ---- CopyOut -------------------------------------------------------------------------- */

void
banger_vm_copy_out_async (BangerVmRuntime *rt, const char *name, const char *guest_path,
                          int dest_fd, GVariant *options, GAsyncReadyCallback callback,
                          gpointer user_data)
{
  static const char *const allowed[] = { NULL };
  CopyOp *op = copy_op_new (rt, name, dest_fd, callback, user_data);
  GError *error = NULL;
  g_autofree char *path = NULL;
  g_autofree char *parent = NULL;
  g_autofree char *base = NULL;

  if (!banger_validate_options (options, allowed, &error)
      || !check_guest_path ("CopyOut: guest_path", guest_path, &error)
      || !banger_archive_load (&error)) {
    copy_op_return (op, error);
    return;
  }
  if (op->caller_fd < 0 || op->stderr_fd < 0) {
    copy_op_return (op, g_error_new (BANGER_ERROR, BANGER_ERROR_FAILED,
                                     "CopyOut: no descriptor: %s", g_strerror (errno)));
    return;
  }
  path = g_canonicalize_filename (guest_path, "/");
  op->guest_path = g_strdup (path);
  parent = g_path_get_dirname (path);
  base = g_str_equal (path, "/") ? g_strdup (".")
                                 : g_strconcat ("./", strrchr (path, '/') + 1, NULL);
  {
    /* "./NAME" so that a name starting with "-" is not an option. */
    const char *argv[] = { "tar", "-c", "-f", "-", "-C", parent, base, NULL };
    start_transfer (op, argv);
  }
}

gboolean
banger_vm_copy_finish (GAsyncResult *result, GError **error)
{
  return g_task_propagate_boolean (G_TASK (result), error);
}
