/* PORTS: listening sockets from /proc/net/{tcp,tcp6,udp,udp6}, with the
 * owning process found by scanning /proc/<pid>/fd for socket:[inode]. */

#include "ports.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
  const char *proto;
  char addr[INET6_ADDRSTRLEN];
  uint32_t port;
  unsigned long inode;
  uint32_t pid;
  char comm[32];
} Port;

typedef struct {
  Port *v;
  size_t n, cap;
} PortList;

#define MAX_PORTS 4096

/* /proc/net prints the address as the in-memory words in hex, so reading
 * each 8-digit word back with strtoul gives the original bytes. */
static bool
parse_addr (const char *hex, bool v6, char *out)
{
  uint32_t words[4];
  int nwords = v6 ? 4 : 1;
  if (strlen (hex) != (size_t)(8 * nwords))
    return false;
  for (int i = 0; i < nwords; i++) {
    char w[9];
    memcpy (w, hex + 8 * i, 8);
    w[8] = 0;
    words[i] = (uint32_t)strtoul (w, NULL, 16);
  }
  return inet_ntop (v6 ? AF_INET6 : AF_INET, words, out, INET6_ADDRSTRLEN) != NULL;
}

static void
scan_table (PortList *list, const char *path, const char *proto, bool v6, bool tcp)
{
  FILE *f = fopen (path, "re");
  char line[512];
  if (f == NULL)
    return; /* no IPv6, or no such protocol: nothing listens there */
  if (fgets (line, sizeof line, f) == NULL) {
    fclose (f);
    return;
  }
  while (fgets (line, sizeof line, f) != NULL && list->n < MAX_PORTS) {
    char local[64], remote[64];
    unsigned state;
    unsigned long inode;
    /* sl local rem st tx:rx tr:when retrnsmt uid timeout inode */
    if (sscanf (line, " %*d: %63[0-9A-Fa-f:] %63[0-9A-Fa-f:] %x %*s %*s %*s %*u %*u %lu", local,
                remote, &state, &inode)
        != 4)
      continue;
    /* TCP_LISTEN is 0x0A; an unconnected UDP socket is TCP_CLOSE (0x07). */
    if (state != (tcp ? 0x0Au : 0x07u))
      continue;
    char *colon = strchr (local, ':');
    if (colon == NULL)
      continue;
    *colon = 0;
    Port p = { .proto = proto, .inode = inode };
    p.port = (uint32_t)strtoul (colon + 1, NULL, 16);
    if (!parse_addr (local, v6, p.addr))
      continue;
    if (list->n == list->cap) {
      size_t cap = list->cap ? list->cap * 2 : 32;
      Port *v = realloc (list->v, cap * sizeof *v);
      if (v == NULL)
        break;
      list->v = v;
      list->cap = cap;
    }
    list->v[list->n++] = p;
  }
  fclose (f);
}

static void
read_comm (const char *pid, char *comm, size_t size)
{
  char path[64];
  snprintf (path, sizeof path, "/proc/%.20s/comm", pid);
  int fd = open (path, O_RDONLY | O_CLOEXEC);
  comm[0] = 0;
  if (fd < 0)
    return;
  ssize_t n = read (fd, comm, size - 1);
  close (fd);
  if (n < 0)
    n = 0;
  comm[n] = 0;
  comm[strcspn (comm, "\n")] = 0;
}

static void
match_owners (PortList *list)
{
  DIR *proc = opendir ("/proc");
  struct dirent *de;
  size_t unmatched = list->n;
  if (proc == NULL)
    return;
  while (unmatched > 0 && (de = readdir (proc)) != NULL) {
    if (!isdigit ((unsigned char)de->d_name[0]))
      continue;
    char path[300];
    snprintf (path, sizeof path, "/proc/%.20s/fd", de->d_name);
    DIR *fds = opendir (path);
    if (fds == NULL)
      continue; /* gone, or not ours to look at */
    struct dirent *fe;
    while ((fe = readdir (fds)) != NULL) {
      char target[64], full[300];
      if (fe->d_name[0] == '.')
        continue;
      snprintf (full, sizeof full, "/proc/%.20s/fd/%.32s", de->d_name, fe->d_name);
      ssize_t n = readlink (full, target, sizeof target - 1);
      if (n <= 8)
        continue;
      target[n] = 0;
      if (strncmp (target, "socket:[", 8) != 0)
        continue;
      unsigned long inode = strtoul (target + 8, NULL, 10);
      for (size_t i = 0; i < list->n; i++) {
        Port *p = &list->v[i];
        if (p->inode == inode && p->pid == 0) {
          p->pid = (uint32_t)strtoul (de->d_name, NULL, 10);
          read_comm (de->d_name, p->comm, sizeof p->comm);
          unmatched--;
        }
      }
    }
    closedir (fds);
  }
  closedir (proc);
}

bool
ports_collect (BngrBuf *payload)
{
  PortList list = { 0 };
  scan_table (&list, "/proc/net/tcp", "tcp", false, true);
  scan_table (&list, "/proc/net/tcp6", "tcp6", true, true);
  scan_table (&list, "/proc/net/udp", "udp", false, false);
  scan_table (&list, "/proc/net/udp6", "udp6", true, false);
  match_owners (&list);
  for (size_t i = 0; i < list.n; i++) {
    Port *p = &list.v[i];
    bngr_put_str (payload, BNGR_F_PORT_PROTO, p->proto);
    bngr_put_str (payload, BNGR_F_PORT_ADDR, p->addr);
    bngr_put_u32 (payload, BNGR_F_PORT_NUM, p->port);
    bngr_put_u32 (payload, BNGR_F_PORT_PID, p->pid);
    bngr_put_str (payload, BNGR_F_PORT_COMM, p->comm);
  }
  free (list.v);
  return true;
}
