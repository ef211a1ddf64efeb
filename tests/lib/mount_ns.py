"""A private mount namespace for the test process, with a tmpfs of its own:
for the tests that need a second filesystem or a place whose opens they
can watch (fanotify), without mounting anything on the host. Helpers the
test starts afterwards share the namespace."""

import ctypes
import os

CLONE_NEWNS = 0x00020000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18
MNT_DETACH = 2


def libc_call(name, *args):
    """Calls libc's @name; raises OSError naming it when it fails."""
    libc = ctypes.CDLL(None, use_errno=True)
    if getattr(libc, name)(*args) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f'{name}: {os.strerror(err)}')


def private_tmpfs(test, path):
    """Moves the process into a mount namespace of its own (private, so
    nothing propagates back) and mounts a fresh tmpfs on @path there,
    unmounted when @test is cleaned up."""
    libc_call('unshare', CLONE_NEWNS)
    libc_call('mount', b'none', b'/', None, ctypes.c_ulong(MS_REC | MS_PRIVATE), None)
    libc_call('mount', b'tmpfs', path.encode(), b'tmpfs', ctypes.c_ulong(0), b'mode=0755')
    test.addCleanup(libc_call, 'umount2', path.encode(), MNT_DETACH)
