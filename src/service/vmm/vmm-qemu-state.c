/* The qemu driver's saved state: a paused guest migrated into a file, and a
 * QEMU started with "-incoming defer" that reads it back (vmm-qemu-state.h).
 * Both sides poll query-migrate: QEMU 7.2 only sends MIGRATION events to a
 * monitor that enabled the "events" capability, and a poll needs no state
 * kept across QMP replies. */

#include "vmm-qemu-state.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "banger-error.h"
#include "qmp.h"

/* QMP replies come at once; the migration itself is polled. */
#define QMP_TIMEOUT_MS 10000
/* Between two query-migrate: short, since a small guest saves in tens of
 * milliseconds and each poll adds up to this much to suspend and resume. */
#define POLL_INTERVAL_US 5000
/* Once the stream is loaded QEMU starts the guest from its main loop. */
#define RUNNING_WAIT_MS 30000
/* QEMU throttles a migration to 128 MiB/s by default, for a live migration
 * over a shared network; a paused guest into a local file has nobody to
 * share with. */
#define MAX_BANDWIDTH_BYTES_S (G_GINT64_CONSTANT (64) << 30)

static JsonNode *
run (BangerQmp *qmp, const char *command, JsonObject *args, GError **error)
{
  return banger_qmp_execute (qmp, command, args, error);
}

/* Polls query-migrate until the migration ends: TRUE for "completed",
 * FALSE with @error naming QEMU's reason for "failed" or "cancelled".
 * @out_fd, when not -1, is the file a save writes: between two polls the
 * kernel is asked to start writing back what QEMU wrote so far, so the
 * disk works while QEMU still migrates and the final fsync() waits for the
 * tail only (an fsync after the stream took as long as the stream). */
static gboolean
wait_migration (BangerQmp *qmp, const char *what, int out_fd, GError **error)
{
  gint64 deadline = g_get_monotonic_time () + BANGER_VMM_STATE_TIMEOUT_MS * G_TIME_SPAN_MILLISECOND;

  for (;;) {
    g_autoptr (JsonNode) reply = run (qmp, "query-migrate", NULL, error);
    JsonObject *info;
    const char *status;

    if (reply == NULL) {
      g_prefix_error (error, "%s: ", what);
      return FALSE;
    }
    info = JSON_NODE_HOLDS_OBJECT (reply) ? json_node_get_object (reply) : NULL;
    status = info ? json_object_get_string_member_with_default (info, "status", "") : "";
    if (g_str_equal (status, "completed"))
      return TRUE;
    if (g_str_equal (status, "failed") || g_str_equal (status, "cancelled")) {
      g_set_error (
          error, BANGER_ERROR, BANGER_ERROR_FAILED, "%s %s: %s", what, status,
          json_object_get_string_member_with_default (info, "error-desc", "QEMU gave no reason"));
      return FALSE;
    }
    if (g_get_monotonic_time () > deadline) {
      g_autoptr (JsonNode) cancel = run (qmp, "migrate_cancel", NULL, NULL);
      g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "%s: not done within %d s (%s)", what,
                   BANGER_VMM_STATE_TIMEOUT_MS / 1000, *status ? status : "no status");
      return FALSE;
    }
    /* Only starts the writeback (no wait): a failure shows in the fsync. */
    if (out_fd >= 0)
      sync_file_range (out_fd, 0, 0, SYNC_FILE_RANGE_WRITE);
    g_usleep (POLL_INTERVAL_US);
  }
}

char *
banger_vmm_qemu_ram_file (const char *state_dir)
{
  char *path = g_build_filename (state_dir, BANGER_VMM_MEMORY_FILE, NULL);

  if (g_file_test (path, G_FILE_TEST_IS_REGULAR))
    return path;
  g_free (path);
  return NULL;
}

/* x-ignore-shared: the stream leaves out RAM blocks that are shared
 * memory, which the memory file holds instead (vmm-qemu-state.h). Both
 * sides must agree: it changes the stream's layout. */
static gboolean
set_ignore_shared (BangerQmp *qmp, gboolean on, GError **error)
{
  g_autoptr (JsonObject) args = json_object_new ();
  JsonArray *caps = json_array_new ();
  JsonObject *cap = json_object_new ();
  g_autoptr (JsonNode) reply = NULL;

  json_object_set_string_member (cap, "capability", "x-ignore-shared");
  json_object_set_boolean_member (cap, "state", on);
  json_array_add_object_element (caps, cap);
  json_object_set_array_member (args, "capabilities", caps);
  reply = run (qmp, "migrate-set-capabilities", args, error);
  return reply != NULL;
}

/* The memfd a QEMU started with config->ram_shared keeps the guest memory
 * in, opened through /proc (QEMU runs as bangerd's user; @pid was checked
 * to be this VM's QEMU), or -1 for a QEMU without one. */
static int
open_ram_memfd (guint pid)
{
  g_autofree char *fd_dir = g_strdup_printf ("/proc/%u/fd", pid);
  g_autoptr (GDir) d = g_dir_open (fd_dir, 0, NULL);
  const char *name;

  while (d != NULL && (name = g_dir_read_name (d)) != NULL) {
    g_autofree char *path = g_build_filename (fd_dir, name, NULL);
    g_autofree char *target = g_file_read_link (path, NULL);

    /* QEMU names its memfd after the backend's type, as readlink shows it:
     * "/memfd:memory-backend-memfd (deleted)"; qemu_argv makes only one. */
    if (target != NULL && g_str_has_prefix (target, "/memfd:memory-backend-memfd "))
      return open (path, O_RDONLY | O_CLOEXEC);
  }
  return -1;
}

#define RAM_PAGE       4096
#define RAM_COPY_CHUNK (1 << 20)

static gboolean
pwrite_all (int fd, const guint8 *buf, gsize len, off_t off)
{
  while (len > 0) {
    ssize_t n = pwrite (fd, buf, len, off);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      if (n == 0)
        errno = EIO;
      return FALSE;
    }
    buf += n;
    len -= (gsize)n;
    off += n;
  }
  return TRUE;
}

/* Writes @len bytes of memory read at @off into @fd at the same offset,
 * leaving a hole for every page of zeros. */
static gboolean
write_sparse (int fd, const guint8 *buf, gsize len, off_t off)
{
  static const guint8 zero[RAM_PAGE];
  gsize p = 0;

  while (p < len) {
    gsize end;

    if (memcmp (buf + p, zero, MIN (RAM_PAGE, len - p)) == 0) {
      p += RAM_PAGE;
      continue;
    }
    for (end = p + RAM_PAGE; end < len && memcmp (buf + end, zero, MIN (RAM_PAGE, len - end)) != 0;
         end += RAM_PAGE)
      ;
    end = MIN (end, len);
    if (!pwrite_all (fd, buf + p, end - p, off + (off_t)p))
      return FALSE;
    p = end;
  }
  return TRUE;
}

/* Copies the guest memory (@from, the memfd) into the new file @path, as
 * sparse as the memory: only what the guest ever touched is read
 * (SEEK_DATA), and pages of zeros stay holes. An idle 1 GiB guest is
 * ~120 MiB on disk. */
static gboolean
copy_ram (int from, const char *path, GError **error)
{
  g_autofree guint8 *buf = g_malloc (RAM_COPY_CHUNK);
  struct stat st;
  off_t off = 0;
  int fd, saved = 0;

  if (fstat (from, &st) < 0) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "cannot read the guest's memory: %s",
                 g_strerror (errno));
    return FALSE;
  }
  fd = open (path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "cannot create %s: %s", path,
                 g_strerror (errno));
    return FALSE;
  }
  while (saved == 0 && off < st.st_size) {
    off_t data = lseek (from, off, SEEK_DATA), hole;

    if (data < 0) {
      /* ENXIO: no data after @off. */
      saved = errno == ENXIO ? 0 : errno;
      break;
    }
    hole = lseek (from, data, SEEK_HOLE);
    if (hole < 0) {
      saved = errno;
      break;
    }
    for (off = data; off < hole;) {
      ssize_t got = pread (from, buf, MIN (RAM_COPY_CHUNK, hole - off), off);

      if (got < 0 && errno == EINTR)
        continue;
      if (got <= 0) {
        saved = got < 0 ? errno : EIO;
        break;
      }
      if (!write_sparse (fd, buf, (gsize)got, off)) {
        saved = errno;
        break;
      }
      off += got;
    }
  }
  if (saved == 0 && (ftruncate (fd, st.st_size) < 0 || fsync (fd) < 0))
    saved = errno;
  close (fd);
  if (saved != 0) {
    g_unlink (path);
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED,
                 "cannot write the guest's memory to %s: %s", path, g_strerror (saved));
    return FALSE;
  }
  return TRUE;
}

static gboolean
rename_or_error (const char *from, const char *to, GError **error)
{
  if (g_rename (from, to) == 0)
    return TRUE;
  g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "cannot rename %s: %s", from,
               g_strerror (errno));
  return FALSE;
}

static gboolean
fsync_dir (const char *dir, GError **error)
{
  int fd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  int saved;

  if (fd >= 0 && fsync (fd) == 0) {
    close (fd);
    return TRUE;
  }
  saved = errno;
  if (fd >= 0)
    close (fd);
  g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "cannot sync %s: %s", dir,
               g_strerror (saved));
  return FALSE;
}

/* Writes the stream of the (already stopped) guest into @tmp, durably. */
static gboolean
migrate_to (BangerQmp *qmp, const char *tmp, GError **error)
{
  g_autoptr (JsonObject) params = json_object_new ();
  g_autoptr (JsonObject) args = json_object_new ();
  g_autoptr (JsonNode) reply = NULL;
  gint64 start = g_get_monotonic_time (), streamed = 0;
  int fd, saved;
  gboolean ok;

  json_object_set_int_member (params, "max-bandwidth", MAX_BANDWIDTH_BYTES_S);
  reply = run (qmp, "migrate-set-parameters", params, error);
  if (reply == NULL)
    return FALSE;
  g_clear_pointer (&reply, json_node_unref);

  fd = open (tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "cannot create %s: %s", tmp,
                 g_strerror (errno));
    return FALSE;
  }
  ok = banger_qmp_getfd (qmp, BANGER_QEMU_STATE_FDNAME, fd, error);
  if (ok) {
    json_object_set_string_member (args, "uri", "fd:" BANGER_QEMU_STATE_FDNAME);
    reply = run (qmp, "migrate", args, error);
    ok = reply != NULL && wait_migration (qmp, "saving the VM's state", fd, error);
    streamed = g_get_monotonic_time ();
  }
  /* QEMU wrote through its own copy of the descriptor; ours still names
   * the file, so this fsync covers what it wrote (a full disk can show up
   * only here). */
  if (ok && fsync (fd) < 0) {
    saved = errno;
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "cannot write %s: %s", tmp,
                 g_strerror (saved));
    ok = FALSE;
  }
  if (ok)
    g_debug ("state stream written in %" G_GINT64_FORMAT " ms, synced %" G_GINT64_FORMAT " ms later",
             (streamed - start) / 1000, (g_get_monotonic_time () - streamed) / 1000);
  close (fd);
  return ok;
}

gboolean
banger_vmm_qemu_save_state (BangerVmmInstance *i, const char *state_dir, GError **error)
{
  g_autoptr (BangerQmp) qmp = banger_qmp_connect (i->control_socket, QMP_TIMEOUT_MS, error);
  g_autofree char *final = g_build_filename (state_dir, BANGER_VMM_STATE_FILE, NULL);
  g_autofree char *tmp = g_strconcat (final, ".tmp", NULL);
  g_autofree char *ram_final = g_build_filename (state_dir, BANGER_VMM_MEMORY_FILE, NULL);
  g_autofree char *ram_tmp = g_strconcat (ram_final, ".tmp", NULL);
  g_autofree char *status = NULL;
  g_autoptr (JsonNode) stopped = NULL;
  g_autoptr (GError) local = NULL;
  gboolean ok = TRUE;
  int ram_fd;

  if (qmp == NULL)
    return FALSE;
  status = banger_qmp_query_status (qmp, error);
  if (status == NULL)
    return FALSE;
  if (!g_str_equal (status, "running")) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_BAD_STATE,
                 "cannot save the state of a guest that is not running (QEMU says “%s”)", status);
    return FALSE;
  }
  /* Stopped first: a stopped guest is saved in one pass, and its disk no
   * longer changes, so the migration's final flush makes it consistent. */
  stopped = run (qmp, "stop", NULL, error);
  if (stopped == NULL)
    return FALSE;
  /* A guest whose memory is a memfd (a warm-start template's boot): the
   * memory goes into a file of its own, the stream holds the rest. */
  ram_fd = i->memory_file ? open_ram_memfd (i->pid) : -1;
  if (ram_fd >= 0) {
    ok = copy_ram (ram_fd, ram_tmp, &local) && rename_or_error (ram_tmp, ram_final, &local)
         && set_ignore_shared (qmp, TRUE, &local);
    close (ram_fd);
  }
  ok = ok && migrate_to (qmp, tmp, &local) && rename_or_error (tmp, final, &local)
       && fsync_dir (state_dir, &local);
  if (ram_fd >= 0) {
    g_autoptr (GError) reset_error = NULL;
    /* Off again, as the QEMU was started: the memfd VM's next save writes
     * its memory file again anyway, but a stream's layout should never
     * depend on an earlier save. */
    if (!set_ignore_shared (qmp, FALSE, &reset_error))
      g_warning ("after saving the guest's state: %s", reset_error->message);
  }
  if (ok)
    return TRUE;
  /* Nothing that looks like a state stays behind, and the guest goes on. */
  g_unlink (tmp);
  g_unlink (final);
  g_unlink (ram_tmp);
  g_unlink (ram_final);
  {
    g_autoptr (GError) cont_error = NULL;
    g_autoptr (JsonNode) cont = run (qmp, "cont", NULL, &cont_error);
    if (cont == NULL)
      g_prefix_error (&local, "(and the guest could not be resumed: %s) ", cont_error->message);
  }
  g_propagate_error (error, g_steal_pointer (&local));
  return FALSE;
}

/* A save still in flight (its bangerd ended mid-save, and QEMU goes on
 * with a migration by itself) is cancelled and waited for first: once it
 * completed it would stop the guest again behind a "cont". */
static void
cancel_migration (BangerQmp *qmp)
{
  g_autoptr (JsonNode) reply = run (qmp, "query-migrate", NULL, NULL);
  JsonObject *info = reply && JSON_NODE_HOLDS_OBJECT (reply) ? json_node_get_object (reply) : NULL;
  const char *status = info ? json_object_get_string_member_with_default (info, "status", "") : "";
  g_autoptr (GError) error = NULL;

  if (!*status || g_str_equal (status, "completed") || g_str_equal (status, "failed")
      || g_str_equal (status, "cancelled"))
    return;
  g_clear_pointer (&reply, json_node_unref);
  reply = run (qmp, "migrate_cancel", NULL, NULL);
  if (!wait_migration (qmp, "a save still in progress", -1, &error))
    g_debug ("%s", error->message);
}

gboolean
banger_vmm_qemu_resume_paused (BangerVmmInstance *i, GError **error)
{
  g_autoptr (BangerQmp) qmp = banger_qmp_connect (i->control_socket, QMP_TIMEOUT_MS, error);
  g_autoptr (JsonNode) reply = NULL;

  if (qmp == NULL)
    return FALSE;
  cancel_migration (qmp);
  reply = run (qmp, "cont", NULL, error);
  return reply != NULL;
}

/* After the stream is in, QEMU puts the guest in the run state the source
 * had when it was saved ("inmigrate" until then): save_state() stopped it
 * first, so it comes back "paused" and is continued here. */
static gboolean
wait_running (BangerQmp *qmp, GError **error)
{
  gint64 deadline = g_get_monotonic_time () + RUNNING_WAIT_MS * G_TIME_SPAN_MILLISECOND;

  for (;;) {
    g_autofree char *status = banger_qmp_query_status (qmp, error);

    if (status == NULL)
      return FALSE;
    if (g_str_equal (status, "running"))
      return TRUE;
    if (g_str_equal (status, "paused")) {
      g_autoptr (JsonNode) cont = run (qmp, "cont", NULL, error);
      if (cont == NULL)
        return FALSE;
      continue;
    }
    if (g_get_monotonic_time () > deadline) {
      g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED,
                   "the restored guest did not run within %d s (QEMU says “%s”)",
                   RUNNING_WAIT_MS / 1000, status);
      return FALSE;
    }
    g_usleep (POLL_INTERVAL_US);
  }
}

gboolean
banger_vmm_qemu_load_state (BangerVmmInstance *i, const char *state_dir, GError **error)
{
  g_autofree char *path = g_build_filename (state_dir, BANGER_VMM_STATE_FILE, NULL);
  g_autofree char *ram_file = banger_vmm_qemu_ram_file (state_dir);
  g_autoptr (BangerQmp) qmp = NULL;
  g_autoptr (JsonObject) args = json_object_new ();
  g_autoptr (JsonNode) reply = NULL;
  gboolean ok;
  int fd;

  fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "cannot open the saved state %s: %s",
                 path, g_strerror (errno));
    return FALSE;
  }
  qmp = banger_qmp_connect (i->control_socket, QMP_TIMEOUT_MS, error);
  ok = qmp != NULL && banger_qmp_getfd (qmp, BANGER_QEMU_STATE_FDNAME, fd, error);
  close (fd);
  if (!ok)
    return FALSE;
  /* A state with a memory file was saved without the memory, which QEMU
   * already maps from that file (qemu_argv). */
  if (ram_file != NULL && !set_ignore_shared (qmp, TRUE, error))
    return FALSE;
  json_object_set_string_member (args, "uri", "fd:" BANGER_QEMU_STATE_FDNAME);
  reply = run (qmp, "migrate-incoming", args, error);
  if (reply == NULL)
    return FALSE;
  /* QEMU 7.2 exits when it cannot load a stream: the poll then fails on a
   * closed socket, which the message says in the user's terms. */
  if (!wait_migration (qmp, "restoring the VM's state", -1, error)) {
    g_prefix_error (error, "%s (a corrupt or incompatible saved state?): ", path);
    return FALSE;
  }
  /* Off before the guest runs: its memory is a private mapping now, which
   * a later save (a suspend) must write into the stream, in the layout a
   * QEMU without the capability reads. */
  if (ram_file != NULL && !set_ignore_shared (qmp, FALSE, error))
    return FALSE;
  if (!wait_running (qmp, error)) {
    g_prefix_error (error, "%s (a corrupt or incompatible saved state?): ", path);
    return FALSE;
  }
  return TRUE;
}
