/* Agent frames on the host side: what bangerd's agent client
 * (src/service/agent/agent-client*.c, agent-exec.c) makes of bytes from a guest —
 * resynchronisation, the handshake, and dispatch to every kind of request
 * in flight (an exec, a download, ping, stats, ports, boot id, setup).
 * A real handshake is done first (the nonce read back from the socket),
 * then the input is fed as if read from the connection. */
#include "fuzz-common.h"

#include "agent-client-private.h"

#include <gio/gio.h>
#include <sys/socket.h>

static void
ignore_cb (GObject *source, GAsyncResult *res, gpointer data)
{
  /* The result does not matter; the task frees it when it goes. */
}

static void
drain_context (void)
{
  for (int i = 0; i < 64 && g_main_context_iteration (NULL, FALSE); i++)
    ;
}

/* The HELLO the client sent, read back from the peer end. */
static void
answer_hello (BangerAgentClient *client, int peer)
{
  guint8 buf[4096];
  ssize_t n = recv (peer, buf, sizeof buf, MSG_DONTWAIT);
  BngrHeader hdr;
  const uint8_t *payload;
  size_t consumed;
  const char *reason;
  guint64 nonce = 0;
  if (n <= 0 || bngr_parse (buf, (size_t)n, &hdr, &payload, &consumed, &reason) != BNGR_PARSE_FRAME
      || !bngr_find_u64 (payload, hdr.length, BNGR_F_NONCE, &nonce))
    abort ();
  BngrBuf p, f;
  bngr_buf_init (&p);
  bngr_buf_init (&f);
  bngr_put_u32 (&p, BNGR_F_PROTO_VERSION, BNGR_PROTOCOL_VERSION);
  bngr_put_str (&p, BNGR_F_AGENT_VERSION, "fuzz");
  bngr_put_str (&p, BNGR_F_BOOT_ID, "boot");
  bngr_put_u64 (&p, BNGR_F_NONCE, nonce);
  bngr_frame_append (&f, BNGR_T_HELLO, 0, 0, p.data, p.len);
  banger_agent_client_feed (client, f.data, f.len);
  bngr_buf_clear (&p);
  bngr_buf_clear (&f);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  int sv[2];
  if (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
    abort ();
  g_autoptr (GSocket) sock = g_socket_new_from_fd (sv[0], NULL);
  g_autoptr (GSocketConnection) conn = g_socket_connection_factory_create_connection (sock);
  g_autoptr (BangerAgentClient) client = banger_agent_client_new (G_IO_STREAM (conn));

  /* The first byte: feed the input before the handshake completes (the
   * previous session's leftovers) or after it. */
  gboolean before = size > 0 && (data[0] & 1);
  banger_agent_client_handshake_async (client, 60000, NULL, NULL, NULL);
  drain_context ();
  if (before)
    banger_agent_client_feed (client, data, size);
  answer_hello (client, sv[1]);

  /* One of each request in flight: streams 1..7. */
  const char *argv[] = { "true", NULL };
  g_autoptr (BangerAgentExec) exec
      = banger_agent_client_exec (client, argv, NULL, -1, -1, -1, NULL);
  g_autoptr (GOutputStream) dest = g_memory_output_stream_new_resizable ();
  banger_agent_client_get_file_async (client, "/etc/hostname", dest, NULL, ignore_cb, NULL);
  banger_agent_client_ping_async (client, NULL, ignore_cb, NULL);
  banger_agent_client_get_stats_async (client, NULL, ignore_cb, NULL);
  banger_agent_client_list_ports_async (client, NULL, ignore_cb, NULL);
  banger_agent_client_get_boot_id_async (client, NULL, ignore_cb, NULL);
  banger_agent_client_setup_async (client, "ssh-ed25519 AAAA", NULL, NULL, NULL, ignore_cb, NULL);
  if (exec != NULL)
    banger_agent_exec_wait_async (exec, NULL, ignore_cb, NULL);
  drain_context ();
  if (!before)
    banger_agent_client_feed (client, data, size);
  drain_context ();

  banger_agent_client_close (client);
  drain_context ();
  g_clear_object (&exec);
  g_clear_object (&client);
  drain_context ();
  close (sv[1]);
  return 0;
}
