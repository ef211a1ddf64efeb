#define G_LOG_DOMAIN "bangerd-dns"

#include "dns-responder.h"

#define HELPER_BUS_NAME    "org.banger.Helper"
#define HELPER_OBJECT_PATH "/org/banger/Helper"
#define CALL_TIMEOUT_MS    30000

/* A private connection (as helper-client.c makes: the shared system bus
 * singleton would take bangerd down with it if the bus went away). The
 * call lives here rather than in helper-client.c because it is the DNS
 * part's business whether and when routing is asked for. */
void
banger_dns_route_through_helper (guint port)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *address = NULL;
  g_autoptr (GDBusConnection) bus = NULL;
  g_autoptr (GVariant) reply = NULL;
  g_auto (GVariantBuilder) options = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE_VARDICT);

  if (port == 0 || port > G_MAXUINT16)
    return;
  address = g_dbus_address_get_for_bus_sync (G_BUS_TYPE_SYSTEM, NULL, &error);
  if (address != NULL)
    bus = g_dbus_connection_new_for_address_sync (
        address,
        G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT
            | G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
        NULL, NULL, &error);
  if (bus == NULL) {
    g_debug ("DNS routing: no system bus: %s", error->message);
    return;
  }
  g_dbus_connection_set_exit_on_close (bus, FALSE);
  g_variant_builder_add (&options, "{sv}", "port", g_variant_new_uint16 ((guint16)port));
  /* bangerd has no terminal to answer a prompt with. */
  g_variant_builder_add (&options, "{sv}", "interactive", g_variant_new_boolean (FALSE));
  reply = g_dbus_connection_call_sync (
      bus, HELPER_BUS_NAME, HELPER_OBJECT_PATH, "org.banger.Helper", "ConfigureDNS",
      g_variant_new ("(a{sv})", &options), G_VARIANT_TYPE ("()"), G_DBUS_CALL_FLAGS_NO_AUTO_START,
      CALL_TIMEOUT_MS, NULL, &error);
  if (reply == NULL) {
    g_autofree char *name = g_dbus_error_get_remote_error (error);

    g_dbus_error_strip_remote_error (error);
    /* Unsupported (no systemd-resolved) is the usual answer on hosts that
     * route .vm some other way (docs/dns.md): not worth more than info. */
    g_info ("DNS routing for .vm through the helper: %s%s%s", name ? name : "", name ? ": " : "",
            error->message);
  } else {
    g_info ("DNS routing: the helper sends .vm lookups to 127.0.0.1:%u", port);
  }
  g_dbus_connection_close_sync (bus, NULL, NULL);
}

void
banger_dns_route_vm_domain (BangerEngine *engine)
{
  BangerDnsResponder *dns = banger_dns_responder_get (engine);

  if (dns != NULL)
    banger_dns_route_through_helper (banger_dns_responder_get_port (dns));
}
