#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* The release manifest (docs/update.md):
 *
 *   { "schema": 1, "latest": "0.2.0",
 *     "versions": { "0.2.0": { "tarball": "banger-0.2.0-x86_64.tar.gz",
 *                              "sha256sums": "0.2.0/SHA256SUMS",
 *                              "signature": "0.2.0/SHA256SUMS.sig",
 *                              "size": 1234567, "notes": "…" } } }
 *
 * URLs may be relative to the manifest's own URL. The manifest is not
 * signed: it only says where to look. What is installed is decided by the
 * signed SHA256SUMS, which names the tarball (and so its version). */
typedef struct {
  char *version; /* "0.2.0" */
  char *tarball; /* absolute URLs */
  char *sha256sums;
  char *signature;
  guint64 size; /* 0: unknown */
  char *notes;  /* "" when none */
} BangerReleaseEntry;

typedef struct {
  char *latest;
  GPtrArray *versions; /* BangerReleaseEntry, as listed */
} BangerReleaseManifest;

void banger_release_manifest_free (BangerReleaseManifest *manifest);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BangerReleaseManifest, banger_release_manifest_free)

/* Parses @data (JSON) fetched from @base_url. Verification errors name what
 * is wrong: not JSON, an unknown schema, a missing or malformed member, a
 * "latest" that is not listed, an URL that is not http(s). */
BangerReleaseManifest *banger_release_manifest_parse (const char *data, gsize len,
                                                      const char *base_url, GError **error);

/* The entry of @version (a leading "v" is ignored), NotFound if absent. */
const BangerReleaseEntry *banger_release_manifest_find (const BangerReleaseManifest *manifest,
                                                        const char *version, GError **error);

/* "X.Y.Z" (or "vX.Y.Z") with numbers < 100000 into @out; FALSE otherwise. */
gboolean banger_release_version_parse (const char *text, guint out[3]);
/* <0, 0, >0 like strcmp; unparsable versions sort first. */
int banger_release_version_compare (const char *a, const char *b);

/* The tarball name a version must have in SHA256SUMS:
 * "banger-<version>-x86_64.tar.gz". */
char *banger_release_tarball_name (const char *version);

G_END_DECLS
