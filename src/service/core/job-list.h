#pragma once

#include "engine-job.h"

G_BEGIN_DECLS

/* BangerJobList: bangerd's one list of running jobs (pulls, builds,
 * imports, promotes, the update), owned by the engine. A job is listed under
 * a kind and a key ("pull" + the canonical reference) while it runs, so a
 * second request for the same thing joins it instead of starting another;
 * it leaves the list when it completes. Main context only.
 *
 * Signals (main context):
 *   "job-added" (BangerEngineJob *) — the D-Bus glue exports it */
#define BANGER_TYPE_JOB_LIST (banger_job_list_get_type ())
G_DECLARE_FINAL_TYPE (BangerJobList, banger_job_list, BANGER, JOB_LIST, GObject)

BangerJobList *banger_job_list_new (void);

/* The running job of @kind under @key, or NULL (not a new reference). */
BangerEngineJob *banger_job_list_find (BangerJobList *self, const char *kind, const char *key);

/* Lists @job under @kind and @key, announces it ("job-added") and starts it
 * (engine-job.h). */
void banger_job_list_start (BangerJobList *self, BangerEngineJob *job, const char *kind,
                            const char *key, BangerEngineJobThreadFunc thread_func,
                            BangerEngineJobFinishFunc finish_func, gpointer data,
                            GDestroyNotify data_free, GDestroyNotify result_free);

/* Every running job, oldest first (new references). */
GPtrArray *banger_job_list_list_running (BangerJobList *self);

G_END_DECLS
