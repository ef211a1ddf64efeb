/* What jail.c and install-release.c both need to take files from a caller's
 * own directories without being led elsewhere by a symlink. */

#define G_LOG_DOMAIN "banger-user-paths"

#include "user-paths.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <pwd.h>
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
