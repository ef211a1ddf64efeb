#include "banger-error.h"

#include <errno.h>

static const GDBusErrorEntry banger_error_entries[] = {
  { BANGER_ERROR_FAILED, "org.banger.Error.Failed" },
  { BANGER_ERROR_NOT_FOUND, "org.banger.Error.NotFound" },
  { BANGER_ERROR_EXISTS, "org.banger.Error.Exists" },
  { BANGER_ERROR_INVALID_ARGUMENT, "org.banger.Error.InvalidArgument" },
  { BANGER_ERROR_BAD_STATE, "org.banger.Error.BadState" },
  { BANGER_ERROR_NOT_AUTHORIZED, "org.banger.Error.NotAuthorized" },
  { BANGER_ERROR_BUSY, "org.banger.Error.Busy" },
  { BANGER_ERROR_NETWORK, "org.banger.Error.Network" },
  { BANGER_ERROR_REGISTRY, "org.banger.Error.Registry" },
  { BANGER_ERROR_VERIFICATION, "org.banger.Error.Verification" },
  { BANGER_ERROR_UNSUPPORTED, "org.banger.Error.Unsupported" },
  { BANGER_ERROR_CANCELLED, "org.banger.Error.Cancelled" },
};

G_STATIC_ASSERT (G_N_ELEMENTS (banger_error_entries) == BANGER_ERROR_LAST);

GQuark
banger_error_quark (void)
{
  static gsize quark = 0;

  /* Registering maps the domain to D-Bus names in both directions: replies
   * carry org.banger.Error.*, and proxies get BANGER_ERROR back. */
  g_dbus_error_register_error_domain ("banger-error-quark", &quark, banger_error_entries,
                                      G_N_ELEMENTS (banger_error_entries));
  return (GQuark) quark;
}

static BangerError
code_from_io_error (int code)
{
  switch (code) {
  case G_IO_ERROR_NOT_FOUND:
    return BANGER_ERROR_NOT_FOUND;
  case G_IO_ERROR_EXISTS:
    return BANGER_ERROR_EXISTS;
  case G_IO_ERROR_INVALID_ARGUMENT:
  case G_IO_ERROR_INVALID_FILENAME:
  case G_IO_ERROR_FILENAME_TOO_LONG:
  case G_IO_ERROR_INVALID_DATA:
    return BANGER_ERROR_INVALID_ARGUMENT;
  case G_IO_ERROR_PERMISSION_DENIED:
    return BANGER_ERROR_NOT_AUTHORIZED;
  case G_IO_ERROR_BUSY:
  case G_IO_ERROR_WOULD_BLOCK:
    return BANGER_ERROR_BUSY;
  case G_IO_ERROR_NOT_SUPPORTED:
    return BANGER_ERROR_UNSUPPORTED;
  case G_IO_ERROR_CANCELLED:
    return BANGER_ERROR_CANCELLED;
  case G_IO_ERROR_HOST_NOT_FOUND:
  case G_IO_ERROR_HOST_UNREACHABLE:
  case G_IO_ERROR_NETWORK_UNREACHABLE:
  case G_IO_ERROR_CONNECTION_REFUSED:
  case G_IO_ERROR_CONNECTION_CLOSED:
  case G_IO_ERROR_TIMED_OUT:
    return BANGER_ERROR_NETWORK;
  default:
    return BANGER_ERROR_FAILED;
  }
}

void
banger_error_convert (GError **error)
{
  GError *e;

  if (error == NULL || *error == NULL)
    return;
  e = *error;

  /* Make sure the domain is registered before anything is returned. */
  (void) BANGER_ERROR;

  if (e->domain == BANGER_ERROR)
    return;
  /* Standard D-Bus errors (AccessDenied, UnknownMethod, …) mean the same
   * thing to every client; keep them. */
  if (e->domain == G_DBUS_ERROR)
    return;
  if (e->domain == G_IO_ERROR)
    e->code = code_from_io_error (e->code);
  else if (e->domain == G_FILE_ERROR)
    e->code = code_from_io_error (g_io_error_from_file_error (e->code));
  else
    e->code = BANGER_ERROR_FAILED;
  e->domain = BANGER_ERROR;
}

void
banger_invocation_return_error (GDBusMethodInvocation *invocation, GError *error)
{
  banger_error_convert (&error);
  g_dbus_method_invocation_take_error (invocation, error);
}

const char *
banger_error_short_name (const char *dbus_error_name)
{
  const char *prefix = "org.banger.Error.";

  if (dbus_error_name == NULL || !g_str_has_prefix (dbus_error_name, prefix))
    return NULL;
  return dbus_error_name + strlen (prefix);
}

gboolean
banger_error_reject (GError **error, BangerError code, const char *what, const char *format, ...)
{
  va_list args;
  g_autofree char *msg = NULL;

  va_start (args, format);
  msg = g_strdup_vprintf (format, args);
  va_end (args);
  g_set_error (error, BANGER_ERROR, code, "%s: %s", what, msg);
  return FALSE;
}
