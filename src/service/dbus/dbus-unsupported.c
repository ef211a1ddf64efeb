#include "dbus-unsupported.h"

#include <config.h>

#include "banger-error.h"

typedef struct {
  const char *interface_name;
  const char *method_name;
  const char *capability;
} UnsupportedMethod;

/* Keep in step with docs/dbus-api.md; the manager tests call every method of
 * the introspection data and check that each answers with a banger error. */
static const UnsupportedMethod unsupported_methods[] = {
  /* Every method is implemented now; the end mark keeps the table (and
   * this mechanism) ready for the next one. */
  { NULL, NULL, NULL },
};

const char *
banger_dbus_unsupported_capability (const char *interface_name, const char *method_name)
{
  for (guint i = 0; unsupported_methods[i].interface_name != NULL; i++) {
    if (g_strcmp0 (unsupported_methods[i].interface_name, interface_name) == 0
        && g_strcmp0 (unsupported_methods[i].method_name, method_name) == 0)
      return unsupported_methods[i].capability;
  }
  return NULL;
}

/* g-authorize-method runs before the generated dispatcher, for every method of
 * the interface, so one handler covers methods of any signature (including
 * the fd-passing ones) without a stub per method. */
static gboolean
authorize_method_cb (GDBusInterfaceSkeleton *skeleton, GDBusMethodInvocation *invocation,
                     gpointer user_data)
{
  const char *iface = g_dbus_method_invocation_get_interface_name (invocation);
  const char *method = g_dbus_method_invocation_get_method_name (invocation);
  const char *capability = banger_dbus_unsupported_capability (iface, method);

  if (capability == NULL)
    return TRUE;
  g_debug ("%s.%s: unsupported", iface, method);
  g_dbus_method_invocation_return_error (invocation, BANGER_ERROR, BANGER_ERROR_UNSUPPORTED,
                                         "%s (%s) is not implemented in banger %s yet", capability,
                                         method, PACKAGE_VERSION);
  return FALSE;
}

void
banger_dbus_unsupported_attach (GDBusInterfaceSkeleton *skeleton)
{
  g_signal_connect (skeleton, "g-authorize-method", G_CALLBACK (authorize_method_cb), NULL);
}
