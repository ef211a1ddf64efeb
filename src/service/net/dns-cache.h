#pragma once

#include "dns-wire.h"
#include "store.h"

G_BEGIN_DECLS

/* The DNS responder's view of the store: each VM name that holds a lease,
 * with its address, kept in step with the store by its VM watch
 * (banger_store_set_vm_watch()): a claim, release, rename or delete is in
 * the cache before the store call that made it returns, so a stopped VM
 * answers NXDOMAIN at once. Lookups take only a mutex and a hash lookup,
 * no allocation and no SQLite, and may come from any thread (the
 * responder's UDP thread); the changes come from the main thread, where the
 * store lives. docs/dns.md has the design. */
typedef struct _BangerDnsCache BangerDnsCache;

/* Loads every VM of @store (the engine's, which outlives the cache) and
 * watches it. A load that fails (the database unreadable) is logged, every
 * lookup answers FAILED (SERVFAIL) and the next change of the store loads
 * again. Main thread. */
BangerDnsCache *banger_dns_cache_new (BangerStore *store);
/* Stops watching the store. Main thread, once no thread looks up any more. */
void banger_dns_cache_free (BangerDnsCache *self);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BangerDnsCache, banger_dns_cache_free)

/* The address of VM @name (compared exactly: the wire code lower-cases the
 * question first) if it holds a lease. Any thread. The signature is a
 * BangerDnsLookupFunc with the cache as user data. */
BangerDnsLookup banger_dns_cache_lookup (const char *name, guint8 addr[4], gpointer cache);

G_END_DECLS
