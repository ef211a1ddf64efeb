#!/usr/bin/python3
"""bangerd's DNS responder, asked with Debian's dig (bind9-dnsutils) over
UDP and TCP: the real bangerd, D-Bus activated on a private session bus
(tests/lib/session_bus.py), listening on a port the test picked and wrote
into bangerd's config ([dns] port=).

VmDnsTest boots a real VM (QEMU under TCG, the `minimal` image) with the
real helper and polkitd on a private system bus, all in a network
namespace of the test's own, and a FAKE systemd-resolved
(tests/fakes/fake-resolved.py) there to see bangerd's ConfigureDNS land.

One meson test per test case (tests/dns/meson.build)."""

import glob
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import unittest

import gi
gi.require_version('Gio', '2.0')
from gi.repository import GLib, Gio  # noqa: E402

from netns import current_netns, enter_netns, leave_netns  # noqa: E402
from session_bus import SessionBus, wait_pid_gone  # noqa: E402
from system_bus import wait_until  # noqa: E402

MANAGER = 'org.banger.Manager'
MANAGER_PATH = '/org/banger/Manager'
VM_IFACE = 'org.banger.VM'
BOOT_TIMEOUT_MS = 180000


def free_port():
    """A port free for both UDP and TCP on 127.0.0.1 right now."""
    for _ in range(50):
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        t.bind(('127.0.0.1', 0))
        port = t.getsockname()[1]
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            u.bind(('127.0.0.1', port))
            return port
        except OSError:
            continue
        finally:
            t.close()
            u.close()
    raise RuntimeError('no free port')


class Dig:
    """One dig answer: status, flags, sections as lists of record lines."""

    def __init__(self, text):
        self.text = text
        m = re.search(r'status: (\w+)', text)
        self.status = m.group(1) if m else None
        m = re.search(r';; flags: ([a-z ]*);', text)
        self.flags = m.group(1).split() if m else []
        self.sections = {}
        current = None
        for line in text.splitlines():
            m = re.match(r';; (\w+) SECTION:', line)
            if m:
                current = m.group(1)
                self.sections[current] = []
            elif not line.strip():
                current = None
            elif current and not line.startswith(';'):
                self.sections[current].append(line.split())

    def records(self, section, rtype=None):
        return [r for r in self.sections.get(section, []) if rtype is None or r[3] == rtype]

    def __repr__(self):
        return self.text


class ResponderCase(unittest.TestCase):
    """bangerd on a private session bus with [dns] port= set."""

    port_override = None  # None: a free port; else this value in the config

    def setUp(self):
        self.tmpdir = tempfile.mkdtemp(prefix='banger-dns-test-')
        os.chmod(self.tmpdir, 0o755)
        self.addCleanup(shutil.rmtree, self.tmpdir, True)
        self.port = free_port() if self.port_override is None else self.port_override
        self.extra_setup()
        self.session = SessionBus(self.tmpdir, system_bus_address=self.system_bus_address(),
                                  bangerd_args=['-vv'], env=self.session_env())
        os.makedirs(self.session.config_dir, exist_ok=True)
        with open(os.path.join(self.session.config_dir, 'config'), 'w') as f:
            f.write('[dns]\nport=%d\n' % self.port)
        self.before_bangerd()
        self.session.start()
        self.addCleanup(self._stop_session)
        self.conn = self.session.connect()
        self.addCleanup(self.conn.close_sync, None)
        # The first call activates bangerd; it answers once reconciled.
        self.call('Get', GLib.Variant('(ss)', (MANAGER, 'Version')),
                  iface='org.freedesktop.DBus.Properties')
        self.bangerd_pid = self.session.bangerd_pid()

    def extra_setup(self):
        pass

    def before_bangerd(self):
        pass

    def session_env(self):
        return None

    def system_bus_address(self):
        return None

    def _stop_session(self):
        self.session.stop_bangerd()
        self.session.stop()
        log = self.session.log()
        # Under the ASan/UBSan build a leak or undefined behaviour in
        # bangerd (the responder included) shows up in its log at exit.
        sanitizer = 'Sanitizer' in log or 'runtime error:' in log
        if self._failed() or sanitizer:
            sys.stderr.write('===== session bus and bangerd =====\n' + log)
        self.assertFalse(sanitizer, 'bangerd reported a sanitizer error')

    def _failed(self):
        result = getattr(self._outcome, 'result', None)
        errors = getattr(result, 'errors', []) + getattr(result, 'failures', [])
        return any(test is self for test, _ in errors)

    def call(self, method, args=None, path=MANAGER_PATH, iface=MANAGER, timeout=30000):
        return self.conn.call_sync(MANAGER, path, iface, method, args, None,
                                   Gio.DBusCallFlags.NONE, timeout, None).unpack()

    def doctor(self):
        rows = self.call('Doctor')[0]
        return {row[0]: row for row in rows}

    def dig(self, name, rtype='A', tcp=False):
        argv = ['dig', '@127.0.0.1', '-p', str(self.port), '+tries=1', '+time=5', '+norecurse',
                name, rtype]
        if tcp:
            argv.append('+tcp')
        res = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        self.assertEqual(res.returncode, 0, res.stdout + res.stderr)
        return Dig(res.stdout)

    def assert_negative(self, d, status):
        self.assertEqual(d.status, status, d)
        self.assertIn('aa', d.flags, d)
        self.assertEqual(d.records('ANSWER'), [], d)
        soa = d.records('AUTHORITY', 'SOA')
        self.assertEqual(len(soa), 1, d)
        self.assertEqual(soa[0][0], 'vm.', d)
        self.assertEqual(soa[0][1], '0', 'TTL 0: negative answers are not cached')

    def assert_bangerd_alive(self):
        self.assertIsNotNone(self.bangerd_pid)
        os.kill(self.bangerd_pid, 0)
        self.assertEqual(self.session.bangerd_pid(), self.bangerd_pid)


class ResponderTest(ResponderCase):

    def test_unknown_name_nxdomain(self):
        for tcp in (False, True):
            for name in ('nosuchvm.vm', 'NoSuchVM.VM.', 'a.b.vm'):
                self.assert_negative(self.dig(name, tcp=tcp), 'NXDOMAIN')
        # The apex exists: its SOA, and NODATA for other types.
        d = self.dig('vm', 'SOA')
        self.assertEqual(d.status, 'NOERROR', d)
        self.assertEqual(len(d.records('ANSWER', 'SOA')), 1, d)
        self.assert_negative(self.dig('vm', 'A', tcp=True), 'NOERROR')

    def test_outside_vm_refused(self):
        for tcp in (False, True):
            for name, rtype in (('example.com', 'A'), ('vm.example', 'A'), ('.', 'NS'),
                                ('1.0.0.127.in-addr.arpa', 'PTR')):
                d = self.dig(name, rtype, tcp=tcp)
                self.assertEqual(d.status, 'REFUSED', d)
                self.assertNotIn('aa', d.flags, d)

    def test_created_vm_without_lease(self):
        # A VM that exists but holds no lease (never started, or stopped)
        # has no address, so no name either.
        self.call('CreateVM', GLib.Variant('(a{sv})', ({'name': GLib.Variant('s', 'idle')},)))
        for tcp in (False, True):
            self.assert_negative(self.dig('idle.vm', tcp=tcp), 'NXDOMAIN')
            self.assert_negative(self.dig('idle.vm', 'AAAA', tcp=tcp), 'NXDOMAIN')

    def test_malformed_packets_survived(self):
        """Garbage over UDP and TCP: FORMERR or silence, and the responder
        answers the next real question."""
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(udp.close)
        udp.settimeout(5)
        addr = ('127.0.0.1', self.port)
        header = struct.pack('>HHHHHH', 0x1234, 0x0100, 1, 0, 0, 0)
        formerr = [
            header + b'\x40' + b'a' * 64 + b'\x02vm\x00\x00\x01\x00\x01',  # label > 63
            header + b'\xc0\x0c\x00\x01\x00\x01',                          # pointer to itself
            header + b'\x03dev\x02vm',                                      # question cut short
            struct.pack('>HHHHHH', 0x1234, 0x0100, 2, 0, 0, 0) + b'\x00\x00\x01\x00\x01',
        ]
        for pkt in formerr:
            udp.sendto(pkt, addr)
            reply, _ = udp.recvfrom(4096)
            self.assertEqual(reply[:2], b'\x12\x34')
            self.assertEqual(reply[3] & 0xf, 1, 'FORMERR for %r' % pkt)
        # Not a QUERY (opcode STATUS): NOTIMP.
        udp.sendto(struct.pack('>HHHHHH', 0x1234, 0x1000, 1, 0, 0, 0) + b'\x00\x00\x01\x00\x01',
                   addr)
        reply, _ = udp.recvfrom(4096)
        self.assertEqual(reply[3] & 0xf, 4)
        # No reply at all: a short packet and a response.
        udp.sendto(b'\x00' * 5, addr)
        udp.sendto(struct.pack('>HHHHHH', 1, 0x8000, 1, 0, 0, 0), addr)
        # TCP: a length prefix promising more than comes, then a close; a
        # length of 1; and a well-formed query pipelined after a bad one.
        for payload in (b'\x00\x40abc', b'\x00\x01\x00'):
            t = socket.create_connection(addr, timeout=5)
            t.sendall(payload)
            t.shutdown(socket.SHUT_WR)
            t.recv(4096)  # FORMERR, nothing, or the close: any is fine
            t.close()
        good = struct.pack('>HHHHHH', 0x4242, 0x0100, 1, 0, 0, 0) + \
            b'\x07example\x03com\x00\x00\x01\x00\x01'
        t = socket.create_connection(addr, timeout=5)
        self.addCleanup(t.close)
        t.sendall(struct.pack('>H', len(formerr[1])) + formerr[1] +
                  struct.pack('>H', len(good)) + good)
        answers = []
        buf = b''
        while len(answers) < 2:
            chunk = t.recv(4096)
            self.assertTrue(chunk, 'the connection closed early')
            buf += chunk
            while len(buf) >= 2 and len(buf) >= 2 + struct.unpack('>H', buf[:2])[0]:
                n = struct.unpack('>H', buf[:2])[0]
                answers.append(buf[2:2 + n])
                buf = buf[2 + n:]
        self.assertEqual([a[3] & 0xf for a in answers], [1, 5], 'FORMERR, then REFUSED')
        self.assertEqual(answers[1][:2], b'\x42\x42')
        self.assert_negative(self.dig('still-here.vm'), 'NXDOMAIN')
        self.assert_negative(self.dig('still-here.vm', tcp=True), 'NXDOMAIN')
        self.assert_bangerd_alive()

    def test_doctor_reports_running(self):
        row = self.doctor()['dns']
        self.assertEqual(row[1], 'ok', row)
        self.assertIn('127.0.0.1:%d' % self.port, row[2])


class DisabledTest(ResponderCase):
    port_override = 0

    def test_port_zero_disables(self):
        row = self.doctor()['dns']
        self.assertEqual(row[1], 'ok', row)
        self.assertIn('disabled', row[2])
        self.assertIn('off', row[2])
        self.assertRegex(self.session.log(), r'DNS responder disabled')


class BusyPortTest(ResponderCase):
    """Another program holds the port when bangerd starts."""

    def before_bangerd(self):
        self.squatter_udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.squatter_udp.bind(('127.0.0.1', self.port))
        self.squatter_tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.squatter_tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.squatter_tcp.bind(('127.0.0.1', self.port))
        self.squatter_tcp.listen(1)

    def tearDown(self):
        for s in ('squatter_udp', 'squatter_tcp'):
            if getattr(self, s, None) is not None:
                getattr(self, s).close()

    def test_busy_port(self):
        # bangerd is up and answers on the bus; doctor says why DNS is off.
        self.assert_bangerd_alive()
        row = self.doctor()['dns']
        self.assertEqual(row[1], 'warn', row)
        self.assertIn('DNS responder is off', row[2])
        self.assertIn('127.0.0.1:%d' % self.port, row[2])
        self.assertIn('in use', row[2])
        self.assertIn('[dns] port=', row[3], 'the hint says how to choose another port')
        # Once the port is free, the responder takes it (bangerd retries).
        self.squatter_udp.close()
        self.squatter_tcp.close()
        self.squatter_udp = self.squatter_tcp = None
        wait_until(lambda: self.doctor()['dns'][1] == 'ok', 15.0, 'the responder to listen')
        self.assert_negative(self.dig('late.vm'), 'NXDOMAIN')
        self.assert_negative(self.dig('late.vm', tcp=True), 'NXDOMAIN')


# ---- a booted VM ---------------------------------------------------------------------------




class VmDnsTest(ResponderCase):
    """A real VM with a real lease: helper + polkitd + fake resolved on a
    private system bus, everything in the test's network namespace."""

    def extra_setup(self):
        from test_dns_helper import ResolvedSystemBus
        self._old_netns = current_netns()
        self.addCleanup(self._leave_netns)
        self.system = ResolvedSystemBus()
        self.system.start()
        self.addCleanup(self._stop_system)
        # root's helper.conf names the responder's port (ConfigureDNS takes
        # no other)
        self.system.start_helper(dns_port=self.port)
        self.system.start_fake_resolved()
        enter_netns(self.system.netns)
        self.qemu_pids = set()

    def session_env(self):
        env = dict(os.environ)
        env['BANGER_AGENT'] = os.path.join(os.environ['BANGER_BUILD_ROOT'], 'src', 'agent',
                                           'banger-agent')
        env['BANGER_ACCEL'] = 'tcg'
        return env

    def system_bus_address(self):
        return self.system.address

    def _leave_netns(self):
        leave_netns(self._old_netns)

    def _stop_session(self):
        for pid in self.qemu_pids | self.vm_pids_on_disk():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            wait_pid_gone(pid, 5)
        super()._stop_session()
        if self._failed():
            for log in glob.glob(os.path.join(self.session.data_dir, 'vms', '*',
                                              'console.log')):
                with open(log, errors='replace') as f:
                    sys.stderr.write('===== %s =====\n%s\n' % (log, f.read()[-4000:]))

    def _stop_system(self):
        if self._failed():
            sys.stderr.write(self.system.logs())
        self.system.stop()

    def vm_pids_on_disk(self):
        return self.session.vmm_pids()

    def vm_prop(self, path, name):
        return self.call('Get', GLib.Variant('(ss)', (VM_IFACE, name)), path=path,
                         iface='org.freedesktop.DBus.Properties')[0]

    def test_started_vm_resolves(self):
        # Created after bangerd came up: resolves the moment it is leased.
        path = self.call('CreateVM', GLib.Variant('(a{sv})', (
            {'name': GLib.Variant('s', 'web')},)))[0]
        self.assert_negative(self.dig('web.vm'), 'NXDOMAIN')
        self.call('Start', GLib.Variant('(a{sv})', ({},)), path=path, iface=VM_IFACE,
                  timeout=BOOT_TIMEOUT_MS)
        self.qemu_pids.add(self.vm_prop(path, 'Pid'))
        ipv4 = self.vm_prop(path, 'IPv4')
        self.assertRegex(ipv4, r'^10\.77\.0\.\d+$')

        for tcp in (False, True):
            for name in ('web.vm', 'WEB.Vm.', 'wEb.VM'):
                d = self.dig(name, tcp=tcp)
                self.assertEqual(d.status, 'NOERROR', d)
                self.assertIn('aa', d.flags, d)
                a = d.records('ANSWER', 'A')
                self.assertEqual(len(a), 1, d)
                self.assertEqual(a[0][4], ipv4, d)
                self.assertEqual(a[0][0].lower(), 'web.vm.', d)
                self.assertEqual(a[0][0], name if name.endswith('.') else name + '.',
                                 'the question is echoed as asked')
            # AAAA: the name exists, without IPv6: NODATA.
            self.assert_negative(self.dig('web.vm', 'AAAA', tcp=tcp), 'NOERROR')
        self.assertEqual(self.call('ResolveName', GLib.Variant('(s)', ('web.vm',)))[0], ipv4)

        # bangerd asked the helper to route ~vm, and it reached resolved
        # with the bridge's ifindex and this bangerd's port.
        calls = self.system.resolved_calls()
        dns_ex = [c for c in calls if c['method'] == 'SetLinkDNSEx']
        self.assertTrue(dns_ex, calls)
        self.assertEqual(dns_ex[-1]['args'],
                         [{'family': 2, 'address': '127.0.0.1', 'port': self.port, 'name': ''}])
        self.assertEqual(dns_ex[-1]['ifindex'], self.system.link('banger0')['ifindex'])
        self.assertIn(['vm', True], [d for c in calls if c['method'] == 'SetLinkDomains'
                                     for d in c['args']])

        # Stopped: the lease is gone, and so is the name, by the time Stop
        # replies (the responder's cache is told before the store call
        # returns; no waiting here).
        self.call('Stop', GLib.Variant('(u)', (0,)), path=path, iface=VM_IFACE, timeout=60000)
        self.assertEqual(self.vm_prop(path, 'IPv4'), '')
        self.assert_negative(self.dig('web.vm'), 'NXDOMAIN')
        self.assert_negative(self.dig('web.vm', tcp=True), 'NXDOMAIN')

        # Started again, then deleted while running: NXDOMAIN as soon as
        # Delete has replied.
        self.call('Start', GLib.Variant('(a{sv})', ({},)), path=path, iface=VM_IFACE,
                  timeout=BOOT_TIMEOUT_MS)
        self.qemu_pids.add(self.vm_prop(path, 'Pid'))
        ipv4 = self.vm_prop(path, 'IPv4')
        self.assertEqual(self.dig('web.vm').records('ANSWER', 'A')[0][4], ipv4)
        self.call('Delete', GLib.Variant('(a{sv})', ({'force': GLib.Variant('b', True)},)),
                  path=path, iface=VM_IFACE, timeout=60000)
        self.assert_negative(self.dig('web.vm'), 'NXDOMAIN')
        self.assert_negative(self.dig('web.vm', tcp=True), 'NXDOMAIN')



class SquattedVmDnsTest(VmDnsTest):
    """Issue 10: someone else holds bangerd's DNS port before bangerd starts.
    bangerd must not ask the helper to route .vm there: the squatter would
    answer (and see) every user's lookups."""

    def before_bangerd(self):
        self.squatter = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.squatter.bind(('127.0.0.1', self.port))
        self.addCleanup(self.squatter.close)

    def test_squatted_port_not_routed(self):
        path = self.call('CreateVM', GLib.Variant('(a{sv})', (
            {'name': GLib.Variant('s', 'web')},)))[0]
        self.call('Start', GLib.Variant('(a{sv})', ({},)), path=path, iface=VM_IFACE,
                  timeout=BOOT_TIMEOUT_MS)
        self.qemu_pids.add(self.vm_prop(path, 'Pid'))
        self.assertRegex(self.vm_prop(path, 'IPv4'), r'^10\.77\.0\.\d+$')
        # The start went as far as DNS routing: the VM runs with its lease.
        # Nothing reached resolved.
        self.assertEqual([c for c in self.system.resolved_calls()
                          if c['method'] == 'SetLinkDNSEx'], [])
        self.assertIn('DNS routing for .vm not asked for', self.session.log())
        self.call('Stop', GLib.Variant('(u)', (0,)), path=path, iface=VM_IFACE, timeout=60000)

if __name__ == '__main__':
    unittest.main()
