/* The connection to the host as the request handlers see it: frames and
 * errors queued for the host, the streams of requests in flight, and the
 * log. Below the handlers and the event loop (server.c), which is the only
 * one to read and write the connection's fds. */

#include "connection.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

void
agent_log (const char *fmt, ...)
{
  va_list ap;
  char buf[512];
  va_start (ap, fmt);
  vsnprintf (buf, sizeof buf, fmt, ap);
  va_end (ap);
  /* One write so lines from PID 1 and its children do not interleave. */
  dprintf (STDERR_FILENO, "banger-agent: %s\n", buf);
}

long long
agent_now_ms (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
agent_send (Agent *agent, uint8_t type, uint16_t flags, uint32_t stream, const BngrBuf *payload)
{
  if (!bngr_frame_append (&agent->out, type, flags, stream, payload ? payload->data : NULL,
                          payload ? payload->len : 0))
    agent_log ("out of memory queueing a %s frame", bngr_type_name (type));
}

void
agent_send_error (Agent *agent, uint32_t stream, uint32_t code, const char *fmt, ...)
{
  char msg[512];
  va_list ap;
  BngrBuf p;
  va_start (ap, fmt);
  vsnprintf (msg, sizeof msg, fmt, ap);
  va_end (ap);
  bngr_buf_init (&p);
  bngr_put_u32 (&p, BNGR_F_ERR_CODE, code);
  bngr_put_str (&p, BNGR_F_ERR_MESSAGE, msg);
  agent_send (agent, BNGR_T_ERROR, 0, stream, &p);
  bngr_buf_clear (&p);
}

uint32_t
agent_errno_code (int err)
{
  switch (err) {
  case ENOENT:
  case ENOTDIR:
    return BNGR_ERR_NOT_FOUND;
  case EACCES:
  case EPERM:
    return BNGR_ERR_PERMISSION;
  case EINVAL:
    return BNGR_ERR_INVALID;
  default:
    return BNGR_ERR_FAILED;
  }
}

Stream *
agent_stream_find (Agent *agent, uint32_t id)
{
  for (Stream *s = agent->streams; s != NULL; s = s->next)
    if (s->id == id)
      return s;
  return NULL;
}

Stream *
agent_stream_new (Agent *agent, uint32_t id, StreamKind kind, StreamAbortFunc abort_func)
{
  int n = 0;
  for (Stream *s = agent->streams; s != NULL; s = s->next)
    n++;
  if (id == 0) {
    agent_send_error (agent, id, BNGR_ERR_INVALID, "stream id 0 is reserved for the connection");
    return NULL;
  }
  if (agent_stream_find (agent, id) != NULL) {
    agent_send_error (agent, id, BNGR_ERR_BUSY, "stream %u is already in use", id);
    return NULL;
  }
  if (n >= AGENT_MAX_STREAMS) {
    agent_send_error (agent, id, BNGR_ERR_BUSY, "too many open streams (limit %d)",
                      AGENT_MAX_STREAMS);
    return NULL;
  }
  Stream *s = calloc (1, sizeof *s);
  if (s == NULL) {
    agent_send_error (agent, id, BNGR_ERR_FAILED, "out of memory");
    return NULL;
  }
  s->id = id;
  s->kind = kind;
  s->abort = abort_func;
  s->in_fd = s->out_fd = s->err_fd = s->file_fd = -1;
  bngr_buf_init (&s->stdin_buf);
  s->next = agent->streams;
  agent->streams = s;
  return s;
}

void
agent_stream_free (Agent *agent, Stream *s)
{
  for (Stream **pp = &agent->streams; *pp != NULL; pp = &(*pp)->next) {
    if (*pp == s) {
      *pp = s->next;
      break;
    }
  }
  if (s->abort != NULL)
    s->abort (s);
  bngr_buf_clear (&s->stdin_buf);
  free (s->path);
  free (s->tmp_path);
  free (s);
}

