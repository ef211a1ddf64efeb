#include "helper-watch.h"

#define HELPER_BUS_NAME       "org.banger.Helper"
#define RECONNECT_MIN_SECONDS 2
#define RECONNECT_MAX_SECONDS 60

struct _BangerHelperWatch {
  BangerHelperWatchFunc func;
  gpointer user_data;
  GCancellable *cancellable;
  GDBusConnection *connection;
  guint watch_id;
  gulong closed_id;
  guint reconnect_id;
  guint reconnect_seconds;
  gboolean available;
};

static void helper_watch_connect (BangerHelperWatch *self);

static void
set_available (BangerHelperWatch *self, gboolean available)
{
  if (self->available == available)
    return;
  self->available = available;
  g_info ("%s %s on the system bus", HELPER_BUS_NAME, available ? "appeared" : "vanished");
  self->func (available, self->user_data);
}

static void
name_appeared_cb (GDBusConnection *connection, const char *name, const char *owner,
                  gpointer user_data)
{
  set_available (user_data, TRUE);
}

static void
name_vanished_cb (GDBusConnection *connection, const char *name, gpointer user_data)
{
  set_available (user_data, FALSE);
}

static gboolean
reconnect_cb (gpointer user_data)
{
  BangerHelperWatch *self = user_data;

  self->reconnect_id = 0;
  helper_watch_connect (self);
  return G_SOURCE_REMOVE;
}

/* The system bus can be absent (containers, CI) or restart; retry with a
 * growing delay instead of giving up, so the property recovers by itself. */
static void
schedule_reconnect (BangerHelperWatch *self)
{
  if (self->reconnect_id != 0)
    return;
  self->reconnect_id = g_timeout_add_seconds (self->reconnect_seconds, reconnect_cb, self);
  self->reconnect_seconds = MIN (self->reconnect_seconds * 2, RECONNECT_MAX_SECONDS);
}

static void
drop_connection (BangerHelperWatch *self)
{
  if (self->watch_id != 0) {
    g_bus_unwatch_name (self->watch_id);
    self->watch_id = 0;
  }
  if (self->connection != NULL) {
    g_clear_signal_handler (&self->closed_id, self->connection);
    g_clear_object (&self->connection);
  }
}

static void
connection_closed_cb (GDBusConnection *connection, gboolean remote_peer_vanished, GError *error,
                      gpointer user_data)
{
  BangerHelperWatch *self = user_data;

  g_info ("system bus connection closed%s%s", error ? ": " : "", error ? error->message : "");
  drop_connection (self);
  set_available (self, FALSE);
  schedule_reconnect (self);
}

static void
connected_cb (GObject *source, GAsyncResult *res, gpointer user_data)
{
  BangerHelperWatch *self = user_data;
  g_autoptr (GError) error = NULL;
  g_autoptr (GDBusConnection) connection = g_dbus_connection_new_for_address_finish (res, &error);

  if (connection == NULL) {
    if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
      return;
    g_debug ("no system bus: %s", error->message);
    set_available (self, FALSE);
    schedule_reconnect (self);
    return;
  }
  self->reconnect_seconds = RECONNECT_MIN_SECONDS;
  self->connection = g_steal_pointer (&connection);
  self->closed_id
      = g_signal_connect (self->connection, "closed", G_CALLBACK (connection_closed_cb), self);
  self->watch_id = g_bus_watch_name_on_connection (self->connection, HELPER_BUS_NAME,
                                                   G_BUS_NAME_WATCHER_FLAGS_NONE, name_appeared_cb,
                                                   name_vanished_cb, self, NULL);
}

/* A private connection rather than g_bus_get(): the shared system-bus
 * singleton exits the process when the bus goes away, and bangerd must keep
 * running (it lives on the session bus) when the system bus restarts. */
static void
helper_watch_connect (BangerHelperWatch *self)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *address = g_dbus_address_get_for_bus_sync (G_BUS_TYPE_SYSTEM, NULL, &error);

  if (address == NULL) {
    g_debug ("no system bus address: %s", error->message);
    set_available (self, FALSE);
    schedule_reconnect (self);
    return;
  }
  g_dbus_connection_new_for_address (address,
                                     G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT
                                         | G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
                                     NULL, self->cancellable, connected_cb, self);
}

BangerHelperWatch *
banger_helper_watch_new (BangerHelperWatchFunc func, gpointer user_data)
{
  BangerHelperWatch *self = g_new0 (BangerHelperWatch, 1);

  self->func = func;
  self->user_data = user_data;
  self->cancellable = g_cancellable_new ();
  self->reconnect_seconds = RECONNECT_MIN_SECONDS;
  helper_watch_connect (self);
  return self;
}

void
banger_helper_watch_free (BangerHelperWatch *self)
{
  if (self == NULL)
    return;
  g_cancellable_cancel (self->cancellable);
  g_clear_object (&self->cancellable);
  g_clear_handle_id (&self->reconnect_id, g_source_remove);
  drop_connection (self);
  g_free (self);
}
