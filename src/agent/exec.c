/* EXEC: runs a command with pipes or a pty and relays its streams as DATA
 * frames; RESIZE, SIGNAL; EXIT once it has been reaped and drained. */

#include "exec.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

extern char **environ;

#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

typedef struct {
  char **argv;
  size_t argc;
  char **env;
  size_t envc;
  char *cwd;
  bool tty;
  uint32_t rows, cols;
} ExecRequest;

static void
strv_free (char **v, size_t n)
{
  if (v == NULL)
    return;
  for (size_t i = 0; i < n; i++)
    free (v[i]);
  free (v);
}

static void
request_clear (ExecRequest *r)
{
  strv_free (r->argv, r->argc);
  strv_free (r->env, r->envc);
  free (r->cwd);
}

static bool
strv_add (char ***v, size_t *n, const uint8_t *value, size_t len)
{
  if (*n >= BNGR_MAX_ARGS)
    return false;
  char *s = bngr_value_strdup (value, len);
  if (s == NULL)
    return false;
  char **nv = realloc (*v, (*n + 2) * sizeof (char *));
  if (nv == NULL) {
    free (s);
    return false;
  }
  nv[(*n)++] = s;
  nv[*n] = NULL;
  *v = nv;
  return true;
}

/* Returns NULL on success or what was wrong. */
static const char *
request_parse (ExecRequest *r, const uint8_t *payload, size_t len)
{
  BngrFieldIter it;
  uint16_t tag;
  const uint8_t *v;
  size_t vl;
  uint32_t u;

  memset (r, 0, sizeof *r);
  r->rows = 24;
  r->cols = 80;
  bngr_iter_init (&it, payload, len);
  while (bngr_iter_next (&it, &tag, &v, &vl)) {
    switch (tag) {
    case BNGR_F_ARGV:
      if (!strv_add (&r->argv, &r->argc, v, vl))
        return "argv entry invalid (NUL byte, too long, or too many)";
      break;
    case BNGR_F_ENV:
      if (!strv_add (&r->env, &r->envc, v, vl) || strchr (r->env[r->envc - 1], '=') == NULL)
        return "env entry invalid (must be KEY=VALUE)";
      break;
    case BNGR_F_CWD:
      free (r->cwd);
      r->cwd = bngr_value_strdup (v, vl);
      if (r->cwd == NULL)
        return "cwd invalid";
      break;
    case BNGR_F_TTY:
      if (!bngr_value_u32 (v, vl, &u))
        return "tty field has the wrong size";
      r->tty = u != 0;
      break;
    case BNGR_F_ROWS:
    case BNGR_F_COLS:
      if (!bngr_value_u32 (v, vl, &u) || u == 0 || u > 0xffff)
        return "rows/cols out of range (1..65535)";
      *(tag == BNGR_F_ROWS ? &r->rows : &r->cols) = u;
      break;
    default:
      break;
    }
  }
  if (r->argc == 0)
    return "argv is empty";
  return NULL;
}

/* The agent's environment, PATH and HOME defaults, then the request's
 * entries (a later KEY= replaces an earlier one). */
static char **
build_env (const ExecRequest *r)
{
  size_t n = 0, cap;
  for (char **e = environ; *e != NULL; e++)
    n++;
  cap = n + r->envc + 4;
  char **env = calloc (cap, sizeof (char *));
  size_t m = 0;
  if (env == NULL)
    return NULL;

#define SET(entry)                                                                                 \
  do {                                                                                             \
    const char *e_ = (entry);                                                                      \
    size_t k_ = strcspn (e_, "=");                                                                 \
    size_t i_;                                                                                     \
    for (i_ = 0; i_ < m; i_++)                                                                     \
      if (strncmp (env[i_], e_, k_ + 1) == 0)                                                      \
        break;                                                                                     \
    env[i_] = (char *)e_;                                                                          \
    if (i_ == m)                                                                                   \
      m++;                                                                                         \
  } while (0)

  for (char **e = environ; *e != NULL; e++)
    SET (*e);
  if (getenv ("PATH") == NULL)
    SET ("PATH=" DEFAULT_PATH);
  if (getenv ("HOME") == NULL)
    SET ("HOME=/root");
  if (r->tty && getenv ("TERM") == NULL)
    SET ("TERM=xterm-256color");
  for (size_t i = 0; i < r->envc; i++)
    SET (r->env[i]);
#undef SET
  env[m] = NULL;
  return env;
}

static int
open_pty (int *master, char **slave_name)
{
  int m = posix_openpt (O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (m < 0)
    return -1;
  if (grantpt (m) < 0 || unlockpt (m) < 0) {
    close (m);
    return -1;
  }
  char *name = ptsname (m);
  if (name == NULL || (*slave_name = strdup (name)) == NULL) {
    close (m);
    return -1;
  }
  *master = m;
  return 0;
}

static void
set_nonblock (int fd)
{
  fcntl (fd, F_SETFL, fcntl (fd, F_GETFL) | O_NONBLOCK);
}

/* In the child: report a failure through the CLOEXEC pipe and exit. */
static void __attribute__ ((noreturn)) child_fail (int errfd, int stage)
{
  int msg[2] = { stage, errno };
  ssize_t unused = write (errfd, msg, sizeof msg);
  (void)unused;
  _exit (127);
}

void
exec_start (Agent *agent, uint32_t id, const uint8_t *payload, size_t len)
{
  ExecRequest r;
  const char *bad = request_parse (&r, payload, len);
  int in_p[2] = { -1, -1 }, out_p[2] = { -1, -1 }, err_p[2] = { -1, -1 }, status_p[2] = { -1, -1 };
  int master = -1;
  char *slave = NULL;
  char **env = NULL;
  Stream *s = NULL;

  if (bad != NULL) {
    agent_send_error (agent, id, BNGR_ERR_INVALID, "exec: %s", bad);
    goto out;
  }
  s = agent_stream_new (agent, id, STREAM_EXEC, exec_abort);
  if (s == NULL)
    goto out;
  env = build_env (&r);
  if (env == NULL || pipe2 (status_p, O_CLOEXEC) < 0)
    goto fail;
  if (r.tty) {
    if (open_pty (&master, &slave) < 0)
      goto fail;
  } else if (pipe2 (in_p, O_CLOEXEC) < 0 || pipe2 (out_p, O_CLOEXEC) < 0
             || pipe2 (err_p, O_CLOEXEC) < 0) {
    goto fail;
  }

  pid_t pid = fork ();
  if (pid < 0)
    goto fail;
  if (pid == 0) {
    sigset_t none;
    sigemptyset (&none);
    sigprocmask (SIG_SETMASK, &none, NULL);
    /* Ignored signals survive exec: give the command default handling
     * whatever the agent inherited (a ^C must stop `sleep`). */
    for (int sig = 1; sig < NSIG; sig++)
      signal (sig, SIG_DFL);
    setsid ();
    if (r.tty) {
      int sfd = open (slave, O_RDWR);
      if (sfd < 0)
        child_fail (status_p[1], 1);
      ioctl (sfd, TIOCSCTTY, 0);
      struct winsize ws = { .ws_row = r.rows, .ws_col = r.cols };
      ioctl (sfd, TIOCSWINSZ, &ws);
      dup2 (sfd, 0);
      dup2 (sfd, 1);
      dup2 (sfd, 2);
      if (sfd > 2)
        close (sfd);
    } else {
      dup2 (in_p[0], 0);
      dup2 (out_p[1], 1);
      dup2 (err_p[1], 2);
    }
    if (r.cwd != NULL && chdir (r.cwd) < 0)
      child_fail (status_p[1], 2);
    environ = env;
    execvp (r.argv[0], r.argv);
    child_fail (status_p[1], 3);
  }

  /* Parent: the status pipe closes on a successful exec (CLOEXEC) or
   * carries the stage and errno of the failure. */
  close (status_p[1]);
  status_p[1] = -1;
  int msg[2];
  ssize_t got;
  do
    got = read (status_p[0], msg, sizeof msg);
  while (got < 0 && errno == EINTR);
  if (got == sizeof msg) {
    waitpid (pid, NULL, 0);
    const char *what = msg[0] == 1 ? "opening the pty" : msg[0] == 2 ? "changing to" : "running";
    const char *obj = msg[0] == 2 ? r.cwd : msg[0] == 3 ? r.argv[0] : "";
    agent_send_error (agent, id, agent_errno_code (msg[1]), "exec: %s %s: %s", what, obj,
                      strerror (msg[1]));
    agent_stream_free (agent, s);
    s = NULL;
    goto out;
  }

  s->pid = pid;
  s->tty = r.tty;
  if (r.tty) {
    s->in_fd = master;
    s->out_fd = master;
    master = -1;
  } else {
    s->in_fd = in_p[1];
    s->out_fd = out_p[0];
    s->err_fd = err_p[0];
    in_p[1] = out_p[0] = err_p[0] = -1;
    set_nonblock (s->in_fd);
    set_nonblock (s->err_fd);
  }
  set_nonblock (s->out_fd);

  BngrBuf p;
  bngr_buf_init (&p);
  bngr_put_u32 (&p, BNGR_F_PID, (uint32_t)pid);
  agent_send (agent, BNGR_T_EXEC_STARTED, 0, id, &p);
  bngr_buf_clear (&p);
  goto out;

fail:
  agent_send_error (agent, id, agent_errno_code (errno), "exec: %s", strerror (errno));
  if (s != NULL)
    agent_stream_free (agent, s);
out:
  for (int i = 0; i < 2; i++) {
    if (in_p[i] >= 0)
      close (in_p[i]);
    if (out_p[i] >= 0)
      close (out_p[i]);
    if (err_p[i] >= 0)
      close (err_p[i]);
    if (status_p[i] >= 0)
      close (status_p[i]);
  }
  if (master >= 0)
    close (master);
  free (slave);
  free (env);
  request_clear (&r);
}

void
exec_stdin (Agent *agent, Stream *s, uint16_t flags, const uint8_t *data, size_t len)
{
  if (s->stdin_eof)
    return;
  if (!bngr_buf_append (&s->stdin_buf, data, len)) {
    agent_send_error (agent, s->id, BNGR_ERR_FAILED, "out of memory buffering stdin");
    return;
  }
  if (flags & BNGR_FLAG_EOF) {
    s->stdin_eof = true;
    /* A pty has no half-close: the line discipline's EOF character is
     * what a terminal user would type. */
    if (s->tty)
      bngr_buf_append (&s->stdin_buf, "\x04", 1);
  }
  exec_write_stdin (agent, s);
}

void
exec_write_stdin (Agent *agent, Stream *s)
{
  (void)agent;
  while (s->in_fd >= 0 && s->stdin_buf.len > 0) {
    ssize_t n = write (s->in_fd, s->stdin_buf.data, s->stdin_buf.len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && errno == EAGAIN)
      return;
    if (n <= 0) {
      /* The child closed its stdin: what is left has nowhere to go. */
      s->stdin_buf.len = 0;
      s->stdin_eof = true;
      break;
    }
    bngr_buf_consume (&s->stdin_buf, (size_t)n);
  }
  if (s->stdin_eof && s->stdin_buf.len == 0 && !s->tty && s->in_fd >= 0) {
    close (s->in_fd);
    s->in_fd = -1;
  }
}

void
exec_signal (Agent *agent, Stream *s, const uint8_t *payload, size_t len)
{
  uint32_t sig;
  if (!bngr_find_u32 (payload, len, BNGR_F_SIGNAL, &sig) || sig == 0 || sig >= 65) {
    agent_send_error (agent, s->id, BNGR_ERR_INVALID, "signal: missing or invalid signal number");
    return;
  }
  if (s->exited)
    return;
  /* The child leads its own session: signal the whole process group so a
   * pipeline started by a shell stops as one, like a terminal's ^C. */
  if (kill (-s->pid, (int)sig) < 0)
    kill (s->pid, (int)sig);
}

void
exec_resize (Agent *agent, Stream *s, const uint8_t *payload, size_t len)
{
  uint32_t rows, cols;
  if (!s->tty) {
    agent_send_error (agent, s->id, BNGR_ERR_INVALID, "resize: exec has no tty");
    return;
  }
  if (!bngr_find_u32 (payload, len, BNGR_F_ROWS, &rows)
      || !bngr_find_u32 (payload, len, BNGR_F_COLS, &cols) || rows == 0 || cols == 0
      || rows > 0xffff || cols > 0xffff) {
    agent_send_error (agent, s->id, BNGR_ERR_INVALID, "resize: rows/cols missing or out of range");
    return;
  }
  struct winsize ws = { .ws_row = rows, .ws_col = cols };
  /* TIOCSWINSZ on the master also sends SIGWINCH to the foreground group. */
  ioctl (s->out_fd, TIOCSWINSZ, &ws);
}

static void
close_output (Stream *s, int which)
{
  int *fd = which == 2 ? &s->err_fd : &s->out_fd;
  if (*fd < 0)
    return;
  if (s->tty) {
    /* in_fd and out_fd are the same master. */
    s->in_fd = -1;
    s->stdin_buf.len = 0;
  }
  close (*fd);
  *fd = -1;
}

/* Reads once. TRUE when it read something (there may be more); FALSE when
 * nothing is there now (EAGAIN) or at EOF/EIO (the output is then closed
 * and its EOF sent). */
static bool
read_once (Agent *agent, Stream *s, int which)
{
  uint8_t buf[BNGR_DATA_CHUNK];
  int fd = which == 2 ? s->err_fd : s->out_fd;
  ssize_t n = read (fd, buf, sizeof buf);
  if (n < 0 && errno == EINTR)
    return true;
  if (n < 0 && errno == EAGAIN)
    return false;
  if (n <= 0) {
    /* EOF, or EIO from a pty master whose slave side is all closed. */
    close_output (s, which);
    agent_send (agent, BNGR_T_DATA, (uint16_t)(which | BNGR_FLAG_EOF), s->id, NULL);
    return false;
  }
  BngrBuf p = { .data = buf, .len = (size_t)n, .alloc = sizeof buf };
  agent_send (agent, BNGR_T_DATA, (uint16_t)which, s->id, &p);
  return true;
}

/* At most this many reads when a tty command exits: a process it left
 * behind that keeps writing must not hold the agent here. */
#define EXIT_DRAIN_READS 64

void
exec_read_output (Agent *agent, Stream *s, int which)
{
  read_once (agent, s, which);
  exec_maybe_finish (agent, s);
}

void
exec_child_exited (Agent *agent, Stream *s, int status)
{
  s->exited = true;
  s->status = status;
  if (s->tty && s->out_fd >= 0) {
    /* Processes the command left behind may hold the pty open for ever;
     * the session ends with the command, so take what is there now. */
    /* Until the master has nothing more: a partial read is not the end
     * (the command's last write may arrive after its echo, in a read of
     * its own; a drain that stopped at the first partial read lost it —
     * seen as a missing `stty size` line in vm-boot-exec-stats-ports-logs).
     * The kernel flushes what the slave wrote before it answers EAGAIN. */
    for (int i = 0; i < EXIT_DRAIN_READS && s->out_fd >= 0 && read_once (agent, s, 1); i++)
      ;
    if (s->out_fd >= 0) {
      close_output (s, 1);
      agent_send (agent, BNGR_T_DATA, BNGR_CHAN_STDOUT | BNGR_FLAG_EOF, s->id, NULL);
    }
  }
  exec_maybe_finish (agent, s);
}

void
exec_maybe_finish (Agent *agent, Stream *s)
{
  if (!s->exited || s->out_fd >= 0 || s->err_fd >= 0)
    return;
  BngrBuf p;
  bngr_buf_init (&p);
  if (WIFSIGNALED (s->status)) {
    bngr_put_u32 (&p, BNGR_F_EXIT_CODE, 0);
    bngr_put_u32 (&p, BNGR_F_EXIT_SIGNAL, (uint32_t)WTERMSIG (s->status));
  } else {
    bngr_put_u32 (&p, BNGR_F_EXIT_CODE, (uint32_t)WEXITSTATUS (s->status));
    bngr_put_u32 (&p, BNGR_F_EXIT_SIGNAL, 0);
  }
  agent_send (agent, BNGR_T_EXIT, 0, s->id, &p);
  bngr_buf_clear (&p);
  s->pid = 0;
  agent_stream_free (agent, s);
}

void
exec_abort (Stream *s)
{
  if (s->pid > 0 && !s->exited) {
    /* The zombie is reaped by the SIGCHLD handler later. */
    if (kill (-s->pid, SIGKILL) < 0)
      kill (s->pid, SIGKILL);
  }
  if (s->in_fd >= 0 && s->in_fd != s->out_fd)
    close (s->in_fd);
  if (s->out_fd >= 0)
    close (s->out_fd);
  if (s->err_fd >= 0)
    close (s->err_fd);
  s->in_fd = s->out_fd = s->err_fd = -1;
}
