#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Calls on the main context from a worker thread: the store is only ever
 * used on the main context (store.h), so a worker that must read or write a
 * record (an import checking a name, then registering it) runs that part
 * there and waits. The image and kernel lists each wrap it with their own
 * type. */
typedef gpointer (*BangerMainCallFunc) (gpointer owner, gpointer data, GError **error);

/* Runs @func (@owner, @data) on @context and waits for its result; called
 * from the thread that runs @context (or when nobody runs it), it just runs
 * it. */
gpointer banger_main_call (GMainContext *context, BangerMainCallFunc func, gpointer owner,
                           gpointer data, GError **error);

G_END_DECLS
