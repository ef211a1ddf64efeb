#pragma once

#include "banger-dbus.h"
#include "engine.h"

G_BEGIN_DECLS

/* What the Manager methods over the image and kernel lists and the jobs
 * (dbus-image.c, dbus-kernel.c, dbus-oci.c, dbus-lifecycle.c, dbus-update.c)
 * have in common: starting a job for the caller, deleting by name. */

/* The uid of the caller of @invocation, asked of the bus (async); a
 * peer-to-peer caller is this process. */
void banger_dbus_caller_uid_async (GDBusMethodInvocation *invocation, GAsyncReadyCallback callback,
                                   gpointer user_data);
gboolean banger_dbus_caller_uid_finish (GAsyncResult *result, guint *uid, GError **error);

/* Checks a method's @options against @allowed (banger_validate_options);
 * when they do not pass, replies to @invocation with the error and returns
 * FALSE, and the handler only returns. */
gboolean banger_dbus_check_options (GDBusMethodInvocation *invocation, GVariant *options,
                                    const char *const *allowed);

/* Starts the caller's job: called with the caller's uid (the job's
 * StartedByUID); takes what it needs from @engine. */
typedef BangerEngineJob *(*BangerDbusJobStartFunc) (BangerEngine *engine, gpointer data, guint uid,
                                                    GError **error);
/* A generated banger_manager_complete_*() whose out argument is the job. */
typedef void (*BangerDbusJobCompleteFunc) (BangerManager *skeleton,
                                           GDBusMethodInvocation *invocation, const char *job);

/* Asks the bus for the caller's uid, calls @start and replies through
 * @complete with the job's object path, or with the error of either.
 * @data is freed with @data_free once the reply is sent. */
void banger_dbus_job_start_for_caller (BangerManager *skeleton, GDBusMethodInvocation *invocation,
                                       BangerEngine *engine, BangerDbusJobStartFunc start,
                                       BangerDbusJobCompleteFunc complete, gpointer data,
                                       GDestroyNotify data_free);

/* A generated banger_manager_complete_*() whose out argument is one a{sv}. */
typedef void (*BangerDbusVariantCompleteFunc) (BangerManager *skeleton,
                                               GDBusMethodInvocation *invocation, GVariant *value);

/* The reply of a method whose worker thread computes its one GVariant (a
 * GTask on @skeleton, the invocation as its callback data; CheckUpdate,
 * PlanUpdate): through @complete, or the task's error. */
void banger_dbus_complete_variant_task (GObject *skeleton, GAsyncResult *res,
                                        GDBusMethodInvocation *invocation,
                                        BangerDbusVariantCompleteFunc complete);

/* DeleteImage's and DeleteKernel's options (only "force"): FALSE when
 * they were refused (the reply is sent). */
gboolean banger_dbus_delete_options (GDBusMethodInvocation *invocation, GVariant *options,
                                     gboolean *force);

G_END_DECLS
