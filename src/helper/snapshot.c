/* dm-snapshots of a raw image for one VM: a read-only loop device over the
 * origin, a read-write loop device over a sparse copy-on-write file, and a
 * "snapshot" target over both. The loop devices are attached here, with
 * LOOP_CONFIGURE on a free device from /dev/loop-control, from the very
 * descriptors that were checked: losetup takes a path (and canonicalises
 * and reopens it), so a caller could swap the file between the check and
 * the attach and get any file or block device, the COW read-write.
 * dmsetup is still run by argv: it is the maintained interface to the
 * device-mapper ioctls (the table parser, udev cookies), takes only device
 * numbers' nodes the helper just made, and a host's admin can point the
 * helper at another in [storage]. Every step made is undone if a later one
 * fails. */

#include "snapshot.h"

#include <errno.h>
#include <string.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <linux/loop.h>
#include <linux/openat2.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "banger-error.h"
#include "jail.h"
#include "validate.h"

#define DEFAULT_DMSETUP    "dmsetup"
#define DEFAULT_LOOP_CONTROL "/dev/loop-control"
#define DEFAULT_DM_CONTROL "/dev/mapper/control"
#define DEFAULT_DEV_DIR    "/dev"
#define DEFAULT_STATE_DIR  "/run/banger/snapshots"
#define COW_NAME           "snapshot.cow"
/* Non-persistent ("N") exceptions, 8-sector (4 KiB) chunks: the disk is
 * disposable and lives no longer than the loop devices under it, so there
 * is no on-disk metadata to keep; 4 KiB matches the guest's block size. */
#define SNAPSHOT_CHUNK_SECTORS 8
/* The COW file holds every chunk the guest writes, at most the whole
 * origin; a little more leaves room for the target's own bookkeeping. It is
 * sparse, so only what is written takes space. */
#define COW_SLACK_BYTES (4 * 1024 * 1024)

static struct {
  char *dmsetup;
  char *loop_control; /* its directory holds the loopN nodes */
  char *dm_control;
  char *dev_dir;
  char *state_dir;
} cfg;

/* One snapshot is made or removed at a time: the loop and dm namespaces
 * are host-wide, and a half-made snapshot must not be seen by a remove. */
static GMutex snapshot_lock;

typedef struct {
  guint uid;
  char *origin_loop;
  char *cow_loop;
  char *device;
} Record;

static void
record_free (Record *r)
{
  if (r == NULL)
    return;
  g_free (r->origin_loop);
  g_free (r->cow_loop);
  g_free (r->device);
  g_free (r);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC (Record, record_free)

void
banger_snapshot_config_clear (void)
{
  g_clear_pointer (&cfg.dmsetup, g_free);
  g_clear_pointer (&cfg.loop_control, g_free);
  g_clear_pointer (&cfg.dm_control, g_free);
  g_clear_pointer (&cfg.dev_dir, g_free);
  g_clear_pointer (&cfg.state_dir, g_free);
}

static void
set_default (char **value, const char *def)
{
  if (*value == NULL)
    *value = g_strdup (def);
}

gboolean
banger_snapshot_config_load (const char *path, GError **error)
{
  g_autoptr (GKeyFile) kf = g_key_file_new ();

  banger_snapshot_config_clear ();
  if (g_key_file_load_from_file (kf, path, G_KEY_FILE_NONE, NULL)) {
    cfg.dmsetup = g_key_file_get_string (kf, "storage", "dmsetup", NULL);
    cfg.loop_control = g_key_file_get_string (kf, "storage", "loop_control", NULL);
    cfg.dm_control = g_key_file_get_string (kf, "storage", "dm_control", NULL);
    cfg.dev_dir = g_key_file_get_string (kf, "storage", "dev_dir", NULL);
    cfg.state_dir = g_key_file_get_string (kf, "storage", "state_dir", NULL);
  }
  set_default (&cfg.dmsetup, DEFAULT_DMSETUP);
  set_default (&cfg.loop_control, DEFAULT_LOOP_CONTROL);
  set_default (&cfg.dm_control, DEFAULT_DM_CONTROL);
  set_default (&cfg.dev_dir, DEFAULT_DEV_DIR);
  set_default (&cfg.state_dir, DEFAULT_STATE_DIR);
  if (!g_path_is_absolute (cfg.dm_control) || !g_path_is_absolute (cfg.dev_dir)
      || !g_path_is_absolute (cfg.state_dir) || !g_path_is_absolute (cfg.loop_control)) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
                 "%s: [storage] dm_control, loop_control, dev_dir and state_dir must be absolute "
                 "paths",
                 path);
    return FALSE;
  }
  return TRUE;
}

static void
ensure_config (void)
{
  if (cfg.dmsetup == NULL)
    banger_snapshot_config_load ("/nonexistent", NULL);
}

/* ---- owner records ------------------------------------------------------- */

static char *
record_path (const char *vm_id)
{
  return g_build_filename (cfg.state_dir, vm_id, NULL);
}

/* The snapshot's record, or NULL (no such snapshot, or not one of ours). */
static Record *
record_load (const char *vm_id)
{
  g_autofree char *path = record_path (vm_id);
  g_autoptr (GKeyFile) kf = g_key_file_new ();
  g_autoptr (Record) r = g_new0 (Record, 1);
  guint64 uid;
  g_autofree char *uid_text = NULL;

  if (!g_key_file_load_from_file (kf, path, G_KEY_FILE_NONE, NULL))
    return NULL;
  uid_text = g_key_file_get_string (kf, "snapshot", "uid", NULL);
  if (uid_text == NULL || !g_ascii_string_to_unsigned (uid_text, 10, 0, G_MAXUINT32, &uid, NULL))
    return NULL;
  r->uid = (guint)uid;
  r->origin_loop = g_key_file_get_string (kf, "snapshot", "origin_loop", NULL);
  r->cow_loop = g_key_file_get_string (kf, "snapshot", "cow_loop", NULL);
  r->device = g_key_file_get_string (kf, "snapshot", "device", NULL);
  return g_steal_pointer (&r);
}

static gboolean
record_save (const char *vm_id, const Record *r, GError **error)
{
  g_autofree char *path = record_path (vm_id);
  g_autoptr (GKeyFile) kf = g_key_file_new ();
  g_autofree char *data = NULL;

  if (g_mkdir_with_parents (cfg.state_dir, 0700) < 0) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "cannot create %s: %s", cfg.state_dir,
                 g_strerror (errno));
    return FALSE;
  }
  g_key_file_set_uint64 (kf, "snapshot", "uid", r->uid);
  g_key_file_set_string (kf, "snapshot", "origin_loop", r->origin_loop);
  g_key_file_set_string (kf, "snapshot", "cow_loop", r->cow_loop);
  g_key_file_set_string (kf, "snapshot", "device", r->device);
  data = g_key_file_to_data (kf, NULL, NULL);
  if (!g_file_set_contents_full (path, data, -1, G_FILE_SET_CONTENTS_CONSISTENT, 0600, error)) {
    g_prefix_error (error, "cannot record the snapshot’s owner: ");
    return FALSE;
  }
  return TRUE;
}

static gboolean
check_owner (const char *vm_id, uid_t uid, gboolean must_exist, GError **error)
{
  g_autoptr (Record) r = record_load (vm_id);
  g_autofree char *path = record_path (vm_id);

  if (r == NULL && g_file_test (path, G_FILE_TEST_EXISTS)) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED,
                 "the record %s of snapshot %s is unreadable", path, vm_id);
    return FALSE;
  }
  if (r == NULL) {
    if (must_exist) {
      g_set_error (error, BANGER_ERROR, BANGER_ERROR_NOT_FOUND, "no snapshot for VM %s", vm_id);
      return FALSE;
    }
    return TRUE;
  }
  if (r->uid != (guint)uid) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_NOT_AUTHORIZED,
                 "the snapshot for VM %s belongs to uid %u, not to uid %u", vm_id, r->uid,
                 (guint)uid);
    return FALSE;
  }
  if (!must_exist) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_EXISTS, "VM %s already has a snapshot (%s)",
                 vm_id, r->device);
    return FALSE;
  }
  return TRUE;
}

gboolean
banger_snapshot_check_caller (const char *method, GVariant *parameters, uid_t uid, GError **error)
{
  ensure_config ();
  if (g_strcmp0 (method, "CreateSnapshot") == 0) {
    const char *vm_id = NULL, *origin = NULL;
    int fd;

    g_variant_get_child (parameters, 0, "&s", &vm_id);
    g_variant_get_child (parameters, 1, "&s", &origin);
    if (!banger_validate_vm_id (vm_id, error))
      return FALSE;
    fd = banger_jail_open_user_file ("origin", origin, uid, NULL, error);
    if (fd < 0)
      return FALSE;
    close (fd);
    return check_owner (vm_id, uid, FALSE, error);
  }
  if (g_strcmp0 (method, "RemoveSnapshot") == 0) {
    const char *vm_id = NULL;

    g_variant_get_child (parameters, 0, "&s", &vm_id);
    return banger_validate_vm_id (vm_id, error) && check_owner (vm_id, uid, TRUE, error);
  }
  return TRUE;
}

/* ---- the tools ----------------------------------------------------------- */

/* Runs @argv and returns its stdout, stripped; a non-zero exit is an error
 * that carries the tool's stderr. */
static char *
run_tool (const char *const *argv, GError **error)
{
  g_autoptr (GSubprocess) proc = NULL;
  g_autofree char *out = NULL;
  g_autofree char *err = NULL;
  g_autofree char *cmd = g_strjoinv (" ", (char **)argv);

  g_debug ("running %s", cmd);
  proc = g_subprocess_newv (argv, G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE,
                            error);
  if (proc == NULL) {
    g_prefix_error (error, "cannot run %s: ", argv[0]);
    return NULL;
  }
  if (!g_subprocess_communicate_utf8 (proc, NULL, NULL, &out, &err, error)) {
    g_prefix_error (error, "%s: ", cmd);
    return NULL;
  }
  if (!g_subprocess_get_if_exited (proc) || g_subprocess_get_exit_status (proc) != 0) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "%s failed: %s", cmd,
                 err != NULL && *err != '\0' ? g_strstrip (err) : "(no message)");
    return NULL;
  }
  return g_strdup (out != NULL ? g_strstrip (out) : "");
}

/* Attaches the file open as @fd to a free loop device and returns the
 * device's path. LOOP_CTL_GET_FREE and LOOP_CONFIGURE are two steps, so
 * another attacher (losetup elsewhere on the host) can take the device in
 * between: LOOP_CONFIGURE then says EBUSY and the next free one is tried. */
static char *
loop_attach_fd (int fd, const char *name, gboolean read_only, GError **error)
{
  g_autofree char *dir = g_path_get_dirname (cfg.loop_control);
  int ctl = open (cfg.loop_control, O_RDWR | O_CLOEXEC);

  if (ctl < 0) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_UNSUPPORTED, "cannot open %s: %s",
                 cfg.loop_control, g_strerror (errno));
    return NULL;
  }
  for (guint attempt = 0; attempt < 16; attempt++) {
    struct loop_config lc = { 0 };
    g_autofree char *dev = NULL;
    int n = ioctl (ctl, LOOP_CTL_GET_FREE);
    int lfd;

    if (n < 0) {
      g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "no free loop device: %s",
                   g_strerror (errno));
      break;
    }
    dev = g_strdup_printf ("%s/loop%d", dir, n);
    lfd = open (dev, (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC);
    if (lfd < 0) {
      g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "cannot open %s: %s", dev,
                   g_strerror (errno));
      break;
    }
    lc.fd = (guint32)fd;
    lc.info.lo_flags = read_only ? LO_FLAGS_READ_ONLY : 0;
    /* Shown by losetup --list; informational only. */
    g_strlcpy ((char *)lc.info.lo_file_name, name, sizeof lc.info.lo_file_name);
    if (ioctl (lfd, LOOP_CONFIGURE, &lc) == 0) {
      close (lfd);
      close (ctl);
      g_debug ("attached %s to %s%s", name, dev, read_only ? " (read-only)" : "");
      return g_steal_pointer (&dev);
    }
    {
      int saved = errno;

      close (lfd);
      if (saved == EBUSY)
        continue;
      g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED,
                   "cannot attach %s to %s: %s", name, dev, g_strerror (saved));
      break;
    }
  }
  if (error != NULL && *error == NULL)
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_BUSY,
                 "every free loop device was taken by someone else meanwhile");
  close (ctl);
  return NULL;
}

static gboolean
loop_detach (const char *dev, GError **error)
{
  int lfd = open (dev, O_RDONLY | O_CLOEXEC);

  if (lfd < 0 || ioctl (lfd, LOOP_CLR_FD, 0) < 0) {
    g_set_error (error, BANGER_ERROR, errno == EBUSY ? BANGER_ERROR_BUSY : BANGER_ERROR_FAILED,
                 "cannot detach %s: %s", dev, g_strerror (errno));
    if (lfd >= 0)
      close (lfd);
    return FALSE;
  }
  close (lfd);
  return TRUE;
}

static gboolean
dm_remove (const char *name, GError **error)
{
  const char *argv[] = { cfg.dmsetup, "remove", name, NULL };
  g_autofree char *out = run_tool (argv, error);

  return out != NULL;
}

/* The dm-N node behind /dev/mapper/<name>: udev makes the mapper entry a
 * symlink to ../dm-N; without udev dmsetup makes it a node whose minor is
 * N. */
static char *
dm_node (const char *mapper_path)
{
  g_autofree char *target = g_file_read_link (mapper_path, NULL);
  struct stat st;

  if (target != NULL) {
    g_autofree char *base = g_path_get_basename (target);
    if (!g_str_has_prefix (base, "dm-"))
      return NULL;
    return g_build_filename (cfg.dev_dir, base, NULL);
  }
  if (stat (mapper_path, &st) == 0 && S_ISBLK (st.st_mode)) {
    g_autofree char *name = g_strdup_printf ("dm-%u", minor (st.st_rdev));
    return g_build_filename (cfg.dev_dir, name, NULL);
  }
  return NULL;
}

static gboolean
chown_device (const char *mapper_path, uid_t uid, GError **error)
{
  g_autofree char *node = dm_node (mapper_path);

  /* lchown for the mapper entry: if udev made it a symlink, the node
   * behind it is chowned on its own below. */
  if (lchown (mapper_path, uid, (gid_t)-1) < 0
      || (node != NULL && chown (node, uid, (gid_t)-1) < 0)) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "cannot give %s to uid %u: %s",
                 mapper_path, (guint)uid, g_strerror (errno));
    return FALSE;
  }
  return TRUE;
}

/* ---- the copy-on-write file ---------------------------------------------- */

static int
openat_no_symlinks (int dirfd, const char *path, int flags, mode_t mode)
{
  struct open_how how = {
    .flags = (guint64)(flags | O_CLOEXEC | O_NOFOLLOW),
    .mode = (flags & O_CREAT) ? mode : 0,
    .resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_BENEATH,
  };
  return (int)syscall (SYS_openat2, dirfd, path, &how, sizeof how);
}

/* A directory @name under @parent_fd, made for @uid if missing; it must be
 * @uid's. */
static int
user_subdir (int parent_fd, const char *name, uid_t uid, GError **error)
{
  struct stat st;
  int fd;

  if (mkdirat (parent_fd, name, 0755) == 0) {
    if (fchownat (parent_fd, name, uid, (gid_t)-1, AT_SYMLINK_NOFOLLOW) < 0) {
      g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "cannot give %s to uid %u: %s", name,
                   (guint)uid, g_strerror (errno));
      return -1;
    }
  }
  fd = openat_no_symlinks (parent_fd, name, O_PATH | O_DIRECTORY, 0);
  if (fd < 0 || fstat (fd, &st) < 0 || st.st_uid != uid) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
                 "%s is not a directory of uid %u (symlinks are not followed)", name, (guint)uid);
    if (fd >= 0)
      close (fd);
    return -1;
  }
  return fd;
}

/* Makes <user dir>/vms/<vm_id>/snapshot.cow, sparse, @size bytes, owned by
 * @uid, and returns it open read-write: the loop device is attached from
 * this descriptor, never from the name, which the caller can swap. An old
 * one (a removed snapshot's, which the caller kept) is emptied: a
 * non-persistent COW store holds nothing worth keeping. *@created says
 * whether the file is new; *@vm_fd_out is its directory, for the undo. */
static int
make_cow (int user_dir_fd, const char *vm_id, uid_t uid, goffset size, gboolean *created,
          int *vm_fd_out, GError **error)
{
  int vms_fd = -1, vm_fd = -1, fd = -1;
  struct stat st;
  gboolean ok = FALSE;

  *created = FALSE;
  *vm_fd_out = -1;
  vms_fd = user_subdir (user_dir_fd, "vms", uid, error);
  if (vms_fd < 0)
    goto out;
  vm_fd = user_subdir (vms_fd, vm_id, uid, error);
  if (vm_fd < 0)
    goto out;
  fd = openat_no_symlinks (vm_fd, COW_NAME, O_RDWR | O_CREAT | O_EXCL, 0600);
  if (fd >= 0)
    *created = TRUE;
  else if (errno == EEXIST)
    fd = openat_no_symlinks (vm_fd, COW_NAME, O_RDWR | O_NONBLOCK, 0);
  if (fd < 0 || fstat (fd, &st) < 0) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
                 "cannot create the copy-on-write file vms/%s/%s: %s", vm_id, COW_NAME,
                 g_strerror (errno));
    goto out;
  }
  /* An existing file must be the caller's own and nothing else's name: a
   * hard link to someone else's file would otherwise be emptied by root. */
  if (!*created && (!S_ISREG (st.st_mode) || st.st_uid != uid || st.st_nlink != 1)) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
                 "vms/%s/%s exists and is not a regular file of uid %u with one link", vm_id,
                 COW_NAME, (guint)uid);
    goto out;
  }
  if (fchown (fd, uid, (gid_t)-1) < 0 || ftruncate (fd, 0) < 0 || ftruncate (fd, size) < 0) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED,
                 "cannot prepare the copy-on-write file: %s", g_strerror (errno));
    goto out;
  }
  ok = TRUE;
out:
  if (!ok && *created)
    unlinkat (vm_fd, COW_NAME, 0);
  if (!ok) {
    *created = FALSE;
    if (fd >= 0)
      close (fd);
    fd = -1;
    if (vm_fd >= 0)
      close (vm_fd);
  } else {
    *vm_fd_out = vm_fd;
  }
  if (vms_fd >= 0)
    close (vms_fd);
  return fd;
}

/* ---- create / remove ----------------------------------------------------- */

static gboolean
have_device_mapper (GError **error)
{
  if (g_file_test (cfg.dm_control, G_FILE_TEST_EXISTS))
    return TRUE;
  g_set_error (error, BANGER_ERROR, BANGER_ERROR_UNSUPPORTED,
               "device-mapper is not available on this host (no %s)", cfg.dm_control);
  return FALSE;
}

static void
undo (const char *dm_name, const char *origin_loop, const char *cow_loop, int cow_dir_fd)
{
  g_autoptr (GError) local = NULL;

  if (dm_name != NULL && !dm_remove (dm_name, &local)) {
    g_warning ("rollback: %s", local->message);
    g_clear_error (&local);
  }
  if (cow_loop != NULL && !loop_detach (cow_loop, &local)) {
    g_warning ("rollback: %s", local->message);
    g_clear_error (&local);
  }
  if (origin_loop != NULL && !loop_detach (origin_loop, &local)) {
    g_warning ("rollback: %s", local->message);
    g_clear_error (&local);
  }
  /* Only a COW file this call made; by name in the caller's own
   * directory, held open since. */
  if (cow_dir_fd >= 0)
    unlinkat (cow_dir_fd, COW_NAME, 0);
}

static char *
create_locked (const char *vm_id, const char *origin, uid_t uid, GError **error)
{
  g_autofree char *dm_name = g_strdup_printf ("banger-%s", vm_id);
  g_autofree char *device = NULL;
  g_autofree char *cow_name = NULL;
  g_autofree char *origin_loop = NULL;
  g_autofree char *cow_loop = NULL;
  g_autofree char *table = NULL;
  g_autofree char *out = NULL;
  gboolean dm_made = FALSE;
  gboolean cow_created = FALSE;
  Record rec = { 0 };
  struct stat st;
  int dir_fd = -1, cow_fd = -1, cow_dir_fd = -1;
  int fd;

  /* Before anything is run or made. */
  if (!have_device_mapper (error))
    return NULL;
  if (!banger_validate_vm_id (vm_id, error) || !check_owner (vm_id, uid, FALSE, error))
    return NULL;
  fd = banger_jail_open_user_file ("origin", origin, uid, &dir_fd, error);
  if (fd < 0)
    return NULL;
  if (fstat (fd, &st) < 0 || st.st_size == 0 || st.st_size % 512 != 0) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
                 "origin %s is %" G_GINT64_FORMAT " bytes, not a non-zero multiple of 512", origin,
                 (gint64)st.st_size);
    goto fail;
  }

  cow_fd = make_cow (dir_fd, vm_id, uid, st.st_size + COW_SLACK_BYTES, &cow_created, &cow_dir_fd,
                     error);
  if (cow_fd < 0)
    goto fail;
  /* From the descriptors checked above, not from the names. */
  origin_loop = loop_attach_fd (fd, origin, TRUE, error);
  if (origin_loop == NULL)
    goto fail;
  cow_name = g_strdup_printf ("vms/%s/%s", vm_id, COW_NAME);
  cow_loop = loop_attach_fd (cow_fd, cow_name, FALSE, error);
  if (cow_loop == NULL)
    goto fail;
  table = g_strdup_printf ("0 %" G_GINT64_FORMAT " snapshot %s %s N %d", (gint64)st.st_size / 512,
                           origin_loop, cow_loop, SNAPSHOT_CHUNK_SECTORS);
  {
    const char *argv[] = { cfg.dmsetup, "create", dm_name, "--table", table, NULL };
    out = run_tool (argv, error);
    if (out == NULL)
      goto fail;
    dm_made = TRUE;
  }
  device = g_build_filename (cfg.dev_dir, "mapper", dm_name, NULL);
  if (!chown_device (device, uid, error))
    goto fail;
  rec.uid = (guint)uid;
  rec.origin_loop = origin_loop;
  rec.cow_loop = cow_loop;
  rec.device = device;
  if (!record_save (vm_id, &rec, error))
    goto fail;
  close (fd);
  close (dir_fd);
  close (cow_fd);
  close (cow_dir_fd);
  g_message ("snapshot %s of %s for uid %u: %s", device, origin, (guint)uid, table);
  return g_steal_pointer (&device);

fail:
  undo (dm_made ? dm_name : NULL, origin_loop, cow_loop, cow_created ? cow_dir_fd : -1);
  close (fd);
  if (dir_fd >= 0)
    close (dir_fd);
  if (cow_fd >= 0)
    close (cow_fd);
  if (cow_dir_fd >= 0)
    close (cow_dir_fd);
  return NULL;
}

char *
banger_snapshot_create (const char *vm_id, const char *origin, uid_t uid, GError **error)
{
  char *device;

  ensure_config ();
  g_mutex_lock (&snapshot_lock);
  device = create_locked (vm_id, origin, uid, error);
  g_mutex_unlock (&snapshot_lock);
  return device;
}

static gboolean
remove_locked (const char *vm_id, uid_t uid, GError **error)
{
  g_autofree char *dm_name = g_strdup_printf ("banger-%s", vm_id);
  g_autofree char *path = record_path (vm_id);
  g_autoptr (Record) r = NULL;
  g_autoptr (GError) local = NULL;
  gboolean ok = TRUE;

  if (!have_device_mapper (error))
    return FALSE;
  if (!banger_validate_vm_id (vm_id, error) || !check_owner (vm_id, uid, TRUE, error))
    return FALSE;
  r = record_load (vm_id);
  /* The target first: it holds the loop devices. A busy target (the VM
   * still has it open) leaves everything as it was. */
  if (!dm_remove (dm_name, &local)) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_BUSY, "cannot remove %s: %s", dm_name,
                 local->message);
    return FALSE;
  }
  /* From here the snapshot is gone, so the record goes even if a loop
   * device will not detach; the first such failure is reported. */
  if (r->cow_loop != NULL && !loop_detach (r->cow_loop, error))
    ok = FALSE;
  if (r->origin_loop != NULL && !loop_detach (r->origin_loop, ok ? error : NULL))
    ok = FALSE;
  g_unlink (path);
  return ok;
}

gboolean
banger_snapshot_remove (const char *vm_id, uid_t uid, GError **error)
{
  g_autoptr (GError) local = NULL;
  gboolean ok;

  ensure_config ();
  g_mutex_lock (&snapshot_lock);
  ok = remove_locked (vm_id, uid, &local);
  g_mutex_unlock (&snapshot_lock);
  if (!ok)
    g_propagate_error (error, g_steal_pointer (&local));
  return ok;
}
