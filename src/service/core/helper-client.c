#include "helper-client.h"

#include "bus-name.h"

#include "banger-error.h"
#include "banger-helper-dbus.h"

#define HELPER_BUS_NAME    "org.banger.Helper"
#define HELPER_OBJECT_PATH "/org/banger/Helper"
/* polkit may prompt when "interactive" is set; bangerd never sets it (it has
 * no terminal), so a call answers in well under this. */
#define HELPER_CALL_TIMEOUT_MS 30000
/* TakeJailState may copy a guest's whole memory (vmm.h's state timeout). */
#define TAKE_STATE_TIMEOUT_MS (10 * 60 * 1000)

struct _BangerHelperClient {
  gatomicrefcount ref;
  GMutex lock; /* connection and proxy: worker threads share the client */
  GDBusConnection *connection;
  BangerHelper *proxy;
  GPtrArray *retired; /* proxies of closed connections: a caller may still hold one */
};

BangerHelperClient *
banger_helper_client_new (void)
{
  BangerHelperClient *self = g_new0 (BangerHelperClient, 1);

  g_atomic_ref_count_init (&self->ref);
  g_mutex_init (&self->lock);
  self->retired = g_ptr_array_new_with_free_func (g_object_unref);
  return self;
}

void
banger_helper_client_free (BangerHelperClient *self)
{
  if (self == NULL || !g_atomic_ref_count_dec (&self->ref))
    return;
  g_clear_object (&self->proxy);
  if (self->connection != NULL)
    g_dbus_connection_close_sync (self->connection, NULL, NULL);
  g_clear_object (&self->connection);
  g_ptr_array_unref (self->retired);
  g_mutex_clear (&self->lock);
  g_free (self);
}

/* The helper is D-Bus activated and exits when idle (bangerd-root.service,
 * --idle-timeout): a name without an owner is normal. StartServiceByName
 * starts it where it is installed, and tells apart "not installed" (no
 * activation file) from "installed but cannot start". */
static gboolean
ensure_helper_running (GDBusConnection *connection, GCancellable *cancellable, GError **error)
{
  g_autoptr (GError) local = NULL;

  switch (banger_bus_ensure_service (connection, HELPER_BUS_NAME, HELPER_CALL_TIMEOUT_MS,
                                     cancellable, &local)) {
  case BANGER_BUS_SERVICE_RUNNING:
  case BANGER_BUS_SERVICE_STARTED:
    return TRUE;
  case BANGER_BUS_SERVICE_NOT_INSTALLED:
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_UNSUPPORTED,
                 "the root helper bangerd-root is not installed (%s cannot be activated on the "
                 "system bus): run `sudo banger system install`",
                 HELPER_BUS_NAME);
    return FALSE;
  case BANGER_BUS_SERVICE_FAILED:
  default:
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_UNSUPPORTED,
                 "the root helper bangerd-root did not start (%s): see `journalctl -u "
                 "bangerd-root`",
                 local->message);
    return FALSE;
  }
}

/* A private connection to the system bus (the shared singleton would exit
 * bangerd when the system bus goes away), made on first use and again after
 * it closed (the system bus restarted). Called with the lock held. */
static gboolean
connect_locked (BangerHelperClient *self, GCancellable *cancellable, GError **error)
{
  g_autoptr (GError) local = NULL;
  g_autofree char *address = NULL;

  if (self->connection != NULL && !g_dbus_connection_is_closed (self->connection))
    return TRUE;
  if (self->proxy != NULL)
    g_ptr_array_add (self->retired, g_steal_pointer (&self->proxy));
  g_clear_object (&self->connection);
  address = g_dbus_address_get_for_bus_sync (G_BUS_TYPE_SYSTEM, cancellable, &local);
  if (address != NULL)
    self->connection = g_dbus_connection_new_for_address_sync (
        address,
        G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT
            | G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
        NULL, cancellable, &local);
  if (self->connection == NULL) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_UNSUPPORTED, "no system bus: %s",
                 local->message);
    return FALSE;
  }
  /* Closing the connection must not end bangerd. */
  g_dbus_connection_set_exit_on_close (self->connection, FALSE);
  /* Not started here: _connect() starts it with a clear error, and _dup_bus()
   * must not start it at all (the doctor asks first). Calls still activate
   * a helper that exited while idle. */
  self->proxy = banger_helper_proxy_new_sync (
      self->connection,
      G_DBUS_PROXY_FLAGS_DO_NOT_LOAD_PROPERTIES | G_DBUS_PROXY_FLAGS_DO_NOT_CONNECT_SIGNALS
          | G_DBUS_PROXY_FLAGS_DO_NOT_AUTO_START_AT_CONSTRUCTION,
      HELPER_BUS_NAME, HELPER_OBJECT_PATH, cancellable, error);
  if (self->proxy == NULL) {
    g_clear_object (&self->connection);
    banger_error_convert (error);
    return FALSE;
  }
  g_dbus_proxy_set_default_timeout (G_DBUS_PROXY (self->proxy), HELPER_CALL_TIMEOUT_MS);
  return TRUE;
}

BangerHelperClient *
banger_helper_client_ref (BangerHelperClient *self)
{
  g_atomic_ref_count_inc (&self->ref);
  return self;
}

GDBusConnection *
banger_helper_client_dup_bus (BangerHelperClient *self, GError **error)
{
  GDBusConnection *connection = NULL;

  g_mutex_lock (&self->lock);
  if (connect_locked (self, NULL, error))
    connection = g_object_ref (self->connection);
  g_mutex_unlock (&self->lock);
  return connection;
}

BangerHelperClient *
banger_helper_client_connect (BangerHelperClient *self, GCancellable *cancellable, GError **error)
{
  GDBusConnection *connection;
  gboolean ok;

  g_mutex_lock (&self->lock);
  ok = connect_locked (self, cancellable, error);
  connection = ok ? g_object_ref (self->connection) : NULL;
  g_mutex_unlock (&self->lock);
  if (!ok)
    return NULL;
  /* The helper exits when idle: started again here, each time, so a caller
   * learns "not installed" or "cannot start" rather than a bare timeout. */
  ok = ensure_helper_running (connection, cancellable, error);
  g_object_unref (connection);
  if (!ok) {
    banger_error_convert (error);
    return NULL;
  }
  g_atomic_ref_count_inc (&self->ref);
  return self;
}

/* The helper's errors arrive as remote D-Bus errors; banger's own domain is
 * registered, so they map back to BANGER_ERROR. A polkit denial is the
 * standard AccessDenied, which a VM's LastError reports as NotAuthorized. */
static void
helper_error (GError **error, const char *method)
{
  GError *e;

  if (error == NULL || *error == NULL)
    return;
  e = *error;
  g_dbus_error_strip_remote_error (e);
  if (g_error_matches (e, G_DBUS_ERROR, G_DBUS_ERROR_ACCESS_DENIED)) {
    g_autofree char *message = g_strdup (e->message);
    const char *user = g_get_user_name ();

    /* The one fix for a user bangerd runs for: the rules grant group
     * banger (data/polkit/50-org.banger.rules). */
    e->domain = BANGER_ERROR;
    e->code = BANGER_ERROR_NOT_AUTHORIZED;
    g_free (e->message);
    e->message = g_strdup_printf ("%s — only members of group banger may use the root helper: "
                                  "run `sudo banger system install --user %s`",
                                  message, user);
  }
  banger_error_convert (error);
  g_prefix_error (error, "helper %s: ", method);
}

static GVariant *
no_options (void)
{
  return g_variant_new_array (G_VARIANT_TYPE ("{sv}"), NULL, 0);
}

char *
banger_helper_client_ensure_network (BangerHelperClient *self, GError **error)
{
  char *address = NULL;

  if (!banger_helper_call_ensure_network_sync (self->proxy, no_options (), &address, NULL, error)) {
    helper_error (error, "EnsureNetwork");
    return NULL;
  }
  return address;
}

char *
banger_helper_client_create_tap (BangerHelperClient *self, const char *vm_id, GError **error)
{
  char *tap = NULL;

  if (!banger_helper_call_create_tap_sync (self->proxy, vm_id, no_options (), &tap, NULL, error)) {
    helper_error (error, "CreateTap");
    return NULL;
  }
  return tap;
}

void
banger_helper_client_claim_tap_async (BangerHelperClient *self, const char *vm_id,
                                      const char *mac, const char *ipv4,
                                      GAsyncReadyCallback callback, gpointer user_data)
{
  g_auto (GVariantBuilder) options = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE_VARDICT);

  g_variant_builder_add (&options, "{sv}", "mac", g_variant_new_string (mac));
  g_variant_builder_add (&options, "{sv}", "ipv4", g_variant_new_string (ipv4));
  banger_helper_call_create_tap (self->proxy, vm_id, g_variant_builder_end (&options), NULL,
                                 callback, user_data);
}

gboolean
banger_helper_client_claim_tap_finish (BangerHelperClient *self, GAsyncResult *result,
                                       GError **error)
{
  g_autofree char *tap = NULL;

  if (!banger_helper_call_create_tap_finish (self->proxy, &tap, result, error)) {
    helper_error (error, "CreateTap");
    return FALSE;
  }
  return TRUE;
}

gboolean
banger_helper_client_delete_tap (BangerHelperClient *self, const char *vm_id, GError **error)
{
  g_autoptr (GError) local = NULL;

  if (banger_helper_call_delete_tap_sync (self->proxy, vm_id, no_options (), NULL, &local))
    return TRUE;
  helper_error (&local, "DeleteTap");
  if (g_error_matches (local, BANGER_ERROR, BANGER_ERROR_NOT_FOUND))
    return TRUE;
  g_propagate_error (error, g_steal_pointer (&local));
  return FALSE;
}

guint
banger_helper_client_launch_jailed (BangerHelperClient *self, GVariant *spec, GError **error)
{
  guint pid = 0;
  g_autoptr (GVariant) owned = g_variant_ref_sink (spec);

  if (!banger_helper_call_launch_jailed_sync (self->proxy, owned, no_options (), &pid, NULL,
                                              error)) {
    helper_error (error, "LaunchJailed");
    return 0;
  }
  return pid;
}

gboolean
banger_helper_client_kill_jailed (BangerHelperClient *self, const char *vm_id, int signum,
                                  GError **error)
{
  g_autoptr (GError) local = NULL;

  if (banger_helper_call_kill_jailed_sync (self->proxy, vm_id, signum, no_options (), NULL, &local))
    return TRUE;
  helper_error (&local, "KillJailed");
  /* Already gone: what the caller wanted. */
  if (g_error_matches (local, BANGER_ERROR, BANGER_ERROR_NOT_FOUND))
    return TRUE;
  g_propagate_error (error, g_steal_pointer (&local));
  return FALSE;
}

gboolean
banger_helper_client_take_jail_state (BangerHelperClient *self, const char *vm_id,
                                      const char *dest_dir, GError **error)
{
  g_autoptr (GVariant) ret = NULL;

  /* Not the default timeout: across filesystems the helper copies the
   * guest's whole memory. */
  ret = g_dbus_proxy_call_sync (G_DBUS_PROXY (self->proxy), "TakeJailState",
                                g_variant_new ("(ss@a{sv})", vm_id, dest_dir, no_options ()),
                                G_DBUS_CALL_FLAGS_NONE, TAKE_STATE_TIMEOUT_MS, NULL, error);
  if (ret == NULL) {
    helper_error (error, "TakeJailState");
    return FALSE;
  }
  return TRUE;
}

gboolean
banger_helper_client_remove_jail (BangerHelperClient *self, const char *vm_id, GError **error)
{
  if (banger_helper_call_remove_jail_sync (self->proxy, vm_id, no_options (), NULL, error))
    return TRUE;
  /* The helper answers success for an absent jail itself. */
  helper_error (error, "RemoveJail");
  return FALSE;
}

gboolean
banger_helper_client_configure_dns (BangerHelperClient *self, guint16 port, GError **error)
{
  GVariantBuilder options;

  g_variant_builder_init (&options, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add (&options, "{sv}", "port", g_variant_new_uint16 (port));
  if (banger_helper_call_configure_dns_sync (self->proxy, g_variant_builder_end (&options), NULL,
                                             error))
    return TRUE;
  helper_error (error, "ConfigureDNS");
  return FALSE;
}

GVariant *
banger_helper_client_inspect_firewall (BangerHelperClient *self, GError **error)
{
  GVariant *facts = NULL;

  if (!banger_helper_call_inspect_firewall_sync (self->proxy, no_options (), &facts, NULL, error)) {
    helper_error (error, "InspectFirewall");
    return NULL;
  }
  return facts;
}

char *
banger_helper_client_create_snapshot (BangerHelperClient *self, const char *vm_id,
                                      const char *origin, GError **error)
{
  char *device = NULL;

  if (!banger_helper_call_create_snapshot_sync (self->proxy, vm_id, origin, no_options (), &device,
                                                NULL, error)) {
    helper_error (error, "CreateSnapshot");
    return NULL;
  }
  return device;
}

gboolean
banger_helper_client_remove_snapshot (BangerHelperClient *self, const char *vm_id, GError **error)
{
  g_autoptr (GError) local = NULL;

  if (banger_helper_call_remove_snapshot_sync (self->proxy, vm_id, no_options (), NULL, &local))
    return TRUE;
  helper_error (&local, "RemoveSnapshot");
  if (g_error_matches (local, BANGER_ERROR, BANGER_ERROR_NOT_FOUND))
    return TRUE;
  g_propagate_error (error, g_steal_pointer (&local));
  return FALSE;
}

gboolean
banger_helper_delete_tap_if_any (BangerHelperClient *client, const char *vm_id, GError **error)
{
  g_autoptr (GError) local = NULL;
  g_autoptr (BangerHelperClient) helper = banger_helper_client_connect (client, NULL, &local);

  if (helper == NULL) {
    g_debug ("not deleting the tap of %s: %s", vm_id, local->message);
    return TRUE;
  }
  return banger_helper_client_delete_tap (helper, vm_id, error);
}
