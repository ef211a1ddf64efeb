#pragma once

#include <gio/gio.h>

#include "engine.h"

G_BEGIN_DECLS

#define BANGER_MANAGER_BUS_NAME    "org.banger.Manager"
#define BANGER_MANAGER_OBJECT_PATH "/org/banger/Manager"

/* The D-Bus face of the engine: the org.banger.Manager skeleton and the
 * ObjectManager at /org/banger/Manager with one org.banger.VM child per VM
 * record, kept in step with the engine's vm-added/-changed/-removed
 * signals, plus the HelperAvailable watch on the system bus. */
typedef struct _BangerDbusManager BangerDbusManager;

/* Builds the objects for every VM already in the store; nothing is on a bus
 * until banger_dbus_manager_export(). Keeps a reference on @engine. */
BangerDbusManager *banger_dbus_manager_new (BangerEngine *engine, GError **error);
gboolean banger_dbus_manager_export (BangerDbusManager *self, GDBusConnection *connection,
                                     GError **error);
void banger_dbus_manager_free (BangerDbusManager *self);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BangerDbusManager, banger_dbus_manager_free)

G_END_DECLS
