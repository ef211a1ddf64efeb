#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* Methods of the API that this build does not implement yet. Instead of
 * GDBus' generic UnknownMethod, such a call gets org.banger.Error.Unsupported
 * naming the missing capability, so clients (and docs/dbus-api.md) can tell
 * "not yet" from "wrong name". */

/* Connects to @skeleton's "g-authorize-method" so that every method listed
 * as unsupported for its interface is answered before dispatch. */
void banger_dbus_unsupported_attach (GDBusInterfaceSkeleton *skeleton);

/* The capability an unsupported method lacks, or NULL if it is implemented. */
const char *banger_dbus_unsupported_capability (const char *interface_name,
                                                const char *method_name);

G_END_DECLS
