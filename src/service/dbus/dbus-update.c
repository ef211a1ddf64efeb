/* The Manager's CheckUpdate and Update (dbus-update.h); PlanUpdate is
 * dbus-update-plan.c. */
#include "config.h"

#include "dbus-update.h"

#include "banger-error.h"
#include "dbus-common.h"
#include "update-job.h"
#include "dbus-update-plan.h"
#include "validate.h"

/* CheckUpdate fetches over the network: a worker thread, not the main loop. */
static void
check_thread (GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
  const BangerReleaseSource *release = data; /* the engine's: fixed at start */
  g_autoptr (BangerReleaseManifest) m = NULL;
  const BangerReleaseEntry *latest;
  GError *error = NULL;
  GVariantBuilder b;

  m = banger_update_fetch_manifest (release, cancellable, &error);
  if (m == NULL) {
    g_task_return_error (task, error);
    return;
  }
  latest = banger_release_manifest_find (m, m->latest, NULL);
  g_variant_builder_init (&b, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add (&b, "{sv}", "current", g_variant_new_string (PACKAGE_VERSION));
  g_variant_builder_add (&b, "{sv}", "latest", g_variant_new_string (m->latest));
  g_variant_builder_add (
      &b, "{sv}", "available",
      g_variant_new_boolean (banger_release_version_compare (m->latest, PACKAGE_VERSION) > 0));
  g_variant_builder_add (&b, "{sv}", "notes", g_variant_new_string (latest->notes));
  g_task_return_pointer (task, g_variant_ref_sink (g_variant_builder_end (&b)),
                         (GDestroyNotify)g_variant_unref);
}

static void
check_done (GObject *source, GAsyncResult *res, gpointer data)
{
  banger_dbus_complete_variant_task (source, res, data, banger_manager_complete_check_update);
}

static gboolean
handle_check_update (BangerManager *skeleton, GDBusMethodInvocation *invocation, gpointer user_data)
{
  BangerEngine *engine = user_data;
  g_autoptr (GTask) task = g_task_new (skeleton, NULL, check_done, invocation);

  g_task_set_task_data (task, &engine->release, NULL);
  g_task_run_in_thread (task, check_thread);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static void
options_free (BangerUpdateOptions *o)
{
  g_free (o->version);
  g_free (o);
}

static BangerEngineJob *
start_update (BangerEngine *engine, gpointer data, guint uid, GError **error)
{
  return banger_update_start (engine->jobs, engine->store, &engine->release, data, uid, error);
}

static gboolean
handle_update (BangerManager *skeleton, GDBusMethodInvocation *invocation, GVariant *options,
               gpointer user_data)
{
  static const char *const allowed[] = { "to", "s", "dry_run", "b", "force", "b", NULL };
  g_autofree char *version = NULL;
  BangerUpdateOptions *o;

  if (!banger_dbus_update_target (invocation, options, allowed, &version))
    return G_DBUS_METHOD_INVOCATION_HANDLED;
  o = g_new0 (BangerUpdateOptions, 1);
  o->version = g_steal_pointer (&version);
  g_variant_lookup (options, "dry_run", "b", &o->dry_run);
  g_variant_lookup (options, "force", "b", &o->force);
  banger_dbus_job_start_for_caller (skeleton, invocation, user_data, start_update,
                                    banger_manager_complete_update, o,
                                    (GDestroyNotify)options_free);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

void
banger_dbus_update_attach (BangerManager *skeleton, BangerEngine *engine)
{
  g_signal_connect (skeleton, "handle-check-update", G_CALLBACK (handle_check_update), engine);
  g_signal_connect (skeleton, "handle-update", G_CALLBACK (handle_update), engine);
  banger_update_plan_attach (skeleton, engine);
}
