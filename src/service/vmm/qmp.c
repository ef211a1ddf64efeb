#include "qmp.h"

#include <gio/gio.h>
#include <gio/gunixfdmessage.h>
#include <gio/gunixsocketaddress.h>

#include "banger-error.h"

/* QMP replies are one JSON object per line and stay small (query replies of
 * a few KiB); anything longer than this is not QEMU talking. */
#define QMP_MAX_LINE (1024 * 1024)

struct _BangerQmp {
  GSocketConnection *connection;
  GDataInputStream *in;
  GOutputStream *out;
  char *path;
};

void
banger_qmp_free (BangerQmp *qmp)
{
  if (qmp == NULL)
    return;
  g_clear_object (&qmp->in);
  if (qmp->connection != NULL)
    g_io_stream_close (G_IO_STREAM (qmp->connection), NULL, NULL);
  g_clear_object (&qmp->connection);
  g_free (qmp->path);
  g_free (qmp);
}

static JsonObject *
read_message (BangerQmp *qmp, GError **error)
{
  gsize len = 0;
  g_autofree char *line = NULL;
  g_autoptr (GError) local = NULL;
  g_autoptr (JsonParser) parser = json_parser_new ();
  JsonNode *root;

  line = g_data_input_stream_read_line_utf8 (qmp->in, &len, NULL, &local);
  if (line == NULL) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "QMP socket %s: %s", qmp->path,
                 local ? local->message : "connection closed by QEMU");
    return NULL;
  }
  if (len > QMP_MAX_LINE) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "QMP socket %s: reply too long",
                 qmp->path);
    return NULL;
  }
  if (!json_parser_load_from_data (parser, line, len, &local)) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "QMP socket %s: malformed reply: %s",
                 qmp->path, local->message);
    return NULL;
  }
  root = json_parser_get_root (parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root)) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED,
                 "QMP socket %s: reply is not a JSON object", qmp->path);
    return NULL;
  }
  return json_object_ref (json_node_get_object (root));
}

static gboolean
send_command (BangerQmp *qmp, const char *command, JsonObject *arguments, int fd, GError **error)
{
  g_autoptr (JsonBuilder) builder = json_builder_new ();
  g_autoptr (JsonNode) root = NULL;
  g_autofree char *text = NULL;
  g_autofree char *line = NULL;
  g_autoptr (GError) local = NULL;

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "execute");
  json_builder_add_string_value (builder, command);
  if (arguments != NULL) {
    JsonNode *args = json_node_new (JSON_NODE_OBJECT);
    json_node_set_object (args, arguments);
    json_builder_set_member_name (builder, "arguments");
    json_builder_add_value (builder, args);
  }
  json_builder_end_object (builder);
  root = json_builder_get_root (builder);
  text = json_to_string (root, FALSE);
  line = g_strconcat (text, "\n", NULL);
  if (fd >= 0) {
    /* QEMU takes the descriptor from the ancillary data of the message
     * that carries the command: one sendmsg with both. */
    GSocket *socket = g_socket_connection_get_socket (qmp->connection);
    g_autoptr (GSocketControlMessage) fds = g_unix_fd_message_new ();
    GSocketControlMessage *messages[] = { fds };
    GOutputVector vector = { line, strlen (line) };
    gssize sent;

    if (!g_unix_fd_message_append_fd (G_UNIX_FD_MESSAGE (fds), fd, &local)) {
      g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "QMP socket %s: cannot pass a fd: %s",
                   qmp->path, local->message);
      return FALSE;
    }
    sent = g_socket_send_message (socket, NULL, &vector, 1, messages, 1, G_SOCKET_MSG_NONE, NULL,
                                  &local);
    if (sent < 0 || (gsize)sent != vector.size) {
      g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "QMP socket %s: cannot send %s: %s",
                   qmp->path, command, local ? local->message : "short write");
      return FALSE;
    }
    return TRUE;
  }
  if (!g_output_stream_write_all (qmp->out, line, strlen (line), NULL, NULL, &local)) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "QMP socket %s: cannot send %s: %s",
                 qmp->path, command, local->message);
    return FALSE;
  }
  return TRUE;
}

static JsonNode *
execute (BangerQmp *qmp, const char *command, JsonObject *arguments, int fd, GError **error)
{
  if (!send_command (qmp, command, arguments, fd, error))
    return NULL;

  for (;;) {
    g_autoptr (JsonObject) msg = read_message (qmp, error);

    if (msg == NULL)
      return NULL;
    if (json_object_has_member (msg, "event"))
      continue; /* asynchronous events are not replies */
    if (json_object_has_member (msg, "error")) {
      JsonObject *err = json_object_get_object_member (msg, "error");
      g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "QEMU refused %s: %s (%s)", command,
                   err ? json_object_get_string_member_with_default (err, "desc", "?") : "?",
                   err ? json_object_get_string_member_with_default (err, "class", "?") : "?");
      return NULL;
    }
    if (json_object_has_member (msg, "return"))
      return json_node_copy (json_object_get_member (msg, "return"));
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "QMP socket %s: unexpected reply to %s",
                 qmp->path, command);
    return NULL;
  }
}

JsonNode *
banger_qmp_execute (BangerQmp *qmp, const char *command, JsonObject *arguments, GError **error)
{
  return execute (qmp, command, arguments, -1, error);
}

gboolean
banger_qmp_getfd (BangerQmp *qmp, const char *name, int fd, GError **error)
{
  g_autoptr (JsonObject) args = json_object_new ();
  g_autoptr (JsonNode) reply = NULL;

  json_object_set_string_member (args, "fdname", name);
  reply = execute (qmp, "getfd", args, fd, error);
  return reply != NULL;
}

BangerQmp *
banger_qmp_connect (const char *path, guint timeout_ms, GError **error)
{
  g_autoptr (GSocketClient) client = g_socket_client_new ();
  g_autoptr (GSocketAddress) address = g_unix_socket_address_new (path);
  g_autoptr (GError) local = NULL;
  g_autoptr (BangerQmp) qmp = g_new0 (BangerQmp, 1);
  g_autoptr (JsonObject) greeting = NULL;
  g_autoptr (JsonNode) reply = NULL;
  GSocket *socket;

  qmp->path = g_strdup (path);
  qmp->connection = g_socket_client_connect (client, G_SOCKET_CONNECTABLE (address), NULL, &local);
  if (qmp->connection == NULL) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "cannot connect to QMP socket %s: %s",
                 path, local->message);
    return NULL;
  }
  socket = g_socket_connection_get_socket (qmp->connection);
  /* Whole seconds only: GSocket's timeout unit. */
  g_socket_set_timeout (socket, MAX (1, (timeout_ms + 999) / 1000));
  qmp->in = g_data_input_stream_new (g_io_stream_get_input_stream (G_IO_STREAM (qmp->connection)));
  g_data_input_stream_set_newline_type (qmp->in, G_DATA_STREAM_NEWLINE_TYPE_ANY);
  qmp->out = g_io_stream_get_output_stream (G_IO_STREAM (qmp->connection));

  greeting = read_message (qmp, error);
  if (greeting == NULL)
    return NULL;
  if (!json_object_has_member (greeting, "QMP")) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED,
                 "QMP socket %s: no QMP greeting (is this a QEMU monitor?)", path);
    return NULL;
  }
  reply = banger_qmp_execute (qmp, "qmp_capabilities", NULL, error);
  if (reply == NULL)
    return NULL;
  return g_steal_pointer (&qmp);
}

char *
banger_qmp_query_status (BangerQmp *qmp, GError **error)
{
  g_autoptr (JsonNode) reply = banger_qmp_execute (qmp, "query-status", NULL, error);

  if (reply == NULL)
    return NULL;
  if (!JSON_NODE_HOLDS_OBJECT (reply)) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "query-status: unexpected reply");
    return NULL;
  }
  return g_strdup (json_object_get_string_member_with_default (json_node_get_object (reply),
                                                               "status", "unknown"));
}
