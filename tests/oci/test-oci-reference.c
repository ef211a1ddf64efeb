#define G_LOG_DOMAIN "test-oci-reference"

/* Reference parsing and the pure parts of the layer and size code, without
 * a registry. */

#include <glib.h>

#include "banger-error.h"
#include "oci-layers.h"
#include "oci-reference.h"

static void
check (const char *text, const char *canonical, const char *host)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (BangerOciReference) ref = banger_oci_reference_parse (text, &error);
  g_autofree char *s = NULL;

  g_assert_no_error (error);
  s = banger_oci_reference_to_string (ref);
  g_assert_cmpstr (s, ==, canonical);
  g_assert_cmpstr (banger_oci_reference_api_host (ref), ==, host);
}

static void
test_parse (void)
{
  const char *d = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
  g_autofree char *with_digest = g_strconcat ("quay.io/org/app@", d, NULL);
  g_autofree char *with_digest_c = g_strconcat ("quay.io/org/app@", d, NULL);
  g_autofree char *tag_digest = g_strconcat ("debian:12@", d, NULL);
  g_autofree char *tag_digest_c = g_strconcat ("docker.io/library/debian:12@", d, NULL);

  check ("debian", "docker.io/library/debian:latest", "registry-1.docker.io");
  check ("debian:bookworm", "docker.io/library/debian:bookworm", "registry-1.docker.io");
  check ("docker.io/library/debian:bookworm", "docker.io/library/debian:bookworm",
         "registry-1.docker.io");
  check ("index.docker.io/user/app", "docker.io/user/app:latest", "registry-1.docker.io");
  check ("user/app:1.0", "docker.io/user/app:1.0", "registry-1.docker.io");
  check ("localhost/app", "localhost/app:latest", "localhost");
  check ("127.0.0.1:5000/a/b/c:v-1.2_3", "127.0.0.1:5000/a/b/c:v-1.2_3", "127.0.0.1:5000");
  check (with_digest, with_digest_c, "quay.io");
  check (tag_digest, tag_digest_c, "registry-1.docker.io");
}

static void
test_invalid (void)
{
  const char *bad[] = { "",
                        "UPPER/case",
                        "debian:",
                        "debian@sha256:abc",
                        "a//b",
                        "debian:bad/tag",
                        "reg.io/../x",
                        "debian:-x",
                        "-debian",
                        NULL };
  for (guint i = 0; bad[i] != NULL; i++) {
    g_autoptr (GError) error = NULL;
    g_autoptr (BangerOciReference) ref = banger_oci_reference_parse (bad[i], &error);
    g_assert_null (ref);
    g_assert_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT);
  }
}

static void
test_clean_path (void)
{
  struct {
    const char *in, *out;
  } ok[] = { { "./a/b", "/a/b" }, { "a//b/./c/", "/a/b/c" }, { ".", "/" }, { "./", "/" } };
  const char *bad[] = { "/etc/passwd", "../x", "a/../../x", "a/..", "", NULL };

  for (guint i = 0; i < G_N_ELEMENTS (ok); i++) {
    g_autoptr (GError) error = NULL;
    g_autofree char *c = banger_oci_layer_clean_path (ok[i].in, &error);
    g_assert_no_error (error);
    g_assert_cmpstr (c, ==, ok[i].out);
  }
  for (guint i = 0; bad[i] != NULL; i++) {
    g_autoptr (GError) error = NULL;
    g_autofree char *c = banger_oci_layer_clean_path (bad[i], &error);
    g_assert_null (c);
    g_assert_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT);
  }
}

static void
test_size (void)
{
  g_autoptr (GError) error = NULL;
  guint64 size, inodes;

  g_assert_true (banger_oci_rootfs_size (0, 0, 0, &size, &inodes, &error));
  g_assert_cmpuint (size, ==, 64ULL << 20);
  g_assert_true (banger_oci_rootfs_size (1ULL << 30, 30000, 0, &size, &inodes, &error));
  g_assert_cmpuint (size, >, (1ULL << 30) * 125 / 100);
  g_assert_cmpuint (size % (1 << 20), ==, 0);
  g_assert_cmpuint (inodes, >=, 30000 * 125 / 100);
  g_assert_true (banger_oci_rootfs_size (1 << 20, 10, 200, &size, NULL, &error));
  g_assert_cmpuint (size, ==, 200ULL << 20);
  g_assert_false (banger_oci_rootfs_size (1ULL << 30, 10, 100, &size, NULL, &error));
  g_assert_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/oci/reference/parse", test_parse);
  g_test_add_func ("/oci/reference/invalid", test_invalid);
  g_test_add_func ("/oci/layers/clean-path", test_clean_path);
  g_test_add_func ("/oci/layers/size", test_size);
  return g_test_run ();
}
