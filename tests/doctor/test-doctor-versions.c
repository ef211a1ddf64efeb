/* The version parsing and ordering behind the qemu, firecracker and jailer
 * rows (src/service/doctor/doctor-versions.c), on the texts the real programs
 * print. */
#include <glib.h>

#include "doctor-versions.h"

static void
test_parse (void)
{
  static const struct {
    const char *text, *prefix, *want;
  } cases[] = {
    { "QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)\nCopyright (c) 2003-2022",
      "version ", "7.2.22" },
    { "QEMU emulator version 8.0.0\n", "version ", "8.0.0" },
    { "QEMU emulator version 9.1\n", "version ", "9.1.0" },
    { "Firecracker v1.16.1\n\n", "Firecracker ", "1.16.1" },
    { "Jailer v1.10.0-dev\n", "Jailer ", "1.10.0" },
    { "Firecracker 1.7.0\n", "Firecracker ", "1.7.0" },
    { "QEMU emulator version 7\n", "version ", NULL },
    { "qemu: unknown option --version\n", "version ", NULL },
    { "", "Firecracker ", NULL },
    { NULL, "Firecracker ", NULL },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++) {
    g_autofree char *got = banger_doctor_parse_version (cases[i].text, cases[i].prefix);
    g_assert_cmpstr (got, ==, cases[i].want);
  }
}

static void
test_compare (void)
{
  g_assert_cmpint (banger_doctor_version_compare ("7.2.22", BANGER_QEMU_MIN_VERSION), >, 0);
  g_assert_cmpint (banger_doctor_version_compare ("7.2.22", BANGER_QEMU_UNTESTED_VERSION), <, 0);
  g_assert_cmpint (banger_doctor_version_compare ("6.2.0", BANGER_QEMU_MIN_VERSION), <, 0);
  g_assert_cmpint (banger_doctor_version_compare ("10.0.0", BANGER_QEMU_UNTESTED_VERSION), ==, 0);
  g_assert_cmpint (banger_doctor_version_compare ("1.16.1", BANGER_FC_MIN_VERSION), >, 0);
  g_assert_cmpint (banger_doctor_version_compare ("1.9.9", BANGER_FC_MIN_VERSION), <, 0);
  g_assert_cmpint (banger_doctor_version_compare ("1.10", "1.10.0"), ==, 0);
  g_assert_cmpint (banger_doctor_version_compare ("0.0.0", "0.1.0"), <, 0);
  g_assert_cmpint (banger_doctor_version_compare ("0.10.0", "0.9.0"), >, 0);
  g_assert_cmpint (banger_doctor_version_compare ("", "0.1.0"), <, 0);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/doctor/versions/parse", test_parse);
  g_test_add_func ("/doctor/versions/compare", test_compare);
  return g_test_run ();
}
