#pragma once

#include <gio/gio.h>

#include "jobs.h"
#include "manager.h"
#include "store-catalog.h"

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

/* For the catalog's own files (kernels.c): emits a signal on the main context. */
void banger_catalog_emit_kernel_added (BangerCatalog *self, const BangerKernelRecord *rec);
void banger_catalog_emit_kernel_removed (BangerCatalog *self, const char *name);

/* Removes a directory the catalog made (flat: files only) and ignores
 * what is already gone. */
void banger_catalog_remove_dir (const char *dir);

G_END_DECLS
