/* SETUP: the user's ssh key and the per-VM host key arrive over the agent
 * channel (never baked into the image), then sshd is started if the image
 * has one and nobody else (an image init) is in charge of services. */

#include "setup.h"

#include "identity.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SSHD_PATH "/usr/sbin/sshd"

static bool
mkdir_p (char *path, mode_t mode)
{
  for (char *p = path + 1; *p != 0; p++) {
    if (*p != '/')
      continue;
    *p = 0;
    int r = mkdir (path, 0755);
    *p = '/';
    if (r < 0 && errno != EEXIST)
      return false;
  }
  return mkdir (path, mode) == 0 || errno == EEXIST;
}

/* Writes @text to @path's temporary name @tmp (@root/@rel + ".tmp") with
 * @mode, its directory made with @dir_mode. The caller renames. */
static bool
write_tmp_under_root (const char *root, const char *rel, const char *text, mode_t mode,
                      mode_t dir_mode, char *path, char *tmp, char *err, size_t errlen)
{
  const char *sep = strcmp (root, "/") == 0 ? "" : root;
  snprintf (path, PATH_MAX, "%s%s", sep, rel);
  snprintf (tmp, PATH_MAX + 16, "%.4000s.tmp", path);
  char *slash = strrchr (path, '/');
  *slash = 0;
  if (!mkdir_p (path, dir_mode)) {
    snprintf (err, errlen, "creating %.300s: %s", path, strerror (errno));
    return false;
  }
  chmod (path, dir_mode);
  *slash = '/';
  int fd = open (tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
  size_t len = strlen (text);
  if (fd < 0 || write (fd, text, len) != (ssize_t)len || fchmod (fd, mode) < 0) {
    snprintf (err, errlen, "writing %.300s: %s", tmp, strerror (errno));
    if (fd >= 0)
      close (fd);
    unlink (tmp);
    return false;
  }
  close (fd);
  return true;
}

static void
start_sshd (Agent *agent)
{
  if (agent->sshd_pid > 0 || access (SSHD_PATH, X_OK) < 0)
    return;
  /* sshd refuses to start without its privilege separation directory. */
  mkdir ("/run/sshd", 0755);
  pid_t pid = fork ();
  if (pid < 0) {
    agent_log ("starting sshd: %s", strerror (errno));
    return;
  }
  if (pid == 0) {
    sigset_t none;
    sigemptyset (&none);
    sigprocmask (SIG_SETMASK, &none, NULL);
    signal (SIGPIPE, SIG_DFL);
    setsid ();
    char *argv[] = { (char *)SSHD_PATH, (char *)"-D", (char *)"-e", NULL };
    execv (SSHD_PATH, argv);
    _exit (127);
  }
  agent->sshd_pid = pid;
  agent_log ("started sshd (pid %d)", (int)pid);
}

/* A restored guest runs on a VMM that has run none of its code yet: under
 * QEMU's TCG (no KVM) every kernel path is translated on first use, and the
 * first process after a restore paid ~100 ms for fork, exec and exit alone
 * (bench/boot: `vm run -- true` from a snapshot). One throwaway process,
 * started as the clone's SETUP arrives, takes those paths on another vCPU
 * while this one applies the identity and the host finishes the start;
 * the user's first command then finds them ready. Under KVM it costs a
 * millisecond. Reaped like any child (server.c). */
static void
warm_process_paths (void)
{
  pid_t pid = fork ();

  if (pid == 0) {
    char *argv[] = { (char *)"true", NULL };
    execv ("/bin/true", argv);
    _exit (0);
  }
  if (pid < 0)
    agent_log ("warming up after a restore: fork: %s", strerror (errno));
}

void
setup_handle (Agent *agent, uint32_t id, const uint8_t *payload, size_t len)
{
  static const struct {
    uint16_t tag;
    const char *rel;
    mode_t mode, dir_mode;
  } files[] = {
    { BNGR_F_AUTHORIZED_KEYS, "/root/.ssh/authorized_keys", 0600, 0700 },
    { BNGR_F_HOST_KEY, "/etc/ssh/ssh_host_ed25519_key", 0600, 0755 },
    { BNGR_F_HOST_KEY_PUB, "/etc/ssh/ssh_host_ed25519_key.pub", 0644, 0755 },
  };
  char err[512];
  bool identity = identity_requested (payload, len);
  if (identity && !agent->test_mode)
    warm_process_paths ();
  /* A restored clone's own identity first, so that sshd (started below)
   * already runs under its hostname, and the keys land on its own disk. */
  if (identity && !identity_apply (agent, payload, len, err, sizeof err)) {
    agent_send_error (agent, id, BNGR_ERR_FAILED, "setup: %s", err);
    return;
  }
  enum { N_FILES = sizeof files / sizeof files[0] };
  static char paths[N_FILES][PATH_MAX], tmps[N_FILES][PATH_MAX + 16];
  bool written[N_FILES] = { false };
  /* Not flushed to the disk: every start (a boot or a restore) sends the
   * keys again, so a guest that crashes before its page cache is written
   * back loses nothing the next start does not write anew, and a resume
   * continues the guest's memory, page cache included. The flush was a
   * disk flush of the guest and a flush of the host's file (on a clone's
   * fresh overlay a qcow2 allocation too) on every start. */
  for (size_t i = 0; i < N_FILES; i++) {
    char *text = bngr_find_str (payload, len, files[i].tag);
    if (text == NULL)
      continue;
    bool ok = write_tmp_under_root (agent->root, files[i].rel, text, files[i].mode,
                                    files[i].dir_mode, paths[i], tmps[i], err, sizeof err);
    int saved = errno;
    free (text);
    if (!ok) {
      for (size_t j = 0; j < i; j++)
        if (written[j])
          unlink (tmps[j]);
      agent_send_error (agent, id, agent_errno_code (saved), "setup: %s", err);
      return;
    }
    written[i] = true;
  }
  for (size_t i = 0; i < N_FILES; i++) {
    if (!written[i])
      continue;
    if (rename (tmps[i], paths[i]) < 0) {
      int saved = errno;
      snprintf (err, sizeof err, "renaming to %.300s: %s", paths[i], strerror (saved));
      for (size_t j = i; j < N_FILES; j++)
        if (written[j])
          unlink (tmps[j]);
      agent_send_error (agent, id, agent_errno_code (saved), "setup: %s", err);
      return;
    }
  }
  /* Only when the agent is the init: an image init starts its own sshd. */
  if (agent->pid1 && !agent->handoff)
    start_sshd (agent);
  BngrBuf p;
  bngr_buf_init (&p);
  bngr_put_u32 (&p, BNGR_F_SSHD, agent->sshd_pid > 0);
  if (identity)
    bngr_put_u32 (&p, BNGR_F_IDENTITY, 1);
  agent_send (agent, BNGR_T_OK, 0, id, &p);
  bngr_buf_clear (&p);
}

void
setup_child_exited (Agent *agent, pid_t pid)
{
  if (pid == agent->sshd_pid) {
    agent_log ("sshd (pid %d) exited", (int)pid);
    agent->sshd_pid = 0;
  }
}
