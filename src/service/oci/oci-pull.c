#include "oci-pull.h"

#include <errno.h>
#include <fcntl.h>
#include <json-glib/json-glib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "json-member.h"

#include "banger-error.h"
#include "guest-agent.h"
#include "blob-cache.h"
#include "ext4-writer.h"
#include "oci-layers.h"
#include "oci-reference.h"
#include "oci-registry.h"

#define MT_OCI_INDEX    "application/vnd.oci.image.index.v1+json"
#define MT_DOCKER_LIST  "application/vnd.docker.distribution.manifest.list.v2+json"
#define MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define MT_DOCKER_MANIF "application/vnd.docker.distribution.manifest.v2+json"
#define DOWNLOAD_SHARE  0.7
/* An image config is a few KiB; the manifest's own cap (oci-registry.c). */
#define MAX_CONFIG_BYTES (4 * 1024 * 1024)

void
banger_oci_pull_result_free (BangerOciPullResult *result)
{
  if (result == NULL)
    return;
  g_free (result->reference);
  g_free (result->manifest_digest);
  g_free (result->rootfs_path);
  g_clear_pointer (&result->config, g_variant_unref);
  g_free (result->config_json);
  g_free (result);
}

char *
banger_oci_pull_canonical_reference (const char *reference, GError **error)
{
  g_autoptr (BangerOciReference) ref = banger_oci_reference_parse (reference, error);
  return ref ? banger_oci_reference_to_string (ref) : NULL;
}

typedef struct {
  char *digest;
  gint64 size;
  char *path; /* in the cache, once fetched */
} Blob;

static void
blob_free (Blob *b)
{
  g_free (b->digest);
  g_free (b->path);
  g_free (b);
}

typedef struct {
  BangerOciRegistry *registry;
  BangerBlobCache *cache;
  BangerOciPullProgressFunc progress;
  gpointer user_data;
  GPtrArray *layers;         /* Blob */
  GCancellable *cancellable; /* the caller's, chained to the one below */
  GCancellable *abort;       /* cancelled on the first failure */

  GMutex lock;
  guint next;
  guint64 done;
  guint64 total;
  GError *error;
} Pull;

static void
report (Pull *p, double fraction, const char *message)
{
  if (p->progress != NULL)
    p->progress (fraction, p->done, p->total, message, p->user_data);
}

static void
on_bytes (guint64 delta, gpointer user_data)
{
  Pull *p = user_data;

  /* Called per chunk (128 KiB); the job does the rate limiting. */
  g_mutex_lock (&p->lock);
  p->done += delta;
  report (p, p->total ? DOWNLOAD_SHARE * p->done / p->total : 0, "downloading layers");
  g_mutex_unlock (&p->lock);
}

static gpointer
download_thread (gpointer data)
{
  Pull *p = data;

  for (;;) {
    g_autoptr (GError) local = NULL;
    Blob *b;
    char *path;

    g_mutex_lock (&p->lock);
    if (p->next >= p->layers->len || p->error != NULL) {
      g_mutex_unlock (&p->lock);
      return NULL;
    }
    b = p->layers->pdata[p->next++];
    g_mutex_unlock (&p->lock);

    path = banger_blob_cache_ensure (p->cache, p->registry, b->digest, b->size, 0, on_bytes, p,
                                     p->abort, &local);
    g_mutex_lock (&p->lock);
    if (path == NULL) {
      if (p->error == NULL) {
        /* A caller's cancel shows as Cancelled; a sibling's failure wins. */
        p->error = g_steal_pointer (&local);
        g_cancellable_cancel (p->abort);
      }
    } else {
      b->path = path;
    }
    g_mutex_unlock (&p->lock);
  }
}

static void
forward_cancel (GCancellable *cancellable, gpointer user_data)
{
  (void)cancellable;
  g_cancellable_cancel (G_CANCELLABLE (user_data));
}

/* The whole of @path if it holds at most @max bytes (a cached blob is
 * verified against its digest, but the digest came from the registry). */
static GBytes *
read_capped (const char *path, gsize max, GError **error)
{
  g_autofree char *data = NULL;
  int fd = open (path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  struct stat st;
  gsize got = 0;

  if (fd < 0 || fstat (fd, &st) < 0) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "cannot read %s: %s", path,
                 g_strerror (errno));
    if (fd >= 0)
      close (fd);
    return NULL;
  }
  if (!S_ISREG (st.st_mode) || (guint64)st.st_size > max) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_REGISTRY,
                 "%s is larger than the %" G_GSIZE_FORMAT " bytes accepted", path, max);
    close (fd);
    return NULL;
  }
  data = g_malloc ((gsize)st.st_size + 1);
  while (got < (gsize)st.st_size) {
    ssize_t n = read (fd, data + got, (gsize)st.st_size - got);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    got += (gsize)n;
  }
  close (fd);
  return g_bytes_new_take (g_steal_pointer (&data), got);
}

static JsonObject *
parse_object (GBytes *bytes, const char *what, JsonParser *parser, GError **error)
{
  /* An empty body has no data pointer (json-glib asserts on that) and no
   * root node (fuzz-oci-manifest). */
  if (g_bytes_get_size (bytes) == 0
      || !json_parser_load_from_data (parser, g_bytes_get_data (bytes, NULL),
                                      g_bytes_get_size (bytes), NULL)
      || json_parser_get_root (parser) == NULL
      || !JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser))) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_REGISTRY, "%s is not a JSON object", what);
    return NULL;
  }
  return json_node_get_object (json_parser_get_root (parser));
}

static const char *
media_type_of (JsonObject *obj, const char *header)
{
  const char *mt = banger_json_member_string (obj, "mediaType", NULL);
  if (mt != NULL)
    return mt;
  if (json_object_has_member (obj, "manifests"))
    return MT_OCI_INDEX;
  return header;
}

/* The linux/amd64 entry of an image index or manifest list. */
static char *
pick_platform (JsonObject *index, const char *what, GError **error)
{
  JsonArray *manifests = json_object_has_member (index, "manifests")
                             ? json_object_get_array_member (index, "manifests")
                             : NULL;
  g_autoptr (GString) seen = g_string_new (NULL);

  for (guint i = 0; manifests != NULL && i < json_array_get_length (manifests); i++) {
    JsonNode *n = json_array_get_element (manifests, i);
    JsonObject *m, *platform;
    const char *os, *arch, *digest;
    if (!JSON_NODE_HOLDS_OBJECT (n))
      continue;
    m = json_node_get_object (n);
    if (!json_object_has_member (m, "platform")
        || !JSON_NODE_HOLDS_OBJECT (json_object_get_member (m, "platform")))
      continue;
    platform = json_object_get_object_member (m, "platform");
    os = banger_json_member_string (platform, "os", "");
    arch = banger_json_member_string (platform, "architecture", "");
    digest = banger_json_member_string (m, "digest", NULL);
    g_string_append_printf (seen, "%s%s/%s", seen->len ? ", " : "", os, arch);
    if (g_str_equal (os, "linux") && g_str_equal (arch, "amd64")
        && banger_oci_digest_is_valid (digest))
      return g_strdup (digest);
  }
  g_set_error (error, BANGER_ERROR, BANGER_ERROR_UNSUPPORTED,
               "%s has no linux/amd64 image (it has: %s)", what, seen->len ? seen->str : "none");
  return NULL;
}

static gboolean
read_descriptor (JsonObject *desc, const char *what, Blob *out, GError **error)
{
  const char *digest = banger_json_member_string (desc, "digest", NULL);
  JsonNode *size_node = json_object_get_member (desc, "size");
  gint64 size = banger_json_member_int (desc, "size", -1);

  if (!banger_oci_digest_is_valid (digest)) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_UNSUPPORTED,
                 "%s has digest “%s”: banger only knows sha256", what, digest ? digest : "");
    return FALSE;
  }
  /* A size that is there must be a count of bytes; one that is missing
   * leaves the download capped (blob-cache.h), never unbounded. */
  if (size_node != NULL && size < 0) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_REGISTRY,
                 "%s has a size that is not a number of bytes", what);
    return FALSE;
  }
  out->digest = g_strdup (digest);
  out->size = size;
  return TRUE;
}

static gboolean
layer_type_known (const char *mt)
{
  static const char *const known[] = {
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.diff.tar",
    NULL,
  };
  return mt == NULL || g_strv_contains (known, mt);
}

static void
add_strv (GVariantBuilder *b, JsonObject *cfg, const char *member, const char *key)
{
  g_autoptr (GPtrArray) v = g_ptr_array_new ();
  if (cfg != NULL && json_object_has_member (cfg, member)
      && JSON_NODE_HOLDS_ARRAY (json_object_get_member (cfg, member))) {
    JsonArray *arr = json_object_get_array_member (cfg, member);
    for (guint i = 0; i < json_array_get_length (arr); i++) {
      JsonNode *n = json_array_get_element (arr, i);
      if (JSON_NODE_HOLDS_VALUE (n) && json_node_get_value_type (n) == G_TYPE_STRING)
        g_ptr_array_add (v, (gpointer)json_node_get_string (n));
    }
  }
  g_variant_builder_add (b, "{sv}", key,
                         g_variant_new_strv ((const char *const *)v->pdata, v->len));
}

/* The image's run configuration, as boot-assets.h describes it. */
static GVariant *
image_config (JsonObject *config_root)
{
  GVariantBuilder b;
  JsonObject *cfg = NULL;

  if (json_object_has_member (config_root, "config")
      && JSON_NODE_HOLDS_OBJECT (json_object_get_member (config_root, "config")))
    cfg = json_object_get_object_member (config_root, "config");
  g_variant_builder_init (&b, G_VARIANT_TYPE_VARDICT);
  add_strv (&b, cfg, "Entrypoint", "entrypoint");
  add_strv (&b, cfg, "Cmd", "cmd");
  add_strv (&b, cfg, "Env", "env");
  g_variant_builder_add (&b, "{sv}", "workdir",
                         g_variant_new_string (cfg ? banger_json_member_string (cfg, "WorkingDir", "") : ""));
  g_variant_builder_add (&b, "{sv}", "user",
                         g_variant_new_string (cfg ? banger_json_member_string (cfg, "User", "") : ""));
  return g_variant_ref_sink (g_variant_builder_end (&b));
}

static char *
config_to_json (GVariant *config)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  g_autoptr (JsonGenerator) gen = json_generator_new ();
  g_autoptr (JsonNode) root = NULL;
  static const char *const arrays[] = { "entrypoint", "cmd", "env", NULL };
  static const char *const strings[] = { "workdir", "user", NULL };

  json_builder_begin_object (b);
  for (guint i = 0; arrays[i] != NULL; i++) {
    g_autofree const char **v = NULL;
    json_builder_set_member_name (b, arrays[i]);
    json_builder_begin_array (b);
    if (g_variant_lookup (config, arrays[i], "^a&s", &v))
      for (guint j = 0; v[j] != NULL; j++)
        json_builder_add_string_value (b, v[j]);
    json_builder_end_array (b);
  }
  for (guint i = 0; strings[i] != NULL; i++) {
    const char *s = "";
    g_variant_lookup (config, strings[i], "&s", &s);
    json_builder_set_member_name (b, strings[i]);
    json_builder_add_string_value (b, s);
  }
  json_builder_end_object (b);
  root = json_builder_get_root (b);
  json_generator_set_root (gen, root);
  return json_generator_to_data (gen, NULL);
}

static char *
build_rootfs (Pull *p, const BangerOciPullOptions *opts, GCancellable *cancellable,
              guint64 *size_out, GError **error)
{
  g_autoptr (GPtrArray) scanned
      = g_ptr_array_new_with_free_func ((GDestroyNotify)banger_oci_layer_free);
  g_autoptr (BangerExt4Writer) writer = NULL;
  g_autofree char *dest = NULL;
  g_autofree char *id = g_uuid_string_random ();
  guint64 data = 0, entries = 0, size, inodes;
  guint n = p->layers->len;

  for (guint i = 0; i < n; i++) {
    Blob *b = p->layers->pdata[i];
    BangerOciLayer *layer;
    report (p, DOWNLOAD_SHARE + 0.1 * i / MAX (n, 1), "checking layers");
    layer = banger_oci_layer_scan (b->path, b->digest, cancellable, error);
    if (layer == NULL)
      return NULL;
    data += banger_oci_layer_get_data_bytes (layer);
    entries += banger_oci_layer_get_entries (layer);
    g_ptr_array_add (scanned, layer);
  }
  if (data > BANGER_OCI_MAX_IMAGE_BYTES) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
                 "the image's layers hold more than %llu GiB", BANGER_OCI_MAX_IMAGE_BYTES >> 30);
    return NULL;
  }
  if (!banger_oci_rootfs_size (data, entries, opts->size_mib, &size, &inodes, error))
    return NULL;
  dest = g_strdup_printf ("%s/oci-%s.ext4", opts->work_dir, id);
  writer = banger_ext4_writer_new (dest, size, inodes, error);
  if (writer == NULL)
    return NULL;
  for (guint i = 0; i < n; i++) {
    report (p, DOWNLOAD_SHARE + 0.1 + 0.19 * i / MAX (n, 1), "writing the root file system");
    if (!banger_oci_layer_apply (scanned->pdata[i], writer, cancellable, error))
      return NULL;
  }
  if (opts->agent_path != NULL && !banger_guest_agent_write (writer, opts->agent_path, cancellable, error))
    return NULL;
  if (g_cancellable_is_cancelled (cancellable)) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_CANCELLED, "pull cancelled");
    return NULL;
  }
  if (!banger_ext4_writer_finish (writer, error))
    return NULL;
  *size_out = size;
  return g_steal_pointer (&dest);
}

BangerOciPullResult *
banger_oci_pull (const char *reference, const BangerOciPullOptions *opts,
                 BangerOciPullProgressFunc progress, gpointer user_data, GCancellable *cancellable,
                 GError **error)
{
  g_autoptr (BangerOciReference) ref = NULL;
  g_autoptr (BangerOciRegistry) registry = NULL;
  g_autoptr (BangerBlobCache) cache = NULL;
  g_autoptr (BangerOciPullResult) result = g_new0 (BangerOciPullResult, 1);
  g_autoptr (GBytes) manifest = NULL;
  g_autoptr (JsonParser) mparser = json_parser_new ();
  g_autoptr (JsonParser) cparser = json_parser_new ();
  g_autoptr (GPtrArray) layers = g_ptr_array_new_with_free_func ((GDestroyNotify)blob_free);
  g_autoptr (GCancellable) abort_ = g_cancellable_new ();
  g_autofree char *media_type = NULL;
  g_autofree char *digest = NULL;
  g_autofree char *config_path = NULL;
  g_autoptr (GBytes) config_bytes = NULL;
  g_autoptr (GPtrArray) threads = g_ptr_array_new ();
  Blob config = { 0 };
  JsonObject *m, *c;
  JsonArray *larr;
  const char *mt;
  gulong cancel_id = 0;
  Pull p = { 0 };
  guint parallel = opts->parallel ? opts->parallel : 4;

  g_return_val_if_fail (opts->work_dir != NULL, NULL);

  ref = banger_oci_reference_parse (reference, error);
  if (ref == NULL)
    return NULL;
  result->reference = banger_oci_reference_to_string (ref);
  registry = banger_oci_registry_new (ref, opts->insecure, opts->config, error);
  if (registry == NULL)
    return NULL;
  cache = banger_blob_cache_new (opts->cache_dir, error);
  if (cache == NULL)
    return NULL;
  p.registry = registry;
  p.cache = cache;
  p.progress = progress;
  p.user_data = user_data;
  p.layers = layers;
  p.abort = abort_;
  g_mutex_init (&p.lock);
  report (&p, 0, "resolving");

  manifest = banger_oci_registry_get_manifest (registry, banger_oci_reference_manifest_ref (ref),
                                               &media_type, &digest, cancellable, error);
  if (manifest == NULL)
    goto fail;
  m = parse_object (manifest, "the manifest", mparser, error);
  if (m == NULL)
    goto fail;
  mt = media_type_of (m, media_type);
  if (g_strcmp0 (mt, MT_OCI_INDEX) == 0 || g_strcmp0 (mt, MT_DOCKER_LIST) == 0) {
    g_autofree char *chosen = pick_platform (m, result->reference, error);
    g_clear_pointer (&manifest, g_bytes_unref);
    g_clear_pointer (&media_type, g_free);
    g_clear_pointer (&digest, g_free);
    if (chosen == NULL)
      goto fail;
    report (&p, 0, "resolving linux/amd64");
    manifest = banger_oci_registry_get_manifest (registry, chosen, &media_type, &digest,
                                                 cancellable, error);
    if (manifest == NULL)
      goto fail;
    g_object_unref (mparser);
    mparser = json_parser_new ();
    m = parse_object (manifest, "the manifest", mparser, error);
    if (m == NULL)
      goto fail;
    mt = media_type_of (m, media_type);
  }
  if (g_strcmp0 (mt, MT_OCI_MANIFEST) != 0 && g_strcmp0 (mt, MT_DOCKER_MANIF) != 0) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_UNSUPPORTED,
                 "%s has a manifest of type %s; banger reads OCI and Docker schema 2 images",
                 result->reference, mt ? mt : "(none)");
    goto fail;
  }
  if (!json_object_has_member (m, "config")
      || !JSON_NODE_HOLDS_OBJECT (json_object_get_member (m, "config"))
      || !json_object_has_member (m, "layers")
      || !JSON_NODE_HOLDS_ARRAY (json_object_get_member (m, "layers"))) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_REGISTRY,
                 "the manifest of %s has no config or no layers", result->reference);
    goto fail;
  }
  if (!read_descriptor (json_object_get_object_member (m, "config"), "the image config", &config,
                        error))
    goto fail;
  larr = json_object_get_array_member (m, "layers");
  for (guint i = 0; i < json_array_get_length (larr); i++) {
    JsonNode *n = json_array_get_element (larr, i);
    Blob *b = g_new0 (Blob, 1);
    g_autofree char *what = g_strdup_printf ("layer %u", i + 1);
    const char *lmt;
    g_ptr_array_add (layers, b);
    if (!JSON_NODE_HOLDS_OBJECT (n) || !read_descriptor (json_node_get_object (n), what, b, error))
      goto fail;
    lmt = banger_json_member_string (json_node_get_object (n), "mediaType", NULL);
    if (!layer_type_known (lmt)) {
      g_set_error (error, BANGER_ERROR, BANGER_ERROR_UNSUPPORTED,
                   "layer %s of %s has media type %s, which is not a tar layer", b->digest,
                   result->reference, lmt);
      goto fail;
    }
    if (b->size > 0)
      p.total += b->size;
  }
  result->layer_bytes = p.total;
  if (!banger_blob_cache_put_bytes (cache, digest, manifest, error))
    goto fail;

  /* The config is parsed in memory: it is read with the manifest's cap. */
  if (config.size > MAX_CONFIG_BYTES) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_REGISTRY,
                 "the image config of %s claims %" G_GINT64_FORMAT " bytes (at most %d accepted)",
                 result->reference, config.size, MAX_CONFIG_BYTES);
    goto fail;
  }
  config_path = banger_blob_cache_ensure (cache, registry, config.digest, config.size,
                                          MAX_CONFIG_BYTES, NULL, NULL, cancellable, error);
  if (config_path == NULL)
    goto fail;
  config_bytes = read_capped (config_path, MAX_CONFIG_BYTES, error);
  if (config_bytes == NULL)
    goto fail;
  c = parse_object (config_bytes, "the image config", cparser, error);
  if (c == NULL)
    goto fail;
  if (g_strcmp0 (banger_json_member_string (c, "architecture", "amd64"), "amd64") != 0) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_UNSUPPORTED, "%s is an image for %s, not amd64",
                 result->reference, banger_json_member_string (c, "architecture", ""));
    goto fail;
  }
  result->config = image_config (c);
  result->config_json = config_to_json (result->config);

  /* Layers in parallel; the first failure (or the caller's cancel)
   * cancels the rest. */
  if (cancellable != NULL)
    cancel_id = g_cancellable_connect (cancellable, G_CALLBACK (forward_cancel),
                                       g_object_ref (abort_), g_object_unref);
  report (&p, 0, "downloading layers");
  for (guint i = 0; i < MIN (parallel, layers->len); i++)
    g_ptr_array_add (threads, g_thread_new ("oci-layer", download_thread, &p));
  for (guint i = 0; i < threads->len; i++)
    g_thread_join (threads->pdata[i]);
  if (cancellable != NULL)
    g_cancellable_disconnect (cancellable, cancel_id);
  if (p.error != NULL) {
    if (g_cancellable_is_cancelled (cancellable)) {
      g_clear_error (&p.error);
      g_set_error (&p.error, BANGER_ERROR, BANGER_ERROR_CANCELLED, "pull cancelled");
    }
    g_propagate_error (error, g_steal_pointer (&p.error));
    goto fail;
  }

  result->rootfs_path = build_rootfs (&p, opts, cancellable, &result->rootfs_bytes, error);
  if (result->rootfs_path == NULL)
    goto fail;
  result->manifest_digest = g_steal_pointer (&digest);
  report (&p, 1.0, "done");
  g_free (config.digest);
  g_mutex_clear (&p.lock);
  return g_steal_pointer (&result);

fail:
  g_free (config.digest);
  g_mutex_clear (&p.lock);
  return NULL;
}
