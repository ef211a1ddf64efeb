/* FILE_PUT and FILE_GET: whole files streamed as DATA frames. */

#include "files.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char *
parse_path (Agent *agent, uint32_t id, const uint8_t *payload, size_t len, const char *what)
{
  char *path = bngr_find_str (payload, len, BNGR_F_PATH);
  if (path == NULL || path[0] != '/') {
    agent_send_error (agent, id, BNGR_ERR_INVALID, "%s: PATH missing or not absolute", what);
    free (path);
    return NULL;
  }
  return path;
}

void
files_put_start (Agent *agent, uint32_t id, const uint8_t *payload, size_t len)
{
  uint32_t mode = 0644;
  char *path = parse_path (agent, id, payload, len, "file put");
  if (path == NULL)
    return;
  bngr_find_u32 (payload, len, BNGR_F_MODE, &mode);
  mode &= 07777;

  Stream *s = agent_stream_new (agent, id, STREAM_PUT, files_abort);
  if (s == NULL) {
    free (path);
    return;
  }
  s->path = path;
  s->mode = mode;
  /* Write next to the target and rename at EOF, so nobody ever reads a
   * half-written file under the real name. */
  if (asprintf (&s->tmp_path, "%s.banger-tmp-%u", path, id) < 0) {
    s->tmp_path = NULL;
    agent_send_error (agent, id, BNGR_ERR_FAILED, "file put: out of memory");
    agent_stream_free (agent, s);
    return;
  }
  s->file_fd = open (s->tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (s->file_fd < 0) {
    agent_send_error (agent, id, agent_errno_code (errno), "file put: creating %s: %s", s->tmp_path,
                      strerror (errno));
    free (s->tmp_path);
    s->tmp_path = NULL;
    agent_stream_free (agent, s);
  }
}

static bool
write_all (int fd, const uint8_t *data, size_t len)
{
  while (len > 0) {
    ssize_t n = write (fd, data, len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return false;
    data += n;
    len -= (size_t)n;
  }
  return true;
}

void
files_put_data (Agent *agent, Stream *s, uint16_t flags, const uint8_t *data, size_t len)
{
  if (!write_all (s->file_fd, data, len)) {
    agent_send_error (agent, s->id, agent_errno_code (errno), "file put: writing %s: %s", s->path,
                      strerror (errno));
    agent_stream_free (agent, s);
    return;
  }
  if (!(flags & BNGR_FLAG_EOF))
    return;
  /* fchmod, not the open mode: the umask must not change what was asked. */
  if (fchmod (s->file_fd, s->mode) < 0 || fsync (s->file_fd) < 0 || close (s->file_fd) < 0) {
    s->file_fd = -1;
    agent_send_error (agent, s->id, agent_errno_code (errno), "file put: finishing %s: %s", s->path,
                      strerror (errno));
    agent_stream_free (agent, s);
    return;
  }
  s->file_fd = -1;
  if (rename (s->tmp_path, s->path) < 0) {
    agent_send_error (agent, s->id, agent_errno_code (errno), "file put: renaming to %s: %s",
                      s->path, strerror (errno));
    agent_stream_free (agent, s);
    return;
  }
  free (s->tmp_path);
  s->tmp_path = NULL;
  agent_send (agent, BNGR_T_OK, 0, s->id, NULL);
  agent_stream_free (agent, s);
}

void
files_get_start (Agent *agent, uint32_t id, const uint8_t *payload, size_t len)
{
  struct stat st;
  char *path = parse_path (agent, id, payload, len, "file get");
  if (path == NULL)
    return;
  int fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd < 0 || fstat (fd, &st) < 0 || !S_ISREG (st.st_mode)) {
    int err = fd < 0 ? errno : EINVAL;
    agent_send_error (agent, id, agent_errno_code (err), "file get: %s: %s", path,
                      fd >= 0 ? "not a regular file" : strerror (err));
    if (fd >= 0)
      close (fd);
    free (path);
    return;
  }
  Stream *s = agent_stream_new (agent, id, STREAM_GET, files_abort);
  if (s == NULL) {
    close (fd);
    free (path);
    return;
  }
  s->path = path;
  s->file_fd = fd;
  BngrBuf p;
  bngr_buf_init (&p);
  bngr_put_u32 (&p, BNGR_F_MODE, st.st_mode & 07777);
  bngr_put_u64 (&p, BNGR_F_SIZE, (uint64_t)st.st_size);
  agent_send (agent, BNGR_T_OK, 0, id, &p);
  bngr_buf_clear (&p);
}

void
files_get_pump (Agent *agent, Stream *s)
{
  uint8_t buf[BNGR_DATA_CHUNK];
  ssize_t n;
  do
    n = read (s->file_fd, buf, sizeof buf);
  while (n < 0 && errno == EINTR);
  if (n < 0) {
    agent_send_error (agent, s->id, agent_errno_code (errno), "file get: reading %s: %s", s->path,
                      strerror (errno));
    agent_stream_free (agent, s);
    return;
  }
  if (n == 0) {
    agent_send (agent, BNGR_T_DATA, BNGR_CHAN_STDOUT | BNGR_FLAG_EOF, s->id, NULL);
    agent_stream_free (agent, s);
    return;
  }
  BngrBuf p = { .data = buf, .len = (size_t)n, .alloc = sizeof buf };
  agent_send (agent, BNGR_T_DATA, BNGR_CHAN_STDOUT, s->id, &p);
}

void
files_abort (Stream *s)
{
  if (s->file_fd >= 0)
    close (s->file_fd);
  s->file_fd = -1;
  if (s->tmp_path != NULL)
    unlink (s->tmp_path);
}
