"""Moving the test process's spawning thread between network namespaces.

Every networked test runs its daemons (dbus-daemon, bangerd, QEMU, dig) in
a namespace it created: children inherit the namespace of the thread that
forks them, so entering it on the main thread is enough."""

import ctypes
import os

CLONE_NEWNET = 0x40000000


def _setns(fd):
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        raise OSError(ctypes.get_errno(), 'setns')


def enter_netns(name):
    """Moves the calling thread into the namespace /run/netns/NAME."""
    fd = os.open('/run/netns/' + name, os.O_RDONLY)
    try:
        _setns(fd)
    finally:
        os.close(fd)


def current_netns():
    """A descriptor of the calling thread's namespace, for leave_netns."""
    return os.open('/proc/self/ns/net', os.O_RDONLY)


def leave_netns(fd):
    """Moves the calling thread back to the namespace @fd (from
    current_netns) and closes @fd."""
    try:
        _setns(fd)
    finally:
        os.close(fd)
