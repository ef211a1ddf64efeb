#include "dns-responder.h"
#include "helper-client.h"

/* Here rather than at the call site: whether and how .vm routing is asked
 * for is the DNS part's business. Failure is only logged (docs/dns.md):
 * names still resolve when asked of the responder directly. */
void
banger_dns_route_vm_domain (BangerDnsResponder *dns, BangerHelperClient *helper)
{
  g_autoptr (GError) error = NULL;
  guint port;

  if (dns == NULL)
    return;
  port = banger_dns_responder_get_port (dns);
  if (port == 0 || port > G_MAXUINT16)
    return;
  /* Only a port this bangerd holds: if its bind failed, whoever squats
   * the port would answer (and see) every user's .vm lookups once they
   * are routed there. The next VM start after the responder got the port
   * asks again. */
  if (!banger_dns_responder_is_running (dns)) {
    g_info ("DNS routing for .vm not asked for: the responder does not listen on 127.0.0.1:%u (%s)",
            port, banger_dns_responder_get_problem (dns));
    return;
  }
  /* Unsupported (no systemd-resolved) is the usual answer on hosts that
   * route .vm some other way: not worth more than info. */
  if (!banger_helper_client_configure_dns (helper, (guint16)port, &error))
    g_info ("DNS routing for .vm through the helper: %s", error->message);
  else
    g_info ("DNS routing: the helper sends .vm lookups to 127.0.0.1:%u", port);
}
