#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* Follows whether org.banger.Helper has an owner on the system bus. */
typedef struct _BangerHelperWatch BangerHelperWatch;

typedef void (*BangerHelperWatchFunc) (gboolean available, gpointer user_data);

/* Connects to the system bus asynchronously; @func is called on every change
 * (and with FALSE if there is no system bus). */
BangerHelperWatch *banger_helper_watch_new (BangerHelperWatchFunc func, gpointer user_data);
void banger_helper_watch_free (BangerHelperWatch *self);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BangerHelperWatch, banger_helper_watch_free)

G_END_DECLS
