/* The Manager's PromoteVM and PullKernel (dbus-lifecycle.h). */
#include "dbus-lifecycle.h"

#include "banger-error.h"
#include "dbus-common.h"
#include "kernel-pull.h"
#include "validate.h"
#include "vm-promote.h"

/* Both methods take two names: the VM and the image, or the kernel in the
 * remote catalog index and the name it is registered as. */
typedef struct {
  char *first;
  char *second;
} Names;

static Names *
names_new (const char *first, const char *second)
{
  Names *n = g_new0 (Names, 1);

  n->first = g_strdup (first);
  n->second = g_strdup (second);
  return n;
}

static void
names_free (Names *n)
{
  g_free (n->first);
  g_free (n->second);
  g_free (n);
}

static BangerEngineJob *
start_promote (BangerEngine *engine, gpointer data, guint uid, GError **error)
{
  Names *n = data;
  return banger_image_list_promote_vm (engine->images, n->first, n->second, uid, error);
}

static BangerEngineJob *
start_pull_kernel (BangerEngine *engine, gpointer data, guint uid, GError **error)
{
  Names *n = data;
  return banger_kernel_list_pull (engine->kernels, n->first, n->second, uid, error);
}

static gboolean
handle_promote_vm (BangerManager *skeleton, GDBusMethodInvocation *invocation, const char *vm,
                   const char *name, GVariant *options, gpointer user_data)
{
  static const char *const allowed[] = { NULL };

  if (!banger_dbus_check_options (invocation, options, allowed))
    return G_DBUS_METHOD_INVOCATION_HANDLED;
  banger_dbus_job_start_for_caller (skeleton, invocation, user_data, start_promote,
                                    banger_manager_complete_promote_vm, names_new (vm, name),
                                    (GDestroyNotify)names_free);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
handle_pull_kernel (BangerManager *skeleton, GDBusMethodInvocation *invocation, const char *name,
                    GVariant *options, gpointer user_data)
{
  static const char *const allowed[] = { "name", "s", NULL };
  g_autofree char *as_name = NULL;

  if (!banger_dbus_check_options (invocation, options, allowed))
    return G_DBUS_METHOD_INVOCATION_HANDLED;
  g_variant_lookup (options, "name", "s", &as_name);
  banger_dbus_job_start_for_caller (skeleton, invocation, user_data, start_pull_kernel,
                                    banger_manager_complete_pull_kernel, names_new (name, as_name),
                                    (GDestroyNotify)names_free);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

void
banger_dbus_lifecycle_attach (BangerManager *skeleton, BangerEngine *engine)
{
  g_signal_connect (skeleton, "handle-promote-vm", G_CALLBACK (handle_promote_vm), engine);
  g_signal_connect (skeleton, "handle-pull-kernel", G_CALLBACK (handle_pull_kernel), engine);
}
