/* Network set-up from banger.ip=/banger.gw= (Debian's cloud kernel has no
 * CONFIG_IP_PNP, so kernel ip= does nothing). The classic SIOCSIF* and
 * SIOCADDRT ioctls cover one IPv4 address and a default route in a few
 * lines; libnl is not an option in a static binary without GLib, and raw
 * rtnetlink would be three times the code for the same result. */

#include "netconf.h"

#include "connection.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <net/route.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define IFACE "eth0"

static int
set_up (int sock, const char *ifname)
{
  struct ifreq ifr = { 0 };
  snprintf (ifr.ifr_name, sizeof ifr.ifr_name, "%s", ifname);
  if (ioctl (sock, SIOCGIFFLAGS, &ifr) < 0)
    return -1;
  ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
  return ioctl (sock, SIOCSIFFLAGS, &ifr);
}

static int
set_addr (int sock, unsigned long req, const char *ifname, struct in_addr a)
{
  struct ifreq ifr = { 0 };
  struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr = a };
  snprintf (ifr.ifr_name, sizeof ifr.ifr_name, "%s", ifname);
  memcpy (&ifr.ifr_addr, &sin, sizeof sin);
  return ioctl (sock, req, &ifr);
}

int
netconf_apply (const char *ip_cidr, const char *gw, char *err, size_t errlen)
{
  int sock = socket (AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  int ret = -1;
  if (sock < 0) {
    snprintf (err, errlen, "socket: %s", strerror (errno));
    return -1;
  }
  if (set_up (sock, "lo") < 0) {
    snprintf (err, errlen, "bringing up lo: %s", strerror (errno));
    goto out;
  }
  if (ip_cidr != NULL) {
    char ip[64];
    const char *slash = strchr (ip_cidr, '/');
    long prefix = 24;
    struct in_addr addr, mask, bcast;
    snprintf (ip, sizeof ip, "%.*s", slash ? (int)(slash - ip_cidr) : (int)strlen (ip_cidr),
              ip_cidr);
    if (slash != NULL) {
      char *end;
      prefix = strtol (slash + 1, &end, 10);
      if (*end != 0 || prefix < 1 || prefix > 32)
        prefix = -1;
    }
    if (prefix < 0 || inet_pton (AF_INET, ip, &addr) != 1) {
      snprintf (err, errlen, "banger.ip=%s is not an IPv4 address/prefix", ip_cidr);
      goto out;
    }
    mask.s_addr = htonl (prefix == 32 ? 0xffffffffu : ~(0xffffffffu >> prefix));
    bcast.s_addr = addr.s_addr | ~mask.s_addr;
    if (set_addr (sock, SIOCSIFADDR, IFACE, addr) < 0
        || set_addr (sock, SIOCSIFNETMASK, IFACE, mask) < 0
        || set_addr (sock, SIOCSIFBRDADDR, IFACE, bcast) < 0 || set_up (sock, IFACE) < 0) {
      snprintf (err, errlen, "configuring %s with %s: %s", IFACE, ip_cidr, strerror (errno));
      goto out;
    }
  }
  if (gw != NULL) {
    struct rtentry rt = { 0 };
    struct sockaddr_in dst = { .sin_family = AF_INET }, gwa = { .sin_family = AF_INET };
    if (inet_pton (AF_INET, gw, &gwa.sin_addr) != 1) {
      snprintf (err, errlen, "banger.gw=%s is not an IPv4 address", gw);
      goto out;
    }
    memcpy (&rt.rt_dst, &dst, sizeof dst);
    memcpy (&rt.rt_genmask, &dst, sizeof dst);
    memcpy (&rt.rt_gateway, &gwa, sizeof gwa);
    rt.rt_flags = RTF_UP | RTF_GATEWAY;
    rt.rt_dev = (char *)IFACE;
    if (ioctl (sock, SIOCADDRT, &rt) < 0 && errno != EEXIST) {
      snprintf (err, errlen, "adding default route via %s: %s", gw, strerror (errno));
      goto out;
    }
  }
  ret = 0;
out:
  close (sock);
  return ret;
}

static void
write_text (const char *path, const char *text)
{
  char tmp[4200];
  snprintf (tmp, sizeof tmp, "%s.banger-tmp", path);
  int fd = open (tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  size_t len = strlen (text);
  if (fd < 0 || write (fd, text, len) != (ssize_t)len) {
    agent_log ("writing %s: %s", path, strerror (errno));
    if (fd >= 0)
      close (fd);
    unlink (tmp);
    return;
  }
  close (fd);
  /* rename replaces a dangling symlink (systemd-resolved's stub) too. */
  if (rename (tmp, path) < 0) {
    agent_log ("renaming to %s: %s", path, strerror (errno));
    unlink (tmp);
  }
}

void
netconf_files (const char *root, const char *hostname, const char *dns)
{
  char path[4096], text[512];
  const char *r = strcmp (root, "/") == 0 ? "" : root;
  if (hostname != NULL) {
    snprintf (path, sizeof path, "%s/etc/hostname", r);
    snprintf (text, sizeof text, "%s\n", hostname);
    write_text (path, text);
    snprintf (path, sizeof path, "%s/etc/hosts", r);
    snprintf (text, sizeof text,
              "127.0.0.1\tlocalhost\n127.0.1.1\t%s\n::1\tlocalhost ip6-localhost ip6-loopback\n",
              hostname);
    write_text (path, text);
  }
  if (dns != NULL) {
    snprintf (path, sizeof path, "%s/etc/resolv.conf", r);
    snprintf (text, sizeof text, "nameserver %s\n", dns);
    write_text (path, text);
  }
}
