#pragma once

#include <gio/gio.h>

#include "banger-config.h"
#include "job-list.h"
#include "kernel-list.h"
#include "store-images.h"

G_BEGIN_DECLS

/* BangerImageList: the engine's images: the records in the store, their
 * files under <data>/images/<id>/, and the jobs that make them. One per
 * engine, made by it (engine.c) with the kernel list, which it asks about
 * the images' kernels (registration, CreateVM's check, what a VM boots).
 * Like the engine, it knows nothing about D-Bus; dbus-image.c and
 * dbus-job.c follow its signals.
 *
 * Calls are made on the main context unless said otherwise; work that
 * blocks (copies, builds, imports) runs in worker threads, and records are
 * only ever written on the main context (the store's rule).
 *
 * Signals (main context):
 *   "image-added"    (const BangerImageRecord *)
 *   "image-removed"  (const char *name) */
#define BANGER_TYPE_IMAGE_LIST (banger_image_list_get_type ())
G_DECLARE_FINAL_TYPE (BangerImageList, banger_image_list, BANGER, IMAGE_LIST, GObject)

/* Made once, by the engine, on the main context (whose jobs finish there);
 * @store is the engine's and outlives the list. */
BangerImageList *banger_image_list_new (BangerConfig *config, BangerStore *store,
                                        BangerJobList *jobs, BangerKernelList *kernels);
BangerConfig *banger_image_list_get_config (BangerImageList *self);
const char *banger_image_list_get_data_dir (BangerImageList *self);
BangerStore *banger_image_list_get_store (BangerImageList *self);
/* The kernel list the images boot from. */
BangerKernelList *banger_image_list_get_kernels (BangerImageList *self);

/* Runs @func on the list's main context and waits for it (main-call.h). */
typedef gpointer (*BangerImageListMainFunc) (BangerImageList *self, gpointer data, GError **error);
gpointer banger_image_list_call_main (BangerImageList *self, BangerImageListMainFunc func,
                                      gpointer data, GError **error);

/* ---- images ---- */

GPtrArray *banger_image_list_list_images (BangerImageList *self, GError **error);
BangerImageRecord *banger_image_list_find_image (BangerImageList *self, const char *name,
                                                 GError **error);
/* <data>/images/<id>/rootfs.ext4 */
char *banger_image_list_image_rootfs (BangerImageList *self, const BangerImageRecord *rec);
/* Names of the VMs whose image is @name, oldest first. */
GStrv banger_image_list_image_used_by (BangerImageList *self, const char *name);
/* Busy while a VM uses it unless @force; removes the record and its files. */
gboolean banger_image_list_delete_image (BangerImageList *self, const char *name, gboolean force,
                                         GError **error);

/* Builds @recipe into image @name (NULL: the recipe's name). Returns the job
 * at once; while one build of @name runs, asking again returns that job.
 * Exists if an image @name is registered, NotFound for an unknown recipe. */
BangerEngineJob *banger_image_list_build_image (BangerImageList *self, const char *recipe,
                                                const char *name, guint uid, GError **error);

/* Copies @rootfs (a raw ext4 file; reflinked where the file system can) into
 * the data dir and registers it as @name, booting @kernel ("" or NULL: the
 * default). */
void banger_image_list_register_image_async (BangerImageList *self, const char *name,
                                             const char *rootfs, const char *kernel,
                                             GCancellable *cancellable,
                                             GAsyncReadyCallback callback, gpointer user_data);
BangerImageRecord *banger_image_list_register_image_finish (BangerImageList *self,
                                                            GAsyncResult *result, GError **error);

/* CreateVM's check: NotFound naming the image or kernel unless it is
 * registered or is the engine's default (made on first use). */
gboolean banger_image_list_check_vm_assets (BangerImageList *self, const char *image,
                                            const char *kernel, GError **error);

/* Whether an image built by a recipe carries an sshd (kept in its config). */
gboolean banger_image_record_has_sshd (const BangerImageRecord *rec);

/* The a{sv} of an image's JSON config (entrypoint, cmd, env, workdir, user). */
GVariant *banger_image_config_to_variant (const char *json);

/* ---- jobs that make an image ---- */

/* Jobs in flight are listed by @kind ("build", "image-pull", …) and @key
 * (what the kind coalesces or refuses on), so that asking again finds the
 * running job. NULL when none runs. */
BangerEngineJob *banger_image_list_find_job (BangerImageList *self, const char *kind,
                                             const char *key);

/* Starts @job through the engine's job list (job-list.h): announced
 * ("job-added" on the job list), listed under @kind and @key until it
 * completes. Its thread and finish functions get what they need in @data. */
void banger_image_list_start_job (BangerImageList *self, BangerEngineJob *job, const char *kind,
                                  const char *key, BangerEngineJobThreadFunc thread_func,
                                  BangerEngineJobFinishFunc finish_func, gpointer data,
                                  GDestroyNotify data_free, GDestroyNotify result_free);

/* What differs between the jobs that make an image (build, pull, promote):
 * runs in the job's thread, writes the raw ext4 file @rootfs (in the new
 * image's directory, already made) and fills in what it knows of @rec
 * (source; digest, kernel, config if any). */
typedef gboolean (*BangerImageListImageFunc) (BangerEngineJob *job, gpointer data,
                                              const char *rootfs, BangerImageRecord *rec,
                                              GCancellable *cancellable, GError **error);

/* Starts @job (as banger_image_list_start_job) making image @name with @make
 * in <data>/images/<new id>/. On success the image is registered
 * (banger_image_list_add_image) and is the job's result; on any failure or
 * cancel nothing is registered and the directory is removed. */
void banger_image_list_start_image_job (BangerImageList *self, BangerEngineJob *job,
                                        const char *kind, const char *key, const char *name,
                                        BangerImageListImageFunc make, gpointer data,
                                        GDestroyNotify data_free);

/* Registers @rec, whose files are complete, with the size of @rootfs and
 * the current time, and announces it ("image-added"). Main context. */
gboolean banger_image_list_add_image (BangerImageList *self, BangerImageRecord *rec,
                                      const char *rootfs, GError **error);

/* Exists, naming @name (followed by @hint if not NULL), if an image called
 * @name is registered; a failed look-up is returned as is. */
gboolean banger_image_list_check_image_free (BangerImageList *self, const char *name,
                                             const char *hint, GError **error);

G_END_DECLS
