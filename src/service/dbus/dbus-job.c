/* The org.banger.Job objects over the engine's job list (dbus-job.h). */
#include "dbus-job.h"

#include "banger-error.h"
#include "dbus-image.h"
#include "dbus-kernel.h"

#define JOBS_PATH "/org/banger/Manager/jobs"
/* Long enough for a client that polls, short enough not to pile up. */
#define JOB_LINGER_SECONDS 60

char *
banger_dbus_job_object_path (guint number)
{
  return g_strdup_printf (JOBS_PATH "/%u", number);
}

static char *
result_path (BangerEngineJob *job)
{
  const char *kind = banger_engine_job_get_result_kind (job);
  const char *name = banger_engine_job_get_result_name (job);

  if (g_strcmp0 (kind, "image") == 0)
    return banger_dbus_image_object_path (name);
  if (g_strcmp0 (kind, "kernel") == 0)
    return banger_dbus_kernel_object_path (name);
  return g_strdup ("/");
}

static void
sync_properties (BangerEngineJob *job, BangerObjectSkeleton *object)
{
  g_autoptr (BangerJob) iface = NULL;
  g_autofree char *message = banger_engine_job_dup_message (job);
  g_autofree char *result = result_path (job);
  double progress;
  guint64 done, total;

  iface = banger_object_get_job (BANGER_OBJECT (object));
  banger_engine_job_get_progress (job, &progress, &done, &total);
  banger_job_set_progress (iface, progress);
  banger_job_set_bytes_done (iface, done);
  banger_job_set_bytes_total (iface, total);
  banger_job_set_message (iface, message);
  banger_job_set_state (iface, banger_engine_job_get_state (job));
  banger_job_set_result (iface, result);
}

static void
job_changed_cb (BangerEngineJob *job, gpointer user_data)
{
  sync_properties (job, BANGER_OBJECT_SKELETON (user_data));
}

typedef struct {
  GDBusObjectManagerServer *om;
  char *path;
} Unexport;

static gboolean
unexport_cb (gpointer user_data)
{
  Unexport *u = user_data;

  g_dbus_object_manager_server_unexport (u->om, u->path);
  g_object_unref (u->om);
  g_free (u->path);
  g_free (u);
  return G_SOURCE_REMOVE;
}

static void
job_completed_cb (BangerEngineJob *job, gboolean success, const char *message, gpointer user_data)
{
  BangerObjectSkeleton *object = BANGER_OBJECT_SKELETON (user_data);
  g_autoptr (BangerJob) iface = banger_object_get_job (BANGER_OBJECT (object));
  g_autofree char *result = result_path (job);
  GDBusObjectManagerServer *om = g_object_get_data (G_OBJECT (object), "banger-om");
  Unexport *u = g_new0 (Unexport, 1);

  sync_properties (job, object);
  /* The final properties go out before Completed, so a client that stops
   * listening at Completed has seen them. */
  g_dbus_interface_skeleton_flush (G_DBUS_INTERFACE_SKELETON (iface));
  banger_job_emit_completed (iface, success, message, result);
  u->om = g_object_ref (om);
  u->path = g_strdup (g_dbus_object_get_object_path (G_DBUS_OBJECT (object)));
  g_timeout_add_seconds (JOB_LINGER_SECONDS, unexport_cb, u);
}

static gboolean
handle_cancel (BangerJob *iface, GDBusMethodInvocation *invocation, BangerEngineJob *job)
{
  g_autoptr (GError) error = NULL;

  if (!banger_engine_job_cancel (job, &error)) {
    banger_invocation_return_error (invocation, g_steal_pointer (&error));
    return G_DBUS_METHOD_INVOCATION_HANDLED;
  }
  banger_job_complete_cancel (iface, invocation);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static void
job_added_cb (BangerJobList *jobs, BangerEngineJob *job, GDBusObjectManagerServer *om)
{
  g_autofree char *path = banger_dbus_job_object_path (banger_engine_job_get_number (job));
  g_autoptr (BangerObjectSkeleton) object = banger_object_skeleton_new (path);
  g_autoptr (BangerJob) iface = banger_job_skeleton_new ();

  banger_object_skeleton_set_job (object, iface);
  banger_job_set_operation (iface, banger_engine_job_get_operation (job));
  banger_job_set_target (iface, banger_engine_job_get_target (job));
  banger_job_set_started_by_uid (iface, banger_engine_job_get_started_by_uid (job));
  sync_properties (job, object);
  /* The object keeps the job alive for as long as it is exported. */
  g_object_set_data_full (G_OBJECT (object), "banger-job", g_object_ref (job), g_object_unref);
  g_object_set_data (G_OBJECT (object), "banger-om", om);
  g_signal_connect_object (iface, "handle-cancel", G_CALLBACK (handle_cancel), job, 0);
  g_signal_connect_object (job, "changed", G_CALLBACK (job_changed_cb), object, 0);
  g_signal_connect_object (job, "completed", G_CALLBACK (job_completed_cb), object, 0);
  g_dbus_object_manager_server_export (om, G_DBUS_OBJECT_SKELETON (object));
}

void
banger_dbus_jobs_attach (BangerManager *skeleton, GDBusObjectManagerServer *om,
                         BangerEngine *engine)
{
  g_signal_connect_object (engine->jobs, "job-added", G_CALLBACK (job_added_cb), om, 0);
}
