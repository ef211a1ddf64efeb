"""RawBus: a minimal D-Bus client for bench/scale (see its docstring)."""

import os
import socket
import struct


def _pad(buf, n):
    return buf + b'\0' * ((-len(buf)) % n)


class RawBus:
    """A minimal D-Bus client: authenticates, says Hello, sends method calls
    without arguments and reads the reply's bytes without parsing its body,
    so timing a call measures the service and the bus, not a client's
    unmarshalling."""

    def __init__(self, address):
        path = dict(kv.split('=', 1) for kv in address.split(':', 1)[1].split(','))['path']
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.sock.sendall(b'\0AUTH EXTERNAL ' + str(os.getuid()).encode().hex().encode() + b'\r\n')
        line = self._readline()
        if not line.startswith(b'OK '):
            raise RuntimeError('D-Bus authentication refused: %r' % line)
        self.sock.sendall(b'BEGIN\r\n')
        self.serial = 0
        self.call('org.freedesktop.DBus', '/org/freedesktop/DBus', 'org.freedesktop.DBus', 'Hello')

    def _readline(self):
        data = b''
        while not data.endswith(b'\r\n'):
            chunk = self.sock.recv(1)
            if not chunk:
                raise RuntimeError('bus closed the connection')
            data += chunk
        return data

    def _recv_exact(self, n):
        buf = bytearray(n)
        view = memoryview(buf)
        got = 0
        while got < n:
            k = self.sock.recv_into(view[got:], n - got)
            if k == 0:
                raise RuntimeError('bus closed the connection')
            got += k
        return bytes(buf)

    def call(self, dest, path, iface, member):
        """Returns the size in bytes of the method return; raises on an error reply."""
        self.serial += 1
        fields = b''
        for code, sig, value in ((1, b'o', path), (2, b's', iface), (3, b's', member),
                                 (6, b's', dest)):
            v = value.encode()
            fields = _pad(fields, 8) + struct.pack('<B', code) + b'\x01' + sig + b'\0'
            fields += struct.pack('<I', len(v)) + v + b'\0'
        header = b'l\x01\x00\x01' + struct.pack('<III', 0, self.serial, len(fields)) + fields
        self.sock.sendall(_pad(header, 8))
        while True:
            fixed = self._recv_exact(16)
            mtype = fixed[1]
            body_len, _, fields_len = struct.unpack('<III', fixed[4:16])
            rest = self._recv_exact(fields_len + (-(16 + fields_len)) % 8 + body_len)
            reply_to = None
            # Header fields: find REPLY_SERIAL (5, 'u').
            i = 0
            while i < fields_len:
                i += (-i) % 8
                code, siglen = rest[i], rest[i + 1]
                sig = rest[i + 2:i + 2 + siglen]
                i += 3 + siglen
                if sig == b'u':
                    i += (-(16 + i)) % 4
                    val = struct.unpack('<I', rest[i:i + 4])[0]
                    i += 4
                    if code == 5:
                        reply_to = val
                elif sig in (b's', b'o'):
                    i += (-(16 + i)) % 4
                    n = struct.unpack('<I', rest[i:i + 4])[0]
                    i += 4 + n + 1
                elif sig == b'g':
                    n = rest[i]
                    i += 1 + n + 1
                elif sig == b'h':
                    i += (-(16 + i)) % 4
                    i += 4
                else:
                    raise RuntimeError('unexpected header field signature %r' % sig)
            if reply_to != self.serial or mtype not in (2, 3):
                continue  # a signal (NameAcquired) or someone else's
            if mtype == 3:
                raise RuntimeError('%s.%s failed' % (iface, member))
            return 16 + len(rest)

    def close(self):
        self.sock.close()
