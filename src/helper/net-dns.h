#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* The port bangerd's DNS responder listens on unless configured otherwise
 * (bangerd's [dns] port=). */
#define BANGER_NET_DNS_DEFAULT_PORT 42069

/* net-dns.c: routes the "vm" domain to 127.0.0.1:@port through
 * systemd-resolved on @bus: SetLinkDNSEx, SetLinkDomains (~vm),
 * SetLinkDefaultRoute(false) and SetLinkDNSSEC("no") on @bridge's link.
 * BANGER_ERROR_UNSUPPORTED (saying what to do instead) where resolved does
 * not run, BAD_STATE if the bridge does not exist, FAILED naming the
 * method resolved refused. */
gboolean banger_net_dns_configure (GDBusConnection *bus, const char *bridge, guint16 port,
                                   GError **error);

G_END_DECLS
