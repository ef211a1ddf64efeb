#include "firecracker-api.h"

#include <gio/gunixsocketaddress.h>

#include "banger-error.h"
#include "soup-api.h"

struct _BangerFirecrackerApi {
  char *socket_path;
  SoupSession *session;
};

BangerFirecrackerApi *
banger_firecracker_api_new (const char *socket_path, guint timeout_s)
{
  BangerFirecrackerApi *api = g_new0 (BangerFirecrackerApi, 1);
  g_autoptr (GSocketAddress) address = g_unix_socket_address_new (socket_path);

  api->socket_path = g_strdup (socket_path);
  /* remote-connectable sends every request to the unix socket whatever the
   * URI's host says, which is how libsoup-3 speaks HTTP over AF_UNIX. */
  api->session = soup_session_new_with_options ("remote-connectable", address, "timeout", timeout_s,
                                                "idle-timeout", timeout_s, NULL);
  return api;
}

void
banger_firecracker_api_free (BangerFirecrackerApi *api)
{
  if (api == NULL)
    return;
  g_clear_object (&api->session);
  g_free (api->socket_path);
  g_free (api);
}

/* The fault_message of an error body, or the body itself if it is not the
 * contract's Error object (then at least the user sees what came back). */
static char *
fault_message (GBytes *bytes)
{
  gsize len = 0;
  const char *data = bytes ? g_bytes_get_data (bytes, &len) : NULL;
  g_autoptr (JsonParser) parser = json_parser_new ();
  JsonNode *root;

  if (len == 0)
    return g_strdup ("(no fault_message)");
  if (json_parser_load_from_data (parser, data, (gssize)len, NULL)
      && (root = json_parser_get_root (parser)) != NULL && JSON_NODE_HOLDS_OBJECT (root)) {
    JsonObject *obj = json_node_get_object (root);
    if (json_object_has_member (obj, "fault_message")
        && JSON_NODE_HOLDS_VALUE (json_object_get_member (obj, "fault_message")))
      return g_strdup (json_object_get_string_member (obj, "fault_message"));
  }
  return g_strdup_printf ("unexpected answer: %.*s", (int)MIN (len, 200), data);
}

/* One request; returns the body of a 2xx answer (empty for 204). */
static GBytes *
request (BangerFirecrackerApi *api, const char *method, const char *path, JsonNode *body,
         GError **error)
{
  g_autofree char *uri = g_strconcat ("http://localhost", path, NULL);
  g_autoptr (SoupMessage) msg = soup_message_new (method, uri);
  g_autoptr (GBytes) reply = NULL;
  g_autoptr (GError) local = NULL;
  guint status;

  if (msg == NULL) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
                 "Firecracker API: bad request path “%s”", path);
    return NULL;
  }
  soup_message_headers_replace (soup_message_get_request_headers (msg), "Accept",
                                "application/json");
  if (body != NULL) {
    gsize len = 0;
    char *text = json_to_string (body, FALSE);
    g_autoptr (GBytes) bytes = NULL;

    len = strlen (text);
    bytes = g_bytes_new_take (text, len);
    soup_message_set_request_body_from_bytes (msg, "application/json", bytes);
  }
  reply = soup_session_send_and_read (api->session, msg, NULL, &local);
  if (reply == NULL) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "Firecracker API %s %s (%s): %s", method,
                 path, api->socket_path, local->message);
    return NULL;
  }
  status = soup_message_get_status (msg);
  if (status < 200 || status >= 300) {
    g_autofree char *fault = fault_message (reply);
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED,
                 "Firecracker refused %s %s (HTTP %u): %s", method, path, status, fault);
    return NULL;
  }
  return g_steal_pointer (&reply);
}

gboolean
banger_firecracker_api_put (BangerFirecrackerApi *api, const char *path, JsonNode *body,
                            GError **error)
{
  g_autoptr (GBytes) reply = request (api, "PUT", path, body, error);
  return reply != NULL;
}

gboolean
banger_firecracker_api_patch (BangerFirecrackerApi *api, const char *path, JsonNode *body,
                              GError **error)
{
  g_autoptr (GBytes) reply = request (api, "PATCH", path, body, error);
  return reply != NULL;
}

JsonNode *
banger_firecracker_api_get (BangerFirecrackerApi *api, const char *path, GError **error)
{
  g_autoptr (GBytes) reply = request (api, "GET", path, NULL, error);
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (GError) local = NULL;
  const char *data;
  gsize len = 0;
  JsonNode *root;

  if (reply == NULL)
    return NULL;
  data = g_bytes_get_data (reply, &len);
  if (!json_parser_load_from_data (parser, data ? data : "", (gssize)len, &local)) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED,
                 "Firecracker answered GET %s with malformed JSON: %s", path, local->message);
    return NULL;
  }
  root = json_parser_get_root (parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root)) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED,
                 "Firecracker answered GET %s with something that is not a JSON object", path);
    return NULL;
  }
  return json_node_copy (root);
}

gboolean
banger_firecracker_api_action (BangerFirecrackerApi *api, const char *action, GError **error)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  g_autoptr (JsonNode) body = NULL;

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "action_type");
  json_builder_add_string_value (b, action);
  json_builder_end_object (b);
  body = json_builder_get_root (b);
  return banger_firecracker_api_put (api, "/actions", body, error);
}

char *
banger_firecracker_api_get_state (BangerFirecrackerApi *api, GError **error)
{
  g_autoptr (JsonNode) info = banger_firecracker_api_get (api, "/", error);
  JsonObject *obj;
  JsonNode *state;

  if (info == NULL)
    return NULL;
  obj = json_node_get_object (info);
  state = json_object_get_member (obj, "state");
  if (state == NULL || !JSON_NODE_HOLDS_VALUE (state)
      || json_node_get_value_type (state) != G_TYPE_STRING) {
    g_set_error_literal (error, BANGER_ERROR, BANGER_ERROR_FAILED,
                         "Firecracker answered GET / without a “state” string");
    return NULL;
  }
  return g_strdup (json_node_get_string (state));
}
