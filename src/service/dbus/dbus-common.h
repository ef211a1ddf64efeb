#pragma once

#include "banger-dbus.h"
#include "image-list.h"

G_BEGIN_DECLS

/* What the catalog's Manager methods (dbus-image.c, dbus-kernel.c,
 * dbus-oci.c, dbus-lifecycle.c) have in common. */

/* Starts the caller's job: called with the caller's uid (the job's
 * StartedByUID). */
typedef BangerEngineJob *(*BangerDbusJobStartFunc) (BangerImageList *catalog, gpointer data,
                                                    guint uid, GError **error);
/* A generated banger_manager_complete_*() whose out argument is the job. */
typedef void (*BangerDbusJobCompleteFunc) (BangerManager *skeleton,
                                           GDBusMethodInvocation *invocation, const char *job);

/* Asks the bus for the caller's uid, calls @start and replies through
 * @complete with the job's object path, or with the error of either.
 * @data is freed with @data_free once the reply is sent. (dbus-job.c) */
void banger_dbus_job_start_for_caller (BangerManager *skeleton, GDBusMethodInvocation *invocation,
                                       BangerImageList *catalog, BangerDbusJobStartFunc start,
                                       BangerDbusJobCompleteFunc complete, gpointer data,
                                       GDestroyNotify data_free);

typedef gboolean (*BangerDbusDeleteFunc) (BangerImageList *catalog, const char *name, gboolean force,
                                          GError **error);
typedef void (*BangerDbusDeleteCompleteFunc) (BangerManager *skeleton,
                                              GDBusMethodInvocation *invocation);

/* DeleteImage and DeleteKernel: checks @options (only "force"), calls
 * @delete and replies. (dbus-image.c) */
void banger_dbus_catalog_delete (BangerManager *skeleton, GDBusMethodInvocation *invocation,
                                 BangerImageList *catalog, const char *name, GVariant *options,
                                 BangerDbusDeleteFunc delete,
                                 BangerDbusDeleteCompleteFunc complete);

G_END_DECLS
