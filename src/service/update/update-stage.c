/* Staging a verified release tarball under <cache>/update/staging
 * (update-stage.h). */
#include "update-stage.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "archive-api.h"
#include "banger-error.h"

const char *const banger_release_files[]
    = { "bangerd", "bangerd-root", "banger", "banger-agent", NULL };

typedef struct archive archive_st;
G_DEFINE_AUTOPTR_CLEANUP_FUNC (archive_st, archive_read_free)

void
banger_build_info_free (BangerBuildInfo *info)
{
  if (info == NULL)
    return;
  g_free (info->version);
  g_free (info->commit);
  g_free (info->built_at);
  g_free (info);
}

/* Every refusal here names the release tarball it was reading. */
#define reject(error, ...) banger_error_reject (error, BANGER_ERROR_VERIFICATION, "release tarball", __VA_ARGS__)

/* Index in banger_release_files, G_N_ELEMENTS-1 for BUILDINFO, -1 unknown. */
static int
file_index (const char *name)
{
  for (guint i = 0; banger_release_files[i] != NULL; i++) {
    if (g_str_equal (name, banger_release_files[i]))
      return (int)i;
  }
  if (g_str_equal (name, BANGER_RELEASE_BUILDINFO))
    return (int)g_strv_length ((GStrv)banger_release_files);
  return -1;
}

static gboolean
write_entry (struct archive *a, int dirfd, const char *name, mode_t mode, GError **error)
{
  int fd = openat (dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
  const void *buf;
  size_t size;
  la_int64_t offset;
  int rc;

  if (fd < 0) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "cannot create staged %s: %s", name,
                 g_strerror (errno));
    return FALSE;
  }
  /* Sparse holes are written as zeros: offsets only grow. */
  while ((rc = archive_read_data_block (a, &buf, &size, &offset)) == ARCHIVE_OK) {
    if (pwrite (fd, buf, size, offset) != (ssize_t)size) {
      g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "cannot write staged %s: %s", name,
                   g_strerror (errno));
      close (fd);
      return FALSE;
    }
  }
  if (rc != ARCHIVE_EOF) {
    close (fd);
    return reject (error, "%s: %s", name, archive_error_string (a));
  }
  if (fsync (fd) < 0 || fchmod (fd, mode) < 0) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "cannot write staged %s: %s", name,
                 g_strerror (errno));
    close (fd);
    return FALSE;
  }
  close (fd);
  return TRUE;
}

static BangerBuildInfo *
read_build_info (int dirfd, const char *staging, const char *version, GError **error)
{
  g_autofree char *path = g_build_filename (staging, BANGER_RELEASE_BUILDINFO, NULL);
  g_autoptr (GKeyFile) kf = g_key_file_new ();
  g_autoptr (BangerBuildInfo) info = g_new0 (BangerBuildInfo, 1);
  g_autoptr (GError) local = NULL;

  (void)dirfd;
  if (!g_key_file_load_from_file (kf, path, G_KEY_FILE_NONE, &local)) {
    reject (error, "BUILDINFO: %s", local->message);
    return NULL;
  }
  info->version = g_key_file_get_string (kf, "release", "version", NULL);
  info->commit = g_key_file_get_string (kf, "release", "commit", NULL);
  info->built_at = g_key_file_get_string (kf, "release", "built_at", NULL);
  if (info->version == NULL || info->commit == NULL || info->built_at == NULL) {
    reject (error, "BUILDINFO lacks version, commit or built_at");
    return NULL;
  }
  if (!g_str_equal (info->version, version)) {
    reject (error, "BUILDINFO says version %s, the signed name says %s", info->version, version);
    return NULL;
  }
  return g_steal_pointer (&info);
}

BangerBuildInfo *
banger_update_stage (const char *tarball, const char *staging, const char *version,
                     GCancellable *cancellable, GError **error)
{
  g_autoptr (archive_st) a = NULL;
  g_autofree char *top = g_strdup_printf ("banger-%s", version);
  g_autofree char *top_slash = g_strdup_printf ("banger-%s/", version);
  guint n_files = g_strv_length ((GStrv)banger_release_files) + 1;
  g_autofree gboolean *seen = g_new0 (gboolean, n_files);
  struct archive_entry *entry;
  BangerBuildInfo *info;
  int dirfd;
  int rc;

  if (!banger_archive_load (error))
    return NULL;
  a = archive_read_new ();
  archive_read_support_filter_gzip (a);
  archive_read_support_format_tar (a);
  if (archive_read_open_filename (a, tarball, 64 * 1024) != ARCHIVE_OK) {
    reject (error, "%s", archive_error_string (a));
    return NULL;
  }
  dirfd = open (staging, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (dirfd < 0) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "cannot open %s: %s", staging,
                 g_strerror (errno));
    return NULL;
  }
  while ((rc = archive_read_next_header (a, &entry)) == ARCHIVE_OK) {
    const char *path = archive_entry_pathname (entry);
    mode_t type = archive_entry_filetype (entry);
    int idx;

    if (g_cancellable_set_error_if_cancelled (cancellable, error)) {
      close (dirfd);
      return NULL;
    }
    if (path == NULL) {
      close (dirfd);
      return (reject (error, "an entry without a name"), NULL);
    }
    if (type == AE_IFDIR && (g_str_equal (path, top) || g_str_equal (path, top_slash)))
      continue;
    if (!g_str_has_prefix (path, top_slash) || strchr (path + strlen (top_slash), '/') != NULL
        || (idx = file_index (path + strlen (top_slash))) < 0) {
      close (dirfd);
      return (reject (error, "unexpected entry “%s” (only %s<file> with the release's files)", path,
                      top_slash),
              NULL);
    }
    if (type != AE_IFREG || archive_entry_hardlink (entry) != NULL) {
      close (dirfd);
      return (reject (error, "“%s” is not a regular file", path), NULL);
    }
    if (seen[idx]) {
      close (dirfd);
      return (reject (error, "“%s” appears twice", path), NULL);
    }
    seen[idx] = TRUE;
    if (!write_entry (a, dirfd, path + strlen (top_slash), idx == (int)n_files - 1 ? 0644 : 0755,
                      error)) {
      close (dirfd);
      return NULL;
    }
  }
  if (rc != ARCHIVE_EOF) {
    close (dirfd);
    return (reject (error, "%s", archive_error_string (a)), NULL);
  }
  for (guint i = 0; i < n_files; i++) {
    if (!seen[i]) {
      close (dirfd);
      return (reject (error, "%s%s is missing", top_slash,
                      i + 1 < n_files ? banger_release_files[i] : BANGER_RELEASE_BUILDINFO),
              NULL);
    }
  }
  info = read_build_info (dirfd, staging, version, error);
  close (dirfd);
  return info;
}

gboolean
banger_update_check_migrations (const char *staging, const char *db_path, GCancellable *cancellable,
                                GError **error)
{
  g_autofree char *bangerd = g_build_filename (staging, "bangerd", NULL);
  g_autoptr (GSubprocess) proc = NULL;
  g_autofree char *out = NULL;
  g_autoptr (GError) local = NULL;

  proc = g_subprocess_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_MERGE, &local,
                           bangerd, "--check-migrations", "--db", db_path, NULL);
  if (proc == NULL
      || !g_subprocess_communicate_utf8 (proc, NULL, cancellable, &out, NULL, &local)) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED,
                 "the new bangerd cannot check the database: %s", local->message);
    return FALSE;
  }
  if (!g_subprocess_get_if_exited (proc) || g_subprocess_get_exit_status (proc) != 0) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "the new bangerd cannot run on %s: %s",
                 db_path, out != NULL && *out != '\0' ? g_strstrip (out) : "(no output)");
    return FALSE;
  }
  return TRUE;
}
