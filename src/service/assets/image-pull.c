/* PullImage's engine side: an OCI image, or a rootfs tarball named by the
 * remote catalog index, made into an image of the image list (image-pull.h);
 * also the blob cache's listing and pruning. */
#include "image-pull.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <string.h>

#include "banger-error.h"
#include "guest-agent.h"
#include "boot-assets.h"
#include "catalog-index.h"
#include "oci-pull.h"
#include "oci-reference.h"
#include "rootfs-tarball.h"
#include "store-images.h"
#include "validate.h"

/* Pulls of the same canonical reference coalesce into one job. */
#define PULL_JOBS "image-pull"

typedef struct {
  char *text;      /* as the caller wrote it */
  char *canonical; /* the coalescing key */
  char *agent;
  guint size_mib;
  gboolean insecure;
  BangerConfig *config;
  gboolean bare_name; /* try the catalog index first */
} PullData;

static void
pull_data_free (PullData *d)
{
  g_free (d->text);
  g_free (d->canonical);
  g_free (d->agent);
  banger_config_unref (d->config);
  g_free (d);
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

/* A bare name: the catalog index's entry for it, or NULL to pull it as a
 * Docker Hub name (also when the index cannot be read: said in the log). */
static BangerCatalogImage *
resolve_catalog_name (BangerConfig *config, const char *name, GCancellable *cancellable)
{
  g_autofree char *url = banger_catalog_index_url (config);
  g_autoptr (GError) local = NULL;
  g_autoptr (BangerCatalogIndex) index
      = banger_catalog_index_fetch (config, url, cancellable, &local);
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

static gboolean
pull_make (BangerEngineJob *job, gpointer data, const char *rootfs, BangerImageRecord *rec,
           GCancellable *cancellable, GError **error)
{
  PullData *d = data;
  g_autoptr (BangerCatalogImage) entry = NULL;
  g_autoptr (BangerOciPullResult) oci = NULL;
  g_autofree char *dir = g_path_get_dirname (rootfs);
  BangerOciPullOptions opts = {
    .size_mib = d->size_mib,
    .insecure = d->insecure,
    .config = d->config,
    .work_dir = dir,
    .agent_path = d->agent,
  };

  if (d->bare_name) {
    banger_engine_job_update (job, 0, 0, 0, "reading the catalog");
    entry = resolve_catalog_name (d->config, d->text, cancellable);
  }
  if (entry != NULL && entry->oci == NULL) {
    /* A rootfs tarball (rootfs-tarball.h): no manifest, no config. */
    if (!banger_rootfs_tarball_pull (d->config, entry, rootfs, d->agent, d->size_mib,
                                     pull_progress_cb, job, cancellable, error))
      return FALSE;
    g_free (rec->source);
    rec->source = g_strconcat ("catalog:", entry->name, NULL);
    return TRUE;
  }
  oci = banger_oci_pull (entry ? entry->oci : d->canonical, &opts, pull_progress_cb, job,
                         cancellable, error);
  if (oci == NULL)
    return FALSE;
  if (g_rename (oci->rootfs_path, rootfs) < 0) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "cannot move the rootfs into %s: %s",
                 dir, g_strerror (errno));
    return FALSE;
  }
  g_free (rec->source);
  rec->source = g_strdup (oci->reference);
  g_free (rec->digest);
  rec->digest = g_strdup (oci->manifest_digest);
  g_free (rec->config);
  rec->config = g_strdup (oci->config_json);
  return TRUE;
}

static gboolean
is_bare_name (const char *text)
{
  return strpbrk (text, "/:@") == NULL;
}

BangerEngineJob *
banger_image_list_pull_image (BangerImageList *self, const char *reference, const char *name,
                              guint size_mib, gboolean insecure, guint uid, GError **error)
{
  g_autoptr (BangerOciReference) ref = NULL;
  g_autoptr (BangerEngineJob) job = NULL;
  g_autofree char *canonical = NULL;
  g_autofree char *chosen = NULL;
  BangerEngineJob *running;
  PullData *d;

  ref = banger_oci_reference_parse (reference, error);
  if (ref == NULL)
    return NULL;
  canonical = banger_oci_reference_to_string (ref);
  running = banger_image_list_find_job (self, PULL_JOBS, canonical);
  if (running != NULL)
    return g_object_ref (running);

  chosen = (name != NULL && *name != '\0') ? g_strdup (name) : default_name (ref);
  if (!banger_validate_name ("image", chosen, error))
    return NULL;
  if (!banger_image_list_check_image_free (self, chosen, "(pick another with the name option)",
                                           error))
    return NULL;
  if (size_mib > 16 * 1024 * 1024) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
                 "size_mib %u is more than 16 TiB", size_mib);
    return NULL;
  }

  d = g_new0 (PullData, 1);
  d->text = g_strdup (reference);
  d->canonical = g_strdup (canonical);
  d->agent = g_strdup (banger_guest_agent_path ());
  d->size_mib = size_mib;
  d->insecure = insecure;
  d->config = banger_config_ref (banger_image_list_get_config (self));
  d->bare_name = is_bare_name (reference);

  job = banger_engine_job_new ("pull-image", canonical, uid);
  g_info ("pulling %s as image %s (job %u)", canonical, chosen, banger_engine_job_get_number (job));
  banger_image_list_start_image_job (self, job, PULL_JOBS, canonical, chosen, pull_make, d,
                                     (GDestroyNotify)pull_data_free);
  return g_steal_pointer (&job);
}

GPtrArray *
banger_image_list_list_cache (BangerImageList *self, GError **error)
{
  g_autoptr (BangerBlobCache) cache = banger_blob_cache_new (NULL, error);
  return cache ? banger_blob_cache_list (cache, error) : NULL;
}

GStrv
banger_image_list_cache_roots (BangerImageList *self, GError **error)
{
  g_autoptr (GPtrArray) images = banger_image_list_list_images (self, error);
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
