/* What every part of the guest agent below the event loop needs: the
 * agent's state (Agent, its Streams), queueing frames and errors for the
 * host, stream bookkeeping, and the log. The request handlers (exec.c,
 * files.c, setup.c, …) include this header and never server.h, so the
 * loop sits above them and calls down only (connection.c).
 * Plain C, no GLib: the agent is a static binary written into images that
 * may not have any libraries. */
#pragma once

#include "protocol.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define AGENT_VERSION "0.1.0"

/* Stop reading children's output while this much waits for the host. */
#define AGENT_OUT_HIGH_WATER (1024u * 1024u)
/* Stop reading the connection while one exec has this much stdin pending. */
#define AGENT_STDIN_HIGH_WATER (4u * 1024u * 1024u)
#define AGENT_MAX_STREAMS      64

typedef enum {
  STREAM_EXEC,
  STREAM_PUT,
  STREAM_GET,
} StreamKind;

typedef struct Stream Stream;

/* Releases what the handler that opened @s holds (a child, fds); set at
 * agent_stream_new so freeing a stream needs no knowledge of its kind. */
typedef void (*StreamAbortFunc) (Stream *s);

struct Stream {
  Stream *next;
  uint32_t id;
  StreamKind kind;
  StreamAbortFunc abort;

  /* exec */
  pid_t pid;
  bool tty;
  int in_fd;  /* child's stdin: pipe write end, or the pty master */
  int out_fd; /* child's stdout pipe, or the pty master */
  int err_fd; /* child's stderr pipe; -1 with a tty */
  BngrBuf stdin_buf;
  bool stdin_eof;
  bool exited;
  int status;

  /* file put/get */
  int file_fd;
  char *path;
  char *tmp_path;
  uint32_t mode;
};

typedef struct {
  /* connection */
  int conn_fd;       /* read side; -1 when no host */
  int out_fd;        /* write side (== conn_fd except with --stdio) */
  bool conn_is_port; /* virtio-serial: EOF only means "no host right now" */
  bool port_idle;    /* port saw EOF; retry reads on a timer */
  bool exit_on_eof;  /* --stdio */
  int listen_fds[2];
  int n_listen;
  bool seek_transport; /* PID 1 without a port yet: keep looking, never give up */
  BngrBuf in;
  BngrBuf out;
  long long in_stall_since_ms; /* when the incomplete input frame last grew */

  Stream *streams;
  int sig_fd;
  bool pid1;
  bool test_mode; /* --listen-unix / --stdio: power-off exits */
  bool handoff;   /* image init is PID 1, we are its sibling */
  bool quit;
  bool poweroff_pending;
  const char *root; /* prefix for the files SETUP writes */
  pid_t sshd_pid;
  char boot_id[64];
} Agent;

/* Queues a frame for the host; the event loop writes it out. */
void agent_send (Agent *agent, uint8_t type, uint16_t flags, uint32_t stream,
                 const BngrBuf *payload);
void agent_send_error (Agent *agent, uint32_t stream, uint32_t code, const char *fmt, ...)
    __attribute__ ((format (printf, 4, 5)));
uint32_t agent_errno_code (int err);

Stream *agent_stream_find (Agent *agent, uint32_t id);
/* A new stream @id of @kind, or NULL after an ERROR to the host (id 0, in
 * use, too many); @abort_func runs when the stream is freed. */
Stream *agent_stream_new (Agent *agent, uint32_t id, StreamKind kind, StreamAbortFunc abort_func);
void agent_stream_free (Agent *agent, Stream *s);

long long agent_now_ms (void);
void agent_log (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));
