#include "rootfs-tarball.h"

#include <glib/gstdio.h>

#include "banger-error.h"
#include "guest-agent.h"
#include "oci-layers.h"

gboolean
banger_rootfs_tarball_build (const char *tarball, const char *label, const char *dest,
                             const char *agent_path, guint size_mib, GCancellable *cancellable,
                             GError **error)
{
  g_autoptr (BangerOciLayer) layer = NULL;
  g_autoptr (BangerExt4Writer) writer = NULL;
  guint64 size, inodes;

  /* One tarball is one layer: scanned whole before anything is written. */
  layer = banger_oci_layer_scan (tarball, label, cancellable, error);
  if (layer == NULL)
    return FALSE;
  if (!banger_oci_rootfs_size (banger_oci_layer_get_data_bytes (layer),
                               banger_oci_layer_get_entries (layer), size_mib, &size, &inodes,
                               error))
    return FALSE;
  writer = banger_ext4_writer_new (dest, size, inodes, error);
  if (writer == NULL)
    return FALSE;
  if (!banger_oci_layer_apply (layer, writer, cancellable, error))
    return FALSE;
  if (agent_path != NULL && !banger_guest_agent_write (writer, agent_path, cancellable, error))
    return FALSE;
  if (g_cancellable_is_cancelled (cancellable)) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_CANCELLED, "pull cancelled");
    return FALSE;
  }
  return banger_ext4_writer_finish (writer, error);
}

typedef struct {
  BangerRootfsTarballProgress progress;
  gpointer user_data;
} ProgressRelay;

static void
download_progress_cb (guint64 done, guint64 total, gpointer user_data)
{
  ProgressRelay *r = user_data;
  double fraction = total > 0 ? 0.8 * (double)done / (double)total : -1;

  if (r->progress != NULL)
    r->progress (fraction, done, total, "downloading the root file system", r->user_data);
}

gboolean
banger_rootfs_tarball_pull (BangerConfig *config, const BangerCatalogImage *entry, const char *dest,
                            const char *agent_path, guint size_mib,
                            BangerRootfsTarballProgress progress, gpointer user_data,
                            GCancellable *cancellable, GError **error)
{
  g_autofree char *tarball = g_strconcat (dest, ".tar", NULL);
  g_autofree char *label = g_strdup_printf ("rootfs tarball of catalog image “%s”", entry->name);
  ProgressRelay relay = { progress, user_data };
  gboolean ok;

  if (!banger_download_verified (config, entry->rootfs_url, entry->rootfs_sha256, tarball,
                                 download_progress_cb, &relay, cancellable, error))
    return FALSE;
  if (progress != NULL)
    progress (0.85, 0, 0, "writing the root file system", user_data);
  ok = banger_rootfs_tarball_build (tarball, label, dest, agent_path, size_mib, cancellable, error);
  g_unlink (tarball);
  return ok;
}
