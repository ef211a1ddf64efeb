/* Identity of a restored guest. Every clone of a snapshot wakes up as its
 * template: same MAC and address on eth0, same hostname, machine-id, clock
 * (frozen at the save) and the same RNG state. The host sends this clone's
 * own values in SETUP and the agent applies them before anything else runs
 * on the clone's behalf (docs/warm-start.md says what still stays shared). */

#include "identity.h"

#include "netconf.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/random.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define IFACE       "eth0"
#define MAX_ENTROPY 512

static const uint16_t identity_tags[] = {
  BNGR_F_MAC,        BNGR_F_IP,      BNGR_F_GW,       BNGR_F_DNS,
  BNGR_F_HOSTNAME,   BNGR_F_MACHINE_ID, BNGR_F_ENTROPY, BNGR_F_CLOCK_NS,
};

bool
identity_requested (const uint8_t *payload, size_t len)
{
  const uint8_t *v;
  size_t vlen;
  for (size_t i = 0; i < sizeof identity_tags / sizeof identity_tags[0]; i++)
    if (bngr_find (payload, len, identity_tags[i], &v, &vlen))
      return true;
  return false;
}

static bool
parse_mac (const char *text, unsigned char mac[6])
{
  unsigned int b[6];
  char tail;
  if (sscanf (text, "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5], &tail)
      != 6)
    return false;
  for (int i = 0; i < 6; i++)
    mac[i] = (unsigned char)b[i];
  /* Unicast only: the multicast bit would make every frame a broadcast. */
  return (mac[0] & 1) == 0;
}

/* virtio-net changes its address while up (and tells QEMU through its
 * control queue, so the device's own MAC follows); a driver that cannot is
 * taken down for the change. */
static bool
set_mac (const unsigned char mac[6], char *err, size_t errlen)
{
  int sock = socket (AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  struct ifreq ifr = { 0 };
  bool ok = false;
  if (sock < 0) {
    snprintf (err, errlen, "socket: %s", strerror (errno));
    return false;
  }
  snprintf (ifr.ifr_name, sizeof ifr.ifr_name, "%s", IFACE);
  ifr.ifr_hwaddr.sa_family = ARPHRD_ETHER;
  memcpy (ifr.ifr_hwaddr.sa_data, mac, 6);
  if (ioctl (sock, SIOCSIFHWADDR, &ifr) == 0) {
    ok = true;
  } else if (errno == EBUSY) {
    struct ifreq fl = { 0 };
    snprintf (fl.ifr_name, sizeof fl.ifr_name, "%s", IFACE);
    if (ioctl (sock, SIOCGIFFLAGS, &fl) == 0) {
      short up = fl.ifr_flags;
      fl.ifr_flags &= ~IFF_UP;
      ok = ioctl (sock, SIOCSIFFLAGS, &fl) == 0 && ioctl (sock, SIOCSIFHWADDR, &ifr) == 0;
      fl.ifr_flags = up;
      if (ioctl (sock, SIOCSIFFLAGS, &fl) < 0)
        ok = false;
    }
  }
  if (!ok)
    snprintf (err, errlen, "setting the MAC of %s: %s", IFACE, strerror (errno));
  close (sock);
  return ok;
}

/* Credited, so that the kernel counts it as real entropy, then a reseed of
 * the CRNG: without it the clone would keep drawing from the template's
 * state until the next scheduled reseed. */
static bool
add_entropy (const uint8_t *bytes, size_t len, char *err, size_t errlen)
{
  struct {
    struct rand_pool_info info;
    uint8_t buf[MAX_ENTROPY];
  } req;
  int fd = open ("/dev/urandom", O_WRONLY | O_CLOEXEC);
  bool ok;
  if (len > MAX_ENTROPY)
    len = MAX_ENTROPY;
  if (fd < 0) {
    snprintf (err, errlen, "opening /dev/urandom: %s", strerror (errno));
    return false;
  }
  req.info.entropy_count = (int)(len * 8);
  req.info.buf_size = (int)len;
  memcpy (req.buf, bytes, len);
  ok = ioctl (fd, RNDADDENTROPY, &req) == 0;
  if (!ok)
    snprintf (err, errlen, "adding entropy: %s", strerror (errno));
  else if (ioctl (fd, RNDRESEEDCRNG) < 0 && errno != EINVAL && errno != ENOTTY)
    agent_log ("reseeding the CRNG: %s", strerror (errno));
  memset (&req, 0, sizeof req);
  close (fd);
  return ok;
}

static bool
write_machine_id (const char *root, const char *id, char *err, size_t errlen)
{
  char path[4096], tmp[4200], text[40];
  const char *r = strcmp (root, "/") == 0 ? "" : root;
  snprintf (path, sizeof path, "%s/etc/machine-id", r);
  snprintf (tmp, sizeof tmp, "%s.banger-tmp", path);
  snprintf (text, sizeof text, "%s\n", id);
  int fd = open (tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0444);
  if (fd < 0 || write (fd, text, 33) != 33) {
    snprintf (err, errlen, "writing %.300s: %s", tmp, strerror (errno));
    if (fd >= 0)
      close (fd);
    unlink (tmp);
    return false;
  }
  close (fd);
  if (rename (tmp, path) < 0) {
    snprintf (err, errlen, "renaming to %.300s: %s", path, strerror (errno));
    unlink (tmp);
    return false;
  }
  return true;
}

bool
identity_apply (Agent *agent, const uint8_t *payload, size_t len, char *err, size_t errlen)
{
  char *mac = bngr_find_str (payload, len, BNGR_F_MAC);
  char *ip = bngr_find_str (payload, len, BNGR_F_IP);
  char *gw = bngr_find_str (payload, len, BNGR_F_GW);
  char *dns = bngr_find_str (payload, len, BNGR_F_DNS);
  char *host = bngr_find_str (payload, len, BNGR_F_HOSTNAME);
  char *machine_id = bngr_find_str (payload, len, BNGR_F_MACHINE_ID);
  const uint8_t *entropy = NULL, *clock_field = NULL;
  size_t entropy_len = 0, clock_len = 0;
  uint64_t clock_ns = 0;
  unsigned char hw[6];
  bool system = !agent->test_mode;
  bool ok = false;

  /* Everything is checked before anything changes: a bad request leaves
   * the guest as it was. */
  if (mac != NULL && !parse_mac (mac, hw)) {
    snprintf (err, errlen, "MAC “%.40s” is not a unicast aa:bb:cc:dd:ee:ff address", mac);
    goto out;
  }
  if (host != NULL && (*host == 0 || strlen (host) > 64 || strchr (host, '/') != NULL)) {
    snprintf (err, errlen, "hostname “%.80s” is not a host name", host);
    goto out;
  }
  if (machine_id != NULL
      && (strlen (machine_id) != 32 || strspn (machine_id, "0123456789abcdef") != 32)) {
    snprintf (err, errlen, "machine-id “%.40s” is not 32 lowercase hex digits", machine_id);
    goto out;
  }
  bngr_find (payload, len, BNGR_F_ENTROPY, &entropy, &entropy_len);
  if (bngr_find (payload, len, BNGR_F_CLOCK_NS, &clock_field, &clock_len)
      && !bngr_value_u64 (clock_field, clock_len, &clock_ns)) {
    snprintf (err, errlen, "CLOCK_NS is not a u64");
    goto out;
  }

  /* The clock first: whatever the rest logs or writes carries today's time,
   * not the moment the snapshot was taken. */
  if (system && clock_ns != 0) {
    struct timespec ts = { .tv_sec = (time_t)(clock_ns / 1000000000u),
                           .tv_nsec = (long)(clock_ns % 1000000000u) };
    if (clock_settime (CLOCK_REALTIME, &ts) < 0) {
      snprintf (err, errlen, "setting the clock: %s", strerror (errno));
      goto out;
    }
  }
  if (system && entropy != NULL && entropy_len > 0
      && !add_entropy (entropy, entropy_len, err, errlen))
    goto out;
  if (system && host != NULL && sethostname (host, strlen (host)) < 0) {
    snprintf (err, errlen, "setting hostname %s: %s", host, strerror (errno));
    goto out;
  }
  if (system && mac != NULL && !set_mac (hw, err, errlen))
    goto out;
  if (system && (ip != NULL || gw != NULL) && netconf_apply (ip, gw, err, errlen) < 0)
    goto out;
  if (machine_id != NULL && !write_machine_id (agent->root, machine_id, err, errlen))
    goto out;
  netconf_files (agent->root, host, dns);
  ok = true;
out:
  free (mac);
  free (ip);
  free (gw);
  free (dns);
  free (host);
  free (machine_id);
  return ok;
}
