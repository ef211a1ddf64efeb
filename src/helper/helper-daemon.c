#include "config.h"

#include "helper-daemon.h"

#include <arpa/inet.h>
#include <glib-unix.h>
#include <polkit/polkit.h>

#include "authorize.h"
#include "banger-error.h"
#include "banger-helper-dbus.h"
#include "install-release.h"
#include "jail.h"
#include "firewall-facts.h"
#include "net-dns.h"
#include "net.h"
#include "snapshot.h"

#define HELPER_BUS_NAME    "org.banger.Helper"
#define HELPER_OBJECT_PATH "/org/banger/Helper"

struct _BangerHelperDaemon {
  BangerHelperConfig *config;
  guint idle_timeout;
  gboolean replace;

  GDBusConnection *bus;
  PolkitAuthority *authority;
  BangerHelper *skeleton;
  GMainLoop *loop;
  guint owner_id;
  guint idle_id;
  guint sigterm_id;
  guint sigint_id;
  guint pending_watch_id; /* the pending swap's client on the bus */
  gboolean name_acquired;
  int exit_status;

  /* Calls run in GDBus's method threads. The network is one shared thing
   * (one bridge, one table, the tap namespace), so changes to it are
   * serialised; authorisation is not, so a slow polkit prompt for one
   * caller never holds up another. */
  GMutex net_lock;

  /* Calls between authorisation and reply, and when the last one ended:
   * the idle exit waits for both. */
  GMutex activity_lock;
  guint busy;
  gint64 last_activity;
};

static void
call_begin (BangerHelperDaemon *self)
{
  g_mutex_lock (&self->activity_lock);
  self->busy++;
  self->last_activity = g_get_monotonic_time ();
  g_mutex_unlock (&self->activity_lock);
}

static void
call_end (BangerHelperDaemon *self)
{
  g_mutex_lock (&self->activity_lock);
  self->busy--;
  self->last_activity = g_get_monotonic_time ();
  g_mutex_unlock (&self->activity_lock);
  /* The drain loop in _run() sleeps in the main context; wake it. */
  g_main_context_wakeup (NULL);
}

static guint
calls_busy (BangerHelperDaemon *self)
{
  guint busy;

  g_mutex_lock (&self->activity_lock);
  busy = self->busy;
  g_mutex_unlock (&self->activity_lock);
  return busy;
}

static gboolean
return_error (BangerHelperDaemon *self, GDBusMethodInvocation *invocation, GError *error)
{
  banger_error_convert (&error);
  banger_authorize_audit_done (invocation, error);
  banger_invocation_return_error (invocation, error);
  call_end (self);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* The success twin of return_error(): audits, replies with @value (the
 * method's out arguments, as the generated complete functions would send
 * them) and ends the call, in that order for every method. */
static gboolean
return_value (BangerHelperDaemon *self, GDBusMethodInvocation *invocation, GVariant *value)
{
  banger_authorize_audit_done (invocation, NULL);
  g_dbus_method_invocation_return_value (invocation, value);
  call_end (self);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
on_authorize (GDBusInterfaceSkeleton *skeleton, GDBusMethodInvocation *invocation,
              gpointer user_data)
{
  BangerHelperDaemon *self = user_data;
  const BangerAuthEntry *entry;

  call_begin (self);
  if (!banger_authorize_method (skeleton, invocation, self->authority)) {
    call_end (self);
    return FALSE;
  }
  /* Property reads are answered by the skeleton itself, not by a handler
   * below that would end the call. */
  entry = banger_authorize_lookup (g_dbus_method_invocation_get_interface_name (invocation),
                                   g_dbus_method_invocation_get_method_name (invocation));
  if (entry != NULL && entry->action == NULL)
    call_end (self);
  return TRUE;
}

static void
nm_unmanage_one (BangerHelperDaemon *self, const char *ifname)
{
  const char *names[] = { ifname, NULL };

  banger_net_nm_unmanage (self->bus, names);
}

static gboolean
handle_ensure_network (BangerHelper *object, GDBusMethodInvocation *invocation, GVariant *options,
                       gpointer user_data)
{
  BangerHelperDaemon *self = user_data;
  BangerHelperConfig *config = self->config;
  GError *error = NULL;
  gboolean ok;

  g_mutex_lock (&self->net_lock);
  ok = banger_net_bridge_ensure (config->bridge, config->address, &error)
       && banger_net_forwarding_enable (&error)
       && banger_net_firewall_apply (config->bridge, config->subnet, &error);
  g_mutex_unlock (&self->net_lock);
  if (!ok)
    return return_error (self, invocation, error);
  nm_unmanage_one (self, config->bridge);
  return return_value (self, invocation, g_variant_new ("(s)", config->address));
}

/* Takes down @caller's taps; the bridge and the table go too, but only
 * when no link of anyone else is left on the bridge (root, the
 * administrator, takes everything down). Membership of group banger lets
 * a user run this without a password, so it must never reach another
 * user's VMs. */
static gboolean
teardown_locked (BangerHelperDaemon *self, uid_t caller, GError **error)
{
  g_auto (GStrv) taps = NULL;
  int bridge_index;
  guint kept = 0;

  bridge_index = banger_net_link_index (self->config->bridge, error);
  if (bridge_index < 0)
    return FALSE;
  taps = banger_net_link_list_taps (bridge_index, error);
  if (taps == NULL)
    return FALSE;
  for (guint i = 0; taps[i] != NULL; i++) {
    g_autoptr (GError) local = NULL;
    gint64 owner = -1;

    if (caller != 0) {
      if (!banger_net_tap_get_owner (taps[i], &owner, &local)) {
        if (g_error_matches (local, BANGER_ERROR, BANGER_ERROR_NOT_FOUND))
          continue; /* gone meanwhile */
        owner = -1;  /* not a tap (no owner): not the caller's either */
      }
      if (owner != (gint64)caller) {
        kept++;
        continue;
      }
    }
    if (!banger_net_link_delete (taps[i], &local)
        && !g_error_matches (local, BANGER_ERROR, BANGER_ERROR_NOT_FOUND)) {
      g_propagate_error (error, g_steal_pointer (&local));
      return FALSE;
    }
  }
  if (kept > 0) {
    g_info ("TeardownNetwork by uid %u: %u link(s) of others stay on %s, so the bridge and the "
            "table stay too", (guint)caller, kept, self->config->bridge);
    return banger_net_firewall_apply (self->config->bridge, self->config->subnet, error);
  }
  return banger_net_firewall_remove (error) && banger_net_bridge_remove (self->config->bridge, error);
}

static gboolean
handle_teardown_network (BangerHelper *object, GDBusMethodInvocation *invocation, GVariant *options,
                         gpointer user_data)
{
  BangerHelperDaemon *self = user_data;
  GError *error = NULL;
  gboolean ok;

  g_mutex_lock (&self->net_lock);
  ok = teardown_locked (self, banger_authorize_get_uid (invocation), &error);
  g_mutex_unlock (&self->net_lock);
  if (!ok)
    return return_error (self, invocation, error);
  return return_value (self, invocation, g_variant_new ("()"));
}

/* @ipv4 (already a dotted quad) is a host address of root's subnet other
 * than the bridge's own. */
static gboolean
address_in_subnet (BangerHelperConfig *config, const char *ipv4, GError **error)
{
  struct in_addr addr, bridge;
  g_autofree char *bridge_ip = g_strndup (config->address, strcspn (config->address, "/"));
  guint32 mask = 0xffffffffu << (32 - config->prefix_len);
  guint32 host, net;

  if (inet_pton (AF_INET, ipv4, &addr) != 1 || inet_pton (AF_INET, bridge_ip, &bridge) != 1)
    goto bad;
  host = ntohl (addr.s_addr);
  net = ntohl (bridge.s_addr) & mask;
  if ((host & mask) != net || host == net || host == (net | ~mask) || addr.s_addr == bridge.s_addr)
    goto bad;
  return TRUE;
bad:
  g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
               "%s is not a guest address in %s", ipv4, config->subnet);
  return FALSE;
}

/* Whether the connection that made @invocation is still on the bus. */
static gboolean
caller_on_bus (GDBusMethodInvocation *invocation)
{
  const char *sender = g_dbus_method_invocation_get_sender (invocation);
  g_autoptr (GVariant) reply = NULL;
  gboolean has = TRUE;

  if (sender == NULL)
    return TRUE; /* a peer-to-peer connection (tests): it is the caller */
  reply = g_dbus_connection_call_sync (g_dbus_method_invocation_get_connection (invocation),
                                       "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                       "org.freedesktop.DBus", "NameHasOwner",
                                       g_variant_new ("(s)", sender), G_VARIANT_TYPE ("(b)"),
                                       G_DBUS_CALL_FLAGS_NONE, 5000, NULL, NULL);
  /* No answer: assume it is there (never undo a tap on a bus hiccup). */
  if (reply != NULL)
    g_variant_get (reply, "(b)", &has);
  return has;
}

static gboolean
handle_create_tap (BangerHelper *object, GDBusMethodInvocation *invocation, const char *vm_id,
                   GVariant *options, gpointer user_data)
{
  BangerHelperDaemon *self = user_data;
  g_autofree char *tap = banger_net_tap_name (vm_id);
  uid_t uid = banger_authorize_get_uid (invocation);
  const char *mac = NULL, *ipv4 = NULL;
  GError *error = NULL;
  gint64 owner = -1;
  gboolean existed;
  gboolean ok;

  /* Shapes were checked before polkit; the subnet is root's. */
  if (g_variant_lookup (options, "mac", "&s", &mac) && g_variant_lookup (options, "ipv4", "&s", &ipv4)
      && !address_in_subnet (self->config, ipv4, &error))
    return return_error (self, invocation, error);
  g_mutex_lock (&self->net_lock);
  existed = banger_net_tap_get_owner (tap, &owner, NULL);
  /* The firewall is rebuilt in every case: a new tap sends nothing until
   * it has a claim, and its VM is NATed and forwarded from the moment it
   * has one (net-nft.c). */
  ok = banger_net_tap_create (tap, self->config->bridge, uid, &error)
       && (mac == NULL || banger_net_guard_claim (tap, mac, ipv4, &error))
       && banger_net_firewall_apply (self->config->bridge, self->config->subnet, &error);
  /* A caller killed while its call waited here (a bangerd SIGKILLed mid-
   * start) has no one to use the tap or delete it, and its successor's
   * DeleteTap may have come and gone already (it waited on net_lock): a tap
   * this call made for a caller no longer on the bus is removed again (the
   * crash test found them left). A tap that existed may be a live VM's. */
  if (ok && !existed && !caller_on_bus (invocation)) {
    banger_net_link_delete (tap, NULL);
    banger_net_firewall_apply (self->config->bridge, self->config->subnet, NULL);
    g_set_error (&error, BANGER_ERROR, BANGER_ERROR_FAILED,
                 "the caller left the bus: tap %s removed again", tap);
    ok = FALSE;
  }
  g_mutex_unlock (&self->net_lock);
  if (!ok)
    return return_error (self, invocation, error);
  nm_unmanage_one (self, tap);
  return return_value (self, invocation, g_variant_new ("(s)", tap));
}

static gboolean
handle_delete_tap (BangerHelper *object, GDBusMethodInvocation *invocation, const char *vm_id,
                   GVariant *options, gpointer user_data)
{
  BangerHelperDaemon *self = user_data;
  g_autofree char *tap = banger_net_tap_name (vm_id);
  uid_t uid = banger_authorize_get_uid (invocation);
  GError *error = NULL;
  gboolean ok;

  g_mutex_lock (&self->net_lock);
  /* The VM's set element and guard chain go with its tap. A tap that is
   * already gone (deleted behind banger's back) still gets the rebuild, so
   * its rules do not outlive it; the caller still hears NotFound. Not
   * without the bridge: after `network down` the tables must stay gone. */
  ok = banger_net_tap_delete (tap, uid, &error);
  if ((ok || g_error_matches (error, BANGER_ERROR, BANGER_ERROR_NOT_FOUND))
      && banger_net_link_index (self->config->bridge, NULL) > 0) {
    g_autoptr (GError) rebuild = NULL;

    if (!banger_net_firewall_apply (self->config->bridge, self->config->subnet, &rebuild)) {
      if (ok) {
        ok = FALSE;
        error = g_steal_pointer (&rebuild);
      } else {
        g_warning ("%s", rebuild->message);
      }
    }
  }
  g_mutex_unlock (&self->net_lock);
  if (!ok)
    return return_error (self, invocation, error);
  return return_value (self, invocation, g_variant_new ("()"));
}

/* Authorised, but this helper lacks what the operation needs: say which
 * capability is missing, so `banger doctor` and users can tell. */
/* Kept for the next method that lands before its implementation. */
G_GNUC_UNUSED static gboolean
unsupported (BangerHelperDaemon *self, GDBusMethodInvocation *invocation, const char *missing)
{
  return return_error (
      self, invocation,
      g_error_new (BANGER_ERROR, BANGER_ERROR_UNSUPPORTED, "%s is not supported by this helper: %s",
                   g_dbus_method_invocation_get_method_name (invocation), missing));
}

static gboolean
handle_launch_jailed (BangerHelper *object, GDBusMethodInvocation *invocation, GVariant *spec,
                      GVariant *options, gpointer user_data)
{
  BangerHelperDaemon *self = user_data;
  GError *error = NULL;
  guint pid = banger_jail_launch (spec, banger_authorize_get_uid (invocation), &error);

  if (pid == 0)
    return return_error (self, invocation, error);
  return return_value (self, invocation, g_variant_new ("(u)", pid));
}

static gboolean
handle_kill_jailed (BangerHelper *object, GDBusMethodInvocation *invocation, const char *id,
                    gint signum, GVariant *options, gpointer user_data)
{
  BangerHelperDaemon *self = user_data;
  GError *error = NULL;

  if (!banger_jail_kill (id, signum, banger_authorize_get_uid (invocation), &error))
    return return_error (self, invocation, error);
  return return_value (self, invocation, g_variant_new ("()"));
}

static gboolean
handle_remove_jail (BangerHelper *object, GDBusMethodInvocation *invocation, const char *id,
                    GVariant *options, gpointer user_data)
{
  BangerHelperDaemon *self = user_data;
  GError *error = NULL;

  if (!banger_jail_remove (id, banger_authorize_get_uid (invocation), &error))
    return return_error (self, invocation, error);
  return return_value (self, invocation, g_variant_new ("()"));
}

static gboolean
handle_take_jail_state (BangerHelper *object, GDBusMethodInvocation *invocation, const char *id,
                        const char *dest_dir, GVariant *options, gpointer user_data)
{
  BangerHelperDaemon *self = user_data;
  GError *error = NULL;

  if (!banger_jail_take_state (id, dest_dir, banger_authorize_get_uid (invocation), &error))
    return return_error (self, invocation, error);
  return return_value (self, invocation, g_variant_new ("()"));
}

static gboolean
handle_create_snapshot (BangerHelper *object, GDBusMethodInvocation *invocation, const char *vm_id,
                        const char *origin, GVariant *options, gpointer user_data)
{
  BangerHelperDaemon *self = user_data;
  GError *error = NULL;
  g_autofree char *device
      = banger_snapshot_create (vm_id, origin, banger_authorize_get_uid (invocation), &error);

  if (device == NULL)
    return return_error (self, invocation, error);
  return return_value (self, invocation, g_variant_new ("(s)", device));
}

static gboolean
handle_remove_snapshot (BangerHelper *object, GDBusMethodInvocation *invocation, const char *vm_id,
                        GVariant *options, gpointer user_data)
{
  BangerHelperDaemon *self = user_data;
  GError *error = NULL;

  if (!banger_snapshot_remove (vm_id, banger_authorize_get_uid (invocation), &error))
    return return_error (self, invocation, error);
  return return_value (self, invocation, g_variant_new ("()"));
}

static gboolean
handle_configure_dns (BangerHelper *object, GDBusMethodInvocation *invocation, GVariant *options,
                      gpointer user_data)
{
  BangerHelperDaemon *self = user_data;
  guint16 port = self->config->dns_port;
  guint16 asked = 0;
  GError *error = NULL;

  /* Root's [dns] port, never the caller's: a caller who could choose it
   * could route every user's .vm lookups to a listener of their own. The
   * option is still accepted so that a bangerd whose port differs is told
   * why instead of being routed to a port it does not answer on. */
  if (g_variant_lookup (options, "port", "q", &asked) && asked != port) {
    g_set_error (&error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
                 "the DNS responder's port is %u (root's helper.conf [dns] port=), not %u: "
                 "use that port in bangerd's [dns] port= or ask the administrator",
                 (guint)port, (guint)asked);
    return return_error (self, invocation, error);
  }
  if (!banger_net_dns_configure (self->bus, self->config->bridge, port, &error))
    return return_error (self, invocation, error);
  return return_value (self, invocation, g_variant_new ("()"));
}

/* The doctor's firewall rows for a bangerd that may not read the ruleset
 * (firewall-facts.h): the facts for the helper's own bridge, never the
 * ruleset. */
static gboolean
handle_inspect_firewall (BangerHelper *object, GDBusMethodInvocation *invocation,
                         GVariant *options, gpointer user_data)
{
  BangerHelperDaemon *self = user_data;
  BangerFirewallFacts facts = { 0 };
  gboolean denied = FALSE;
  GError *error = NULL;
  GVariant *value;

  if (!banger_firewall_facts_read (self->config->bridge, &facts, &denied, &error))
    return return_error (self, invocation, error);
  value = g_variant_new ("(@a{sv})", banger_firewall_facts_to_variant (&facts));
  banger_firewall_facts_clear (&facts);
  return return_value (self, invocation, value);
}

static gboolean
quit_after_update (gpointer user_data)
{
  BangerHelperDaemon *self = user_data;

  g_info ("an update was finished or rolled back: exiting so the next call starts the "
          "installed bangerd-root");
  g_main_loop_quit (self->loop);
  return G_SOURCE_REMOVE;
}

static void
on_update_client_vanished (GDBusConnection *bus, const char *name, gpointer user_data)
{
  BangerHelperDaemon *self = user_data;

  /* Nobody is left to judge the new release: the swap stands unconfirmed,
   * so it is undone, and this helper leaves like after a rollback. */
  if (banger_install_release_abandon ("its client left the bus without finishing it"))
    g_idle_add (quit_after_update, self);
}

/* In the main loop (the watch's callbacks come there): follows the pending
 * swap's client, or stops following once nothing is pending. */
static gboolean
update_watch_sync (gpointer user_data)
{
  BangerHelperDaemon *self = user_data;
  g_autofree char *sender = banger_install_release_pending_sender ();

  if (self->pending_watch_id != 0) {
    g_bus_unwatch_name (self->pending_watch_id);
    self->pending_watch_id = 0;
  }
  if (sender != NULL)
    self->pending_watch_id = g_bus_watch_name_on_connection (
        self->bus, sender, G_BUS_NAME_WATCHER_FLAGS_NONE, NULL, on_update_client_vanished, self,
        NULL);
  return G_SOURCE_REMOVE;
}

static gboolean
handle_install_release (BangerHelper *object, GDBusMethodInvocation *invocation,
                        const char *staging_dir, GVariant *options, gpointer user_data)
{
  BangerHelperDaemon *self = user_data;
  GError *error = NULL;
  const char *step = banger_install_release_step (options);
  gboolean last_step = g_str_equal (step, "finish") || g_str_equal (step, "rollback");

  if (!banger_install_release (staging_dir, options, banger_authorize_get_uid (invocation),
                               g_dbus_method_invocation_get_sender (invocation), &error))
    return return_error (self, invocation, error);
  if (g_str_equal (step, "swap") || last_step)
    g_idle_add (update_watch_sync, self);
  /* The helper's restart: once an update is committed or undone, this
   * process (whose binary may be gone) leaves after its reply, and D-Bus
   * activation starts whatever is installed now. Until then it stays, so
   * that the process that can undo the swap is not the new one. */
  if (last_step)
    g_idle_add (quit_after_update, self);
  return return_value (self, invocation, g_variant_new ("()"));
}

gboolean
banger_helper_self_check (const BangerHelperConfig *config, GError **error)
{
  g_autoptr (GDBusConnection) bus = NULL;
  g_autoptr (PolkitAuthority) authority = NULL;
  g_autofree char *owner = NULL;
  g_autofree char *address = NULL;

  /* What the daemon needs before it can serve: the config (loaded by the
   * caller), the system bus and polkit. A private connection: the shared
   * one would exit the process if the bus went away. */
  address = g_dbus_address_get_for_bus_sync (G_BUS_TYPE_SYSTEM, NULL, error);
  if (address != NULL)
    bus = g_dbus_connection_new_for_address_sync (
        address,
        G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT
            | G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
        NULL, NULL, error);
  if (bus == NULL) {
    g_prefix_error (error, "cannot connect to the system bus: ");
    return FALSE;
  }
  authority = polkit_authority_get_sync (NULL, error);
  if (authority == NULL) {
    g_prefix_error (error, "cannot reach polkit: ");
    return FALSE;
  }
  owner = polkit_authority_get_owner (authority);
  if (owner == NULL) {
    g_set_error_literal (error, BANGER_ERROR, BANGER_ERROR_FAILED, "polkitd is not running");
    return FALSE;
  }
  if (config->bridge == NULL) {
    g_set_error_literal (error, BANGER_ERROR, BANGER_ERROR_FAILED, "no bridge configured");
    return FALSE;
  }
  g_dbus_connection_close_sync (bus, NULL, NULL);
  /* The one line the old helper compares with the version it installed. */
  g_print ("bangerd-root %s\n", PACKAGE_VERSION);
  return TRUE;
}

static void idle_arm (BangerHelperDaemon *self, guint seconds);

static gboolean
on_idle_timeout (gpointer user_data)
{
  BangerHelperDaemon *self = user_data;
  gint64 idle_us;
  gint64 left_us;

  self->idle_id = 0;
  /* A pending swap waits for its client, however long the prompt or the
   * doctor takes: leaving now would strand it. */
  {
    g_autofree char *pending = banger_install_release_pending_sender ();

    if (pending != NULL) {
      idle_arm (self, self->idle_timeout);
      return G_SOURCE_REMOVE;
    }
  }
  g_mutex_lock (&self->activity_lock);
  idle_us = g_get_monotonic_time () - self->last_activity;
  left_us = (gint64)self->idle_timeout * G_USEC_PER_SEC - idle_us;
  if (self->busy > 0 || left_us > 0) {
    g_mutex_unlock (&self->activity_lock);
    idle_arm (self, MAX (1, (guint)(left_us / G_USEC_PER_SEC)));
    return G_SOURCE_REMOVE;
  }
  g_mutex_unlock (&self->activity_lock);
  g_info ("idle for %u s, exiting", self->idle_timeout);
  g_main_loop_quit (self->loop);
  return G_SOURCE_REMOVE;
}

static void
idle_arm (BangerHelperDaemon *self, guint seconds)
{
  if (self->idle_timeout == 0)
    return;
  self->idle_id = g_timeout_add_seconds (seconds, on_idle_timeout, self);
}

static gboolean
on_signal (gpointer user_data)
{
  BangerHelperDaemon *self = user_data;

  g_info ("signalled, exiting");
  g_main_loop_quit (self->loop);
  return G_SOURCE_CONTINUE;
}

static void
on_name_acquired (GDBusConnection *bus, const char *name, gpointer user_data)
{
  BangerHelperDaemon *self = user_data;

  self->name_acquired = TRUE;
  g_info ("owns %s on the system bus", name);
}

static void
on_name_lost (GDBusConnection *bus, const char *name, gpointer user_data)
{
  BangerHelperDaemon *self = user_data;

  if (self->name_acquired) {
    g_message ("replaced as %s, exiting", name);
  } else {
    g_warning ("cannot own %s (another helper runs? try --replace)", name);
    self->exit_status = 1;
  }
  g_main_loop_quit (self->loop);
}

static void
on_bus_closed (GDBusConnection *bus, gboolean remote_peer_vanished, GError *error,
               gpointer user_data)
{
  BangerHelperDaemon *self = user_data;

  g_warning ("lost the system bus%s%s", error ? ": " : "", error ? error->message : "");
  self->exit_status = 1;
  g_main_loop_quit (self->loop);
}

BangerHelperDaemon *
banger_helper_daemon_new (BangerHelperConfig *config, guint idle_timeout, gboolean replace,
                          GError **error)
{
  g_autoptr (BangerHelperDaemon) self = g_new0 (BangerHelperDaemon, 1);

  self->config = config;
  self->idle_timeout = idle_timeout;
  self->replace = replace;
  g_mutex_init (&self->net_lock);
  g_mutex_init (&self->activity_lock);
  self->last_activity = g_get_monotonic_time ();
  self->loop = g_main_loop_new (NULL, FALSE);
  banger_authorize_set_bridge (config->bridge);
  banger_install_release_configure (config);

  self->bus = g_bus_get_sync (G_BUS_TYPE_SYSTEM, NULL, error);
  if (self->bus == NULL) {
    g_prefix_error (error, "cannot connect to the system bus: ");
    return NULL;
  }
  g_dbus_connection_set_exit_on_close (self->bus, FALSE);
  g_signal_connect (self->bus, "closed", G_CALLBACK (on_bus_closed), self);

  self->authority = polkit_authority_get_sync (NULL, error);
  if (self->authority == NULL) {
    g_prefix_error (error, "cannot reach polkit: ");
    return NULL;
  }

  self->skeleton = banger_helper_skeleton_new ();
  banger_helper_set_version (self->skeleton, PACKAGE_VERSION);
  g_dbus_interface_skeleton_set_flags (
      G_DBUS_INTERFACE_SKELETON (self->skeleton),
      G_DBUS_INTERFACE_SKELETON_FLAGS_HANDLE_METHOD_INVOCATIONS_IN_THREAD);
  g_signal_connect (self->skeleton, "g-authorize-method", G_CALLBACK (on_authorize), self);
  g_signal_connect (self->skeleton, "handle-ensure-network", G_CALLBACK (handle_ensure_network),
                    self);
  g_signal_connect (self->skeleton, "handle-teardown-network", G_CALLBACK (handle_teardown_network),
                    self);
  g_signal_connect (self->skeleton, "handle-create-tap", G_CALLBACK (handle_create_tap), self);
  g_signal_connect (self->skeleton, "handle-delete-tap", G_CALLBACK (handle_delete_tap), self);
  g_signal_connect (self->skeleton, "handle-launch-jailed", G_CALLBACK (handle_launch_jailed),
                    self);
  g_signal_connect (self->skeleton, "handle-kill-jailed", G_CALLBACK (handle_kill_jailed), self);
  g_signal_connect (self->skeleton, "handle-remove-jail", G_CALLBACK (handle_remove_jail), self);
  g_signal_connect (self->skeleton, "handle-take-jail-state", G_CALLBACK (handle_take_jail_state),
                    self);
  g_signal_connect (self->skeleton, "handle-create-snapshot", G_CALLBACK (handle_create_snapshot),
                    self);
  g_signal_connect (self->skeleton, "handle-remove-snapshot", G_CALLBACK (handle_remove_snapshot),
                    self);
  g_signal_connect (self->skeleton, "handle-inspect-firewall",
                    G_CALLBACK (handle_inspect_firewall), self);
  g_signal_connect (self->skeleton, "handle-configure-dns", G_CALLBACK (handle_configure_dns),
                    self);
  g_signal_connect (self->skeleton, "handle-install-release", G_CALLBACK (handle_install_release),
                    self);
  if (!g_dbus_interface_skeleton_export (G_DBUS_INTERFACE_SKELETON (self->skeleton), self->bus,
                                         HELPER_OBJECT_PATH, error))
    return NULL;
  return g_steal_pointer (&self);
}

int
banger_helper_daemon_run (BangerHelperDaemon *self)
{
  GBusNameOwnerFlags flags = G_BUS_NAME_OWNER_FLAGS_ALLOW_REPLACEMENT;

  if (self->replace)
    flags |= G_BUS_NAME_OWNER_FLAGS_REPLACE;
  self->sigterm_id = g_unix_signal_add (SIGTERM, on_signal, self);
  self->sigint_id = g_unix_signal_add (SIGINT, on_signal, self);
  self->owner_id = g_bus_own_name_on_connection (self->bus, HELPER_BUS_NAME, flags,
                                                 on_name_acquired, on_name_lost, self, NULL);
  idle_arm (self, self->idle_timeout);

  g_main_loop_run (self->loop);

  /* Give the name up first so new callers go to a fresh helper (D-Bus
   * activation), then let the calls already inside finish and their
   * replies leave. */
  g_bus_unown_name (self->owner_id);
  self->owner_id = 0;
  while (calls_busy (self) > 0)
    g_main_context_iteration (NULL, TRUE);
  /* Stopped with a swap nobody confirmed: undo it, so the installed set is
   * one that was known to work. */
  banger_install_release_abandon ("the helper is stopping");
  g_dbus_connection_flush_sync (self->bus, NULL, NULL);
  return self->exit_status;
}

void
banger_helper_daemon_free (BangerHelperDaemon *self)
{
  if (self == NULL)
    return;
  if (self->idle_id != 0)
    g_source_remove (self->idle_id);
  if (self->sigterm_id != 0)
    g_source_remove (self->sigterm_id);
  if (self->sigint_id != 0)
    g_source_remove (self->sigint_id);
  if (self->owner_id != 0)
    g_bus_unown_name (self->owner_id);
  if (self->pending_watch_id != 0)
    g_bus_unwatch_name (self->pending_watch_id);
  if (self->skeleton != NULL) {
    if (g_dbus_interface_skeleton_get_connection (G_DBUS_INTERFACE_SKELETON (self->skeleton)))
      g_dbus_interface_skeleton_unexport (G_DBUS_INTERFACE_SKELETON (self->skeleton));
    g_object_unref (self->skeleton);
  }
  if (self->bus != NULL)
    g_signal_handlers_disconnect_by_data (self->bus, self);
  g_clear_object (&self->authority);
  g_clear_object (&self->bus);
  g_clear_pointer (&self->loop, g_main_loop_unref);
  banger_install_release_configure (NULL);
  banger_helper_config_free (self->config);
  banger_authorize_set_bridge (NULL);
  banger_jail_config_clear ();
  banger_snapshot_config_clear ();
  g_mutex_clear (&self->net_lock);
  g_mutex_clear (&self->activity_lock);
  g_free (self);
}
