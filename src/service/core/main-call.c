/* banger_main_call: running a function on the main context and waiting for
 * it (main-call.h). */
#include "main-call.h"

typedef struct {
  BangerMainCallFunc func;
  gpointer owner;
  gpointer data;
  gpointer result;
  GError *error;
  gboolean done;
  GMutex lock;
  GCond cond;
} MainCall;

static gboolean
main_call_cb (gpointer user_data)
{
  MainCall *call = user_data;
  gpointer result = call->func (call->owner, call->data, &call->error);

  g_mutex_lock (&call->lock);
  call->result = result;
  call->done = TRUE;
  g_cond_signal (&call->cond);
  g_mutex_unlock (&call->lock);
  return G_SOURCE_REMOVE;
}

gpointer
banger_main_call (GMainContext *context, BangerMainCallFunc func, gpointer owner, gpointer data,
                  GError **error)
{
  MainCall call = { func, owner, data, NULL, NULL, FALSE };
  gpointer result;

  /* Whoever can acquire the context is the only one running it, so the
   * store is not used by two threads at once. */
  if (g_main_context_acquire (context)) {
    result = func (owner, data, error);
    g_main_context_release (context);
    return result;
  }
  g_mutex_init (&call.lock);
  g_cond_init (&call.cond);
  g_main_context_invoke (context, main_call_cb, &call);
  g_mutex_lock (&call.lock);
  while (!call.done)
    g_cond_wait (&call.cond, &call.lock);
  g_mutex_unlock (&call.lock);
  g_mutex_clear (&call.lock);
  g_cond_clear (&call.cond);
  if (call.error != NULL)
    g_propagate_error (error, call.error);
  return call.result;
}
