#include "dbus-doctor.h"

#include "banger-error.h"
#include "dns-responder.h"
#include "doctor.h"
#include "paths.h"
#include "store-images.h"
#include "store-private.h"

static gboolean
is_registered_image (BangerEngine *engine, const char *name)
{
  g_autoptr (BangerImageRecord) rec
      = banger_store_image_get_by_name (engine->store, name, NULL);
  return rec != NULL;
}

static gboolean
is_registered_kernel (BangerEngine *engine, const char *name)
{
  g_autoptr (BangerKernelRecord) rec
      = banger_store_kernel_get_by_name (engine->store, name, NULL);
  return rec != NULL;
}

static void
doctor_thread (GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
  g_task_return_pointer (task, g_variant_ref_sink (banger_doctor_checks (data)),
                         (GDestroyNotify)g_variant_unref);
}

static void
doctor_done (GObject *source, GAsyncResult *res, gpointer data)
{
  GDBusMethodInvocation *invocation = data;
  g_autoptr (GVariant) checks = g_task_propagate_pointer (G_TASK (res), NULL);

  banger_manager_complete_doctor (BANGER_MANAGER (source), invocation, checks);
}

static gboolean
handle_doctor (BangerManager *skeleton, GDBusMethodInvocation *invocation, BangerEngine *engine)
{
  g_autoptr (GTask) task = g_task_new (skeleton, NULL, doctor_done, invocation);
  BangerDoctorFacts *facts = g_new0 (BangerDoctorFacts, 1);
  BangerDnsResponder *dns;

  /* The store and properties belong to the main thread: read them here. */
  facts->helper = banger_helper_client_ref (engine->helper);
  facts->helper_available = banger_manager_get_helper_available (skeleton);
  facts->data_dir = g_strdup (banger_config_get_data_dir (engine->config));
  facts->schema_version = banger_store_schema_version ();
  facts->default_image = g_strdup (banger_config_get_default_image (engine->config));
  facts->default_image_registered = is_registered_image (engine, facts->default_image);
  facts->default_kernel = g_strdup (banger_config_get_default_kernel (engine->config));
  facts->default_kernel_registered = is_registered_kernel (engine, facts->default_kernel);
  facts->cache_dir = banger_cache_dir ();
  {
    const char *file
        = sqlite3_db_filename (banger_store_get_db (engine->store), "main");
    facts->db_path = g_strdup (file != NULL ? file : "");
  }
  {
    g_autoptr (GPtrArray) vms = banger_vm_list_list_vms (engine->vms, NULL);
    g_autoptr (GPtrArray) names = g_ptr_array_new ();
    g_autoptr (GPtrArray) agents = g_ptr_array_new ();
    g_autoptr (GPtrArray) suspended = g_ptr_array_new ();
    g_autoptr (GPtrArray) states = g_ptr_array_new ();

    for (guint i = 0; vms != NULL && i < vms->len; i++) {
      BangerVmRecord *rec = g_ptr_array_index (vms, i);
      if (g_strcmp0 (rec->state, "suspended") == 0) {
        g_autofree char *vm_dir = banger_vm_dir (facts->data_dir, rec->id);
        g_ptr_array_add (suspended, g_strdup (rec->name));
        g_ptr_array_add (states, g_build_filename (vm_dir, BANGER_VM_SUSPEND_DIR, NULL));
        continue;
      }
      if (g_strcmp0 (rec->state, "running") != 0)
        continue;
      g_ptr_array_add (names, g_strdup (rec->name));
      g_ptr_array_add (agents, g_strdup (rec->agent_version ? rec->agent_version : ""));
    }
    g_ptr_array_add (names, NULL);
    g_ptr_array_add (agents, NULL);
    facts->running_vms = (char **)g_ptr_array_free (g_steal_pointer (&names), FALSE);
    facts->running_agents = (char **)g_ptr_array_free (g_steal_pointer (&agents), FALSE);
    g_ptr_array_add (suspended, NULL);
    g_ptr_array_add (states, NULL);
    facts->suspended_vms = (char **)g_ptr_array_free (g_steal_pointer (&suspended), FALSE);
    facts->suspended_states = (char **)g_ptr_array_free (g_steal_pointer (&states), FALSE);
  }
  dns = engine->dns;
  if (dns != NULL) {
    facts->dns_port = banger_dns_responder_get_port (dns);
    facts->dns_running = banger_dns_responder_is_running (dns);
    facts->dns_problem = g_strdup (banger_dns_responder_get_problem (dns));
  }
  g_task_set_task_data (task, facts, (GDestroyNotify)banger_doctor_facts_free);
  g_task_run_in_thread (task, doctor_thread);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
handle_resolve_name (BangerManager *skeleton, GDBusMethodInvocation *invocation, const char *name,
                     BangerEngine *engine)
{
  g_autofree char *bare = g_strdup (name);
  g_autoptr (BangerVmRecord) rec = NULL;
  GError *error = NULL;

  /* "<name>.vm" and "<name>" both resolve; a trailing dot is a FQDN's. */
  if (g_str_has_suffix (bare, "."))
    bare[strlen (bare) - 1] = '\0';
  if (g_str_has_suffix (bare, ".vm"))
    bare[strlen (bare) - 3] = '\0';
  rec = banger_vm_list_find_vm (engine->vms, bare, &error);
  if (rec == NULL) {
    banger_invocation_return_error (invocation, error);
    return G_DBUS_METHOD_INVOCATION_HANDLED;
  }
  if (rec->ipv4 == NULL || *rec->ipv4 == '\0') {
    g_dbus_method_invocation_return_error (invocation, BANGER_ERROR, BANGER_ERROR_NOT_FOUND,
                                           "VM “%s” has no address (it is %s)", rec->name,
                                           rec->state);
    return G_DBUS_METHOD_INVOCATION_HANDLED;
  }
  banger_manager_complete_resolve_name (skeleton, invocation, rec->ipv4);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

void
banger_dbus_doctor_attach (BangerManager *skeleton, BangerEngine *engine)
{
  /* The engine outlives the skeleton (main.c frees the D-Bus glue first). */
  g_signal_connect (skeleton, "handle-doctor", G_CALLBACK (handle_doctor), engine);
  g_signal_connect (skeleton, "handle-resolve-name", G_CALLBACK (handle_resolve_name), engine);
}
