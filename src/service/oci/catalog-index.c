#include "config.h"

#include "catalog-index.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <unistd.h>
#include <json-glib/json-glib.h>

#include "json-member.h"
#include <string.h>

#include "banger-error.h"
#include "http-session.h"
#include "oci-reference.h"
#include "oci-registry.h"
#include "paths.h"
#include "soup-api.h"

#define MAX_INDEX_BYTES (4 * 1024 * 1024)

void
banger_catalog_image_free (BangerCatalogImage *i)
{
  if (i == NULL)
    return;
  g_free (i->name);
  g_free (i->description);
  g_free (i->oci);
  g_free (i->rootfs_url);
  g_free (i->rootfs_sha256);
  g_free (i);
}

static void
kernel_free (BangerCatalogKernel *k)
{
  g_free (k->name);
  g_free (k->description);
  g_free (k->version);
  g_free (k->url);
  g_free (k->sha256);
  g_free (k);
}

void
banger_catalog_index_free (BangerCatalogIndex *index)
{
  if (index == NULL)
    return;
  g_ptr_array_unref (index->images);
  g_ptr_array_unref (index->kernels);
  g_free (index);
}

char *
banger_catalog_index_url (BangerConfig *config)
{
  char *url = config != NULL ? banger_config_dup_catalog_url (config) : NULL;

  return url != NULL ? url : g_strdup (BANGER_CATALOG_URL);
}

static gboolean
sha256_is_valid (const char *hex)
{
  if (hex == NULL || strlen (hex) != 64)
    return FALSE;
  for (const char *p = hex; *p; p++)
    if (!g_ascii_isdigit (*p) && !(*p >= 'a' && *p <= 'f'))
      return FALSE;
  return TRUE;
}

static gboolean
name_is_valid (const char *name)
{
  if (name == NULL || *name == '\0' || strlen (name) > 64 || !g_ascii_isalnum (name[0]))
    return FALSE;
  for (const char *p = name; *p; p++)
    if (!g_ascii_isalnum (*p) && *p != '-' && *p != '_' && *p != '.')
      return FALSE;
  return TRUE;
}

static char *
dup_member (JsonObject *o, const char *member)
{
  return g_strdup (banger_json_member_string (o, member, NULL));
}

BangerCatalogIndex *
banger_catalog_index_parse (GBytes *json, GError **error)
{
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (BangerCatalogIndex) index = g_new0 (BangerCatalogIndex, 1);
  g_autoptr (GError) local = NULL;
  JsonObject *root;
  gint64 version;

  index->images = g_ptr_array_new_with_free_func ((GDestroyNotify)banger_catalog_image_free);
  index->kernels = g_ptr_array_new_with_free_func ((GDestroyNotify)kernel_free);
  /* An empty body has no data pointer (json-glib asserts on that) and no
   * root node: it is refused like any other non-object (fuzz-catalog-index). */
  if (g_bytes_get_size (json) == 0
      || !json_parser_load_from_data (parser, g_bytes_get_data (json, NULL),
                                      g_bytes_get_size (json), &local)
      || json_parser_get_root (parser) == NULL
      || !JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser))) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
                 "the catalog is not a JSON object%s%s", local ? ": " : "",
                 local ? local->message : "");
    return NULL;
  }
  root = json_node_get_object (json_parser_get_root (parser));
  version = banger_json_member_int (root, "version", 0);
  if (version != 1) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_UNSUPPORTED,
                 "the catalog has version %" G_GINT64_FORMAT "; this banger reads version 1",
                 version);
    return NULL;
  }
  for (guint k = 0; k < 2; k++) {
    const char *member = k == 0 ? "images" : "kernels";
    JsonArray *arr;
    if (!json_object_has_member (root, member))
      continue;
    if (!JSON_NODE_HOLDS_ARRAY (json_object_get_member (root, member))) {
      g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
                   "catalog: “%s” is not an array", member);
      return NULL;
    }
    arr = json_object_get_array_member (root, member);
    for (guint i = 0; i < json_array_get_length (arr); i++) {
      JsonNode *n = json_array_get_element (arr, i);
      JsonObject *o;
      const char *name;
      if (!JSON_NODE_HOLDS_OBJECT (n)) {
        g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
                     "catalog: %s[%u] is not an object", member, i);
        return NULL;
      }
      o = json_node_get_object (n);
      name = banger_json_member_string (o, "name", NULL);
      if (!name_is_valid (name)) {
        g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
                     "catalog: %s[%u] has no valid name", member, i);
        return NULL;
      }
      if (k == 0) {
        BangerCatalogImage *img = g_new0 (BangerCatalogImage, 1);
        g_ptr_array_add (index->images, img);
        img->name = g_strdup (name);
        img->description = dup_member (o, "description");
        img->oci = dup_member (o, "oci");
        if (json_object_has_member (o, "rootfs")
            && JSON_NODE_HOLDS_OBJECT (json_object_get_member (o, "rootfs"))) {
          JsonObject *r = json_object_get_object_member (o, "rootfs");
          img->rootfs_url = dup_member (r, "url");
          img->rootfs_sha256 = dup_member (r, "sha256");
        }
        if ((img->oci == NULL) == (img->rootfs_url == NULL)) {
          g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
                       "catalog: image “%s” needs exactly one of “oci” and “rootfs”", name);
          return NULL;
        }
        if (img->oci != NULL) {
          g_autoptr (BangerOciReference) ref = banger_oci_reference_parse (img->oci, &local);
          if (ref == NULL) {
            g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
                         "catalog: image “%s”: %s", name, local->message);
            return NULL;
          }
        } else if (!sha256_is_valid (img->rootfs_sha256)) {
          g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
                       "catalog: image “%s” has no valid rootfs sha256", name);
          return NULL;
        }
      } else {
        BangerCatalogKernel *ker = g_new0 (BangerCatalogKernel, 1);
        g_ptr_array_add (index->kernels, ker);
        ker->name = g_strdup (name);
        ker->description = dup_member (o, "description");
        ker->version = dup_member (o, "version");
        ker->url = dup_member (o, "url");
        ker->sha256 = dup_member (o, "sha256");
        if (ker->url == NULL || ker->version == NULL || !sha256_is_valid (ker->sha256)) {
          g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
                       "catalog: kernel “%s” needs “url”, “version” and a sha256", name);
          return NULL;
        }
      }
    }
  }
  return g_steal_pointer (&index);
}

const BangerCatalogImage *
banger_catalog_index_find_image (const BangerCatalogIndex *index, const char *name)
{
  for (guint i = 0; i < index->images->len; i++) {
    BangerCatalogImage *img = index->images->pdata[i];
    if (g_str_equal (img->name, name))
      return img;
  }
  return NULL;
}

const BangerCatalogKernel *
banger_catalog_index_find_kernel (const BangerCatalogIndex *index, const char *name)
{
  for (guint i = 0; i < index->kernels->len; i++) {
    BangerCatalogKernel *k = index->kernels->pdata[i];
    if (g_str_equal (k->name, name))
      return k;
  }
  return NULL;
}

/* Opens @url for reading: file:// directly, http(s) through libsoup with
 * the registry client's rule for plain HTTP (loopback or configured). */
static GInputStream *
open_url (BangerConfig *config, const char *url, SoupSession *session, guint64 *length_out, GCancellable *cancellable,
          GError **error)
{
  g_autoptr (GUri) uri = g_uri_parse (url, G_URI_FLAGS_NONE, NULL);
  g_autoptr (SoupMessage) msg = NULL;
  g_autoptr (GInputStream) in = NULL;
  const char *scheme;
  guint status;

  *length_out = 0;
  if (uri == NULL) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT, "“%s” is not a URL", url);
    return NULL;
  }
  scheme = g_uri_get_scheme (uri);
  if (g_str_equal (scheme, "file")) {
    g_autoptr (GFile) f = g_file_new_for_uri (url);
    g_autoptr (GFileInfo) info
        = g_file_query_info (f, G_FILE_ATTRIBUTE_STANDARD_SIZE, 0, cancellable, NULL);
    GFileInputStream *fin = g_file_read (f, cancellable, error);
    if (fin == NULL) {
      banger_error_convert (error);
      return NULL;
    }
    if (info != NULL)
      *length_out = g_file_info_get_size (info);
    return G_INPUT_STREAM (fin);
  }
  if (!g_str_equal (scheme, "https")) {
    g_autofree char *hostport
        = g_uri_get_port (uri) > 0
              ? g_strdup_printf ("%s:%d", g_uri_get_host (uri), g_uri_get_port (uri))
              : g_strdup (g_uri_get_host (uri));
    if (!g_str_equal (scheme, "http") || !banger_oci_host_allows_http (config, hostport)) {
      g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
                   "refusing %s: only HTTPS (or HTTP to loopback or a host listed as insecure)",
                   url);
      return NULL;
    }
  }
  msg = soup_message_new_from_uri ("GET", uri);
  in = soup_session_send (session, msg, cancellable, error);
  if (in == NULL) {
    if (g_error_matches (*error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
      g_clear_error (error);
      g_set_error (error, BANGER_ERROR, BANGER_ERROR_CANCELLED, "download cancelled");
    } else {
      g_prefix_error (error, "cannot fetch %s: ", url);
      (*error)->domain = BANGER_ERROR;
      (*error)->code = BANGER_ERROR_NETWORK;
    }
    return NULL;
  }
  status = soup_message_get_status (msg);
  if (status != 200) {
    g_set_error (error, BANGER_ERROR, status == 404 ? BANGER_ERROR_NOT_FOUND : BANGER_ERROR_NETWORK,
                 "%s answered %u %s", url, status, soup_message_get_reason_phrase (msg));
    return NULL;
  }
  {
    goffset len = soup_message_headers_get_content_length (soup_message_get_response_headers (msg));
    *length_out = len > 0 ? len : 0;
  }
  return g_steal_pointer (&in);
}

BangerCatalogIndex *
banger_catalog_index_fetch (BangerConfig *config, const char *url, GCancellable *cancellable,
                            GError **error)
{
  g_autoptr (SoupSession) session = NULL;
  g_autoptr (GInputStream) in = NULL;
  g_autoptr (GByteArray) buf = g_byte_array_new ();
  g_autoptr (GBytes) bytes = NULL;
  guint64 length;
  guint8 chunk[16384];

  if (!banger_soup_load (error))
    return NULL;
  session = banger_http_session_new ();
  in = open_url (config, url, session, &length, cancellable, error);
  if (in == NULL)
    return NULL;
  for (;;) {
    gssize n = g_input_stream_read (in, chunk, sizeof chunk, cancellable, error);
    if (n < 0) {
      g_prefix_error (error, "reading the catalog %s: ", url);
      banger_error_convert (error);
      return NULL;
    }
    if (n == 0)
      break;
    if (buf->len + (gsize)n > MAX_INDEX_BYTES) {
      g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
                   "the catalog %s is larger than %d bytes", url, MAX_INDEX_BYTES);
      return NULL;
    }
    g_byte_array_append (buf, chunk, n);
  }
  bytes = g_byte_array_free_to_bytes (g_steal_pointer (&buf));
  return banger_catalog_index_parse (bytes, error);
}

static gboolean
write_all (int fd, const guint8 *data, gsize len, GError **error)
{
  while (len > 0) {
    ssize_t n = write (fd, data, len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "%s", g_strerror (errno));
      return FALSE;
    }
    data += n;
    len -= n;
  }
  return TRUE;
}

gboolean
banger_download_verified (BangerConfig *config, const char *url, const char *sha256_hex, const char *dest,
                          BangerDownloadProgressFunc progress, gpointer user_data,
                          GCancellable *cancellable, GError **error)
{
  g_autoptr (SoupSession) session = NULL;
  g_autoptr (GInputStream) in = NULL;
  g_autoptr (GChecksum) sum = g_checksum_new (G_CHECKSUM_SHA256);
  g_autofree guint8 *buf = g_malloc (128 * 1024);
  g_autofree char *tmp = NULL;
  guint64 length, done = 0;
  int fd = -1;
  gboolean ok = FALSE;

  if (!sha256_is_valid (sha256_hex)) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
                 "“%s” is not a sha256 (64 lowercase hex digits)", sha256_hex ? sha256_hex : "");
    return FALSE;
  }
  if (!banger_soup_load (error))
    return FALSE;
  session = banger_http_session_new ();
  in = open_url (config, url, session, &length, cancellable, error);
  if (in == NULL)
    return FALSE;
  if (length > BANGER_DOWNLOAD_MAX_BYTES) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_VERIFICATION,
                 "%s is %" G_GUINT64_FORMAT " bytes, more than the %llu GiB banger accepts for a "
                 "download",
                 url, length, BANGER_DOWNLOAD_MAX_BYTES >> 30);
    return FALSE;
  }
  /* A temporary name beside @dest, renamed only once verified: @dest never
   * holds bytes that did not match. */
  tmp = g_strconcat (dest, ".download-XXXXXX", NULL);
  fd = g_mkstemp_full (tmp, O_RDWR | O_CLOEXEC, 0600);
  if (fd < 0) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "cannot create %s: %s", tmp,
                 g_strerror (errno));
    return FALSE;
  }
  for (;;) {
    gssize n = g_input_stream_read (in, buf, 128 * 1024, cancellable, error);
    if (n < 0) {
      g_prefix_error (error, "downloading %s: ", url);
      banger_error_convert (error);
      goto out;
    }
    if (n == 0)
      break;
    /* The sha256 is only known good at the end: a server sending without
     * end must not fill the disk first. */
    if (done + (guint64)n > BANGER_DOWNLOAD_MAX_BYTES) {
      g_set_error (error, BANGER_ERROR, BANGER_ERROR_VERIFICATION,
                   "%s is larger than the %llu GiB banger accepts for a download", url,
                   BANGER_DOWNLOAD_MAX_BYTES >> 30);
      goto out;
    }
    if (!write_all (fd, buf, n, error)) {
      g_prefix_error (error, "writing %s: ", tmp);
      goto out;
    }
    g_checksum_update (sum, buf, n);
    done += n;
    if (progress != NULL)
      progress (done, length, user_data);
  }
  if (!g_str_equal (g_checksum_get_string (sum), sha256_hex)) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_VERIFICATION,
                 "%s does not match its sha256 %s (got %s)", url, sha256_hex,
                 g_checksum_get_string (sum));
    goto out;
  }
  if (fdatasync (fd) < 0 || rename (tmp, dest) < 0) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "cannot store %s: %s", dest,
                 g_strerror (errno));
    goto out;
  }
  ok = TRUE;
out:
  close (fd);
  if (!ok)
    unlink (tmp);
  return ok;
}
