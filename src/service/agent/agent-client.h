/* banger-agent-client: the host side of the guest agent protocol
 * (docs/agent-protocol.md), for bangerd. One BangerAgentClient per
 * connection (virtio-serial chardev socket, hybrid vsock, or a test
 * socket); a new connection needs a new client and a new handshake.
 *
 * Errors the agent reports are in the BANGER_ERROR domain (NotFound,
 * InvalidArgument, NotAuthorized, Busy, Failed); transport failures are
 * G_IO_ERROR (CONNECTION_CLOSED, TIMED_OUT, CANCELLED). */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define BANGER_TYPE_AGENT_CLIENT (banger_agent_client_get_type ())
G_DECLARE_FINAL_TYPE (BangerAgentClient, banger_agent_client, BANGER, AGENT_CLIENT, GObject)

#define BANGER_TYPE_AGENT_EXEC (banger_agent_exec_get_type ())
G_DECLARE_FINAL_TYPE (BangerAgentExec, banger_agent_exec, BANGER, AGENT_EXEC, GObject)

/* Wraps an open byte stream; nothing is sent until the handshake. */
BangerAgentClient *banger_agent_client_new (GIOStream *stream);

/* Connects to a unix socket and does the handshake (@timeout_ms for both;
 * 0 means 10 s). */
void banger_agent_client_connect_unix_async (const char *path, guint timeout_ms,
                                             GCancellable *cancellable,
                                             GAsyncReadyCallback callback, gpointer user_data);
BangerAgentClient *banger_agent_client_connect_unix_finish (GAsyncResult *result, GError **error);

/* Sends HELLO with a fresh nonce and ignores everything until the agent's
 * HELLO carrying that nonce (the stream may hold a previous session's
 * leftovers). Fails with G_IO_ERROR_TIMED_OUT after @timeout_ms (0: 10 s). */
void banger_agent_client_handshake_async (BangerAgentClient *self, guint timeout_ms,
                                          GCancellable *cancellable, GAsyncReadyCallback callback,
                                          gpointer user_data);
gboolean banger_agent_client_handshake_finish (BangerAgentClient *self, GAsyncResult *result,
                                               GError **error);

/* Valid after the handshake. */
guint banger_agent_client_get_protocol_version (BangerAgentClient *self);
const char *banger_agent_client_get_agent_version (BangerAgentClient *self);
const char *banger_agent_client_get_boot_id (BangerAgentClient *self);
gboolean banger_agent_client_is_connected (BangerAgentClient *self);
/* Whether the agent said in its HELLO that it applies SETUP's identity
 * fields (banger_agent_client_setup_identity_async). */
gboolean banger_agent_client_get_has_identity (BangerAgentClient *self);
/* Bytes of an earlier session skipped while resynchronising (for logs). */
guint64 banger_agent_client_get_discarded_bytes (BangerAgentClient *self);

/* Closes the connection: every pending request and exec fails with
 * G_IO_ERROR_CONNECTION_CLOSED, and ::closed is emitted (as it is when the
 * agent side goes away). */
void banger_agent_client_close (BangerAgentClient *self);

/* Starts @argv in the guest. @options is an a{sv} as in org.banger.VM.Exec:
 * "env" (as), "cwd" (s), "tty" (b), "rows" (u), "cols" (u); unknown keys
 * ("token") are ignored. The descriptors are duplicated (the caller keeps
 * its own); -1 means no input / discard output. With a tty, everything the
 * command writes goes to @stdout_fd. Several execs may run at once. */
BangerAgentExec *banger_agent_client_exec (BangerAgentClient *self, const char *const *argv,
                                           GVariant *options, int stdin_fd, int stdout_fd,
                                           int stderr_fd, GError **error);

/* Completes when the command has exited and its output has been written to
 * the descriptors: the exit status, or 128 + signal. */
void banger_agent_exec_wait_async (BangerAgentExec *exec, GCancellable *cancellable,
                                   GAsyncReadyCallback callback, gpointer user_data);
int banger_agent_exec_wait_finish (BangerAgentExec *exec, GAsyncResult *result, GError **error);
gboolean banger_agent_exec_signal (BangerAgentExec *exec, int signum, GError **error);
gboolean banger_agent_exec_resize (BangerAgentExec *exec, guint rows, guint cols, GError **error);
/* The guest pid, 0 until the agent reported the start. */
guint banger_agent_exec_get_pid (BangerAgentExec *exec);

/* a{sv}: mem_total_bytes, mem_available_bytes, disk_total_bytes,
 * disk_free_bytes (t); load1, load5, load15, uptime_seconds (d). */
void banger_agent_client_get_stats_async (BangerAgentClient *self, GCancellable *cancellable,
                                          GAsyncReadyCallback callback, gpointer user_data);
GVariant *banger_agent_client_get_stats_finish (BangerAgentClient *self, GAsyncResult *result,
                                                GError **error);

/* a(ssqus): protocol, address, port, pid, process name. */
void banger_agent_client_list_ports_async (BangerAgentClient *self, GCancellable *cancellable,
                                           GAsyncReadyCallback callback, gpointer user_data);
GVariant *banger_agent_client_list_ports_finish (BangerAgentClient *self, GAsyncResult *result,
                                                 GError **error);

void banger_agent_client_get_boot_id_async (BangerAgentClient *self, GCancellable *cancellable,
                                            GAsyncReadyCallback callback, gpointer user_data);
char *banger_agent_client_get_boot_id_finish (BangerAgentClient *self, GAsyncResult *result,
                                              GError **error);

/* A no-op round trip. */
void banger_agent_client_ping_async (BangerAgentClient *self, GCancellable *cancellable,
                                     GAsyncReadyCallback callback, gpointer user_data);
gboolean banger_agent_client_ping_finish (BangerAgentClient *self, GAsyncResult *result,
                                          GError **error);

/* Writes the ssh keys (any may be NULL) and starts sshd where the agent is
 * the init; @has_sshd tells whether sshd runs. */
void banger_agent_client_setup_async (BangerAgentClient *self, const char *authorized_keys,
                                      const char *host_key, const char *host_key_pub,
                                      GCancellable *cancellable, GAsyncReadyCallback callback,
                                      gpointer user_data);
gboolean banger_agent_client_setup_finish (BangerAgentClient *self, GAsyncResult *result,
                                           gboolean *has_sshd, GError **error);

/* A restored clone's own identity (docs/warm-start.md); NULL/""/0 members
 * are not sent. */
typedef struct {
  const char *mac;
  const char *ip_cidr; /* a.b.c.d/prefix */
  const char *gw;
  const char *dns;
  const char *hostname;
  const char *machine_id; /* 32 lowercase hex digits */
  GBytes *entropy;        /* from the host's RNG, credited in the guest */
  guint64 clock_ns;       /* the host's CLOCK_REALTIME */
} BangerAgentIdentity;

/* SETUP with an identity as well: *@identity_applied says whether the agent
 * applied it (an agent older than these fields ignores them, and the caller
 * must then not use the guest as a clone). */
void banger_agent_client_setup_identity_async (BangerAgentClient *self,
                                               const char *authorized_keys, const char *host_key,
                                               const char *host_key_pub,
                                               const BangerAgentIdentity *identity,
                                               GCancellable *cancellable,
                                               GAsyncReadyCallback callback, gpointer user_data);
gboolean banger_agent_client_setup_identity_finish (BangerAgentClient *self, GAsyncResult *result,
                                                    gboolean *has_sshd, gboolean *identity_applied,
                                                    GError **error);

void banger_agent_client_poweroff_async (BangerAgentClient *self, GCancellable *cancellable,
                                         GAsyncReadyCallback callback, gpointer user_data);
gboolean banger_agent_client_poweroff_finish (BangerAgentClient *self, GAsyncResult *result,
                                              GError **error);

/* Streams @source to @path in the guest (replaced atomically), mode @mode. */
void banger_agent_client_put_file_async (BangerAgentClient *self, const char *path, guint mode,
                                         GInputStream *source, GCancellable *cancellable,
                                         GAsyncReadyCallback callback, gpointer user_data);
gboolean banger_agent_client_put_file_finish (BangerAgentClient *self, GAsyncResult *result,
                                              GError **error);

/* Streams the guest's @path into @dest; @mode is its permission bits. */
void banger_agent_client_get_file_async (BangerAgentClient *self, const char *path,
                                         GOutputStream *dest, GCancellable *cancellable,
                                         GAsyncReadyCallback callback, gpointer user_data);
gboolean banger_agent_client_get_file_finish (BangerAgentClient *self, GAsyncResult *result,
                                              guint *mode, GError **error);

G_END_DECLS
