#!/usr/bin/python3
"""A hostile guest against the real bangerd (issue 10, finding 8): the
FAKE Firecracker (tests/fakes) runs a FAKE hostile agent
(tests/agent/hostile-agent.c) as its guest, speaking the real protocol on
the same hybrid-vsock path the real agent uses. It boots like a guest, and
on an Exec whose output nobody reads it floods DATA frames ignoring flow
control, mixed with damaged frames (valid headers, wrong payload CRCs,
absurd lengths) and garbage, and floods the console log. Throughout,
bangerd's RSS stays under a bound and a D-Bus call to it answers in under
100 ms; the console log stays capped."""

import os
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.environ['BANGER_SOURCE_ROOT'], 'tests', 'firecracker'))
sys.path.insert(0, os.path.join(os.environ['BANGER_SOURCE_ROOT'], 'tests', 'vm'))

from gi.repository import GLib, Gio  # noqa: E402

from system_bus import build_root  # noqa: E402
from test_fc_vm import FcTestCase  # noqa: E402

# bangerd may hold, per agent connection, its sinks' high mark (4 MiB), a
# frame (1 MiB) and a read (64 KiB) more than before the attack; the bound
# leaves room for the allocator and the rest of the daemon.
RSS_GROWTH_MAX = 64 << 20
CALL_MAX_S = 0.100
CONTROL_MAX_S = 0.030
CONSOLE_MAX = (8 << 20) + (64 << 20)  # the cap plus what ~1 s of flood adds
ATTACK_S = 10


def under_asan(pid):
    """The sanitizer pass's bangerd: its quarantine (256 MiB by default)
    keeps freed memory resident, so RSS bounds only the plain pass."""
    with open('/proc/%d/maps' % pid) as f:
        return 'libasan' in f.read()


def runqueue_wait(pid):
    """Seconds bangerd's main thread has waited, runnable, for a CPU."""
    with open('/proc/%d/schedstat' % pid) as f:
        return int(f.read().split()[1]) / 1e9


def rss(pid):
    with open('/proc/%d/status' % pid) as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) * 1024
    return 0


class HostileGuestTest(FcTestCase):
    jailed = False
    guest_agent = os.path.join(build_root(), 'tests', 'agent', 'hostile-agent')

    def bus_rtt(self):
        t0 = time.monotonic()
        self.conn.call_sync('org.freedesktop.DBus', '/org/freedesktop/DBus',
                            'org.freedesktop.DBus', 'GetId', None, None,
                            Gio.DBusCallFlags.NONE, 5000, None)
        return time.monotonic() - t0

    def test_flood_bounded_and_responsive(self):
        path, vm_id, pid = self.boot('hostile')
        bangerd = self.session.bangerd_pid()
        self.assertTrue(bangerd)
        base_rss = rss(bangerd)
        console = os.path.join(self.vm_dir(vm_id), 'console.log')

        # An Exec whose stdout nobody reads: the reply never comes while the
        # flood lasts, so it is sent without waiting.
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        in_r, in_w = os.pipe()
        fd_list = Gio.UnixFDList.new()
        for fd in (in_r, out_w, err_w):
            fd_list.append(fd)
            os.close(fd)
        self.conn.call_with_unix_fd_list(
            'org.banger.Manager', path, 'org.banger.VM', 'Exec',
            GLib.Variant('(asa{sv}hhh)', (['yes'], {}, 0, 1, 2)), None,
            Gio.DBusCallFlags.NONE, -1, fd_list, None, None, None)
        self.conn.flush_sync(None)

        waiters = [bangerd, self.session.pid, os.getpid()]
        worst_call, worst_rss, worst_console, calls, busy = 0.0, 0, 0, 0, 0
        deadline = time.monotonic() + ATTACK_S
        while time.monotonic() < deadline:
            # A control: the bus daemon's own GetId just before and after.
            # When it lags the machine is loaded (other tests, other
            # builds), and the sample says nothing about bangerd.
            # And bangerd's own wait for a CPU during the call: time it was
            # ready to answer but the machine ran something else.
            # (The same for the bus daemon and this test.)
            c0 = self.bus_rtt()
            w0 = [runqueue_wait(p) for p in waiters]
            t0 = time.monotonic()
            self.conn.call_sync('org.banger.Manager', '/org/banger/Manager',
                                'org.freedesktop.DBus.ObjectManager', 'GetManagedObjects',
                                None, None, Gio.DBusCallFlags.NONE, 5000, None)
            took = time.monotonic() - t0
            starved = max(runqueue_wait(p) - w for p, w in zip(waiters, w0))
            if max(c0, self.bus_rtt()) > CONTROL_MAX_S or starved > CONTROL_MAX_S:
                busy += 1
            else:
                worst_call = max(worst_call, took)
                calls += 1
            worst_rss = max(worst_rss, rss(bangerd) - base_rss)
            try:
                worst_console = max(worst_console, os.stat(console).st_size)
            except FileNotFoundError:
                pass
            # Ten probes a second; the main loop of this test has nothing
            # else to wait for.
            time.sleep(0.1)
        print('%d calls (%d more while the bus or CPUs lagged), slowest %.1f ms; bangerd RSS '
              'grew by at most %d KiB; console.log at most %d KiB'
              % (calls, busy, worst_call * 1000, worst_rss >> 10, worst_console >> 10),
              file=sys.stderr)
        self.assertGreater(calls, busy)
        self.assertLess(worst_call, CALL_MAX_S)
        self.assertLess(worst_rss, RSS_GROWTH_MAX + (256 << 20 if under_asan(bangerd) else 0))
        self.assertGreater(worst_console, 0)
        self.assertLess(worst_console, CONSOLE_MAX)
        self.assertTrue(os.path.exists(console + '.1'), 'the console log was never cut')
        os.close(out_r)
        os.close(err_r)
        os.close(in_w)


if __name__ == '__main__':
    unittest.main()
