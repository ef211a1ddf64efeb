#define G_LOG_DOMAIN "test-vm-skeleton"

/* The VM object's kept a{sv} (dbus-vm-skeleton.c): what GetManagedObjects
 * and InterfacesAdded send must always be what the generated skeleton
 * would build from the current values, after any change, and a change
 * must still be announced with PropertiesChanged. No bus: the interface
 * skeleton is asked directly, as GDBusObjectManagerServer asks it. */

#include "dbus-vm.h"
#include "dbus-vm-skeleton.h"
#include "store.h"

/* What the generated code builds from @vm's current values: a plain
 * generated skeleton given the same values. */
static GVariant *
reference_properties (BangerVM *vm)
{
  g_autoptr (BangerVM) plain = banger_vm_skeleton_new ();
  GParamSpec **specs;
  guint n;

  specs = g_object_class_list_properties (G_OBJECT_GET_CLASS (plain), &n);
  for (guint i = 0; i < n; i++) {
    g_auto (GValue) value = G_VALUE_INIT;

    if (!(specs[i]->flags & G_PARAM_WRITABLE))
      continue;
    g_value_init (&value, specs[i]->value_type);
    g_object_get_property (G_OBJECT (vm), specs[i]->name, &value);
    g_object_set_property (G_OBJECT (plain), specs[i]->name, &value);
  }
  g_free (specs);
  return g_dbus_interface_skeleton_get_properties (G_DBUS_INTERFACE_SKELETON (plain));
}

static void
assert_properties_current (BangerVM *vm)
{
  g_autoptr (GVariant) got
      = g_dbus_interface_skeleton_get_properties (G_DBUS_INTERFACE_SKELETON (vm));
  g_autoptr (GVariant) want = reference_properties (vm);

  g_assert_true (g_variant_is_of_type (got, G_VARIANT_TYPE_VARDICT));
  if (!g_variant_equal (got, want)) {
    g_autofree char *g = g_variant_print (got, TRUE);
    g_autofree char *w = g_variant_print (want, TRUE);

    g_error ("kept properties %s differ from the current ones %s", g, w);
  }
}

static char *
lookup_string (BangerVM *vm, const char *key)
{
  g_autoptr (GVariant) props
      = g_dbus_interface_skeleton_get_properties (G_DBUS_INTERFACE_SKELETON (vm));
  char *value = NULL;

  g_assert_true (g_variant_lookup (props, key, "s", &value));
  return value;
}

static BangerVmRecord *
record (void)
{
  BangerVmRecord *rec = banger_vm_record_new ();

  g_free (rec->id);
  rec->id = g_strdup ("0123456789abcdef");
  g_free (rec->name);
  rec->name = g_strdup ("kept");
  g_free (rec->state);
  rec->state = g_strdup ("created");
  rec->vcpus = 2;
  rec->memory_mib = 1024;
  rec->created_at = 1700000000;
  return rec;
}

static void
test_follows_every_change (void)
{
  g_autoptr (BangerVmRecord) rec = record ();
  g_autoptr (BangerObjectSkeleton) object = banger_dbus_vm_new (NULL, rec);
  g_autoptr (BangerVM) vm = banger_object_get_vm (BANGER_OBJECT (object));
  g_autofree char *state = NULL;

  g_assert_true (BANGER_IS_DBUS_VM_SKELETON (vm));
  assert_properties_current (vm);
  assert_properties_current (vm); /* asked again, unchanged */

  /* What a start does to a record, one step at a time, each read between. */
  g_free (rec->state);
  rec->state = g_strdup ("starting");
  banger_dbus_vm_update (object, rec);
  assert_properties_current (vm);
  state = lookup_string (vm, "State");
  g_assert_cmpstr (state, ==, "starting");

  rec->pid = 4242;
  g_free (rec->ipv4);
  rec->ipv4 = g_strdup ("10.0.0.2");
  rec->started_at = 1700000100;
  banger_dbus_vm_update (object, rec);
  assert_properties_current (vm);

  g_free (rec->state);
  rec->state = g_strdup ("error");
  g_free (rec->last_error);
  rec->last_error = g_strdup ("starting VM “kept” failed: boom");
  rec->pid = 0;
  banger_dbus_vm_update (object, rec);
  assert_properties_current (vm);
  g_clear_pointer (&state, g_free);
  state = lookup_string (vm, "State");
  g_assert_cmpstr (state, ==, "error");

  /* A setter on its own (not through banger_dbus_vm_update) too. */
  banger_vm_set_memory_mi_b (vm, 2048);
  assert_properties_current (vm);

  /* The same values again change nothing. */
  banger_dbus_vm_update (object, rec);
  assert_properties_current (vm);
}

/* A setter, then the flush that sends PropertiesChanged: the notify the
 * kept a{sv} hooks into still chains to the generated skeleton's (which
 * schedules that signal), and what is kept follows. */
static void
test_flush_after_change (void)
{
  g_autoptr (BangerVmRecord) rec = record ();
  g_autoptr (BangerObjectSkeleton) object = banger_dbus_vm_new (NULL, rec);
  g_autoptr (BangerVM) vm = banger_object_get_vm (BANGER_OBJECT (object));

  assert_properties_current (vm);
  banger_vm_set_state (vm, "stopped");
  g_dbus_interface_skeleton_flush (G_DBUS_INTERFACE_SKELETON (vm));
  assert_properties_current (vm);
  g_assert_cmpstr (banger_vm_get_state (vm), ==, "stopped");
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/vm-skeleton/follows-every-change", test_follows_every_change);
  g_test_add_func ("/vm-skeleton/flush-after-change", test_flush_after_change);
  return g_test_run ();
}
