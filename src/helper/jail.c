/* Firecracker's jailer, run by root for a user. The helper trusts nothing in
 * the spec: the id must satisfy both banger's and the jailer's rules, and
 * every file must be a regular file the caller owns, reached from one of the
 * caller's banger directories without following a symlink (openat2
 * RESOLVE_NO_SYMLINKS), and it is then linked into the jail from the open
 * descriptor, so what was checked is what the VMM gets.
 *
 * One file (~900 lines) on purpose: launch, relaunch, kill and removal share
 * the jail's path rules and the descriptor checks, and splitting them would
 * spread the one security argument of this file over several. */

#include "jail.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <linux/openat2.h>
#include <pwd.h>
#include <signal.h>
#include <linux/mount.h>
#include <sys/mount.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "banger-error.h"
#include "remove-tree.h"
#include "user-paths.h"
#include "validate.h"

#define DEFAULT_JAILER      "/usr/bin/jailer"
#define DEFAULT_FIRECRACKER "/usr/bin/firecracker"
#define DEFAULT_CHROOT_BASE "/srv/jailer"
#define DEFAULT_USER_DIRS   "%h/.local/share/banger;%h/.cache/banger"
#define JAILER_ID_MAX       64
#define OWNER_FILE          "banger-owner"
/* The launch's guest memory (MiB), root's, beside the owner record: the
 * bound on a memory file TakeJailState hands out. */
#define MEMORY_FILE         "banger-memory-mib"
/* A Firecracker microVM state is kilobytes; anything near this is not one. */
#define STATE_MAX_BYTES     (64 * 1024 * 1024)
#define JAIL_API_SOCKET     "/run/firecracker.socket"
#define LAUNCH_WAIT_MS      5000
/* Guest memory plus what Firecracker itself needs. */
#define VMM_OVERHEAD_MIB 128

static struct {
  char *jailer;
  char *firecracker;
  char *chroot_base;
  char **user_dirs;
} cfg;

/* Jails are created and removed one at a time. */
static GMutex jail_lock;

void
banger_jail_config_clear (void)
{
  g_clear_pointer (&cfg.jailer, g_free);
  g_clear_pointer (&cfg.firecracker, g_free);
  g_clear_pointer (&cfg.chroot_base, g_free);
  g_clear_pointer (&cfg.user_dirs, g_strfreev);
}

gboolean
banger_jail_config_load (const char *path, GError **error)
{
  g_autoptr (GKeyFile) kf = g_key_file_new ();
  g_autofree char *dirs = NULL;

  banger_jail_config_clear ();
  if (g_key_file_load_from_file (kf, path, G_KEY_FILE_NONE, NULL)) {
    cfg.jailer = g_key_file_get_string (kf, "jail", "jailer", NULL);
    cfg.firecracker = g_key_file_get_string (kf, "jail", "firecracker", NULL);
    cfg.chroot_base = g_key_file_get_string (kf, "jail", "chroot_base", NULL);
    dirs = g_key_file_get_string (kf, "jail", "user_dirs", NULL);
  }
  if (cfg.jailer == NULL)
    cfg.jailer = g_strdup (DEFAULT_JAILER);
  if (cfg.firecracker == NULL)
    cfg.firecracker = g_strdup (DEFAULT_FIRECRACKER);
  if (cfg.chroot_base == NULL)
    cfg.chroot_base = g_strdup (DEFAULT_CHROOT_BASE);
  cfg.user_dirs = g_strsplit (dirs != NULL ? dirs : DEFAULT_USER_DIRS, ";", -1);
  for (guint i = 0; cfg.user_dirs[i] != NULL; i++) {
    if (!g_str_has_prefix (cfg.user_dirs[i], "/") && !g_str_has_prefix (cfg.user_dirs[i], "%h/")) {
      g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
                   "%s: [jail] user_dirs: “%s” is not absolute", path, cfg.user_dirs[i]);
      return FALSE;
    }
  }
  if (!g_path_is_absolute (cfg.chroot_base) || !g_path_is_absolute (cfg.jailer)
      || !g_path_is_absolute (cfg.firecracker)) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
                 "%s: [jail] jailer, firecracker and chroot_base must be absolute paths", path);
    return FALSE;
  }
  return TRUE;
}

static gboolean
ensure_config (void)
{
  if (cfg.user_dirs == NULL)
    return banger_jail_config_load ("/nonexistent", NULL);
  return TRUE;
}

/* ---- ids, directories, ownership ---------------------------------------- */

static gboolean
check_id (const char *id, GError **error)
{
  gsize len = strlen (id);

  if (!banger_validate_vm_id (id, error))
    return FALSE;
  /* The jailer's own rule (letters, digits, '-', at most 64), checked here
   * too so a jailer failure never happens half-way through a launch. */
  if (len == 0 || len > JAILER_ID_MAX) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
                 "jail id “%s” must be 1 to %d characters", id, JAILER_ID_MAX);
    return FALSE;
  }
  for (gsize i = 0; i < len; i++) {
    if (!g_ascii_isalnum (id[i]) && id[i] != '-') {
      g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
                   "jail id “%s” may only hold letters, digits and ‘-’", id);
      return FALSE;
    }
  }
  return TRUE;
}

static char *
jail_dir (const char *id)
{
  g_autofree char *exec_name = g_path_get_basename (cfg.firecracker);
  return g_build_filename (cfg.chroot_base, exec_name, id, NULL);
}

/* The jail's recorded owner, or -1 if it has none (no such jail). */
static gint64
jail_owner (const char *id)
{
  g_autofree char *dir = jail_dir (id);
  g_autofree char *path = g_build_filename (dir, OWNER_FILE, NULL);
  g_autofree char *text = NULL;
  guint64 uid;

  if (!g_file_get_contents (path, &text, NULL, NULL))
    return -1;
  if (!g_ascii_string_to_unsigned (g_strstrip (text), 10, 0, G_MAXUINT32, &uid, NULL))
    return -1;
  return (gint64)uid;
}

static gboolean
check_owner (const char *id, uid_t uid, gboolean must_exist, GError **error)
{
  g_autofree char *dir = jail_dir (id);
  gint64 owner = jail_owner (id);

  if (owner < 0 && g_file_test (dir, G_FILE_TEST_EXISTS)) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_EXISTS,
                 "jail %s exists but was not made by banger (no owner record)", id);
    return FALSE;
  }
  if (owner < 0 && must_exist) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_NOT_FOUND, "no jail %s", id);
    return FALSE;
  }
  if (owner >= 0 && owner != (gint64)uid) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_NOT_AUTHORIZED,
                 "jail %s belongs to uid %" G_GINT64_FORMAT ", not to uid %u", id, owner,
                 (guint)uid);
    return FALSE;
  }
  return TRUE;
}

/* Opens @path (already shape-checked: absolute, no "." or "..") if it lies
 * under one of the caller's directories, with no symlink anywhere on the
 * way, and is a regular file the caller owns. Returns the descriptor. */
static int
open_user_file (const char *what, const char *path, uid_t uid, int *dirfd_out, GError **error)
{
  g_auto (GStrv) dirs = banger_user_paths_expand ((const char *const *)cfg.user_dirs, uid, error);
  const char *rest = NULL;
  struct stat st;
  int fd, pfd, dirfd;

  if (dirs == NULL)
    return -1;
  dirfd = banger_user_paths_open_root ((const char *const *)dirs, path, uid, &rest);
  if (dirfd >= 0) {
    /* O_PATH first: this runs before polkit, for any local user, and a
     * plain O_RDONLY open of a FIFO would park this thread for ever. Only
     * a regular file of the caller's is then opened for reading. */
    pfd = banger_open_no_symlinks (dirfd, rest, O_PATH);
    if (pfd < 0) {
      g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
                   "spec “%s” %s: %s (symlinks are not followed)", what, path, g_strerror (errno));
      close (dirfd);
      return -1;
    }
    if (fstat (pfd, &st) < 0 || !S_ISREG (st.st_mode) || st.st_uid != uid) {
      close (pfd);
      close (dirfd);
      g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
                   "spec “%s” %s is not a regular file owned by uid %u", what, path, (guint)uid);
      return -1;
    }
    fd = banger_reopen_path_fd (pfd, O_RDONLY);
    close (pfd);
    if (fd < 0) {
      g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT, "spec “%s” %s: %s", what,
                   path, g_strerror (errno));
      close (dirfd);
      return -1;
    }
    if (dirfd_out != NULL)
      *dirfd_out = dirfd;
    else
      close (dirfd);
    return fd;
  }
  g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
               "spec “%s” %s is not under uid %u’s banger directories", what, path, (guint)uid);
  return -1;
}

int
banger_jail_open_user_file (const char *what, const char *path, uid_t uid, int *dirfd_out,
                            GError **error)
{
  ensure_config ();
  return open_user_file (what, path, uid, dirfd_out, error);
}

/* The files a spec names, in jail order: kernel, rootfs, initrd, and a
 * saved state to restore (its device state and its memory, which the
 * snapshot load opens at these chroot-relative paths). */
static const char *const spec_files[][2] = {
  { "kernel", "vmlinux" }, { "rootfs", "rootfs" }, { "initrd", "initrd" },
  { "state", "vmstate" },  { "memory", "memory" },
};
#define N_SPEC_FILES G_N_ELEMENTS (spec_files)

static gboolean
open_spec_files (GVariant *spec, uid_t uid, int fds[N_SPEC_FILES], GError **error)
{
  for (guint i = 0; i < N_SPEC_FILES; i++)
    fds[i] = -1;
  if (g_variant_lookup (spec, "state", "&s", NULL)
      != g_variant_lookup (spec, "memory", "&s", NULL)) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
                 "spec: “state” and “memory” go together");
    return FALSE;
  }
  for (guint i = 0; i < N_SPEC_FILES; i++) {
    const char *path = NULL;

    fds[i] = -1;
    if (!g_variant_lookup (spec, spec_files[i][0], "&s", &path)) {
      if (i < 2) {
        g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT, "spec: “%s” is required",
                     spec_files[i][0]);
        return FALSE;
      }
      continue;
    }
    fds[i] = open_user_file (spec_files[i][0], path, uid, NULL, error);
    if (fds[i] < 0)
      return FALSE;
  }
  return TRUE;
}

static void
close_fds (int fds[N_SPEC_FILES])
{
  for (guint i = 0; i < N_SPEC_FILES; i++) {
    if (fds[i] >= 0)
      close (fds[i]);
    fds[i] = -1;
  }
}

static int open_user_dir (const char *dest_dir, uid_t uid, GError **error);

gboolean
banger_jail_check_caller (const char *method, GVariant *parameters, uid_t uid, GError **error)
{
  ensure_config ();
  if (g_strcmp0 (method, "LaunchJailed") == 0) {
    g_autoptr (GVariant) spec = g_variant_get_child_value (parameters, 0);
    const char *id = NULL;
    int fds[N_SPEC_FILES];
    gboolean ok;

    if (!g_variant_lookup (spec, "vm_id", "&s", &id) || !check_id (id, error)
        || !check_owner (id, uid, FALSE, error))
      return FALSE;
    ok = open_spec_files (spec, uid, fds, error);
    close_fds (fds);
    return ok;
  }
  if (g_strcmp0 (method, "KillJailed") == 0) {
    const char *id = NULL;

    g_variant_get_child (parameters, 0, "&s", &id);
    return check_id (id, error) && check_owner (id, uid, TRUE, error);
  }
  if (g_strcmp0 (method, "TakeJailState") == 0) {
    const char *id = NULL, *dest = NULL;
    int fd;

    g_variant_get_child (parameters, 0, "&s", &id);
    g_variant_get_child (parameters, 1, "&s", &dest);
    if (!check_id (id, error) || !check_owner (id, uid, TRUE, error))
      return FALSE;
    fd = open_user_dir (dest, uid, error);
    if (fd < 0)
      return FALSE;
    close (fd);
    return TRUE;
  }
  if (g_strcmp0 (method, "RemoveJail") == 0) {
    const char *id = NULL;

    /* An absent jail is fine (idempotent); someone else's is not. */
    g_variant_get_child (parameters, 0, "&s", &id);
    return check_id (id, error) && check_owner (id, uid, FALSE, error);
  }
  return TRUE;
}

/* ---- the live VMM -------------------------------------------------------- */

static gboolean
cmdline_has_id (guint pid, const char *id)
{
  g_autofree char *path = g_strdup_printf ("/proc/%u/cmdline", pid);
  g_autofree char *text = NULL;
  gsize len = 0;
  const char *prev = NULL;

  if (!g_file_get_contents (path, &text, &len, NULL))
    return FALSE;
  for (gsize off = 0; off < len; off += strlen (text + off) + 1) {
    if (prev != NULL && g_str_equal (prev, "--id") && g_str_equal (text + off, id))
      return TRUE;
    prev = text + off;
  }
  return FALSE;
}

/* The real uid of @pid from /proc/<pid>/status, or -1. */
static gint64
process_uid (guint pid)
{
  g_autofree char *path = g_strdup_printf ("/proc/%u/status", pid);
  g_autofree char *text = NULL;
  g_autofree char *field = NULL;
  const char *line;
  guint64 uid;

  if (!g_file_get_contents (path, &text, NULL, NULL))
    return -1;
  line = strstr (text, "\nUid:\t");
  if (line == NULL)
    return -1;
  line += strlen ("\nUid:\t");
  field = g_strndup (line, strcspn (line, "\t\n"));
  if (!g_ascii_string_to_unsigned (field, 10, 0, G_MAXUINT32, &uid, NULL))
    return -1;
  return (gint64)uid;
}

/* Whether @pid's root or working directory is the jail's root @root_st:
 * the jailer pivots into the chroot and changes into its "/", so a VMM of
 * this jail has both there, and a VMM of another jail (or none) has
 * neither. */
static gboolean
process_in_jail (guint pid, const struct stat *root_st)
{
  const char *links[] = { "root", "cwd" };

  for (guint i = 0; i < G_N_ELEMENTS (links); i++) {
    g_autofree char *path = g_strdup_printf ("/proc/%u/%s", pid, links[i]);
    struct stat st;

    if (stat (path, &st) == 0 && st.st_dev == root_st->st_dev && st.st_ino == root_st->st_ino)
      return TRUE;
  }
  return FALSE;
}

/* The jail's root directory, O_PATH, or -1 (no jail, or not a directory). */
static int
open_jail_root (const char *id)
{
  g_autofree char *dir = jail_dir (id);
  int dir_fd, root_fd;

  /* chroot_base and the jail directory are root's; "root" itself is the
   * VM user's once the jailer has run (it chowns the chroot), so from
   * there on nothing is followed. */
  dir_fd = open (dir, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (dir_fd < 0)
    return -1;
  root_fd = banger_open_no_symlinks (dir_fd, "root", O_PATH | O_DIRECTORY);
  close (dir_fd);
  return root_fd;
}

/* The jail's VMM as a pidfd, or -1: the pid in the jail's pidfile, read
 * with a bound and without following anything (the chroot is the VM
 * user's, who can put a FIFO, a symlink to /dev/zero or any pid there),
 * and believed only if that process runs as the jail's owner @owner, is
 * called "firecracker", has "--id @id" on its command line and sits in
 * this jail. The pidfd is opened before those checks: if the pid is
 * recycled meanwhile, signalling the pidfd fails instead of hitting the
 * newcomer. */
static int
jail_vmm (const char *id, uid_t owner, guint *pid_out)
{
  g_autofree char *exec_name = g_path_get_basename (cfg.firecracker);
  g_autofree char *pid_name = g_strconcat (exec_name, ".pid", NULL);
  g_autofree char *text = NULL;
  g_autofree char *comm_path = NULL;
  g_autofree char *comm = NULL;
  g_autoptr (GError) local = NULL;
  struct stat root_st;
  guint64 pid;
  int root_fd, pidfd;

  root_fd = open_jail_root (id);
  if (root_fd < 0)
    return -1;
  if (fstat (root_fd, &root_st) < 0) {
    close (root_fd);
    return -1;
  }
  text = banger_read_small_file (root_fd, pid_name, 32, &local);
  close (root_fd);
  if (text == NULL) {
    if (!g_error_matches (local, BANGER_ERROR, BANGER_ERROR_NOT_FOUND))
      g_warning ("jail %s: pidfile ignored: %s", id, local->message);
    return -1;
  }
  if (!g_ascii_string_to_unsigned (g_strstrip (text), 10, 2, G_MAXINT, &pid, NULL))
    return -1;
  pidfd = (int)syscall (SYS_pidfd_open, (pid_t)pid, 0);
  if (pidfd < 0)
    return -1;
  comm_path = g_strdup_printf ("/proc/%u/comm", (guint)pid);
  if (process_uid ((guint)pid) != (gint64)owner
      || !g_file_get_contents (comm_path, &comm, NULL, NULL)
      || !g_str_equal (g_strstrip (comm), "firecracker") || !cmdline_has_id ((guint)pid, id)
      || !process_in_jail ((guint)pid, &root_st)) {
    g_debug ("jail %s: pid %u is not this jail's VMM", id, (guint)pid);
    close (pidfd);
    return -1;
  }
  if (pid_out != NULL)
    *pid_out = (guint)pid;
  return pidfd;
}

/* The jail's live VMM's pid, or 0. */
static guint
jail_pid (const char *id, uid_t owner)
{
  guint pid = 0;
  int pidfd = jail_vmm (id, owner, &pid);

  if (pidfd < 0)
    return 0;
  close (pidfd);
  return pid;
}

/* Links @fd's file into the chroot as @name: a hard link where both are on
 * one filesystem, else a bind mount of it onto an empty file. Both go from
 * the checked descriptor to a name under @root_fd, which this launch has
 * just made, root-owned: no path the VM's user can touch is walked, so
 * what was checked is what the VMM gets and nothing else is covered. The
 * bind mount is open_tree + move_mount (glibc has no wrappers yet), which
 * take descriptors at both ends where mount(2) takes paths.
 *
 * @read_only: always a bind mount, made read-only (mount_setattr) before
 * it is attached. For a saved state's files, which the restore only reads:
 * a warm-start entry's are shared by all its clones, and the VMM runs as
 * their owner, so a hard link would let a compromised clone rewrite the
 * memory later clones start from. The jailed VMM has no capability to
 * remount it, and cannot unlink a mount point (EBUSY). */
static gboolean
place_file (int fd, int root_fd, const char *root, const char *name, gboolean read_only,
            GError **error)
{
  struct mount_attr attr = { .attr_set = MOUNT_ATTR_RDONLY };
  int tfd, tree_fd;

  if (!read_only) {
    if (linkat (fd, "", root_fd, name, AT_EMPTY_PATH) == 0)
      return TRUE;
    if (errno != EXDEV) {
      g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "cannot link %s/%s into the jail: %s",
                   root, name, g_strerror (errno));
      return FALSE;
    }
  }
  tfd = openat (root_fd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (tfd < 0) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "cannot create %s/%s: %s", root, name,
                 g_strerror (errno));
    return FALSE;
  }
  close (tfd);
  tree_fd = (int)syscall (SYS_open_tree, fd, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH);
  if (tree_fd < 0
      || (read_only
          && syscall (SYS_mount_setattr, tree_fd, "", AT_EMPTY_PATH, &attr, sizeof attr) < 0)
      || syscall (SYS_move_mount, tree_fd, "", root_fd, name, MOVE_MOUNT_F_EMPTY_PATH) < 0) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "cannot bind %s/%s into the jail: %s",
                 root, name, g_strerror (errno));
    if (tree_fd >= 0)
      close (tree_fd);
    return FALSE;
  }
  close (tree_fd);
  return TRUE;
}

static gboolean unmount_all (const char *id, const char *dir, GError **error);

/* Makes the jail's root afresh, root-owned, and returns it (O_PATH). The
 * jailer hands the chroot to the VM's uid, so whatever the last launch
 * left there (a symlink named like a file the helper places, a planted
 * root/firecracker, a device node) is the user's: it is unmounted and
 * removed without following anything, never reused. */
static int
rebuild_root (const char *id, int dir_fd, const char *dir, GError **error)
{
  g_autofree char *root = g_build_filename (dir, "root", NULL);
  struct stat st;
  int old_fd, root_fd;

  if (fstatat (dir_fd, "root", &st, AT_SYMLINK_NOFOLLOW) == 0) {
    if (!unmount_all (id, dir, error))
      return -1;
    if (S_ISDIR (st.st_mode)) {
      old_fd = openat (dir_fd, "root", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (old_fd < 0) {
        g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "cannot open %s: %s", root,
                     g_strerror (errno));
        return -1;
      }
      if (!banger_remove_tree_contents (old_fd, root, NULL, error)) {
        close (old_fd);
        return -1;
      }
      close (old_fd);
    }
    if (unlinkat (dir_fd, "root", S_ISDIR (st.st_mode) ? AT_REMOVEDIR : 0) < 0) {
      g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "cannot remove the old %s: %s", root,
                   g_strerror (errno));
      return -1;
    }
  }
  if (mkdirat (dir_fd, "root", 0755) < 0) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "cannot create %s: %s", root,
                 g_strerror (errno));
    return -1;
  }
  root_fd = openat (dir_fd, "root", O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (root_fd < 0 || fstat (root_fd, &st) < 0 || st.st_uid != 0) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "cannot open the new %s: %s", root,
                 g_strerror (errno));
    if (root_fd >= 0)
      close (root_fd);
    return -1;
  }
  return root_fd;
}

static void
on_jailer_exit (GPid pid, gint status, gpointer data)
{
  g_debug ("jailer/firecracker %d ended (status %d)", pid, status);
  g_spawn_close_pid (pid);
}

static guint
launch_locked (GVariant *spec, uid_t uid, GError **error)
{
  const char *id = NULL;
  guint32 vcpus = 1, memory_mib = 128;
  g_autofree char *dir = NULL;
  g_autofree char *root = NULL;
  g_autofree char *owner_path = NULL;
  g_autofree char *owner_text = NULL;
  g_autofree char *uid_s = NULL, *gid_s = NULL, *mem_s = NULL, *cpu_s = NULL;
  g_autoptr (GError) local = NULL;
  struct passwd pw, *res = NULL;
  g_autofree char *memory_path = NULL;
  g_autofree char *memory_text = NULL;
  struct stat st;
  char buf[4096];
  int fds[N_SPEC_FILES] = { -1, -1, -1, -1, -1 };
  int dir_fd = -1, root_fd = -1;
  guint pid = 0, found = 0;
  GPid jailer_pid = 0;
  gboolean jailer_done = FALSE;
  gint64 deadline;

  g_variant_lookup (spec, "vm_id", "&s", &id);
  g_variant_lookup (spec, "vcpus", "u", &vcpus);
  g_variant_lookup (spec, "memory_mib", "u", &memory_mib);
  if (!check_id (id, error) || !check_owner (id, uid, FALSE, error))
    return 0;
  if (getpwuid_r (uid, &pw, buf, sizeof buf, &res) != 0 || res == NULL) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_NOT_AUTHORIZED, "uid %u has no passwd entry",
                 (guint)uid);
    return 0;
  }
  pid = jail_pid (id, uid);
  if (pid != 0) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_BUSY,
                 "jail %s already runs Firecracker (pid %u)", id, pid);
    return 0;
  }
  if (!open_spec_files (spec, uid, fds, error))
    goto out;

  dir = jail_dir (id);
  root = g_build_filename (dir, "root", NULL);
  if (g_mkdir_with_parents (dir, 0755) < 0) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "cannot create %s: %s", dir,
                 g_strerror (errno));
    goto out;
  }
  /* The jail directory (not its root) is root's alone: the owner record
   * lives there, and the root is rebuilt inside it. */
  dir_fd = open (dir, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (dir_fd < 0 || fstat (dir_fd, &st) < 0 || st.st_uid != 0 || (st.st_mode & 022) != 0) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED,
                 "%s is not a directory only root can write to", dir);
    goto out;
  }
  /* The owner first: from here on the jail is this uid's. */
  owner_path = g_build_filename (dir, OWNER_FILE, NULL);
  owner_text = g_strdup_printf ("%u\n", (guint)uid);
  if (!g_file_set_contents (owner_path, owner_text, -1, &local)) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "cannot record the owner: %s",
                 local->message);
    goto out;
  }
  memory_path = g_build_filename (dir, MEMORY_FILE, NULL);
  memory_text = g_strdup_printf ("%u\n", memory_mib);
  if (!g_file_set_contents (memory_path, memory_text, -1, &local)) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "cannot record the memory size: %s",
                 local->message);
    goto out;
  }
  /* A fresh root also clears a relaunch's stale pidfile, socket and
   * device nodes, which the jailer refuses to find (O_EXCL, mknod). */
  root_fd = rebuild_root (id, dir_fd, dir, error);
  if (root_fd < 0)
    goto out;
  for (guint i = 0; i < N_SPEC_FILES; i++) {
    /* The state's two files (the last two) read-only: see place_file(). */
    if (fds[i] >= 0 && !place_file (fds[i], root_fd, root, spec_files[i][1], i >= 3, error))
      goto out;
  }

  uid_s = g_strdup_printf ("%u", (guint)uid);
  gid_s = g_strdup_printf ("%u", (guint)pw.pw_gid);
  mem_s = g_strdup_printf ("memory.max=%" G_GUINT64_FORMAT,
                           ((guint64)memory_mib + VMM_OVERHEAD_MIB) * 1024 * 1024);
  cpu_s = g_strdup_printf ("cpu.max=%u 100000", MAX (vcpus, 1u) * 100000);
  {
    const char *argv[] = { cfg.jailer,
                           "--id",
                           id,
                           "--exec-file",
                           cfg.firecracker,
                           "--uid",
                           uid_s,
                           "--gid",
                           gid_s,
                           "--chroot-base-dir",
                           cfg.chroot_base,
                           "--cgroup-version",
                           "2",
                           "--cgroup",
                           mem_s,
                           "--cgroup",
                           cpu_s,
                           "--daemonize",
                           "--",
                           "--api-sock",
                           JAIL_API_SOCKET,
                           NULL };

    if (!g_spawn_async (NULL, (char **)argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD, NULL, NULL,
                        &jailer_pid, &local)) {
      g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "cannot run the jailer %s: %s",
                   cfg.jailer, local->message);
      goto out;
    }
  }

  /* With --daemonize the jailer forks twice and its first process exits
   * (0, or non-zero on a failure before the forks); the VMM is the
   * grandchild and is known only by the pidfile, once it names a process
   * that passes jail_vmm()'s checks. */
  deadline = g_get_monotonic_time () + LAUNCH_WAIT_MS * 1000;
  while ((found = jail_pid (id, uid)) == 0) {
    if (!jailer_done) {
      int status = 0;
      pid_t r = waitpid (jailer_pid, &status, WNOHANG);

      if (r == jailer_pid) {
        jailer_done = TRUE;
        g_spawn_close_pid (jailer_pid);
        if (!WIFEXITED (status) || WEXITSTATUS (status) != 0) {
          g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED,
                       "the jailer for %s failed (status %d; see the helper's log)", id, status);
          goto out;
        }
      }
    }
    if (g_get_monotonic_time () > deadline) {
      if (!jailer_done) {
        kill (jailer_pid, SIGKILL);
        waitpid (jailer_pid, NULL, 0);
        g_spawn_close_pid (jailer_pid);
        jailer_done = TRUE;
      }
      g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED,
                   "Firecracker did not start in jail %s within %u ms", id, LAUNCH_WAIT_MS);
      goto out;
    }
    g_usleep (10 * 1000);
  }
  /* A jailer that does not fork (older ones, or without --daemonize)
   * becomes Firecracker itself: reap it whenever it ends. */
  if (!jailer_done)
    g_child_watch_add (jailer_pid, on_jailer_exit, NULL);
out:
  close_fds (fds);
  if (root_fd >= 0)
    close (root_fd);
  if (dir_fd >= 0)
    close (dir_fd);
  return found;
}

guint
banger_jail_launch (GVariant *spec, uid_t uid, GError **error)
{
  guint pid;

  ensure_config ();
  g_mutex_lock (&jail_lock);
  pid = launch_locked (spec, uid, error);
  g_mutex_unlock (&jail_lock);
  return pid;
}

gboolean
banger_jail_kill (const char *id, int signum, uid_t uid, GError **error)
{
  guint pid = 0;
  int pidfd;

  ensure_config ();
  if (!check_id (id, error) || !check_owner (id, uid, TRUE, error))
    return FALSE;
  pidfd = jail_vmm (id, uid, &pid);
  if (pidfd < 0) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_NOT_FOUND, "jail %s has no running Firecracker",
                 id);
    return FALSE;
  }
  /* Through the pidfd checked by jail_vmm(): a pid recycled since then
   * gets nothing (ESRCH). */
  if (syscall (SYS_pidfd_send_signal, pidfd, signum, NULL, 0) < 0) {
    int saved = errno;

    close (pidfd);
    g_set_error (error, BANGER_ERROR,
                 saved == ESRCH ? BANGER_ERROR_NOT_FOUND : BANGER_ERROR_FAILED,
                 "cannot signal pid %u: %s", pid, g_strerror (saved));
    return FALSE;
  }
  close (pidfd);
  return TRUE;
}

/* ---- TakeJailState --------------------------------------------------------- */

/* The files a jailed Firecracker's snapshot is written to (chroot-relative
 * /run/<name>, bangerd's PUT /snapshot/create), in the order they are
 * handed out: the memory first, the state last, so a state file in the
 * destination means a complete state (as for a direct VM). */
static const char *const state_files[] = { "memory", "vmstate" };

/* @dest_dir (shape-checked by the authorizer) as an O_PATH descriptor if
 * it is a directory @uid owns strictly below one of @uid's banger
 * directories, reached without a symlink. */
static int
open_user_dir (const char *dest_dir, uid_t uid, GError **error)
{
  g_auto (GStrv) dirs = banger_user_paths_expand ((const char *const *)cfg.user_dirs, uid, error);
  const char *rest = NULL;
  struct stat st;
  int base_fd;

  if (dirs == NULL)
    return -1;
  base_fd = banger_user_paths_open_root ((const char *const *)dirs, dest_dir, uid, &rest);
  if (base_fd >= 0) {
    int fd = banger_open_no_symlinks (base_fd, rest, O_PATH | O_DIRECTORY);

    close (base_fd);
    if (fd < 0) {
      g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
                   "dest_dir %s: %s (symlinks are not followed)", dest_dir, g_strerror (errno));
      return -1;
    }
    if (fstat (fd, &st) < 0 || !S_ISDIR (st.st_mode) || st.st_uid != uid) {
      close (fd);
      g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
                   "dest_dir %s is not a directory owned by uid %u", dest_dir, (guint)uid);
      return -1;
    }
    return fd;
  }
  g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
               "dest_dir %s is not under uid %u’s banger directories", dest_dir, (guint)uid);
  return -1;
}

/* The jail's recorded guest memory in bytes (0: none recorded). */
static guint64
jail_memory_bytes (const char *id)
{
  g_autofree char *dir = jail_dir (id);
  g_autofree char *path = g_build_filename (dir, MEMORY_FILE, NULL);
  g_autofree char *text = NULL;
  guint64 mib;

  if (!g_file_get_contents (path, &text, NULL, NULL)
      || !g_ascii_string_to_unsigned (g_strstrip (text), 10, 1, 1024 * 1024, &mib, NULL))
    return 0;
  return mib * 1024 * 1024;
}

/* Opens the jail's /run/@name, which the jail's user controls, as O_PATH:
 * reached without a symlink, a regular file of @uid's with one link (a
 * hard link planted there would hand out, or let the jail keep a name
 * for, a file that lives elsewhere) and at most @max bytes. */
static int
open_jail_state_file (int run_fd, const char *id, const char *name, uid_t uid, guint64 max,
                      struct stat *st, GError **error)
{
  int pfd = banger_open_no_symlinks (run_fd, name, O_PATH);

  if (pfd < 0) {
    int saved = errno;
    g_set_error (error, BANGER_ERROR,
                 saved == ENOENT ? BANGER_ERROR_NOT_FOUND : BANGER_ERROR_INVALID_ARGUMENT,
                 "jail %s: /run/%s: %s (symlinks are not followed)", id, name, g_strerror (saved));
    return -1;
  }
  if (fstat (pfd, st) < 0) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "jail %s: /run/%s: %s", id, name,
                 g_strerror (errno));
  } else if (S_ISLNK (st->st_mode)) {
    /* (O_PATH|O_NOFOLLOW opens a trailing symlink itself.) */
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
                 "jail %s: /run/%s is a symlink (symlinks are not followed)", id, name);
  } else if (!S_ISREG (st->st_mode)) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
                 "jail %s: /run/%s is not a regular file", id, name);
  } else if (st->st_uid != uid) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
                 "jail %s: /run/%s is owned by uid %u, not by uid %u", id, name, (guint)st->st_uid,
                 (guint)uid);
  } else if (st->st_nlink != 1) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
                 "jail %s: /run/%s has %u links (a saved state has one)", id, name,
                 (guint)st->st_nlink);
  } else if ((guint64)st->st_size > max) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
                 "jail %s: /run/%s holds %" G_GUINT64_FORMAT
                 " bytes, more than the %" G_GUINT64_FORMAT " a saved %s of this VM can",
                 id, name, (guint64)st->st_size, max, name);
  } else {
    return pfd;
  }
  close (pfd);
  return -1;
}

/* Copies @len bytes of the checked file @pfd into the new file @name in
 * @dest_fd, owned by @uid:@gid (another filesystem: no hard link). Never
 * more than @len: a file the jail grows meanwhile is refused. */
static gboolean
copy_state_file (int pfd, int dest_fd, const char *name, guint64 len, uid_t uid, gid_t gid,
                 GError **error)
{
  int src = banger_reopen_path_fd (pfd, O_RDONLY);
  int dst = -1;
  guint64 done = 0;
  gboolean ok = FALSE;
  gboolean use_sendfile = FALSE;
  char extra;

  if (src < 0) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "cannot open the jail's %s: %s", name,
                 g_strerror (errno));
    return FALSE;
  }
  /* O_EXCL|O_NOFOLLOW in the checked directory: nothing of the user's is
   * overwritten, no link is followed. */
  dst = openat (dest_fd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (dst < 0) {
    g_set_error (error, BANGER_ERROR, errno == EEXIST ? BANGER_ERROR_EXISTS : BANGER_ERROR_FAILED,
                 "cannot create %s in dest_dir: %s", name, g_strerror (errno));
    close (src);
    return FALSE;
  }
  if (fchown (dst, uid, gid) < 0) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "cannot hand %s to uid %u: %s", name,
                 (guint)uid, g_strerror (errno));
    goto out;
  }
  while (done < len) {
    gsize chunk = MIN (len - done, (guint64)1 << 30);
    ssize_t n;

    /* copy_file_range shares blocks where it can, but not between
     * filesystems of different types (EXDEV): sendfile copies anywhere. */
    if (use_sendfile) {
      n = sendfile (dst, src, NULL, chunk);
    } else {
      n = copy_file_range (src, NULL, dst, NULL, chunk, 0);
      if (n < 0 && done == 0
          && (errno == EXDEV || errno == EINVAL || errno == EOPNOTSUPP || errno == ENOSYS)) {
        use_sendfile = TRUE;
        continue;
      }
    }
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "copying %s out of the jail: %s", name,
                   n < 0 ? g_strerror (errno) : "the file shrank");
      goto out;
    }
    done += (guint64)n;
  }
  if (pread (src, &extra, 1, (off_t)len) != 0) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
                 "the jail's %s grew while it was copied", name);
    goto out;
  }
  if (fsync (dst) < 0) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "writing %s: %s", name,
                 g_strerror (errno));
    goto out;
  }
  ok = TRUE;
out:
  close (src);
  close (dst);
  if (!ok)
    unlinkat (dest_fd, name, 0);
  return ok;
}

/* Removes @name from @dir_fd if it is still the inode @st (the jail's user
 * may have replaced it; whatever they put there is theirs). */
static void
unlink_if_same (int dir_fd, const char *name, const struct stat *st)
{
  struct stat now;

  if (fstatat (dir_fd, name, &now, AT_SYMLINK_NOFOLLOW) == 0 && now.st_dev == st->st_dev
      && now.st_ino == st->st_ino)
    unlinkat (dir_fd, name, 0);
}

static gboolean
take_state_locked (const char *id, const char *dest_dir, uid_t uid, GError **error)
{
  struct passwd pw, *res = NULL;
  char buf[4096];
  struct stat st[G_N_ELEMENTS (state_files)];
  gboolean placed[G_N_ELEMENTS (state_files)] = { FALSE };
  int pfds[G_N_ELEMENTS (state_files)] = { -1, -1 };
  guint64 memory_max = jail_memory_bytes (id);
  int root_fd = -1, run_fd = -1, dest_fd = -1;
  gboolean ok = FALSE;

  if (!check_id (id, error) || !check_owner (id, uid, TRUE, error))
    return FALSE;
  if (getpwuid_r (uid, &pw, buf, sizeof buf, &res) != 0 || res == NULL) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_NOT_AUTHORIZED, "uid %u has no passwd entry",
                 (guint)uid);
    return FALSE;
  }
  if (memory_max == 0) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_BAD_STATE,
                 "jail %s records no memory size (launched by an older helper)", id);
    return FALSE;
  }
  dest_fd = open_user_dir (dest_dir, uid, error);
  if (dest_fd < 0)
    return FALSE;
  /* From the jail's root on, everything is the jail user's: nothing is
   * followed, and only what passes the checks is touched. */
  root_fd = open_jail_root (id);
  run_fd = root_fd < 0 ? -1 : banger_open_no_symlinks (root_fd, "run", O_PATH | O_DIRECTORY);
  if (run_fd < 0) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
                 "jail %s has no /run directory (symlinks are not followed)", id);
    goto out;
  }
  for (guint i = 0; i < G_N_ELEMENTS (state_files); i++) {
    guint64 max = g_str_equal (state_files[i], "memory") ? memory_max : STATE_MAX_BYTES;

    pfds[i] = open_jail_state_file (run_fd, id, state_files[i], uid, max, &st[i], error);
    if (pfds[i] < 0)
      goto out;
  }
  for (guint i = 0; i < G_N_ELEMENTS (state_files); i++) {
    /* A hard link where both are on one filesystem (no data copied: the
     * memory file is the guest's whole RAM), from the checked descriptor
     * to a new name in the checked directory. */
    if (linkat (pfds[i], "", dest_fd, state_files[i], AT_EMPTY_PATH) == 0) {
      placed[i] = TRUE;
      continue;
    }
    if (errno == EEXIST) {
      g_set_error (error, BANGER_ERROR, BANGER_ERROR_EXISTS,
                   "%s/%s exists: a saved state is never written over", dest_dir, state_files[i]);
      goto out;
    }
    if (errno != EXDEV) {
      g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "cannot link %s into %s: %s",
                   state_files[i], dest_dir, g_strerror (errno));
      goto out;
    }
    if (!copy_state_file (pfds[i], dest_fd, state_files[i], (guint64)st[i].st_size, uid, pw.pw_gid,
                          error)) {
      g_prefix_error (error, "%s: ", dest_dir);
      goto out;
    }
    placed[i] = TRUE;
  }
  /* Handed out: the jail keeps no name for them. */
  for (guint i = 0; i < G_N_ELEMENTS (state_files); i++)
    unlink_if_same (run_fd, state_files[i], &st[i]);
  ok = TRUE;
out:
  for (guint i = 0; i < G_N_ELEMENTS (state_files); i++) {
    if (!ok && placed[i])
      unlinkat (dest_fd, state_files[i], 0);
    if (pfds[i] >= 0)
      close (pfds[i]);
  }
  if (run_fd >= 0)
    close (run_fd);
  if (root_fd >= 0)
    close (root_fd);
  close (dest_fd);
  return ok;
}

gboolean
banger_jail_take_state (const char *id, const char *dest_dir, uid_t uid, GError **error)
{
  gboolean ok;

  ensure_config ();
  g_mutex_lock (&jail_lock);
  ok = take_state_locked (id, dest_dir, uid, error);
  g_mutex_unlock (&jail_lock);
  return ok;
}

/* ---- RemoveJail ------------------------------------------------------------ */

/* Deeper than any jail banger makes; bounds the recursion through the
 * user-owned /run of the jail. */

/* Mount points strictly below @dir in this mount namespace, deepest first
 * (mountinfo escapes blanks and backslashes as \ooo, which g_strcompress
 * undoes). */
static GPtrArray *
mounts_under (const char *dir, GError **error)
{
  g_autofree char *text = NULL;
  g_auto (GStrv) lines = NULL;
  g_autoptr (GPtrArray) out = g_ptr_array_new_with_free_func (g_free);
  gsize dlen = strlen (dir);

  if (!g_file_get_contents ("/proc/self/mountinfo", &text, NULL, error))
    return NULL;
  lines = g_strsplit (text, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++) {
    g_auto (GStrv) fields = g_strsplit (lines[i], " ", 6);
    g_autofree char *mp = NULL;

    if (g_strv_length (fields) < 5)
      continue;
    mp = g_strcompress (fields[4]);
    if (strncmp (mp, dir, dlen) == 0 && mp[dlen] == '/')
      g_ptr_array_add (out, g_steal_pointer (&mp));
  }
  /* Longest path first: a mount inside another goes before it. */
  for (guint i = 1; i < out->len; i++) {
    for (guint j = i; j > 0 && strlen (out->pdata[j]) > strlen (out->pdata[j - 1]); j--) {
      gpointer tmp = out->pdata[j];
      out->pdata[j] = out->pdata[j - 1];
      out->pdata[j - 1] = tmp;
    }
  }
  return g_steal_pointer (&out);
}

/* Unmounts everything below the jail (LaunchJailed bind-mounts the user's
 * kernel and disk where they are on another filesystem): removing a file
 * through a bind mount would act on the user's own file. Refuses when
 * anything stays mounted. */
static gboolean
unmount_all (const char *id, const char *dir, GError **error)
{
  g_autoptr (GPtrArray) mounts = mounts_under (dir, error);

  if (mounts == NULL)
    return FALSE;
  for (guint i = 0; i < mounts->len; i++) {
    const char *mp = mounts->pdata[i];

    /* NOFOLLOW: the last component is never a symlink's target. A busy
     * mount (nothing of the jail runs, so unlikely) is detached: it is no
     * longer reachable from the jail, which is what matters here. */
    if (umount2 (mp, UMOUNT_NOFOLLOW) < 0 && errno == EBUSY)
      umount2 (mp, MNT_DETACH | UMOUNT_NOFOLLOW);
  }
  g_ptr_array_unref (g_steal_pointer (&mounts));
  mounts = mounts_under (dir, error);
  if (mounts == NULL)
    return FALSE;
  if (mounts->len > 0) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_BUSY,
                 "jail %s is kept: %s is still mounted and cannot be unmounted", id,
                 (const char *)mounts->pdata[0]);
    return FALSE;
  }
  return TRUE;
}

static gboolean
remove_locked (const char *id, uid_t uid, GError **error)
{
  g_autofree char *dir = jail_dir (id);
  g_autofree char *parent = g_path_get_dirname (dir);
  struct stat st;
  gboolean ok = FALSE;
  int parent_fd, dir_fd = -1;
  guint pid;

  if (!check_owner (id, uid, FALSE, error))
    return FALSE;
  parent_fd = open (parent, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (parent_fd < 0 && errno == ENOENT)
    return TRUE; /* no jail was ever made here */
  if (parent_fd < 0) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "cannot open %s: %s", parent,
                 g_strerror (errno));
    return FALSE;
  }
  if (fstatat (parent_fd, id, &st, AT_SYMLINK_NOFOLLOW) < 0) {
    ok = errno == ENOENT; /* already gone: what the caller wanted */
    if (!ok)
      g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "cannot inspect %s: %s", dir,
                   g_strerror (errno));
    goto out;
  }
  if (!S_ISDIR (st.st_mode)) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "%s is not a directory", dir);
    goto out;
  }
  pid = jail_pid (id, uid);
  if (pid != 0) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_BAD_STATE,
                 "jail %s still runs Firecracker (pid %u): stop it first", id, pid);
    goto out;
  }
  if (!unmount_all (id, dir, error))
    goto out;
  dir_fd = openat (parent_fd, id, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (dir_fd < 0) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "cannot open %s: %s", dir,
                 g_strerror (errno));
    goto out;
  }
  /* The owner record goes last: a removal that stops half-way leaves a
   * jail its owner can still remove. The walk never follows what the
   * jail's user may have planted, nor enters what is still mounted. */
  if (!banger_remove_tree_contents (dir_fd, dir, OWNER_FILE, error))
    goto out;
  if (unlinkat (dir_fd, OWNER_FILE, 0) < 0 && errno != ENOENT) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "cannot remove %s/%s: %s", dir,
                 OWNER_FILE, g_strerror (errno));
    goto out;
  }
  if (unlinkat (parent_fd, id, AT_REMOVEDIR) < 0 && errno != ENOENT) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "cannot remove %s: %s", dir,
                 g_strerror (errno));
    goto out;
  }
  ok = TRUE;
out:
  if (dir_fd >= 0)
    close (dir_fd);
  close (parent_fd);
  return ok;
}

gboolean
banger_jail_remove (const char *id, uid_t uid, GError **error)
{
  gboolean ok;

  ensure_config ();
  if (!check_id (id, error))
    return FALSE;
  g_mutex_lock (&jail_lock);
  ok = remove_locked (id, uid, error);
  g_mutex_unlock (&jail_lock);
  return ok;
}
