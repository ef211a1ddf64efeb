/* STATS and BOOT_ID: a few numbers straight from /proc and statvfs. */

#include "stats.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

static bool
read_file (const char *path, char *buf, size_t size)
{
  int fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return false;
  ssize_t n = read (fd, buf, size - 1);
  int err = errno;
  close (fd);
  if (n < 0) {
    errno = err;
    return false;
  }
  buf[n] = 0;
  return true;
}

bool
read_boot_id (char *buf, size_t size)
{
  if (!read_file ("/proc/sys/kernel/random/boot_id", buf, size))
    return false;
  buf[strcspn (buf, "\n")] = 0;
  return true;
}

static bool
meminfo_value (const char *text, const char *key, uint64_t *bytes)
{
  const char *p = strstr (text, key);
  unsigned long long kib;
  if (p == NULL || sscanf (p + strlen (key), " %llu", &kib) != 1)
    return false;
  *bytes = (uint64_t)kib * 1024;
  return true;
}

bool
stats_collect (BngrBuf *payload)
{
  char buf[8192];
  uint64_t total, avail;
  double l1, l5, l15, up;
  struct statvfs vfs;

  if (!read_file ("/proc/meminfo", buf, sizeof buf))
    return false;
  if (!meminfo_value (buf, "\nMemAvailable:", &avail)
      || !meminfo_value (buf, "MemTotal:", &total)) {
    errno = EPROTO;
    return false;
  }
  if (!read_file ("/proc/loadavg", buf, sizeof buf)
      || sscanf (buf, "%lf %lf %lf", &l1, &l5, &l15) != 3) {
    errno = errno ? errno : EPROTO;
    return false;
  }
  if (!read_file ("/proc/uptime", buf, sizeof buf) || sscanf (buf, "%lf", &up) != 1)
    return false;
  if (statvfs ("/", &vfs) < 0)
    return false;
  bngr_put_u64 (payload, BNGR_F_MEM_TOTAL, total);
  bngr_put_u64 (payload, BNGR_F_MEM_AVAILABLE, avail);
  bngr_put_double (payload, BNGR_F_LOAD1, l1);
  bngr_put_double (payload, BNGR_F_LOAD5, l5);
  bngr_put_double (payload, BNGR_F_LOAD15, l15);
  bngr_put_u64 (payload, BNGR_F_DISK_TOTAL, (uint64_t)vfs.f_blocks * vfs.f_frsize);
  bngr_put_u64 (payload, BNGR_F_DISK_FREE, (uint64_t)vfs.f_bavail * vfs.f_frsize);
  bngr_put_double (payload, BNGR_F_UPTIME, up);
  return true;
}
