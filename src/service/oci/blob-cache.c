#include "blob-cache.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "banger-error.h"
#include "paths.h"

#define RESUME_ATTEMPTS 3

struct _BangerBlobCache {
  char *dir;     /* <dir> */
  char *sha_dir; /* <dir>/sha256 */
};

/* Blobs being fetched by a thread of this process, by final path: shared
 * by every cache object so two engines on one directory coalesce too. */
static GMutex inflight_lock;
static GCond inflight_cond;
static GHashTable *inflight;

void
banger_blob_info_free (BangerBlobInfo *info)
{
  if (info == NULL)
    return;
  g_free (info->digest);
  g_free (info);
}

BangerBlobCache *
banger_blob_cache_new (const char *dir, GError **error)
{
  g_autoptr (BangerBlobCache) self = g_new0 (BangerBlobCache, 1);

  if (dir != NULL) {
    self->dir = g_strdup (dir);
  } else {
    g_autofree char *cache = banger_cache_dir ();
    self->dir = g_build_filename (cache, "blobs", NULL);
  }
  self->sha_dir = g_build_filename (self->dir, "sha256", NULL);
  if (!banger_ensure_dir (self->sha_dir, error))
    return NULL;
  return g_steal_pointer (&self);
}

void
banger_blob_cache_free (BangerBlobCache *self)
{
  if (self == NULL)
    return;
  g_free (self->dir);
  g_free (self->sha_dir);
  g_free (self);
}

const char *
banger_blob_cache_get_dir (BangerBlobCache *self)
{
  return self->dir;
}

char *
banger_blob_cache_path (BangerBlobCache *self, const char *digest, GError **error)
{
  if (!banger_oci_digest_is_valid (digest)) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT, "“%s” is not a sha256 digest",
                 digest ? digest : "");
    return NULL;
  }
  return g_build_filename (self->sha_dir, digest + 7, NULL);
}

static void
touch (const char *path)
{
  /* mtime is "last used": ListCache shows it and prune policies can use it. */
  if (utimensat (AT_FDCWD, path, NULL, 0) < 0)
    g_debug ("cannot touch %s: %s", path, g_strerror (errno));
}

typedef struct {
  int fd;
  GChecksum *sum;
  guint64 written;
  gint64 expected;
  guint64 limit; /* expected, or the cap when the size is unknown */
  const char *digest;
  BangerBlobProgressFunc progress;
  gpointer progress_data;
} Download;

static gboolean
write_all (int fd, const guint8 *data, gsize len, GError **error)
{
  while (len > 0) {
    ssize_t n = write (fd, data, len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "writing to the blob cache: %s",
                   g_strerror (errno));
      return FALSE;
    }
    data += n;
    len -= n;
  }
  return TRUE;
}

static gboolean
download_sink (const guint8 *data, gsize len, gpointer user_data, GError **error)
{
  Download *d = user_data;

  if (data == NULL) {
    /* The registry ignored our Range: start over. */
    if (ftruncate (d->fd, 0) < 0 || lseek (d->fd, 0, SEEK_SET) < 0) {
      g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "truncating a partial blob: %s",
                   g_strerror (errno));
      return FALSE;
    }
    g_checksum_reset (d->sum);
    d->written = 0;
    return TRUE;
  }
  if (d->written + len > d->limit) {
    if (d->expected >= 0)
      g_set_error (error, BANGER_ERROR, BANGER_ERROR_VERIFICATION,
                   "blob %s is larger than the %" G_GINT64_FORMAT " bytes its manifest gives",
                   d->digest, d->expected);
    else
      g_set_error (error, BANGER_ERROR, BANGER_ERROR_VERIFICATION,
                   "blob %s has no size in its manifest and is larger than the %" G_GUINT64_FORMAT
                   " bytes banger accepts for such a blob",
                   d->digest, d->limit);
    return FALSE;
  }
  if (!write_all (d->fd, data, len, error))
    return FALSE;
  g_checksum_update (d->sum, data, len);
  d->written += len;
  if (d->progress != NULL)
    d->progress (len, d->progress_data);
  return TRUE;
}

/* Hashes the bytes a previous, interrupted download left in @fd. */
static gboolean
rehash_partial (Download *d, GError **error)
{
  g_autofree guint8 *buf = g_malloc (128 * 1024);
  struct stat st;

  if (fstat (d->fd, &st) < 0) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "stat of a partial blob: %s",
                 g_strerror (errno));
    return FALSE;
  }
  if ((guint64)st.st_size > d->limit) {
    if (ftruncate (d->fd, 0) < 0)
      return FALSE;
    st.st_size = 0;
  }
  if (lseek (d->fd, 0, SEEK_SET) < 0)
    return FALSE;
  while (d->written < (guint64)st.st_size) {
    ssize_t n = read (d->fd, buf, MIN (128 * 1024, (guint64)st.st_size - d->written));
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "reading a partial blob: %s",
                   n < 0 ? g_strerror (errno) : "short read");
      return FALSE;
    }
    g_checksum_update (d->sum, buf, n);
    d->written += n;
  }
  if (d->written > 0) {
    g_debug ("resuming %s at byte %" G_GUINT64_FORMAT, d->digest, d->written);
    if (d->progress != NULL)
      d->progress (d->written, d->progress_data);
  }
  return TRUE;
}

/* Takes the .partial's lock, waiting (cancellably) while another process
 * holds it. */
static gboolean
lock_partial (int fd, const char *path, GCancellable *cancellable, GError **error)
{
  for (;;) {
    if (flock (fd, LOCK_EX | LOCK_NB) == 0)
      return TRUE;
    if (errno != EWOULDBLOCK && errno != EINTR) {
      g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "cannot lock %s: %s", path,
                   g_strerror (errno));
      return FALSE;
    }
    if (g_cancellable_is_cancelled (cancellable)) {
      g_set_error (error, BANGER_ERROR, BANGER_ERROR_CANCELLED, "pull cancelled");
      return FALSE;
    }
    g_usleep (50000);
  }
}

static gboolean
fetch_locked (BangerBlobCache *self, BangerOciRegistry *registry, const char *digest,
              const char *final, gint64 expected_size, guint64 limit,
              BangerBlobProgressFunc progress, gpointer progress_data, GCancellable *cancellable,
              GError **error)
{
  g_autofree char *partial = g_strconcat (final, ".partial", NULL);
  g_autoptr (GChecksum) sum = g_checksum_new (G_CHECKSUM_SHA256);
  g_autofree char *got = NULL;
  Download d = { -1, sum, 0, expected_size, limit, digest, progress, progress_data };
  gboolean ok = FALSE;

  (void)self;
  d.fd = open (partial, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (d.fd < 0) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "cannot open %s: %s", partial,
                 g_strerror (errno));
    return FALSE;
  }
  if (!lock_partial (d.fd, partial, cancellable, error))
    goto out;
  /* Another process may have finished it while we waited for the lock. */
  if (g_file_test (final, G_FILE_TEST_EXISTS)) {
    ok = TRUE;
    goto out;
  }
  if (!rehash_partial (&d, error))
    goto out;

  for (guint attempt = 0;; attempt++) {
    g_autoptr (GError) local = NULL;

    if (expected_size >= 0 && d.written == (guint64)expected_size)
      break; /* all there already: only the rename was missed */
    if (banger_oci_registry_fetch_blob (registry, digest, d.written, download_sink, &d, cancellable,
                                        &local))
      break;
    if (!g_error_matches (local, BANGER_ERROR, BANGER_ERROR_NETWORK)
        || attempt + 1 >= RESUME_ATTEMPTS) {
      g_propagate_error (error, g_steal_pointer (&local));
      goto out;
    }
    g_debug ("%s: %s; resuming at %" G_GUINT64_FORMAT, digest, local->message, d.written);
  }

  got = g_strconcat ("sha256:", g_checksum_get_string (sum), NULL);
  if (!g_str_equal (got, digest) || (expected_size >= 0 && d.written != (guint64)expected_size)) {
    g_unlink (partial);
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_VERIFICATION,
                 "blob %s does not match its digest: the %" G_GUINT64_FORMAT
                 " bytes received hash to %s",
                 digest, d.written, got);
    goto out;
  }
  if (fdatasync (d.fd) < 0 || g_rename (partial, final) < 0) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "cannot store blob %s: %s", digest,
                 g_strerror (errno));
    goto out;
  }
  ok = TRUE;
out:
  close (d.fd); /* drops the flock */
  return ok;
}

char *
banger_blob_cache_ensure (BangerBlobCache *self, BangerOciRegistry *registry, const char *digest,
                          gint64 expected_size, guint64 max_unsized,
                          BangerBlobProgressFunc progress, gpointer progress_data,
                          GCancellable *cancellable, GError **error)
{
  g_autofree char *final = banger_blob_cache_path (self, digest, error);
  guint64 limit;
  gboolean ok;

  if (final == NULL)
    return NULL;
  if (expected_size > (gint64)BANGER_BLOB_MAX_BYTES) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_REGISTRY,
                 "blob %s claims %" G_GINT64_FORMAT " bytes, more than the %llu GiB banger "
                 "accepts for one blob",
                 digest, expected_size, BANGER_BLOB_MAX_BYTES >> 30);
    return NULL;
  }
  limit = expected_size >= 0 ? (guint64)expected_size
                             : (max_unsized > 0 ? max_unsized : BANGER_BLOB_MAX_UNSIZED);

  g_mutex_lock (&inflight_lock);
  if (inflight == NULL)
    inflight = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  while (g_hash_table_contains (inflight, final)) {
    gint64 until = g_get_monotonic_time () + 100 * G_TIME_SPAN_MILLISECOND;
    g_cond_wait_until (&inflight_cond, &inflight_lock, until);
    if (g_cancellable_is_cancelled (cancellable)) {
      g_mutex_unlock (&inflight_lock);
      g_set_error (error, BANGER_ERROR, BANGER_ERROR_CANCELLED, "pull cancelled");
      return NULL;
    }
  }
  if (g_file_test (final, G_FILE_TEST_EXISTS)) {
    g_mutex_unlock (&inflight_lock);
    touch (final);
    if (progress != NULL && expected_size > 0)
      progress (expected_size, progress_data);
    return g_steal_pointer (&final);
  }
  g_hash_table_add (inflight, g_strdup (final));
  g_mutex_unlock (&inflight_lock);

  ok = fetch_locked (self, registry, digest, final, expected_size, limit, progress, progress_data,
                     cancellable, error);

  g_mutex_lock (&inflight_lock);
  g_hash_table_remove (inflight, final);
  g_cond_broadcast (&inflight_cond);
  g_mutex_unlock (&inflight_lock);
  if (!ok)
    return NULL;
  touch (final);
  return g_steal_pointer (&final);
}

gboolean
banger_blob_cache_put_bytes (BangerBlobCache *self, const char *digest, GBytes *bytes,
                             GError **error)
{
  g_autofree char *final = banger_blob_cache_path (self, digest, error);
  g_autofree char *partial = NULL;
  gboolean ok;
  gsize len;
  const char *data;
  int fd;

  if (final == NULL)
    return FALSE;
  data = g_bytes_get_data (bytes, &len);
  /* Through <blob>.partial under its lock, as downloads are, then renamed
   * (atomic): a bangerd killed half-way leaves a .partial that PruneCache
   * knows and removes, not g_file_set_contents' randomly named temporary
   * file that nothing would ever clean (the crash test found one). */
  partial = g_strconcat (final, ".partial", NULL);
  fd = open (partial, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "cannot open %s: %s", partial,
                 g_strerror (errno));
    return FALSE;
  }
  if (!lock_partial (fd, partial, NULL, error)) {
    close (fd);
    return FALSE;
  }
  /* Another writer may have finished it while we waited for the lock. */
  if (g_file_test (final, G_FILE_TEST_EXISTS)) {
    close (fd);
    return TRUE;
  }
  ok = ftruncate (fd, 0) == 0;
  for (gsize off = 0; ok && off < len;) {
    ssize_t n = write (fd, data + off, len - off);
    if (n < 0 && errno == EINTR)
      continue;
    ok = n > 0;
    off += ok ? (gsize)n : 0;
  }
  if (!ok || fdatasync (fd) < 0 || g_rename (partial, final) < 0) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "cannot store blob %s: %s", digest,
                 g_strerror (errno));
    g_unlink (partial);
    close (fd);
    return FALSE;
  }
  close (fd); /* drops the flock */
  return TRUE;
}

static gboolean
is_hex_name (const char *name)
{
  if (strlen (name) != 64)
    return FALSE;
  for (const char *p = name; *p; p++)
    if (!g_ascii_isdigit (*p) && !(*p >= 'a' && *p <= 'f'))
      return FALSE;
  return TRUE;
}

static gint
info_cmp (gconstpointer a, gconstpointer b)
{
  const BangerBlobInfo *x = *(BangerBlobInfo *const *)a;
  const BangerBlobInfo *y = *(BangerBlobInfo *const *)b;
  return strcmp (x->digest, y->digest);
}

GPtrArray *
banger_blob_cache_list (BangerBlobCache *self, GError **error)
{
  g_autoptr (GPtrArray) list
      = g_ptr_array_new_with_free_func ((GDestroyNotify)banger_blob_info_free);
  g_autoptr (GDir) dir = g_dir_open (self->sha_dir, 0, error);
  const char *name;

  if (dir == NULL) {
    banger_error_convert (error);
    return NULL;
  }
  while ((name = g_dir_read_name (dir)) != NULL) {
    g_autofree char *path = NULL;
    struct stat st;
    BangerBlobInfo *info;

    if (!is_hex_name (name))
      continue;
    path = g_build_filename (self->sha_dir, name, NULL);
    if (stat (path, &st) < 0)
      continue;
    info = g_new0 (BangerBlobInfo, 1);
    info->digest = g_strconcat ("sha256:", name, NULL);
    info->size = st.st_size;
    info->last_used = st.st_mtim.tv_sec;
    g_ptr_array_add (list, info);
  }
  g_ptr_array_sort (list, info_cmp);
  return g_steal_pointer (&list);
}

static void
keep_digest (GHashTable *keep, JsonObject *desc)
{
  const char *d = json_object_get_string_member_with_default (desc, "digest", NULL);
  if (d != NULL && banger_oci_digest_is_valid (d))
    g_hash_table_add (keep, g_strdup (d + 7));
}

/* Adds @digest and, if it is a cached manifest or index, what it names. */
static void
keep_manifest (BangerBlobCache *self, GHashTable *keep, const char *digest, guint depth)
{
  g_autofree char *path = banger_blob_cache_path (self, digest, NULL);
  g_autoptr (JsonParser) parser = json_parser_new ();
  JsonObject *root;

  if (path == NULL || depth > 2)
    return;
  g_hash_table_add (keep, g_strdup (digest + 7));
  if (!json_parser_load_from_file (parser, path, NULL)
      || !JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)))
    return;
  root = json_node_get_object (json_parser_get_root (parser));
  if (json_object_has_member (root, "config")
      && JSON_NODE_HOLDS_OBJECT (json_object_get_member (root, "config")))
    keep_digest (keep, json_object_get_object_member (root, "config"));
  for (guint k = 0; k < 2; k++) {
    const char *member = k == 0 ? "layers" : "manifests";
    JsonArray *arr;
    if (!json_object_has_member (root, member)
        || !JSON_NODE_HOLDS_ARRAY (json_object_get_member (root, member)))
      continue;
    arr = json_object_get_array_member (root, member);
    for (guint i = 0; i < json_array_get_length (arr); i++) {
      JsonNode *n = json_array_get_element (arr, i);
      if (!JSON_NODE_HOLDS_OBJECT (n))
        continue;
      if (k == 0) {
        keep_digest (keep, json_node_get_object (n));
      } else {
        const char *d
            = json_object_get_string_member_with_default (json_node_get_object (n), "digest", NULL);
        if (d != NULL)
          keep_manifest (self, keep, d, depth + 1);
      }
    }
  }
}

gboolean
banger_blob_cache_prune (BangerBlobCache *self, const char *const *keep_manifests,
                         guint64 *freed_out, GError **error)
{
  g_autoptr (GHashTable) keep = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_autoptr (GDir) dir = g_dir_open (self->sha_dir, 0, error);
  const char *name;
  guint64 freed = 0;

  if (dir == NULL) {
    banger_error_convert (error);
    return FALSE;
  }
  for (guint i = 0; keep_manifests != NULL && keep_manifests[i] != NULL; i++)
    keep_manifest (self, keep, keep_manifests[i], 0);

  while ((name = g_dir_read_name (dir)) != NULL) {
    g_autofree char *path = g_build_filename (self->sha_dir, name, NULL);
    g_autofree char *hex = g_str_has_suffix (name, ".partial")
                               ? g_strndup (name, strlen (name) - strlen (".partial"))
                               : g_strdup (name);
    g_autofree char *final = g_build_filename (self->sha_dir, hex, NULL);
    struct stat st;
    gboolean busy;

    if (!is_hex_name (hex) || g_hash_table_contains (keep, hex) || stat (path, &st) < 0)
      continue;
    g_mutex_lock (&inflight_lock);
    busy = inflight != NULL && g_hash_table_contains (inflight, final);
    g_mutex_unlock (&inflight_lock);
    if (busy)
      continue;
    if (g_str_has_suffix (name, ".partial")) {
      /* Another process downloading it holds the lock: leave it. */
      int fd = open (path, O_RDONLY | O_CLOEXEC);
      if (fd < 0)
        continue;
      busy = flock (fd, LOCK_EX | LOCK_NB) < 0;
      if (!busy && g_unlink (path) == 0)
        freed += st.st_size;
      close (fd);
      continue;
    }
    if (g_unlink (path) == 0)
      freed += st.st_size;
  }
  if (freed_out != NULL)
    *freed_out = freed;
  return TRUE;
}
