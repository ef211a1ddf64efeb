/* Agent frames on the guest side: the agent's parser, resynchronisation
 * and dispatch (src/agent/server.c, included to reach process_input, over
 * the real connection.c: sending, streams). The
 * handlers that would act on the guest (fork a command, write a file, start
 * sshd, power off) are replaced here by ones that decode the request the
 * same way and keep the stream bookkeeping, so every frame type and every
 * stream state is reached without side effects. */
#include <glib.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/agent/server.c"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static void
decode_all (const uint8_t *payload, size_t len)
{
  BngrFieldIter it;
  uint16_t tag;
  const uint8_t *v;
  size_t vl;
  bngr_iter_init (&it, payload, len);
  while (bngr_iter_next (&it, &tag, &v, &vl)) {
    uint32_t u;
    uint64_t u64;
    double d;
    free (bngr_value_strdup (v, vl));
    (void)bngr_value_u32 (v, vl, &u);
    (void)bngr_value_u64 (v, vl, &u64);
    (void)bngr_value_double (v, vl, &d);
  }
}

void
exec_start (Agent *agent, uint32_t id, const uint8_t *payload, size_t len)
{
  char *argv0 = bngr_find_str (payload, len, BNGR_F_ARGV);
  uint32_t tty = 0;
  decode_all (payload, len);
  bngr_find_u32 (payload, len, BNGR_F_TTY, &tty);
  if (argv0 == NULL) {
    agent_send_error (agent, id, BNGR_ERR_INVALID, "EXEC needs ARGV");
    return;
  }
  free (argv0);
  Stream *s = agent_stream_new (agent, id, STREAM_EXEC, exec_abort);
  if (s != NULL)
    s->tty = tty != 0;
}

void
exec_stdin (Agent *agent, Stream *s, uint16_t flags, const uint8_t *data, size_t len)
{
  if (s->stdin_eof)
    return;
  /* Bounded like the real one: the server stops reading above the mark. */
  if (!bngr_buf_append (&s->stdin_buf, data, len))
    abort ();
  if (s->stdin_buf.len > AGENT_STDIN_HIGH_WATER)
    bngr_buf_consume (&s->stdin_buf, s->stdin_buf.len);
  if (flags & BNGR_FLAG_EOF)
    s->stdin_eof = true;
}

void
exec_signal (Agent *agent, Stream *s, const uint8_t *payload, size_t len)
{
  uint32_t sig = 0;
  if (!bngr_find_u32 (payload, len, BNGR_F_SIGNAL, &sig) || sig == 0 || sig >= 65)
    agent_send_error (agent, s->id, BNGR_ERR_INVALID, "bad signal");
}

void
exec_resize (Agent *agent, Stream *s, const uint8_t *payload, size_t len)
{
  uint32_t rows = 0, cols = 0;
  bngr_find_u32 (payload, len, BNGR_F_ROWS, &rows);
  bngr_find_u32 (payload, len, BNGR_F_COLS, &cols);
}

void
exec_abort (Stream *s)
{
}

void
files_put_start (Agent *agent, uint32_t id, const uint8_t *payload, size_t len)
{
  char *path = bngr_find_str (payload, len, BNGR_F_PATH);
  if (path == NULL) {
    agent_send_error (agent, id, BNGR_ERR_INVALID, "FILE_PUT needs PATH");
    return;
  }
  Stream *s = agent_stream_new (agent, id, STREAM_PUT, files_abort);
  if (s != NULL)
    s->path = path;
  else
    free (path);
}

void
files_put_data (Agent *agent, Stream *s, uint16_t flags, const uint8_t *data, size_t len)
{
  if (flags & BNGR_FLAG_EOF) {
    agent_send (agent, BNGR_T_OK, 0, s->id, NULL);
    agent_stream_free (agent, s);
  }
}

void
files_get_start (Agent *agent, uint32_t id, const uint8_t *payload, size_t len)
{
  char *path = bngr_find_str (payload, len, BNGR_F_PATH);
  if (path == NULL)
    agent_send_error (agent, id, BNGR_ERR_INVALID, "FILE_GET needs PATH");
  free (path);
}

void
files_abort (Stream *s)
{
}

bool
stats_collect (BngrBuf *payload)
{
  return bngr_put_u64 (payload, BNGR_F_MEM_TOTAL, 1);
}

bool
ports_collect (BngrBuf *payload)
{
  return true;
}

void
setup_handle (Agent *agent, uint32_t id, const uint8_t *payload, size_t len)
{
  decode_all (payload, len);
  agent_send (agent, BNGR_T_OK, 0, id, NULL);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  static Agent agent;
  static bool init;
  if (!init) {
    memset (&agent, 0, sizeof agent);
    agent.conn_fd = agent.out_fd = -1;
    bngr_buf_init (&agent.in);
    bngr_buf_init (&agent.out);
    snprintf (agent.boot_id, sizeof agent.boot_id, "fuzz");
    agent.root = "/nonexistent";
    init = true;
  }
  /* Fed in two pieces, as reads split a stream anywhere. */
  size_t cut = size > 0 ? data[0] % (size + 1) : 0;
  bngr_buf_append (&agent.in, data, cut);
  process_input (&agent);
  bngr_buf_append (&agent.in, data + cut, size - cut);
  process_input (&agent);
  /* A new session for the next input; what this one left is dropped. */
  abort_all_streams (&agent);
  bngr_buf_clear (&agent.in);
  bngr_buf_clear (&agent.out);
  agent.poweroff_pending = false;
  return 0;
}
