#define G_LOG_DOMAIN "test-common"

#include <gio/gio.h>

#include "banger-error.h"
#include "validate.h"

static void
test_name (void)
{
  const char *good[] = { "a", "dev", "web-1", "x0", "abcdefghijabcdefghijabcdefghijab" };
  const char *bad[] = { "", "1dev", "-dev", "dev-", "Dev", "de_v", "dev.vm", "dév", "a b",
                        "abcdefghijabcdefghijabcdefghijabc" };

  for (guint i = 0; i < G_N_ELEMENTS (good); i++) {
    g_autoptr (GError) error = NULL;
    g_assert_true (banger_validate_name ("VM", good[i], &error));
    g_assert_no_error (error);
  }
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++) {
    g_autoptr (GError) error = NULL;
    g_assert_false (banger_validate_name ("VM", bad[i], &error));
    g_assert_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT);
    /* The message names what was wrong. */
    g_assert_nonnull (strstr (error->message, "VM name"));
  }
  {
    g_autoptr (GError) error = NULL;
    g_assert_false (banger_validate_name ("VM", NULL, &error));
    g_assert_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT);
  }
}

static void
test_vm_id (void)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *id = banger_vm_id_new ();

  g_assert_true (banger_validate_vm_id (id, &error));
  g_assert_no_error (error);
  g_assert_true (banger_validate_vm_id ("0123456789abcdef", NULL));
  g_assert_false (banger_validate_vm_id ("0123456789ABCDEF", NULL));
  g_assert_false (banger_validate_vm_id ("0123456789abcde", NULL));
  g_assert_false (banger_validate_vm_id ("0123456789abcdef0", NULL));
  g_assert_false (banger_validate_vm_id ("../../etc/passwd", NULL));
  g_assert_false (banger_validate_vm_id (NULL, NULL));
}

static GVariant *
spec_parse (const char *text)
{
  g_autoptr (GError) error = NULL;
  GVariant *v = g_variant_parse (G_VARIANT_TYPE_VARDICT, text, NULL, NULL, &error);
  g_assert_no_error (error);
  return g_variant_ref_sink (v);
}

static void
expect_spec_error (const char *text, const char *needle)
{
  g_autoptr (GVariant) v = spec_parse (text);
  g_autoptr (GError) error = NULL;
  g_autoptr (BangerVmSpec) spec = banger_vm_spec_from_variant (v, &error);

  g_assert_null (spec);
  g_assert_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT);
  if (strstr (error->message, needle) == NULL)
    g_error ("error for %s was “%s”, expected it to name “%s”", text, error->message, needle);
}

static void
test_spec (void)
{
  {
    g_autoptr (GVariant) v = spec_parse ("{'name': <'dev'>}");
    g_autoptr (GError) error = NULL;
    g_autoptr (BangerVmSpec) spec = banger_vm_spec_from_variant (v, &error);
    g_assert_no_error (error);
    g_assert_cmpstr (spec->name, ==, "dev");
    g_assert_null (spec->image);
    g_assert_cmpuint (spec->vcpus, ==, BANGER_VCPUS_DEFAULT);
    g_assert_cmpuint (spec->memory_mib, ==, BANGER_MEMORY_MIB_DEFAULT);
    g_assert_cmpuint (spec->disk_mib, ==, BANGER_DISK_MIB_DEFAULT);
  }
  {
    g_autoptr (GVariant) v = spec_parse (
      "{'name': <'web'>, 'image': <'minimal'>, 'kernel': <'cloud'>, 'driver': <'qemu'>,"
      " 'vcpus': <uint32 4>, 'memory_mib': <uint32 2048>, 'disk_mib': <uint32 1024>}");
    g_autoptr (GError) error = NULL;
    g_autoptr (BangerVmSpec) spec = banger_vm_spec_from_variant (v, &error);
    g_assert_no_error (error);
    g_assert_cmpstr (spec->image, ==, "minimal");
    g_assert_cmpstr (spec->kernel, ==, "cloud");
    g_assert_cmpstr (spec->driver, ==, "qemu");
    g_assert_cmpuint (spec->vcpus, ==, 4);
    g_assert_cmpuint (spec->memory_mib, ==, 2048);
    g_assert_cmpuint (spec->disk_mib, ==, 1024);
  }
  expect_spec_error ("{'image': <'minimal'>}", "no “name”");
  expect_spec_error ("{'name': <'dev'>, 'colour': <'red'>}", "unknown key “colour”");
  expect_spec_error ("{'name': <'Dev'>}", "VM name");
  expect_spec_error ("{'name': <'dev'>, 'memory_mib': <uint32 99999999>}", "memory_mib");
  expect_spec_error ("{'name': <'dev'>, 'memory_mib': <uint32 1>}", "memory_mib");
  expect_spec_error ("{'name': <'dev'>, 'memory_mib': <'lots'>}", "memory_mib");
  expect_spec_error ("{'name': <'dev'>, 'vcpus': <uint32 0>}", "vcpus");
  expect_spec_error ("{'name': <'dev'>, 'disk_mib': <uint32 1>}", "disk_mib");
  expect_spec_error ("{'name': <'dev'>, 'driver': <'xen'>}", "driver");
  expect_spec_error ("{'name': <'dev'>, 'image': <'../x'>}", "image name");
  expect_spec_error ("{'name': <42>}", "name");
}

static void
test_options (void)
{
  static const char *const allowed[] = { "interactive", "b", "force", "b", NULL };
  {
    g_autoptr (GVariant) v = spec_parse ("{'interactive': <true>}");
    g_assert_true (banger_validate_options (v, allowed, NULL));
  }
  {
    g_autoptr (GVariant) v = spec_parse ("{'interactive': <'yes'>}");
    g_autoptr (GError) error = NULL;
    g_assert_false (banger_validate_options (v, allowed, &error));
    g_assert_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT);
    g_assert_nonnull (strstr (error->message, "interactive"));
  }
  {
    g_autoptr (GVariant) v = spec_parse ("{'sneaky': <true>}");
    g_autoptr (GError) error = NULL;
    g_assert_false (banger_validate_options (v, allowed, &error));
    g_assert_nonnull (strstr (error->message, "sneaky"));
  }
}

static void
test_error_mapping (void)
{
  struct {
    GQuark domain;
    int code;
    int expect;
  } cases[] = {
    { G_IO_ERROR, G_IO_ERROR_NOT_FOUND, BANGER_ERROR_NOT_FOUND },
    { G_IO_ERROR, G_IO_ERROR_EXISTS, BANGER_ERROR_EXISTS },
    { G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED, BANGER_ERROR_NOT_AUTHORIZED },
    { G_IO_ERROR, G_IO_ERROR_CANCELLED, BANGER_ERROR_CANCELLED },
    { G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED, BANGER_ERROR_UNSUPPORTED },
    { G_IO_ERROR, G_IO_ERROR_TIMED_OUT, BANGER_ERROR_NETWORK },
    { G_IO_ERROR, G_IO_ERROR_FAILED, BANGER_ERROR_FAILED },
    { G_FILE_ERROR, G_FILE_ERROR_NOENT, BANGER_ERROR_NOT_FOUND },
    { G_FILE_ERROR, G_FILE_ERROR_ACCES, BANGER_ERROR_NOT_AUTHORIZED },
    { G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_PARSE, BANGER_ERROR_FAILED },
    { G_VARIANT_PARSE_ERROR, G_VARIANT_PARSE_ERROR_FAILED, BANGER_ERROR_FAILED },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++) {
    GError *error = g_error_new (cases[i].domain, cases[i].code, "case %u", i);
    g_autofree char *remote = NULL;
    g_autofree char *message = g_strdup_printf ("case %u", i);

    banger_error_convert (&error);
    g_assert_error (error, BANGER_ERROR, cases[i].expect);
    g_assert_cmpstr (error->message, ==, message);
    /* Over the bus it must be one of banger's names, never a GLib one. */
    remote = g_dbus_error_encode_gerror (error);
    g_assert_true (g_str_has_prefix (remote, "org.banger.Error."));
    g_error_free (error);
  }

  {
    GError *error = g_error_new (G_DBUS_ERROR, G_DBUS_ERROR_ACCESS_DENIED, "no");
    g_autofree char *remote = NULL;
    banger_error_convert (&error);
    g_assert_error (error, G_DBUS_ERROR, G_DBUS_ERROR_ACCESS_DENIED);
    remote = g_dbus_error_encode_gerror (error);
    g_assert_cmpstr (remote, ==, "org.freedesktop.DBus.Error.AccessDenied");
    g_error_free (error);
  }
  banger_error_convert (NULL);
}

static void
test_error_names (void)
{
  const char *names[] = { "Failed", "NotFound", "Exists", "InvalidArgument", "BadState",
                          "NotAuthorized", "Busy", "Network", "Registry", "Verification",
                          "Unsupported", "Cancelled" };

  G_STATIC_ASSERT (G_N_ELEMENTS (names) == BANGER_ERROR_LAST);
  for (int code = 0; code < BANGER_ERROR_LAST; code++) {
    g_autoptr (GError) error = g_error_new_literal (BANGER_ERROR, code, "x");
    g_autofree char *remote = g_dbus_error_encode_gerror (error);
    g_autofree char *expect = g_strconcat ("org.banger.Error.", names[code], NULL);
    g_autoptr (GError) back = NULL;

    g_assert_cmpstr (remote, ==, expect);
    g_assert_cmpstr (banger_error_short_name (remote), ==, names[code]);
    /* A client gets the same domain and code back. */
    back = g_dbus_error_new_for_dbus_error (remote, "x");
    g_assert_error (back, BANGER_ERROR, code);
  }
  g_assert_null (banger_error_short_name ("org.freedesktop.DBus.Error.Failed"));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/validate/name", test_name);
  g_test_add_func ("/validate/vm-id", test_vm_id);
  g_test_add_func ("/validate/spec", test_spec);
  g_test_add_func ("/validate/options", test_options);
  g_test_add_func ("/error/mapping", test_error_mapping);
  g_test_add_func ("/error/dbus-names", test_error_names);
  return g_test_run ();
}
