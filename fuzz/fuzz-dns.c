/* DNS queries to the .vm responder (src/service/net/dns-wire.c): parse, then
 * answer with a lookup that knows one name. */
#include "fuzz-common.h"

#include "dns-wire.h"

#include <string.h>

static BangerDnsLookup
lookup (const char *vm_name, guint8 addr[4], gpointer user_data)
{
  if (strcmp (vm_name, "dev") == 0) {
    addr[0] = 10, addr[1] = 77, addr[2] = 0, addr[3] = 2;
    return BANGER_DNS_LOOKUP_FOUND;
  }
  return BANGER_DNS_LOOKUP_NOT_FOUND;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  BangerDnsQuery q;
  guint8 out[4096];
  /* A copy exactly the input's size, so ASan sees any read past it. */
  g_autofree guint8 *msg = g_memdup2 (data, size);
  (void)banger_dns_parse_query (msg, size, &q);
  int rcode = 0;
  gsize n = banger_dns_answer (msg, size, lookup, NULL, out, sizeof out, &rcode);
  if (n > sizeof out)
    abort ();
  return 0;
}
