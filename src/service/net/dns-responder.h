#pragma once

#include <gio/gio.h>

#include "helper-client.h"
#include "banger-config.h"
#include "store.h"

G_BEGIN_DECLS

/* bangerd's DNS responder: "<name>.vm" → the VM's current IPv4 lease, on
 * 127.0.0.1 over UDP (a thread of its own, recvmmsg/sendmmsg) and TCP (a
 * GSocket source on the main loop). Answers come from a BangerDnsCache
 * (dns-cache.h) that the store keeps in step: a VM resolves the moment it
 * holds a lease and stops resolving the moment it gives it up, and UDP
 * answers keep coming while the main loop is busy. The wire format lives
 * in dns-wire.c; docs/dns.md has the design. */

typedef struct _BangerDnsResponder BangerDnsResponder;

/* Made by the engine with the configured [dns] port (0 disables it);
 * answers from @store, the engine's, which outlives it: the responder's
 * cache loads it now and watches it (banger_store_set_vm_watch()) until
 * freed. Main thread. */
BangerDnsResponder *banger_dns_responder_new (BangerConfig *config, BangerStore *store);
void banger_dns_responder_free (BangerDnsResponder *self);

/* Starts listening (main thread) and the UDP thread. A port that is taken does not stop
 * bangerd: the responder stays off, says why
 * (banger_dns_responder_get_problem(), shown by `banger doctor`) and tries
 * again every few seconds. */
void banger_dns_responder_listen (BangerDnsResponder *self);

/* The configured port (0: disabled). Fixed at start, so safe to read from
 * any thread. */
guint banger_dns_responder_get_port (BangerDnsResponder *self);
/* Whether both sockets listen right now (main thread). */
gboolean banger_dns_responder_is_running (BangerDnsResponder *self);
/* Why it is not running, or NULL (main thread). */
const char *banger_dns_responder_get_problem (BangerDnsResponder *self);

/* Asks the root helper (@helper, a connection the caller already has) to
 * route the "vm" domain to responder @dns through systemd-resolved,
 * if the responder runs. Blocking: call from a worker thread. Failure
 * (no systemd-resolved, polkit says no) is only logged. dns-route.c. */
void banger_dns_route_vm_domain (BangerDnsResponder *dns, BangerHelperClient *helper);

G_END_DECLS
