/* banger-agent: the guest init shim and agent. See docs/agent-protocol.md.
 *
 *   (as PID 1)                 init duties, then serve on the virtio port or vsock
 *   --listen-unix PATH         serve on a unix socket (tests; no init duties)
 *   --stdio                    serve on stdin/stdout (tests)
 *   --root DIR                 where SETUP writes keys (default /)
 *   --apply-cmdline "ARGS"     apply banger.ip/gw/hostname/dns from ARGS to this
 *                              namespace and exit (tests, in a private netns)
 */

#include "init.h"
#include "netconf.h"
#include "server.h"
#include "stats.h"
#include "transport.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TRANSPORT_WAIT_MS 10000

static void
usage (void)
{
  dprintf (STDERR_FILENO, "usage: banger-agent [--listen-unix PATH | --stdio] [--root DIR]\n"
                          "       banger-agent --apply-cmdline \"banger.ip=… banger.gw=…\"\n");
}

/* Looks @key up in @text (the --apply-cmdline form) or /proc/cmdline. */
static const char *
param (const char *text, const char *key, char *buf, size_t size)
{
  if (text == NULL)
    return init_cmdline_get (key);
  size_t klen = strlen (key);
  for (const char *p = text; *p != 0;) {
    p += strspn (p, " ");
    size_t wlen = strcspn (p, " ");
    if (wlen > klen && strncmp (p, key, klen) == 0 && p[klen] == '=') {
      snprintf (buf, size, "%.*s", (int)(wlen - klen - 1), p + klen + 1);
      return buf;
    }
    p += wlen;
  }
  return NULL;
}

static int
configure_system (const char *text, const char *root)
{
  char b1[256], b2[256], b3[256], b4[256], err[512];
  const char *ip = param (text, "banger.ip", b1, sizeof b1);
  const char *gw = param (text, "banger.gw", b2, sizeof b2);
  const char *host = param (text, "banger.hostname", b3, sizeof b3);
  const char *dns = param (text, "banger.dns", b4, sizeof b4);
  int ret = 0;

  if (host != NULL && sethostname (host, strlen (host)) < 0) {
    agent_log ("setting hostname %s: %s", host, strerror (errno));
    ret = 1;
  }
  if (netconf_apply (ip, gw, err, sizeof err) < 0) {
    agent_log ("network: %s", err);
    ret = 1;
  }
  netconf_files (root, host, dns);
  return ret;
}

/* Waits a short while for the channel to the host (the port appears when
 * virtio_console has probed). A guest booting slowly (software emulation on
 * a busy host) may take longer: then the serve loop keeps looking, because
 * a PID 1 agent that gave up would leave the host waiting for nothing. */
static void
open_guest_transport (Agent *agent)
{
  long long deadline = agent_now_ms () + TRANSPORT_WAIT_MS;
  while (!transport_attach_guest (agent)) {
    if (agent_now_ms () > deadline) {
      agent_log ("no virtio-serial port %s and no vsock after %d s: still looking",
                 BNGR_VIRTIO_PORT_NAME, TRANSPORT_WAIT_MS / 1000);
      agent->seek_transport = true;
      return;
    }
    poll (NULL, 0, 50);
  }
}

int
main (int argc, char **argv)
{
  Agent agent = {
    .conn_fd = -1,
    .out_fd = -1,
    .sig_fd = -1,
    .root = "/",
  };
  const char *listen_unix = NULL, *apply = NULL;
  bool stdio_mode = false;

  for (int i = 1; i < argc; i++) {
    if (strcmp (argv[i], "--listen-unix") == 0 && i + 1 < argc) {
      listen_unix = argv[++i];
    } else if (strcmp (argv[i], "--stdio") == 0) {
      stdio_mode = true;
    } else if (strcmp (argv[i], "--root") == 0 && i + 1 < argc) {
      agent.root = argv[++i];
    } else if (strcmp (argv[i], "--apply-cmdline") == 0 && i + 1 < argc) {
      apply = argv[++i];
    } else if (getpid () != 1) {
      /* As PID 1 the kernel may pass arguments we do not know: ignore. */
      usage ();
      return 2;
    }
  }

  if (apply != NULL)
    return configure_system (apply, agent.root);

  if (listen_unix != NULL || stdio_mode) {
    agent.test_mode = true;
    if (stdio_mode) {
      agent.conn_fd = STDIN_FILENO;
      agent.out_fd = STDOUT_FILENO;
      agent.exit_on_eof = true;
      fcntl (STDIN_FILENO, F_SETFL, fcntl (STDIN_FILENO, F_GETFL) | O_NONBLOCK);
      fcntl (STDOUT_FILENO, F_SETFL, fcntl (STDOUT_FILENO, F_GETFL) | O_NONBLOCK);
    } else {
      int fd = transport_listen_unix (listen_unix);
      if (fd < 0) {
        agent_log ("listening on %s: %s", listen_unix, strerror (errno));
        return 1;
      }
      agent.listen_fds[agent.n_listen++] = fd;
      /* Tells a test harness the socket accepts connections now. */
      dprintf (STDOUT_FILENO, "listening on %s\n", listen_unix);
    }
    if (!read_boot_id (agent.boot_id, sizeof agent.boot_id))
      agent.boot_id[0] = 0;
    return agent_serve (&agent);
  }

  if (getpid () != 1) {
    usage ();
    return 2;
  }
  if (init_is_initramfs ())
    return init_initramfs (); /* only returns on failure: the kernel panics with our message */

  agent.pid1 = true;
  init_early ();
  configure_system (NULL, "/");
  if (!read_boot_id (agent.boot_id, sizeof agent.boot_id))
    agent.boot_id[0] = 0;
  open_guest_transport (&agent);
  const char *image_init = init_cmdline_get ("banger.init");
  if (image_init != NULL)
    init_handoff (image_init, &agent);
  agent_serve (&agent);
  /* PID 1 must not return; power off cleanly rather than panic. */
  init_poweroff (&agent);
  return 1;
}
