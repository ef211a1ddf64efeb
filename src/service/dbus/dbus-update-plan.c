/* PlanUpdate: the plan of an update without the download (issue 11, item
 * 6). Only the small, signed part of a release is fetched, so a user can
 * see what would be installed, from where, and whether the release key
 * vouches for it, before anything big is downloaded or anything changes. */

#include "config.h"

#include "dbus-update-plan.h"

#include <string.h>

#include "banger-error.h"
#include "dbus-common.h"
#include "update-job.h"
#include "update-verify.h"
#include "validate.h"

typedef struct {
  char *version; /* NULL: the manifest's latest */
  char *busy;    /* why Update would refuse without --force, or NULL */
  const BangerReleaseSource *release; /* the engine's: fixed at start, read-only */
} PlanRequest;

static void
plan_request_free (PlanRequest *r)
{
  g_free (r->version);
  g_free (r->busy);
  g_free (r);
}

/* Every well-formed line of the signed SHA256SUMS as (name, sha256): what
 * the release key vouches for. The format is coreutils' ("<64 hex>  name"
 * or "<64 hex> *name"); other lines are left out (the signature covers
 * them, but they name nothing). */
static GVariant *
signed_files (GBytes *sums)
{
  gsize len;
  const char *data = g_bytes_get_data (sums, &len);
  g_autofree char *text = g_strndup (data, len);
  g_auto (GStrv) lines = g_strsplit (text, "\n", -1);
  GVariantBuilder b;

  g_variant_builder_init (&b, G_VARIANT_TYPE ("a(ss)"));
  for (guint i = 0; lines[i] != NULL; i++) {
    const char *line = g_strchomp (lines[i]);
    const char *name;
    char hash[65];

    if (strlen (line) < 67 || strspn (line, "0123456789abcdef") != 64 || line[64] != ' '
        || (line[65] != ' ' && line[65] != '*'))
      continue;
    name = line + 66;
    if (!g_utf8_validate (name, -1, NULL))
      continue;
    memcpy (hash, line, 64);
    hash[64] = '\0';
    g_variant_builder_add (&b, "(ss)", name, hash);
  }
  return g_variant_builder_end (&b);
}

static void
plan_thread (GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
  PlanRequest *r = data;
  g_autoptr (BangerReleaseManifest) m = NULL;
  g_autoptr (GBytes) sums = NULL;
  g_autoptr (GBytes) sig = NULL;
  g_autofree char *tarball_name = NULL;
  g_autofree char *tarball_sha256 = NULL;
  const BangerReleaseEntry *entry;
  GError *error = NULL;
  GVariantBuilder b;

  m = banger_update_fetch_manifest (r->release, cancellable, &error);
  if (m == NULL)
    goto fail;
  entry = banger_release_manifest_find (m, r->version != NULL ? r->version : m->latest, &error);
  if (entry == NULL)
    goto fail;
  /* The same refusal as the Update job's, so the plan never promises an
   * update the real run would refuse. */
  if (r->version == NULL && banger_release_version_compare (entry->version, PACKAGE_VERSION) <= 0) {
    g_set_error (&error, BANGER_ERROR, BANGER_ERROR_BAD_STATE,
                 "banger %s is installed and the latest release is %s: nothing to update",
                 PACKAGE_VERSION, entry->version);
    goto fail;
  }
  /* The signature before anything the server says is shown as the plan:
   * a plan of an unsigned release would be a lie. */
  if (!banger_update_fetch_sums (entry, &sums, &sig, cancellable, &error)
      || !banger_update_verify_signature (r->release->pubkey_pem, sums, sig, &error))
    goto fail;
  tarball_name = banger_release_tarball_name (entry->version);
  tarball_sha256 = banger_update_sums_lookup (sums, tarball_name, &error);
  if (tarball_sha256 == NULL)
    goto fail;

  g_variant_builder_init (&b, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add (&b, "{sv}", "current", g_variant_new_string (PACKAGE_VERSION));
  g_variant_builder_add (&b, "{sv}", "version", g_variant_new_string (entry->version));
  g_variant_builder_add (&b, "{sv}", "latest", g_variant_new_string (m->latest));
  g_variant_builder_add (&b, "{sv}", "manifest",
                         g_variant_new_string (r->release->manifest_url));
  g_variant_builder_add (&b, "{sv}", "tarball", g_variant_new_string (entry->tarball));
  g_variant_builder_add (&b, "{sv}", "tarball_sha256", g_variant_new_string (tarball_sha256));
  g_variant_builder_add (&b, "{sv}", "size", g_variant_new_uint64 (entry->size));
  g_variant_builder_add (&b, "{sv}", "sha256sums", g_variant_new_string (entry->sha256sums));
  g_variant_builder_add (&b, "{sv}", "signature", g_variant_new_string (entry->signature));
  g_variant_builder_add (&b, "{sv}", "notes", g_variant_new_string (entry->notes));
  g_variant_builder_add (&b, "{sv}", "files", signed_files (sums));
  g_variant_builder_add (&b, "{sv}", "busy", g_variant_new_string (r->busy ? r->busy : ""));
  g_task_return_pointer (task, g_variant_ref_sink (g_variant_builder_end (&b)),
                         (GDestroyNotify)g_variant_unref);
  return;
fail:
  g_task_return_error (task, error);
}

static void
plan_done (GObject *source, GAsyncResult *res, gpointer data)
{
  banger_dbus_complete_variant_task (source, res, data, banger_manager_complete_plan_update);
}

gboolean
banger_dbus_update_target (GDBusMethodInvocation *invocation, GVariant *options,
                           const char *const *allowed, char **version)
{
  const char *to = NULL;

  if (!banger_dbus_check_options (invocation, options, allowed))
    return FALSE;
  if (g_variant_lookup (options, "to", "&s", &to) && !banger_release_version_parse (to, NULL)) {
    g_dbus_method_invocation_return_error (invocation, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
                                           "“%s” is not a version (X.Y.Z or vX.Y.Z)", to);
    return FALSE;
  }
  *version = g_strdup (to != NULL && to[0] == 'v' ? to + 1 : to);
  return TRUE;
}

static gboolean
handle_plan_update (BangerManager *skeleton, GDBusMethodInvocation *invocation, GVariant *options,
                    gpointer user_data)
{
  static const char *const allowed[] = { "to", "s", NULL };
  BangerEngine *engine = user_data;
  g_autoptr (GTask) task = NULL;
  g_autoptr (GError) busy = NULL;
  g_autofree char *version = NULL;
  PlanRequest *r;

  if (!banger_dbus_update_target (invocation, options, allowed, &version))
    return G_DBUS_METHOD_INVOCATION_HANDLED;
  r = g_new0 (PlanRequest, 1);
  r->version = g_steal_pointer (&version);
  r->release = &engine->release;
  /* Part of the plan, not a refusal: the user asked what would happen,
   * and "Update would refuse now" is the answer. The check reads the
   * job list and the store, so it runs here, on the main context. */
  if (!banger_update_check_idle (engine->jobs, engine->store, FALSE, &busy))
    r->busy = g_strdup (busy->message);
  task = g_task_new (skeleton, NULL, plan_done, invocation);
  g_task_set_task_data (task, r, (GDestroyNotify)plan_request_free);
  g_task_run_in_thread (task, plan_thread);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

void
banger_update_plan_attach (BangerManager *skeleton, BangerEngine *engine)
{
  g_signal_connect (skeleton, "handle-plan-update", G_CALLBACK (handle_plan_update), engine);
}
