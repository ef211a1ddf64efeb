#include "oci-layers.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>

#include "archive-api.h"
#include "banger-error.h"
#include "ext4-sizing.h"

#define BLOCK     4096ULL
#define WH_PREFIX ".wh."
#define WH_OPAQUE ".wh..wh..opq"

struct _BangerOciLayer {
  char *path;
  char *name;
  GPtrArray *opaque_dirs; /* cleaned paths */
  GPtrArray *whiteouts;   /* cleaned paths of what to remove */
  guint64 data_bytes;
  guint64 entries;
};

/* ---- a GInputStream over the current entry of a struct archive ---- */

#define BANGER_TYPE_ARCHIVE_STREAM (banger_archive_stream_get_type ())
G_DECLARE_FINAL_TYPE (BangerArchiveStream, banger_archive_stream, BANGER, ARCHIVE_STREAM,
                      GInputStream)

struct _BangerArchiveStream {
  GInputStream parent_instance;
  struct archive *archive;
};

G_DEFINE_TYPE (BangerArchiveStream, banger_archive_stream, G_TYPE_INPUT_STREAM)

static gssize
banger_archive_stream_read (GInputStream *stream, void *buffer, gsize count,
                            GCancellable *cancellable, GError **error)
{
  BangerArchiveStream *self = BANGER_ARCHIVE_STREAM (stream);
  la_ssize_t n;

  if (g_cancellable_set_error_if_cancelled (cancellable, error))
    return -1;
  n = archive_read_data (self->archive, buffer, count);
  if (n < 0) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT, "%s",
                 archive_error_string (self->archive) ?: "unreadable layer data");
    return -1;
  }
  return n;
}

static gboolean
banger_archive_stream_close (GInputStream *stream, GCancellable *cancellable, GError **error)
{
  (void)stream, (void)cancellable, (void)error;
  return TRUE;
}

static void
banger_archive_stream_class_init (BangerArchiveStreamClass *klass)
{
  GInputStreamClass *istream = G_INPUT_STREAM_CLASS (klass);
  istream->read_fn = banger_archive_stream_read;
  istream->close_fn = banger_archive_stream_close;
}

static void
banger_archive_stream_init (BangerArchiveStream *self)
{
  (void)self;
}

/* ---- paths ---- */

char *
banger_oci_layer_clean_path (const char *raw, GError **error)
{
  g_auto (GStrv) parts = NULL;
  GString *out;

  if (raw == NULL || *raw == '\0') {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT, "an entry has no name");
    return NULL;
  }
  if (raw[0] == '/') {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
                 "entry “%s” has an absolute path", raw);
    return NULL;
  }
  parts = g_strsplit (raw, "/", -1);
  out = g_string_new (NULL);
  for (guint i = 0; parts[i] != NULL; i++) {
    if (*parts[i] == '\0' || g_str_equal (parts[i], "."))
      continue;
    if (g_str_equal (parts[i], "..")) {
      g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
                   "entry “%s” escapes the image root with “..”", raw);
      g_string_free (out, TRUE);
      return NULL;
    }
    g_string_append_c (out, '/');
    g_string_append (out, parts[i]);
  }
  if (out->len == 0)
    g_string_append_c (out, '/');
  return g_string_free (out, FALSE);
}

/* A layer is read by two libarchive readers: the outer one only
 * decompresses (gzip, zstd or none; "raw" format), the inner one reads the
 * tar from it. In between, the end of the stream is padded with zeros to a
 * whole record plus an end-of-archive marker: some producers (umoci insert,
 * for one) end a layer right after the last file's data, which GNU tar and
 * libarchive would otherwise reject as truncated. */
typedef struct {
  struct archive *outer;
  struct archive *tar;
  guint64 total;
  gboolean eof;
  guint8 buf[256 * 1024];
} LayerReader;

static la_ssize_t
feed_read (struct archive *a, void *data, const void **out)
{
  LayerReader *r = data;
  la_ssize_t n;
  gsize pad;

  if (r->eof)
    return 0;
  n = archive_read_data (r->outer, r->buf, sizeof r->buf);
  if (n < 0) {
    archive_set_error (a, EIO, "%s", archive_error_string (r->outer) ?: "cannot decompress");
    return -1;
  }
  if (n > 0) {
    r->total += n;
    *out = r->buf;
    return n;
  }
  r->eof = TRUE;
  pad = (512 - r->total % 512) % 512 + 1024;
  memset (r->buf, 0, pad);
  *out = r->buf;
  return pad;
}

static void
layer_reader_free (LayerReader *r)
{
  if (r == NULL)
    return;
  if (r->tar != NULL)
    archive_read_free (r->tar);
  if (r->outer != NULL)
    archive_read_free (r->outer);
  g_free (r);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (LayerReader, layer_reader_free)

static LayerReader *
open_layer (const char *path, const char *name, GError **error)
{
  g_autoptr (LayerReader) r = g_new0 (LayerReader, 1);
  struct archive_entry *entry;

  r->outer = archive_read_new ();
  archive_read_support_filter_gzip (r->outer);
  archive_read_support_filter_zstd (r->outer);
  archive_read_support_filter_none (r->outer);
  archive_read_support_format_raw (r->outer);
  if (archive_read_open_filename (r->outer, path, 256 * 1024) != ARCHIVE_OK
      || archive_read_next_header (r->outer, &entry) != ARCHIVE_OK) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT, "layer %s: %s", name,
                 archive_error_string (r->outer) ?: "cannot open");
    return NULL;
  }
  r->tar = archive_read_new ();
  archive_read_support_format_tar (r->tar);
  if (archive_read_open (r->tar, r, NULL, feed_read, NULL) != ARCHIVE_OK) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT, "layer %s: %s", name,
                 archive_error_string (r->tar) ?: "not a tar archive");
    return NULL;
  }
  return g_steal_pointer (&r);
}

void
banger_oci_layer_free (BangerOciLayer *layer)
{
  if (layer == NULL)
    return;
  g_free (layer->path);
  g_free (layer->name);
  g_ptr_array_unref (layer->opaque_dirs);
  g_ptr_array_unref (layer->whiteouts);
  g_free (layer);
}

guint64
banger_oci_layer_get_data_bytes (BangerOciLayer *layer)
{
  return layer->data_bytes;
}

guint64
banger_oci_layer_get_entries (BangerOciLayer *layer)
{
  return layer->entries;
}

/* Splits "/a/b/.wh.c" into whether it is a whiteout and what it hides. */
typedef enum { ENTRY_PLAIN, ENTRY_WHITEOUT, ENTRY_OPAQUE, ENTRY_WH_META } EntryKind;

static EntryKind
classify (const char *clean, char **target_out)
{
  g_autofree char *base = g_path_get_basename (clean);
  g_autofree char *dir = g_path_get_dirname (clean);

  if (g_str_equal (base, WH_OPAQUE)) {
    *target_out = g_steal_pointer (&dir);
    return ENTRY_OPAQUE;
  }
  if (g_str_has_prefix (base, WH_PREFIX WH_PREFIX))
    return ENTRY_WH_META; /* aufs bookkeeping (.wh..wh.plnk, …): not content */
  if (g_str_has_prefix (base, WH_PREFIX)) {
    *target_out = g_build_filename (dir, base + strlen (WH_PREFIX), NULL);
    return ENTRY_WHITEOUT;
  }
  return ENTRY_PLAIN;
}

/* BANGER_OCI_MAX_ENTRIES, lowered by tests (16 M entries take minutes). */
static guint max_entries = BANGER_OCI_MAX_ENTRIES;

void
banger_oci_layer_set_max_entries (guint n)
{
  max_entries = n;
}

BangerOciLayer *
banger_oci_layer_scan (const char *path, const char *name, GCancellable *cancellable,
                       GError **error)
{
  g_autoptr (BangerOciLayer) layer = g_new0 (BangerOciLayer, 1);
  g_autoptr (LayerReader) reader = NULL;
  struct archive *a;
  struct archive_entry *entry;
  gboolean ok = FALSE;
  guint64 headers = 0; /* every entry, whiteouts and markers included */
  guint64 max_data;
  GStatBuf st;

  if (!banger_archive_load (error))
    return NULL;
  if (g_stat (path, &st) < 0) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "layer %s: cannot stat %s: %s", name,
                 path, g_strerror (errno));
    return NULL;
  }
  max_data = MIN (BANGER_OCI_MAX_IMAGE_BYTES,
                  MAX (BANGER_OCI_EXPANSION_FLOOR, (guint64)st.st_size * BANGER_OCI_MAX_EXPANSION));
  layer->path = g_strdup (path);
  layer->name = g_strdup (name);
  layer->opaque_dirs = g_ptr_array_new_with_free_func (g_free);
  layer->whiteouts = g_ptr_array_new_with_free_func (g_free);
  reader = open_layer (path, name, error);
  if (reader == NULL)
    return NULL;
  a = reader->tar;

  for (;;) {
    g_autoptr (GError) local = NULL;
    g_autofree char *clean = NULL;
    g_autofree char *target = NULL;
    const char *raw, *link;
    int r = archive_read_next_header (a, &entry);

    if (r == ARCHIVE_EOF)
      break;
    if (r < ARCHIVE_WARN) {
      g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT, "layer %s: %s", name,
                   archive_error_string (a) ?: "not a tar archive");
      goto out;
    }
    if (g_cancellable_set_error_if_cancelled (cancellable, error))
      goto out;
    /* Whiteouts are kept in memory until the layer is applied: they count
     * against the limit like any entry. */
    if (++headers > max_entries) {
      g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
                   "layer %s has more than %u entries", name, max_entries);
      goto out;
    }
    raw = archive_entry_pathname (entry);
    clean = banger_oci_layer_clean_path (raw, &local);
    if (clean == NULL) {
      g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT, "layer %s: %s", name,
                   local->message);
      goto out;
    }
    link = archive_entry_hardlink (entry);
    if (link != NULL) {
      g_autofree char *clean_link = banger_oci_layer_clean_path (link, &local);
      if (clean_link == NULL) {
        g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
                     "layer %s: hard link “%s” points outside the image: %s", name, raw,
                     local->message);
        goto out;
      }
    }
    if (archive_entry_size_is_set (entry)
        && (guint64)archive_entry_size (entry) > BANGER_OCI_MAX_ENTRY_BYTES) {
      g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
                   "layer %s: entry “%s” claims %" G_GINT64_FORMAT
                   " bytes, more than the %llu GiB banger accepts for one file",
                   name, raw, (gint64)archive_entry_size (entry), BANGER_OCI_MAX_ENTRY_BYTES >> 30);
      goto out;
    }
    /* A symlink entry may come without a target (libarchive gives NULL):
     * refused here, before anything is written (found by fuzz-oci-layer). */
    if (link == NULL && archive_entry_filetype (entry) == AE_IFLNK
        && (archive_entry_symlink (entry) == NULL || *archive_entry_symlink (entry) == '\0')) {
      g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
                   "layer %s: symlink “%s” has no target", name, raw);
      goto out;
    }
    switch (classify (clean, &target)) {
    case ENTRY_OPAQUE:
      g_ptr_array_add (layer->opaque_dirs, g_steal_pointer (&target));
      continue;
    case ENTRY_WHITEOUT:
      g_ptr_array_add (layer->whiteouts, g_steal_pointer (&target));
      continue;
    case ENTRY_WH_META:
      continue;
    case ENTRY_PLAIN:
    default:
      break;
    }
    layer->entries++;
    if (link == NULL && archive_entry_filetype (entry) == AE_IFREG)
      layer->data_bytes += ((guint64)archive_entry_size (entry) + BLOCK - 1) / BLOCK * BLOCK;
    else if (archive_entry_filetype (entry) == AE_IFDIR)
      layer->data_bytes += BLOCK;
    else if (archive_entry_filetype (entry) == AE_IFLNK)
      layer->data_bytes += BLOCK; /* a long target takes a block */
    if (layer->data_bytes > max_data) {
      if (max_data == BANGER_OCI_MAX_IMAGE_BYTES)
        g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
                     "layer %s holds more than %llu GiB", name, BANGER_OCI_MAX_IMAGE_BYTES >> 30);
      else
        g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
                     "layer %s expands to more than %" G_GUINT64_FORMAT
                     " bytes, %u times its own %" G_GUINT64_FORMAT
                     " bytes: refused as a decompression bomb",
                     name, max_data, BANGER_OCI_MAX_EXPANSION, (guint64)st.st_size);
      goto out;
    }
    /* Reading through the data (not seeking) checks the compressed stream
     * is whole before anything is written. */
    if (archive_read_data_skip (a) < ARCHIVE_WARN) {
      g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT, "layer %s: entry “%s”: %s",
                   name, raw, archive_error_string (a) ?: "truncated");
      goto out;
    }
  }
  ok = TRUE;
out:
  return ok ? g_steal_pointer (&layer) : NULL;
}

static gboolean
apply_whiteouts (BangerOciLayer *layer, BangerExt4Writer *writer, GError **error)
{
  for (guint i = 0; i < layer->opaque_dirs->len; i++) {
    const char *dir = layer->opaque_dirs->pdata[i];
    BangerExt4Stat st;
    /* Nothing below to hide when the lower layers never had it. */
    if (!banger_ext4_writer_lookup (writer, dir, &st, NULL) || !S_ISDIR (st.mode))
      continue;
    if (!banger_ext4_writer_make_opaque (writer, dir, error))
      return FALSE;
  }
  for (guint i = 0; i < layer->whiteouts->len; i++)
    if (!banger_ext4_writer_remove (writer, layer->whiteouts->pdata[i], error))
      return FALSE;
  return TRUE;
}

static gboolean
write_entry (BangerOciLayer *layer, struct archive *a, struct archive_entry *entry,
             const char *clean, BangerExt4Writer *writer, GCancellable *cancellable, GError **error)
{
  BangerExt4Attrs attrs = {
    .uid = archive_entry_uid (entry),
    .gid = archive_entry_gid (entry),
    .mode = archive_entry_perm (entry) & 07777,
    .mtime = archive_entry_mtime (entry),
  };
  const char *link = archive_entry_hardlink (entry);
  const char *xname;
  const void *xvalue;
  size_t xsize;
  gboolean ok;

  if (link != NULL) {
    g_autofree char *target = banger_oci_layer_clean_path (link, error);
    return target != NULL && banger_ext4_writer_hardlink (writer, clean, target, error);
  }
  switch (archive_entry_filetype (entry)) {
  case AE_IFDIR:
    if (g_str_equal (clean, "/"))
      return TRUE; /* the root keeps the writer's own attributes */
    ok = banger_ext4_writer_mkdir (writer, clean, &attrs, error);
    break;
  case AE_IFREG: {
    g_autoptr (BangerArchiveStream) stream = g_object_new (BANGER_TYPE_ARCHIVE_STREAM, NULL);
    stream->archive = a;
    ok = banger_ext4_writer_add_file_stream (writer, clean, &attrs, G_INPUT_STREAM (stream),
                                             archive_entry_size (entry), cancellable, error);
    break;
  }
  case AE_IFLNK:
    if (archive_entry_symlink (entry) == NULL) {
      g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT, "symlink “%s” has no target",
                   clean);
      ok = FALSE;
      break;
    }
    ok = banger_ext4_writer_symlink (writer, clean, &attrs, archive_entry_symlink (entry), error);
    break;
  case AE_IFCHR:
  case AE_IFBLK:
  case AE_IFIFO:
  case AE_IFSOCK:
    ok = banger_ext4_writer_mknod (writer, clean, &attrs, archive_entry_filetype (entry),
                                   archive_entry_rdev (entry), error);
    break;
  default:
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
                 "entry “%s” has an unknown type %o", clean, archive_entry_filetype (entry));
    return FALSE;
  }
  if (!ok)
    return FALSE;
  /* SCHILY.xattr.* PAX records (security.capability above all: ping,
   * newuidmap) arrive as the entry's xattrs. */
  archive_entry_xattr_reset (entry);
  while (archive_entry_xattr_next (entry, &xname, &xvalue, &xsize) == ARCHIVE_OK) {
    if (!banger_ext4_writer_set_xattr (writer, clean, xname, xvalue, xsize, error))
      return FALSE;
  }
  (void)layer;
  return TRUE;
}

gboolean
banger_oci_layer_apply (BangerOciLayer *layer, BangerExt4Writer *writer, GCancellable *cancellable,
                        GError **error)
{
  g_autoptr (LayerReader) reader = NULL;
  struct archive *a;
  struct archive_entry *entry;
  gboolean ok = FALSE;

  if (!banger_archive_load (error))
    return FALSE;
  if (!apply_whiteouts (layer, writer, error)) {
    g_prefix_error (error, "layer %s: ", layer->name);
    return FALSE;
  }
  reader = open_layer (layer->path, layer->name, error);
  if (reader == NULL)
    return FALSE;
  a = reader->tar;
  for (;;) {
    g_autofree char *clean = NULL;
    g_autofree char *target = NULL;
    int r = archive_read_next_header (a, &entry);

    if (r == ARCHIVE_EOF)
      break;
    if (r < ARCHIVE_WARN) {
      g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT, "layer %s: %s", layer->name,
                   archive_error_string (a) ?: "not a tar archive");
      goto out;
    }
    if (g_cancellable_is_cancelled (cancellable)) {
      g_set_error (error, BANGER_ERROR, BANGER_ERROR_CANCELLED, "pull cancelled");
      goto out;
    }
    clean = banger_oci_layer_clean_path (archive_entry_pathname (entry), error);
    if (clean == NULL)
      goto out;
    if (classify (clean, &target) != ENTRY_PLAIN)
      continue;
    if (!write_entry (layer, a, entry, clean, writer, cancellable, error)) {
      if (error != NULL && *error != NULL && (*error)->domain == G_IO_ERROR
          && (*error)->code == G_IO_ERROR_CANCELLED) {
        g_clear_error (error);
        g_set_error (error, BANGER_ERROR, BANGER_ERROR_CANCELLED, "pull cancelled");
      } else {
        g_prefix_error (error, "layer %s: entry “%s”: ", layer->name,
                        archive_entry_pathname (entry));
      }
      goto out;
    }
  }
  ok = TRUE;
out:
  return ok;
}

gboolean
banger_oci_rootfs_size (guint64 data_bytes, guint64 entries, guint size_mib, guint64 *size_out,
                        guint64 *inodes_out, GError **error)
{
  guint64 inodes = entries * 125 / 100 + 4096;
  guint64 size = banger_ext4_size_estimate (data_bytes * 125 / 100, inodes, 64ULL * 1024 * 1024);

  if (size_mib != 0) {
    guint64 wanted = (guint64)size_mib * 1024 * 1024;
    guint64 needed
        = data_bytes + entries * 256 + banger_ext4_journal_bytes (wanted) + 8 * 1024 * 1024;
    if (wanted < needed) {
      g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
                   "a %u MiB image cannot hold this content (it needs at least %" G_GUINT64_FORMAT
                   " MiB)",
                   size_mib, (needed + 1024 * 1024 - 1) / (1024 * 1024));
      return FALSE;
    }
    size = wanted;
  }
  if (inodes < size / 16384)
    inodes = size / 16384;
  *size_out = size;
  if (inodes_out != NULL)
    *inodes_out = inodes;
  return TRUE;
}
