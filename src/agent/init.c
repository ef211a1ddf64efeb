/* PID 1 duties: the API filesystems, the kernel command line, the
 * initramfs stage (modules, root device, switch_root), handing PID 1 to an
 * image's own init, and power-off. */

#include "init.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

/* As long as the host waits for the agent: a TCG guest on a busy host can be
 * slow to probe its disk, and a panic here would fail a boot that was fine. */
#define ROOT_WAIT_MS 60000

static char cmdline[4096];
static bool cmdline_read;

static void
load_cmdline (void)
{
  if (cmdline_read)
    return;
  cmdline_read = true;
  int fd = open ("/proc/cmdline", O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return;
  ssize_t n = read (fd, cmdline, sizeof cmdline - 1);
  close (fd);
  cmdline[n > 0 ? n : 0] = 0;
}

/* The kernel passes unknown dotted parameters (banger.ip=…) neither to init's
 * argv nor its environment, so they are read from /proc/cmdline. Quoting is
 * not supported: banger never puts spaces into these values. */
const char *
init_cmdline_get (const char *key)
{
  static char values[8][256];
  static int next;
  size_t klen = strlen (key);
  load_cmdline ();
  for (const char *p = cmdline; *p != 0;) {
    p += strspn (p, " \t\n");
    size_t wlen = strcspn (p, " \t\n");
    if (wlen > klen && strncmp (p, key, klen) == 0 && p[klen] == '=') {
      char *v = values[next++ % 8];
      snprintf (v, sizeof values[0], "%.*s", (int)(wlen - klen - 1), p + klen + 1);
      return v;
    }
    p += wlen;
  }
  return NULL;
}

static void
mount_one (const char *src, const char *target, const char *type, unsigned long flags,
           const char *data)
{
  mkdir (target, 0755);
  if (mount (src, target, type, flags, data) < 0 && errno != EBUSY)
    agent_log ("mounting %s on %s: %s", type, target, strerror (errno));
}

void
init_early (void)
{
  const unsigned long nosuid = MS_NOSUID | MS_NODEV | MS_NOEXEC;
  mount_one ("proc", "/proc", "proc", nosuid, NULL);
  mount_one ("sysfs", "/sys", "sysfs", nosuid, NULL);
  mount_one ("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755");
  mount_one ("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "mode=0620,ptmxmode=0666");
  mount_one ("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
  mount_one ("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755");
  mount_one ("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
  /* The agent's children expect the usual descriptors. */
  int fd = open ("/dev/console", O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (fd >= 0) {
    for (int i = 0; i < 3; i++)
      if (fcntl (i, F_GETFD) < 0)
        dup2 (fd, i);
    if (fd > 2)
      close (fd);
  }
  setenv ("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", 1);
  setenv ("HOME", "/root", 1);
}

bool
init_is_initramfs (void)
{
  return getpid () == 1 && access ("/etc/banger/modules", F_OK) == 0;
}

static void
load_modules (void)
{
  FILE *f = fopen ("/etc/banger/modules", "re");
  char line[512];
  struct utsname uts;
  if (f == NULL)
    return;
  /* The list is relative to lib/modules/<release> (initramfs.h). */
  if (uname (&uts) < 0)
    uts.release[0] = 0;
  while (fgets (line, sizeof line, f) != NULL) {
    char path[600];
    line[strcspn (line, "\r\n")] = 0;
    if (line[0] == 0 || line[0] == '#' || strstr (line, "..") != NULL)
      continue;
    snprintf (path, sizeof path, "/lib/modules/%s/%s", uts.release, line);
    int fd = open (path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      agent_log ("module %s: %s", path, strerror (errno));
      continue;
    }
    /* No libkmod in a static init: the list is already in dependency
     * order (written by bangerd from modprobe --show-depends). */
    if (syscall (SYS_finit_module, fd, "", 0) < 0 && errno != EEXIST)
      agent_log ("loading %s: %s", path, strerror (errno));
    close (fd);
  }
  fclose (f);
}

static int
remove_entry (const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
  (void)st;
  (void)ftw;
  if (strcmp (path, "/") == 0)
    return 0;
  if (flag == FTW_DP)
    rmdir (path); /* mount points stay: EBUSY */
  else
    unlink (path);
  return 0;
}

int
init_initramfs (void)
{
  mount_one ("proc", "/proc", "proc", 0, NULL);
  mount_one ("sysfs", "/sys", "sysfs", 0, NULL);
  mount_one ("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755");
  load_modules ();

  const char *root = init_cmdline_get ("banger.root");
  if (root == NULL)
    root = "/dev/vda";
  /* Device nodes appear asynchronously as drivers probe; a bounded wait
   * turns a missing disk into a clear message instead of a hang. */
  long long deadline = agent_now_ms () + ROOT_WAIT_MS;
  struct stat st;
  while (stat (root, &st) < 0) {
    if (agent_now_ms () > deadline) {
      agent_log ("root device %s did not appear within %d ms", root, ROOT_WAIT_MS);
      return 1;
    }
    poll (NULL, 0, 20);
  }
  mkdir ("/root", 0755);
  if (mount (root, "/root", "ext4", 0, NULL) < 0) {
    agent_log ("mounting %s (ext4) on /root: %s", root, strerror (errno));
    return 1;
  }
  if (access ("/root/.banger/agent", X_OK) < 0) {
    agent_log ("the root filesystem on %s has no /.banger/agent", root);
    return 1;
  }

  /* switch_root: free the initramfs (it is RAM that would otherwise stay
   * pinned), move the API mounts over, make /root the new /. FTW_MOUNT
   * keeps the walk from descending into /root, /dev, /proc or /sys. */
  nftw ("/", remove_entry, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
  const char *moves[] = { "/dev", "/proc", "/sys" };
  for (size_t i = 0; i < 3; i++) {
    char target[64];
    snprintf (target, sizeof target, "/root%s", moves[i]);
    mkdir (target, 0755);
    if (mount (moves[i], target, NULL, MS_MOVE, NULL) < 0)
      umount2 (moves[i], MNT_DETACH);
  }
  if (chdir ("/root") < 0 || mount (".", "/", NULL, MS_MOVE, NULL) < 0 || chroot (".") < 0
      || chdir ("/") < 0) {
    agent_log ("switching root: %s", strerror (errno));
    return 1;
  }
  char *argv[] = { (char *)"/.banger/agent", NULL };
  execv (argv[0], argv);
  agent_log ("executing /.banger/agent on the real root: %s", strerror (errno));
  return 1;
}

void
init_handoff (const char *init_path, Agent *agent)
{
  pid_t pid = fork ();
  if (pid < 0) {
    agent_log ("fork for %s: %s; staying PID 1", init_path, strerror (errno));
    return;
  }
  if (pid == 0) {
    /* The child keeps serving; the image's init adopts it. */
    agent->pid1 = false;
    agent->handoff = true;
    setsid ();
    return;
  }
  char *argv[] = { (char *)init_path, NULL };
  execv (init_path, argv);
  agent_log ("executing %s: %s", init_path, strerror (errno));
  /* Exec failed: this process is still PID 1 and must not exit. Reap
   * children for ever so the agent child keeps working. */
  for (;;) {
    if (waitpid (-1, NULL, 0) < 0 && errno == ECHILD)
      pause ();
  }
}

static void
reap_for (int ms)
{
  long long deadline = agent_now_ms () + ms;
  while (agent_now_ms () < deadline) {
    pid_t pid = waitpid (-1, NULL, WNOHANG);
    if (pid < 0 && errno == ECHILD)
      return;
    if (pid <= 0)
      poll (NULL, 0, 20);
  }
}

void
init_poweroff (Agent *agent)
{
  if (agent->test_mode) {
    agent_log ("power-off requested (test mode): exiting");
    exit (0);
  }
  if (!agent->pid1) {
    /* Next to an image init: ask it, in the dialect it understands. */
    char comm[32] = "";
    int fd = open ("/proc/1/comm", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
      ssize_t n = read (fd, comm, sizeof comm - 1);
      comm[n > 0 ? n : 0] = 0;
      close (fd);
    }
    int sig = strncmp (comm, "systemd", 7) == 0 ? SIGRTMIN + 4 : SIGUSR2;
    agent_log ("power-off requested: signalling init (%s) with %d", comm, sig);
    kill (1, sig);
    return;
  }
  agent_log ("power-off requested");
  kill (-1, SIGTERM);
  reap_for (3000);
  kill (-1, SIGKILL);
  reap_for (500);
  sync ();
  mount (NULL, "/", NULL, MS_REMOUNT | MS_RDONLY, NULL);
  reboot (RB_POWER_OFF);
  agent_log ("reboot(RB_POWER_OFF): %s", strerror (errno));
}
