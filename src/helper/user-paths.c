/* What jail.c and install-release.c both need to take files from a caller's
 * own directories without being led elsewhere by a symlink. */

#include "user-paths.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <pwd.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "banger-error.h"

GStrv
banger_user_paths_expand (const char *const *patterns, uid_t uid, GError **error)
{
  struct passwd pw, *res = NULL;
  char buf[4096];
  g_autofree char *uid_text = g_strdup_printf ("%u", (guint)uid);
  GPtrArray *out;

  if (getpwuid_r (uid, &pw, buf, sizeof buf, &res) != 0 || res == NULL) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_NOT_AUTHORIZED, "uid %u has no passwd entry",
                 (guint)uid);
    return NULL;
  }
  out = g_ptr_array_new ();
  for (guint i = 0; patterns != NULL && patterns[i] != NULL; i++) {
    GString *s = g_string_new (patterns[i]);
    g_string_replace (s, "%h", pw.pw_dir, 0);
    g_string_replace (s, "%U", uid_text, 0);
    g_ptr_array_add (out, g_string_free (s, FALSE));
  }
  g_ptr_array_add (out, NULL);
  return (GStrv)g_ptr_array_free (out, FALSE);
}

int
banger_open_no_symlinks (int dirfd, const char *path, int flags)
{
  /* glibc 2.36 has no openat2 wrapper: the raw syscall. */
  struct open_how how = {
    .flags = (guint64)(flags | O_CLOEXEC | O_NOFOLLOW),
    .resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
  };
  return (int)syscall (SYS_openat2, dirfd, path, &how, sizeof how);
}

int
banger_user_paths_open_root (const char *const *roots, const char *path, uid_t uid,
                             const char **rest)
{
  for (guint i = 0; roots[i] != NULL; i++) {
    gsize len = strlen (roots[i]);
    struct stat st;
    int fd;

    if (strncmp (path, roots[i], len) != 0 || path[len] != '/')
      continue;
    fd = banger_open_no_symlinks (AT_FDCWD, roots[i], O_PATH | O_DIRECTORY);
    if (fd < 0)
      continue;
    if (fstat (fd, &st) < 0 || st.st_uid != uid) {
      close (fd);
      continue;
    }
    *rest = path + len + 1;
    return fd;
  }
  return -1;
}

int
banger_reopen_path_fd (int path_fd, int flags)
{
  g_autofree char *proc = g_strdup_printf ("/proc/self/fd/%d", path_fd);
  struct stat before, after;
  int fd;

  /* The magic link names the very inode behind @path_fd, whatever has
   * been renamed or swapped since: no second path walk. O_NONBLOCK so
   * that even if the caller's type check were wrong, a FIFO or a tty
   * could not park this thread. */
  if (fstat (path_fd, &before) < 0)
    return -1;
  fd = open (proc, flags | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0)
    return -1;
  if (fstat (fd, &after) < 0 || after.st_dev != before.st_dev || after.st_ino != before.st_ino) {
    close (fd);
    errno = ESTALE;
    return -1;
  }
  return fd;
}

char *
banger_read_small_file (int dirfd, const char *name, gsize max, GError **error)
{
  g_autofree char *buf = g_malloc (max + 1);
  struct stat st;
  gsize len = 0;
  int pfd, fd;

  /* O_PATH opens nothing (a FIFO is not waited on, a device not
   * touched); only a regular file is then opened for reading, and no more
   * than @max bytes of it are read (a pidfile that claims more is not a
   * pidfile). */
  pfd = banger_open_no_symlinks (dirfd, name, O_PATH);
  if (pfd < 0) {
    int saved = errno;
    g_set_error (error, BANGER_ERROR, saved == ENOENT ? BANGER_ERROR_NOT_FOUND : BANGER_ERROR_FAILED,
                 "cannot open %s: %s (symlinks are not followed)", name, g_strerror (saved));
    return NULL;
  }
  if (fstat (pfd, &st) < 0 || !S_ISREG (st.st_mode)) {
    close (pfd);
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT, "%s is not a regular file",
                 name);
    return NULL;
  }
  fd = banger_reopen_path_fd (pfd, O_RDONLY);
  close (pfd);
  if (fd < 0) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "cannot read %s: %s", name,
                 g_strerror (errno));
    return NULL;
  }
  while (len <= max) {
    gssize n = read (fd, buf + len, max + 1 - len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    len += (gsize)n;
  }
  close (fd);
  if (len > max) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT, "%s is longer than %"
                 G_GSIZE_FORMAT " bytes", name, max);
    return NULL;
  }
  buf[len] = '\0';
  return g_steal_pointer (&buf);
}
