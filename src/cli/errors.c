#include "config.h"

#include "errors.h"

#include <glib/gi18n.h>
#include <string.h>

#include "banger-error.h"

G_DEFINE_QUARK (banger - cli - error - quark, banger_cli_error)

/* D-Bus errors that mean the daemon is not there to answer at all, as
 * opposed to errors the daemon itself returned. */
static gboolean
error_means_unreachable (const GError *error)
{
  if (error->domain == G_DBUS_ERROR) {
    switch (error->code) {
    case G_DBUS_ERROR_SERVICE_UNKNOWN:
    case G_DBUS_ERROR_NAME_HAS_NO_OWNER:
    case G_DBUS_ERROR_DISCONNECTED:
    case G_DBUS_ERROR_SPAWN_EXEC_FAILED:
    case G_DBUS_ERROR_SPAWN_FORK_FAILED:
    case G_DBUS_ERROR_SPAWN_CHILD_EXITED:
    case G_DBUS_ERROR_SPAWN_CHILD_SIGNALED:
    case G_DBUS_ERROR_SPAWN_FAILED:
    case G_DBUS_ERROR_SPAWN_SERVICE_INVALID:
    case G_DBUS_ERROR_SPAWN_SERVICE_NOT_FOUND:
    case G_DBUS_ERROR_SPAWN_PERMISSIONS_INVALID:
    case G_DBUS_ERROR_SPAWN_FILE_INVALID:
    case G_DBUS_ERROR_SPAWN_NO_MEMORY:
      return TRUE;
    default:
      return FALSE;
    }
  }
  return g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CLOSED)
         || g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED);
}

/* Lower case without quotes, for comparing what two messages say. */
static char *
normalize (const char *text)
{
  g_autoptr (GString) s = g_string_new (NULL);

  for (const char *p = text; *p != '\0'; p = g_utf8_next_char (p)) {
    gunichar c = g_utf8_get_char (p);

    if (c == 0x201C || c == 0x201D || c == '"' || c == '\'')
      continue;
    g_string_append_unichar (s, g_unichar_tolower (c));
  }
  return g_string_free (g_steal_pointer (&s), FALSE);
}

/* TRUE when @a says everything @b says (ignoring case and quotes). */
static gboolean
message_covers (const char *a, const char *b)
{
  g_autofree char *na = normalize (a);
  g_autofree char *nb = normalize (b);

  return strstr (na, nb) != NULL;
}

static void
replace_error (GError **error, GQuark domain, int code, const char *human)
{
  g_autofree char *detail = NULL;
  GError *e = *error;

  if (g_dbus_error_is_remote_error (e))
    g_dbus_error_strip_remote_error (e);
  detail = g_strdup (e->message);

  /* The daemon's message usually names the object already; repeat it only
   * when it adds something. */
  if (human == NULL || (!message_covers (human, detail) && message_covers (detail, human))) {
    human = detail;
  } else if (!message_covers (human, detail)) {
    g_autofree char *both = g_strdup_printf ("%s: %s", human, detail);
    g_clear_error (error);
    g_set_error_literal (error, domain, code, both);
    return;
  }
  {
    g_autofree char *copy = g_strdup (human);
    g_clear_error (error);
    g_set_error_literal (error, domain, code, copy);
  }
}

/* Handles what every call has in common; TRUE when the error was rewritten. */
static gboolean
annotate_common (GError **error, const char *bus_desc)
{
  GError *e = *error;

  if (e->domain == BANGER_CLI_ERROR)
    return TRUE;
  if (error_means_unreachable (e)) {
    g_autofree char *human = g_strdup_printf (_ ("cannot reach %s"), bus_desc);
    replace_error (error, BANGER_CLI_ERROR, BANGER_CLI_ERROR_UNREACHABLE, human);
    return TRUE;
  }
  if (g_error_matches (e, G_DBUS_ERROR, G_DBUS_ERROR_ACCESS_DENIED)) {
    replace_error (error, e->domain, e->code, _ ("not authorized"));
    return TRUE;
  }
  /* The bus answers NoReply both for a timeout and for a service that
   * exited (crashed) before replying; only its text tells them apart. */
  if (g_error_matches (e, G_DBUS_ERROR, G_DBUS_ERROR_NO_REPLY)
      && strstr (e->message, "disconnected") != NULL) {
    g_autofree char *human = g_strdup_printf (_ ("%s exited before it answered"), bus_desc);
    replace_error (error, BANGER_CLI_ERROR, BANGER_CLI_ERROR_UNREACHABLE, human);
    return TRUE;
  }
  if (g_error_matches (e, G_DBUS_ERROR, G_DBUS_ERROR_NO_REPLY)
      || g_error_matches (e, G_IO_ERROR, G_IO_ERROR_TIMED_OUT)) {
    replace_error (error, e->domain, e->code, _ ("no answer in time"));
    return TRUE;
  }
  if (g_error_matches (e, G_DBUS_ERROR, G_DBUS_ERROR_UNKNOWN_METHOD)) {
    replace_error (error, e->domain, e->code,
                   _ ("the service does not know this call (is it older than this banger?)"));
    return TRUE;
  }
  return FALSE;
}

/* Words for an error the daemon returned that are not about one object. */
static const char *
generic_human (const GError *error)
{
  if (error->domain != BANGER_ERROR)
    return NULL;
  switch ((BangerError)error->code) {
  case BANGER_ERROR_NOT_FOUND:
    return _ ("not found");
  case BANGER_ERROR_EXISTS:
    return _ ("already exists");
  case BANGER_ERROR_INVALID_ARGUMENT:
    return _ ("invalid argument");
  case BANGER_ERROR_BAD_STATE:
    return _ ("not possible in the current state");
  case BANGER_ERROR_NOT_AUTHORIZED:
    return _ ("not authorized");
  case BANGER_ERROR_BUSY:
    return _ ("busy");
  case BANGER_ERROR_NETWORK:
    return _ ("network error");
  case BANGER_ERROR_REGISTRY:
    return _ ("registry error");
  case BANGER_ERROR_VERIFICATION:
    return _ ("verification failed");
  case BANGER_ERROR_UNSUPPORTED:
    return _ ("not supported by this bangerd");
  case BANGER_ERROR_CANCELLED:
    return _ ("cancelled");
  case BANGER_ERROR_FAILED:
  case BANGER_ERROR_LAST:
  default:
    return NULL;
  }
}

/* The words for @code about a @kind called @name, or NULL. Each kind has
 * its own sentences: translators need whole sentences, not a noun to
 * paste into one. */
static char *
object_human (BangerCliObject kind, int code, const char *name)
{
  switch ((BangerError)code) {
  case BANGER_ERROR_NOT_FOUND:
    switch (kind) {
    case BANGER_CLI_OBJECT_VM:
      return g_strdup_printf (_ ("no VM named “%s”"), name);
    case BANGER_CLI_OBJECT_IMAGE:
      return g_strdup_printf (_ ("no image named “%s”"), name);
    case BANGER_CLI_OBJECT_KERNEL:
      return g_strdup_printf (_ ("no kernel named “%s”"), name);
    case BANGER_CLI_OBJECT_JOB:
      return g_strdup_printf (_ ("no job “%s”"), name);
    }
    break;
  case BANGER_ERROR_EXISTS:
    switch (kind) {
    case BANGER_CLI_OBJECT_VM:
      return g_strdup_printf (_ ("VM “%s” already exists"), name);
    case BANGER_CLI_OBJECT_IMAGE:
      return g_strdup_printf (_ ("image “%s” already exists"), name);
    case BANGER_CLI_OBJECT_KERNEL:
      return g_strdup_printf (_ ("kernel “%s” already exists"), name);
    case BANGER_CLI_OBJECT_JOB:
      break;
    }
    break;
  case BANGER_ERROR_BAD_STATE:
    switch (kind) {
    case BANGER_CLI_OBJECT_VM:
      return g_strdup_printf (_ ("VM “%s” is not in a state that allows this"), name);
    case BANGER_CLI_OBJECT_IMAGE:
      return g_strdup_printf (_ ("image “%s” is not in a state that allows this"), name);
    case BANGER_CLI_OBJECT_KERNEL:
      return g_strdup_printf (_ ("kernel “%s” is not in a state that allows this"), name);
    case BANGER_CLI_OBJECT_JOB:
      return g_strdup_printf (_ ("job “%s” has already ended"), name);
    }
    break;
  case BANGER_ERROR_BUSY:
    switch (kind) {
    case BANGER_CLI_OBJECT_VM:
      return g_strdup_printf (_ ("VM “%s” is busy"), name);
    case BANGER_CLI_OBJECT_IMAGE:
      return g_strdup_printf (_ ("image “%s” is in use"), name);
    case BANGER_CLI_OBJECT_KERNEL:
      return g_strdup_printf (_ ("kernel “%s” is in use"), name);
    case BANGER_CLI_OBJECT_JOB:
      return g_strdup_printf (_ ("job “%s” is busy"), name);
    }
    break;
  case BANGER_ERROR_INVALID_ARGUMENT:
    switch (kind) {
    case BANGER_CLI_OBJECT_VM:
      return g_strdup_printf (_ ("invalid request for VM “%s”"), name);
    case BANGER_CLI_OBJECT_IMAGE:
      return g_strdup_printf (_ ("invalid request for image “%s”"), name);
    case BANGER_CLI_OBJECT_KERNEL:
      return g_strdup_printf (_ ("invalid request for kernel “%s”"), name);
    case BANGER_CLI_OBJECT_JOB:
      break;
    }
    break;
  case BANGER_ERROR_UNSUPPORTED:
    switch (kind) {
    case BANGER_CLI_OBJECT_VM:
      return g_strdup_printf (_ ("not supported by this bangerd (VM “%s”)"), name);
    case BANGER_CLI_OBJECT_IMAGE:
      return g_strdup_printf (_ ("not supported by this bangerd (image “%s”)"), name);
    case BANGER_CLI_OBJECT_KERNEL:
      return g_strdup_printf (_ ("not supported by this bangerd (kernel “%s”)"), name);
    case BANGER_CLI_OBJECT_JOB:
      break;
    }
    break;
  default:
    break;
  }
  return NULL;
}

void
banger_cli_error_annotate_object (GError **error, BangerCliObject kind, const char *name)
{
  g_autofree char *human = NULL;

  if (error == NULL || *error == NULL)
    return;
  if (annotate_common (error, _ ("bangerd on the session bus")))
    return;
  if ((*error)->domain == BANGER_ERROR)
    human = object_human (kind, (*error)->code, name);
  replace_error (error, (*error)->domain, (*error)->code,
                 human != NULL ? human : generic_human (*error));
}

void
banger_cli_error_annotate_vm (GError **error, const char *name)
{
  banger_cli_error_annotate_object (error, BANGER_CLI_OBJECT_VM, name);
}

void
banger_cli_error_annotate_vm_call (GError **error, const char *name)
{
  /* The VM was found (or is being created): a NotFound names something it
   * needs, such as its image or kernel, and the daemon's message says
   * which; "no VM named …" would be wrong. */
  if (error != NULL && g_error_matches (*error, BANGER_ERROR, BANGER_ERROR_NOT_FOUND)) {
    banger_cli_error_annotate (error);
    return;
  }
  banger_cli_error_annotate_vm (error, name);
}

void
banger_cli_error_annotate (GError **error)
{
  if (error == NULL || *error == NULL)
    return;
  if (annotate_common (error, _ ("bangerd on the session bus")))
    return;
  replace_error (error, (*error)->domain, (*error)->code, generic_human (*error));
}

void
banger_cli_error_annotate_helper (GError **error)
{
  if (error == NULL || *error == NULL)
    return;
  if (annotate_common (error, _ ("bangerd-root on the system bus")))
    return;
  replace_error (error, (*error)->domain, (*error)->code, generic_human (*error));
}

void
banger_cli_error_unreachable (GError **error, const char *what)
{
  g_autofree char *human = NULL;

  if (error == NULL || *error == NULL || (*error)->domain == BANGER_CLI_ERROR)
    return;
  human = g_strdup_printf (_ ("cannot reach %s"), what);
  replace_error (error, BANGER_CLI_ERROR, BANGER_CLI_ERROR_UNREACHABLE, human);
}

int
banger_cli_error_exit_status (const GError *error)
{
  if (g_error_matches (error, BANGER_CLI_ERROR, BANGER_CLI_ERROR_USAGE)
      || error->domain == G_OPTION_ERROR)
    return BANGER_EXIT_USAGE;
  if (g_error_matches (error, BANGER_CLI_ERROR, BANGER_CLI_ERROR_INTERRUPTED))
    return BANGER_EXIT_INTERRUPTED;
  return BANGER_EXIT_FAILURE;
}
