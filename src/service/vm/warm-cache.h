#pragma once

/* The warm-start cache (docs/warm-start.md): snapshots of freshly booted,
 * idle guests, one per key (a hash of everything the saved state depends
 * on), in <data>/warm/KEY/ beside images/ and kernels/. An entry holds the
 * VMM's saved state, the template's disk frozen at the save and
 * manifest.ini; it is renamed into place whole, so a crash leaves either
 * no entry or a complete one (and .tmp-* directories, removed by the next
 * prune). Functions that touch files block: worker threads only. */

#include <gio/gio.h>

#include "vmm.h"

G_BEGIN_DECLS

#define BANGER_WARM_DISK_FILE     "disk"
#define BANGER_WARM_MANIFEST_FILE "manifest.ini"

/* What a snapshot depends on. */
typedef struct {
  const BangerVmmDriver *driver;
  const char *image; /* names, for listing */
  const char *kernel;
  const char *rootfs; /* files: their identity (device, inode, size, mtime) */
  const char *kernel_path;
  const char *initrd_path; /* NULL or "" */
  guint vcpus;
  guint memory_mib;
  guint disk_mib;
  gboolean network; /* with a network device */
  /* In the helper's jail: its snapshot names the jail's paths (/rootfs),
   * a direct one host paths, so neither restores the other. */
  gboolean jailed;
} BangerWarmInputs;

typedef struct {
  char *key;
  char *dir;
  char *image;
  char *kernel;
  char *driver;
  char *kernel_args;   /* the template's: a restore uses the same command line */
  char *agent_version; /* the template's agent */
  guint vcpus;
  guint memory_mib;
  guint disk_mib;
  gboolean network;
  gint64 created; /* unix seconds */
  guint64 bytes;  /* on disk */
} BangerWarmEntry;

void banger_warm_entry_free (BangerWarmEntry *entry);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BangerWarmEntry, banger_warm_entry_free)

/* <data_dir>/warm */
char *banger_warm_cache_dir (const char *data_dir);

/* The key of @in, or NULL with Unsupported when the driver's states are not
 * reused across VMs, or an error naming a file that cannot be read. */
char *banger_warm_cache_key (const BangerWarmInputs *in, GError **error);

/* The entry for @key: NULL without error if there is none; NULL with an
 * error if there is one but it is incomplete or unreadable (the caller
 * removes it). */
BangerWarmEntry *banger_warm_cache_lookup (const char *data_dir, const char *key, GError **error);

/* Saves the running guest of @instance as the entry for @key: save_state()
 * into a temporary directory, a copy of the then-flushed disk (both done by
 * the driver's save_template() where it has one: Firecracker), the
 * manifest, resume_paused(), rename into place. The guest runs again on
 * return, success or not. An entry that appeared meanwhile (another VM of
 * the same key) is kept and this one dropped. */
gboolean banger_warm_cache_save (const char *data_dir, const char *key, const BangerWarmInputs *in,
                                 const BangerVmmConfig *config, BangerVmmInstance *instance,
                                 const char *agent_version, GError **error);

/* Removes the entry for @key (renamed away first, then deleted). */
gboolean banger_warm_cache_remove (const char *data_dir, const char *key, GError **error);

/* Every complete entry, oldest first. */
GPtrArray *banger_warm_cache_list (const char *data_dir);

/* Removes the entries of @image (NULL: all) and leftover temporary
 * directories; returns how many entries went and *@freed their bytes. VMs
 * started from an entry keep their own link to its disk. */
guint banger_warm_cache_prune (const char *data_dir, const char *image, guint64 *freed,
                               GError **error);

G_END_DECLS
