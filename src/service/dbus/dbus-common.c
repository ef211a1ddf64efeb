/* What the Manager's methods over the image and kernel lists and the jobs
 * share (dbus-common.h): the caller's uid, starting a job for the caller,
 * deleting by name. Here rather than in dbus-image.c and dbus-job.c, where
 * they were, so that dbus-kernel.c, dbus-oci.c, dbus-lifecycle.c and
 * dbus-update.c need only dbus-common.h, not another interface's file. */
#include "dbus-common.h"

#include <unistd.h>

#include "banger-error.h"
#include "dbus-job.h"
#include "validate.h"

/* ---- the caller's uid ---- */

static void
uid_reply_cb (GObject *source, GAsyncResult *res, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  GError *error = NULL;
  g_autoptr (GVariant) reply
      = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), res, &error);
  guint uid;

  if (reply == NULL) {
    g_task_return_error (task, error);
    return;
  }
  g_variant_get (reply, "(u)", &uid);
  g_task_return_int (task, uid);
}

void
banger_dbus_caller_uid_async (GDBusMethodInvocation *invocation, GAsyncReadyCallback callback,
                              gpointer user_data)
{
  GTask *task = g_task_new (NULL, NULL, callback, user_data);
  const char *sender = g_dbus_method_invocation_get_sender (invocation);

  /* A peer-to-peer connection has no bus to ask: that peer is us. */
  if (sender == NULL) {
    g_task_return_int (task, getuid ());
    g_object_unref (task);
    return;
  }
  g_dbus_connection_call (g_dbus_method_invocation_get_connection (invocation),
                          "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                          "GetConnectionUnixUser", g_variant_new ("(s)", sender),
                          G_VARIANT_TYPE ("(u)"), G_DBUS_CALL_FLAGS_NONE, -1, NULL, uid_reply_cb,
                          task);
}

gboolean
banger_dbus_caller_uid_finish (GAsyncResult *result, guint *uid, GError **error)
{
  gssize v = g_task_propagate_int (G_TASK (result), error);

  if (v < 0)
    return FALSE;
  *uid = (guint)v;
  return TRUE;
}

/* ---- starting a job for a caller ---- */

typedef struct {
  GDBusMethodInvocation *invocation;
  BangerManager *skeleton;
  BangerEngine *engine;
  BangerDbusJobStartFunc start;
  BangerDbusJobCompleteFunc complete;
  gpointer data;
  GDestroyNotify data_free;
} StartCall;

static void
start_uid_cb (GObject *source, GAsyncResult *res, gpointer user_data)
{
  StartCall *c = user_data;
  g_autoptr (GError) error = NULL;
  g_autoptr (BangerEngineJob) job = NULL;
  guint uid = 0;

  if (!banger_dbus_caller_uid_finish (res, &uid, &error)
      || (job = c->start (c->engine, c->data, uid, &error)) == NULL) {
    banger_invocation_return_error (c->invocation, g_steal_pointer (&error));
  } else {
    g_autofree char *path = banger_dbus_job_object_path (banger_engine_job_get_number (job));
    c->complete (c->skeleton, c->invocation, path);
  }
  if (c->data_free != NULL)
    c->data_free (c->data);
  g_object_unref (c->skeleton);
  g_free (c);
}

void
banger_dbus_job_start_for_caller (BangerManager *skeleton, GDBusMethodInvocation *invocation,
                                  BangerEngine *engine, BangerDbusJobStartFunc start,
                                  BangerDbusJobCompleteFunc complete, gpointer data,
                                  GDestroyNotify data_free)
{
  StartCall *c = g_new0 (StartCall, 1);

  c->invocation = invocation;
  c->skeleton = g_object_ref (skeleton);
  c->engine = engine;
  c->start = start;
  c->complete = complete;
  c->data = data;
  c->data_free = data_free;
  banger_dbus_caller_uid_async (invocation, start_uid_cb, c);
}

gboolean
banger_dbus_check_options (GDBusMethodInvocation *invocation, GVariant *options,
                           const char *const *allowed)
{
  GError *error = NULL;

  if (banger_validate_options (options, allowed, &error))
    return TRUE;
  banger_invocation_return_error (invocation, error);
  return FALSE;
}

void
banger_dbus_complete_variant_task (GObject *skeleton, GAsyncResult *res,
                                   GDBusMethodInvocation *invocation,
                                   BangerDbusVariantCompleteFunc complete)
{
  GError *error = NULL;
  g_autoptr (GVariant) value = g_task_propagate_pointer (G_TASK (res), &error);

  if (value == NULL) {
    banger_invocation_return_error (invocation, error);
    return;
  }
  complete (BANGER_MANAGER (skeleton), invocation, value);
}

/* ---- deleting by name ---- */

gboolean
banger_dbus_delete_options (GDBusMethodInvocation *invocation, GVariant *options,
                            gboolean *force)
{
  static const char *const allowed[] = { "force", "b", NULL };

  *force = FALSE;
  if (!banger_dbus_check_options (invocation, options, allowed))
    return FALSE;
  g_variant_lookup (options, "force", "b", force);
  return TRUE;
}
