/* Internal interfaces of the guest agent (plain C, no GLib: the agent is a
 * static binary written into images that may not have any libraries). */
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
struct Stream {
  Stream *next;
  uint32_t id;
  StreamKind kind;

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

/* server.c */
int agent_serve (Agent *agent);
void agent_send (Agent *agent, uint8_t type, uint16_t flags, uint32_t stream,
                 const BngrBuf *payload);
void agent_send_error (Agent *agent, uint32_t stream, uint32_t code, const char *fmt, ...)
    __attribute__ ((format (printf, 4, 5)));
uint32_t agent_errno_code (int err);
Stream *agent_stream_find (Agent *agent, uint32_t id);
Stream *agent_stream_new (Agent *agent, uint32_t id, StreamKind kind);
void agent_stream_free (Agent *agent, Stream *s);
long long agent_now_ms (void);

/* exec.c */
void exec_start (Agent *agent, uint32_t id, const uint8_t *payload, size_t len);
void exec_stdin (Agent *agent, Stream *s, uint16_t flags, const uint8_t *data, size_t len);
void exec_signal (Agent *agent, Stream *s, const uint8_t *payload, size_t len);
void exec_resize (Agent *agent, Stream *s, const uint8_t *payload, size_t len);
void exec_read_output (Agent *agent, Stream *s, int which);
void exec_write_stdin (Agent *agent, Stream *s);
void exec_child_exited (Agent *agent, Stream *s, int status);
void exec_maybe_finish (Agent *agent, Stream *s);
void exec_abort (Stream *s);

/* files.c */
void files_put_start (Agent *agent, uint32_t id, const uint8_t *payload, size_t len);
void files_put_data (Agent *agent, Stream *s, uint16_t flags, const uint8_t *data, size_t len);
void files_get_start (Agent *agent, uint32_t id, const uint8_t *payload, size_t len);
void files_get_pump (Agent *agent, Stream *s);
void files_abort (Stream *s);

/* stats.c, ports.c: fill @payload; false with errno set on failure */
bool stats_collect (BngrBuf *payload);
bool ports_collect (BngrBuf *payload);
bool read_boot_id (char *buf, size_t size);

/* setup.c */
void setup_handle (Agent *agent, uint32_t id, const uint8_t *payload, size_t len);
void setup_child_exited (Agent *agent, pid_t pid);

/* init.c */
bool init_is_initramfs (void);
int init_initramfs (void);
void init_early (void);
const char *init_cmdline_get (const char *key); /* from /proc/cmdline, static storage */
void init_poweroff (Agent *agent);
void init_handoff (const char *init_path, Agent *agent);

/* netconf.c */
int netconf_apply (const char *ip_cidr, const char *gw, char *err, size_t errlen);
void netconf_files (const char *root, const char *hostname, const char *dns);

/* transport.c */
int transport_open_port (void);
bool transport_attach_guest (Agent *agent);
int transport_listen_vsock (void);
int transport_listen_unix (const char *path);

void agent_log (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));
