#define POLKIT_AGENT_I_KNOW_API_IS_SUBJECT_TO_CHANGE

#include "config.h"

#include "polkit-agent.h"

#include <polkit/polkit.h>
#include <polkitagent/polkitagent.h>
#include <unistd.h>

typedef struct {
  PolkitAgentListener *listener;
  gpointer registration;
} AgentHandle;

gpointer
banger_polkit_agent_register (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (PolkitAgentListener) listener = NULL;
  g_autoptr (PolkitSubject) subject = NULL;
  gpointer registration;
  AgentHandle *handle;

  /* Opens /dev/tty; fails without a controlling terminal. */
  listener = polkit_agent_text_listener_new (NULL, &error);
  if (listener == NULL) {
    g_debug ("no text polkit agent: %s", error->message);
    return NULL;
  }

  /* Register for the session first: if the desktop's agent already serves
   * it, polkitd refuses us and the desktop's dialog is used, which makes
   * ours a fallback. Without a logind session, register for this process
   * alone (as pkttyagent --process does). */
  subject = polkit_unix_session_new_for_process_sync ((gint)getpid (), NULL, &error);
  if (subject == NULL) {
    g_debug ("no unix-session subject (%s); registering for this process", error->message);
    g_clear_error (&error);
    subject = polkit_unix_process_new_for_owner ((gint)getpid (), 0, (gint)getuid ());
  }

  /* RUN_IN_THREAD: the CLI's D-Bus calls are synchronous, so the agent's
   * requests must be served by a thread of their own. */
  registration = polkit_agent_listener_register (
      listener, POLKIT_AGENT_REGISTER_FLAGS_RUN_IN_THREAD, subject, NULL, NULL, &error);
  if (registration == NULL) {
    g_debug ("text polkit agent not registered: %s", error->message);
    return NULL;
  }
  handle = g_new0 (AgentHandle, 1);
  handle->listener = g_steal_pointer (&listener);
  handle->registration = registration;
  return handle;
}

void
banger_polkit_agent_unregister (gpointer data)
{
  AgentHandle *handle = data;

  if (handle == NULL)
    return;
  polkit_agent_listener_unregister (handle->registration);
  g_object_unref (handle->listener);
  g_free (handle);
}
