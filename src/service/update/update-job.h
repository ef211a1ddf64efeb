#pragma once

#include <gio/gio.h>

#include "job-list.h"
#include "store.h"
#include "update-manifest.h"

G_BEGIN_DECLS

/* `banger update`, the part bangerd does (docs/update.md): fetch the
 * manifest, download the tarball, SHA256SUMS and its signature, verify,
 * stage under <cache>/update/staging and `bangerd --check-migrations` with
 * the staged binary. The swap (InstallRelease), the restart, the doctor
 * and the commit or rollback are the client's (`banger update`): the
 * client has the terminal for the admin prompt, and the process that runs
 * this job is one of those being replaced. */

/* Fetches and parses the build's manifest (synchronous; worker threads). */
/* Where releases come from and who signs them: fixed per executable
 * (update-key.h, from -Drelease_pubkey and the build's URL), handed by
 * main.c to the engine and from there to the update functions. */
typedef struct {
  char *pubkey_pem;   /* PEM; "" for a build without a release key */
  char *manifest_url; /* "" or NULL: this build has none */
} BangerReleaseSource;

void banger_release_source_clear (BangerReleaseSource *src);

BangerReleaseManifest *banger_update_fetch_manifest (const BangerReleaseSource *src,
                                                     GCancellable *cancellable, GError **error);

/* @entry's SHA256SUMS and its signature, within the job's size limits, not
 * yet verified (PlanUpdate; synchronous). */
gboolean banger_update_fetch_sums (const BangerReleaseEntry *entry, GBytes **sums,
                                   GBytes **signature, GCancellable *cancellable, GError **error);
/* <cache>/update/staging: the one place a release is staged. */
char *banger_update_staging_dir (void);

typedef struct {
  char *version; /* NULL: the manifest's latest */
  gboolean dry_run;
  gboolean force;
} BangerUpdateOptions;

/* Busy (naming what runs) if a VM is starting or stopping or another job
 * of the engine's job list runs, unless @force. Main context. */
gboolean banger_update_check_idle (BangerJobList *jobs, BangerStore *store, gboolean force,
                                   GError **error);

/* Starts the "update" job; Busy while another update runs. */
BangerEngineJob *banger_update_start (BangerJobList *jobs, BangerStore *store,
                                      const BangerReleaseSource *src,
                                      const BangerUpdateOptions *options, guint uid,
                                      GError **error);

G_END_DECLS
