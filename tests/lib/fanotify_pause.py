"""Pausing a process at an exact point for a race test: every open on one
mount is held (fanotify permission events) until a callback has run."""

import ctypes
import os
import select
import struct
import threading

FAN_CLOEXEC = 0x1
FAN_CLASS_CONTENT = 0x4
FAN_MARK_ADD = 0x1
FAN_MARK_MOUNT = 0x10
FAN_OPEN_PERM = 0x10000
FAN_ALLOW = 0x1


class FanotifyPause:
    """Holds every open on the mount at @path until on_open(path) has run
    (fanotify permission events): a helper paused at an exact point."""

    def __init__(self, path):
        self.path = path
        self.on_open = lambda p: None
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.libc.fanotify_mark.argtypes = [ctypes.c_int, ctypes.c_uint, ctypes.c_uint64,
                                            ctypes.c_int, ctypes.c_char_p]

    def __enter__(self):
        self.fd = self.libc.fanotify_init(FAN_CLOEXEC | FAN_CLASS_CONTENT, os.O_RDONLY)
        if self.fd < 0:
            raise OSError(ctypes.get_errno(), 'fanotify_init')
        if self.libc.fanotify_mark(self.fd, FAN_MARK_ADD | FAN_MARK_MOUNT, FAN_OPEN_PERM, -100,
                                   self.path.encode()) != 0:
            raise OSError(ctypes.get_errno(), 'fanotify_mark')
        self.stop_r, self.stop_w = os.pipe()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()
        return self

    def run(self):
        while True:
            ready, _, _ = select.select([self.fd, self.stop_r], [], [])
            if self.stop_r in ready:
                return
            data = os.read(self.fd, 4096)
            off = 0
            while off + 24 <= len(data):
                event_len, _, _, _, mask, fd, _ = struct.unpack_from('IBBHQii', data, off)
                try:
                    path = os.readlink(f'/proc/self/fd/{fd}')
                    try:
                        self.on_open(path)
                    finally:
                        os.write(self.fd, struct.pack('iI', fd, FAN_ALLOW))
                finally:
                    os.close(fd)
                off += event_len

    def __exit__(self, *exc):
        os.write(self.stop_w, b'x')
        self.thread.join(10)
        os.close(self.fd)
        os.close(self.stop_r)
        os.close(self.stop_w)
