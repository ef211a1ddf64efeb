/* The local image recipes ("minimal", "debian"): each writes a raw ext4
 * root filesystem (image-recipes.h). */
#include "image-recipes.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <sys/mount.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "banger-error.h"
#include "guest-agent.h"
#include "ext4-writer.h"

#define BUSYBOX_PATH       "/bin/busybox"
#define MINIMAL_SIZE_BYTES (64 * 1024 * 1024)
#define DEBIAN_SUITE       "bookworm"
#define DEBIAN_PACKAGES    "openssh-server,iproute2"
#define DEBIAN_MIRROR      "http://deb.debian.org/debian"
#define DEBIAN_MIN_SIZE    (G_GUINT64_CONSTANT (1024) * 1024 * 1024)

gboolean
banger_image_recipe_is_known (const char *recipe)
{
  return g_strcmp0 (recipe, "minimal") == 0 || g_strcmp0 (recipe, "debian") == 0;
}

const char *
banger_image_recipe_names (void)
{
  return "minimal, debian";
}

static void
report (BangerRecipeProgressFunc progress, gpointer data, double fraction, const char *message)
{
  if (progress != NULL)
    progress (fraction, message, data);
}

static BangerExt4Attrs
attrs (guint32 mode)
{
  return (BangerExt4Attrs){ .uid = 0, .gid = 0, .mode = mode, .mtime = 0 };
}

static gboolean
add_text (BangerExt4Writer *writer, const char *path, guint32 mode, const char *text,
          GError **error)
{
  BangerExt4Attrs a = attrs (mode);
  return banger_ext4_writer_add_file_data (writer, path, &a, text, strlen (text), error);
}

/* ---- minimal ---- */

static GStrv
busybox_applets (GError **error)
{
  const char *argv[] = { BUSYBOX_PATH, "--list-full", NULL };
  g_autoptr (GSubprocess) proc = NULL;
  g_autofree char *out = NULL;

  proc = g_subprocess_newv (
      argv, G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_SILENCE, error);
  if (proc == NULL || !g_subprocess_communicate_utf8 (proc, NULL, NULL, &out, NULL, error))
    return NULL;
  if (!g_subprocess_get_successful (proc)) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "%s --list-full failed", BUSYBOX_PATH);
    return NULL;
  }
  return g_strsplit (g_strstrip (out), "\n", -1);
}

static gboolean
build_minimal (BangerExt4Writer *writer, const char *agent_path, BangerRecipeProgressFunc progress,
               gpointer data, GCancellable *cancellable, GError **error)
{
  static const struct {
    const char *path;
    guint32 mode;
  } dirs[] = { { "/bin", 0755 },  { "/sbin", 0755 },    { "/usr/bin", 0755 }, { "/usr/sbin", 0755 },
               { "/etc", 0755 },  { "/root", 0700 },    { "/tmp", 01777 },    { "/dev", 0755 },
               { "/proc", 0555 }, { "/sys", 0555 },     { "/run", 0755 },     { "/var", 0755 },
               { "/home", 0755 }, { "/var/tmp", 01777 } };
  g_auto (GStrv) applets = NULL;
  g_autoptr (GError) local = NULL;
  BangerExt4Attrs exe = attrs (0755), link = attrs (0777), dev = attrs (0600), null = attrs (0666);
  struct stat st;
  int fd;
  gboolean ok;

  if (!g_file_test (BUSYBOX_PATH, G_FILE_TEST_IS_EXECUTABLE)) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_NOT_FOUND,
                 "%s not found: the minimal image needs Debian's busybox-static", BUSYBOX_PATH);
    return FALSE;
  }
  applets = busybox_applets (error);
  if (applets == NULL)
    return FALSE;

  report (progress, data, 0.1, "creating directories");
  for (guint i = 0; i < G_N_ELEMENTS (dirs); i++) {
    BangerExt4Attrs a = attrs (dirs[i].mode);
    if (!banger_ext4_writer_mkdir (writer, dirs[i].path, &a, error))
      return FALSE;
  }

  report (progress, data, 0.2, "adding busybox");
  fd = open (BUSYBOX_PATH, O_RDONLY | O_CLOEXEC);
  if (fd < 0 || fstat (fd, &st) < 0) {
    int saved = errno;
    if (fd >= 0)
      close (fd);
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "cannot read %s: %s", BUSYBOX_PATH,
                 g_strerror (saved));
    return FALSE;
  }
  ok = banger_ext4_writer_add_file_fd (writer, "/bin/busybox", &exe, fd, st.st_size, error);
  close (fd);
  if (!ok)
    return FALSE;

  report (progress, data, 0.4, "linking busybox applets");
  for (guint i = 0; applets[i] != NULL; i++) {
    g_autofree char *path = NULL;
    const char *applet = g_strstrip (applets[i]);

    if (*applet == '\0' || g_str_equal (applet, "bin/busybox"))
      continue;
    path = g_strconcat ("/", applet, NULL);
    if (!banger_ext4_writer_symlink (writer, path, &link, "/bin/busybox", error))
      return FALSE;
  }
  if (g_cancellable_set_error_if_cancelled (cancellable, error))
    return FALSE;

  report (progress, data, 0.6, "adding the guest agent");
  if (!banger_guest_agent_write (writer, agent_path, cancellable, error))
    return FALSE;

  report (progress, data, 0.8, "writing /etc");
  /* The kernel opens /dev/console for init before anything mounts devtmpfs. */
  if (!banger_ext4_writer_mknod (writer, "/dev/console", &dev, S_IFCHR, makedev (5, 1), error)
      || !banger_ext4_writer_mknod (writer, "/dev/null", &null, S_IFCHR, makedev (1, 3), error)
      || !add_text (writer, "/etc/passwd", 0644, "root:x:0:0:root:/root:/bin/sh\n", error)
      || !add_text (writer, "/etc/group", 0644, "root:x:0:\n", error)
      || !add_text (writer, "/etc/hostname", 0644, "banger\n", error)
      || !add_text (writer, "/etc/shells", 0644, "/bin/sh\n/bin/ash\n", error))
    return FALSE;
  return !g_cancellable_set_error_if_cancelled (cancellable, error);
}

/* ---- debian ---- */

static char *
mirror_from_line (const char *line)
{
  g_auto (GStrv) words = g_strsplit_set (line, " \t", -1);

  for (guint i = 0; words[i] != NULL; i++) {
    const char *w = words[i];
    if ((g_str_has_prefix (w, "http://") || g_str_has_prefix (w, "https://"))
        && (g_str_has_suffix (w, "/debian") || g_str_has_suffix (w, "/debian/")))
      return g_strdup (w);
  }
  return NULL;
}

char *
banger_image_recipe_debian_mirror (void)
{
  const char *env = g_getenv ("BANGER_DEBIAN_MIRROR");
  g_autoptr (GPtrArray) files = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GDir) dir = NULL;
  const char *name;

  if (env != NULL && *env)
    return g_strdup (env);
  g_ptr_array_add (files, g_strdup ("/etc/apt/sources.list"));
  dir = g_dir_open ("/etc/apt/sources.list.d", 0, NULL);
  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL) {
    if (g_str_has_suffix (name, ".list") || g_str_has_suffix (name, ".sources"))
      g_ptr_array_add (files, g_build_filename ("/etc/apt/sources.list.d", name, NULL));
  }
  /* The archive itself ends in /debian; debian-security and third-party
   * repositories do not. Both the one-line and deb822 formats name it on a
   * line of their own ("deb URI suite" or "URIs: URI"). */
  for (guint i = 0; i < files->len; i++) {
    g_autofree char *text = NULL;
    g_auto (GStrv) lines = NULL;

    if (!g_file_get_contents (g_ptr_array_index (files, i), &text, NULL, NULL))
      continue;
    lines = g_strsplit (text, "\n", -1);
    for (guint j = 0; lines[j] != NULL; j++) {
      const char *l = g_strstrip (lines[j]);
      char *m;
      if (!g_str_has_prefix (l, "deb ") && !g_str_has_prefix (l, "URIs:"))
        continue;
      m = mirror_from_line (l);
      if (m != NULL)
        return m;
    }
  }
  return g_strdup (DEBIAN_MIRROR);
}

/* Unmounts whatever an interrupted debootstrap left mounted under @dir
 * (proc, sys), deepest first, so the removal below never reaches them. */
static void
unmount_under (const char *dir)
{
  g_autofree char *text = NULL;
  g_auto (GStrv) lines = NULL;
  g_autoptr (GPtrArray) mounts = g_ptr_array_new_with_free_func (g_free);
  g_autofree char *prefix = g_strconcat (dir, "/", NULL);

  if (!g_file_get_contents ("/proc/self/mountinfo", &text, NULL, NULL))
    return;
  lines = g_strsplit (text, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++) {
    g_auto (GStrv) f = g_strsplit (lines[i], " ", 6);
    if (g_strv_length (f) >= 5 && g_str_has_prefix (f[4], prefix))
      g_ptr_array_add (mounts, g_strdup (f[4]));
  }
  for (guint i = mounts->len; i > 0; i--) {
    const char *m = g_ptr_array_index (mounts, i - 1);
    if (umount2 (m, MNT_DETACH) < 0)
      g_warning ("cannot unmount %s: %s", m, g_strerror (errno));
  }
}

/* rm -rf that stays on @dev: a mount point left under a debootstrap tree
 * must never have its contents removed. */
static void
remove_tree (int parent_fd, const char *name, dev_t dev)
{
  struct stat st;
  int fd;

  if (fstatat (parent_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
    return;
  if (st.st_dev != dev)
    return;
  if (S_ISDIR (st.st_mode)) {
    DIR *d;
    struct dirent *e;

    fd = openat (parent_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
      return;
    d = fdopendir (fd);
    if (d == NULL) {
      close (fd);
      return;
    }
    while ((e = readdir (d)) != NULL) {
      if (g_str_equal (e->d_name, ".") || g_str_equal (e->d_name, ".."))
        continue;
      remove_tree (dirfd (d), e->d_name, dev);
    }
    closedir (d);
    unlinkat (parent_fd, name, AT_REMOVEDIR);
  } else {
    unlinkat (parent_fd, name, 0);
  }
}

static void
remove_host_dir (const char *dir)
{
  struct stat st;

  unmount_under (dir);
  if (lstat (dir, &st) == 0)
    remove_tree (AT_FDCWD, dir, st.st_dev);
}

static void
child_setup (gpointer data)
{
  /* Its own process group, so a cancel reaches dpkg and the downloads too. */
  setpgid (0, 0);
}

static gboolean
run_debootstrap (const char *dir, BangerRecipeProgressFunc progress, gpointer data,
                 GCancellable *cancellable, GError **error)
{
  g_autofree char *mirror = banger_image_recipe_debian_mirror ();
  const char *argv[] = {
    "debootstrap", "--variant=minbase", "--include=" DEBIAN_PACKAGES, DEBIAN_SUITE, dir, mirror,
    NULL
  };
  g_autoptr (GSubprocessLauncher) launcher = NULL;
  g_autoptr (GSubprocess) proc = NULL;
  g_autoptr (GDataInputStream) lines = NULL;
  g_autoptr (GString) tail = g_string_new ("");
  g_autoptr (GError) local = NULL;
  double fraction = 0.02;
  char *line;

  if (geteuid () != 0) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_UNSUPPORTED,
                 "the debian recipe runs debootstrap, which needs root (bangerd runs as uid %u)",
                 (guint)geteuid ());
    return FALSE;
  }
  g_info ("debootstrap %s into %s from %s", DEBIAN_SUITE, dir, mirror);
  launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE
                                        | G_SUBPROCESS_FLAGS_STDERR_MERGE);
  g_subprocess_launcher_set_child_setup (launcher, child_setup, NULL, NULL);
  proc = g_subprocess_launcher_spawnv (launcher, argv, &local);
  if (proc == NULL) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_NOT_FOUND, "cannot run debootstrap: %s",
                 local->message);
    return FALSE;
  }
  lines = g_data_input_stream_new (g_subprocess_get_stdout_pipe (proc));
  while ((line = g_data_input_stream_read_line_utf8 (lines, NULL, cancellable, &local)) != NULL) {
    g_autofree char *owned = line;
    /* debootstrap's phases, roughly weighted by how long they take. */
    if (g_str_has_prefix (line, "I: Retrieving"))
      fraction = MIN (fraction + 0.004, 0.35);
    else if (g_str_has_prefix (line, "I: Extracting"))
      fraction = MAX (fraction, 0.4);
    else if (g_str_has_prefix (line, "I: Unpacking") || g_str_has_prefix (line, "I: Installing"))
      fraction = MAX (fraction, 0.5);
    else if (g_str_has_prefix (line, "I: Configuring"))
      fraction = MIN (MAX (fraction, 0.6) + 0.005, 0.75);
    if (g_str_has_prefix (line, "I: ") || g_str_has_prefix (line, "E: ")
        || g_str_has_prefix (line, "W: "))
      report (progress, data, fraction, line + 3);
    g_string_append_printf (tail, "%s\n", line);
    if (tail->len > 2000)
      g_string_erase (tail, 0, tail->len - 2000);
  }
  if (local != NULL) {
    /* SIGTERM first: debootstrap's exit trap unmounts what it mounted. */
    GPid pid = (GPid)g_ascii_strtoll (g_subprocess_get_identifier (proc) ?: "0", NULL, 10);
    if (pid > 0)
      kill (-pid, SIGTERM);
    g_subprocess_wait (proc, NULL, NULL);
    g_propagate_error (error, g_steal_pointer (&local));
    return FALSE;
  }
  if (!g_subprocess_wait (proc, cancellable, error))
    return FALSE;
  if (!g_subprocess_get_successful (proc)) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "debootstrap from %s failed:\n%s",
                 mirror, tail->str);
    return FALSE;
  }
  return TRUE;
}

static gboolean
build_debian (const char *dest, const char *agent_path, BangerRecipeProgressFunc progress,
              gpointer data, gboolean *has_sshd, GCancellable *cancellable, GError **error)
{
  g_autofree char *dest_dir = g_path_get_dirname (dest);
  g_autofree char *tmpl = g_build_filename (dest_dir, ".debootstrap-XXXXXX", NULL);
  g_autofree char *root = NULL;
  g_autofree char *ssh_dir = NULL;
  g_autofree char *sshd = NULL;
  g_autoptr (BangerExt4Writer) writer = NULL;
  g_autoptr (GDir) keys = NULL;
  guint64 size = 0, inodes = 0;
  gboolean ok = FALSE;
  const char *name;

  root = g_mkdtemp (tmpl);
  if (root == NULL) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "cannot create a directory in %s: %s",
                 dest_dir, g_strerror (errno));
    return FALSE;
  }
  tmpl = NULL; /* g_mkdtemp returned it */
  if (!run_debootstrap (root, progress, data, cancellable, error))
    goto out;

  report (progress, data, 0.8, "writing the root filesystem");
  if (!banger_ext4_size_for_tree (root, 50, &size, &inodes, error))
    goto out;
  size = MAX (size, DEBIAN_MIN_SIZE);
  writer = banger_ext4_writer_new (dest, size, inodes, error);
  if (writer == NULL || !banger_ext4_writer_add_tree (writer, root, "/", error))
    goto out;
  if (g_cancellable_set_error_if_cancelled (cancellable, error))
    goto out;

  /* Never shared between VMs: the agent writes the VM's own host key, and
   * machine-id is made at first boot. */
  ssh_dir = g_build_filename (root, "etc", "ssh", NULL);
  keys = g_dir_open (ssh_dir, 0, NULL);
  while (keys != NULL && (name = g_dir_read_name (keys)) != NULL) {
    g_autofree char *path = NULL;
    if (!g_str_has_prefix (name, "ssh_host_"))
      continue;
    path = g_strconcat ("/etc/ssh/", name, NULL);
    if (!banger_ext4_writer_remove (writer, path, error))
      goto out;
  }
  if (!banger_ext4_writer_remove (writer, "/etc/machine-id", error)
      || !banger_ext4_writer_remove (writer, "/var/lib/dbus/machine-id", error)
      || !add_text (writer, "/etc/hostname", 0644, "banger\n", error))
    goto out;

  report (progress, data, 0.9, "adding the guest agent");
  if (!banger_guest_agent_write (writer, agent_path, cancellable, error))
    goto out;
  sshd = g_build_filename (root, "usr", "sbin", "sshd", NULL);
  *has_sshd = g_file_test (sshd, G_FILE_TEST_IS_EXECUTABLE);
  if (!banger_ext4_writer_finish (writer, error))
    goto out;
  ok = TRUE;
out:
  remove_host_dir (root);
  return ok;
}

gboolean
banger_image_recipe_build (const char *recipe, const char *dest, const char *agent_path,
                           BangerRecipeProgressFunc progress, gpointer progress_data,
                           gboolean *has_sshd, GCancellable *cancellable, GError **error)
{
  g_autoptr (BangerExt4Writer) writer = NULL;

  *has_sshd = FALSE;
  if (g_strcmp0 (recipe, "debian") == 0)
    return build_debian (dest, agent_path, progress, progress_data, has_sshd, cancellable, error);
  if (g_strcmp0 (recipe, "minimal") != 0) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_NOT_FOUND, "no recipe called “%s” (known: %s)",
                 recipe, banger_image_recipe_names ());
    return FALSE;
  }
  report (progress, progress_data, 0.0, "creating the file system");
  writer = banger_ext4_writer_new (dest, MINIMAL_SIZE_BYTES, 0, error);
  if (writer == NULL
      || !build_minimal (writer, agent_path, progress, progress_data, cancellable, error))
    return FALSE;
  report (progress, progress_data, 0.95, "writing the file system");
  return banger_ext4_writer_finish (writer, error);
}
