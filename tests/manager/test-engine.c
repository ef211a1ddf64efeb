#define G_LOG_DOMAIN "test-engine"

/* The engine without a bus: VM records over a real store in a temporary
 * directory. The D-Bus side is covered by test_manager.py. */

#include <glib/gstdio.h>

#include "banger-error.h"
#include "remove-tree.h"
#include "engine.h"
#include "store.h"

typedef struct {
  char *dir;
  char *db;
  char *config;
  BangerEngine *root;
  BangerVmList *engine; /* the root's */
  GPtrArray *added;   /* names */
  GPtrArray *removed; /* names */
} Fixture;

static void
on_added (BangerVmList *engine, const BangerVmRecord *rec, Fixture *fx)
{
  g_ptr_array_add (fx->added, g_strdup (rec->name));
}

static void
on_removed (BangerVmList *engine, const char *name, Fixture *fx)
{
  g_ptr_array_add (fx->removed, g_strdup (name));
}

static void
open_engine (Fixture *fx)
{
  g_autoptr (GError) error = NULL;

  fx->root = banger_engine_new (fx->dir, fx->db, fx->config, &error);
  g_assert_no_error (error);
  g_assert_nonnull (fx->root);
  fx->engine = fx->root->vms;
  g_signal_connect (fx->engine, "vm-added", G_CALLBACK (on_added), fx);
  g_signal_connect (fx->engine, "vm-removed", G_CALLBACK (on_removed), fx);
}

static void
fixture_setup (Fixture *fx, gconstpointer data)
{
  g_autoptr (GError) error = NULL;

  fx->dir = g_dir_make_tmp ("banger-engine-XXXXXX", &error);
  g_assert_no_error (error);
  fx->db = g_build_filename (fx->dir, "banger.db", NULL);
  fx->config = g_build_filename (fx->dir, "config", NULL);
  fx->added = g_ptr_array_new_with_free_func (g_free);
  fx->removed = g_ptr_array_new_with_free_func (g_free);
}

static void
fixture_teardown (Fixture *fx, gconstpointer data)
{
  fx->engine = NULL;
  g_clear_pointer (&fx->root, banger_engine_free);
  banger_remove_tree (fx->dir, NULL);
  g_free (fx->dir);
  g_free (fx->db);
  g_free (fx->config);
  g_ptr_array_unref (fx->added);
  g_ptr_array_unref (fx->removed);
}

static GVariant *
spec_new (const char *name, const char *extra_key, GVariant *extra_value)
{
  g_auto (GVariantBuilder) b = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE_VARDICT);

  g_variant_builder_add (&b, "{sv}", "name", g_variant_new_string (name));
  if (extra_key != NULL)
    g_variant_builder_add (&b, "{sv}", extra_key, extra_value);
  return g_variant_ref_sink (g_variant_builder_end (&b));
}

static void
test_create_find_delete (Fixture *fx, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) spec = spec_new ("dev", "vcpus", g_variant_new_uint32 (4));
  g_autoptr (BangerVmRecord) rec = NULL;
  g_autoptr (BangerVmRecord) found = NULL;
  g_autofree char *mac = NULL;

  open_engine (fx);
  rec = banger_vm_list_create_vm (fx->engine, spec, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (rec->state, ==, "created");
  g_assert_cmpstr (rec->image, ==, BANGER_DEFAULT_IMAGE);
  g_assert_cmpstr (rec->kernel, ==, BANGER_DEFAULT_KERNEL);
  g_assert_cmpuint (rec->vcpus, ==, 4);
  g_assert_cmpuint (rec->memory_mib, ==, 1024);
  g_assert_cmpint (strlen (rec->id), ==, 16);
  mac = banger_vm_mac_from_id (rec->id);
  g_assert_cmpstr (rec->mac, ==, mac);
  g_assert_cmpuint (fx->added->len, ==, 1);

  found = banger_vm_list_find_vm (fx->engine, "dev", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (found->id, ==, rec->id);
  g_assert_cmpint (found->created_at, ==, rec->created_at);

  g_assert_null (banger_vm_list_create_vm (fx->engine, spec, &error));
  g_assert_error (error, BANGER_ERROR, BANGER_ERROR_EXISTS);
  g_clear_error (&error);
  g_assert_cmpuint (fx->added->len, ==, 1);

  g_assert_true (banger_vm_list_delete_vm (fx->engine, "dev", &error));
  g_assert_no_error (error);
  g_assert_cmpuint (fx->removed->len, ==, 1);
  g_assert_false (banger_vm_list_delete_vm (fx->engine, "dev", &error));
  g_assert_error (error, BANGER_ERROR, BANGER_ERROR_NOT_FOUND);
}

static void
test_invalid_spec (Fixture *fx, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) bad_mem = spec_new ("dev", "memory_mib", g_variant_new_uint32 (1u << 30));
  g_autoptr (GVariant) unknown = spec_new ("dev", "colour", g_variant_new_string ("red"));
  g_autoptr (GVariant) bad_name = spec_new ("Dev", NULL, NULL);
  g_autoptr (GPtrArray) vms = NULL;

  open_engine (fx);
  g_assert_null (banger_vm_list_create_vm (fx->engine, bad_mem, &error));
  g_assert_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, "memory_mib"));
  g_clear_error (&error);
  g_assert_null (banger_vm_list_create_vm (fx->engine, unknown, &error));
  g_assert_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, "colour"));
  g_clear_error (&error);
  g_assert_null (banger_vm_list_create_vm (fx->engine, bad_name, &error));
  g_assert_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  vms = banger_vm_list_list_vms (fx->engine, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (vms->len, ==, 0);
  g_assert_cmpuint (fx->added->len, ==, 0);
}

/* A running VM (as a later release's reconcile would find it) must survive
 * Delete without force and PruneVMs: its VMM would be orphaned. */
static void
test_active_vm_is_kept (Fixture *fx, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_auto (GStrv) pruned = NULL;
  g_autoptr (GVariant) spec = spec_new ("idle", NULL, NULL);
  g_autoptr (BangerVmRecord) idle = NULL;
  g_autoptr (GPtrArray) vms = NULL;

  {
    g_autoptr (BangerStore) store = banger_store_open (fx->db, &error);
    g_autoptr (BangerVmRecord) rec = banger_vm_record_new ();

    g_assert_no_error (error);
    g_free (rec->id);
    rec->id = g_strdup ("0123456789abcdef");
    g_free (rec->name);
    rec->name = g_strdup ("busy");
    g_free (rec->state);
    rec->state = g_strdup ("running");
    rec->vcpus = 1;
    rec->memory_mib = 256;
    rec->disk_mib = 512;
    rec->created_at = 1;
    g_assert_true (banger_store_vm_insert (store, rec, &error));
    g_assert_no_error (error);
  }
  open_engine (fx);
  idle = banger_vm_list_create_vm (fx->engine, spec, &error);
  g_assert_no_error (error);

  g_assert_false (banger_vm_list_delete_vm (fx->engine, "busy", &error));
  g_assert_error (error, BANGER_ERROR, BANGER_ERROR_BAD_STATE);
  g_clear_error (&error);

  pruned = banger_vm_list_prune_vms (fx->engine, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_strv_length (pruned), ==, 1);
  g_assert_cmpstr (pruned[0], ==, "idle");
  vms = banger_vm_list_list_vms (fx->engine, &error);
  g_assert_cmpuint (vms->len, ==, 1);
}

static void
set_state (Fixture *fx, const char *name, const char *state)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (BangerVmRecord) rec = banger_vm_list_find_vm (fx->engine, name, &error);

  g_assert_no_error (error);
  g_free (rec->state);
  rec->state = g_strdup (state);
  g_assert_true (banger_vm_list_update_vm (fx->engine, rec, &error));
  g_assert_no_error (error);
}

/* The console log watch runs only while some VM may have a VMM: an idle
 * bangerd has no timer and no thread for it (docs/performance.md). A VM
 * found running at start switches it on; every state change, a creation
 * and a deletion switch it after. */
static void
test_console_watch_follows_vms (Fixture *fx, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) spec_a = spec_new ("a", NULL, NULL);
  g_autoptr (GVariant) spec_b = spec_new ("b", NULL, NULL);
  g_autoptr (BangerVmRecord) a = NULL;
  g_autoptr (BangerVmRecord) b = NULL;

  /* No DNS responder: this test is about the watch. */
  g_assert_true (g_file_set_contents (fx->config, "[dns]\nport=0\n", -1, &error));
  {
    g_autoptr (BangerStore) store = banger_store_open (fx->db, &error);
    g_autoptr (BangerVmRecord) rec = banger_vm_record_new ();

    g_assert_no_error (error);
    g_free (rec->id);
    rec->id = g_strdup ("0123456789abcdef");
    g_free (rec->name);
    rec->name = g_strdup ("left-running");
    g_free (rec->state);
    rec->state = g_strdup ("running");
    rec->vcpus = 1;
    rec->memory_mib = 256;
    rec->disk_mib = 512;
    rec->created_at = 1;
    g_assert_true (banger_store_vm_insert (store, rec, &error));
    g_assert_no_error (error);
  }
  open_engine (fx);
  banger_engine_start_services (fx->root);
  g_assert_true (banger_console_watch_is_active (fx->root->console));

  set_state (fx, "left-running", "stopped");
  g_assert_false (banger_console_watch_is_active (fx->root->console));

  a = banger_vm_list_create_vm (fx->engine, spec_a, &error);
  g_assert_no_error (error);
  b = banger_vm_list_create_vm (fx->engine, spec_b, &error);
  g_assert_no_error (error);
  g_assert_false (banger_console_watch_is_active (fx->root->console));

  for (const char *const *s = (const char *const[]){ "starting", "running", "stopping",
                                                     "suspending", "resuming", NULL };
       *s != NULL; s++) {
    set_state (fx, "a", *s);
    g_assert_true (banger_console_watch_is_active (fx->root->console));
  }
  set_state (fx, "b", "running");
  set_state (fx, "a", "suspended");
  g_assert_true (banger_console_watch_is_active (fx->root->console)); /* b still runs */
  set_state (fx, "b", "error");
  g_assert_false (banger_console_watch_is_active (fx->root->console));

  set_state (fx, "b", "running");
  set_state (fx, "b", "stopped");
  g_assert_true (banger_vm_list_delete_vm (fx->engine, "b", &error));
  g_assert_no_error (error);
  g_assert_true (banger_vm_list_delete_vm (fx->engine, "left-running", &error));
  g_assert_no_error (error);
  g_assert_false (banger_console_watch_is_active (fx->root->console));
  set_state (fx, "a", "running");
  g_assert_true (banger_console_watch_is_active (fx->root->console));
}

static void
test_config_defaults (Fixture *fx, gconstpointer data)
{
  g_autoptr (GError) error = NULL;

  g_assert_true (
      g_file_set_contents (fx->config, "[defaults]\nimage=debian\nkernel=BAD NAME\n", -1, &error));
  /* The broken kernel name is reported and replaced by the built-in default. */
  g_test_expect_message ("bangerd-core", G_LOG_LEVEL_WARNING, "*kernel*");
  open_engine (fx);
  g_test_assert_expected_messages ();
  g_assert_cmpstr (banger_vm_list_get_default_image (fx->engine), ==, "debian");
  g_assert_cmpstr (banger_vm_list_get_default_kernel (fx->engine), ==, BANGER_DEFAULT_KERNEL);
}

static void
test_mac (void)
{
  g_autofree char *mac = banger_vm_mac_from_id ("0a1b2c3d4e5f6789");

  g_assert_cmpstr (mac, ==, "52:54:0a:1b:2c:3d");
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add ("/engine/create-find-delete", Fixture, NULL, fixture_setup, test_create_find_delete,
              fixture_teardown);
  g_test_add ("/engine/invalid-spec", Fixture, NULL, fixture_setup, test_invalid_spec,
              fixture_teardown);
  g_test_add ("/engine/active-vm-is-kept", Fixture, NULL, fixture_setup, test_active_vm_is_kept,
              fixture_teardown);
  g_test_add ("/engine/config-defaults", Fixture, NULL, fixture_setup, test_config_defaults,
              fixture_teardown);
  g_test_add ("/engine/console-watch-follows-vms", Fixture, NULL, fixture_setup,
              test_console_watch_follows_vms, fixture_teardown);
  g_test_add_func ("/engine/mac", test_mac);
  return g_test_run ();
}
