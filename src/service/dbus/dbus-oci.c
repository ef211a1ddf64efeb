/* The Manager's PullImage, ListCache and PruneCache (dbus-oci.h). */
#include "dbus-oci.h"

#include "banger-error.h"
#include "blob-cache.h"
#include "dbus-common.h"
#include "image-pull.h"
#include "validate.h"

typedef struct {
  char *reference;
  char *name;
  guint size_mib;
  gboolean insecure;
} PullArgs;

static void
pull_args_free (PullArgs *a)
{
  g_free (a->reference);
  g_free (a->name);
  g_free (a);
}

static BangerEngineJob *
start_pull (BangerEngine *engine, gpointer data, guint uid, GError **error)
{
  PullArgs *a = data;
  return banger_image_list_pull_image (engine->images, a->reference, a->name, a->size_mib,
                                       a->insecure, uid, error);
}

static gboolean
handle_pull_image (BangerManager *skeleton, GDBusMethodInvocation *invocation,
                   const char *reference, GVariant *options, gpointer user_data)
{
  static const char *const allowed[] = { "name", "s", "size_mib", "u", "insecure", "b", NULL };
  PullArgs *a;

  if (!banger_dbus_check_options (invocation, options, allowed))
    return G_DBUS_METHOD_INVOCATION_HANDLED;
  a = g_new0 (PullArgs, 1);
  a->reference = g_strdup (reference);
  g_variant_lookup (options, "name", "s", &a->name);
  g_variant_lookup (options, "size_mib", "u", &a->size_mib);
  g_variant_lookup (options, "insecure", "b", &a->insecure);
  banger_dbus_job_start_for_caller (skeleton, invocation, user_data, start_pull,
                                    banger_manager_complete_pull_image, a,
                                    (GDestroyNotify)pull_args_free);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
handle_list_cache (BangerManager *skeleton, GDBusMethodInvocation *invocation, gpointer user_data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) blobs
      = banger_image_list_list_cache (((BangerEngine *)user_data)->images, &error);
  GVariantBuilder b;

  if (blobs == NULL) {
    banger_invocation_return_error (invocation, g_steal_pointer (&error));
    return G_DBUS_METHOD_INVOCATION_HANDLED;
  }
  g_variant_builder_init (&b, G_VARIANT_TYPE ("a(stt)"));
  for (guint i = 0; i < blobs->len; i++) {
    BangerBlobInfo *info = blobs->pdata[i];
    g_variant_builder_add (&b, "(stt)", info->digest, info->size, info->last_used);
  }
  banger_manager_complete_list_cache (skeleton, invocation, g_variant_builder_end (&b));
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* Pruning deletes files: done in a thread, with the roots read from the
 * store on the main context first. */
static void
prune_thread (GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
  const char *const *keep = data;
  g_autoptr (BangerBlobCache) cache = NULL;
  GError *error = NULL;
  guint64 freed = 0;

  cache = banger_blob_cache_new (NULL, &error);
  if (cache == NULL || !banger_blob_cache_prune (cache, keep, &freed, &error)) {
    g_task_return_error (task, error);
    return;
  }
  g_task_return_pointer (task, g_memdup2 (&freed, sizeof freed), g_free);
}

static void
prune_done_cb (GObject *source, GAsyncResult *res, gpointer user_data)
{
  GDBusMethodInvocation *invocation = user_data;
  BangerManager *skeleton = BANGER_MANAGER (source);
  GError *error = NULL;
  g_autofree guint64 *freed = g_task_propagate_pointer (G_TASK (res), &error);

  if (freed == NULL) {
    banger_invocation_return_error (invocation, error);
    return;
  }
  g_info ("pruned %" G_GUINT64_FORMAT " bytes from the blob cache", *freed);
  banger_manager_complete_prune_cache (skeleton, invocation, *freed);
}

static gboolean
handle_prune_cache (BangerManager *skeleton, GDBusMethodInvocation *invocation, GVariant *options,
                    gpointer user_data)
{
  static const char *const allowed[] = { NULL };
  g_autoptr (GError) error = NULL;
  g_autoptr (GTask) task = NULL;
  GStrv keep;

  if (!banger_validate_options (options, allowed, &error)
      || (keep = banger_image_list_cache_roots (((BangerEngine *)user_data)->images, &error))
             == NULL) {
    banger_invocation_return_error (invocation, g_steal_pointer (&error));
    return G_DBUS_METHOD_INVOCATION_HANDLED;
  }
  task = g_task_new (skeleton, NULL, prune_done_cb, invocation);
  g_task_set_task_data (task, keep, (GDestroyNotify)g_strfreev);
  g_task_run_in_thread (task, prune_thread);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

void
banger_dbus_oci_attach (BangerManager *skeleton, BangerEngine *engine)
{
  /* Each handler gets the engine and takes the part it needs. */
  g_signal_connect (skeleton, "handle-pull-image", G_CALLBACK (handle_pull_image), engine);
  g_signal_connect (skeleton, "handle-list-cache", G_CALLBACK (handle_list_cache), engine);
  g_signal_connect (skeleton, "handle-prune-cache", G_CALLBACK (handle_prune_cache), engine);
}
