#define G_LOG_DOMAIN "banger-helper-config"

#include "helper-config.h"

#include <arpa/inet.h>
#include <net/if.h>
#include <string.h>

#include "banger-error.h"

#define DEFAULT_BRIDGE  "banger0"
#define DEFAULT_ADDRESS "10.77.0.1/24"

void
banger_helper_config_free (BangerHelperConfig *config)
{
  if (config == NULL)
    return;
  g_free (config->bridge);
  g_free (config->address);
  g_free (config->subnet);
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

BangerHelperConfig *
banger_helper_config_load (const char *path, GError **error)
{
  g_autoptr (BangerHelperConfig) config = g_new0 (BangerHelperConfig, 1);
  g_autoptr (GKeyFile) kf = g_key_file_new ();
  g_autoptr (GError) local = NULL;

  config->bridge = g_strdup (DEFAULT_BRIDGE);
  config->address = g_strdup (DEFAULT_ADDRESS);

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
  }

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
