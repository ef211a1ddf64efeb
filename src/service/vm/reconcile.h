#pragma once

#include <gio/gio.h>

#include "vm-list.h"
#include "vm-runtime.h"

G_BEGIN_DECLS

/* Start-up reconciliation (ARCHITECTURE.md "reconcile"): for every VM the
 * store calls starting, running or stopping, find its VMM through the
 * driver (pidfile checked against /proc comm and command line). A live VMM
 * is adopted: watched, its agent re-attached (boot id checked), the VM
 * stays running with the same pid. A VMM that is gone: the VM becomes
 * stopped and its tap and lease are released. A live VM's resources are
 * never torn down. Completes when every VM has been handled; never fails
 * (problems are logged and put in the VM's LastError). */
void banger_reconcile_async (BangerVmList *vm_list, BangerVmRuntime *runtime,
                             GAsyncReadyCallback callback, gpointer user_data);
gboolean banger_reconcile_finish (GAsyncResult *result, GError **error);

G_END_DECLS
