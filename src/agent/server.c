/* The agent's event loop: one host connection at a time, frames parsed
 * with resynchronisation, requests dispatched to exec/files/stats/ports/
 * setup, children reaped through a signalfd. Single-threaded poll() so the
 * static binary stays small and every state change happens in one place.
 * The top of the agent: the handlers it calls, and connection.c (sending,
 * streams, log) below them, never call back up into this file. */

#include "server.h"

#include "exec.h"
#include "files.h"
#include "init.h"
#include "ports.h"
#include "setup.h"
#include "stats.h"
#include "transport.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define PORT_RETRY_MS     100
#define STALL_MS          1000
#define SEEK_TRANSPORT_MS 250

/* A new host session (HELLO or a lost connection): what the old host
 * started is of no use to anyone now. */
static void
abort_all_streams (Agent *agent)
{
  while (agent->streams != NULL)
    agent_stream_free (agent, agent->streams);
}

static void
handle_hello (Agent *agent, const BngrHeader *hdr, const uint8_t *payload)
{
  uint64_t nonce = 0;
  uint32_t version = 0;
  BngrBuf p;

  abort_all_streams (agent);
  bngr_find_u64 (payload, hdr->length, BNGR_F_NONCE, &nonce);
  bngr_find_u32 (payload, hdr->length, BNGR_F_PROTO_VERSION, &version);
  bngr_buf_init (&p);
  bngr_put_u32 (&p, BNGR_F_PROTO_VERSION, BNGR_PROTOCOL_VERSION);
  bngr_put_str (&p, BNGR_F_AGENT_VERSION, AGENT_VERSION);
  bngr_put_str (&p, BNGR_F_BOOT_ID, agent->boot_id);
  bngr_put_u64 (&p, BNGR_F_NONCE, nonce);
  /* This agent applies SETUP's identity fields: the host may then save
   * this guest as a snapshot for clones (docs/warm-start.md). */
  bngr_put_u32 (&p, BNGR_F_IDENTITY, 1);
  agent_send (agent, BNGR_T_HELLO, 0, hdr->stream, &p);
  bngr_buf_clear (&p);
}

static void
reply_payload (Agent *agent, uint32_t stream, bool ok, BngrBuf *p, const char *what)
{
  if (ok)
    agent_send (agent, BNGR_T_OK, 0, stream, p);
  else
    agent_send_error (agent, stream, agent_errno_code (errno), "%s: %s", what, strerror (errno));
}

static void
handle_data (Agent *agent, const BngrHeader *hdr, const uint8_t *payload)
{
  Stream *s = agent_stream_find (agent, hdr->stream);
  if (s == NULL) {
    /* Stdin for an exec that just ended is a normal race: drop it quietly. */
    return;
  }
  if ((hdr->flags & BNGR_CHAN_MASK) != BNGR_CHAN_STDIN) {
    agent_send_error (agent, hdr->stream, BNGR_ERR_INVALID, "DATA to the agent must be channel 0");
    return;
  }
  if (s->kind == STREAM_EXEC)
    exec_stdin (agent, s, hdr->flags, payload, hdr->length);
  else if (s->kind == STREAM_PUT)
    files_put_data (agent, s, hdr->flags, payload, hdr->length);
}

static void
dispatch (Agent *agent, const BngrHeader *hdr, const uint8_t *payload)
{
  BngrBuf p;
  Stream *s;

  if (hdr->version != BNGR_PROTOCOL_VERSION) {
    agent_send_error (agent, hdr->stream, BNGR_ERR_VERSION,
                      "protocol version %u is not supported (this agent speaks %d)", hdr->version,
                      BNGR_PROTOCOL_VERSION);
    return;
  }
  if (hdr->type != BNGR_T_DATA) {
    BngrFieldIter it;
    uint16_t tag;
    const uint8_t *v;
    size_t vl;
    bngr_iter_init (&it, payload, hdr->length);
    while (bngr_iter_next (&it, &tag, &v, &vl))
      ;
    if (it.error) {
      agent_send_error (agent, hdr->stream, BNGR_ERR_BAD_FRAME, "%s frame has a truncated field",
                        bngr_type_name (hdr->type));
      return;
    }
  }

  bngr_buf_init (&p);
  switch (hdr->type) {
  case BNGR_T_HELLO:
    handle_hello (agent, hdr, payload);
    break;
  case BNGR_T_EXEC:
    exec_start (agent, hdr->stream, payload, hdr->length);
    break;
  case BNGR_T_DATA:
    handle_data (agent, hdr, payload);
    break;
  case BNGR_T_RESIZE:
  case BNGR_T_SIGNAL:
    s = agent_stream_find (agent, hdr->stream);
    if (s == NULL || s->kind != STREAM_EXEC) {
      /* The exec may have ended while the request was in flight. */
      agent_send_error (agent, hdr->stream, BNGR_ERR_UNKNOWN, "no running exec on stream %u",
                        hdr->stream);
    } else if (hdr->type == BNGR_T_RESIZE) {
      exec_resize (agent, s, payload, hdr->length);
    } else {
      exec_signal (agent, s, payload, hdr->length);
    }
    break;
  case BNGR_T_ERROR:
    /* The host gives up on a stream (an upload whose source failed):
     * drop it, which removes a half-written temporary file. */
    s = agent_stream_find (agent, hdr->stream);
    if (s != NULL)
      agent_stream_free (agent, s);
    break;
  case BNGR_T_FILE_PUT:
    files_put_start (agent, hdr->stream, payload, hdr->length);
    break;
  case BNGR_T_FILE_GET:
    files_get_start (agent, hdr->stream, payload, hdr->length);
    break;
  case BNGR_T_STATS:
    reply_payload (agent, hdr->stream, stats_collect (&p), &p, "collecting stats");
    break;
  case BNGR_T_PORTS:
    reply_payload (agent, hdr->stream, ports_collect (&p), &p, "listing ports");
    break;
  case BNGR_T_BOOT_ID:
    bngr_put_str (&p, BNGR_F_BOOT_ID, agent->boot_id);
    agent_send (agent, BNGR_T_OK, 0, hdr->stream, &p);
    break;
  case BNGR_T_PING:
    agent_send (agent, BNGR_T_OK, 0, hdr->stream, NULL);
    break;
  case BNGR_T_SETUP:
    setup_handle (agent, hdr->stream, payload, hdr->length);
    break;
  case BNGR_T_POWEROFF:
    agent_send (agent, BNGR_T_OK, 0, hdr->stream, NULL);
    agent->poweroff_pending = true;
    break;
  default:
    agent_send_error (agent, hdr->stream, BNGR_ERR_UNKNOWN, "unknown frame type 0x%02x", hdr->type);
    break;
  }
  bngr_buf_clear (&p);
}

static bool
stdin_backlogged (Agent *agent)
{
  for (Stream *s = agent->streams; s != NULL; s = s->next)
    if (s->stdin_buf.len > AGENT_STDIN_HIGH_WATER)
      return true;
  return false;
}

static void
process_input (Agent *agent)
{
  while (agent->in.len > 0 && !stdin_backlogged (agent)) {
    BngrHeader hdr;
    const uint8_t *payload = NULL;
    size_t consumed = 0;
    const char *reason = NULL;
    BngrParseResult r
        = bngr_parse (agent->in.data, agent->in.len, &hdr, &payload, &consumed, &reason);
    if (r == BNGR_PARSE_NEED_MORE)
      return;
    if (r == BNGR_PARSE_SKIPPED) {
      /* Leading garbage is expected after a reconnect and not worth a
       * reply per byte; a damaged frame is, so the host sees why. */
      if (reason != NULL && strstr (reason, "magic") == NULL)
        agent_send_error (agent, 0, BNGR_ERR_BAD_FRAME, "%s", reason);
      bngr_buf_consume (&agent->in, consumed);
      continue;
    }
    dispatch (agent, &hdr, payload);
    bngr_buf_consume (&agent->in, consumed);
  }
}

static void
host_gone (Agent *agent)
{
  abort_all_streams (agent);
  agent->in.len = 0;
  if (agent->exit_on_eof) {
    agent->quit = true;
    return;
  }
  if (agent->conn_is_port) {
    agent->port_idle = true;
    return;
  }
  close (agent->conn_fd);
  agent->conn_fd = agent->out_fd = -1;
}

static void
read_conn (Agent *agent)
{
  uint8_t buf[64 * 1024];
  ssize_t n = read (agent->conn_fd, buf, sizeof buf);
  if (n < 0 && (errno == EAGAIN || errno == EINTR))
    return;
  if (n <= 0) {
    if (!agent->port_idle)
      host_gone (agent);
    return;
  }
  agent->port_idle = false;
  bngr_buf_append (&agent->in, buf, (size_t)n);
  agent->in_stall_since_ms = agent_now_ms ();
  process_input (agent);
}

static void
write_conn (Agent *agent)
{
  while (agent->out.len > 0) {
    ssize_t n = send (agent->out_fd, agent->out.data, agent->out.len, MSG_NOSIGNAL);
    if (n < 0 && errno == ENOTSOCK)
      n = write (agent->out_fd, agent->out.data, agent->out.len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && errno == EAGAIN)
      return;
    if (n <= 0) {
      /* The unsent bytes stay queued for the next host, like the
       * virtio-serial port would keep them. */
      host_gone (agent);
      return;
    }
    bngr_buf_consume (&agent->out, (size_t)n);
  }
}

static void
accept_conn (Agent *agent, int lfd)
{
  int fd = accept4 (lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
  if (fd < 0)
    return;
  if (agent->conn_fd >= 0) {
    /* The newest host wins: the old one is gone or confused. */
    abort_all_streams (agent);
    close (agent->conn_fd);
  }
  agent->conn_fd = agent->out_fd = fd;
  agent->in.len = 0;
  agent->in_stall_since_ms = agent_now_ms ();
}

static void
reap_children (Agent *agent)
{
  struct signalfd_siginfo si;
  while (read (agent->sig_fd, &si, sizeof si) == sizeof si)
    ;
  for (;;) {
    int status;
    pid_t pid = waitpid (-1, &status, WNOHANG);
    if (pid <= 0)
      break;
    Stream *s;
    for (s = agent->streams; s != NULL; s = s->next)
      if (s->kind == STREAM_EXEC && s->pid == pid)
        break;
    if (s != NULL)
      exec_child_exited (agent, s, status);
    else
      setup_child_exited (agent, pid);
  }
}

static bool
conn_ready (Agent *agent)
{
  return agent->conn_fd >= 0 && !agent->port_idle;
}

int
agent_serve (Agent *agent)
{
  sigset_t mask;
  sigemptyset (&mask);
  sigaddset (&mask, SIGCHLD);
  sigprocmask (SIG_BLOCK, &mask, NULL);
  agent->sig_fd = signalfd (-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
  signal (SIGPIPE, SIG_IGN);
  if (agent->sig_fd < 0) {
    agent_log ("signalfd: %s", strerror (errno));
    return 1;
  }

  while (!agent->quit) {
    struct pollfd pfd[8 + 3 * AGENT_MAX_STREAMS];
    Stream *owner[8 + 3 * AGENT_MAX_STREAMS];
    int which[8 + 3 * AGENT_MAX_STREAMS];
    nfds_t n = 0;
    int timeout = -1;
    bool room = agent->out.len < AGENT_OUT_HIGH_WATER;
    bool backlogged;

#define ADD(fd_, ev_, s_, w_)                                                                      \
  do {                                                                                             \
    pfd[n].fd = (fd_);                                                                             \
    pfd[n].events = (ev_);                                                                         \
    pfd[n].revents = 0;                                                                            \
    owner[n] = (s_);                                                                               \
    which[n] = (w_);                                                                               \
    n++;                                                                                           \
  } while (0)

    ADD (agent->sig_fd, POLLIN, NULL, 0);
    if (agent->seek_transport)
      timeout = SEEK_TRANSPORT_MS;
    for (int i = 0; i < agent->n_listen; i++)
      ADD (agent->listen_fds[i], POLLIN, NULL, 1);
    if (agent->conn_fd >= 0) {
      if (agent->port_idle) {
        timeout = PORT_RETRY_MS;
      } else {
        short ev = stdin_backlogged (agent) ? 0 : POLLIN;
        if (agent->out.len > 0 && agent->out_fd == agent->conn_fd)
          ev |= POLLOUT;
        ADD (agent->conn_fd, ev, NULL, 2);
        if (agent->out.len > 0 && agent->out_fd != agent->conn_fd)
          ADD (agent->out_fd, POLLOUT, NULL, 3);
      }
    }
    for (Stream *s = agent->streams; s != NULL; s = s->next) {
      if (s->kind == STREAM_EXEC) {
        if (room && s->out_fd >= 0)
          ADD (s->out_fd, POLLIN, s, 1);
        if (room && s->err_fd >= 0)
          ADD (s->err_fd, POLLIN, s, 2);
        if (s->in_fd >= 0 && s->stdin_buf.len > 0)
          ADD (s->in_fd, POLLOUT, s, 0);
      } else if (s->kind == STREAM_GET && room && conn_ready (agent)) {
        /* Regular files are always readable: pump without waiting. */
        timeout = 0;
      }
    }
    backlogged = stdin_backlogged (agent);
    if (backlogged) {
      /* Not reading is our choice (a command slow to take its stdin): the
       * frames already received are whole and wait their turn, and the
       * host is only waiting for us. The stall clock starts again when
       * reading resumes (after the poll below). */
    } else if (conn_ready (agent) && agent->in.len > 0) {
      long long left = STALL_MS - (agent_now_ms () - agent->in_stall_since_ms);
      if (left <= 0) {
        /* A half frame nobody is going to complete (a host died mid-write):
         * drop its first byte so the scan finds the next frame. */
        bngr_buf_consume (&agent->in, 1);
        agent->in_stall_since_ms = agent_now_ms ();
        process_input (agent);
        continue;
      }
      if (timeout < 0 || left < timeout)
        timeout = (int)left;
    }
    if (agent->poweroff_pending && (agent->out.len == 0 || !conn_ready (agent))) {
      init_poweroff (agent);
      agent->poweroff_pending = false;
      continue;
    }
#undef ADD

    int r = poll (pfd, n, timeout);
    if (r < 0 && errno != EINTR) {
      agent_log ("poll: %s", strerror (errno));
      return 1;
    }
    if (backlogged)
      agent->in_stall_since_ms = agent_now_ms ();

    if (agent->seek_transport && transport_attach_guest (agent)) {
      agent->seek_transport = false;
      agent_log ("found the channel to the host");
    }
    if (agent->conn_fd >= 0 && agent->port_idle)
      read_conn (agent);

    for (nfds_t i = 0; i < (nfds_t)(r > 0 ? n : 0); i++) {
      short re = pfd[i].revents;
      if (re == 0)
        continue;
      if (pfd[i].fd == agent->sig_fd && owner[i] == NULL && which[i] == 0) {
        reap_children (agent);
      } else if (owner[i] == NULL && which[i] == 1) {
        accept_conn (agent, pfd[i].fd);
      } else if (owner[i] == NULL && which[i] >= 2) {
        if (pfd[i].fd != agent->conn_fd && pfd[i].fd != agent->out_fd)
          continue; /* replaced during this round */
        if ((re & POLLOUT) && agent->out.len > 0)
          write_conn (agent);
        if (which[i] == 2 && agent->conn_fd == pfd[i].fd && (re & (POLLIN | POLLHUP | POLLERR)))
          read_conn (agent);
      } else {
        /* Stream fds: make sure the stream still exists (an earlier
         * event in this round, like HELLO, may have freed it). */
        Stream *s;
        for (s = agent->streams; s != NULL && s != owner[i]; s = s->next)
          ;
        if (s == NULL)
          continue;
        if (which[i] == 0)
          exec_write_stdin (agent, s);
        else
          exec_read_output (agent, s, which[i]);
      }
    }

    /* A backlog that just cleared leaves received frames unprocessed, and
     * the host may have nothing more to send (its end of input is among
     * them): take them up now rather than when the next byte arrives. */
    if (agent->in.len > 0 && conn_ready (agent))
      process_input (agent);

    for (Stream *s = agent->streams, *next; s != NULL; s = next) {
      next = s->next;
      if (s->kind == STREAM_GET && agent->out.len < AGENT_OUT_HIGH_WATER && conn_ready (agent))
        files_get_pump (agent, s);
    }
    if (conn_ready (agent) && agent->out.len > 0)
      write_conn (agent);
  }
  return 0;
}
