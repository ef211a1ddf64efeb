/* The qemu driver's saved state: a paused guest migrated into a file, and a
 * QEMU started with "-incoming defer" that reads it back (vmm-qemu-state.h).
 * Both sides poll query-migrate: QEMU 7.2 only sends MIGRATION events to a
 * monitor that enabled the "events" capability, and a poll needs no state
 * kept across QMP replies. */

#include "vmm-qemu-state.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
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
 * FALSE with @error naming QEMU's reason for "failed" or "cancelled". */
static gboolean
wait_migration (BangerQmp *qmp, const char *what, GError **error)
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
    g_usleep (POLL_INTERVAL_US);
  }
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
    ok = reply != NULL && wait_migration (qmp, "saving the VM's state", error);
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
  close (fd);
  return ok;
}

gboolean
banger_vmm_qemu_save_state (BangerVmmInstance *i, const char *state_dir, GError **error)
{
  g_autoptr (BangerQmp) qmp = banger_qmp_connect (i->control_socket, QMP_TIMEOUT_MS, error);
  g_autofree char *final = g_build_filename (state_dir, BANGER_VMM_STATE_FILE, NULL);
  g_autofree char *tmp = g_strconcat (final, ".tmp", NULL);
  g_autofree char *status = NULL;
  g_autoptr (JsonNode) stopped = NULL;
  g_autoptr (GError) local = NULL;

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
  if (migrate_to (qmp, tmp, &local) && g_rename (tmp, final) == 0 && fsync_dir (state_dir, &local))
    return TRUE;
  if (local == NULL)
    g_set_error (&local, BANGER_ERROR, BANGER_ERROR_FAILED, "cannot rename %s: %s", tmp,
                 g_strerror (errno));
  /* Nothing that looks like a state stays behind, and the guest goes on. */
  g_unlink (tmp);
  g_unlink (final);
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
  if (!wait_migration (qmp, "a save still in progress", &error))
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
  json_object_set_string_member (args, "uri", "fd:" BANGER_QEMU_STATE_FDNAME);
  reply = run (qmp, "migrate-incoming", args, error);
  if (reply == NULL)
    return FALSE;
  /* QEMU 7.2 exits when it cannot load a stream: the poll then fails on a
   * closed socket, which the message says in the user's terms. */
  if (!wait_migration (qmp, "restoring the VM's state", error) || !wait_running (qmp, error)) {
    g_prefix_error (error, "%s (a corrupt or incompatible saved state?): ", path);
    return FALSE;
  }
  return TRUE;
}
