#include "net.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "banger-error.h"

#define TUN_PATH "/dev/net/tun"

char *
banger_net_tap_name (const char *vm_id)
{
  /* bg + 12 of the 16 id digits = 14 bytes, under IFNAMSIZ (16). */
  return g_strdup_printf ("bg%.12s", vm_id);
}

gboolean
banger_net_tap_name_is_banger (const char *ifname)
{
  if (ifname == NULL || !g_str_has_prefix (ifname, "bg") || strlen (ifname) != 14)
    return FALSE;
  for (const char *p = ifname + 2; *p != '\0'; p++) {
    if (!g_ascii_isdigit (*p) && !(*p >= 'a' && *p <= 'f'))
      return FALSE;
  }
  return TRUE;
}

gboolean
banger_net_tap_get_owner (const char *tap, gint64 *owner, GError **error)
{
  g_autofree char *dir = g_build_filename ("/sys/class/net", tap, NULL);
  g_autofree char *path = g_build_filename (dir, "owner", NULL);
  g_autofree char *text = NULL;

  /* The kernel keeps the owner of a tun/tap device (TUNSETOWNER); that is
   * the one record of who may act on the tap, so nothing can disagree
   * with it after a helper restart. */
  if (!g_file_test (dir, G_FILE_TEST_EXISTS)) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_NOT_FOUND, "there is no tap %s", tap);
    return FALSE;
  }
  if (!g_file_get_contents (path, &text, NULL, NULL)) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_EXISTS, "%s exists and is not a tun/tap device",
                 tap);
    return FALSE;
  }
  *owner = g_ascii_strtoll (g_strstrip (text), NULL, 10);
  return TRUE;
}

static int
tun_attach (const char *tap, GError **error)
{
  struct ifreq ifr = { 0 };
  int fd = open (TUN_PATH, O_RDWR | O_CLOEXEC);

  if (fd < 0) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "cannot open %s: %s", TUN_PATH,
                 g_strerror (errno));
    return -1;
  }
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
  g_strlcpy (ifr.ifr_name, tap, sizeof ifr.ifr_name);
  if (ioctl (fd, TUNSETIFF, &ifr) < 0) {
    int saved = errno;

    close (fd);
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "cannot create tap %s: %s", tap,
                 g_strerror (saved));
    return -1;
  }
  return fd;
}

gboolean
banger_net_tap_create (const char *tap, const char *bridge, uid_t owner, GError **error)
{
  g_autoptr (GError) local = NULL;
  gint64 current = -1;
  int bridge_index;
  int fd;

  bridge_index = banger_net_link_index (bridge, error);
  if (bridge_index < 0)
    return FALSE;
  if (bridge_index == 0) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_BAD_STATE,
                 "bridge %s does not exist; call EnsureNetwork first", bridge);
    return FALSE;
  }

  if (banger_net_tap_get_owner (tap, &current, &local)) {
    /* The caller's own tap: make sure it is attached and up, and succeed,
     * so a retried CreateTap is harmless. Someone else's: refuse, never
     * take it over (TUNSETIFF as root would let us). */
    if (current != (gint64)owner) {
      g_set_error (error, BANGER_ERROR, BANGER_ERROR_EXISTS,
                   "tap %s already exists and belongs to uid %" G_GINT64_FORMAT, tap, current);
      return FALSE;
    }
    return banger_net_link_up (tap, bridge_index, error);
  }
  if (!g_error_matches (local, BANGER_ERROR, BANGER_ERROR_NOT_FOUND)) {
    g_propagate_error (error, g_steal_pointer (&local));
    return FALSE;
  }

  fd = tun_attach (tap, error);
  if (fd < 0)
    return FALSE;
  if (ioctl (fd, TUNSETOWNER, (unsigned long)owner) < 0 || ioctl (fd, TUNSETPERSIST, 1L) < 0) {
    int saved = errno;

    close (fd);
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "cannot make tap %s persistent: %s", tap,
                 g_strerror (saved));
    return FALSE;
  }
  close (fd);

  if (!banger_net_link_up (tap, bridge_index, error)) {
    /* Do not leave a half-made tap behind. */
    banger_net_link_delete (tap, NULL);
    return FALSE;
  }
  g_info ("created tap %s for uid %u on %s", tap, (guint)owner, bridge);
  return TRUE;
}

gboolean
banger_net_tap_delete (const char *tap, uid_t caller, GError **error)
{
  gint64 owner = -1;

  if (!banger_net_tap_get_owner (tap, &owner, error))
    return FALSE;
  if (owner != (gint64)caller) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_NOT_AUTHORIZED,
                 "tap %s belongs to uid %" G_GINT64_FORMAT ", not to uid %u", tap, owner,
                 (guint)caller);
    return FALSE;
  }
  /* RTM_DELLINK removes the device even if a VMM still holds it open, so
   * the call's result is what the caller sees. */
  if (!banger_net_link_delete (tap, error))
    return FALSE;
  g_info ("deleted tap %s of uid %u", tap, (guint)caller);
  return TRUE;
}
