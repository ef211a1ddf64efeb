/* Finding a live Firecracker again after bangerd restarted
 * (ARCHITECTURE.md, issue 5 item 4). A direct Firecracker carries the host
 * path of its API socket on its command line; a jailed one only carries
 * "--api-sock /run/firecracker.socket", so for it the jailer's pidfile is
 * read and the process it names is checked before it is believed. */

#include "vmm-firecracker.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define FC_COMM            "firecracker"
#define JAIL_SOCKET_SUFFIX "/run/firecracker.socket"

/* The NUL-separated arguments of @pid, or NULL (gone, or a zombie whose
 * command line is empty). */
static GStrv
read_cmdline (guint pid)
{
  g_autofree char *path = g_strdup_printf ("/proc/%u/cmdline", pid);
  g_autofree char *contents = NULL;
  gsize len = 0;
  GPtrArray *args;

  if (!g_file_get_contents (path, &contents, &len, NULL) || len == 0)
    return NULL;
  args = g_ptr_array_new ();
  for (gsize off = 0; off < len; off += strlen (contents + off) + 1)
    g_ptr_array_add (args, g_strndup (contents + off, len - off));
  g_ptr_array_add (args, NULL);
  return (GStrv)g_ptr_array_free (args, FALSE);
}

/* Whether @pid runs as this bangerd's user. Direct VMMs are bangerd's own
 * children and jailed ones run as the user's uid (the jailer's --uid), so a
 * VMM of this user is never anyone else's process: without this check a
 * process of another user, named firecracker and given a matching command
 * line, would be adopted (and later signalled and fed requests). */
static gboolean
owned_by_me (guint pid)
{
  g_autofree char *path = g_strdup_printf ("/proc/%u", pid);
  struct stat st;

  return stat (path, &st) == 0 && st.st_uid == getuid ();
}

static gboolean
comm_is_firecracker (guint pid)
{
  g_autofree char *path = g_strdup_printf ("/proc/%u/comm", pid);
  g_autofree char *comm = NULL;

  if (!g_file_get_contents (path, &comm, NULL, NULL))
    return FALSE;
  return g_str_equal (g_strstrip (comm), FC_COMM);
}

/* Field 22 of /proc/<pid>/stat: start time in clock ticks since boot. */
static guint64
start_time (guint pid)
{
  g_autofree char *path = g_strdup_printf ("/proc/%u/stat", pid);
  g_autofree char *stat = NULL;
  g_auto (GStrv) fields = NULL;
  const char *after;

  if (!g_file_get_contents (path, &stat, NULL, NULL) || (after = strrchr (stat, ')')) == NULL)
    return 0;
  fields = g_strsplit (after + 2, " ", 22);
  if (g_strv_length (fields) < 20)
    return 0;
  /* after ") " the first field is field 3 (state), so 22 is index 19 */
  return g_ascii_strtoull (fields[19], NULL, 10);
}

static gboolean
args_carry_socket (GStrv args, const char *api_sock)
{
  g_autofree char *eq = g_strconcat ("--api-sock=", api_sock, NULL);

  for (guint i = 0; args[i] != NULL; i++) {
    if (g_str_equal (args[i], api_sock) || g_str_equal (args[i], eq))
      return TRUE;
  }
  return FALSE;
}

static gboolean
args_carry_id (GStrv args, const char *vm_id)
{
  for (guint i = 0; args[i] != NULL; i++) {
    if (g_str_equal (args[i], "--id") && args[i + 1] != NULL && g_str_equal (args[i + 1], vm_id))
      return TRUE;
  }
  return FALSE;
}

static guint
scan_proc (const char *api_sock)
{
  g_autoptr (GDir) dir = g_dir_open ("/proc", 0, NULL);
  const char *name;
  guint best = 0;
  guint64 best_start = 0;

  if (dir == NULL)
    return 0;
  while ((name = g_dir_read_name (dir)) != NULL) {
    guint64 pid;
    g_auto (GStrv) args = NULL;
    guint64 started;

    if (!g_ascii_string_to_unsigned (name, 10, 2, G_MAXINT, &pid, NULL))
      continue;
    if (!owned_by_me ((guint)pid))
      continue;
    args = read_cmdline ((guint)pid);
    if (args == NULL || !args_carry_socket (args, api_sock) || !comm_is_firecracker ((guint)pid))
      continue;
    /* Like pgrep -n: the newest match wins. */
    started = start_time ((guint)pid);
    if (best == 0 || started >= best_start) {
      best = (guint)pid;
      best_start = started;
    }
  }
  return best;
}

/* The pid in @pidfile if it names a live "firecracker" started with
 * "--id @vm_id"; else 0. Whitespace around the number is tolerated,
 * anything else is garbage. */
static guint
pid_from_jail_pidfile (const char *pidfile, const char *vm_id)
{
  g_autofree char *text = NULL;
  g_auto (GStrv) args = NULL;
  guint64 pid = 0;

  if (!g_file_get_contents (pidfile, &text, NULL, NULL))
    return 0;
  g_strstrip (text);
  if (!g_ascii_string_to_unsigned (text, 10, 2, G_MAXINT, &pid, NULL))
    return 0;
  if (!owned_by_me ((guint)pid) || !comm_is_firecracker ((guint)pid))
    return 0; /* stale (no such process), a recycled pid or someone else's */
  args = read_cmdline ((guint)pid);
  if (args == NULL || !args_carry_id (args, vm_id))
    return 0;
  return (guint)pid;
}

guint
banger_vmm_firecracker_find_pid_full (const char *api_sock, const char *vm_id)
{
  g_autofree char *target = NULL;
  g_autofree char *target_abs = NULL;
  g_autofree char *sibling = NULL;
  g_autofree char *dir = NULL;
  guint pid;

  pid = scan_proc (api_sock);
  if (pid != 0)
    return pid;

  /* Only a jail's socket is a symlink; anything else has no pidfile to
   * fall back on. */
  target = g_file_read_link (api_sock, NULL);
  if (target == NULL)
    return 0;
  if (!g_path_is_absolute (target)) {
    g_autofree char *base = g_path_get_dirname (api_sock);
    target_abs = g_build_filename (base, target, NULL);
  } else {
    target_abs = g_strdup (target);
  }
  dir = g_path_get_dirname (target_abs);
  sibling = g_build_filename (dir, "firecracker.pid", NULL);
  pid = pid_from_jail_pidfile (sibling, vm_id);
  if (pid != 0)
    return pid;
  /* The jailer writes <chroot>/firecracker.pid while the socket is at
   * <chroot>/run/firecracker.socket. */
  if (g_str_has_suffix (target_abs, JAIL_SOCKET_SUFFIX)) {
    g_autofree char *chroot
        = g_strndup (target_abs, strlen (target_abs) - strlen (JAIL_SOCKET_SUFFIX));
    g_autofree char *pidfile = g_build_filename (chroot, "firecracker.pid", NULL);
    return pid_from_jail_pidfile (pidfile, vm_id);
  }
  return 0;
}
