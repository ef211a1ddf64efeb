/* What test-agent.c and test-hostile.c share: running the main context until
 * an async call has its result, failing the test after TIMEOUT_S seconds
 * (each test defines it: its own slowest wait). Static inline, so a test
 * that uses only part of it builds without unused-function warnings. */
#pragma once

#include <gio/gio.h>

static inline gboolean
timeout_cb (gpointer data)
{
  g_error ("timed out waiting for %s", (const char *)data);
  return G_SOURCE_REMOVE;
}

typedef struct {
  gboolean done;
  GAsyncResult *res;
} Wait;

static inline void
store_result_cb (GObject *source, GAsyncResult *res, gpointer data)
{
  Wait *w = data;
  w->res = g_object_ref (res);
  w->done = TRUE;
}

/* Iterates the main context until *@flag, failing the test after TIMEOUT_S.
 * Read atomically: test-hostile's flags are set by its fake agent's thread. */
static inline void
run_until (volatile gint *flag, const char *what)
{
  guint id = g_timeout_add_seconds (TIMEOUT_S, timeout_cb, (gpointer)what);
  while (!g_atomic_int_get (flag))
    g_main_context_iteration (NULL, TRUE);
  g_source_remove (id);
}

static inline GAsyncResult *
wait_result (Wait *w, const char *what)
{
  run_until (&w->done, what);
  return w->res;
}
