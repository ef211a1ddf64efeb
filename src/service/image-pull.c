#define G_LOG_DOMAIN "banger-images"

#include "image-pull.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <string.h>

#include "banger-error.h"
#include "boot-assets.h"
#include "catalog-index.h"
#include "oci-pull.h"
#include "oci-reference.h"
#include "paths.h"
#include "rootfs-tarball.h"
#include "store-catalog.h"
#include "validate.h"

#define PULLS_KEY "banger-oci-pulls"

typedef struct {
  char *text;      /* as the caller wrote it */
  char *canonical; /* the coalescing key */
  char *name;
  char *id;
  char *dir; /* <data>/images/<id> */
  char *agent;
  guint size_mib;
  gboolean insecure;
  gboolean bare_name; /* try the catalog first */
} PullData;

static void
pull_data_free (PullData *d)
{
  g_free (d->text);
  g_free (d->canonical);
  g_free (d->name);
  g_free (d->id);
  g_free (d->dir);
  g_free (d->agent);
  g_free (d);
}

typedef struct {
  BangerOciPullResult *oci; /* NULL for a catalog rootfs tarball… */
  char *source;             /* …whose Source is this */
  char *rootfs;             /* <dir>/rootfs.ext4 */
  char *dir;                /* removed on free unless claimed */
  gboolean claimed;
} PullResult;

static void
pull_result_free (PullResult *r)
{
  if (!r->claimed)
    banger_catalog_remove_dir (r->dir);
  if (r->oci != NULL)
    banger_oci_pull_result_free (r->oci);
  g_free (r->source);
  g_free (r->rootfs);
  g_free (r->dir);
  g_free (r);
}

static GHashTable *
running_pulls (BangerCatalog *self)
{
  GHashTable *t = g_object_get_data (G_OBJECT (self), PULLS_KEY);
  if (t == NULL) {
    t = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_object_unref);
    g_object_set_data_full (G_OBJECT (self), PULLS_KEY, t, (GDestroyNotify)g_hash_table_unref);
  }
  return t;
}

/* "docker.io/library/debian:bookworm" → "debian-bookworm"; "…:latest" →
 * "debian". Names are DNS labels (validate.h). */
static char *
default_name (const BangerOciReference *ref)
{
  const char *base = strrchr (ref->repository, '/');
  GString *s = g_string_new (NULL);

  base = base ? base + 1 : ref->repository;
  g_string_append (s, base);
  if (ref->tag != NULL && !g_str_equal (ref->tag, "latest"))
    g_string_append_printf (s, "-%s", ref->tag);
  for (gsize i = 0; i < s->len; i++) {
    char c = g_ascii_tolower (s->str[i]);
    s->str[i] = (g_ascii_isalnum (c)) ? c : '-';
  }
  if (s->len == 0 || !g_ascii_isalpha (s->str[0]))
    g_string_prepend (s, "img-");
  g_string_truncate (s, MIN (s->len, 32));
  while (s->len > 0 && s->str[s->len - 1] == '-')
    g_string_truncate (s, s->len - 1);
  return g_string_free (s, FALSE);
}

static void
pull_progress_cb (double fraction, guint64 done, guint64 total, const char *message,
                  gpointer user_data)
{
  banger_engine_job_update (BANGER_ENGINE_JOB (user_data), fraction, done, total, message);
}

/* A bare name: the catalog's entry for it, or NULL to pull it as a Docker
 * Hub name (also when the catalog cannot be read: said in the log). */
static BangerCatalogImage *
resolve_catalog_name (const char *name, GCancellable *cancellable)
{
  g_autofree char *url = banger_catalog_index_url ();
  g_autoptr (GError) local = NULL;
  g_autoptr (BangerCatalogIndex) index = banger_catalog_index_fetch (url, cancellable, &local);
  const BangerCatalogImage *img;
  BangerCatalogImage *copy;

  if (index == NULL) {
    g_info ("catalog %s not available (%s); pulling “%s” from Docker Hub", url, local->message,
            name);
    return NULL;
  }
  img = banger_catalog_index_find_image (index, name);
  if (img == NULL)
    return NULL;
  copy = g_new0 (BangerCatalogImage, 1);
  copy->name = g_strdup (img->name);
  copy->oci = g_strdup (img->oci);
  copy->rootfs_url = g_strdup (img->rootfs_url);
  copy->rootfs_sha256 = g_strdup (img->rootfs_sha256);
  return copy;
}

static void
catalog_image_free (BangerCatalogImage *img)
{
  if (img == NULL)
    return;
  g_free (img->name);
  g_free (img->description);
  g_free (img->oci);
  g_free (img->rootfs_url);
  g_free (img->rootfs_sha256);
  g_free (img);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BangerCatalogImage, catalog_image_free)

static gpointer
pull_thread (BangerEngineJob *job, gpointer data, GCancellable *cancellable, GError **error)
{
  PullData *d = data;
  g_autoptr (BangerCatalogImage) entry = NULL;
  PullResult *r = g_new0 (PullResult, 1);
  BangerOciPullOptions opts = {
    .size_mib = d->size_mib,
    .insecure = d->insecure,
    .work_dir = d->dir,
    .agent_path = d->agent,
  };

  r->dir = g_strdup (d->dir);
  r->rootfs = g_build_filename (d->dir, "rootfs.ext4", NULL);
  if (d->bare_name) {
    banger_engine_job_update (job, 0, 0, 0, "reading the catalog");
    entry = resolve_catalog_name (d->text, cancellable);
  }
  if (!banger_ensure_dir (d->dir, error))
    goto fail;
  if (entry != NULL && entry->oci == NULL) {
    /* A rootfs tarball (rootfs-tarball.h): no manifest, no config. */
    if (!banger_rootfs_tarball_pull (entry, r->rootfs, d->agent, d->size_mib, pull_progress_cb, job,
                                     cancellable, error))
      goto fail;
    r->source = g_strconcat ("catalog:", entry->name, NULL);
    return r;
  }
  r->oci = banger_oci_pull (entry ? entry->oci : d->canonical, &opts, pull_progress_cb, job,
                            cancellable, error);
  if (r->oci == NULL)
    goto fail;
  if (g_rename (r->oci->rootfs_path, r->rootfs) < 0) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "cannot move the rootfs into %s: %s",
                 d->dir, g_strerror (errno));
    goto fail;
  }
  return r;
fail:
  pull_result_free (r);
  return NULL;
}

static gboolean
pull_finish (BangerEngineJob *job, gpointer result, gpointer data, GError **error)
{
  PullResult *r = result;
  PullData *d = data;
  BangerCatalog *self = g_object_get_data (G_OBJECT (job), "banger-catalog");
  g_autoptr (BangerImageRecord) rec = banger_image_record_new ();
  GStatBuf st;

  g_free (rec->id);
  rec->id = g_strdup (d->id);
  g_free (rec->name);
  rec->name = g_strdup (d->name);
  g_free (rec->source);
  rec->source = g_strdup (r->oci ? r->oci->reference : r->source);
  g_free (rec->digest);
  rec->digest = g_strdup (r->oci ? r->oci->manifest_digest : "");
  rec->size_bytes = g_stat (r->rootfs, &st) == 0 ? (guint64)st.st_size : 0;
  rec->created_at = g_get_real_time () / G_USEC_PER_SEC;
  g_free (rec->config);
  rec->config = g_strdup (r->oci ? r->oci->config_json : "{}");
  if (!banger_store_image_insert (banger_catalog_get_store (self), rec, error))
    return FALSE;
  g_info ("pulled image %s from %s (%s)", rec->name, rec->source, rec->digest);
  r->claimed = TRUE;
  /* images.c announces its own inserts; a pulled image is announced the same way. */
  g_signal_emit_by_name (self, "image-added", rec);
  banger_engine_job_set_result (job, "image", rec->name);
  return TRUE;
}

static void
pull_completed_cb (BangerEngineJob *job, gboolean success, const char *message, gpointer user_data)
{
  BangerCatalog *self = BANGER_CATALOG (user_data);
  const char *key = g_object_get_data (G_OBJECT (job), "banger-pull-key");
  GHashTable *t = running_pulls (self);

  if (g_hash_table_lookup (t, key) == job)
    g_hash_table_remove (t, key);
}

static gboolean
is_bare_name (const char *text)
{
  return strpbrk (text, "/:@") == NULL;
}

BangerEngineJob *
banger_catalog_pull_image (BangerCatalog *self, const char *reference, const char *name,
                           guint size_mib, gboolean insecure, guint uid, GError **error)
{
  g_autoptr (BangerOciReference) ref = NULL;
  g_autoptr (BangerImageRecord) existing = NULL;
  g_autoptr (GError) lookup_error = NULL;
  g_autoptr (BangerEngineJob) job = NULL;
  g_autofree char *canonical = NULL;
  g_autofree char *chosen = NULL;
  g_autofree char *data_dir = NULL;
  BangerEngineJob *running;
  PullData *d;

  ref = banger_oci_reference_parse (reference, error);
  if (ref == NULL)
    return NULL;
  canonical = banger_oci_reference_to_string (ref);
  running = g_hash_table_lookup (running_pulls (self), canonical);
  if (running != NULL)
    return g_object_ref (running);

  chosen = (name != NULL && *name != '\0') ? g_strdup (name) : default_name (ref);
  if (!banger_validate_name ("image", chosen, error))
    return NULL;
  existing
      = banger_store_image_get_by_name (banger_catalog_get_store (self), chosen, &lookup_error);
  if (existing != NULL) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_EXISTS,
                 "an image called “%s” already exists (pick another with the name option)", chosen);
    return NULL;
  }
  if (!g_error_matches (lookup_error, BANGER_ERROR, BANGER_ERROR_NOT_FOUND)) {
    g_propagate_error (error, g_steal_pointer (&lookup_error));
    return NULL;
  }
  if (size_mib > 16 * 1024 * 1024) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
                 "size_mib %u is more than 16 TiB", size_mib);
    return NULL;
  }

  d = g_new0 (PullData, 1);
  d->text = g_strdup (reference);
  d->canonical = g_strdup (canonical);
  d->name = g_strdup (chosen);
  d->id = banger_vm_id_new ();
  data_dir = banger_data_dir ();
  d->dir = g_build_filename (data_dir, "images", d->id, NULL);
  d->agent = g_strdup (banger_agent_binary_path ());
  d->size_mib = size_mib;
  d->insecure = insecure;
  d->bare_name = is_bare_name (reference);

  job = banger_engine_job_new ("pull-image", canonical, uid);
  g_object_set_data (G_OBJECT (job), "banger-catalog", self);
  g_object_set_data_full (G_OBJECT (job), "banger-pull-key", g_strdup (canonical), g_free);
  g_hash_table_insert (running_pulls (self), g_strdup (canonical), g_object_ref (job));
  g_signal_connect_object (job, "completed", G_CALLBACK (pull_completed_cb), self, 0);
  g_info ("pulling %s as image %s (job %u)", canonical, chosen, banger_engine_job_get_number (job));
  g_signal_emit_by_name (self, "job-added", job);
  banger_engine_job_start (job, pull_thread, pull_finish, d, (GDestroyNotify)pull_data_free,
                           (GDestroyNotify)pull_result_free);
  return g_steal_pointer (&job);
}

GPtrArray *
banger_catalog_list_cache (BangerCatalog *self, GError **error)
{
  g_autoptr (BangerBlobCache) cache = banger_blob_cache_new (NULL, error);
  return cache ? banger_blob_cache_list (cache, error) : NULL;
}

GStrv
banger_catalog_cache_roots (BangerCatalog *self, GError **error)
{
  g_autoptr (GPtrArray) images = banger_catalog_list_images (self, error);
  g_autoptr (GStrvBuilder) b = g_strv_builder_new ();

  if (images == NULL)
    return NULL;
  for (guint i = 0; i < images->len; i++) {
    BangerImageRecord *rec = images->pdata[i];
    if (rec->digest != NULL && *rec->digest != '\0')
      g_strv_builder_add (b, rec->digest);
  }
  return g_strv_builder_end (b);
}
