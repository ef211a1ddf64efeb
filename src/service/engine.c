/* BangerEngine: the composition root (engine.h). */
#include "engine.h"

#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "paths.h"

BangerEngine *
banger_engine_new (const char *data_dir, const char *db_path, const char *config_path,
                   GError **error)
{
  g_autoptr (BangerEngine) self = g_new0 (BangerEngine, 1);
  g_autofree char *db_dir = g_path_get_dirname (db_path);

  if (!banger_ensure_dir (data_dir, error) || !banger_ensure_dir (db_dir, error))
    return NULL;
  /* Bottom layer first: each part gets only what is below it. */
  self->config = banger_config_load (config_path, data_dir);
  self->release.pubkey_pem = g_strdup ("");
  self->store = banger_store_open (db_path, error);
  if (self->store == NULL)
    return NULL;
  self->helper = banger_helper_client_new ();
  self->jobs = banger_job_list_new ();
  self->kernels = banger_kernel_list_new (self->config, self->store, self->jobs);
  self->images = banger_image_list_new (self->config, self->store, self->jobs, self->kernels);
  self->vms = banger_vm_list_new (self->config, self->store, self->images);
  self->dns = banger_dns_responder_new (self->config, self->store);
  self->runtime
      = banger_vm_runtime_new (self->vms, self->images, self->dns, self->helper, self->config);
  return g_steal_pointer (&self);
}

void
banger_engine_start_services (BangerEngine *self)
{
  g_autofree char *vms_dir
      = g_build_filename (banger_config_get_data_dir (self->config), "vms", NULL);

  /* A taken port does not stop bangerd: doctor reports it (docs/dns.md). */
  banger_dns_responder_listen (self->dns);
  /* Guests' console logs are capped while they run (console-log.h). */
  if (self->console == NULL)
    self->console = banger_console_watch_new (vms_dir, BANGER_CONSOLE_LOG_MAX, 1000);
}

void
banger_engine_release_memory (BangerEngine *self)
{
  banger_store_release_memory (self->store);
  /* A task thread that went idle would otherwise wait 15 s before it
   * ends; the next task starts one again (a few tens of µs). */
  g_thread_pool_stop_unused_threads ();
#ifdef __GLIBC__
  /* free() keeps what it got back inside the heap and the threads'
   * arenas (glibc only returns the top of the main heap past 128 KiB):
   * start-up's transient allocations and SQLite's pages stay resident
   * until this hands their pages to the kernel. */
  malloc_trim (0);
#endif
}

void
banger_engine_set_release (BangerEngine *self, const char *pubkey_pem, const char *manifest_url)
{
  banger_release_source_clear (&self->release);
  self->release.pubkey_pem = g_strdup (pubkey_pem != NULL ? pubkey_pem : "");
  self->release.manifest_url = g_strdup (manifest_url);
}

void
banger_engine_free (BangerEngine *self)
{
  if (self == NULL)
    return;
  /* Top layer first: a part may use those below it until it is gone. */
  g_clear_pointer (&self->console, banger_console_watch_free);
  g_clear_pointer (&self->runtime, banger_vm_runtime_free);
  g_clear_pointer (&self->dns, banger_dns_responder_free);
  g_clear_object (&self->vms);
  g_clear_object (&self->images);
  g_clear_object (&self->kernels);
  g_clear_object (&self->jobs);
  g_clear_pointer (&self->helper, banger_helper_client_free);
  g_clear_pointer (&self->store, banger_store_free);
  g_clear_pointer (&self->config, banger_config_unref);
  banger_release_source_clear (&self->release);
  g_free (self);
}
