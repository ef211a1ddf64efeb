#pragma once

#include <gio/gio.h>

#include "engine-job.h"
#include "vm-list.h"
#include "store-images.h"

G_BEGIN_DECLS

/* The engine's images and kernels: the records in the store, their files
 * under <data>/images/<id>/ and <data>/kernels/<id>/, and the jobs that make
 * them. One catalog per engine (banger_catalog_get). Like the engine, it
 * knows nothing about D-Bus; dbus-image.c, dbus-kernel.c and dbus-job.c
 * follow its signals.
 *
 * Calls are made on the main context unless said otherwise; work that
 * blocks (copies, builds, imports) runs in worker threads, and records are
 * only ever written on the main context (the store's rule).
 *
 * Signals (main context):
 *   "image-added"    (const BangerImageRecord *)
 *   "image-removed"  (const char *name)
 *   "kernel-added"   (const BangerKernelRecord *)
 *   "kernel-removed" (const char *name)
 *   "job-added"      (BangerEngineJob *) */
#define BANGER_TYPE_CATALOG (banger_catalog_get_type ())
G_DECLARE_FINAL_TYPE (BangerCatalog, banger_catalog, BANGER, CATALOG, GObject)

/* The engine's catalog, made on first call (from the main context). */
BangerCatalog *banger_catalog_get (BangerEngine *engine);
BangerEngine *banger_catalog_get_engine (BangerCatalog *self);
BangerStore *banger_catalog_get_store (BangerCatalog *self);

/* Runs @func on the catalog's main context and waits for it; called from
 * the main context itself it just runs it. */
typedef gpointer (*BangerCatalogMainFunc) (BangerCatalog *self, gpointer data, GError **error);
gpointer banger_catalog_call_main (BangerCatalog *self, BangerCatalogMainFunc func, gpointer data,
                                   GError **error);

/* ---- images ---- */

GPtrArray *banger_catalog_list_images (BangerCatalog *self, GError **error);
BangerImageRecord *banger_catalog_find_image (BangerCatalog *self, const char *name,
                                              GError **error);
/* <data>/images/<id>/rootfs.ext4 */
char *banger_catalog_image_rootfs (BangerCatalog *self, const BangerImageRecord *rec);
/* Names of the VMs whose image is @name, oldest first. */
GStrv banger_catalog_image_used_by (BangerCatalog *self, const char *name);
/* Busy while a VM uses it unless @force; removes the record and its files. */
gboolean banger_catalog_delete_image (BangerCatalog *self, const char *name, gboolean force,
                                      GError **error);

/* Builds @recipe into image @name (NULL: the recipe's name). Returns the job
 * at once; while one build of @name runs, asking again returns that job.
 * Exists if an image @name is registered, NotFound for an unknown recipe. */
BangerEngineJob *banger_catalog_build_image (BangerCatalog *self, const char *recipe,
                                             const char *name, guint uid, GError **error);

/* Copies @rootfs (a raw ext4 file; reflinked where the file system can) into
 * the data dir and registers it as @name, booting @kernel ("" or NULL: the
 * default). */
void banger_catalog_register_image_async (BangerCatalog *self, const char *name, const char *rootfs,
                                          const char *kernel, GCancellable *cancellable,
                                          GAsyncReadyCallback callback, gpointer user_data);
BangerImageRecord *banger_catalog_register_image_finish (BangerCatalog *self, GAsyncResult *result,
                                                         GError **error);

/* CreateVM's check: NotFound naming the image or kernel unless it is
 * registered or is the engine's default (made on first use). */
gboolean banger_catalog_check_vm_assets (BangerCatalog *self, const char *image, const char *kernel,
                                         GError **error);

/* Whether an image built by a recipe carries an sshd (kept in its config). */
gboolean banger_image_record_has_sshd (const BangerImageRecord *rec);

/* The a{sv} of an image's JSON config (entrypoint, cmd, env, workdir, user). */
GVariant *banger_image_config_to_variant (const char *json);

/* ---- jobs that make an image or a kernel ---- */

/* Jobs in flight are listed by @kind ("build", "image-pull", …) and @key
 * (what the kind coalesces or refuses on), so that asking again finds the
 * running job. NULL when none runs. */
BangerEngineJob *banger_catalog_find_job (BangerCatalog *self, const char *kind, const char *key);

/* Announces @job ("job-added") and starts it (jobs.h); it is listed under
 * @kind and @key until it completes. Its thread and finish functions find
 * the catalog with banger_catalog_from_job(). */
void banger_catalog_start_job (BangerCatalog *self, BangerEngineJob *job, const char *kind,
                               const char *key, BangerEngineJobThreadFunc thread_func,
                               BangerEngineJobFinishFunc finish_func, gpointer data,
                               GDestroyNotify data_free, GDestroyNotify result_free);
BangerCatalog *banger_catalog_from_job (BangerEngineJob *job);

/* What differs between the jobs that make an image (build, pull, promote):
 * runs in the job's thread, writes the raw ext4 file @rootfs (in the new
 * image's directory, already made) and fills in what it knows of @rec
 * (source; digest, kernel, config if any). */
typedef gboolean (*BangerCatalogImageFunc) (BangerEngineJob *job, gpointer data, const char *rootfs,
                                            BangerImageRecord *rec, GCancellable *cancellable,
                                            GError **error);

/* Starts @job (as banger_catalog_start_job) making image @name with @make
 * in <data>/images/<new id>/. On success the image is registered
 * (banger_catalog_add_image) and is the job's result; on any failure or
 * cancel nothing is registered and the directory is removed. */
void banger_catalog_start_image_job (BangerCatalog *self, BangerEngineJob *job, const char *kind,
                                     const char *key, const char *name, BangerCatalogImageFunc make,
                                     gpointer data, GDestroyNotify data_free);

/* Registers @rec, whose files are complete, with the size of @rootfs and
 * the current time, and announces it ("image-added"). Main context. */
gboolean banger_catalog_add_image (BangerCatalog *self, BangerImageRecord *rec, const char *rootfs,
                                   GError **error);

/* Exists, naming @name (followed by @hint if not NULL), if an image or a
 * kernel called @name is registered; a failed look-up is returned as is. */
gboolean banger_catalog_check_image_free (BangerCatalog *self, const char *name, const char *hint,
                                          GError **error);
gboolean banger_catalog_check_kernel_free (BangerCatalog *self, const char *name, const char *hint,
                                           GError **error);

/* For the catalog's own files (kernels.c): emits a signal on the main context. */
void banger_catalog_emit_kernel_added (BangerCatalog *self, const BangerKernelRecord *rec);
void banger_catalog_emit_kernel_removed (BangerCatalog *self, const char *name);

/* Removes a directory the catalog made (flat: files only) and ignores
 * what is already gone. */
void banger_catalog_remove_dir (const char *dir);

G_END_DECLS
