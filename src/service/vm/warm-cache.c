/* The warm-start cache: see warm-cache.h and docs/warm-start.md. */

#include "warm-cache.h"

#include <errno.h>
#include <glib/gstdio.h>

#include "banger-error.h"
#include "config.h"
#include "paths.h"
#include "remove-tree.h"

/* Raised when the layout of an entry, or what a restore expects of the
 * guest, changes: every older entry is then simply never found again. */
#define WARM_FORMAT "banger-warm-1"
#define MANIFEST    "snapshot"

void
banger_warm_entry_free (BangerWarmEntry *e)
{
  if (e == NULL)
    return;
  g_free (e->key);
  g_free (e->dir);
  g_free (e->image);
  g_free (e->kernel);
  g_free (e->driver);
  g_free (e->kernel_args);
  g_free (e->agent_version);
  g_free (e);
}

char *
banger_warm_cache_dir (const char *data_dir)
{
  return g_build_filename (data_dir, "warm", NULL);
}

/* A file's identity: a new image, kernel or agent (written into the image)
 * is a new file or a rewritten one, and changes at least one of these. */
static gboolean
add_file (GChecksum *sum, const char *what, const char *path, GError **error)
{
  GStatBuf st;
  g_autofree char *line = NULL;

  if (path == NULL || *path == '\0') {
    line = g_strdup_printf ("%s=none\n", what);
  } else if (g_stat (path, &st) < 0) {
    int saved = errno;
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "%s %s: %s", what, path,
                 g_strerror (saved));
    return FALSE;
  } else {
    line = g_strdup_printf ("%s=%s:%" G_GUINT64_FORMAT ":%" G_GUINT64_FORMAT ":%" G_GINT64_FORMAT
                            ":%" G_GINT64_FORMAT ".%09ld\n",
                            what, path, (guint64)st.st_dev, (guint64)st.st_ino,
                            (gint64)st.st_size, (gint64)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
  }
  g_checksum_update (sum, (const guchar *)line, -1);
  return TRUE;
}

char *
banger_warm_cache_key (const BangerWarmInputs *in, GError **error)
{
  g_autoptr (GChecksum) sum = g_checksum_new (G_CHECKSUM_SHA256);
  g_autofree char *compat = NULL;
  g_autofree char *shape = NULL;

  if (in->driver->save_state == NULL || in->driver->state_compat == NULL
      || (compat = in->driver->state_compat ()) == NULL) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_UNSUPPORTED,
                 "%s VMs do not start from snapshots", in->driver->display_name);
    return NULL;
  }
  /* bangerd's own version: it writes the VMM's command line, which a
   * restore must repeat exactly. */
  shape = g_strdup_printf ("%s\nbangerd=%s\ndriver=%s\nvmm=%s\nvcpus=%u\nmemory=%u\ndisk=%u\n"
                           "network=%d\n",
                           WARM_FORMAT, PACKAGE_VERSION, in->driver->name, compat, in->vcpus,
                           in->memory_mib, in->disk_mib, in->network ? 1 : 0);
  g_checksum_update (sum, (const guchar *)shape, -1);
  /* Only for jailed VMs: a direct VM's key stays what it was. */
  if (in->jailed)
    g_checksum_update (sum, (const guchar *)"jailed=1\n", -1);
  if (!add_file (sum, "rootfs", in->rootfs, error) || !add_file (sum, "kernel", in->kernel_path, error)
      || !add_file (sum, "initrd", in->initrd_path, error))
    return NULL;
  /* 32 hex digits are plenty for a cache key and keep paths short. */
  return g_strndup (g_checksum_get_string (sum), 32);
}

static guint64
tree_bytes (const char *dir)
{
  g_autoptr (GDir) d = g_dir_open (dir, 0, NULL);
  const char *name;
  guint64 total = 0;

  while (d != NULL && (name = g_dir_read_name (d)) != NULL) {
    g_autofree char *path = g_build_filename (dir, name, NULL);
    GStatBuf st;
    if (g_lstat (path, &st) == 0)
      total += (guint64)st.st_blocks * 512;
  }
  return total;
}

static BangerWarmEntry *
read_entry (const char *dir, const char *key, GError **error)
{
  g_autofree char *manifest = g_build_filename (dir, BANGER_WARM_MANIFEST_FILE, NULL);
  g_autofree char *disk = g_build_filename (dir, BANGER_WARM_DISK_FILE, NULL);
  g_autofree char *state = g_build_filename (dir, BANGER_VMM_STATE_FILE, NULL);
  g_autoptr (GKeyFile) kf = g_key_file_new ();
  g_autoptr (BangerWarmEntry) e = g_new0 (BangerWarmEntry, 1);
  g_autoptr (GError) local = NULL;

  if (!g_key_file_load_from_file (kf, manifest, G_KEY_FILE_NONE, &local)) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "snapshot %s: %s", dir, local->message);
    return NULL;
  }
  if (!g_file_test (disk, G_FILE_TEST_IS_REGULAR) || !g_file_test (state, G_FILE_TEST_IS_REGULAR)) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED,
                 "snapshot %s is incomplete (its disk or its state is missing)", dir);
    return NULL;
  }
  e->key = g_strdup (key);
  e->dir = g_strdup (dir);
  e->image = g_key_file_get_string (kf, MANIFEST, "image", NULL);
  e->kernel = g_key_file_get_string (kf, MANIFEST, "kernel", NULL);
  e->driver = g_key_file_get_string (kf, MANIFEST, "driver", NULL);
  e->kernel_args = g_key_file_get_string (kf, MANIFEST, "kernel_args", NULL);
  e->agent_version = g_key_file_get_string (kf, MANIFEST, "agent_version", NULL);
  e->vcpus = (guint)g_key_file_get_uint64 (kf, MANIFEST, "vcpus", NULL);
  e->memory_mib = (guint)g_key_file_get_uint64 (kf, MANIFEST, "memory_mib", NULL);
  e->disk_mib = (guint)g_key_file_get_uint64 (kf, MANIFEST, "disk_mib", NULL);
  e->network = g_key_file_get_boolean (kf, MANIFEST, "network", NULL);
  e->created = g_key_file_get_int64 (kf, MANIFEST, "created", NULL);
  if (e->image == NULL || e->kernel == NULL || e->driver == NULL || e->kernel_args == NULL) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED,
                 "snapshot %s: its manifest lacks image, kernel, driver or kernel_args", dir);
    return NULL;
  }
  if (e->agent_version == NULL)
    e->agent_version = g_strdup ("");
  e->bytes = tree_bytes (dir);
  return g_steal_pointer (&e);
}

BangerWarmEntry *
banger_warm_cache_lookup (const char *data_dir, const char *key, GError **error)
{
  g_autofree char *base = banger_warm_cache_dir (data_dir);
  g_autofree char *dir = g_build_filename (base, key, NULL);

  if (!g_file_test (dir, G_FILE_TEST_IS_DIR))
    return NULL;
  return read_entry (dir, key, error);
}

static gboolean
write_manifest (const char *dir, const BangerWarmInputs *in, const BangerVmmConfig *config,
                const char *agent_version, GError **error)
{
  g_autoptr (GKeyFile) kf = g_key_file_new ();
  g_autofree char *path = g_build_filename (dir, BANGER_WARM_MANIFEST_FILE, NULL);

  g_key_file_set_string (kf, MANIFEST, "image", in->image);
  g_key_file_set_string (kf, MANIFEST, "kernel", in->kernel);
  g_key_file_set_string (kf, MANIFEST, "driver", in->driver->name);
  g_key_file_set_string (kf, MANIFEST, "kernel_args",
                         config->kernel_args != NULL ? config->kernel_args : "");
  g_key_file_set_string (kf, MANIFEST, "agent_version", agent_version ? agent_version : "");
  g_key_file_set_uint64 (kf, MANIFEST, "vcpus", in->vcpus);
  g_key_file_set_uint64 (kf, MANIFEST, "memory_mib", in->memory_mib);
  g_key_file_set_uint64 (kf, MANIFEST, "disk_mib", in->disk_mib);
  g_key_file_set_boolean (kf, MANIFEST, "network", in->network);
  g_key_file_set_int64 (kf, MANIFEST, "created", g_get_real_time () / G_USEC_PER_SEC);
  if (!g_key_file_save_to_file (kf, path, error)) {
    banger_error_convert (error);
    return FALSE;
  }
  return TRUE;
}

gboolean
banger_warm_cache_save (const char *data_dir, const char *key, const BangerWarmInputs *in,
                        const BangerVmmConfig *config, BangerVmmInstance *instance,
                        const char *agent_version, GError **error)
{
  g_autofree char *base = banger_warm_cache_dir (data_dir);
  g_autofree char *final = g_build_filename (base, key, NULL);
  g_autofree char *tmp = NULL;
  g_autofree char *disk = NULL;
  g_autoptr (GError) resume_error = NULL;
  gboolean ok;

  if (!banger_ensure_dir (base, error))
    return FALSE;
  tmp = g_build_filename (base, ".tmp-XXXXXX", NULL);
  if (g_mkdtemp (tmp) == NULL) {
    int saved = errno;
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "cannot create a directory in %s: %s",
                 base, g_strerror (saved));
    return FALSE;
  }
  disk = g_build_filename (tmp, BANGER_WARM_DISK_FILE, NULL);
  if (in->driver->save_template != NULL) {
    /* A driver whose state names the disk file copies the disk itself, so
     * that the state names the copy where it will be (in @final), never
     * this VM's own disk. */
    g_autofree char *disk_as = g_build_filename (final, BANGER_WARM_DISK_FILE, NULL);
    ok = in->driver->save_template (instance, tmp, disk, disk_as, error);
  } else {
    instance->memory_file = TRUE;
    ok = in->driver->save_state (instance, tmp, error);
    instance->memory_file = FALSE;
  }
  /* On failure the driver has resumed the guest itself. */
  if (!ok) {
    banger_remove_tree_or_warn (tmp);
    return FALSE;
  }
  if (in->driver->save_template == NULL) {
    /* The disk, flushed by the save, while the guest is still paused. */
    g_autoptr (GFile) from = g_file_new_for_path (instance->disk_path);
    g_autoptr (GFile) to = g_file_new_for_path (disk);
    ok = g_file_copy (from, to, G_FILE_COPY_NONE, NULL, NULL, NULL, error);
    if (!ok) {
      g_prefix_error (error, "copying the disk %s: ", instance->disk_path);
      banger_error_convert (error);
    }
  }
  /* Whatever became of the copy, the guest runs again. */
  if (!in->driver->resume_paused (instance, &resume_error)) {
    if (ok)
      g_propagate_prefixed_error (error, g_steal_pointer (&resume_error),
                                  "resuming after the save: ");
    ok = FALSE;
  }
  /* After the guest runs again: not part of its pause. */
  if (ok && in->driver->prepare_template_disk != NULL)
    in->driver->prepare_template_disk (disk);
  ok = ok && write_manifest (tmp, in, config, agent_version, error);
  if (!ok) {
    banger_remove_tree_or_warn (tmp);
    return FALSE;
  }
  if (g_rename (tmp, final) < 0) {
    int saved = errno;
    banger_remove_tree_or_warn (tmp);
    /* Another VM of the same key saved first: its entry serves. */
    if (saved == EEXIST || saved == ENOTEMPTY)
      return TRUE;
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "cannot rename %s to %s: %s", tmp,
                 final, g_strerror (saved));
    return FALSE;
  }
  return TRUE;
}

static gboolean
remove_dir (const char *base, const char *name, GError **error)
{
  g_autofree char *dir = g_build_filename (base, name, NULL);
  g_autofree char *trash = g_build_filename (base, ".tmp-XXXXXX", NULL);

  /* Renamed away first: a start looking the key up meanwhile finds no
   * entry rather than half of one. */
  if (g_mkdtemp (trash) == NULL || g_rename (dir, trash) < 0) {
    int saved = errno;
    if (saved == ENOENT)
      return TRUE;
    g_rmdir (trash);
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "cannot remove snapshot %s: %s", dir,
                 g_strerror (saved));
    return FALSE;
  }
  return banger_remove_tree (trash, error);
}

gboolean
banger_warm_cache_remove (const char *data_dir, const char *key, GError **error)
{
  g_autofree char *base = banger_warm_cache_dir (data_dir);

  return remove_dir (base, key, error);
}

static gint
by_created (gconstpointer a, gconstpointer b)
{
  const BangerWarmEntry *x = *(BangerWarmEntry *const *)a;
  const BangerWarmEntry *y = *(BangerWarmEntry *const *)b;

  return x->created < y->created ? -1 : x->created > y->created;
}

GPtrArray *
banger_warm_cache_list (const char *data_dir)
{
  g_autofree char *base = banger_warm_cache_dir (data_dir);
  g_autoptr (GDir) d = g_dir_open (base, 0, NULL);
  GPtrArray *list = g_ptr_array_new_with_free_func ((GDestroyNotify)banger_warm_entry_free);
  const char *name;

  while (d != NULL && (name = g_dir_read_name (d)) != NULL) {
    g_autofree char *dir = NULL;
    g_autoptr (GError) error = NULL;
    BangerWarmEntry *e;

    if (name[0] == '.')
      continue;
    dir = g_build_filename (base, name, NULL);
    e = read_entry (dir, name, &error);
    if (e != NULL)
      g_ptr_array_add (list, e);
    else
      g_debug ("%s", error->message);
  }
  g_ptr_array_sort (list, by_created);
  return list;
}

guint
banger_warm_cache_prune (const char *data_dir, const char *image, guint64 *freed, GError **error)
{
  g_autofree char *base = banger_warm_cache_dir (data_dir);
  g_autoptr (GDir) d = g_dir_open (base, 0, NULL);
  const char *name;
  guint removed = 0;
  guint64 bytes = 0;
  gboolean ok = TRUE;

  while (d != NULL && (name = g_dir_read_name (d)) != NULL) {
    g_autofree char *dir = g_build_filename (base, name, NULL);
    g_autoptr (BangerWarmEntry) e = NULL;
    g_autoptr (GError) local = NULL;

    if (name[0] == '.') {
      /* A save or a removal that never finished (bangerd was killed). */
      if (image == NULL && !banger_remove_tree (dir, &local))
        g_warning ("%s", local->message);
      continue;
    }
    e = read_entry (dir, name, NULL);
    /* An incomplete entry goes with any prune: it can never be used. */
    if (image != NULL && e != NULL && g_strcmp0 (e->image, image) != 0)
      continue;
    if (!remove_dir (base, name, ok ? error : NULL)) {
      ok = FALSE;
      continue;
    }
    removed++;
    bytes += e != NULL ? e->bytes : 0;
  }
  if (freed != NULL)
    *freed = bytes;
  return removed;
}
