/* The "update" job: fetch, verify and stage a release (update-job.h). */
#include "config.h"

#include "soup-api.h"
#include "update-job.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <unistd.h>

#include "banger-error.h"
#include "http-session.h"
#include "paths.h"
#include "remove-tree.h"
#include "soup-api.h"
#include "update-stage.h"
#include "update-verify.h"

#define MAX_MANIFEST_BYTES (1024 * 1024)
#define MAX_SUMS_BYTES     (64 * 1024)
#define MAX_TARBALL_BYTES  (512 * 1024 * 1024)
#define CHUNK              (64 * 1024)
#define UPDATE_JOBS        "update"

void
banger_release_source_clear (BangerReleaseSource *src)
{
  g_clear_pointer (&src->pubkey_pem, g_free);
  g_clear_pointer (&src->manifest_url, g_free);
}

char *
banger_update_staging_dir (void)
{
  g_autofree char *cache = banger_cache_dir ();
  return g_build_filename (cache, "update", "staging", NULL);
}

/* ---- downloads ---- */

static gboolean
host_is_loopback (GUri *uri)
{
  const char *host = g_uri_get_host (uri);
  g_autoptr (GInetAddress) addr = host != NULL ? g_inet_address_new_from_string (host) : NULL;

  if (host != NULL && g_ascii_strcasecmp (host, "localhost") == 0)
    return TRUE;
  return addr != NULL && g_inet_address_get_is_loopback (addr);
}

/* HTTPS, or plain HTTP to loopback (a local mirror, the tests). Unlike
 * image pulls no config file can add a host here: what is trusted for an
 * update is fixed by the build. */
static GInputStream *
open_url (SoupSession *session, const char *url, SoupMessage **msg_out, GCancellable *cancellable,
          GError **error)
{
  g_autoptr (GUri) uri = g_uri_parse (url, G_URI_FLAGS_NONE, NULL);
  g_autoptr (SoupMessage) msg = NULL;
  g_autoptr (GError) local = NULL;
  GInputStream *in;
  guint status;

  if (uri == NULL
      || !(g_strcmp0 (g_uri_get_scheme (uri), "https") == 0
           || (g_strcmp0 (g_uri_get_scheme (uri), "http") == 0 && host_is_loopback (uri)))) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
                 "refusing %s: releases come over HTTPS (plain HTTP only from loopback)", url);
    return NULL;
  }
  msg = soup_message_new_from_uri ("GET", uri);
  in = soup_session_send (session, msg, cancellable, &local);
  if (in == NULL) {
    if (g_error_matches (local, G_IO_ERROR, G_IO_ERROR_CANCELLED))
      g_set_error_literal (error, BANGER_ERROR, BANGER_ERROR_CANCELLED, "update cancelled");
    else
      g_set_error (error, BANGER_ERROR, BANGER_ERROR_NETWORK, "cannot fetch %s: %s", url,
                   local->message);
    return NULL;
  }
  status = soup_message_get_status (msg);
  if (status != 200) {
    g_object_unref (in);
    g_set_error (error, BANGER_ERROR, status == 404 ? BANGER_ERROR_NOT_FOUND : BANGER_ERROR_NETWORK,
                 "%s answered %u %s", url, status, soup_message_get_reason_phrase (msg));
    return NULL;
  }
  if (msg_out != NULL)
    *msg_out = g_steal_pointer (&msg);
  return in;
}

/* A small file, read whole, at most @max bytes. */
static GBytes *
fetch_small (SoupSession *session, const char *url, gsize max, GCancellable *cancellable,
             GError **error)
{
  g_autoptr (GInputStream) in = open_url (session, url, NULL, cancellable, error);
  g_autoptr (GByteArray) buf = g_byte_array_new ();
  guint8 chunk[8192];

  if (in == NULL)
    return NULL;
  for (;;) {
    gssize n = g_input_stream_read (in, chunk, sizeof chunk, cancellable, error);
    if (n < 0) {
      banger_error_convert (error);
      return NULL;
    }
    if (n == 0)
      break;
    if (buf->len + (gsize)n > max) {
      g_set_error (error, BANGER_ERROR, BANGER_ERROR_VERIFICATION, "%s is larger than %zu bytes",
                   url, max);
      return NULL;
    }
    g_byte_array_append (buf, chunk, (guint)n);
  }
  return g_byte_array_free_to_bytes (g_steal_pointer (&buf));
}

BangerReleaseManifest *
banger_update_fetch_manifest (const BangerReleaseSource *src, GCancellable *cancellable,
                              GError **error)
{
  g_autoptr (SoupSession) session = NULL;
  const char *url = src->manifest_url;
  g_autoptr (GBytes) data = NULL;
  gsize len;
  const char *text;

  if (url == NULL || *url == '\0') {
    g_set_error_literal (error, BANGER_ERROR, BANGER_ERROR_UNSUPPORTED,
                         "this build has no release manifest URL");
    return NULL;
  }
  if (!banger_soup_load (error))
    return NULL;
  session = banger_http_session_new ();
  data = fetch_small (session, url, MAX_MANIFEST_BYTES, cancellable, error);
  if (data == NULL)
    return NULL;
  text = g_bytes_get_data (data, &len);
  return banger_release_manifest_parse (text, len, url, error);
}

gboolean
banger_update_fetch_sums (const BangerReleaseEntry *entry, GBytes **sums, GBytes **signature,
                          GCancellable *cancellable, GError **error)
{
  g_autoptr (SoupSession) session = NULL;

  if (!banger_soup_load (error))
    return FALSE;
  session = banger_http_session_new ();
  *sums = fetch_small (session, entry->sha256sums, MAX_SUMS_BYTES, cancellable, error);
  if (*sums == NULL)
    return FALSE;
  *signature = fetch_small (session, entry->signature, 4096, cancellable, error);
  if (*signature == NULL) {
    g_clear_pointer (sums, g_bytes_unref);
    return FALSE;
  }
  return TRUE;
}

typedef struct {
  BangerEngineJob *job;
  guint64 total;
} DownloadProgress;

/* Streams @url into @path (created, 0600), hashing as it goes. */
static char *
download_file (SoupSession *session, const char *url, const char *path, guint64 expected_size,
               BangerEngineJob *job, GCancellable *cancellable, GError **error)
{
  g_autoptr (SoupMessage) msg = NULL;
  g_autoptr (GInputStream) in = open_url (session, url, &msg, cancellable, error);
  g_autoptr (GChecksum) sum = g_checksum_new (G_CHECKSUM_SHA256);
  g_autoptr (GFile) file = g_file_new_for_path (path);
  g_autoptr (GFileOutputStream) out = NULL;
  g_autofree guint8 *chunk = g_malloc (CHUNK);
  guint64 done = 0, total = expected_size;
  goffset len;

  if (in == NULL)
    return NULL;
  len = soup_message_headers_get_content_length (soup_message_get_response_headers (msg));
  if (len > 0)
    total = (guint64)len;
  out = g_file_replace (file, NULL, FALSE, G_FILE_CREATE_PRIVATE, cancellable, error);
  if (out == NULL) {
    banger_error_convert (error);
    return NULL;
  }
  for (;;) {
    gssize n = g_input_stream_read (in, chunk, CHUNK, cancellable, error);
    if (n < 0) {
      banger_error_convert (error);
      return NULL;
    }
    if (n == 0)
      break;
    done += (guint64)n;
    if (done > MAX_TARBALL_BYTES) {
      g_set_error (error, BANGER_ERROR, BANGER_ERROR_VERIFICATION, "%s is larger than %d MiB", url,
                   MAX_TARBALL_BYTES / (1024 * 1024));
      return NULL;
    }
    g_checksum_update (sum, chunk, (gsize)n);
    if (!g_output_stream_write_all (G_OUTPUT_STREAM (out), chunk, (gsize)n, NULL, cancellable,
                                    error)) {
      banger_error_convert (error);
      return NULL;
    }
    /* 5 % … 80 % of the job is the download. */
    banger_engine_job_update (job, total > 0 ? 0.05 + 0.75 * MIN (1.0, (double)done / total) : -1,
                              done, total, NULL);
  }
  if (!g_output_stream_close (G_OUTPUT_STREAM (out), cancellable, error)) {
    banger_error_convert (error);
    return NULL;
  }
  return g_strdup (g_checksum_get_string (sum));
}

/* ---- the job ---- */

typedef struct {
  BangerUpdateOptions options;
  BangerReleaseSource release; /* a copy: the job's thread reads it */
  char *cache_dir;
  char *db_path;
  char *staging;
} UpdateData;

static void
update_data_free (UpdateData *d)
{
  g_free (d->options.version);
  banger_release_source_clear (&d->release);
  g_free (d->cache_dir);
  g_free (d->db_path);
  g_free (d->staging);
  g_free (d);
}

static gboolean
prepare_dir (const char *path, GError **error)
{
  g_autoptr (GError) local = NULL;

  if (!banger_remove_tree (path, &local)) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "cannot clear %s: %s", path,
                 local->message);
    return FALSE;
  }
  return banger_ensure_dir (path, error);
}

/* sha256 (hex) of the file at @path, read in chunks. */
static char *
hash_file (const char *path, GError **error)
{
  g_autoptr (GChecksum) sum = g_checksum_new (G_CHECKSUM_SHA256);
  g_autofree guint8 *chunk = g_malloc (CHUNK);
  int fd = open (path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);

  if (fd < 0) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "cannot read %s: %s", path,
                 g_strerror (errno));
    return NULL;
  }
  for (;;) {
    ssize_t n = read (fd, chunk, CHUNK);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "cannot read %s: %s", path,
                   g_strerror (errno));
      close (fd);
      return NULL;
    }
    if (n == 0)
      break;
    g_checksum_update (sum, chunk, (gsize)n);
  }
  close (fd);
  return g_strdup (g_checksum_get_string (sum));
}

/* Every staged file must match its own line of the signed SHA256SUMS
 * ("banger-<version>/<file>"), and the signed list and its signature are
 * staged with them: bangerd-root checks both again, as root, on the
 * descriptors it installs from, since anything running as this user may
 * change the staged files after this check (docs/update.md, issue 10
 * finding 7). A release without the per-file lines is refused here rather
 * than by the helper after the admin typed a password. */
static gboolean
stage_signed_list (const char *staging, const char *version, GBytes *sums, GBytes *sig,
                   GError **error)
{
  guint n = g_strv_length ((GStrv)banger_release_files);
  gsize len;

  /* The release's programs, then BUILDINFO (i == n). */
  for (guint i = 0; i <= n; i++) {
    const char *name = i < n ? banger_release_files[i] : BANGER_RELEASE_BUILDINFO;
    g_autofree char *member = banger_update_release_member (version, name);
    g_autofree char *path = g_build_filename (staging, name, NULL);
    g_autofree char *want = banger_update_sums_lookup (sums, member, error);
    g_autofree char *got = NULL;

    if (want == NULL)
      return FALSE;
    got = hash_file (path, error);
    if (got == NULL)
      return FALSE;
    if (!g_str_equal (want, got)) {
      g_set_error (error, BANGER_ERROR, BANGER_ERROR_VERIFICATION,
                   "%s has sha256 %s, but the signed SHA256SUMS says %s", member, got, want);
      return FALSE;
    }
  }
  for (guint i = 0; i < 2; i++) {
    GBytes *bytes = i == 0 ? sums : sig;
    const char *data = g_bytes_get_data (bytes, &len);
    g_autofree char *path = g_build_filename (
        staging, i == 0 ? BANGER_RELEASE_STAGED_SUMS : BANGER_RELEASE_STAGED_SIG, NULL);

    if (!g_file_set_contents_full (path, data != NULL ? data : "", (gssize)len,
                                   G_FILE_SET_CONTENTS_CONSISTENT, 0644, error)) {
      banger_error_convert (error);
      return FALSE;
    }
  }
  return TRUE;
}

static gpointer
update_thread (BangerEngineJob *job, gpointer data, GCancellable *cancellable, GError **error)
{
  UpdateData *d = data;
  g_autoptr (SoupSession) session = NULL;
  g_autoptr (BangerReleaseManifest) manifest = NULL;
  g_autoptr (GBytes) sums = NULL;
  g_autoptr (GBytes) sig = NULL;
  g_autoptr (BangerBuildInfo) info = NULL;
  g_autofree char *download_dir = g_build_filename (d->cache_dir, "update", "download", NULL);
  g_autofree char *tarball = NULL;
  g_autofree char *tarball_name = NULL;
  g_autofree char *want = NULL;
  g_autofree char *got = NULL;
  const BangerReleaseEntry *entry;
  const char *version;
  gboolean ok = FALSE;

  banger_engine_job_update (job, 0.0, 0, 0, "fetching the release manifest");
  manifest = banger_update_fetch_manifest (&d->release, cancellable, error);
  if (manifest == NULL)
    return NULL;
  session = banger_http_session_new (); /* libsoup is loaded: the manifest came */
  version = d->options.version != NULL ? d->options.version : manifest->latest;
  entry = banger_release_manifest_find (manifest, version, error);
  if (entry == NULL)
    return NULL;
  if (d->options.version == NULL
      && banger_release_version_compare (entry->version, PACKAGE_VERSION) <= 0) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_BAD_STATE,
                 "banger %s is installed and the latest release is %s: nothing to update",
                 PACKAGE_VERSION, entry->version);
    return NULL;
  }

  if (!prepare_dir (download_dir, error) || !prepare_dir (d->staging, error))
    goto out;
  tarball_name = banger_release_tarball_name (entry->version);
  tarball = g_build_filename (download_dir, tarball_name, NULL);
  banger_engine_job_update (job, 0.02, 0, entry->size, "downloading SHA256SUMS and its signature");
  sums = fetch_small (session, entry->sha256sums, MAX_SUMS_BYTES, cancellable, error);
  if (sums == NULL)
    goto out;
  sig = fetch_small (session, entry->signature, 4096, cancellable, error);
  if (sig == NULL)
    goto out;
  /* The signature first: nothing the release server says is used before
   * it is known to come from the release key. */
  banger_engine_job_update (job, 0.04, 0, entry->size, "verifying the signature of SHA256SUMS");
  if (!banger_update_verify_signature (d->release.pubkey_pem, sums, sig, error))
    goto out;
  want = banger_update_sums_lookup (sums, tarball_name, error);
  if (want == NULL)
    goto out;

  banger_engine_job_update (job, 0.05, 0, entry->size, "downloading");
  got = download_file (session, entry->tarball, tarball, entry->size, job, cancellable, error);
  if (got == NULL)
    goto out;
  if (!g_str_equal (want, got)) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_VERIFICATION,
                 "%s has sha256 %s, but the signed SHA256SUMS says %s", tarball_name, got, want);
    goto out;
  }

  banger_engine_job_update (job, 0.85, 0, 0, "staging the release");
  info = banger_update_stage (tarball, d->staging, entry->version, cancellable, error);
  if (info == NULL)
    goto out;
  if (!stage_signed_list (d->staging, entry->version, sums, sig, error))
    goto out;
  banger_engine_job_update (job, 0.9, 0, 0, "checking the database with the new bangerd");
  if (!banger_update_check_migrations (d->staging, d->db_path, cancellable, error))
    goto out;
  if (d->options.dry_run) {
    banger_engine_job_update (job, 1.0, 0, 0, NULL);
    ok = TRUE;
    goto out;
  }
  if (g_cancellable_set_error_if_cancelled (cancellable, error)) {
    banger_error_convert (error);
    goto out;
  }
  /* The swap is not this process's to ask for: bangerd has no polkit agent
   * in any session, so the admin prompt could not be answered, and the
   * client that called Update has the terminal (docs/update.md). The job
   * ends with the release staged and checked. */
  banger_engine_job_update (job, 1.0, 0, 0, NULL);
  ok = TRUE;

out:
  /* The download is never needed again; the staging dir is kept only for a
   * real install (the client swaps, commits or rolls back with it). */
  banger_remove_tree (download_dir, NULL);
  if (!ok || d->options.dry_run) {
    banger_remove_tree (d->staging, NULL);
    if (!ok)
      return NULL;
  }
  return g_strdup (entry->version);
}

static gboolean
update_finish (BangerEngineJob *job, gpointer result, gpointer data, GError **error)
{
  UpdateData *d = data;

  /* The job's last message is what happened, for clients to show. */
  if (d->options.dry_run)
    banger_engine_job_update (job, 1.0, 0, 0, NULL);
  g_info ("update to %s %s", (const char *)result,
          d->options.dry_run ? "verified (dry run)" : "staged for the client to install");
  return TRUE;
}

/* ---- idle check ---- */

gboolean
banger_update_check_idle (BangerJobList *job_list, BangerStore *store, gboolean force,
                          GError **error)
{
  g_autoptr (GPtrArray) jobs = banger_job_list_list_running (job_list);
  g_autoptr (GPtrArray) vms = NULL;
  g_autoptr (GString) busy = g_string_new (NULL);

  for (guint i = 0; i < jobs->len; i++) {
    BangerEngineJob *job = jobs->pdata[i];
    if (!banger_engine_job_is_finished (job)
        && !g_str_equal (banger_engine_job_get_operation (job), "update"))
      g_string_append_printf (busy, "%s%s %s", busy->len ? ", " : "",
                              banger_engine_job_get_operation (job),
                              banger_engine_job_get_target (job));
  }
  vms = banger_store_vm_list (store, error);
  if (vms == NULL)
    return FALSE;
  for (guint i = 0; i < vms->len; i++) {
    BangerVmRecord *rec = vms->pdata[i];
    if (g_str_equal (rec->state, "starting") || g_str_equal (rec->state, "stopping"))
      g_string_append_printf (busy, "%sVM %s %s", busy->len ? ", " : "", rec->name, rec->state);
  }
  if (busy->len == 0 || force)
    return TRUE;
  g_set_error (error, BANGER_ERROR, BANGER_ERROR_BUSY,
               "VM operations are in flight (%s); wait for them or use --force", busy->str);
  return FALSE;
}

BangerEngineJob *
banger_update_start (BangerJobList *jobs, BangerStore *store, const BangerReleaseSource *src,
                     const BangerUpdateOptions *options, guint uid, GError **error)
{
  g_autoptr (BangerEngineJob) job = NULL;
  UpdateData *d;

  if (banger_job_list_find (jobs, UPDATE_JOBS, "") != NULL) {
    g_set_error_literal (error, BANGER_ERROR, BANGER_ERROR_BUSY, "an update is running already");
    return NULL;
  }
  if (!banger_update_check_idle (jobs, store, options->force, error))
    return NULL;
  d = g_new0 (UpdateData, 1);
  d->options.version = g_strdup (options->version);
  d->options.dry_run = options->dry_run;
  d->options.force = options->force;
  d->release.pubkey_pem = g_strdup (src->pubkey_pem != NULL ? src->pubkey_pem : "");
  d->release.manifest_url = g_strdup (src->manifest_url);
  d->cache_dir = banger_cache_dir ();
  d->db_path = banger_db_path ();
  d->staging = banger_update_staging_dir ();
  job = banger_engine_job_new ("update", options->version != NULL ? options->version : "latest",
                               uid);
  banger_job_list_start (jobs, job, UPDATE_JOBS, "", update_thread, update_finish, d,
                         (GDestroyNotify)update_data_free, g_free);
  return g_steal_pointer (&job);
}
