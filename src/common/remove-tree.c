/* A recursive removal that cannot be tricked into leaving its tree.
 *
 * Written by hand because GLib has no recursive delete (g_file_delete
 * removes one entry) and nftw() takes no user data, so it cannot report
 * errors or stay on one filesystem from thread-safe code. Every step is
 * relative to a directory fd opened with O_NOFOLLOW, so a symlink swapped
 * in for a directory is removed as a link, never walked into. */

#include "remove-tree.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <gio/gio.h>
#include <glib/gstdio.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEPTH_MAX 128

typedef struct {
  dev_t dev;     /* the filesystem of the top: nothing else is entered */
  GError *first; /* the first failure, reported; the walk goes on */
  const char *top;
} Walk;

static void
note_failure (Walk *w, const char *rel, int err, const char *what)
{
  if (w->first != NULL)
    return;
  g_set_error (&w->first, G_IO_ERROR, g_io_error_from_errno (err), "cannot %s “%s/%s”: %s", what,
               w->top, rel, g_strerror (err));
}

/* A bind mount of a directory on the same filesystem has the same st_dev:
 * only the kernel's mount-root attribute (statx, Linux 5.8) tells. */
static gboolean
is_mount_root (int dirfd, const char *name)
{
  struct statx stx;

  if (statx (dirfd, name, AT_SYMLINK_NOFOLLOW, 0, &stx) < 0)
    return FALSE;
  return (stx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) != 0
         && (stx.stx_attributes & STATX_ATTR_MOUNT_ROOT) != 0;
}

/* Empties the directory @dirfd (whose path below the top is @rel), but
 * for its entry @keep. Takes ownership of @dirfd. */
static void
empty_dir (Walk *w, int dirfd, const char *rel, const char *keep, guint depth)
{
  DIR *d = fdopendir (dirfd);
  g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  struct dirent *de;

  if (d == NULL) {
    note_failure (w, rel, errno, "read");
    close (dirfd);
    return;
  }
  /* Names first, removal after: unlinking while readdir() walks the same
   * directory may skip entries. */
  while ((de = readdir (d)) != NULL) {
    if (!g_str_equal (de->d_name, ".") && !g_str_equal (de->d_name, "..")
        && g_strcmp0 (de->d_name, keep) != 0)
      g_ptr_array_add (names, g_strdup (de->d_name));
  }
  for (guint i = 0; i < names->len; i++) {
    const char *name = g_ptr_array_index (names, i);
    g_autofree char *child_rel = *rel ? g_build_filename (rel, name, NULL) : g_strdup (name);
    struct stat st;

    if (fstatat (dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
      if (errno != ENOENT)
        note_failure (w, child_rel, errno, "inspect");
      continue;
    }
    if (S_ISDIR (st.st_mode)) {
      if (st.st_dev != w->dev || is_mount_root (dirfd, name)) {
        /* A mount point: its contents belong to someone else. */
        note_failure (w, child_rel, EBUSY, "remove the mount point");
        continue;
      }
      if (depth >= DEPTH_MAX) {
        note_failure (w, child_rel, ELOOP, "remove (nested too deep)");
        continue;
      }
      int fd = openat (dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (fd < 0) {
        note_failure (w, child_rel, errno, "open");
        continue;
      }
      empty_dir (w, fd, child_rel, NULL, depth + 1);
      if (unlinkat (dirfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
        note_failure (w, child_rel, errno, "remove");
    } else if (unlinkat (dirfd, name, 0) < 0 && errno != ENOENT) {
      note_failure (w, child_rel, errno, "remove");
    }
  }
  closedir (d);
}

gboolean
banger_remove_tree (const char *path, GError **error)
{
  Walk w = { .top = path };
  struct stat st;
  int fd;

  if (lstat (path, &st) < 0) {
    if (errno == ENOENT)
      return TRUE;
    g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errno), "cannot inspect “%s”: %s", path,
                 g_strerror (errno));
    return FALSE;
  }
  if (!S_ISDIR (st.st_mode)) {
    if (g_unlink (path) < 0 && errno != ENOENT) {
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errno), "cannot remove “%s”: %s", path,
                   g_strerror (errno));
      return FALSE;
    }
    return TRUE;
  }
  w.dev = st.st_dev;
  fd = open (path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errno), "cannot open “%s”: %s", path,
                 g_strerror (errno));
    return FALSE;
  }
  empty_dir (&w, fd, "", NULL, 0);
  if (w.first == NULL && g_rmdir (path) < 0 && errno != ENOENT)
    g_set_error (&w.first, G_IO_ERROR, g_io_error_from_errno (errno), "cannot remove “%s”: %s",
                 path, g_strerror (errno));
  if (w.first != NULL) {
    g_propagate_error (error, w.first);
    return FALSE;
  }
  return TRUE;
}

gboolean
banger_remove_tree_contents (int dirfd, const char *path, const char *keep, GError **error)
{
  Walk w = { .top = path };
  struct stat st;
  int fd;

  if (fstat (dirfd, &st) < 0 || (fd = fcntl (dirfd, F_DUPFD_CLOEXEC, 3)) < 0) {
    g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errno), "cannot read “%s”: %s", path,
                 g_strerror (errno));
    return FALSE;
  }
  w.dev = st.st_dev;
  /* fdopendir reads from the descriptor's offset: a fresh duplicate
   * shares it, so start from the beginning. */
  lseek (fd, 0, SEEK_SET);
  empty_dir (&w, fd, "", keep, 0);
  if (w.first != NULL) {
    g_propagate_error (error, w.first);
    return FALSE;
  }
  return TRUE;
}

void
banger_remove_tree_or_warn (const char *path)
{
  g_autoptr (GError) error = NULL;

  if (!banger_remove_tree (path, &error))
    g_warning ("%s", error->message);
}
