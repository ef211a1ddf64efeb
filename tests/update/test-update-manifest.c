#define G_LOG_DOMAIN "test-update-manifest"

#include "banger-error.h"
#include "update-manifest.h"

#define BASE "https://example.invalid/releases/manifest.json"

static void
test_good (void)
{
  const char *json
      = "{\"schema\": 1, \"latest\": \"0.2.0\", \"versions\": {"
        "\"0.2.0\": {\"tarball\": \"banger-0.2.0-x86_64.tar.gz\","
        " \"sha256sums\": \"0.2.0/SHA256SUMS\", \"signature\": \"0.2.0/SHA256SUMS.sig\","
        " \"size\": 10, \"notes\": \"hi\"},"
        "\"0.1.5\": {\"tarball\": \"https://m.invalid/t.tgz\","
        " \"sha256sums\": \"s\", \"signature\": \"g\"}}}";
  g_autoptr (GError) error = NULL;
  g_autoptr (BangerReleaseManifest) m
      = banger_release_manifest_parse (json, strlen (json), BASE, &error);
  const BangerReleaseEntry *e;

  g_assert_no_error (error);
  g_assert_cmpstr (m->latest, ==, "0.2.0");
  e = banger_release_manifest_find (m, "v0.2.0", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (e->tarball, ==, "https://example.invalid/releases/banger-0.2.0-x86_64.tar.gz");
  g_assert_cmpstr (e->signature, ==, "https://example.invalid/releases/0.2.0/SHA256SUMS.sig");
  g_assert_cmpuint (e->size, ==, 10);
  g_assert_cmpstr (e->notes, ==, "hi");
  g_assert_null (banger_release_manifest_find (m, "9.9.9", &error));
  g_assert_error (error, BANGER_ERROR, BANGER_ERROR_NOT_FOUND);
}

static void
test_malformed (void)
{
  static const struct {
    const char *json;
    const char *message;
  } cases[] = {
    { "not json", "not JSON" },
    { "[]", "not a JSON object" },
    { "{\"latest\": \"1.0.0\", \"versions\": {}}", "schema" },
    { "{\"schema\": 2, \"latest\": \"1.0.0\", \"versions\": {}}", "schema" },
    { "{\"schema\": 1, \"latest\": \"1.0.0\"}", "versions" },
    { "{\"schema\": 1, \"versions\": {}}", "latest" },
    { "{\"schema\": 1, \"latest\": \"1.0.0\", \"versions\": {}}", "not one of the versions" },
    { "{\"schema\": 1, \"latest\": \"1.0\", \"versions\": {\"1.0\": {}}}", "not a version" },
    { "{\"schema\": 1, \"latest\": \"1.0.0\", \"versions\": {\"1.0.0\": 5}}", "not an object" },
    { "{\"schema\": 1, \"latest\": \"1.0.0\", \"versions\": {\"1.0.0\": {\"tarball\": \"t\","
      " \"signature\": \"g\"}}}",
      "“sha256sums” is missing" },
    { "{\"schema\": 1, \"latest\": \"1.0.0\", \"versions\": {\"1.0.0\": {\"tarball\": 3,"
      " \"sha256sums\": \"s\", \"signature\": \"g\"}}}",
      "not a non-empty string" },
    { "{\"schema\": 1, \"latest\": \"1.0.0\", \"versions\": {\"1.0.0\": {\"tarball\":"
      " \"file:///etc/passwd\", \"sha256sums\": \"s\", \"signature\": \"g\"}}}",
      "not an http(s) URL" },
    { "{\"schema\": 1, \"latest\": \"1.0.0\", \"versions\": {\"1.0.0\": {\"tarball\": \"t\","
      " \"sha256sums\": \"s\", \"signature\": \"g\", \"size\": -1}}}",
      "byte count" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++) {
    g_autoptr (GError) error = NULL;
    g_autoptr (BangerReleaseManifest) m
        = banger_release_manifest_parse (cases[i].json, strlen (cases[i].json), BASE, &error);

    g_assert_null (m);
    g_assert_error (error, BANGER_ERROR, BANGER_ERROR_VERIFICATION);
    if (strstr (error->message, cases[i].message) == NULL)
      g_error ("case %u: “%s” does not mention “%s”", i, error->message, cases[i].message);
  }
}

static void
test_versions (void)
{
  g_assert_cmpint (banger_release_version_compare ("0.10.0", "0.9.9"), >, 0);
  g_assert_cmpint (banger_release_version_compare ("v1.2.3", "1.2.3"), ==, 0);
  g_assert_cmpint (banger_release_version_compare ("1.2.3", "1.2.4"), <, 0);
  g_assert_false (banger_release_version_parse ("1.2", NULL));
  g_assert_false (banger_release_version_parse ("1.2.-3", NULL));
  g_assert_false (banger_release_version_parse ("1.2.3.4", NULL));
  g_assert_false (banger_release_version_parse ("1.2. 3", NULL));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/update/manifest/good", test_good);
  g_test_add_func ("/update/manifest/malformed", test_malformed);
  g_test_add_func ("/update/versions", test_versions);
  return g_test_run ();
}
