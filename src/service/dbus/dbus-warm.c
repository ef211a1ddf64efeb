/* The Manager's ListWarmSnapshots and PruneWarmSnapshots (dbus-warm.h). */
#include "dbus-warm.h"

#include "banger-error.h"
#include "dbus-common.h"
#include "validate.h"
#include "warm-cache.h"

typedef struct {
  char *data_dir;
  char *image; /* NULL: every image */
} WarmArgs;

static void
warm_args_free (WarmArgs *a)
{
  g_free (a->data_dir);
  g_free (a->image);
  g_free (a);
}

static GVariant *
entry_variant (const BangerWarmEntry *e)
{
  GVariantDict d;

  g_variant_dict_init (&d, NULL);
  g_variant_dict_insert (&d, "key", "s", e->key);
  g_variant_dict_insert (&d, "image", "s", e->image);
  g_variant_dict_insert (&d, "kernel", "s", e->kernel);
  g_variant_dict_insert (&d, "driver", "s", e->driver);
  g_variant_dict_insert (&d, "agent_version", "s", e->agent_version);
  g_variant_dict_insert (&d, "vcpus", "u", e->vcpus);
  g_variant_dict_insert (&d, "memory_mib", "u", e->memory_mib);
  g_variant_dict_insert (&d, "disk_mib", "u", e->disk_mib);
  g_variant_dict_insert (&d, "network", "b", e->network);
  g_variant_dict_insert (&d, "created", "t", (guint64)MAX (e->created, 0));
  g_variant_dict_insert (&d, "size_bytes", "t", e->bytes);
  return g_variant_dict_end (&d);
}

/* Reading the entries stats files and parses manifests: a worker. */
static void
list_thread (GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
  WarmArgs *a = data;
  g_autoptr (GPtrArray) entries = banger_warm_cache_list (a->data_dir);
  GVariantBuilder b;

  g_variant_builder_init (&b, G_VARIANT_TYPE ("aa{sv}"));
  for (guint i = 0; i < entries->len; i++)
    g_variant_builder_add_value (&b, entry_variant (entries->pdata[i]));
  g_task_return_pointer (task, g_variant_ref_sink (g_variant_builder_end (&b)),
                         (GDestroyNotify)g_variant_unref);
}

static void
list_done_cb (GObject *source, GAsyncResult *res, gpointer user_data)
{
  GDBusMethodInvocation *invocation = user_data;
  GError *error = NULL;
  g_autoptr (GVariant) list = g_task_propagate_pointer (G_TASK (res), &error);

  if (list == NULL) {
    banger_invocation_return_error (invocation, error);
    return;
  }
  banger_manager_complete_list_warm_snapshots (BANGER_MANAGER (source), invocation, list);
}

static gboolean
handle_list (BangerManager *skeleton, GDBusMethodInvocation *invocation, gpointer user_data)
{
  BangerEngine *engine = user_data;
  g_autoptr (GTask) task = g_task_new (skeleton, NULL, list_done_cb, invocation);
  WarmArgs *a = g_new0 (WarmArgs, 1);

  a->data_dir = g_strdup (banger_config_get_data_dir (engine->config));
  g_task_set_task_data (task, a, (GDestroyNotify)warm_args_free);
  g_task_run_in_thread (task, list_thread);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

typedef struct {
  guint removed;
  guint64 freed;
} PruneResult;

/* Deleting files (a snapshot is about the guest's memory size): a worker. */
static void
prune_thread (GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
  WarmArgs *a = data;
  PruneResult *r = g_new0 (PruneResult, 1);
  GError *error = NULL;

  r->removed = banger_warm_cache_prune (a->data_dir, a->image, &r->freed, &error);
  if (error != NULL) {
    g_free (r);
    g_task_return_error (task, error);
    return;
  }
  g_task_return_pointer (task, r, g_free);
}

static void
prune_done_cb (GObject *source, GAsyncResult *res, gpointer user_data)
{
  GDBusMethodInvocation *invocation = user_data;
  GError *error = NULL;
  g_autofree PruneResult *r = g_task_propagate_pointer (G_TASK (res), &error);

  if (r == NULL) {
    banger_invocation_return_error (invocation, error);
    return;
  }
  g_info ("pruned %u warm-start snapshots (%" G_GUINT64_FORMAT " bytes)", r->removed, r->freed);
  banger_manager_complete_prune_warm_snapshots (BANGER_MANAGER (source), invocation, r->removed,
                                                r->freed);
}

static gboolean
handle_prune (BangerManager *skeleton, GDBusMethodInvocation *invocation, GVariant *options,
              gpointer user_data)
{
  static const char *const allowed[] = { "image", "s", NULL };
  BangerEngine *engine = user_data;
  g_autoptr (GTask) task = NULL;
  WarmArgs *a;

  if (!banger_dbus_check_options (invocation, options, allowed))
    return G_DBUS_METHOD_INVOCATION_HANDLED;
  a = g_new0 (WarmArgs, 1);
  a->data_dir = g_strdup (banger_config_get_data_dir (engine->config));
  g_variant_lookup (options, "image", "s", &a->image);
  task = g_task_new (skeleton, NULL, prune_done_cb, invocation);
  g_task_set_task_data (task, a, (GDestroyNotify)warm_args_free);
  g_task_run_in_thread (task, prune_thread);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

void
banger_dbus_warm_attach (BangerManager *skeleton, BangerEngine *engine)
{
  g_signal_connect (skeleton, "handle-list-warm-snapshots", G_CALLBACK (handle_list), engine);
  g_signal_connect (skeleton, "handle-prune-warm-snapshots", G_CALLBACK (handle_prune), engine);
}
