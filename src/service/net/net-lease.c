#include "net-lease.h"

#include <arpa/inet.h>

#include "banger-error.h"

gboolean
banger_parse_cidr (const char *cidr, guint32 *address, guint *prefix, GError **error)
{
  g_auto (GStrv) parts = g_strsplit (cidr ? cidr : "", "/", 2);
  struct in_addr in;
  guint64 len;
  char *end = NULL;

  if (g_strv_length (parts) != 2 || inet_pton (AF_INET, parts[0], &in) != 1) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
                 "“%s” is not an IPv4 address with a prefix length (like 10.77.0.1/24)",
                 cidr ? cidr : "");
    return FALSE;
  }
  len = g_ascii_strtoull (parts[1], &end, 10);
  /* A /31 or /32 has no room for VMs beside the bridge. */
  if (end == parts[1] || *end != '\0' || len < 8 || len > 30) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
                 "prefix length of “%s” must be between 8 and 30", cidr);
    return FALSE;
  }
  *address = ntohl (in.s_addr);
  *prefix = (guint)len;
  return TRUE;
}

/* FNV-1a: stable across builds and platforms, unlike g_str_hash's contract,
 * so a VM id maps to the same first candidate forever. */
static guint32
fnv1a (const char *s)
{
  guint32 h = 2166136261u;
  for (; *s; s++) {
    h ^= (guchar)*s;
    h *= 16777619u;
  }
  return h;
}

guint32
banger_lease_first_candidate (const char *vm_id, guint32 network, guint prefix)
{
  guint32 hosts = (1u << (32 - prefix)) - 2; /* without network and broadcast */
  return network + 1 + (fnv1a (vm_id) % hosts);
}

static char *
format_ipv4 (guint32 address)
{
  return g_strdup_printf ("%u.%u.%u.%u", address >> 24, (address >> 16) & 0xff,
                          (address >> 8) & 0xff, address & 0xff);
}

char *
banger_lease_acquire (BangerStore *store, const char *vm_id, const char *subnet, GError **error)
{
  return banger_lease_acquire_excluding (store, vm_id, subnet, NULL, error);
}

char *
banger_lease_acquire_excluding (BangerStore *store, const char *vm_id, const char *subnet,
                                const char *const *taken, GError **error)
{
  guint32 bridge, network, mask, hosts, candidate;
  guint prefix;
  g_autoptr (GError) local = NULL;
  g_autofree char *existing = NULL;

  existing = banger_store_lease_get (store, vm_id, &local);
  if (existing != NULL && *existing
      && (taken == NULL || !g_strv_contains (taken, existing)))
    return g_steal_pointer (&existing);
  if (existing != NULL && *existing && !banger_store_lease_release (store, vm_id, error))
    return NULL;
  if (local != NULL && !g_error_matches (local, BANGER_ERROR, BANGER_ERROR_NOT_FOUND)) {
    g_propagate_error (error, g_steal_pointer (&local));
    return NULL;
  }
  g_clear_error (&local);

  if (!banger_parse_cidr (subnet, &bridge, &prefix, error))
    return NULL;
  mask = prefix == 0 ? 0 : 0xffffffffu << (32 - prefix);
  network = bridge & mask;
  hosts = (1u << (32 - prefix)) - 2;
  candidate = banger_lease_first_candidate (vm_id, network, prefix);

  for (guint32 tries = 0; tries < hosts; tries++) {
    guint32 offset = (candidate - network - 1 + tries) % hosts;
    guint32 address = network + 1 + offset;
    g_autofree char *text = NULL;

    if (address == bridge)
      continue;
    text = format_ipv4 (address);
    if (taken != NULL && g_strv_contains (taken, text))
      continue;
    if (banger_store_lease_claim (store, vm_id, text, &local))
      return g_steal_pointer (&text);
    if (!g_error_matches (local, BANGER_ERROR, BANGER_ERROR_EXISTS)) {
      g_propagate_error (error, g_steal_pointer (&local));
      return NULL;
    }
    g_clear_error (&local); /* taken: probe the next address */
  }
  g_set_error (error, BANGER_ERROR, BANGER_ERROR_BUSY, "no free address left in %s", subnet);
  return NULL;
}
