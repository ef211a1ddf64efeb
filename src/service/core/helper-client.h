#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* Calls to org.banger.Helper (bangerd-root) on the system bus, made by the
 * VM runtime. Every call is synchronous and may take a moment (polkit is
 * asked each time): bangerd makes them from worker threads, never on its
 * main loop. Errors are BANGER_ERROR (a polkit denial is NotAuthorized),
 * and name the method that failed. */
typedef struct _BangerHelperClient BangerHelperClient;

/* bangerd's one client of the helper, owned by the engine: one private
 * connection to the system bus (made on first use, made again if it closed)
 * and one proxy, shared by every part and thread. */
BangerHelperClient *banger_helper_client_new (void);
/* Drops a reference (the engine's, one from _connect() or _ref()). */
void banger_helper_client_free (BangerHelperClient *self);
BangerHelperClient *banger_helper_client_ref (BangerHelperClient *self);
/* Makes sure the connection is up and the helper runs (starting it: it exits
 * when idle), and returns a new reference to @self for the calls below. NULL
 * with BANGER_ERROR_UNSUPPORTED when there is no system bus or the helper is
 * not installed or cannot start: VMs then boot without a network device. */
BangerHelperClient *banger_helper_client_connect (BangerHelperClient *self,
                                                  GCancellable *cancellable, GError **error);
/* The client's system-bus connection (made if needed; the helper is not
 * started): the doctor asks systemd, resolved and the bus itself over it
 * rather than opening a connection of its own. A new reference. */
GDBusConnection *banger_helper_client_dup_bus (BangerHelperClient *self, GError **error);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BangerHelperClient, banger_helper_client_free)

/* EnsureNetwork: the bridge's address in CIDR form ("10.77.0.1/24"). */
char *banger_helper_client_ensure_network (BangerHelperClient *self, GError **error);
/* CreateTap: the tap's name ("bg" + the first 12 digits of @vm_id). */
char *banger_helper_client_create_tap (BangerHelperClient *self, const char *vm_id, GError **error);
/* DeleteTap; a tap that is already gone is not an error. */
/* CreateTap again for the VM's own tap, now with the guest's MAC and leased
 * address: the tap may send from those only, and the helper refuses
 * (Exists) an address or MAC another tap, of any user, holds. */
void banger_helper_client_claim_tap_async (BangerHelperClient *self, const char *vm_id,
                                           const char *mac, const char *ipv4,
                                           GAsyncReadyCallback callback, gpointer user_data);
gboolean banger_helper_client_claim_tap_finish (BangerHelperClient *self, GAsyncResult *result,
                                                GError **error);
gboolean banger_helper_client_delete_tap (BangerHelperClient *self, const char *vm_id,
                                          GError **error);

/* LaunchJailed: Firecracker under the jailer for this VM (docs/firecracker.md);
 * @spec is the a{sv} the helper documents (vm_id, kernel, rootfs, initrd,
 * tap, vcpus, memory_mib, and state + memory for a restore). Returns the
 * VMM's pid, 0 on error. */
guint banger_helper_client_launch_jailed (BangerHelperClient *self, GVariant *spec, GError **error);
/* KillJailed: @signum (SIGTERM, SIGKILL or SIGINT) to the caller's own jail
 * @vm_id; a jail with no running Firecracker is not an error. */
gboolean banger_helper_client_kill_jailed (BangerHelperClient *self, const char *vm_id, int signum,
                                           GError **error);
/* TakeJailState: moves the snapshot the caller's jailed Firecracker @vm_id
 * wrote to its /run/memory and /run/vmstate into @dest_dir (the caller's,
 * existing) as "memory" and "vmstate". May take as long as copying the
 * guest's memory. */
gboolean banger_helper_client_take_jail_state (BangerHelperClient *self, const char *vm_id,
                                               const char *dest_dir, GError **error);
/* RemoveJail: removes the caller's own jail @vm_id once its Firecracker is
 * gone (BadState while it runs); a jail that is already gone is not an
 * error. */
gboolean banger_helper_client_remove_jail (BangerHelperClient *self, const char *vm_id,
                                           GError **error);

/* CreateSnapshot: a dm-snapshot of @origin for @vm_id; the device's path.
 * BANGER_ERROR_UNSUPPORTED when the host has no device-mapper. */
/* Routes the "vm" domain to bangerd's responder on 127.0.0.1:@port
 * (ConfigureDNS; Unsupported where systemd-resolved does not run). */
gboolean banger_helper_client_configure_dns (BangerHelperClient *self, guint16 port,
                                             GError **error);
/* The firewall facts the helper reads for the doctor (firewall-facts.h), as
 * an a{sv}; NULL with @error. */
GVariant *banger_helper_client_inspect_firewall (BangerHelperClient *self, GError **error);
char *banger_helper_client_create_snapshot (BangerHelperClient *self, const char *vm_id,
                                            const char *origin, GError **error);
/* RemoveSnapshot; a snapshot that is already gone is not an error. */
gboolean banger_helper_client_remove_snapshot (BangerHelperClient *self, const char *vm_id,
                                               GError **error);

/* Convenience for clean-up paths: connects if it can and deletes @vm_id's
 * tap; a missing helper or tap is fine (logged at debug level). */
gboolean banger_helper_delete_tap_if_any (BangerHelperClient *client, const char *vm_id,
                                          GError **error);

G_END_DECLS
