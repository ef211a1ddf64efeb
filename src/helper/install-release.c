#include "install-release.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "banger-error.h"
#include "update-verify.h"
#include "user-paths.h"

#define SELF_CHECK_TIMEOUT_S 30
/* The staged SHA256SUMS and signature are small (bangerd fetches at most
 * 64 KiB and 4 KiB of them); anything larger is not a release. */
#define MAX_SUMS_BYTES (64 * 1024)
#define MAX_SIG_BYTES  4096

/* Executables that link the helper library without release-key.c (unit
 * tests): no key, so a swap is refused. bangerd-root and
 * bangerd-root-testkey link a strong definition. */
__attribute__ ((weak)) const char banger_release_pubkey_pem[] = "";

static const BangerHelperConfig *cfg;
static char *cfg_path;

/* The swap this process made and nobody has finished or rolled back yet.
 * Its client (the bus connection that was authorised for the swap) may
 * check, finish or roll it back without a second prompt; while it is set
 * the helper does not idle-exit; if the client leaves, it is rolled back
 * (helper-daemon.c). Guarded by pending_lock: calls run in GDBus's method
 * threads. */
static GMutex pending_lock;
/* One step at a time: two swaps (or a rollback racing a check) must not
 * interleave their renames. */
static GMutex step_lock;
static struct {
  gboolean set;
  char *sender;
  uid_t uid;
  char *version;
} pending;

typedef enum { DIR_BIN, DIR_LIBEXEC, DIR_LIBEXEC_BANGER } InstallDir;

/* The release's files and where each is installed. */
static const struct {
  const char *name;
  InstallDir dir;
} release_files[] = {
  { "bangerd", DIR_BIN },
  { "banger", DIR_BIN },
  { "bangerd-root", DIR_LIBEXEC },
  { "banger-agent", DIR_LIBEXEC_BANGER },
};

void
banger_install_release_configure (const BangerHelperConfig *config)
{
  cfg = config;
  if (config == NULL) {
    g_clear_pointer (&cfg_path, g_free);
    g_mutex_lock (&pending_lock);
    g_clear_pointer (&pending.sender, g_free);
    g_clear_pointer (&pending.version, g_free);
    pending.set = FALSE;
    g_mutex_unlock (&pending_lock);
  }
}

void
banger_install_release_set_config_path (const char *path)
{
  g_free (cfg_path);
  cfg_path = g_strdup (path);
}

static char *
install_dir (InstallDir dir)
{
  switch (dir) {
  case DIR_BIN:
    return g_strdup (cfg->update_bindir);
  case DIR_LIBEXEC:
    return g_strdup (cfg->update_libexecdir);
  case DIR_LIBEXEC_BANGER:
  default:
    return g_build_filename (cfg->update_libexecdir, "banger", NULL);
  }
}

static gboolean fail (GError **error, int code, const char *format, ...) G_GNUC_PRINTF (3, 4);

static gboolean
fail (GError **error, int code, const char *format, ...)
{
  va_list args;
  g_autofree char *msg = NULL;

  va_start (args, format);
  msg = g_strdup_vprintf (format, args);
  va_end (args);
  g_set_error_literal (error, BANGER_ERROR, code, msg);
  return FALSE;
}

/* ---- options ---- */

const char *
banger_install_release_step (GVariant *options)
{
  gboolean flag = FALSE;

  if (g_variant_lookup (options, "rollback", "b", &flag) && flag)
    return "rollback";
  if (g_variant_lookup (options, "finish", "b", &flag) && flag)
    return "finish";
  if (g_variant_lookup (options, "check", "b", &flag) && flag)
    return "check";
  return "swap";
}

static gboolean
matches (const char *text, const char *pattern)
{
  return g_regex_match_simple (pattern, text, G_REGEX_DEFAULT, G_REGEX_MATCH_DEFAULT);
}

/* The values install.toml will hold: strict shapes, since they end up in a
 * root-owned file others read. */
static gboolean
check_options (GVariant *options, GError **error)
{
  gboolean rollback = FALSE, finish = FALSE, check = FALSE;
  const char *version = NULL, *commit = NULL, *built_at = NULL;
  const char *step;
  gboolean any_info;

  g_variant_lookup (options, "rollback", "b", &rollback);
  g_variant_lookup (options, "finish", "b", &finish);
  g_variant_lookup (options, "check", "b", &check);
  g_variant_lookup (options, "version", "&s", &version);
  g_variant_lookup (options, "commit", "&s", &commit);
  g_variant_lookup (options, "built_at", "&s", &built_at);
  any_info = version != NULL || commit != NULL || built_at != NULL;
  if ((rollback ? 1 : 0) + (finish ? 1 : 0) + (check ? 1 : 0) > 1)
    return fail (error, BANGER_ERROR_INVALID_ARGUMENT,
                 "“rollback”, “finish” and “check” exclude each other");
  step = rollback ? "a rollback" : finish ? "the finish" : "the check";
  if ((rollback || finish || check) && any_info)
    return fail (error, BANGER_ERROR_INVALID_ARGUMENT,
                 "“version”, “commit” and “built_at” belong to the swap, not to %s", step);
  if (rollback || finish || check)
    return TRUE;
  if (version == NULL || commit == NULL || built_at == NULL)
    return fail (error, BANGER_ERROR_INVALID_ARGUMENT,
                 "a swap needs “version”, “commit” and “built_at”");
  if (!matches (version, "^[0-9]{1,5}\\.[0-9]{1,5}\\.[0-9]{1,5}$"))
    return fail (error, BANGER_ERROR_INVALID_ARGUMENT, "“version” is not X.Y.Z");
  if (!matches (commit, "^([0-9a-f]{7,40}(-dirty)?|unknown)$"))
    return fail (error, BANGER_ERROR_INVALID_ARGUMENT, "“commit” is not a git commit");
  if (!matches (built_at, "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$"))
    return fail (error, BANGER_ERROR_INVALID_ARGUMENT, "“built_at” is not a UTC time");
  return TRUE;
}

/* ---- the staging dir ---- */

/* An O_PATH descriptor of @dir (already shape-checked by the authorizer)
 * if it is a directory of @uid under one of @uid's staging roots, reached
 * without any symlink, and writable by nobody else. */
static int
open_staging (const char *dir, uid_t uid, GError **error)
{
  g_auto (GStrv) roots
      = banger_user_paths_expand ((const char *const *)cfg->update_staging_dirs, uid, error);
  const char *rest = NULL;
  struct stat st;
  int rootfd;

  if (roots == NULL)
    return -1;
  rootfd = banger_user_paths_open_root ((const char *const *)roots, dir, uid, &rest);
  if (rootfd >= 0) {
    int fd = banger_open_no_symlinks (rootfd, rest, O_PATH | O_DIRECTORY);

    close (rootfd);
    if (fd < 0) {
      fail (error, BANGER_ERROR_INVALID_ARGUMENT, "staging dir %s: %s (symlinks are not followed)",
            dir, g_strerror (errno));
      return -1;
    }
    if (fstat (fd, &st) < 0 || st.st_uid != uid || (st.st_mode & 0022) != 0) {
      close (fd);
      fail (error, BANGER_ERROR_INVALID_ARGUMENT,
            "staging dir %s is not a directory of uid %u that only it may write", dir, (guint)uid);
      return -1;
    }
    return fd;
  }
  fail (error, BANGER_ERROR_INVALID_ARGUMENT,
        "staging dir %s is not under uid %u’s banger cache directories", dir, (guint)uid);
  return -1;
}

/* A staged file: regular, @uid's, one link, not a symlink. */
static int
open_staged_file (int dirfd, const char *dir, const char *name, uid_t uid, GError **error)
{
  struct stat st;
  /* O_PATH first: this runs before polkit, for any local user, and a
   * blocking open of a FIFO planted here would park a helper thread for
   * ever (issue 10, finding 3). Only a checked regular file is opened for
   * reading, through the descriptor, so it is the same inode. */
  int pfd = banger_open_no_symlinks (dirfd, name, O_PATH);
  int fd;

  if (pfd < 0) {
    fail (error, BANGER_ERROR_INVALID_ARGUMENT, "staged %s/%s: %s (symlinks are not followed)", dir,
          name, g_strerror (errno));
    return -1;
  }
  /* O_PATH|O_NOFOLLOW hands back the link itself rather than failing. */
  if (fstat (pfd, &st) == 0 && S_ISLNK (st.st_mode)) {
    close (pfd);
    fail (error, BANGER_ERROR_INVALID_ARGUMENT,
          "staged %s/%s is a symbolic link (symlinks are not followed)", dir, name);
    return -1;
  }
  if (fstat (pfd, &st) < 0 || !S_ISREG (st.st_mode) || st.st_uid != uid || st.st_nlink != 1) {
    close (pfd);
    fail (error, BANGER_ERROR_INVALID_ARGUMENT,
          "staged %s/%s is not a regular file of uid %u with a single link", dir, name, (guint)uid);
    return -1;
  }
  fd = banger_reopen_path_fd (pfd, O_RDONLY);
  close (pfd);
  if (fd < 0) {
    fail (error, BANGER_ERROR_INVALID_ARGUMENT, "staged %s/%s: %s", dir, name, g_strerror (errno));
    return -1;
  }
  return fd;
}

gboolean
banger_install_release_check_caller (const char *method, GVariant *parameters, uid_t uid,
                                     GError **error)
{
  g_autoptr (GVariant) options = NULL;
  const char *dir = NULL;
  int dirfd;

  if (g_strcmp0 (method, "InstallRelease") != 0)
    return TRUE;
  if (cfg == NULL)
    return fail (error, BANGER_ERROR_UNSUPPORTED, "the release installer is not configured");
  g_variant_get_child (parameters, 0, "&s", &dir);
  options = g_variant_get_child_value (parameters, 1);
  if (!check_options (options, error))
    return FALSE;
  dirfd = open_staging (dir, uid, error);
  if (dirfd < 0)
    return FALSE;
  if (g_str_equal (banger_install_release_step (options), "swap")) {
    /* The signed list and its signature too: a staging dir without them
     * is refused before an administrator is asked for a password. They
     * are read and verified only in the swap, after polkit. */
    const char *signed_files[] = { BANGER_RELEASE_STAGED_SUMS, BANGER_RELEASE_STAGED_SIG };

    for (guint i = 0; i < G_N_ELEMENTS (release_files) + G_N_ELEMENTS (signed_files); i++) {
      const char *name = i < G_N_ELEMENTS (release_files)
                             ? release_files[i].name
                             : signed_files[i - G_N_ELEMENTS (release_files)];
      int fd = open_staged_file (dirfd, dir, name, uid, error);
      if (fd < 0) {
        close (dirfd);
        return FALSE;
      }
      close (fd);
    }
  }
  close (dirfd);
  return TRUE;
}

/* ---- swapping ---- */

/* Copies @in to @out, feeding every byte written to @sum: what is hashed
 * is exactly what lands in the root-owned copy, whatever the caller does
 * to the staged file meanwhile. */
static gboolean
copy_fd (int in, int out, GChecksum *sum, GError **error)
{
  char buf[64 * 1024];

  for (;;) {
    ssize_t n = read (in, buf, sizeof buf);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return fail (error, BANGER_ERROR_FAILED, "read: %s", g_strerror (errno));
    if (n == 0)
      return TRUE;
    g_checksum_update (sum, (const guchar *)buf, (gsize)n);
    for (ssize_t off = 0; off < n;) {
      ssize_t w = write (out, buf + off, (size_t)(n - off));
      if (w < 0 && errno == EINTR)
        continue;
      if (w < 0)
        return fail (error, BANGER_ERROR_FAILED, "write: %s", g_strerror (errno));
      off += w;
    }
  }
}

/* Writes @name.new in @dirfd from @src: root's, 0755, on disk, and only if
 * the bytes written have the sha256 @want (hex) the signed list gives. */
static gboolean
write_new (int dirfd, const char *dir, const char *name, int src, const char *want, GError **error)
{
  g_autofree char *tmp = g_strdup_printf ("%s.new", name);
  g_autoptr (GChecksum) sum = g_checksum_new (G_CHECKSUM_SHA256);
  int fd;

  if (unlinkat (dirfd, tmp, 0) < 0 && errno != ENOENT)
    return fail (error, BANGER_ERROR_FAILED, "cannot remove %s/%s: %s", dir, tmp,
                 g_strerror (errno));
  fd = openat (dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0700);
  if (fd < 0)
    return fail (error, BANGER_ERROR_FAILED, "cannot create %s/%s: %s", dir, tmp,
                 g_strerror (errno));
  if (!copy_fd (src, fd, sum, error) || fchown (fd, 0, 0) < 0 || fchmod (fd, 0755) < 0
      || fsync (fd) < 0) {
    if (error != NULL && *error == NULL)
      fail (error, BANGER_ERROR_FAILED, "cannot write %s/%s: %s", dir, tmp, g_strerror (errno));
    else
      g_prefix_error (error, "%s/%s: ", dir, tmp);
    close (fd);
    unlinkat (dirfd, tmp, 0);
    return FALSE;
  }
  close (fd);
  if (!g_str_equal (g_checksum_get_string (sum), want)) {
    unlinkat (dirfd, tmp, 0);
    return fail (error, BANGER_ERROR_VERIFICATION,
                 "the staged %s has sha256 %s, but the signed SHA256SUMS says %s: it changed "
                 "after it was verified, refusing to install",
                 name, g_checksum_get_string (sum), want);
  }
  return TRUE;
}

/* The content of the staged @name (checked as every staged file is), at
 * most @max bytes. */
static GBytes *
read_staged_small (int dirfd, const char *dir, const char *name, uid_t uid, gsize max,
                   GError **error)
{
  g_autofree char *buf = g_malloc (max + 1);
  gsize len = 0;
  int fd = open_staged_file (dirfd, dir, name, uid, error);

  if (fd < 0)
    return NULL;
  while (len <= max) {
    ssize_t n = read (fd, buf + len, max + 1 - len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      fail (error, BANGER_ERROR_FAILED, "cannot read %s/%s: %s", dir, name, g_strerror (errno));
      close (fd);
      return NULL;
    }
    if (n == 0)
      break;
    len += (gsize)n;
  }
  close (fd);
  if (len > max) {
    fail (error, BANGER_ERROR_VERIFICATION,
          "the staged %s is larger than %" G_GSIZE_FORMAT " bytes", name, max);
    return NULL;
  }
  return g_bytes_new_take (g_steal_pointer (&buf), len);
}

/* The staged SHA256SUMS, if its staged signature is the release key's: from
 * here on its lines are the release's word, not the caller's. */
static GBytes *
read_signed_list (int dirfd, const char *dir, uid_t uid, GError **error)
{
  g_autoptr (GBytes) sums
      = read_staged_small (dirfd, dir, BANGER_RELEASE_STAGED_SUMS, uid, MAX_SUMS_BYTES, error);
  g_autoptr (GBytes) sig = NULL;

  if (sums == NULL)
    return NULL;
  sig = read_staged_small (dirfd, dir, BANGER_RELEASE_STAGED_SIG, uid, MAX_SIG_BYTES, error);
  if (sig == NULL)
    return NULL;
  if (!banger_update_verify_signature (banger_release_pubkey_pem, sums, sig, error)) {
    g_prefix_error (error, "the staged release: ");
    return NULL;
  }
  return g_steal_pointer (&sums);
}

typedef struct {
  int fd[G_N_ELEMENTS (release_files)];
  char *path[G_N_ELEMENTS (release_files)];
} InstallDirs;

static void
install_dirs_clear (InstallDirs *d)
{
  for (guint i = 0; i < G_N_ELEMENTS (release_files); i++) {
    if (d->fd[i] >= 0)
      close (d->fd[i]);
    g_free (d->path[i]);
  }
}

static gboolean
install_dirs_open (InstallDirs *d, GError **error)
{
  for (guint i = 0; i < G_N_ELEMENTS (release_files); i++)
    d->fd[i] = -1;
  for (guint i = 0; i < G_N_ELEMENTS (release_files); i++) {
    d->path[i] = install_dir (release_files[i].dir);
    d->fd[i] = open (d->path[i], O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (d->fd[i] < 0)
      return fail (error, BANGER_ERROR_FAILED, "cannot open %s: %s", d->path[i],
                   g_strerror (errno));
  }
  return TRUE;
}

static void
sync_dirs (InstallDirs *d)
{
  for (guint i = 0; i < G_N_ELEMENTS (release_files); i++) {
    int fd = openat (d->fd[i], ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
      fsync (fd);
      close (fd);
    }
  }
}

/* Puts every <name>.old back; TRUE if there was at least one. */
static gboolean
restore_old (InstallDirs *d, GError **error)
{
  guint restored = 0;

  for (guint i = 0; i < G_N_ELEMENTS (release_files); i++) {
    const char *name = release_files[i].name;
    g_autofree char *old = g_strdup_printf ("%s.old", name);
    g_autofree char *tmp = g_strdup_printf ("%s.new", name);

    unlinkat (d->fd[i], tmp, 0);
    if (renameat (d->fd[i], old, d->fd[i], name) < 0) {
      if (errno == ENOENT)
        continue;
      return fail (error, BANGER_ERROR_FAILED, "cannot restore %s/%s: %s", d->path[i], name,
                   g_strerror (errno));
    }
    /* rename() of two links to one file does nothing: drop the link. */
    unlinkat (d->fd[i], old, 0);
    restored++;
  }
  sync_dirs (d);
  if (restored == 0)
    return fail (error, BANGER_ERROR_BAD_STATE, "there is no previous release to roll back to");
  return TRUE;
}

static char *
pending_path (void)
{
  return g_strdup_printf ("%s.pending", cfg->update_install_toml);
}

static gboolean
write_pending (GVariant *options, uid_t uid, GError **error)
{
  g_autofree char *path = pending_path ();
  g_autofree char *dir = g_path_get_dirname (path);
  g_autoptr (GDateTime) now = g_date_time_new_now_utc ();
  g_autofree char *now_text = g_date_time_format (now, "%Y-%m-%dT%H:%M:%SZ");
  g_autofree char *text = NULL;
  const char *version = NULL, *commit = NULL, *built_at = NULL;
  GError *local = NULL;

  g_variant_lookup (options, "version", "&s", &version);
  g_variant_lookup (options, "commit", "&s", &commit);
  g_variant_lookup (options, "built_at", "&s", &built_at);
  /* TOML by hand: four keys whose values the authorizer checked to hold
   * no quote or backslash. */
  text = g_strdup_printf ("# What banger update installed (bangerd-root writes this file).\n"
                          "version = \"%s\"\ncommit = \"%s\"\nbuilt_at = \"%s\"\n"
                          "installed_at = \"%s\"\ninstalled_by_uid = %u\n",
                          version, commit, built_at, now_text, (guint)uid);
  if (g_mkdir_with_parents (dir, 0755) < 0)
    return fail (error, BANGER_ERROR_FAILED, "cannot create %s: %s", dir, g_strerror (errno));
  if (!g_file_set_contents_full (path, text, -1, G_FILE_SET_CONTENTS_CONSISTENT, 0644, &local)) {
    fail (error, BANGER_ERROR_FAILED, "cannot write %s: %s", path, local->message);
    g_error_free (local);
    return FALSE;
  }
  return TRUE;
}

static gboolean
swap (const char *staging, GVariant *options, uid_t uid, GError **error)
{
  InstallDirs d;
  int dirfd = -1;
  g_autoptr (GBytes) sums = NULL;
  const char *version = NULL;
  guint renamed = 0;
  gboolean ok = FALSE;

  if (!install_dirs_open (&d, error)) {
    install_dirs_clear (&d);
    return FALSE;
  }
  /* Re-opened here, not trusted from the check before polkit: the caller
   * may have swapped files in between. */
  dirfd = open_staging (staging, uid, error);
  if (dirfd < 0)
    goto out;
  g_variant_lookup (options, "version", "&s", &version);
  sums = read_signed_list (dirfd, staging, uid, error);
  if (sums == NULL)
    goto out;
  for (guint i = 0; i < G_N_ELEMENTS (release_files); i++) {
    g_autofree char *member = banger_update_release_member (version, release_files[i].name);
    g_autofree char *want = NULL;
    struct stat st;
    int src;

    if (fstatat (d.fd[i], release_files[i].name, &st, AT_SYMLINK_NOFOLLOW) < 0
        || !S_ISREG (st.st_mode)) {
      fail (error, BANGER_ERROR_BAD_STATE, "%s/%s is not installed: nothing to update", d.path[i],
            release_files[i].name);
      goto out;
    }
    /* The signed name carries the version: the hashes of another
     * release's files do not pass for this one's. */
    want = banger_update_sums_lookup (sums, member, error);
    if (want == NULL)
      goto out;
    src = open_staged_file (dirfd, staging, release_files[i].name, uid, error);
    if (src < 0)
      goto out;
    ok = write_new (d.fd[i], d.path[i], release_files[i].name, src, want, error);
    close (src);
    if (!ok)
      goto out;
    ok = FALSE;
  }
  for (guint i = 0; i < G_N_ELEMENTS (release_files); i++) {
    g_autofree char *old = g_strdup_printf ("%s.old", release_files[i].name);

    if ((unlinkat (d.fd[i], old, 0) < 0 && errno != ENOENT)
        || linkat (d.fd[i], release_files[i].name, d.fd[i], old, 0) < 0) {
      fail (error, BANGER_ERROR_FAILED, "cannot keep %s/%s: %s", d.path[i], old,
            g_strerror (errno));
      goto out;
    }
  }
  if (!write_pending (options, uid, error))
    goto out;
  for (guint i = 0; i < G_N_ELEMENTS (release_files); i++) {
    g_autofree char *tmp = g_strdup_printf ("%s.new", release_files[i].name);

    if (renameat (d.fd[i], tmp, d.fd[i], release_files[i].name) < 0) {
      fail (error, BANGER_ERROR_FAILED, "cannot install %s/%s: %s", d.path[i],
            release_files[i].name, g_strerror (errno));
      goto out;
    }
    renamed++;
  }
  sync_dirs (&d);
  ok = TRUE;

out:
  if (!ok) {
    g_autofree char *pending = pending_path ();

    /* Nothing half-done stays: the .new files go, and what was renamed
     * already comes back from .old. */
    unlink (pending);
    for (guint i = 0; i < G_N_ELEMENTS (release_files) && d.fd[i] >= 0; i++) {
      g_autofree char *tmp = g_strdup_printf ("%s.new", release_files[i].name);
      unlinkat (d.fd[i], tmp, 0);
    }
    if (renamed > 0) {
      restore_old (&d, NULL);
    } else {
      for (guint i = 0; i < G_N_ELEMENTS (release_files) && d.fd[i] >= 0; i++) {
        g_autofree char *old = g_strdup_printf ("%s.old", release_files[i].name);
        unlinkat (d.fd[i], old, 0);
      }
    }
  }
  if (dirfd >= 0)
    close (dirfd);
  install_dirs_clear (&d);
  return ok;
}

static gboolean
finish (GError **error)
{
  g_autofree char *pending_file = pending_path ();
  InstallDirs d;

  if (rename (pending_file, cfg->update_install_toml) < 0) {
    if (errno == ENOENT)
      return fail (error, BANGER_ERROR_BAD_STATE, "no update is waiting to be finished (%s)",
                   pending_file);
    return fail (error, BANGER_ERROR_FAILED, "cannot write %s: %s", cfg->update_install_toml,
                 g_strerror (errno));
  }
  if (install_dirs_open (&d, NULL)) {
    for (guint i = 0; i < G_N_ELEMENTS (release_files); i++) {
      g_autofree char *old = g_strdup_printf ("%s.old", release_files[i].name);
      unlinkat (d.fd[i], old, 0);
    }
    sync_dirs (&d);
  }
  install_dirs_clear (&d);
  return TRUE;
}

static gboolean
rollback (GError **error)
{
  g_autofree char *pending_file = pending_path ();
  InstallDirs d;
  gboolean ok;

  if (!install_dirs_open (&d, error)) {
    install_dirs_clear (&d);
    return FALSE;
  }
  ok = restore_old (&d, error);
  install_dirs_clear (&d);
  unlink (pending_file);
  return ok;
}

/* ---- the new helper's self-check ---- */

typedef struct {
  gboolean done;
  char *output;
  char *errors;
  GError *error;
} SelfCheckRun;

static void
self_check_done (GObject *source, GAsyncResult *res, gpointer data)
{
  SelfCheckRun *run = data;

  g_subprocess_communicate_utf8_finish (G_SUBPROCESS (source), res, &run->output, &run->errors,
                                        &run->error);
  run->done = TRUE;
}

static gboolean
self_check_timeout (gpointer data)
{
  g_subprocess_force_exit (G_SUBPROCESS (data));
  return G_SOURCE_REMOVE;
}

/* Runs the installed (just swapped-in) bangerd-root with --self-check, as
 * root, from this (old) helper: the new helper is what the post-update
 * doctor must judge, and the process that can undo the swap must not be
 * the one being judged. It must exit 0 within SELF_CHECK_TIMEOUT_S and
 * say "bangerd-root <the version being installed>". */
static gboolean
self_check (const char *version, GError **error)
{
  g_autofree char *libexec = install_dir (DIR_LIBEXEC);
  g_autofree char *binary = g_build_filename (libexec, "bangerd-root", NULL);
  g_autofree char *want = g_strdup_printf ("bangerd-root %s", version);
  g_autoptr (GMainContext) context = g_main_context_new ();
  g_autoptr (GSubprocess) proc = NULL;
  g_autoptr (GSource) timeout = NULL;
  g_autoptr (GPtrArray) argv = g_ptr_array_new ();
  SelfCheckRun run = { 0 };
  g_autofree char *first_line = NULL;
  char *nl;
  gboolean ok = FALSE;

  g_ptr_array_add (argv, binary);
  g_ptr_array_add (argv, (char *)"--self-check");
  if (cfg_path != NULL) {
    g_ptr_array_add (argv, (char *)"--config");
    g_ptr_array_add (argv, cfg_path);
  }
  g_ptr_array_add (argv, NULL);
  proc = g_subprocess_newv ((const char *const *)argv->pdata,
                            G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE,
                            error);
  if (proc == NULL) {
    g_prefix_error (error, "the new bangerd-root cannot be started: ");
    banger_error_convert (error);
    return FALSE;
  }
  /* A private context: this runs in a method thread, not the main loop. */
  g_main_context_push_thread_default (context);
  g_subprocess_communicate_utf8_async (proc, NULL, NULL, self_check_done, &run);
  timeout = g_timeout_source_new_seconds (SELF_CHECK_TIMEOUT_S);
  g_source_set_callback (timeout, self_check_timeout, proc, NULL);
  g_source_attach (timeout, context);
  while (!run.done)
    g_main_context_iteration (context, TRUE);
  g_source_destroy (timeout);
  g_main_context_pop_thread_default (context);

  if (run.error != NULL) {
    fail (error, BANGER_ERROR_FAILED, "the new bangerd-root's self-check failed: %s",
          run.error->message);
    g_error_free (run.error);
    g_free (run.output);
    g_free (run.errors);
    return FALSE;
  }
  first_line = g_strstrip (g_strdup (run.output != NULL ? run.output : ""));
  if ((nl = strchr (first_line, '\n')) != NULL)
    *nl = '\0';
  if (!g_subprocess_get_if_exited (proc) || g_subprocess_get_exit_status (proc) != 0)
    fail (error, BANGER_ERROR_FAILED, "the new bangerd-root's self-check failed (%s): %s",
          g_subprocess_get_if_exited (proc) ? "exit status non-zero" : "killed or timed out",
          run.errors != NULL && *run.errors != '\0' ? g_strstrip (run.errors) : "no message");
  else if (!g_str_equal (first_line, want))
    fail (error, BANGER_ERROR_FAILED,
          "the new bangerd-root says “%s” instead of “%s”: it is not the release being installed",
          first_line, want);
  else
    ok = TRUE;
  g_free (run.output);
  g_free (run.errors);
  if (ok)
    g_message ("the installed %s passed its self-check: version %s", binary, version);
  return ok;
}

/* ---- the pending swap ---- */

gboolean
banger_install_release_preauthorized (const char *method, GVariant *parameters,
                                      const char *sender, uid_t uid)
{
  g_autoptr (GVariant) options = NULL;
  gboolean ok;

  if (g_strcmp0 (method, "InstallRelease") != 0 || sender == NULL)
    return FALSE;
  options = g_variant_get_child_value (parameters, 1);
  if (g_str_equal (banger_install_release_step (options), "swap"))
    return FALSE;
  g_mutex_lock (&pending_lock);
  ok = pending.set && pending.uid == uid && g_strcmp0 (pending.sender, sender) == 0;
  g_mutex_unlock (&pending_lock);
  return ok;
}

char *
banger_install_release_pending_sender (void)
{
  char *sender;

  g_mutex_lock (&pending_lock);
  sender = pending.set ? g_strdup (pending.sender) : NULL;
  g_mutex_unlock (&pending_lock);
  return sender;
}

/* Takes the pending record (the caller then owns what it holds). */
static gboolean
pending_take (char **version)
{
  gboolean was;

  g_mutex_lock (&pending_lock);
  was = pending.set;
  pending.set = FALSE;
  g_clear_pointer (&pending.sender, g_free);
  if (version != NULL)
    *version = g_steal_pointer (&pending.version);
  g_clear_pointer (&pending.version, g_free);
  g_mutex_unlock (&pending_lock);
  return was;
}

gboolean
banger_install_release_abandon (const char *why)
{
  g_autoptr (GError) error = NULL;
  gboolean ok;

  if (cfg == NULL)
    return FALSE;
  g_mutex_lock (&step_lock);
  if (!pending_take (NULL)) {
    g_mutex_unlock (&step_lock);
    return FALSE;
  }
  ok = rollback (&error);
  g_mutex_unlock (&step_lock);
  if (ok)
    g_message ("the pending update was rolled back: %s", why);
  else
    g_warning ("the pending update could not be rolled back (%s): %s", why, error->message);
  return TRUE;
}

static gboolean
install_release_step (const char *staging_dir, GVariant *options, uid_t uid, const char *sender,
                      GError **error)
{
  const char *step = banger_install_release_step (options);

  if (g_str_equal (step, "rollback")) {
    pending_take (NULL);
    return rollback (error);
  }
  if (g_str_equal (step, "finish")) {
    pending_take (NULL);
    return finish (error);
  }
  if (g_str_equal (step, "check")) {
    g_autofree char *version = NULL;

    g_mutex_lock (&pending_lock);
    version = pending.set ? g_strdup (pending.version) : NULL;
    g_mutex_unlock (&pending_lock);
    if (version == NULL)
      return fail (error, BANGER_ERROR_BAD_STATE,
                   "no update of this helper is waiting to be checked");
    return self_check (version, error);
  }
  g_mutex_lock (&pending_lock);
  if (pending.set) {
    g_mutex_unlock (&pending_lock);
    return fail (error, BANGER_ERROR_BUSY,
                 "an update is waiting to be finished or rolled back already");
  }
  g_mutex_unlock (&pending_lock);
  if (!swap (staging_dir, options, uid, error))
    return FALSE;
  g_mutex_lock (&pending_lock);
  pending.set = TRUE;
  pending.uid = uid;
  pending.sender = g_strdup (sender);
  g_variant_lookup (options, "version", "s", &pending.version);
  g_mutex_unlock (&pending_lock);
  return TRUE;
}

gboolean
banger_install_release (const char *staging_dir, GVariant *options, uid_t uid, const char *sender,
                        GError **error)
{
  gboolean ok;

  if (cfg == NULL)
    return fail (error, BANGER_ERROR_UNSUPPORTED, "the release installer is not configured");
  g_mutex_lock (&step_lock);
  ok = install_release_step (staging_dir, options, uid, sender, error);
  g_mutex_unlock (&step_lock);
  return ok;
}
