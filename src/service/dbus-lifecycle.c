#define G_LOG_DOMAIN "bangerd-dbus"

#include "dbus-lifecycle.h"

#include "banger-error.h"
#include "dbus-image.h"
#include "dbus-job.h"
#include "kernel-pull.h"
#include "validate.h"
#include "vm-promote.h"

typedef enum { CALL_PROMOTE, CALL_PULL_KERNEL } CallKind;

typedef struct {
  CallKind kind;
  GDBusMethodInvocation *invocation;
  BangerManager *skeleton;
  BangerCatalog *catalog;
  char *first;  /* the VM, or the catalog's kernel name */
  char *second; /* the image name, or the kernel's name when registered */
} Call;

static void
call_free (Call *c)
{
  g_object_unref (c->skeleton);
  g_free (c->first);
  g_free (c->second);
  g_free (c);
}

static void
uid_cb (GObject *source, GAsyncResult *res, gpointer user_data)
{
  Call *c = user_data;
  g_autoptr (GError) error = NULL;
  g_autoptr (BangerEngineJob) job = NULL;
  g_autofree char *path = NULL;
  guint uid = 0;

  if (banger_dbus_caller_uid_finish (res, &uid, &error)) {
    if (c->kind == CALL_PROMOTE)
      job = banger_catalog_promote_vm (c->catalog, c->first, c->second, uid, &error);
    else
      job = banger_catalog_pull_kernel (c->catalog, c->first, c->second, uid, &error);
  }
  if (job == NULL) {
    banger_invocation_return_error (c->invocation, g_steal_pointer (&error));
    call_free (c);
    return;
  }
  path = banger_dbus_job_object_path (banger_engine_job_get_number (job));
  if (c->kind == CALL_PROMOTE)
    banger_manager_complete_promote_vm (c->skeleton, c->invocation, path);
  else
    banger_manager_complete_pull_kernel (c->skeleton, c->invocation, path);
  call_free (c);
}

static void
start_call (CallKind kind, BangerManager *skeleton, GDBusMethodInvocation *invocation,
            BangerCatalog *catalog, const char *first, const char *second)
{
  Call *c = g_new0 (Call, 1);

  c->kind = kind;
  c->invocation = invocation;
  c->skeleton = g_object_ref (skeleton);
  c->catalog = catalog;
  c->first = g_strdup (first);
  c->second = g_strdup (second);
  banger_dbus_caller_uid_async (invocation, uid_cb, c);
}

static gboolean
handle_promote_vm (BangerManager *skeleton, GDBusMethodInvocation *invocation, const char *vm,
                   const char *name, GVariant *options, gpointer user_data)
{
  static const char *const allowed[] = { NULL };
  g_autoptr (GError) error = NULL;

  if (!banger_validate_options (options, allowed, &error)) {
    banger_invocation_return_error (invocation, g_steal_pointer (&error));
    return G_DBUS_METHOD_INVOCATION_HANDLED;
  }
  start_call (CALL_PROMOTE, skeleton, invocation, BANGER_CATALOG (user_data), vm, name);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
handle_pull_kernel (BangerManager *skeleton, GDBusMethodInvocation *invocation, const char *name,
                    GVariant *options, gpointer user_data)
{
  static const char *const allowed[] = { "name", "s", NULL };
  g_autoptr (GError) error = NULL;
  g_autofree char *as_name = NULL;

  if (!banger_validate_options (options, allowed, &error)) {
    banger_invocation_return_error (invocation, g_steal_pointer (&error));
    return G_DBUS_METHOD_INVOCATION_HANDLED;
  }
  g_variant_lookup (options, "name", "s", &as_name);
  start_call (CALL_PULL_KERNEL, skeleton, invocation, BANGER_CATALOG (user_data), name, as_name);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

void
banger_dbus_lifecycle_attach (BangerManager *skeleton, BangerEngine *engine)
{
  BangerCatalog *catalog = banger_catalog_get (engine);

  g_signal_connect (skeleton, "handle-promote-vm", G_CALLBACK (handle_promote_vm), catalog);
  g_signal_connect (skeleton, "handle-pull-kernel", G_CALLBACK (handle_pull_kernel), catalog);
}
