#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* Long work (image builds, later pulls and updates) as a job: the work runs
 * in a GTask thread and reports progress from there; everything a job
 * announces ("changed", "completed") is emitted on the main context of the
 * thread that started it. The D-Bus face is dbus-job.c. */
#define BANGER_TYPE_ENGINE_JOB (banger_engine_job_get_type ())
G_DECLARE_FINAL_TYPE (BangerEngineJob, banger_engine_job, BANGER, ENGINE_JOB, GObject)

/* Runs in the worker thread; returns the work's result (owned, freed with
 * the start call's @result_free unless the finish function claims it) or
 * NULL with @error set. */
typedef gpointer (*BangerEngineJobThreadFunc) (BangerEngineJob *job, gpointer data,
                                               GCancellable *cancellable, GError **error);
/* Runs on the main context after a successful thread function, unless the
 * job was cancelled meanwhile; registers what was made. It may set the
 * result with banger_engine_job_set_result(). */
typedef gboolean (*BangerEngineJobFinishFunc) (BangerEngineJob *job, gpointer result, gpointer data,
                                               GError **error);

/* @operation: "build-image", …; @target: what it works on. */
BangerEngineJob *banger_engine_job_new (const char *operation, const char *target,
                                        guint started_by_uid);

void banger_engine_job_start (BangerEngineJob *job, BangerEngineJobThreadFunc thread_func,
                              BangerEngineJobFinishFunc finish_func, gpointer data,
                              GDestroyNotify data_free, GDestroyNotify result_free);

guint banger_engine_job_get_number (BangerEngineJob *job); /* /org/banger/Manager/jobs/<n> */
const char *banger_engine_job_get_operation (BangerEngineJob *job);
const char *banger_engine_job_get_target (BangerEngineJob *job);
guint banger_engine_job_get_started_by_uid (BangerEngineJob *job);
/* "running", "succeeded", "failed", "cancelled" */
const char *banger_engine_job_get_state (BangerEngineJob *job);
gboolean banger_engine_job_is_finished (BangerEngineJob *job);
/* Progress (0..1, -1 unknown), bytes and message as last flushed to the
 * main context. */
void banger_engine_job_get_progress (BangerEngineJob *job, double *progress, guint64 *bytes_done,
                                     guint64 *bytes_total);
char *banger_engine_job_dup_message (BangerEngineJob *job);
/* What the job made: a kind ("image", "kernel") and a name; NULL before. */
const char *banger_engine_job_get_result_kind (BangerEngineJob *job);
const char *banger_engine_job_get_result_name (BangerEngineJob *job);
void banger_engine_job_set_result (BangerEngineJob *job, const char *kind, const char *name);

/* From any thread. @progress < 0 keeps the current value, @message NULL
 * keeps the current message. Announced at most once per 100 ms ("changed"),
 * the latest values winning; the final values always go out before
 * "completed". */
void banger_engine_job_update (BangerEngineJob *job, double progress, guint64 bytes_done,
                               guint64 bytes_total, const char *message);

/* Main context. BadState if the job has ended already. */
gboolean banger_engine_job_cancel (BangerEngineJob *job, GError **error);

/* Blocks until the job has ended (from a worker thread, or from the thread
 * that owns the main context, which is then iterated). TRUE if it
 * succeeded; else the job's message as a BANGER_ERROR (Cancelled for a
 * cancelled job). */
gboolean banger_engine_job_wait (BangerEngineJob *job, GError **error);

G_END_DECLS
