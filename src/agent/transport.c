/* The byte streams the agent can serve on: the virtio-serial port named
 * org.banger.agent.0 (QEMU), AF_VSOCK port 1024 (Firecracker), or a unix
 * socket (tests). */

#include "transport.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/vm_sockets.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* Without udev there is no /dev/virtio-ports/<name> link, so find the
 * port by the name sysfs reports and open /dev/vportNpM directly. */
int
transport_open_port (void)
{
  DIR *d = opendir ("/sys/class/virtio-ports");
  struct dirent *de;
  int fd = -1;
  if (d == NULL)
    return -1;
  while (fd < 0 && (de = readdir (d)) != NULL) {
    char path[300], name[128];
    if (de->d_name[0] == '.')
      continue;
    snprintf (path, sizeof path, "/sys/class/virtio-ports/%s/name", de->d_name);
    int nfd = open (path, O_RDONLY | O_CLOEXEC);
    if (nfd < 0)
      continue;
    ssize_t n = read (nfd, name, sizeof name - 1);
    close (nfd);
    if (n <= 0)
      continue;
    name[n] = 0;
    name[strcspn (name, "\n")] = 0;
    if (strcmp (name, BNGR_VIRTIO_PORT_NAME) != 0)
      continue;
    snprintf (path, sizeof path, "/dev/%s", de->d_name);
    fd = open (path, O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    /* devtmpfs creates the node a moment after sysfs shows the port. */
    if (fd < 0 && errno != ENOENT)
      agent_log ("opening %s: %s", path, strerror (errno));
  }
  closedir (d);
  return fd;
}

/* One attempt at the guest's channel to the host: the virtio-serial port
 * (QEMU), else a vsock listener (Firecracker). */
bool
transport_attach_guest (Agent *agent)
{
  int fd = transport_open_port ();
  if (fd >= 0) {
    agent->conn_fd = agent->out_fd = fd;
    agent->conn_is_port = true;
    agent->port_idle = true;
    return true;
  }
  if (access ("/dev/vsock", F_OK) == 0 && (fd = transport_listen_vsock ()) >= 0) {
    agent->listen_fds[agent->n_listen++] = fd;
    return true;
  }
  return false;
}

int
transport_listen_vsock (void)
{
  struct sockaddr_vm addr = {
    .svm_family = AF_VSOCK,
    .svm_port = BNGR_VSOCK_PORT,
    .svm_cid = VMADDR_CID_ANY,
  };
  int fd = socket (AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0)
    return -1;
  if (bind (fd, (struct sockaddr *)&addr, sizeof addr) < 0 || listen (fd, 4) < 0) {
    close (fd);
    return -1;
  }
  return fd;
}

int
transport_listen_unix (const char *path)
{
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  if (strlen (path) >= sizeof addr.sun_path) {
    errno = ENAMETOOLONG;
    return -1;
  }
  strcpy (addr.sun_path, path);
  int fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0)
    return -1;
  unlink (path);
  if (bind (fd, (struct sockaddr *)&addr, sizeof addr) < 0 || listen (fd, 4) < 0) {
    int err = errno;
    close (fd);
    errno = err;
    return -1;
  }
  return fd;
}
