#!/usr/bin/python3
"""`banger doctor` (Manager.Doctor and the CLI): every check made to fail
for real and to pass. Real parts: bangerd D-Bus activated on a private
session bus, inside a network namespace this test creates (so the bridge,
forwarding and nftables state it reads are the test's own); the real
bangerd-root, activated or started with the real polkitd; real nftables
rules; a real SQLite file damaged on disk; a read-only bind mount (the
meson test runs this file under `unshare -m`); `setarch i686` for a
foreign architecture; real QEMU booting a guest whose agent binary reports
an older version. systemd itself cannot run here: the hardening check's
systemd branch is exercised against FAKE-systemd, a small
org.freedesktop.systemd1 serving the properties systemd would derive from
data/systemd/bangerd-root.service.in (the real thing is in tests/host).

One meson test per test case (tests/doctor/meson.build)."""

import glob
import json
import os
import select
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import unittest

import gi
gi.require_version('Gio', '2.0')
from gi.repository import GLib, Gio  # noqa: E402

from netns import current_netns, enter_netns, leave_netns  # noqa: E402
from session_bus import SessionBus, SystemBus as PlainBus, wait_pid_gone  # noqa: E402
import system_bus  # noqa: E402

MANAGER = 'org.banger.Manager'
MANAGER_PATH = '/org/banger/Manager'
PROPS = 'org.freedesktop.DBus.Properties'
BUILD = os.environ['BANGER_BUILD_ROOT']
SOURCE = os.environ['BANGER_SOURCE_ROOT']
CLI = os.path.join(BUILD, 'src', 'cli', 'banger')
HELPER = os.path.join(BUILD, 'src', 'helper', 'bangerd-root')
AGENT = os.path.join(BUILD, 'src', 'agent', 'banger-agent')
STATUSES = ('ok', 'warn', 'fail', 'skip')
# Ids `banger update` compares before and after an update: they must stay.
STABLE_IDS = {'accelerator', 'qemu', 'qemu-img', 'firecracker', 'helper', 'dns', 'store',
              'default-kernel', 'default-image', 'agent', 'busybox', 'debootstrap', 'ssh',
              'ssh-keygen', 'disk'}
NEW_IDS = {'architecture', 'versions', 'units', 'bus-policy', 'sockets', 'helper-hardening',
           'kvm', 'tun', 'jailer', 'lifecycle', 'vm-defaults', 'disk-space', 'vm-agents',
           'dns-routing', 'forwarding', 'nat', 'firewall', 'ssh-shortcut', 'vm-suspended'}


class ActivatingSystemBus(PlainBus):
    """A private bus of type system whose <servicedir> the test fills:
    dbus-daemon forks activated services itself (no setuid launch helper
    without <servicehelper>)."""

    def __init__(self, tmpdir, env=None):
        super().__init__(tmpdir, env=env)
        self.servicedir = os.path.join(self.tmpdir, 'services')
        os.makedirs(self.servicedir, exist_ok=True)
        # Known before start, so activated services can reach this bus as
        # their system bus.
        self.env['DBUS_SYSTEM_BUS_ADDRESS'] = 'unix:path=' + self.socket

    def _servicedir_xml(self):
        return '<servicedir>%s</servicedir>' % self.servicedir

    def add_service(self, name, exec_line):
        with open(os.path.join(self.servicedir, name + '.service'), 'w') as f:
            f.write('[D-BUS Service]\nName=%s\nExec=%s\nUser=root\n' % (name, exec_line))

    def owner_pid(self, name):
        conn = Gio.DBusConnection.new_for_address_sync(
            self.address, Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT |
            Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION, None, None)
        try:
            return conn.call_sync('org.freedesktop.DBus', '/org/freedesktop/DBus',
                                  'org.freedesktop.DBus', 'GetConnectionUnixProcessID',
                                  GLib.Variant('(s)', (name,)), None, 0, 5000, None)[0]
        except GLib.Error:
            return None
        finally:
            conn.close_sync(None)


class DoctorTestCase(unittest.TestCase):
    """bangerd on a private session bus in a network namespace of its own;
    what it reads of the installation is pointed at files of this test."""

    system_kind = 'none'  # 'none', 'plain', 'activating' or 'polkit'
    agent = AGENT

    def setUp(self):
        self.tmpdir = tempfile.mkdtemp(prefix='banger-doctor-test-')
        os.chmod(self.tmpdir, 0o755)
        self.addCleanup(shutil.rmtree, self.tmpdir, True)
        self._old_netns = current_netns()
        self.addCleanup(leave_netns, self._old_netns)
        self.netns = None
        self.system = None
        system_address = None
        self.helper_conf = os.path.join(self.tmpdir, 'helper.conf')
        self.install_toml = os.path.join(self.tmpdir, 'install.toml')
        self.root = os.path.join(self.tmpdir, 'root')
        os.makedirs(self.root)
        if self.system_kind == 'polkit':
            self.system = system_bus.SystemBus()
            self.system.start()
            self.addCleanup(self._stop_polkit_system)
            self.system.start_helper()
            self.netns = self.system.netns
            self.helper_conf = self.system.helper_conf
            system_address = self.system.address
        else:
            self.netns = 'banger-test-%d' % os.getpid()
            subprocess.run(['ip', 'netns', 'add', self.netns], check=True)
            self.addCleanup(subprocess.run, ['ip', 'netns', 'del', self.netns],
                            capture_output=True)
        enter_netns(self.netns)
        subprocess.run(['ip', 'link', 'set', 'lo', 'up'], check=True)
        with open(self.helper_conf, 'a') as f:
            f.write('\n[update]\ninstall_toml=%s\n' % self.install_toml)
        if self.system_kind == 'plain':
            self.system = PlainBus(self.tmpdir).start()
            self.addCleanup(self.system.stop)
            system_address = self.system.address
        elif self.system_kind == 'activating':
            self.system = ActivatingSystemBus(self.tmpdir)
            self.system.start()
            self.addCleanup(self._stop_activating_system)
            system_address = self.system.address
        env = dict(os.environ)
        env.update({
            'BANGER_AGENT': self.agent,
            'BANGER_ACCEL': 'tcg',
            'BANGER_HELPER_CONF': self.helper_conf,
            'BANGER_SYSTEM_DATA_DIR': os.path.join(BUILD, 'data', 'system'),
            'BANGER_SYSTEM_ROOT': self.root,
        })
        self.session = SessionBus(self.tmpdir, system_bus_address=system_address,
                                  bangerd_args=['-vv'], env=env)
        self.session.start()
        self.addCleanup(self._stop_session)
        self.conn = self.session.connect()
        self.addCleanup(self.conn.close_sync, None)

    def _stop_session(self):
        # VMMs outlive bangerd by design: each one this test started, by pid.
        for pidfile in glob.glob(os.path.join(self.session.data_dir, 'vms', '*', 'qemu.pid')):
            try:
                with open(pidfile) as f:
                    pid = int(f.read().strip())
                os.kill(pid, signal.SIGKILL)
                wait_pid_gone(pid, 5)
            except (OSError, ValueError):
                pass
        self.session.stop_bangerd()
        self.session.stop()
        if self._failed():
            sys.stderr.write('===== session bus and bangerd =====\n' + self.session.log())

    def _stop_polkit_system(self):
        if self._failed():
            sys.stderr.write(self.system.logs())
        self.system.stop()

    def _stop_activating_system(self):
        pid = self.system.owner_pid('org.banger.Helper')
        if pid:
            os.kill(pid, signal.SIGTERM)
            wait_pid_gone(pid, 10)
        if self._failed():
            sys.stderr.write('===== system bus =====\n' + self.system.log())
        self.system.stop()

    def _failed(self):
        outcome = getattr(self, '_outcome', None)
        result = getattr(outcome, 'result', None)
        errors = getattr(result, 'errors', []) + getattr(result, 'failures', [])
        return bool(errors) or not getattr(outcome, 'success', True)

    # ---- calls ------------------------------------------------------------

    def call(self, method, args=None, path=MANAGER_PATH, iface=MANAGER, timeout=120000):
        return self.conn.call_sync(MANAGER, path, iface, method, args, None,
                                   Gio.DBusCallFlags.NONE, timeout, None).unpack()

    def doctor(self):
        rows = self.call('Doctor')[0]
        for row in rows:
            self.assertIn(row[1], STATUSES, row)
            self.assertTrue(row[2], row)
            if row[1] != 'ok':
                self.assertTrue(row[3], 'a non-ok row without a hint: %r' % (row,))
        return {r[0]: r[1:] for r in rows}

    def version(self):
        return self.call('Get', GLib.Variant('(ss)', (MANAGER, 'Version')), iface=PROPS)[0]

    def cli(self, *args):
        env = dict(self.session.env)
        env['DBUS_SESSION_BUS_ADDRESS'] = self.session.address
        return subprocess.run([CLI, *args], env=env, capture_output=True, text=True,
                              timeout=180)


class DoctorTest(DoctorTestCase):

    def test_rows_hints_and_json(self):
        rows = self.doctor()
        self.assertLessEqual(STABLE_IDS | NEW_IDS, set(rows), 'ids missing')
        # No systemd here: the hardening check says it does not apply.
        self.assertEqual(rows['helper-hardening'][0], 'skip')
        self.assertIn('not applicable', rows['helper-hardening'][1])
        # No system bus at all: the helper cannot be reached, and says what that costs.
        self.assertEqual(rows['helper'][0], 'warn')
        self.assertIn('network', rows['helper'][1])
        self.assertEqual(rows['architecture'][0], 'ok')
        self.assertIn('x86_64', rows['architecture'][1])
        self.assertEqual(rows['qemu'][0], 'ok')
        self.assertRegex(rows['qemu'][1], r'QEMU \d+\.\d+\.\d+')
        self.assertIn('7.0.0', rows['qemu'][1])  # the supported range is stated
        self.assertEqual(rows['store'][0], 'ok')
        self.assertIn('integrity checked, writable', rows['store'][1])
        self.assertEqual(rows['lifecycle'][0], 'ok', rows['lifecycle'])
        self.assertEqual(rows['sockets'][0], 'ok', rows['sockets'])
        # Nothing of the network exists in this fresh namespace yet.
        self.assertEqual(rows['nat'][0], 'ok', rows['nat'])
        self.assertEqual(rows['firewall'][0], 'ok', rows['firewall'])

        res = self.cli('doctor', '--json')
        data = json.loads(res.stdout)
        self.assertEqual(data[0]['id'], 'cli-version')
        self.assertEqual(data[0]['status'], 'ok')
        self.assertEqual({d['id'] for d in data[1:]}, set(rows))
        for d in data:
            self.assertEqual(set(d), {'id', 'status', 'message', 'hint'})
            if d['status'] != 'ok':
                self.assertTrue(d['hint'], d)
        failing = any(d['status'] == 'fail' for d in data)
        self.assertEqual(res.returncode, 1 if failing else 0, res.stderr)
        table = self.cli('doctor')
        self.assertIn('CHECK', table.stdout)
        self.assertIn('helper-hardening', table.stdout)

    def test_stale_install_record(self):
        version = self.version()
        row = self.doctor()['versions']
        self.assertEqual(row[0], 'ok', row)
        self.assertIn('no install record', row[1])
        # An install record of another release: the programs were replaced
        # behind banger update's back, or the record is stale.
        with open(self.install_toml, 'w') as f:
            f.write('# What banger update installed (bangerd-root writes this file).\n'
                    'version = "0.0.1"\ncommit = "0123456789ab"\n'
                    'built_at = "2030-01-02T03:04:05Z"\n')
        row = self.doctor()['versions']
        self.assertEqual(row[0], 'warn', row)
        self.assertIn('0.0.1', row[1])
        self.assertIn(self.install_toml, row[1])
        self.assertIn('banger update', row[2])
        # The record of this very release: no drift.
        with open(self.install_toml, 'w') as f:
            f.write('version = "%s"\ncommit = "0123456789ab"\n' % version)
        row = self.doctor()['versions']
        self.assertEqual(row[0], 'ok', row)
        self.assertIn('install record the same', row[1])
        # An update in progress (the swap done, not finished) is said so.
        with open(self.install_toml + '.pending', 'w') as f:
            f.write('version = "9.9.9"\n')
        row = self.doctor()['versions']
        self.assertEqual(row[0], 'warn', row)
        self.assertIn('9.9.9', row[1])

    def test_corrupt_store(self):
        for name in ('one', 'two', 'three'):
            self.call('CreateVM', GLib.Variant('(a{sv})', ({'name': GLib.Variant('s', name)},)))
        self.assertEqual(self.doctor()['store'][0], 'ok')
        db_path = os.path.join(self.session.data_dir, 'banger.db')
        # bangerd checks the file when it opens it (and refuses to start on
        # a damaged one), so the damage comes while it runs, as a failing
        # disk would do it: everything checkpointed into the main file,
        # then garbage over the b-tree page of an index of the VMs.
        db = sqlite3.connect(db_path)
        page_size = db.execute('PRAGMA page_size').fetchone()[0]
        busy, _, _ = db.execute('PRAGMA wal_checkpoint(TRUNCATE)').fetchone()
        self.assertEqual(busy, 0)
        rootpage = db.execute("SELECT rootpage FROM sqlite_master WHERE type = 'index' "
                              "AND tbl_name = 'vms' ORDER BY rootpage DESC LIMIT 1").fetchone()[0]
        db.close()
        fd = os.open(db_path, os.O_WRONLY)
        try:
            os.pwrite(fd, b'\xa5' * 64, (rootpage - 1) * page_size)
            os.fsync(fd)
        finally:
            os.close(fd)
        row = self.doctor()['store']
        self.assertEqual(row[0], 'fail', row)
        self.assertIn('damaged', row[1])
        self.assertIn('.recover', row[2])

    def test_store_read_only(self):
        # This test runs in a mount namespace of its own (`unshare -m`):
        # bangerd's data directory becomes a read-only bind mount after
        # bangerd opened its database.
        self.assertEqual(self.doctor()['store'][0], 'ok')
        data = self.session.data_dir
        subprocess.run(['mount', '--bind', data, data], check=True)
        self.addCleanup(subprocess.run, ['umount', '-l', data], capture_output=True)
        subprocess.run(['mount', '-o', 'remount,bind,ro', data], check=True)
        row = self.doctor()['store']
        self.assertEqual(row[0], 'fail', row)
        self.assertIn('not writable', row[1])
        self.assertIn('writable', row[2])
        subprocess.run(['umount', data], check=True)
        self.assertEqual(self.doctor()['store'][0], 'ok')

    def test_system_files(self):
        rows = self.doctor()
        self.assertEqual(rows['units'][0], 'warn', rows['units'])
        self.assertIn('not installed', rows['units'][1])
        self.assertEqual(rows['units'][2], 'sudo banger system install')
        self.assertEqual(rows['bus-policy'][0], 'warn', rows['bus-policy'])
        # What `banger system install` would write, byte for byte.
        targets = {
            'bangerd-root.service': 'etc/systemd/system/bangerd-root.service',
            'bangerd.service': 'etc/systemd/user/bangerd.service',
            'org.banger.Helper.conf': 'etc/dbus-1/system.d/org.banger.Helper.conf',
            'org.banger.Helper.service': 'usr/share/dbus-1/system-services/org.banger.Helper.service',
            'org.banger.Manager.service': 'usr/share/dbus-1/services/org.banger.Manager.service',
            'org.banger.policy': 'usr/share/polkit-1/actions/org.banger.policy',
            '50-org.banger.rules': 'etc/polkit-1/rules.d/50-org.banger.rules',
        }
        for src, dst in targets.items():
            path = os.path.join(self.root, dst)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            shutil.copyfile(os.path.join(BUILD, 'data', 'system', src), path)
            os.chmod(path, 0o644)
        rows = self.doctor()
        self.assertEqual(rows['units'][0], 'ok', rows['units'])
        self.assertEqual(rows['bus-policy'][0], 'ok', rows['bus-policy'])
        # A unit from another build.
        with open(os.path.join(self.root, targets['bangerd-root.service']), 'a') as f:
            f.write('# edited\n')
        row = self.doctor()['units']
        self.assertEqual(row[0], 'warn', row)
        self.assertIn('bangerd-root.service', row[1])
        self.assertIn('different', row[1])
        # A polkit rule anyone may write is a way to root.
        os.chmod(os.path.join(self.root, targets['50-org.banger.rules']), 0o666)
        row = self.doctor()['bus-policy']
        self.assertEqual(row[0], 'fail', row)
        self.assertIn('50-org.banger.rules', row[1])
        self.assertIn('chmod', row[2])

    def test_dns_port_owner(self):
        # The port taken before bangerd starts (by this test, in its netns):
        # the responder stays off and the doctor names who holds the port.
        import socket
        taken = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        taken.bind(('127.0.0.1', 42069))
        self.addCleanup(taken.close)
        row = self.doctor()['dns']
        self.assertEqual(row[0], 'warn', row)
        self.assertIn('held by pid %d' % os.getpid(), row[1])
        self.assertIn('[dns] port=', row[2])
        self.assertEqual(self.doctor()['dns-routing'][0], 'skip')
        # Once free, bangerd takes it (it retries every 5 s) and owns it.
        taken.close()
        system_bus.wait_until(lambda: self.doctor()['dns'][0] == 'ok', 30.0,
                              'the responder to take the port')
        self.assertIn("the port is bangerd's, pid %d" % self.session.bangerd_pid(),
                      self.doctor()['dns'][1])

    def test_socket_permissions(self):
        self.assertEqual(self.doctor()['sockets'][0], 'ok')
        vm_dir = os.path.join(self.session.data_dir, 'vms', '0123456789abcdef')
        os.makedirs(vm_dir)
        import socket
        path = os.path.join(vm_dir, 'qmp.sock')
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(path)
        self.addCleanup(s.close)
        os.chmod(path, 0o755)
        self.assertEqual(self.doctor()['sockets'][0], 'ok')
        os.chmod(path, 0o777)
        row = self.doctor()['sockets']
        self.assertEqual(row[0], 'fail', row)
        self.assertIn('qmp.sock', row[1])

    def test_ssh_shortcut(self):
        """"ssh-shortcut": warn until `banger ssh-config` has set it up, ok
        then, warn again for an edited banger file and for an Include moved
        below a Host line (each time through the real files the CLI writes
        and the HOME bangerd runs with), ok after `banger ssh-config`
        repairs it, warn after --remove."""
        home = self.session.env['HOME']
        config = os.path.join(home, '.ssh', 'config')
        shortcut = os.path.join(self.session.env['XDG_CONFIG_HOME'], 'banger', 'ssh_config')

        def row():
            r = self.doctor()['ssh-shortcut']
            if r[0] != 'ok':
                self.assertEqual(r[0], 'warn', r)
                self.assertIn('banger ssh-config', r[2])
            return r

        # no ~/.ssh/config at all
        r = row()
        self.assertEqual(r[0], 'warn')
        self.assertIn(config, r[1])
        # a config of the user's own, without the Include
        os.makedirs(os.path.dirname(config), mode=0o700)
        with open(config, 'w') as f:
            f.write('Host example.org\n    User alice\n')
        r = row()
        self.assertEqual(r[0], 'warn')
        self.assertIn('does not include ' + shortcut, r[1])
        res = self.cli('ssh-config')
        self.assertEqual(res.returncode, 0, res.stderr)
        r = row()
        self.assertEqual(r[0], 'ok', r)
        self.assertIn(shortcut, r[1])
        # banger's file edited by hand: out of date
        with open(shortcut, 'a') as f:
            f.write('    ForwardAgent yes\n')
        r = row()
        self.assertEqual(r[0], 'warn')
        self.assertIn('out of date', r[1])
        self.assertEqual(self.cli('ssh-config').returncode, 0)
        self.assertEqual(row()[0], 'ok')
        # the Include moved below the user's Host block: it only applies there
        with open(config) as f:
            lines = f.read().splitlines(True)
        with open(config, 'w') as f:
            f.write(''.join(lines[2:] + lines[:2]))
        r = row()
        self.assertEqual(r[0], 'warn')
        self.assertIn('after a Host or Match line', r[1])
        self.assertEqual(self.cli('ssh-config').returncode, 0)
        self.assertEqual(row()[0], 'ok')
        with open(config) as f:
            self.assertTrue(f.read().endswith('Host example.org\n    User alice\n'))
        # removed again
        self.assertEqual(self.cli('ssh-config', '--remove').returncode, 0)
        self.assertEqual(row()[0], 'warn')
        with open(config) as f:
            self.assertEqual(f.read(), 'Host example.org\n    User alice\n')


class MountTest(DoctorTestCase):
    """Cases run in a mount namespace of their own (`unshare -m`, see
    tests/doctor/meson.build): what bangerd sees of /dev and of its disk is
    changed with mounts before its first start."""

    def bind_over(self, path, source):
        # A machine without the device already looks the way the test wants
        # (some of these machines have no /dev/kvm): nothing to mount over.
        if not os.path.exists(path):
            return
        subprocess.run(['mount', '--bind', source, path], check=True)
        self.addCleanup(subprocess.run, ['umount', '-l', path], capture_output=True)

    def test_devices_missing(self):
        # A regular file where the character devices were: what a host
        # without the kvm or tun module looks like to bangerd.
        empty = os.path.join(self.tmpdir, 'not-a-device')
        open(empty, 'w').close()
        self.bind_over('/dev/kvm', empty)
        self.bind_over('/dev/net/tun', empty)
        rows = self.doctor()
        self.assertEqual(rows['kvm'][0], 'warn', rows['kvm'])
        self.assertIn('no /dev/kvm', rows['kvm'][1])
        self.assertIn('kvm_intel', rows['kvm'][2])
        self.assertEqual(rows['tun'][0], 'warn', rows['tun'])
        self.assertIn('modprobe tun', rows['tun'][2])

    def test_disk_nearly_full(self):
        # The data and cache directories on a 512 MiB file system.
        home = os.path.dirname(self.session.data_dir)
        subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=512m,mode=0700', 'tmpfs', home],
                       check=True)
        self.addCleanup(subprocess.run, ['umount', '-l', home], capture_output=True)
        row = self.doctor()['disk-space']
        self.assertEqual(row[0], 'fail', row)
        self.assertIn('0.5 GiB free', row[1])
        self.assertIn('prune', row[2])


class OldQemuTest(DoctorTestCase):
    """A QEMU older than the supported range: a stand-in program (BANGER_QEMU,
    the qemu driver's own override) that prints what QEMU 5.2 prints."""

    def setUp(self):
        self._qemu_dir = tempfile.mkdtemp(prefix='banger-doctor-qemu-')
        self.addCleanup(shutil.rmtree, self._qemu_dir, True)
        qemu = os.path.join(self._qemu_dir, 'qemu-system-x86_64')
        with open(qemu, 'w') as f:
            f.write('#!/bin/sh\necho "QEMU emulator version 5.2.0 (Debian 1:5.2+dfsg-11)"\n')
        os.chmod(qemu, 0o755)
        os.environ['BANGER_QEMU'] = qemu
        self.addCleanup(os.environ.pop, 'BANGER_QEMU', None)
        super().setUp()

    def test_qemu_too_old(self):
        row = self.doctor()['qemu']
        self.assertEqual(row[0], 'fail', row)
        self.assertIn('5.2.0', row[1])
        self.assertIn('older than the oldest supported, 7.0.0', row[1])
        self.assertTrue(row[2])


class ArchitectureTest(DoctorTestCase):
    """Run under `setarch i686` (tests/doctor/meson.build): every process of
    the test, bangerd included, sees a 32-bit machine from uname()."""

    def test_foreign_architecture(self):
        row = self.doctor()['architecture']
        self.assertEqual(row[0], 'fail', row)
        self.assertIn('i686', row[1])
        self.assertIn('x86_64', row[2])


class HelperActivationTest(DoctorTestCase):
    system_kind = 'activating'

    def test_helper_not_installed(self):
        row = self.doctor()['helper']
        self.assertEqual(row[0], 'warn', row)
        self.assertIn('not installed', row[1])
        self.assertIn('system install', row[2])

    def test_helper_cannot_start(self):
        self.system.add_service('org.banger.Helper', '/bin/false')
        row = self.doctor()['helper']
        self.assertEqual(row[0], 'fail', row)
        self.assertIn('cannot start', row[1])
        self.assertIn('journalctl', row[2])

    def test_helper_installed_starts_on_demand(self):
        self.system.add_service('org.banger.Helper', '%s --config %s --idle-timeout 600'
                                % (HELPER, self.helper_conf))
        self.assertIsNone(self.system.owner_pid('org.banger.Helper'))
        rows = self.doctor()
        self.assertEqual(rows['helper'][0], 'ok', rows['helper'])
        self.assertIn('starts on demand', rows['helper'][1])
        self.assertIsNotNone(self.system.owner_pid('org.banger.Helper'))
        # Same build: no drift between bangerd and bangerd-root.
        self.assertEqual(rows['versions'][0], 'ok', rows['versions'])
        self.assertIn('bangerd-root ' + self.version(), rows['versions'][1])
        # Running now: answered without activation.
        self.assertIn('answers', self.doctor()['helper'][1])


class FirewallTest(DoctorTestCase):
    """The real helper sets up the bridge, forwarding and `inet banger` in
    this test's namespace; then another firewall's table gets in the way."""

    system_kind = 'polkit'

    def nft(self, *args):
        subprocess.run(['nft', *args], check=True)

    def test_forward_drop_policy(self):
        self.system.call_as_root('org.banger.Helper', '/org/banger/Helper', 'org.banger.Helper',
                                 'EnsureNetwork', GLib.Variant('(a{sv})', ({},)))
        rows = self.doctor()
        for check in ('nat', 'forwarding', 'firewall', 'helper'):
            self.assertEqual(rows[check][0], 'ok', rows[check])
        self.assertIn('masquerade', rows['nat'][1])
        # Another firewall with a drop policy on the forward hook (what
        # Docker or a distribution's default ruleset installs).
        self.nft('add', 'table', 'ip', 'filter')
        self.nft('add', 'chain', 'ip', 'filter', 'FORWARD',
                 '{ type filter hook forward priority 0; policy drop; }')
        row = self.doctor()['firewall']
        self.assertEqual(row[0], 'fail', row)
        self.assertIn('ip filter FORWARD', row[1])
        self.assertIn('iifname "banger0" accept', row[2])
        # Letting the bridge through in that chain cures it.
        self.nft('add', 'rule', 'ip', 'filter', 'FORWARD', 'iifname', 'banger0', 'accept')
        self.assertEqual(self.doctor()['firewall'][0], 'ok')
        # banger's own table flushed away by a firewall reload.
        self.nft('delete', 'table', 'inet', 'banger')
        row = self.doctor()['nat']
        self.assertEqual(row[0], 'fail', row)
        self.assertIn('inet banger is missing', row[1])
        # Forwarding turned off behind the helper's back.
        with open('/proc/sys/net/ipv4/ip_forward', 'w') as f:
            f.write('0\n')
        row = self.doctor()['forwarding']
        self.assertEqual(row[0], 'fail', row)


def start_fake(test, script, *args):
    """Starts a fake of tests/doctor on the test's private system bus and
    waits for its "ready" line; returns a function that stops it."""
    argv = ['/usr/bin/python3', os.path.join(SOURCE, 'tests', 'doctor', script), *args]
    env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=test.system.address)
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE)
    ready, _, _ = select.select([proc.stdout], [], [], 30)
    test.assertTrue(ready and proc.stdout.readline() == b'ready\n', script + ' did not start')

    def stop():
        if proc.poll() is None:
            proc.terminate()
            proc.wait(10)
        proc.stdout.close()
    test.addCleanup(stop)
    return stop


class DnsRoutingTest(DoctorTestCase):
    """The ~vm route as systemd-resolved reports it for the bridge, from
    FAKE-resolved (tests/doctor/fake-resolved-links.py)."""

    system_kind = 'plain'

    def test_dns_routing(self):
        rows = self.doctor()
        self.assertEqual(rows['dns'][0], 'ok', rows['dns'])
        # No resolved on the bus: names resolve only for who asks bangerd.
        row = rows['dns-routing']
        self.assertEqual(row[0], 'warn', row)
        self.assertIn('systemd-resolved does not run', row[1])
        self.assertIn('docs/dns.md', row[2])
        subprocess.run(['ip', 'link', 'add', 'banger0', 'type', 'bridge'], check=True)
        # resolved runs but has no route on the bridge (it restarted, say).
        stop = start_fake(self, 'fake-resolved-links.py', json.dumps({'dns': [], 'domains': []}))
        row = self.doctor()['dns-routing']
        self.assertEqual(row[0], 'warn', row)
        self.assertIn('no ~vm route to 127.0.0.1:42069 on banger0', row[1])
        self.assertIn('start a VM', row[2])
        stop()
        # What the helper's ConfigureDNS sets.
        start_fake(self, 'fake-resolved-links.py', json.dumps(
            {'dns': [[2, [127, 0, 0, 1], 42069, '']], 'domains': [['vm', True]]}))
        row = self.doctor()['dns-routing']
        self.assertEqual(row[0], 'ok', row)
        self.assertIn('127.0.0.1:42069 through banger0', row[1])


class HardeningTest(DoctorTestCase):
    """The helper unit's hardening as systemd reports it, from FAKE-systemd
    (tests/doctor/fake-systemd.py) serving what systemd derives from the
    unit file this build installs: banger's unit passes, so the doctor's
    table (src/service/doctor/doctor-install.c) cannot ask for more than the unit
    sets; a drop-in that weakens it is named."""

    system_kind = 'plain'

    def fake_systemd(self, overrides=None):
        argv = ['/usr/bin/python3', os.path.join(SOURCE, 'tests', 'doctor', 'fake-systemd.py'),
                os.path.join(SOURCE, 'data', 'systemd', 'bangerd-root.service.in'),
                json.dumps(overrides or {})]
        env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=self.system.address)
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE)
        ready, _, _ = select.select([proc.stdout], [], [], 30)
        self.assertTrue(ready and proc.stdout.readline() == b'ready\n', 'FAKE-systemd did not start')

        def stop():
            proc.terminate()
            proc.wait(10)
            proc.stdout.close()
        return stop

    def test_helper_unit_hardening(self):
        stop = self.fake_systemd()
        row = self.doctor()['helper-hardening']
        self.assertEqual(row[0], 'ok', row)
        self.assertIn('all 15 hardening settings', row[1])
        stop()
        stop = self.fake_systemd({'NoNewPrivileges': False, 'ProtectSystem': 'no',
                                  'CapabilityBoundingSet': (1 << 16) | (1 << 12)})
        self.addCleanup(stop)
        row = self.doctor()['helper-hardening']
        self.assertEqual(row[0], 'warn', row)
        self.assertIn('NoNewPrivileges=no', row[1])
        self.assertIn('ProtectSystem=no', row[1])
        self.assertIn('CapabilityBoundingSet', row[1])
        self.assertIn('systemctl cat bangerd-root.service', row[2])


def old_agent(tmpdir, version):
    """A copy of the built agent whose HELLO reports an older release: the
    version string (its only occurrence in the binary) overwritten with
    one of the same length that sorts lower."""
    with open(AGENT, 'rb') as f:
        data = f.read()
    needle = b'\0' + version.encode() + b'\0'
    assert data.count(needle) == 1, 'agent version string not found once'
    older = ('0.0.' + '0' * (len(version) - 4)) if len(version) >= 5 else None
    assert older and older < version
    path = os.path.join(tmpdir, 'banger-agent-old')
    with open(path, 'wb') as f:
        f.write(data.replace(needle, b'\0' + older.encode() + b'\0'))
    os.chmod(path, 0o755)
    return path, older


class OldAgentTest(DoctorTestCase):
    """A real guest (QEMU, TCG) whose image carries an agent reporting an
    older release: it starts, execs, stops and starts again, and the doctor
    warns about it while it runs. No helper: the VM has no network, which
    this case does not need."""

    system_kind = 'plain'
    BOOT_MS = 240000

    def setUp(self):
        self._agent_dir = tempfile.mkdtemp(prefix='banger-doctor-agent-')
        self.addCleanup(shutil.rmtree, self._agent_dir, True)
        self.agent, self.old_version = old_agent(self._agent_dir, version_of_build())
        super().setUp()

    def exec(self, path, argv):
        in_r, in_w = os.pipe()
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        os.close(in_w)
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
        fds = Gio.UnixFDList.new()
        for fd in (in_r, out_w, err_w):
            fds.append(fd)
            os.close(fd)
        try:
            reply, _ = self.conn.call_with_unix_fd_list_sync(
                MANAGER, path, 'org.banger.VM', 'Exec',
                GLib.Variant('(asa{sv}hhh)', (argv, {'tty': GLib.Variant('b', False)}, 0, 1, 2)),
                None, Gio.DBusCallFlags.NONE, 60000, fds, None)
        finally:
            for fd in fds.steal_fds():
                os.close(fd)
            for t in readers:
                t.join(30)
        return reply.unpack()[0], b''.join(chunks[out_r])

    def vm(self, path, method, args=None, timeout=120000):
        return self.call(method, args, path=path, iface='org.banger.VM', timeout=timeout)

    def state(self, path):
        return self.call('Get', GLib.Variant('(ss)', ('org.banger.VM', 'State')), path=path,
                         iface=PROPS)[0]

    def test_old_agent_vm(self):
        path = self.call('CreateVM', GLib.Variant('(a{sv})', (
            {'name': GLib.Variant('s', 'old')},)))[0]
        for round_ in (1, 2):
            self.vm(path, 'Start', GLib.Variant('(a{sv})', ({},)), timeout=self.BOOT_MS)
            self.assertEqual(self.state(path), 'running')
            agent = self.call('Get', GLib.Variant('(ss)', ('org.banger.VM', 'AgentVersion')),
                              path=path, iface=PROPS)[0]
            self.assertEqual(agent, self.old_version)
            status, out = self.exec(path, ['echo', 'round %d' % round_])
            self.assertEqual((status, out), (0, b'round %d\n' % round_))
            rows = self.doctor()
            row = rows['vm-agent:old']
            self.assertEqual(row[0], 'warn', row)
            self.assertIn(self.old_version, row[1])
            self.assertIn(self.version(), row[1])
            self.assertIn('image', row[2])
            self.assertEqual(rows['vm-agents'][0], 'warn', rows['vm-agents'])
            self.vm(path, 'Stop', GLib.Variant('(u)', (30,)), timeout=90000)
            self.assertEqual(self.state(path), 'stopped')
            # Not running: nothing to warn about.
            rows = self.doctor()
            self.assertNotIn('vm-agent:old', rows)
            self.assertEqual(rows['vm-agents'][0], 'ok', rows['vm-agents'])


def version_of_build():
    """PACKAGE_VERSION, from the build's config.h."""
    with open(os.path.join(BUILD, 'config.h')) as f:
        for line in f:
            if line.startswith('#define PACKAGE_VERSION'):
                return line.split('"')[1]
    raise RuntimeError('no PACKAGE_VERSION in config.h')


if __name__ == '__main__':
    unittest.main(argv=[sys.argv[0]] + sys.argv[1:], verbosity=2)
