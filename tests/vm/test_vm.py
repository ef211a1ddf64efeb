#!/usr/bin/python3
"""The VM runtime end to end: real bangerd (D-Bus activated on a private
session bus), the real root helper and polkitd on a private system bus,
real QEMU (TCG) booting the built-in `minimal` image and `default` kernel,
the real guest agent. Everything that touches the network (the helper's
bridge and taps, bangerd, QEMU) lives in a network namespace this test
creates; the guests only talk to each other.

One meson test per test case (tests/vm/meson.build)."""

import glob
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import zlib

import gi
gi.require_version('Gio', '2.0')
from gi.repository import GLib, Gio  # noqa: E402

from netns import current_netns, enter_netns, leave_netns  # noqa: E402
from session_bus import SessionBus, wait_pid_gone  # noqa: E402
from system_bus import SystemBus, socket_accepts, wait_until  # noqa: E402

MANAGER = 'org.banger.Manager'
MANAGER_PATH = '/org/banger/Manager'
MANAGER_IFACE = 'org.banger.Manager'
VM_IFACE = 'org.banger.VM'
PROPS_IFACE = 'org.freedesktop.DBus.Properties'
BOOT_TIMEOUT_MS = 180000  # the first start also builds the image and kernel




class DBusError(Exception):
    def __init__(self, name, message):
        super().__init__('%s: %s' % (name, message))
        self.name = name
        self.message = message


class VmTestCase(unittest.TestCase):
    """A private world per test case: system bus + polkitd + helper (in a
    new netns), a session bus activating bangerd inside that netns."""

    with_helper = True
    home_name = 'home'  # the user's $HOME under the test's directory

    def setUp(self):
        self.tmpdir = tempfile.mkdtemp(prefix='banger-vm-test-')
        os.chmod(self.tmpdir, 0o755)
        # BANGER_TEST_KEEP=1 keeps the VMs' files (disks, console logs) to look at.
        if not os.environ.get('BANGER_TEST_KEEP'):
            self.addCleanup(shutil.rmtree, self.tmpdir, True)
        self._old_netns = current_netns()
        self.addCleanup(self._leave_netns)
        self.system = SystemBus()
        self.system.start()
        self.addCleanup(self._stop_system)
        if self.with_helper:
            self.system.start_helper()
        else:
            # The helper is not running: VMs boot without a network device.
            self.system.netns = 'banger-test-%d' % os.getpid()
            subprocess.run(['ip', 'netns', 'add', self.system.netns], check=True)
        enter_netns(self.system.netns)
        env = dict(os.environ)
        env['BANGER_AGENT'] = os.path.join(os.environ['BANGER_BUILD_ROOT'], 'src', 'agent',
                                           'banger-agent')
        env['BANGER_ACCEL'] = 'tcg'
        self.session = SessionBus(self.tmpdir, system_bus_address=self.system.address,
                                  bangerd_args=['-vv'], env=env, home_name=self.home_name)
        self.session.start()
        self.addCleanup(self._stop_session)
        self.conn = Gio.DBusConnection.new_for_address_sync(
            self.session.address,
            Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT |
            Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION, None, None)
        self.addCleanup(self.conn.close_sync, None)
        self.qemu_pids = set()

    def _leave_netns(self):
        leave_netns(self._old_netns)

    def _stop_session(self):
        # Every VMM this test started, by pid (they outlive bangerd by design).
        for pid in self.vm_pids_on_disk() | self.qemu_pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            wait_pid_gone(pid, 5)
        self.session.stop()
        if self._outcome_failed():
            sys.stderr.write('===== session bus and bangerd =====\n' + self.session.log())
            for log in glob.glob(os.path.join(self.session.data_dir, 'vms', '*', 'console.log')):
                with open(log, errors='replace') as f:
                    sys.stderr.write('===== %s =====\n%s\n' % (log, f.read()[-6000:]))

    def _stop_system(self):
        if self._outcome_failed():
            sys.stderr.write(self.system.logs())
        self.system.stop()

    def _outcome_failed(self):
        outcome = getattr(self, '_outcome', None)
        if outcome is None:
            return False
        result = getattr(outcome, 'result', None)
        errors = getattr(result, 'errors', []) + getattr(result, 'failures', [])
        return bool(errors) or not getattr(outcome, 'success', True)

    # ---- D-Bus ---------------------------------------------------------

    def call(self, method, args=None, path=MANAGER_PATH, iface=MANAGER_IFACE, timeout=30000,
             fds=None, reply_fds=False):
        fd_list = None
        if fds:
            # append() duplicates: the caller keeps (and closes) its own.
            fd_list = Gio.UnixFDList.new()
            for fd in fds:
                fd_list.append(fd)
        try:
            reply, out_fds = self.conn.call_with_unix_fd_list_sync(
                MANAGER, path, iface, method, args, None, Gio.DBusCallFlags.NONE, timeout,
                fd_list, None)
        except GLib.Error as e:
            name = Gio.DBusError.get_remote_error(e)
            Gio.DBusError.strip_remote_error(e)
            raise DBusError(name, e.message) from None
        finally:
            # The list holds duplicates of the caller's pipe ends: drop them
            # now (a traceback would keep them, and the reader its pipe, open).
            if fd_list is not None:
                for fd in fd_list.steal_fds():
                    os.close(fd)
                fd_list = None
        if reply_fds:
            return reply.unpack(), out_fds
        return reply.unpack()

    def assert_error(self, name, fn, *args, mentions=(), **kwargs):
        with self.assertRaises(DBusError) as cm:
            fn(*args, **kwargs)
        self.assertEqual(cm.exception.name, name, cm.exception.message)
        for word in mentions:
            self.assertIn(word, cm.exception.message)
        return cm.exception.message

    def create_vm(self, name, **spec):
        variant = {'name': GLib.Variant('s', name)}
        for key, value in spec.items():
            variant[key] = GLib.Variant('u' if isinstance(value, int) else 's', value)
        return self.call('CreateVM', GLib.Variant('(a{sv})', (variant,)))[0]

    def vm_call(self, path, method, args=None, **kwargs):
        return self.call(method, args, path=path, iface=VM_IFACE, **kwargs)

    def prop(self, path, name):
        return self.call('Get', GLib.Variant('(ss)', (VM_IFACE, name)), path=path,
                         iface=PROPS_IFACE)[0]

    def start(self, path, options=None, timeout=BOOT_TIMEOUT_MS):
        self.vm_call(path, 'Start', GLib.Variant('(a{sv})', (options or {},)), timeout=timeout)
        self.qemu_pids.add(self.prop(path, 'Pid'))

    def start_many(self, paths):
        """Starts VMs concurrently (each call in its own thread; GDBus
        connections are thread-safe)."""
        errors = []

        def run(p):
            try:
                self.vm_call(p, 'Start', GLib.Variant('(a{sv})', ({},)), timeout=BOOT_TIMEOUT_MS)
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(e)
        threads = [threading.Thread(target=run, args=(p,)) for p in paths]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for p in paths:
            pid = self.prop(p, 'Pid')
            if pid:
                self.qemu_pids.add(pid)
        if errors:
            raise errors[0]

    def exec(self, path, argv, stdin=b'', tty=False, token=None, timeout=60000, feed=None):
        """Runs argv in the guest with real pipes; returns (status, out, err)."""
        in_r, in_w = os.pipe()
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        options = {'tty': GLib.Variant('b', tty)}
        if token:
            options['token'] = GLib.Variant('s', token)
        if tty:
            options['rows'] = GLib.Variant('u', 30)
            options['cols'] = GLib.Variant('u', 100)
        chunks = {out_r: [], err_r: []}

        def drain(fd):
            while True:
                data = os.read(fd, 65536)
                if not data:
                    break
                chunks[fd].append(data)
            os.close(fd)
        readers = [threading.Thread(target=drain, args=(fd,)) for fd in (out_r, err_r)]
        for t in readers:
            t.start()

        def feed_stdin():
            try:
                if feed is not None:
                    feed(in_w)
                elif stdin:
                    os.write(in_w, stdin)
            finally:
                os.close(in_w)
        feeder = threading.Thread(target=feed_stdin)
        feeder.start()
        try:
            status = self.vm_call(
                path, 'Exec',
                GLib.Variant('(asa{sv}hhh)', (argv, options, 0, 1, 2)),
                fds=[in_r, out_w, err_w], timeout=timeout)[0]
        finally:
            for fd in (in_r, out_w, err_w):
                os.close(fd)
            feeder.join()
            for t in readers:
                t.join(30)
        return status, b''.join(chunks[out_r]), b''.join(chunks[err_r])

    # ---- what the host holds -------------------------------------------

    def vm_dir(self, vm_id):
        return os.path.join(self.session.data_dir, 'vms', vm_id)

    def vm_pids_on_disk(self):
        pids = set()
        for pidfile in glob.glob(os.path.join(self.session.data_dir, 'vms', '*', 'qemu.pid')):
            try:
                with open(pidfile) as f:
                    pids.add(int(f.read().strip()))
            except (OSError, ValueError):
                pass
        return {p for p in pids if os.path.exists('/proc/%d' % p)}

    def tap_exists(self, vm_id):
        return self.system.link('bg' + vm_id[:12]) is not None

    def network_down(self, *args):
        """`banger system network down` as the test's user."""
        env = dict(self.session.env)
        env['DBUS_SYSTEM_BUS_ADDRESS'] = self.system.address
        return subprocess.run([os.path.join(os.environ['BANGER_BUILD_ROOT'], 'src', 'cli',
                                            'banger'), 'system', 'network', 'down', *args],
                              capture_output=True, text=True, env=env, timeout=120)

    def qemu_alive(self, pid):
        try:
            with open('/proc/%d/comm' % pid) as f:
                return f.read().strip() == 'qemu-system-x86'
        except OSError:
            return False

    def assert_released(self, path, vm_id, pid=None, disk_kept=None):
        """Nothing of a stopped VM is left on the host."""
        self.assertEqual(self.prop(path, 'Pid'), 0)
        self.assertEqual(self.prop(path, 'IPv4'), '')
        self.assertFalse(self.tap_exists(vm_id), 'tap of %s left behind' % vm_id)
        if pid:
            self.assertTrue(wait_pid_gone(pid, 10), 'QEMU %d left running' % pid)
        disk = os.path.join(self.vm_dir(vm_id), 'disk.qcow2')
        if disk_kept is not None:
            self.assertEqual(os.path.exists(disk), disk_kept, disk)

    def watch_states(self, path):
        """Collects the State values announced with PropertiesChanged."""
        states = []

        def on_signal(conn, sender, obj, iface, signal_name, params):
            changed = params.unpack()[1]
            if 'State' in changed:
                states.append(changed['State'])
        sub = self.conn.signal_subscribe(MANAGER, PROPS_IFACE, 'PropertiesChanged', path, None,
                                         Gio.DBusSignalFlags.NONE, on_signal)
        self.addCleanup(self.conn.signal_unsubscribe, sub)
        return states

    def pump(self, until, timeout=10.0):
        """Runs the default main context until @until() or the timeout."""
        ctx = GLib.MainContext.default()
        deadline = time.monotonic() + timeout
        while not until() and time.monotonic() < deadline:
            ctx.iteration(False)
            time.sleep(0.005)
        return until()


class BootTest(VmTestCase):

    def test_boot_exec_stats_ports_logs(self):
        path = self.create_vm('one')
        vm_id = self.prop(path, 'Id')
        states = self.watch_states(path)
        self.assertEqual(self.prop(path, 'State'), 'created')
        self.start(path)
        self.assertEqual(self.prop(path, 'State'), 'running')
        self.assertTrue(self.pump(lambda: 'running' in states))
        self.assertEqual(states, ['starting', 'running'])
        ipv4 = self.prop(path, 'IPv4')
        self.assertTrue(ipv4.startswith('10.77.0.'), ipv4)
        pid = self.prop(path, 'Pid')
        self.assertTrue(self.qemu_alive(pid))
        self.assertNotEqual(self.prop(path, 'BootId'), '')
        self.assertNotEqual(self.prop(path, 'AgentVersion'), '')
        self.assertEqual(self.prop(path, 'DiskMode'), 'qcow2-overlay')
        self.assertGreater(self.prop(path, 'StartedAt'), 0)
        self.assertTrue(self.tap_exists(vm_id))

        # exit statuses, including a signal (128 + 9)
        self.assertEqual(self.exec(path, ['true'])[0], 0)
        self.assertEqual(self.exec(path, ['false'])[0], 1)
        self.assertEqual(self.exec(path, ['sh', '-c', 'kill -9 $$'])[0], 137)
        # stdin piped through, stdout and stderr apart
        status, out, err = self.exec(path, ['sh', '-c', 'tr a-z A-Z; echo oops >&2'],
                                     stdin=b'hello guest\n')
        self.assertEqual((status, out, err), (0, b'HELLO GUEST\n', b'oops\n'))
        status, out, _ = self.exec(path, ['cat', '/proc/sys/kernel/hostname'])
        self.assertEqual(out.strip(), b'one')
        status, out, _ = self.exec(path, ['ip', '-4', 'addr', 'show', 'eth0'])
        self.assertIn(ipv4.encode(), out)
        # a pty: the command sees a terminal of the size asked for
        status, out, _ = self.exec(path, ['sh', '-c', 'test -t 0 && test -t 1 && stty size'],
                                   tty=True)
        self.assertEqual(status, 0, out)
        self.assertIn(b'30 100', out)

        # the window size follows ResizeExec while the command runs
        def resize_then_go(fd):
            deadline = time.monotonic() + 20
            while True:
                try:
                    self.vm_call(path, 'ResizeExec', GLib.Variant('(suu)', ('pty', 40, 120)))
                    break
                except DBusError as e:
                    # NotFound until the command has started
                    if e.name != 'org.banger.Error.NotFound' or time.monotonic() > deadline:
                        raise
            os.write(fd, b'go\n')
        status, out, _ = self.exec(path, ['sh', '-c', 'read x; stty size'], tty=True, token='pty',
                                   feed=resize_then_go)
        self.assertEqual(status, 0, out)
        self.assertIn(b'40 120', out)

        # stats: the VMM on the host and the guest through the agent
        stats = self.vm_call(path, 'GetStats')[0]
        for key in ('vmm_cpu_seconds', 'vmm_rss_bytes', 'mem_total_bytes', 'mem_available_bytes',
                    'load1', 'load5', 'load15', 'disk_total_bytes', 'disk_free_bytes'):
            self.assertIn(key, stats)
        self.assertGreater(stats['vmm_rss_bytes'], 0)
        self.assertGreater(stats['mem_total_bytes'], 0)
        self.assertGreater(stats['disk_total_bytes'], 0)

        # ports: a guest listener shows up, signalled away by its token
        result = {}

        def listener():
            try:
                result['status'] = self.exec(path, ['busybox', 'nc', '-l', '-p', '8080'],
                                             token='nc')[0]
            except Exception as e:  # noqa: BLE001
                result['error'] = e
        t = threading.Thread(target=listener)
        t.start()
        found = False
        deadline = time.monotonic() + 20
        while not found and time.monotonic() < deadline:
            ports = self.vm_call(path, 'ListPorts')[0]
            found = any(p[2] == 8080 and p[0].startswith('tcp') for p in ports)
        self.assertTrue(found, ports)
        port = [p for p in ports if p[2] == 8080][0]
        self.assertGreater(port[3], 0)
        self.assertIn(port[4], ('nc', 'busybox'))
        self.vm_call(path, 'SignalExec', GLib.Variant('(si)', ('nc', signal.SIGTERM)))
        t.join(30)
        self.assertEqual(result.get('status'), 128 + signal.SIGTERM, result)
        self.assert_error('org.banger.Error.NotFound', self.vm_call, path, 'SignalExec',
                          GLib.Variant('(si)', ('nc', 15)), mentions=['nc'])

        # the console log: a read-only descriptor with the kernel's messages
        (handle,), fds = self.vm_call(path, 'OpenLog', GLib.Variant('(a{sv})', ({},)),
                                      reply_fds=True)
        fd = fds.get(handle)
        with os.fdopen(fd, 'rb') as f:
            text = f.read().decode(errors='replace')
        self.assertIn('Linux version', text)

        # ssh config: the address, the key, the pinned host key
        config = self.vm_call(path, 'GetSSHConfig')[0]
        self.assertEqual(config['host'], ipv4)
        self.assertEqual(config['port'], 22)
        self.assertEqual(config['user'], 'root')
        self.assertEqual(config['host_key_alias'], 'banger-' + vm_id)
        self.assertTrue(os.path.exists(config['identity_file']))
        with open(config['known_hosts_file']) as f:
            self.assertIn('banger-' + vm_id, f.read())
        self.assertIn('has_sshd', config)


class CommaDirTest(VmTestCase):
    """A data directory with a comma in its path (a user's $HOME may have
    one): QEMU takes paths inside option strings (-drive file=, -chardev
    path=, -qmp unix:, mem-path=), where a comma separates options. A boot
    (which saves the warm snapshot), a clone restored from it (mem-path)
    and a suspend/resume all work."""

    home_name = 'home,comma'

    def test_data_dir_with_a_comma(self):
        self.assertIn(',', self.session.data_dir)
        first = self.create_vm('comma1')
        self.start(first)
        self.assertEqual(self.exec(first, ['hostname'])[:2], (0, b'comma1\n'))
        clone = self.create_vm('comma2')
        self.start(clone)
        self.assertIn('comma2: restored from snapshot', self.session.log())
        self.assertEqual(self.exec(clone, ['hostname'])[:2], (0, b'comma2\n'))
        self.vm_call(clone, 'Suspend', timeout=BOOT_TIMEOUT_MS)
        self.assertEqual(self.prop(clone, 'State'), 'suspended')
        self.vm_call(clone, 'Resume', GLib.Variant('(a{sv})', ({},)), timeout=BOOT_TIMEOUT_MS)
        self.qemu_pids.add(self.prop(clone, 'Pid'))
        self.assertEqual(self.exec(clone, ['cat', '/proc/uptime'])[0], 0)


class LifecycleTest(VmTestCase):

    def test_stop_start_restart_kill_delete_prune(self):
        path = self.create_vm('life')
        vm_id = self.prop(path, 'Id')
        self.start(path)
        pid = self.prop(path, 'Pid')
        ip = self.prop(path, 'IPv4')
        states = self.watch_states(path)
        # start while running
        self.assert_error('org.banger.Error.BadState', self.start, path, mentions=['life'])

        # graceful stop through the agent
        self.vm_call(path, 'Stop', GLib.Variant('(u)', (30,)), timeout=60000)
        self.assertEqual(self.prop(path, 'State'), 'stopped')
        self.assert_released(path, vm_id, pid, disk_kept=True)
        self.assertTrue(self.pump(lambda: 'stopped' in states))
        self.assertEqual(states, ['stopping', 'stopped'])
        # exec on a stopped VM
        self.assert_error('org.banger.Error.BadState', self.exec, path, ['true'],
                          mentions=['life', 'stopped'])
        self.assert_error('org.banger.Error.BadState', self.vm_call, path, 'Stop',
                          GLib.Variant('(u)', (0,)))

        # start again: same disk (a file written before survives), same address
        self.start(path)
        pid2 = self.prop(path, 'Pid')
        self.assertNotEqual(pid2, pid)
        self.assertEqual(self.prop(path, 'IPv4'), ip)
        self.assertEqual(self.exec(path, ['sh', '-c', 'echo kept > /root/mark; sync'])[0], 0)

        # restart: a new VMM and a new boot
        boot = self.prop(path, 'BootId')
        self.vm_call(path, 'Restart', GLib.Variant('(a{sv})', ({},)), timeout=BOOT_TIMEOUT_MS)
        pid3 = self.prop(path, 'Pid')
        self.qemu_pids.add(pid3)
        self.assertEqual(self.prop(path, 'State'), 'running')
        self.assertNotEqual(pid3, pid2)
        self.assertTrue(wait_pid_gone(pid2, 10))
        self.assertNotEqual(self.prop(path, 'BootId'), boot)
        self.assertEqual(self.exec(path, ['cat', '/root/mark'])[1], b'kept\n')

        # kill
        self.vm_call(path, 'Kill')
        self.assertEqual(self.prop(path, 'State'), 'stopped')
        self.assert_released(path, vm_id, pid3, disk_kept=True)

        # a VMM that exits on its own (the guest powers off) is noticed
        self.start(path)
        pid4 = self.prop(path, 'Pid')
        # (SIGTERM: QEMU exits as it does when the guest powers off)
        os.kill(pid4, signal.SIGTERM)
        self.assertTrue(wait_pid_gone(pid4, 10))
        self.assertTrue(self.pump(lambda: self.prop(path, 'State') == 'stopped', 20))
        self.assert_released(path, vm_id, pid4, disk_kept=True)

        # delete a running VM: refused without force, then killed and removed
        self.start(path)
        pid5 = self.prop(path, 'Pid')
        # (whatever else is in its directory, subdirectories too, goes with it)
        os.makedirs(os.path.join(self.vm_dir(vm_id), 'extra', 'deeper'))
        with open(os.path.join(self.vm_dir(vm_id), 'extra', 'deeper', 'file'), 'w') as f:
            f.write('x')
        self.assert_error('org.banger.Error.BadState', self.vm_call, path, 'Delete',
                          GLib.Variant('(a{sv})', ({},)))
        self.vm_call(path, 'Delete', GLib.Variant('(a{sv})', ({'force': GLib.Variant('b', True)},)))
        self.assertTrue(wait_pid_gone(pid5, 10))
        self.assertFalse(self.tap_exists(vm_id))
        self.assertFalse(os.path.exists(self.vm_dir(vm_id)))
        self.assert_error('org.banger.Error.NotFound', self.call, 'FindVM',
                          GLib.Variant('(s)', ('life',)))

        # prune removes stopped VMs with their files, keeps running ones
        a = self.create_vm('keep')
        b = self.create_vm('gone')
        b_id = self.prop(b, 'Id')
        self.start(a)
        self.start(b)
        self.vm_call(b, 'Stop', GLib.Variant('(u)', (30,)), timeout=60000)
        self.assertTrue(os.path.exists(self.vm_dir(b_id)))
        removed = self.call('PruneVMs')[0]
        self.assertEqual(removed, ['gone'])
        self.assertFalse(os.path.exists(self.vm_dir(b_id)))
        self.assertEqual(self.prop(a, 'State'), 'running')


class NetworkTest(VmTestCase):

    def test_three_vms_ping_each_other(self):
        paths = [self.create_vm(n) for n in ('va', 'vb', 'vc')]
        self.start_many(paths)
        ips = [self.prop(p, 'IPv4') for p in paths]
        self.assertEqual(len(set(ips)), 3, ips)
        pids = [self.prop(p, 'Pid') for p in paths]
        self.assertEqual(len(set(pids)), 3)
        for i, p in enumerate(paths):
            other = ips[(i + 1) % 3]
            status, out, err = self.exec(p, ['ping', '-c', '1', '-W', '5', other])
            self.assertEqual(status, 0, out + err)
        # the bridge answers too
        status, out, err = self.exec(paths[0], ['ping', '-c', '1', '-W', '5', '10.77.0.1'])
        self.assertEqual(status, 0, out + err)


class SpoofTest(VmTestCase):
    """Issue 10, finding 6: from inside a real guest, frames from any MAC or
    IPv4 source but the VM's own are dropped at its tap (the helper's table
    bridge banger_guard), while its own traffic passes."""

    def in_echos(self):
        # The test runs in the helper's netns: the bridge's host stack is here.
        with open('/proc/net/snmp') as f:
            rows = [line.split() for line in f if line.startswith('Icmp:')]
        return int(rows[1][rows[0].index('InEchos')])

    def ping_bridge(self, path, *extra):
        before = self.in_echos()
        status, out, err = self.exec(path, ['ping', '-c', '2', '-W', '2', *extra, '10.77.0.1'])
        return status, self.in_echos() - before, out + err

    def test_spoofed_source_dropped(self):
        path = self.create_vm('spoof')
        self.start(path)
        mac = self.prop(path, 'MAC')
        # its own address and MAC reach the host
        status, echos, out = self.ping_bridge(path)
        self.assertEqual(status, 0, out)
        self.assertGreaterEqual(echos, 1)
        # another address of the subnet as the source: nothing arrives
        self.assertEqual(self.exec(path, ['ip', 'addr', 'add', '10.77.0.250/24', 'dev',
                                          'eth0'])[0], 0)
        status, echos, out = self.ping_bridge(path, '-I', '10.77.0.250')
        self.assertNotEqual(status, 0, out)
        self.assertEqual(echos, 0, 'echo requests from a spoofed address reached the host')
        self.assertEqual(self.exec(path, ['ip', 'addr', 'del', '10.77.0.250/24', 'dev',
                                          'eth0'])[0], 0)
        # another MAC: nothing arrives; its own again: it works
        for new_mac, expect_ok in (('52:54:de:ad:be:ef', False), (mac, True)):
            for argv in (['ip', 'link', 'set', 'eth0', 'down'],
                         ['ip', 'link', 'set', 'eth0', 'address', new_mac],
                         ['ip', 'link', 'set', 'eth0', 'up']):
                status, out, err = self.exec(path, argv)
                self.assertEqual(status, 0, out + err)
            status, echos, out = self.ping_bridge(path)
            if expect_ok:
                self.assertEqual(status, 0, out)
            else:
                self.assertNotEqual(status, 0, out)
                self.assertEqual(echos, 0, 'frames from a spoofed MAC reached the host')


class FirewallLifecycleTest(VmTestCase):
    """Issue 11, item 5: each VM's firewall rules (its address in the set
    `vms` of inet banger, commented with its tap, and its chain in bridge
    banger_guard) exist exactly while it runs: after start, stop, kill,
    delete and a bangerd SIGKILL (a VMM that died meanwhile is released by
    the next bangerd's reconcile). `banger system network down` is refused
    while a VM runs, and goes through with --force."""

    def firewall(self):
        """({address: tap} of the set vms, {taps with a guard chain}), or
        None when the tables are absent. This process is in the helper's
        network namespace."""
        res = subprocess.run(['nft', '-j', 'list', 'set', 'inet', 'banger', 'vms'],
                             capture_output=True, text=True)
        if res.returncode != 0:
            return None
        elements = {}
        for item in json.loads(res.stdout)['nftables']:
            for e in item.get('set', {}).get('elem', []):
                elements[e['elem']['val']] = e['elem'].get('comment')
        res = subprocess.run(['nft', '-j', 'list', 'table', 'bridge', 'banger_guard'],
                             capture_output=True, text=True, check=True)
        chains = {item['chain']['name'][len('guard_'):]
                  for item in json.loads(res.stdout)['nftables']
                  if 'chain' in item and item['chain']['name'].startswith('guard_')}
        return elements, chains

    def assert_rules_of(self, running):
        """Rules for exactly the VMs in @running (object paths), all running."""
        want = {}
        for p in running:
            self.assertEqual(self.prop(p, 'State'), 'running')
            want[self.prop(p, 'IPv4')] = 'bg' + self.prop(p, 'Id')[:12]
        state = self.firewall()
        self.assertIsNotNone(state, 'the tables inet banger and bridge banger_guard are gone')
        self.assertEqual(state[0], want, 'NAT/forward set vms')
        self.assertEqual(state[1], set(want.values()), 'guard chains')

    def test_rules_follow_vms(self):
        a, b = self.create_vm('fwa'), self.create_vm('fwb')
        self.start_many([a, b])
        self.assert_rules_of([a, b])
        # stop, start, kill
        self.vm_call(a, 'Stop', GLib.Variant('(u)', (30,)), timeout=60000)
        self.assert_rules_of([b])
        self.start(a)
        self.assert_rules_of([a, b])
        self.vm_call(a, 'Kill')
        self.assert_rules_of([b])

        # network down refused while fwb runs; nothing changed
        res = self.network_down()
        self.assertNotEqual(res.returncode, 0, res.stdout + res.stderr)
        self.assertIn('fwb', res.stderr)
        self.assertIn('--force', res.stderr)
        self.assert_rules_of([b])
        self.assertIsNotNone(self.system.link('banger0'))

        # bangerd SIGKILLed; one VMM dies while it is down: the survivor's
        # rules stay throughout, the dead one's go with the next bangerd's
        # reconcile (which runs before it owns its name, so before the
        # first answer below)
        c = self.create_vm('fwc')
        self.start_many([a, c])
        self.assert_rules_of([a, b, c])
        a_pid = self.prop(a, 'Pid')
        self.assertIsNotNone(self.session.stop_bangerd(signal.SIGKILL))
        state = self.firewall()
        self.assertEqual(len(state[0]), 3, state)
        os.kill(a_pid, signal.SIGKILL)
        self.assertTrue(wait_pid_gone(a_pid, 10))
        self.assertEqual(self.prop(a, 'State'), 'stopped')
        self.assert_rules_of([b, c])

        # delete (of a running VM, forced)
        self.vm_call(b, 'Delete', GLib.Variant('(a{sv})', ({'force': GLib.Variant('b', True)},)))
        self.assert_rules_of([c])

        # --force takes it down with fwc running: both tables, the bridge, the tap
        res = self.network_down()
        self.assertNotEqual(res.returncode, 0)
        self.assertIn('fwc', res.stderr)
        res = self.network_down('--force')
        self.assertEqual(res.returncode, 0, res.stdout + res.stderr)
        self.assertIsNone(self.firewall())
        self.assertIsNone(self.system.link('banger0'))
        self.assertFalse(self.tap_exists(self.prop(c, 'Id')))


def first_lease(vm_id):
    """The address bangerd tries first for @vm_id in 10.77.0.0/24
    (banger_lease_first_candidate: FNV-1a of the id; the bridge's .1 is
    skipped)."""
    h = 2166136261
    for c in vm_id.encode():
        h = ((h ^ c) * 16777619) & 0xffffffff
    host = 1 + h % 254
    return '10.77.0.%d' % (host if host != 1 else 2)


class LeaseClashTest(VmTestCase):
    """Issue 10, finding 6: leases are unique across users. Another VM's tap
    (of another user, as far as this bangerd's store knows: it is not in
    it) already holds the address this VM would lease first; the helper
    refuses that claim and bangerd leases the next one."""

    def helper_call(self, method, args, reply):
        return self.system.call_as_root('org.banger.Helper', '/org/banger/Helper',
                                        'org.banger.Helper', method, args, reply)

    def test_address_held_elsewhere_is_skipped(self):
        path = self.create_vm('clash')
        first = first_lease(self.prop(path, 'Id'))
        other = 'ffffffffffff0000'
        self.helper_call('EnsureNetwork', GLib.Variant('(a{sv})', ({},)), '(s)')
        self.helper_call('CreateTap', GLib.Variant('(sa{sv})', (other, {
            'mac': GLib.Variant('s', '52:54:aa:bb:cc:dd'),
            'ipv4': GLib.Variant('s', first)})), '(s)')
        self.addCleanup(self.helper_call, 'DeleteTap',
                        GLib.Variant('(sa{sv})', (other, {})), '()')
        self.start(path)
        ip = self.prop(path, 'IPv4')
        self.assertRegex(ip, r'^10\.77\.0\.\d+$')
        self.assertNotEqual(ip, first, 'the VM got an address another tap holds')
        status, out, err = self.exec(path, ['ping', '-c', '1', '-W', '5', '10.77.0.1'])
        self.assertEqual(status, 0, out + err)


class RestartSafetyTest(VmTestCase):

    def test_bangerd_sigkill_restart(self):
        paths = [self.create_vm(n) for n in ('ra', 'rb', 'rc')]
        self.start_many(paths)
        before = {p: (self.prop(p, 'Pid'), self.prop(p, 'BootId')) for p in paths}
        dead = paths[2]
        dead_id = self.prop(dead, 'Id')
        dead_pid = before[dead][0]
        self.assertTrue(self.tap_exists(dead_id))

        bangerd = self.session.stop_bangerd(signal.SIGKILL)
        self.assertIsNotNone(bangerd)
        # while bangerd is down, one VMM dies
        os.kill(dead_pid, signal.SIGKILL)
        self.assertTrue(wait_pid_gone(dead_pid, 10))
        for p in paths[:2]:
            self.assertTrue(self.qemu_alive(before[p][0]))

        # re-activated by the next call; reconcile runs before the name is owned
        for p in paths[:2]:
            self.assertEqual(self.prop(p, 'State'), 'running')
            self.assertEqual(self.prop(p, 'Pid'), before[p][0])
            self.assertEqual(self.prop(p, 'BootId'), before[p][1])
            self.assertEqual(self.exec(p, ['true'])[0], 0)
        self.assertNotEqual(self.session.bangerd_pid(), bangerd)
        self.assertEqual(self.prop(dead, 'State'), 'stopped')
        self.assert_released(dead, dead_id, dead_pid)
        # the released lease can be taken again: the VM starts with an address
        self.start(dead)
        self.assertNotEqual(self.prop(dead, 'IPv4'), '')

        # bangerd killed in the middle of a start (QEMU launched, agent not
        # yet answered): the next bangerd adopts the VM, finishes its set-up
        # (the ssh keys reach the guest) and it is running with that pid.
        # A boot (--cold): a restore cut short is stopped instead
        # (docs/warm-start.md, tests/vm/test_warm.py).
        late = self.create_vm('late')
        errors = []

        def starter():
            try:
                self.start(late, {'warm': GLib.Variant('b', False)})
            except DBusError as e:
                errors.append(e)
        t = threading.Thread(target=starter)
        t.start()
        deadline = time.monotonic() + 60
        while self.prop(late, 'Pid') == 0 and time.monotonic() < deadline:
            pass
        pid = self.prop(late, 'Pid')
        self.assertNotEqual(pid, 0)
        self.qemu_pids.add(pid)
        self.session.stop_bangerd(signal.SIGKILL)
        t.join(30)
        self.assertEqual(self.prop(late, 'State'), 'running')
        self.assertEqual(self.prop(late, 'Pid'), pid)
        self.assertNotEqual(self.prop(late, 'BootId'), '')
        status, out, _ = self.exec(late, ['cat', '/root/.ssh/authorized_keys'])
        self.assertEqual(status, 0)
        self.assertIn(b'ssh-ed25519', out)


class NoHelperTest(VmTestCase):

    with_helper = False

    def test_boot_without_helper(self):
        path = self.create_vm('alone')
        self.assertFalse(self.call('Get', GLib.Variant('(ss)', (MANAGER_IFACE, 'HelperAvailable')),
                                   iface=PROPS_IFACE)[0])
        self.start(path)
        self.assertEqual(self.prop(path, 'State'), 'running')
        self.assertEqual(self.prop(path, 'IPv4'), '')
        status, out, _ = self.exec(path, ['cat', '/proc/net/dev'])
        self.assertEqual(status, 0)
        self.assertNotIn(b'eth0', out)
        self.assert_error('org.banger.Error.BadState', self.vm_call, path, 'GetSSHConfig',
                          mentions=['IPv4', 'helper'])
        self.vm_call(path, 'Stop', GLib.Variant('(u)', (30,)), timeout=60000)
        self.assertEqual(self.prop(path, 'State'), 'stopped')


def agent_frame(ftype, payload):
    """One agent protocol frame (docs/agent-protocol.md), stream 0."""
    head = struct.pack('<4sBBHII', b'BNGR', 1, ftype, 0, 0, len(payload))
    head += struct.pack('<I', zlib.crc32(payload))
    return head + struct.pack('<I', zlib.crc32(head)) + payload


def qmp(path, *commands):
    """Runs QMP commands on QEMU's control socket; returns the replies."""
    replies = []
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(30)
        s.connect(path)
        f = s.makefile('rwb')
        json.loads(f.readline())  # greeting
        for cmd in ({'execute': 'qmp_capabilities'},) + commands:
            f.write(json.dumps(cmd).encode() + b'\n')
            f.flush()
            while True:
                msg = json.loads(f.readline())
                if 'event' not in msg:
                    break
            replies.append(msg)
    return replies


class LatePortTest(VmTestCase):
    """A guest whose agent port appears late (a slow boot on a busy host):
    the agent, PID 1, must keep looking for it rather than give up and
    leave the host waiting for a handshake that never comes."""

    with_helper = False

    def console(self, path):
        with open(path, errors='replace') as f:
            return f.read()

    def test_agent_finds_a_late_port(self):
        # A real VM first, for banger's own QEMU command line, image and kernel.
        path = self.create_vm('late')
        self.start(path)
        pid = self.prop(path, 'Pid')
        with open('/proc/%d/cmdline' % pid, 'rb') as f:
            argv = [a.decode() for a in f.read().split(b'\0') if a]
        self.vm_call(path, 'Stop', GLib.Variant('(u)', (30,)), timeout=60000)

        # The same QEMU, but the agent's virtio-serial port is left out.
        i = argv.index('-device', argv.index([a for a in argv if a.startswith('virtserialport')][0]) - 1)
        port = argv[i + 1]
        del argv[i:i + 2]
        argv[argv.index('virtio-serial-pci')] = 'virtio-serial-pci,id=vser'
        opt = lambda flag, prefix: next(a for a in argv[argv.index(flag) + 1:]
                                        if a.startswith(prefix))
        # path=…[,append=on]: the path is the first option after it.
        console = opt('-chardev', 'file,').split('path=')[1].split(',')[0]
        agent_sock = [a for a in argv if a.startswith('socket,id=agent')][0].split('path=')[1]
        agent_sock = agent_sock.split(',')[0]
        control = argv[argv.index('-qmp') + 1].split(':', 1)[1].split(',')[0]
        pidfile = argv[argv.index('-pidfile') + 1]
        subprocess.run(argv, check=True, timeout=30)
        with open(pidfile) as f:
            self.qemu_pids.add(int(f.read()))

        wait_until(lambda: 'still looking' in self.console(console), timeout=120,
                   what='the agent saying it is still looking for its port')
        self.assertEqual(qmp(control, {'execute': 'device_add', 'arguments': {
            'driver': 'virtserialport', 'bus': 'vser.0', 'chardev': 'agent',
            'name': port.split('name=')[1]}})[1], {'return': {}})
        wait_until(lambda: 'found the channel to the host' in self.console(console),
                   timeout=60, what='the agent finding the hot-plugged port')

        # And it serves there: a HELLO is answered with the nonce sent.
        nonce = 0x0123456789abcdef
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(30)
            s.connect(agent_sock)
            s.sendall(agent_frame(0x01, struct.pack('<HIQ', 4, 8, nonce)))
            data = b''
            while struct.pack('<HIQ', 4, 8, nonce) not in data:
                chunk = s.recv(4096)
                self.assertNotEqual(chunk, b'', 'the agent closed the port')
                data += chunk
        self.assertIn(b'BNGR', data)
        qmp(control, {'execute': 'quit'})


class StallTest(VmTestCase):
    """A boot that stalls (under TCG a kernel very rarely stops early in
    boot, printing nothing more): bangerd notices the silent console,
    undoes that launch and boots once more, for the same Start call. The
    stall is made real by pausing the guest's CPUs over QMP at once."""

    with_helper = False

    def test_stalled_boot_is_started_again(self):
        path = self.create_vm('stall')
        vm_dir = self.vm_dir(self.prop(path, 'Id'))
        result = {}

        def start():
            try:
                self.vm_call(path, 'Start', GLib.Variant('(a{sv})', ({},)),
                             timeout=BOOT_TIMEOUT_MS)
                result['ok'] = True
            except Exception as e:  # noqa: BLE001 - asserted below
                result['error'] = e
        thread = threading.Thread(target=start)
        thread.start()
        qmp_sock = os.path.join(vm_dir, 'qmp.sock')
        wait_until(lambda: socket_accepts(qmp_sock), timeout=120, what='the first QEMU')
        with open(os.path.join(vm_dir, 'qemu.pid')) as f:
            first = int(f.read())
        self.qemu_pids.add(first)
        self.assertEqual(qmp(qmp_sock, {'execute': 'stop'})[1], {'return': {}})
        thread.join(timeout=BOOT_TIMEOUT_MS / 1000)
        self.assertFalse(thread.is_alive(), 'Start did not return')
        self.assertEqual(result, {'ok': True})
        self.assertTrue(wait_pid_gone(first, 10), 'the stalled QEMU was left running')
        second = self.prop(path, 'Pid')
        self.qemu_pids.add(second)
        self.assertNotEqual(second, first)
        self.assertEqual(self.prop(path, 'State'), 'running')
        self.assertEqual(self.exec(path, ['echo', 'booted'])[:2], (0, b'booted\n'))
        log = self.session.log()
        self.assertIn('boot stalled', log)
        self.assertIn('starting its VMM once more', log)


class BadInputTest(VmTestCase):

    def assert_nothing_leaked(self, path, vm_id):
        self.assertEqual(self.prop(path, 'State'), 'error')
        self.assertNotEqual(self.prop(path, 'LastError'), '')
        self.assert_released(path, vm_id, disk_kept=False)
        self.assertEqual(self.vm_pids_on_disk(), set())
        self.assertFalse(any(self.qemu_alive(int(p)) for p in os.listdir('/proc')
                             if p.isdigit() and self.vm_dir(vm_id).encode() in
                             self._cmdline(int(p))))

    def _cmdline(self, pid):
        try:
            with open('/proc/%d/cmdline' % pid, 'rb') as f:
                return f.read()
        except OSError:
            return b''

    def test_bad_input(self):
        # unknown image, unknown kernel: refused when the VM is created (the
        # names are checked then), nothing recorded, nothing on disk
        for name, spec, word in (('noimg', {'image': 'nosuchimage'}, 'nosuchimage'),
                                 ('nokern', {'kernel': 'nosuchkernel'}, 'nosuchkernel')):
            self.assert_error('org.banger.Error.NotFound', self.create_vm, name, mentions=[word],
                              **spec)
            self.assert_error('org.banger.Error.NotFound', self.call, 'FindVM',
                              GLib.Variant('(s)', (name,)))
        self.assertEqual(glob.glob(os.path.join(self.session.data_dir, 'vms', '*')), [])

        # more memory than the host has
        path = self.create_vm('huge', memory_mib=262144)
        vm_id = self.prop(path, 'Id')
        self.assert_error('org.banger.Error.InvalidArgument', self.start, path,
                          mentions=['memory', 'huge'])
        self.assert_nothing_leaked(path, vm_id)

        # a guest whose agent does not answer in time: QEMU killed, tap,
        # lease and overlay released
        path = self.create_vm('mute')
        vm_id = self.prop(path, 'Id')
        msg = self.assert_error('org.banger.Error.Failed', self.start, path,
                                {'timeout': GLib.Variant('u', 1)}, mentions=['agent', 'mute'])
        self.assertIn('agent', self.prop(path, 'LastError'), msg)
        self.assert_nothing_leaked(path, vm_id)

        # a guest that dies before its agent runs (a kernel whose initrd is
        # empty cannot mount its root and panics; QEMU exits): the start
        # fails as soon as QEMU is gone, saying so, and leaks nothing
        kernels = glob.glob('/boot/vmlinuz-*')
        self.assertTrue(kernels, 'no host kernel in /boot')
        initrd = os.path.join(self.tmpdir, 'empty-initrd')
        with open(initrd, 'wb') as f:
            f.write(b'\0' * 512)
        self.call('ImportKernel', GLib.Variant('(sa{sv})', (sorted(kernels)[-1], {
            'name': GLib.Variant('s', 'noroot'), 'initrd': GLib.Variant('s', initrd)})),
            timeout=120000)
        crash = self.create_vm('crash', kernel='noroot')
        crash_id = self.prop(crash, 'Id')
        started = time.monotonic()
        msg = self.assert_error('org.banger.Error.Failed', self.start, crash,
                                mentions=['crash', 'VMM exited', 'console', 'Kernel panic'])
        self.assertLess(time.monotonic() - started, 50, 'the 60 s agent timeout was waited out')
        self.assertIn('VMM exited', self.prop(crash, 'LastError'), msg)
        self.assert_nothing_leaked(crash, crash_id)

        # the same VM starts fine afterwards (from "error"); a second start
        # while it runs is BadState; exec after it stopped is BadState
        self.start(path)
        self.assertEqual(self.prop(path, 'LastError'), '')
        self.assert_error('org.banger.Error.BadState', self.start, path, mentions=['running'])
        self.assert_error('org.banger.Error.InvalidArgument', self.exec, path, [])
        self.vm_call(path, 'Kill')
        self.assert_error('org.banger.Error.BadState', self.exec, path, ['true'])

        # Kill while it starts (QEMU up, agent not yet answering): the start
        # is undone and fails with Cancelled, the VM is stopped, nothing kept
        result = {}

        def starter():
            try:
                self.start(path)
            except DBusError as e:
                result['error'] = e
        t = threading.Thread(target=starter)
        t.start()
        deadline = time.monotonic() + 30
        while self.prop(path, 'Pid') == 0 and time.monotonic() < deadline:
            pass
        pid = self.prop(path, 'Pid')
        self.assertNotEqual(pid, 0)
        self.qemu_pids.add(pid)
        self.vm_call(path, 'Kill')
        t.join(60)
        self.assertEqual(result['error'].name, 'org.banger.Error.Cancelled', result)
        self.assertEqual(self.prop(path, 'State'), 'stopped')
        self.assert_released(path, vm_id, pid)

        # Delete with force while it starts: killed, then removed
        t = threading.Thread(target=starter)
        t.start()
        deadline = time.monotonic() + 30
        while self.prop(path, 'State') != 'starting' and time.monotonic() < deadline:
            pass
        self.vm_call(path, 'Delete', GLib.Variant('(a{sv})', ({'force': GLib.Variant('b', True)},)))
        t.join(60)
        self.assertFalse(self.tap_exists(vm_id))
        self.assertFalse(os.path.exists(self.vm_dir(vm_id)))
        self.assertEqual(self.vm_pids_on_disk(), set())


if __name__ == '__main__':
    unittest.main(verbosity=2)
