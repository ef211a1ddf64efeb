"""Real loop devices, as the helper attaches them (LOOP_CONFIGURE): which are
attached to files under a directory, and which inode backs each."""

import fcntl
import glob
import os
import struct
import subprocess

LOOP_GET_STATUS64 = 0x4C05
LOOP_INFO64_SIZE = 232


def attached(under):
    """{'/dev/loopN': backing file path} for loop devices backed by a file
    under @under."""
    out = {}
    for path in glob.glob('/sys/block/loop*/loop/backing_file'):
        try:
            with open(path) as f:
                backing = f.read().strip()
        except OSError:
            continue
        if backing.startswith(under.rstrip('/') + '/'):
            out['/dev/' + path.split('/')[3]] = backing
    return out


def backing_inode(dev):
    """(st_dev, st_ino) of the file behind @dev, from the kernel's own
    record (not from the name, which may have changed)."""
    fd = os.open(dev, os.O_RDONLY)
    try:
        buf = fcntl.ioctl(fd, LOOP_GET_STATUS64, bytes(LOOP_INFO64_SIZE))
    finally:
        os.close(fd)
    lo_device, lo_inode = struct.unpack_from('QQ', buf)
    return lo_device, lo_inode


def detach_all(under):
    """Test clean-up: detaches what a failed test left behind."""
    for dev in attached(under):
        subprocess.run(['losetup', '-d', dev], capture_output=True)
