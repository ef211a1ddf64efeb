#define G_LOG_DOMAIN "oci-pull-tool"

/* Drives the OCI engine without a bus, for the tests in test_oci.py and the
 * benchmark: pulls (one or several at once, optionally cancelled after N
 * bytes), lists and prunes the blob cache, reads the catalog. Each result
 * is one JSON line on stdout. */

#include <gio/gio.h>
#include <json-glib/json-glib.h>
#include <stdio.h>

#include "banger-error.h"
#include "blob-cache.h"
#include "catalog-index.h"
#include "oci-pull.h"

static char *opt_work;
static char *opt_cache;
static char *opt_agent;
static int opt_size_mib;
static gboolean opt_insecure;
static int opt_count = 1;
static int opt_parallel;
static gint64 opt_cancel_after = -1;
static char **opt_keep;

static GOptionEntry entries[] = {
  { "work", 0, 0, G_OPTION_ARG_FILENAME, &opt_work, "where rootfs files are made", "DIR" },
  { "cache", 0, 0, G_OPTION_ARG_FILENAME, &opt_cache, "blob cache directory", "DIR" },
  { "agent", 0, 0, G_OPTION_ARG_FILENAME, &opt_agent, "agent binary to add", "FILE" },
  { "size-mib", 0, 0, G_OPTION_ARG_INT, &opt_size_mib, "rootfs size", "N" },
  { "insecure", 0, 0, G_OPTION_ARG_NONE, &opt_insecure, "plain HTTP allowed", NULL },
  { "count", 0, 0, G_OPTION_ARG_INT, &opt_count, "pulls at the same time", "N" },
  { "parallel", 0, 0, G_OPTION_ARG_INT, &opt_parallel, "layer downloads at once", "N" },
  { "cancel-after", 0, 0, G_OPTION_ARG_INT64, &opt_cancel_after, "cancel after N bytes", "N" },
  { "keep", 0, 0, G_OPTION_ARG_STRING_ARRAY, &opt_keep, "manifest to keep (prune)", "DIGEST" },
  { NULL },
};

typedef struct {
  const char *reference;
  GCancellable *cancellable;
  BangerOciPullResult *result;
  GError *error;
  guint64 bytes;
} PullRun;

static void
on_progress (double fraction, guint64 done, guint64 total, const char *message, gpointer data)
{
  PullRun *run = data;
  run->bytes = done;
  if (opt_cancel_after >= 0 && (gint64)done >= opt_cancel_after)
    g_cancellable_cancel (run->cancellable);
}

static gpointer
pull_thread (gpointer data)
{
  PullRun *run = data;
  BangerOciPullOptions opts = {
    .size_mib = opt_size_mib,
    .insecure = opt_insecure,
    .parallel = opt_parallel,
    .cache_dir = opt_cache,
    .work_dir = opt_work,
    .agent_path = opt_agent,
  };
  run->result
      = banger_oci_pull (run->reference, &opts, on_progress, run, run->cancellable, &run->error);
  return NULL;
}

static void
print_error (GError *error)
{
  g_autofree char *name = NULL;
  g_autoptr (JsonBuilder) b = json_builder_new ();
  g_autoptr (JsonGenerator) gen = json_generator_new ();
  g_autoptr (JsonNode) root = NULL;
  g_autofree char *text = NULL;

  banger_error_convert (&error);
  name = g_dbus_error_encode_gerror (error);
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "error");
  json_builder_add_string_value (b, banger_error_short_name (name) ?: name);
  json_builder_set_member_name (b, "message");
  json_builder_add_string_value (b, error->message);
  json_builder_end_object (b);
  root = json_builder_get_root (b);
  json_generator_set_root (gen, root);
  text = json_generator_to_data (gen, NULL);
  printf ("%s\n", text);
}

static void
print_result (BangerOciPullResult *r)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  g_autoptr (JsonGenerator) gen = json_generator_new ();
  g_autoptr (JsonNode) root = NULL;
  g_autoptr (JsonNode) config = NULL;
  g_autofree char *text = NULL;

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "reference");
  json_builder_add_string_value (b, r->reference);
  json_builder_set_member_name (b, "digest");
  json_builder_add_string_value (b, r->manifest_digest);
  json_builder_set_member_name (b, "rootfs");
  json_builder_add_string_value (b, r->rootfs_path);
  json_builder_set_member_name (b, "rootfs_bytes");
  json_builder_add_int_value (b, r->rootfs_bytes);
  json_builder_set_member_name (b, "config");
  config = json_from_string (r->config_json, NULL);
  json_builder_add_value (b, g_steal_pointer (&config));
  json_builder_end_object (b);
  root = json_builder_get_root (b);
  json_generator_set_root (gen, root);
  text = json_generator_to_data (gen, NULL);
  printf ("%s\n", text);
}

static int
cmd_pull (const char *reference)
{
  g_autofree PullRun *runs = g_new0 (PullRun, opt_count);
  g_autofree GThread **threads = g_new0 (GThread *, opt_count);
  int status = 0;

  if (opt_work == NULL) {
    g_printerr ("--work is needed\n");
    return 2;
  }
  for (int i = 0; i < opt_count; i++) {
    runs[i].reference = reference;
    runs[i].cancellable = g_cancellable_new ();
    threads[i] = g_thread_new ("pull", pull_thread, &runs[i]);
  }
  for (int i = 0; i < opt_count; i++) {
    g_thread_join (threads[i]);
    if (runs[i].result != NULL) {
      print_result (runs[i].result);
      banger_oci_pull_result_free (runs[i].result);
    } else {
      print_error (runs[i].error);
      status = 1;
    }
    g_object_unref (runs[i].cancellable);
  }
  return status;
}

static int
cmd_cache_list (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (BangerBlobCache) cache = banger_blob_cache_new (opt_cache, &error);
  g_autoptr (GPtrArray) list = NULL;

  if (cache == NULL || (list = banger_blob_cache_list (cache, &error)) == NULL) {
    print_error (g_steal_pointer (&error));
    return 1;
  }
  for (guint i = 0; i < list->len; i++) {
    BangerBlobInfo *info = list->pdata[i];
    printf ("{\"digest\": \"%s\", \"size\": %" G_GUINT64_FORMAT
            ", \"last_used\": %" G_GUINT64_FORMAT "}\n",
            info->digest, info->size, info->last_used);
  }
  return 0;
}

static int
cmd_cache_prune (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (BangerBlobCache) cache = banger_blob_cache_new (opt_cache, &error);
  guint64 freed = 0;

  if (cache == NULL
      || !banger_blob_cache_prune (cache, (const char *const *)opt_keep, &freed, &error)) {
    print_error (g_steal_pointer (&error));
    return 1;
  }
  printf ("{\"freed\": %" G_GUINT64_FORMAT "}\n", freed);
  return 0;
}

static int
cmd_catalog (const char *url)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (BangerCatalogIndex) index = banger_catalog_index_fetch (NULL, url, NULL, &error);

  if (index == NULL) {
    print_error (g_steal_pointer (&error));
    return 1;
  }
  for (guint i = 0; i < index->images->len; i++) {
    BangerCatalogImage *img = index->images->pdata[i];
    printf ("{\"image\": \"%s\", \"oci\": \"%s\"}\n", img->name, img->oci ? img->oci : "");
  }
  for (guint i = 0; i < index->kernels->len; i++) {
    BangerCatalogKernel *k = index->kernels->pdata[i];
    printf ("{\"kernel\": \"%s\", \"version\": \"%s\"}\n", k->name, k->version);
  }
  return 0;
}

static int
cmd_download (const char *url, const char *sha, const char *dest)
{
  g_autoptr (GError) error = NULL;
  if (!banger_download_verified (NULL, url, sha, dest, NULL, NULL, NULL, &error)) {
    print_error (g_steal_pointer (&error));
    return 1;
  }
  printf ("{\"ok\": true}\n");
  return 0;
}

int
main (int argc, char **argv)
{
  g_autoptr (GOptionContext) ctx = g_option_context_new (
      "pull REF | cache-list | cache-prune | catalog URL | download URL SHA256 DEST");
  g_autoptr (GError) error = NULL;
  int status;

  (void)banger_error_quark ();
  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!g_option_context_parse (ctx, &argc, &argv, &error) || argc < 2) {
    g_printerr ("%s\n", error ? error->message : "a command is needed");
    return 2;
  }
  setvbuf (stdout, NULL, _IOLBF, 0);
  if (g_str_equal (argv[1], "pull") && argc == 3)
    status = cmd_pull (argv[2]);
  else if (g_str_equal (argv[1], "cache-list"))
    status = cmd_cache_list ();
  else if (g_str_equal (argv[1], "cache-prune"))
    status = cmd_cache_prune ();
  else if (g_str_equal (argv[1], "catalog") && argc == 3)
    status = cmd_catalog (argv[2]);
  else if (g_str_equal (argv[1], "download") && argc == 5)
    status = cmd_download (argv[2], argv[3], argv[4]);
  else {
    g_printerr ("unknown command\n");
    status = 2;
  }
  g_free (opt_work);
  g_free (opt_cache);
  g_free (opt_agent);
  g_strfreev (opt_keep);
  return status;
}
