#define G_LOG_DOMAIN "test-authorize"

#include <signal.h>

#include "authorize.h"
#include "banger-error.h"
#include "banger-helper-dbus.h"
#include "helper-config.h"

#define HELPER "org.banger.Helper"
#define VM_ID  "0123456789abcdef"

static void
test_missing_method_denied (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) params = g_variant_ref_sink (g_variant_new_parsed ("(@a{sv} {},)"));

  g_assert_null (banger_authorize_lookup (HELPER, "Frobnicate"));
  g_assert_null (banger_authorize_precheck (HELPER, "Frobnicate", params, NULL, &error));
  g_assert_error (error, G_DBUS_ERROR, G_DBUS_ERROR_ACCESS_DENIED);
  g_clear_error (&error);

  /* A known method name on another interface is not the same method. */
  g_assert_null (
      banger_authorize_precheck ("org.example.Other", "EnsureNetwork", params, NULL, &error));
  g_assert_error (error, G_DBUS_ERROR, G_DBUS_ERROR_ACCESS_DENIED);
  g_clear_error (&error);

  /* Writing properties is never allowed. */
  g_assert_null (banger_authorize_lookup ("org.freedesktop.DBus.Properties", "Set"));
}

static void
test_every_method_has_entry (void)
{
  GDBusInterfaceInfo *info = banger_helper_interface_info ();

  for (guint i = 0; info->methods[i] != NULL; i++) {
    const BangerAuthEntry *entry = banger_authorize_lookup (HELPER, info->methods[i]->name);

    g_test_message ("%s", info->methods[i]->name);
    g_assert_nonnull (entry);
    g_assert_nonnull (entry->action);
    g_assert_true (g_str_has_prefix (entry->action, "org.banger."));
    g_assert_nonnull (entry->option_keys);
    /* options is the last argument of every method */
    g_assert_cmpstr (info->methods[i]
                         ->in_args[g_strv_length ((char **)info->methods[i]->in_args) - 1]
                         ->signature,
                     ==, "a{sv}");
  }
}

static void
test_action_mapping (void)
{
  const struct {
    const char *method;
    const char *action;
  } expected[] = {
    { "EnsureNetwork", "org.banger.network.setup" },
    { "TeardownNetwork", "org.banger.network.setup" },
    { "CreateTap", "org.banger.vm.network" },
    { "DeleteTap", "org.banger.vm.network" },
    { "LaunchJailed", "org.banger.vm.launch" },
    { "KillJailed", "org.banger.vm.launch" },
    { "CreateSnapshot", "org.banger.storage.snapshot" },
    { "RemoveSnapshot", "org.banger.storage.snapshot" },
    { "ConfigureDNS", "org.banger.network.dns" },
    { "InspectFirewall", "org.banger.network.inspect" },
    { "InstallRelease", "org.banger.system.update" },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (expected); i++)
    g_assert_cmpstr (banger_authorize_lookup (HELPER, expected[i].method)->action, ==,
                     expected[i].action);
}

static void
assert_invalid (const char *method, const char *params_text)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) params = g_variant_ref_sink (g_variant_new_parsed (params_text));

  g_test_message ("%s%s", method, params_text);
  g_assert_null (banger_authorize_precheck (HELPER, method, params, NULL, &error));
  g_assert_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT);
}

static void
assert_valid (const char *method, const char *params_text)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) params = g_variant_ref_sink (g_variant_new_parsed (params_text));

  g_test_message ("%s%s", method, params_text);
  g_assert_nonnull (banger_authorize_precheck (HELPER, method, params, NULL, &error));
  g_assert_no_error (error);
}

static void
test_validation (void)
{
  assert_valid ("EnsureNetwork", "(@a{sv} {},)");
  assert_valid ("EnsureNetwork", "({'interactive': <true>},)");
  assert_invalid ("EnsureNetwork", "({'interactive': <'yes'>},)");
  assert_invalid ("EnsureNetwork", "({'bogus': <1>},)");

  assert_valid ("CreateTap", "('" VM_ID "', @a{sv} {})");
  assert_invalid ("CreateTap", "('../x', @a{sv} {})");
  assert_invalid ("CreateTap", "('0123456789ABCDEF', @a{sv} {})");
  assert_invalid ("DeleteTap", "('', @a{sv} {})");
  /* the address claim (issue 10, finding 6): both or neither, strict shapes */
  assert_valid ("CreateTap",
                "('" VM_ID "', {'mac': <'52:54:01:23:45:67'>, 'ipv4': <'10.77.0.5'>})");
  assert_invalid ("CreateTap", "('" VM_ID "', {'mac': <'52:54:01:23:45:67'>})");
  assert_invalid ("CreateTap", "('" VM_ID "', {'ipv4': <'10.77.0.5'>})");
  assert_invalid ("CreateTap",
                  "('" VM_ID "', {'mac': <'52:54:01:23:45:6G'>, 'ipv4': <'10.77.0.5'>})");
  assert_invalid ("CreateTap",
                  "('" VM_ID "', {'mac': <'52:54:01:23:45:67'>, 'ipv4': <'10.77.0.5 x'>})");
  assert_invalid ("CreateTap",
                  "('" VM_ID "', {'mac': <'03:54:01:23:45:67'>, 'ipv4': <'10.77.0.5'>})");
  assert_invalid ("CreateTap",
                  "('" VM_ID "', {'mac': <'52:54:01:23:45:67'>, 'ipv4': <'10.77.000.5'>})");
  assert_invalid ("DeleteTap",
                  "('" VM_ID "', {'mac': <'52:54:01:23:45:67'>, 'ipv4': <'10.77.0.5'>})");

  assert_valid ("KillJailed", "('" VM_ID "', 15, @a{sv} {})");
  assert_invalid ("KillJailed", "('" VM_ID "', 19, @a{sv} {})");
  assert_invalid ("KillJailed", "('" VM_ID "', -1, @a{sv} {})");

  assert_valid ("LaunchJailed",
                "({'vm_id': <'" VM_ID "'>, 'rootfs': <'/home/u/r.ext4'>}, @a{sv} {})");
  assert_invalid ("LaunchJailed", "(@a{sv} {}, @a{sv} {})");
  assert_invalid ("LaunchJailed", "({'vm_id': <'" VM_ID "'>, 'jailer': <'/bin/sh'>}, @a{sv} {})");
  assert_invalid ("LaunchJailed",
                  "({'vm_id': <'" VM_ID "'>, 'rootfs': <'/home/../etc'>}, @a{sv} {})");

  assert_valid ("CreateSnapshot", "('" VM_ID "', '/home/u/disk', @a{sv} {})");
  assert_invalid ("CreateSnapshot", "('" VM_ID "', 'disk', @a{sv} {})");
  assert_invalid ("CreateSnapshot", "('" VM_ID "', '/home//disk', @a{sv} {})");

  assert_valid ("InstallRelease", "('/var/lib/banger/staging', @a{sv} {})");
  assert_invalid ("InstallRelease", "('/var/lib/banger/./staging', @a{sv} {})");
}

static void
test_details (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) params
      = g_variant_ref_sink (g_variant_new_parsed ("('" VM_ID "', @a{sv} {})"));
  g_autoptr (PolkitDetails) details = polkit_details_new ();

  g_assert_nonnull (banger_authorize_precheck (HELPER, "CreateTap", params, details, &error));
  g_assert_cmpstr (polkit_details_lookup (details, "vm"), ==, VM_ID);
  g_assert_cmpstr (polkit_details_lookup (details, "tap"), ==, "bg0123456789ab");
}

static void
test_config_cidr (void)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *net = NULL;
  guint len = 0;

  net = banger_helper_config_parse_cidr ("10.77.0.1/24", &len, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (net, ==, "10.77.0.0/24");
  g_assert_cmpuint (len, ==, 24);

  g_assert_null (banger_helper_config_parse_cidr ("10.77.0.0/24", NULL, &error));
  g_assert_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_assert_null (banger_helper_config_parse_cidr ("10.77.0.1", NULL, &error));
  g_clear_error (&error);
  g_assert_null (banger_helper_config_parse_cidr ("10.77.0.1/31", NULL, &error));
  g_clear_error (&error);

  g_assert_true (banger_helper_config_check_ifname ("banger0", NULL));
  g_assert_false (banger_helper_config_check_ifname ("a\"b", NULL));
  g_assert_false (banger_helper_config_check_ifname ("sixteen-chars-xx", NULL));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/helper/authorize/missing-method-denied", test_missing_method_denied);
  g_test_add_func ("/helper/authorize/every-method-has-entry", test_every_method_has_entry);
  g_test_add_func ("/helper/authorize/action-mapping", test_action_mapping);
  g_test_add_func ("/helper/authorize/validation", test_validation);
  g_test_add_func ("/helper/authorize/details", test_details);
  g_test_add_func ("/helper/config/cidr", test_config_cidr);
  return g_test_run ();
}
