/* BangerDnsCache: VM name → leased IPv4 for the DNS responder (dns-cache.h).
 *
 * Two tables: `vms` (id → name and lease, every VM, main thread only)
 * because the store tells a claim or release by VM id and a rename by id
 * and name; and `names` (name → address, only the VMs holding a lease),
 * the one the responder's thread reads, under `lock`. The mutex is held
 * for a hash lookup or one insert/remove: uncontended it costs tens of
 * nanoseconds, against the microseconds a datagram costs the kernel. */
#include "dns-cache.h"

#include <arpa/inet.h>
#include <string.h>

#include "banger-error.h"

typedef struct {
  char *name;
  guint32 addr;    /* network byte order, as on the wire */
  gboolean leased; /* addr is meaningful */
} CachedVm;

struct _BangerDnsCache {
  BangerStore *store;
  GHashTable *vms; /* id → CachedVm; main thread */
  gboolean loaded; /* FALSE: the last load failed, lookups answer FAILED */

  GMutex lock;       /* guards names and loaded_for_lookup */
  GHashTable *names; /* name → GUINT_TO_POINTER (addr); VMs holding a lease */
  gboolean loaded_for_lookup;
};

static void
cached_vm_free (CachedVm *vm)
{
  g_free (vm->name);
  g_free (vm);
}

/* A lease the store holds as text; FALSE (no name) for one that does not
 * parse, as the responder always did. */
static gboolean
parse_lease (const char *ipv4, guint32 *addr)
{
  struct in_addr in;

  if (ipv4 == NULL || ipv4[0] == '\0' || inet_pton (AF_INET, ipv4, &in) != 1)
    return FALSE;
  *addr = in.s_addr;
  return TRUE;
}

/* ---- the lookup side (any thread) --------------------------------------------------------- */

BangerDnsLookup
banger_dns_cache_lookup (const char *name, guint8 addr[4], gpointer cache)
{
  BangerDnsCache *self = cache;
  BangerDnsLookup found = BANGER_DNS_LOOKUP_NOT_FOUND;
  gpointer value = NULL;
  g_autoptr (GMutexLocker) locker = g_mutex_locker_new (&self->lock);

  if (!self->loaded_for_lookup)
    return BANGER_DNS_LOOKUP_FAILED;
  if (g_hash_table_lookup_extended (self->names, name, NULL, &value)) {
    guint32 a = GPOINTER_TO_UINT (value);

    memcpy (addr, &a, 4);
    found = BANGER_DNS_LOOKUP_FOUND;
  }
  return found;
}

/* ---- the change side (main thread) ---------------------------------------------------------- */

/* Puts @vm's name into the looked-up table, or takes it out. */
static void
publish (BangerDnsCache *self, const CachedVm *vm, gboolean present)
{
  g_autoptr (GMutexLocker) locker = g_mutex_locker_new (&self->lock);

  if (present)
    g_hash_table_insert (self->names, g_strdup (vm->name), GUINT_TO_POINTER (vm->addr));
  else
    g_hash_table_remove (self->names, vm->name);
}

static gboolean
load (BangerDnsCache *self)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) vms = banger_store_vm_list (self->store, &error);
  g_autoptr (GHashTable) names = NULL;

  if (vms == NULL) {
    g_warning ("DNS: cannot read the VMs, every .vm name answers SERVFAIL until the store "
               "changes: %s",
               error->message);
    self->loaded = FALSE;
    g_mutex_lock (&self->lock);
    self->loaded_for_lookup = FALSE;
    g_mutex_unlock (&self->lock);
    return FALSE;
  }
  g_hash_table_remove_all (self->vms);
  names = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  for (guint i = 0; i < vms->len; i++) {
    const BangerVmRecord *rec = g_ptr_array_index (vms, i);
    CachedVm *vm = g_new0 (CachedVm, 1);

    vm->name = g_strdup (rec->name);
    vm->leased = parse_lease (rec->ipv4, &vm->addr);
    if (vm->leased)
      g_hash_table_insert (names, g_strdup (vm->name), GUINT_TO_POINTER (vm->addr));
    g_hash_table_insert (self->vms, g_strdup (rec->id), vm);
  }
  g_mutex_lock (&self->lock);
  /* Swapped whole: a lookup sees the old table or the new, never half. */
  g_hash_table_unref (self->names);
  self->names = g_steal_pointer (&names);
  self->loaded_for_lookup = TRUE;
  g_mutex_unlock (&self->lock);
  self->loaded = TRUE;
  return TRUE;
}

static void
vm_changed (const BangerStoreVmChange *change, gpointer user_data)
{
  BangerDnsCache *self = user_data;
  CachedVm *vm;

  /* After a failed load the tables are not to be trusted piecemeal. */
  if (!self->loaded) {
    load (self);
    return;
  }
  vm = g_hash_table_lookup (self->vms, change->vm_id);
  if (change->removed) {
    if (vm != NULL) {
      if (vm->leased)
        publish (self, vm, FALSE);
      g_hash_table_remove (self->vms, change->vm_id);
    }
    return;
  }
  if (vm == NULL) {
    /* A claim, release or update of a VM the cache never heard of cannot
     * happen (an insert is told first, with both name and lease); if it
     * does, the store is the truth. */
    if (change->name == NULL || change->ipv4 == NULL) {
      load (self);
      return;
    }
    vm = g_new0 (CachedVm, 1);
    vm->name = g_strdup (change->name);
    g_hash_table_insert (self->vms, g_strdup (change->vm_id), vm);
  }
  if (change->name != NULL && g_strcmp0 (change->name, vm->name) != 0) {
    /* Renamed: the old name stops answering in the same step. */
    if (vm->leased)
      publish (self, vm, FALSE);
    g_free (vm->name);
    vm->name = g_strdup (change->name);
    if (vm->leased)
      publish (self, vm, TRUE);
  }
  if (change->ipv4 != NULL) {
    if (vm->leased)
      publish (self, vm, FALSE);
    vm->leased = parse_lease (change->ipv4, &vm->addr);
    if (vm->leased)
      publish (self, vm, TRUE);
  }
}

BangerDnsCache *
banger_dns_cache_new (BangerStore *store)
{
  BangerDnsCache *self = g_new0 (BangerDnsCache, 1);

  self->store = store;
  self->vms
      = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify)cached_vm_free);
  self->names = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_mutex_init (&self->lock);
  load (self);
  banger_store_set_vm_watch (store, vm_changed, self);
  return self;
}

void
banger_dns_cache_free (BangerDnsCache *self)
{
  if (self == NULL)
    return;
  banger_store_set_vm_watch (self->store, NULL, NULL);
  g_hash_table_unref (self->vms);
  g_hash_table_unref (self->names);
  g_mutex_clear (&self->lock);
  g_free (self);
}
