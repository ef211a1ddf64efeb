#include "helper-config.h"

#include <arpa/inet.h>
#include <net/if.h>
#include <string.h>

#include "config.h"

#include "banger-error.h"

#define DEFAULT_BRIDGE  "banger0"
#define DEFAULT_ADDRESS "10.77.0.1/24"
/* bangerd's default [dns] port (docs/dns.md) */
#define DEFAULT_DNS_PORT 42069
/* The build's own directories: an installed helper swaps what it was
 * installed with unless root's file says otherwise. */
#define DEFAULT_STAGING_DIRS "%h/.cache/banger"

void
banger_helper_config_free (BangerHelperConfig *config)
{
  if (config == NULL)
    return;
  g_free (config->bridge);
  g_free (config->address);
  g_free (config->subnet);
  g_free (config->update_bindir);
  g_free (config->update_libexecdir);
  g_free (config->update_install_toml);
  g_strfreev (config->update_staging_dirs);
  g_free (config);
}

gboolean
banger_helper_config_check_ifname (const char *name, GError **error)
{
  gsize len = name != NULL ? strlen (name) : 0;

  if (len == 0 || len >= IFNAMSIZ) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
                 "interface name “%s” must be 1 to %d characters", name ? name : "", IFNAMSIZ - 1);
    return FALSE;
  }
  for (gsize i = 0; i < len; i++) {
    if (!g_ascii_isalnum (name[i]) && name[i] != '_' && name[i] != '-') {
      g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
                   "interface name “%s” may only hold letters, digits, ‘_’ and ‘-’", name);
      return FALSE;
    }
  }
  return TRUE;
}

char *
banger_helper_config_parse_cidr (const char *cidr, guint *prefix_len, GError **error)
{
  g_auto (GStrv) parts = g_strsplit (cidr, "/", -1);
  struct in_addr addr;
  guint64 len = 0;
  guint32 host, mask, net;
  char buf[INET_ADDRSTRLEN];

  /* GInetAddressMask would reject "10.77.0.1/24" (host bits set), which
   * is exactly the form an interface address takes, so parse it here. */
  if (g_strv_length (parts) != 2 || inet_pton (AF_INET, parts[0], &addr) != 1
      || !g_ascii_string_to_unsigned (parts[1], 10, 8, 30, &len, NULL)) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
                 "“%s” is not an IPv4 address with a prefix length of 8 to 30", cidr);
    return NULL;
  }
  host = ntohl (addr.s_addr);
  mask = 0xffffffffu << (32 - len);
  net = host & mask;
  if (host == net || host == (net | ~mask)) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
                 "“%s” is the network or broadcast address of its subnet", cidr);
    return NULL;
  }
  addr.s_addr = htonl (net);
  inet_ntop (AF_INET, &addr, buf, sizeof buf);
  if (prefix_len != NULL)
    *prefix_len = (guint)len;
  return g_strdup_printf ("%s/%u", buf, (guint)len);
}

static gboolean
load_update_path (GKeyFile *kf, const char *path, const char *key, char **value, GError **error)
{
  g_autofree char *v = g_key_file_get_string (kf, "update", key, NULL);

  if (v == NULL)
    return TRUE;
  if (!g_path_is_absolute (v)) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
                 "%s: [update] %s: “%s” is not absolute", path, key, v);
    return FALSE;
  }
  g_free (*value);
  *value = g_steal_pointer (&v);
  return TRUE;
}

static gboolean
load_update (GKeyFile *kf, const char *path, BangerHelperConfig *config, GError **error)
{
  g_autofree char *dirs = g_key_file_get_string (kf, "update", "staging_dirs", NULL);

  if (!load_update_path (kf, path, "bindir", &config->update_bindir, error)
      || !load_update_path (kf, path, "libexecdir", &config->update_libexecdir, error)
      || !load_update_path (kf, path, "install_toml", &config->update_install_toml, error))
    return FALSE;
  if (dirs == NULL)
    return TRUE;
  config->update_staging_dirs = g_strsplit (dirs, ";", -1);
  for (guint i = 0; config->update_staging_dirs[i] != NULL; i++) {
    const char *d = config->update_staging_dirs[i];
    if (!g_str_has_prefix (d, "/") && !g_str_has_prefix (d, "%h/")) {
      g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
                   "%s: [update] staging_dirs: “%s” is not absolute", path, d);
      return FALSE;
    }
  }
  return TRUE;
}

/* The port is root's choice, not the caller's: whoever can name the port
 * can send every .vm lookup on the host (and the searches that leak into
 * it) to a listener of their own. */
static gboolean
load_dns (GKeyFile *kf, const char *path, BangerHelperConfig *config, GError **error)
{
  g_autofree char *port = g_key_file_get_string (kf, "dns", "port", NULL);
  guint64 value = 0;

  if (port == NULL)
    return TRUE;
  if (!g_ascii_string_to_unsigned (g_strstrip (port), 10, 1, G_MAXUINT16, &value, NULL)) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
                 "%s: [dns] port: “%s” is not a port from 1 to 65535", path, port);
    return FALSE;
  }
  config->dns_port = (guint16)value;
  return TRUE;
}

BangerHelperConfig *
banger_helper_config_load (const char *path, GError **error)
{
  g_autoptr (BangerHelperConfig) config = g_new0 (BangerHelperConfig, 1);
  g_autoptr (GKeyFile) kf = g_key_file_new ();
  g_autoptr (GError) local = NULL;

  config->bridge = g_strdup (DEFAULT_BRIDGE);
  config->address = g_strdup (DEFAULT_ADDRESS);
  config->update_bindir = g_strdup (BANGER_BINDIR);
  config->update_libexecdir = g_strdup (BANGER_LIBEXECDIR);
  config->update_install_toml = g_strdup (BANGER_SYSCONFDIR "/install.toml");
  config->dns_port = DEFAULT_DNS_PORT;

  if (!g_key_file_load_from_file (kf, path, G_KEY_FILE_NONE, &local)) {
    if (!g_error_matches (local, G_FILE_ERROR, G_FILE_ERROR_NOENT)) {
      g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT, "cannot read %s: %s", path,
                   local->message);
      return NULL;
    }
    g_debug ("no %s, using the defaults", path);
  } else {
    g_autofree char *bridge = g_key_file_get_string (kf, "network", "bridge", NULL);
    g_autofree char *address = g_key_file_get_string (kf, "network", "address", NULL);

    if (bridge != NULL) {
      g_free (config->bridge);
      config->bridge = g_steal_pointer (&bridge);
    }
    if (address != NULL) {
      g_free (config->address);
      config->address = g_steal_pointer (&address);
    }
    if (!load_update (kf, path, config, error))
      return NULL;
    if (!load_dns (kf, path, config, error))
      return NULL;
  }
  if (config->update_staging_dirs == NULL)
    config->update_staging_dirs = g_strsplit (DEFAULT_STAGING_DIRS, ";", -1);

  if (!banger_helper_config_check_ifname (config->bridge, error)) {
    g_prefix_error (error, "%s: [network] bridge: ", path);
    return NULL;
  }
  config->subnet = banger_helper_config_parse_cidr (config->address, &config->prefix_len, error);
  if (config->subnet == NULL) {
    g_prefix_error (error, "%s: [network] address: ", path);
    return NULL;
  }
  return g_steal_pointer (&config);
}
