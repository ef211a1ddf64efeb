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

/* The console watch runs only while some VM may have a VMM (console-log.h):
 * an idle bangerd then has no timer waking it every second and no thread
 * kept for the checks (docs/performance.md). Every state change goes
 * through the VM list's signals; the set is keyed by name, which a VM
 * keeps for its whole life. */
static void
console_watch_follow (BangerEngine *self, const BangerVmRecord *rec)
{
  if (banger_vm_state_is_active (rec->state))
    g_hash_table_add (self->active_vms, g_strdup (rec->name));
  else
    g_hash_table_remove (self->active_vms, rec->name);
  banger_console_watch_set_active (self->console, g_hash_table_size (self->active_vms) > 0);
}

static void
vm_added_cb (BangerVmList *vms, gpointer rec, gpointer user_data)
{
  console_watch_follow (user_data, rec);
}

static void
vm_changed_cb (BangerVmList *vms, gpointer rec, gpointer user_data)
{
  console_watch_follow (user_data, rec);
}

static void
vm_removed_cb (BangerVmList *vms, const char *name, gpointer user_data)
{
  BangerEngine *self = user_data;

  g_hash_table_remove (self->active_vms, name);
  banger_console_watch_set_active (self->console, g_hash_table_size (self->active_vms) > 0);
}

void
banger_engine_start_services (BangerEngine *self)
{
  g_autofree char *vms_dir
      = g_build_filename (banger_config_get_data_dir (self->config), "vms", NULL);
  g_autoptr (GPtrArray) recs = NULL;
  g_autoptr (GError) error = NULL;

  /* A taken port does not stop bangerd: doctor reports it (docs/dns.md). */
  banger_dns_responder_listen (self->dns);
  /* Guests' console logs are capped while they run (console-log.h). */
  if (self->console != NULL)
    return;
  self->console = banger_console_watch_new (vms_dir, BANGER_CONSOLE_LOG_MAX, 1000);
  self->active_vms = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  recs = banger_vm_list_list_vms (self->vms, &error);
  if (recs == NULL) {
    /* Unknown: the watch stays on, as it always was. */
    g_warning ("cannot list VMs to know which may run: %s", error->message);
  } else {
    for (guint i = 0; i < recs->len; i++) {
      const BangerVmRecord *rec = g_ptr_array_index (recs, i);
      if (banger_vm_state_is_active (rec->state))
        g_hash_table_add (self->active_vms, g_strdup (rec->name));
    }
    banger_console_watch_set_active (self->console, g_hash_table_size (self->active_vms) > 0);
  }
  g_signal_connect (self->vms, "vm-added", G_CALLBACK (vm_added_cb), self);
  g_signal_connect (self->vms, "vm-changed", G_CALLBACK (vm_changed_cb), self);
  g_signal_connect (self->vms, "vm-removed", G_CALLBACK (vm_removed_cb), self);
}

void
banger_engine_release_memory (BangerEngine *self)
{
  banger_store_release_memory (self->store);
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
  if (self->vms != NULL)
    g_signal_handlers_disconnect_by_data (self->vms, self);
  g_clear_pointer (&self->console, banger_console_watch_free);
  g_clear_pointer (&self->active_vms, g_hash_table_unref);
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
