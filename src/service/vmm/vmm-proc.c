/* Process helpers shared by the VMM drivers: verifying a pid really is the
 * VM's VMM, waiting for it to exit, and its CPU and memory use. */

#include "vmm.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "banger-error.h"

void
banger_vmm_config_clear (BangerVmmConfig *c)
{
  g_clear_pointer (&c->vm_id, g_free);
  g_clear_pointer (&c->name, g_free);
  g_clear_pointer (&c->vm_dir, g_free);
  g_clear_pointer (&c->kernel, g_free);
  g_clear_pointer (&c->initrd, g_free);
  g_clear_pointer (&c->rootfs, g_free);
  g_clear_pointer (&c->tap, g_free);
  g_clear_pointer (&c->mac, g_free);
  g_clear_pointer (&c->kernel_args, g_free);
  g_clear_pointer (&c->incoming_state, g_free);
}

void
banger_vmm_instance_clear (BangerVmmInstance *i)
{
  g_clear_pointer (&i->control_socket, g_free);
  g_clear_pointer (&i->agent_socket, g_free);
  g_clear_pointer (&i->console_log, g_free);
  g_clear_pointer (&i->pidfile, g_free);
  g_clear_pointer (&i->disk_path, g_free);
  g_clear_pointer (&i->disk_mode, g_free);
  g_clear_pointer (&i->accel, g_free);
  i->pid = 0;
}

static gboolean
cmdline_contains (guint pid, const char *needle)
{
  g_autofree char *path = g_strdup_printf ("/proc/%u/cmdline", pid);
  g_autofree char *contents = NULL;
  gsize len = 0;

  if (!g_file_get_contents (path, &contents, &len, NULL))
    return FALSE;
  /* Arguments are NUL-separated; look in each one. */
  for (gsize off = 0; off < len; off += strlen (contents + off) + 1) {
    if (strstr (contents + off, needle) != NULL)
      return TRUE;
  }
  return FALSE;
}

guint
banger_vmm_pid_from_pidfile (const char *pidfile, const char *comm, const char *needle)
{
  g_autofree char *text = NULL;
  g_autofree char *comm_path = NULL;
  g_autofree char *comm_text = NULL;
  guint64 pid = 0;
  char *end = NULL;

  if (!g_file_get_contents (pidfile, &text, NULL, NULL))
    return 0;
  g_strstrip (text);
  if (*text == '\0')
    return 0;
  pid = g_ascii_strtoull (text, &end, 10);
  if (end == NULL || *end != '\0' || pid < 2 || pid > G_MAXINT)
    return 0;

  comm_path = g_strdup_printf ("/proc/%u/comm", (guint)pid);
  if (!g_file_get_contents (comm_path, &comm_text, NULL, NULL))
    return 0; /* stale: no such process */
  g_strstrip (comm_text);
  if (!g_str_equal (comm_text, comm))
    return 0;
  if (needle != NULL && !cmdline_contains ((guint)pid, needle))
    return 0;
  return (guint)pid;
}

guint
banger_vmm_find_by_cmdline (const char *comm, const char *needle)
{
  g_autoptr (GDir) proc = g_dir_open ("/proc", 0, NULL);
  const char *name;

  while (proc != NULL && (name = g_dir_read_name (proc)) != NULL) {
    g_autofree char *dir = NULL;
    g_autofree char *comm_path = NULL;
    g_autofree char *comm_text = NULL;
    guint64 pid;
    char *end = NULL;
    struct stat st;

    pid = g_ascii_strtoull (name, &end, 10);
    if (end == NULL || *end != '\0' || pid < 2 || pid > G_MAXINT)
      continue;
    dir = g_strdup_printf ("/proc/%s", name);
    /* Only this user's: another user's QEMU is none of ours. */
    if (stat (dir, &st) < 0 || st.st_uid != getuid ())
      continue;
    comm_path = g_strdup_printf ("%s/comm", dir);
    if (!g_file_get_contents (comm_path, &comm_text, NULL, NULL))
      continue;
    g_strstrip (comm_text);
    if (g_str_equal (comm_text, comm) && cmdline_contains ((guint)pid, needle))
      return (guint)pid;
  }
  return 0;
}

gboolean
banger_vmm_signal_and_wait (guint pid, int signal, guint timeout_ms)
{
  int pidfd = (int)syscall (SYS_pidfd_open, (pid_t)pid, 0);
  struct pollfd pfd;
  int ready;

  if (pidfd < 0)
    return errno == ESRCH;
  if (syscall (SYS_pidfd_send_signal, pidfd, signal, NULL, 0) < 0 && errno != ESRCH) {
    close (pidfd);
    return FALSE;
  }
  /* A pidfd becomes readable when the process exits, whoever its parent is
   * (VMMs are daemonized, so not our children). */
  pfd.fd = pidfd;
  pfd.events = POLLIN;
  do
    ready = poll (&pfd, 1, (int)timeout_ms);
  while (ready < 0 && errno == EINTR);
  close (pidfd);
  return ready > 0;
}

gboolean
banger_vmm_host_stats (guint pid, GVariantDict *dict, GError **error)
{
  g_autofree char *stat_path = g_strdup_printf ("/proc/%u/stat", pid);
  g_autofree char *status_path = g_strdup_printf ("/proc/%u/status", pid);
  g_autofree char *stat = NULL;
  g_autofree char *status = NULL;
  g_auto (GStrv) fields = NULL;
  const char *after_comm;
  guint64 utime, stime, rss_kib = 0;
  long ticks = sysconf (_SC_CLK_TCK);

  if (!g_file_get_contents (stat_path, &stat, NULL, NULL)
      || !g_file_get_contents (status_path, &status, NULL, NULL)) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_BAD_STATE, "VMM process %u is gone", pid);
    return FALSE;
  }
  /* comm may hold spaces and parentheses: fields start after the last ')'. */
  after_comm = strrchr (stat, ')');
  if (after_comm == NULL) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "%s: unexpected format", stat_path);
    return FALSE;
  }
  fields = g_strsplit (after_comm + 2, " ", -1);
  if (g_strv_length (fields) < 15) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "%s: unexpected format", stat_path);
    return FALSE;
  }
  /* utime and stime are fields 14 and 15 of stat(5); index 11, 12 here. */
  utime = g_ascii_strtoull (fields[11], NULL, 10);
  stime = g_ascii_strtoull (fields[12], NULL, 10);
  for (char *line = status; line != NULL && *line;) {
    char *next = strchr (line, '\n');
    if (g_str_has_prefix (line, "VmRSS:"))
      rss_kib = g_ascii_strtoull (line + 6, NULL, 10);
    line = next ? next + 1 : NULL;
  }
  g_variant_dict_insert (dict, "vmm_cpu_seconds", "d", (double)(utime + stime) / (double)ticks);
  g_variant_dict_insert (dict, "vmm_rss_bytes", "t", rss_kib * 1024);
  return TRUE;
}
