#!/usr/bin/python3
"""bangerd driving Firecracker, direct and jailed, against the FAKE
Firecracker and the FAKE jailer (tests/fakes/: Firecracker cannot run
without KVM). Everything else is real: bangerd (D-Bus activated on a
private session bus), bangerd-root and polkitd on a private system bus,
the helper's bridge and taps inside a network namespace this test creates,
the real banger-agent behind the fake's hybrid vsock (through
fake-guest-agent, which keeps the agent's SETUP away from the host's ssh
files).

The world is tests/vm's (VmTestCase), with a helper whose config has a
[jail] group and a bangerd whose config says [firecracker] jailer=true for
the jailed cases. One meson test per test case (meson.build)."""

import glob
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import shutil
import unittest

sys.path.insert(0, os.path.join(os.environ['BANGER_SOURCE_ROOT'], 'tests', 'vm'))

import gi  # noqa: E402
gi.require_version('Gio', '2.0')
from gi.repository import GLib  # noqa: E402

from session_bus import SessionBus, wait_pid_gone  # noqa: E402
from system_bus import SystemBus, build_root, source_root  # noqa: E402
import loopdev  # noqa: E402
from netns import enter_netns  # noqa: E402
from test_vm import VmTestCase  # noqa: E402

KERNEL_TIMEOUT_MS = 180000


def cmdline(pid):
    with open(f'/proc/{pid}/cmdline', 'rb') as f:
        return f.read().decode(errors='replace').split('\0')[:-1]


def descendants(pid):
    """Every process below @pid (the fake's agent and its wrapper)."""
    children = {}
    for stat in glob.glob('/proc/[0-9]*/stat'):
        try:
            with open(stat) as f:
                text = f.read()
        except OSError:
            continue
        fields = text[text.rindex(')') + 2:].split()
        children.setdefault(int(fields[1]), []).append(int(stat.split('/')[2]))
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def kill_tree(pid):
    """SIGKILL to a fake VMM and what it started (a SIGKILLed fake cannot
    end its agent itself)."""
    below = descendants(pid)
    for p in [pid] + below:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass
    for p in [pid] + below:
        wait_pid_gone(p, 5)


class FcTestCase(VmTestCase):
    jailed = False
    # The helper's [storage] on the FAKE dmsetup (real loop devices) with a fake
    # dm_control (tests/fakes/fake_dm_state.py); without it the helper has
    # no device-mapper (these machines have none) and answers Unsupported.
    fake_dm = False
    # Test switches of the FAKE Firecracker (FAKE_FIRECRACKER_TEST_FLAGS,
    # tests/fakes/fake-firecracker.py) per test method: a wedged guest.
    fake_flags = {}

    def setUp(self):
        self.tmpdir = tempfile.mkdtemp(prefix='banger-fc-test-')
        os.chmod(self.tmpdir, 0o755)
        if not os.environ.get('BANGER_TEST_KEEP'):
            self.addCleanup(shutil.rmtree, self.tmpdir, True)
        self._old_netns = os.open('/proc/self/ns/net', os.O_RDONLY)
        self.addCleanup(self._leave_netns)
        self.vmm_pids = set()
        self.qemu_pids = set()
        self.system = SystemBus()
        self.system.start()
        self.addCleanup(self._stop_system)

        # The jail is named after Firecracker's file name, as the jailer does.
        bindir = os.path.join(self.tmpdir, 'bin')
        os.makedirs(bindir)
        self.firecracker = os.path.join(bindir, 'firecracker')
        os.symlink(os.path.join(source_root(), 'tests', 'fakes', 'fake-firecracker.py'),
                   self.firecracker)
        self.base = os.path.join(self.tmpdir, 'j')
        os.makedirs(self.base, mode=0o755)
        # A subclass may run another guest behind the fake (tests/vm/test_hostile_guest.py).
        guest = getattr(self, 'guest_agent', None) or os.path.join(
            source_root(), 'tests', 'firecracker', 'fake-guest-agent')

        self.system.netns = 'banger-test-%d' % os.getpid()
        subprocess.run(['ip', 'netns', 'add', self.system.netns], check=True)
        self.system.ns_run(['ip', 'link', 'set', 'lo', 'up'])
        data = os.path.join(self.tmpdir, 'home', 'data', 'banger')
        self.helper_conf = os.path.join(self.tmpdir, 'helper.conf')
        with open(self.helper_conf, 'w') as f:
            f.write('[network]\nbridge=banger0\naddress=10.77.0.1/24\n[jail]\n'
                    f'jailer={os.path.join(source_root(), "tests", "fakes", "fake-jailer")}\n'
                    f'firecracker={self.firecracker}\nchroot_base={self.base}\n'
                    f'user_dirs={data}\n')
            if self.fake_dm:
                self.dm_state = os.path.join(self.tmpdir, 'fake-dm')
                self.dm_dev = os.path.join(self.dm_state, 'dev')
                control = os.path.join(self.dm_dev, 'mapper', 'control')
                os.makedirs(os.path.dirname(control))
                open(control, 'w').close()
                fakes = os.path.join(source_root(), 'tests', 'fakes')
                f.write(f'[storage]\ndmsetup={fakes}/fake-dmsetup\n'
                        f'dm_control={control}\n'
                        f'dev_dir={self.dm_dev}\n'
                        f'state_dir={os.path.join(self.tmpdir, "snapshots")}\n')
        self.helper_env = self.system.env()
        if self.fake_dm:
            self.helper_env['BANGER_FAKE_DM_STATE'] = self.dm_state
        self.helper_env['FAKE_FIRECRACKER_AGENT'] = guest
        flags = self.fake_flags.get(self._testMethodName)
        if flags:
            self.helper_env['FAKE_FIRECRACKER_TEST_FLAGS'] = flags
        self.start_helper()

        enter_netns(self.system.netns)
        env = dict(os.environ)
        env['BANGER_AGENT'] = os.path.join(build_root(), 'src', 'agent', 'banger-agent')
        env['BANGER_ACCEL'] = 'tcg'
        env['BANGER_FIRECRACKER'] = self.firecracker
        env['FAKE_FIRECRACKER_AGENT'] = guest
        if flags:
            env['FAKE_FIRECRACKER_TEST_FLAGS'] = flags
        self.session = SessionBus(self.tmpdir, system_bus_address=self.system.address,
                                  bangerd_args=['-vv'], env=env)
        self.assertEqual(self.session.data_dir, data)
        os.makedirs(self.session.config_dir)
        with open(os.path.join(self.session.config_dir, 'config'), 'w') as f:
            f.write('[firecracker]\njailer=%s\nchroot_base=%s\n'
                    % ('true' if self.jailed else 'false', self.base))
        self.session.start()
        self.addCleanup(self._stop_session)
        self.conn = self.session.connect()
        self.addCleanup(self.conn.close_sync, None)

    def start_helper(self):
        binary = os.path.join(build_root(), 'src', 'helper', 'bangerd-root')
        self.helper = self.system._spawn(
            'bangerd-root-%d' % len(self.system.processes),
            ['ip', 'netns', 'exec', self.system.netns, binary, '-vv', '--config',
             self.helper_conf], env=self.helper_env)
        self.system.wait_for_name('org.banger.Helper', self.helper)

    def kill_helper(self):
        self.helper.proc.send_signal(signal.SIGKILL)
        self.helper.proc.wait()

    def vm_pids_on_disk(self):
        pids = set(self.vmm_pids)
        for pidfile in (glob.glob(os.path.join(self.session.data_dir, 'vms', '*', '*.pid')) +
                        glob.glob(os.path.join(self.base, '*', '*', 'root', '*.pid'))):
            try:
                with open(pidfile) as f:
                    pids.add(int(f.read().strip()))
            except (OSError, ValueError):
                pass
        return {p for p in pids if os.path.exists('/proc/%d' % p)}

    def _stop_session(self):
        for pid in self.vm_pids_on_disk():
            kill_tree(pid)
        super()._stop_session()

    # ---- the VM ---------------------------------------------------------

    def import_kernel(self):
        kernels = sorted(glob.glob('/boot/vmlinuz-*'))
        self.assertTrue(kernels, 'no host kernel in /boot')
        self.call('ImportKernel', GLib.Variant('(sa{sv})', (kernels[-1], {
            'name': GLib.Variant('s', 'fk')})), timeout=KERNEL_TIMEOUT_MS)

    def boot(self, name):
        self.import_kernel()
        path = self.create_vm(name, driver='firecracker', kernel='fk', memory_mib=256)
        self.start(path)
        pid = self.prop(path, 'Pid')
        self.vmm_pids.add(pid)
        return path, self.prop(path, 'Id'), pid

    def api_dir(self, vm_id):
        """Where the fake writes its request log and the guest's marker
        files live: the VM directory, or the jail's /run."""
        if self.jailed:
            return os.path.join(self.base, 'firecracker', vm_id, 'root', 'run')
        return self.vm_dir(vm_id)

    def requests(self, vm_id):
        name = 'firecracker.socket' if self.jailed else 'firecracker.sock'
        with open(os.path.join(self.api_dir(vm_id), name + '.requests.jsonl')) as f:
            return [json.loads(line) for line in f if line.strip()]

    def assert_fc_running(self, path, vm_id, pid):
        self.assertEqual(self.prop(path, 'State'), 'running')
        self.assertEqual(self.prop(path, 'Driver'), 'firecracker')
        self.assertEqual(self.prop(path, 'Pid'), pid)
        with open(f'/proc/{pid}/comm') as f:
            self.assertEqual(f.read().strip(), 'firecracker')
        args = cmdline(pid)
        sock = args[args.index('--api-sock') + 1]
        if self.jailed:
            self.assertEqual(sock, '/run/firecracker.socket')
            self.assertTrue(os.path.islink(os.path.join(self.vm_dir(vm_id), 'firecracker.sock')))
        else:
            self.assertEqual(sock, os.path.join(self.vm_dir(vm_id), 'firecracker.sock'))

    def wedge_log(self, vm_id):
        """What the wedged fake ignored (FAKE_FIRECRACKER_TEST_FLAGS)."""
        name = 'firecracker.socket' if self.jailed else 'firecracker.sock'
        try:
            with open(os.path.join(self.api_dir(vm_id), name + '.wedge.log')) as f:
                return f.read().splitlines()
        except FileNotFoundError:
            return []

    def check_forced_stop(self, name):
        """A guest that ignores the power-off and a fake that ignores
        SendCtrlAltDel (and maybe SIGTERM): Stop(1) must still end in
        `stopped` with everything released, and say it had to force it."""
        path, vm_id, pid = self.boot(name)
        self.assert_fc_running(path, vm_id, pid)
        self.assertTrue(self.tap_exists(vm_id))
        open(os.path.join(self.api_dir(vm_id), 'hang-on-poweroff'), 'w').close()
        self.vm_call(path, 'Stop', GLib.Variant('(u)', (1,)), timeout=60000)
        self.assertEqual(self.prop(path, 'State'), 'stopped')
        # the Stop call returns after the teardown: the process is gone now
        self.assertTrue(wait_pid_gone(pid, 0.5), 'Firecracker %d still runs' % pid)
        self.assert_released(path, vm_id, pid)
        self.assertTrue(os.path.exists(os.path.join(self.api_dir(vm_id), 'agent-exited')))
        last_error = self.prop(path, 'LastError')
        self.assertIn('stopped by force', last_error)
        self.assertIn('did not power off within 1 s', last_error)
        self.assertIn('stopped by force', self.session.log())
        return path, vm_id, last_error

    # ---- cases ------------------------------------------------------------

    def check_daemons_killed_vm_survives(self):
        path, vm_id, pid = self.boot('keep')
        self.assert_fc_running(path, vm_id, pid)
        ip, boot_id = self.prop(path, 'IPv4'), self.prop(path, 'BootId')
        self.assertNotEqual(ip, '')
        self.assertTrue(self.tap_exists(vm_id))
        self.assertEqual(self.exec(path, ['echo', 'before'])[:2], (0, b'before\n'))
        sent = len(self.requests(vm_id))

        bangerd = self.session.stop_bangerd(signal.SIGKILL)
        self.assertIsNotNone(bangerd)
        self.kill_helper()
        self.start_helper()

        # re-activated by the next call; reconcile runs before the name is owned
        self.assert_fc_running(path, vm_id, pid)
        self.assertNotEqual(self.session.bangerd_pid(), bangerd)
        self.assertEqual(self.prop(path, 'IPv4'), ip)
        self.assertEqual(self.prop(path, 'BootId'), boot_id)
        self.assertEqual(self.prop(path, 'LastError'), '')
        self.assertTrue(self.tap_exists(vm_id), 'tap torn down')
        self.assertTrue(os.path.exists(os.path.join(self.vm_dir(vm_id), 'disk.raw')))
        # the agent is reached again through a new CONNECT on the hybrid vsock
        self.assertEqual(self.exec(path, ['echo', 'after'])[:2], (0, b'after\n'))
        # nothing was re-configured: no API request since
        self.assertEqual(len(self.requests(vm_id)), sent)

    def check_vmm_killed_while_daemons_down(self):
        path, vm_id, pid = self.boot('gone')
        self.assert_fc_running(path, vm_id, pid)
        ip = self.prop(path, 'IPv4')
        self.assertTrue(self.tap_exists(vm_id))

        self.session.stop_bangerd(signal.SIGKILL)
        self.kill_helper()
        kill_tree(pid)
        self.start_helper()

        self.assertEqual(self.prop(path, 'State'), 'stopped')
        self.assert_released(path, vm_id, pid)
        # the lease was released: the next start leases again, a new
        # Firecracker process (InstanceStart works once per process)
        self.start(path)
        new_pid = self.prop(path, 'Pid')
        self.vmm_pids.add(new_pid)
        self.assertNotEqual(new_pid, pid)
        self.assert_fc_running(path, vm_id, new_pid)
        self.assertEqual(self.prop(path, 'IPv4'), ip)
        self.assertEqual(self.exec(path, ['true'])[0], 0)


class DirectTest(FcTestCase):
    jailed = False

    def test_boot_exec_stop_restart(self):
        path, vm_id, pid = self.boot('direct')
        self.assert_fc_running(path, vm_id, pid)
        # the helper has no device-mapper here: CreateSnapshot is Unsupported
        # and the disk is a copy (a reflink where the filesystem shares blocks)
        self.assertIn(self.prop(path, 'DiskMode'), ('reflink', 'sparse-copy'))
        self.assertTrue(os.path.isfile(os.path.join(self.vm_dir(vm_id), 'disk.raw')))
        self.assertFalse(os.path.exists(os.path.join(self.vm_dir(vm_id), 'disk.dev')))
        self.assertNotEqual(self.prop(path, 'IPv4'), '')
        status, out, _ = self.exec(path, ['sh', '-c', 'echo hi; exit 3'])
        self.assertEqual((status, out), (3, b'hi\n'))
        reqs = self.requests(vm_id)
        paths = [(r['method'], r['path']) for r in reqs]
        for p in ('/machine-config', '/boot-source', '/drives/rootfs', '/network-interfaces/eth0',
                  '/vsock', '/serial', '/logger', '/metrics', '/actions'):
            self.assertIn(('PUT', p), paths)
        boot = next(r['body'] for r in reqs if r['path'] == '/boot-source')
        self.assertTrue(boot['kernel_image_path'].endswith('/vmlinux'), boot)
        for arg in ('console=ttyS0', 'reboot=k', 'panic=1', 'pci=off', 'banger.ip=',
                    'banger.hostname=direct'):
            self.assertIn(arg, boot['boot_args'])

        # restart: a new Firecracker process, and the disk is kept
        self.vm_call(path, 'Restart', GLib.Variant('(a{sv})', ({},)), timeout=60000)
        pid2 = self.prop(path, 'Pid')
        self.vmm_pids.add(pid2)
        self.assertNotEqual(pid2, pid)
        self.assertEqual(self.prop(path, 'DiskMode'), 'existing')
        self.assertEqual(self.exec(path, ['true'])[0], 0)

        # stop: the agent's power-off first; this guest ignores it (the
        # marker), so after the grace period SendCtrlAltDel ends Firecracker
        open(os.path.join(self.api_dir(vm_id), 'hang-on-poweroff'), 'w').close()
        before = len(self.requests(vm_id))
        self.vm_call(path, 'Stop', GLib.Variant('(u)', (1,)), timeout=60000)
        self.assertEqual(self.prop(path, 'State'), 'stopped')
        self.assertTrue(os.path.exists(os.path.join(self.api_dir(vm_id), 'agent-exited')))
        after = self.requests(vm_id)[before:]
        self.assertEqual([(r['path'], r['body']) for r in after],
                         [('/actions', {'action_type': 'SendCtrlAltDel'})])
        self.assert_released(path, vm_id, pid2)

    def test_daemons_killed_vm_survives(self):
        self.check_daemons_killed_vm_survives()

    def test_vmm_killed_while_daemons_down(self):
        self.check_vmm_killed_while_daemons_down()

    def test_warm_start_fake(self):
        """Warm start (docs/warm-start.md) through the FAKE Firecracker: the
        first boot saves a snapshot naming the cache's frozen disk; two VMs
        restore it (not boot), each paused until its drive is on its own
        disk, each with its own tap and identity; neither guest ever runs on
        the template's disk or the first VM's. A snapshot whose disk is gone
        is not used: the VM boots, with a warning."""
        tmpl, tmpl_id, _ = self.boot('tmpl')
        entries = [d for d in glob.glob(os.path.join(self.session.data_dir, 'warm', '*'))
                   if not os.path.basename(d).startswith('.')]
        self.assertEqual(len(entries), 1)
        entry = entries[0]
        frozen = os.path.join(entry, 'disk')
        with open(os.path.join(entry, 'vmstate')) as f:
            saved = json.load(f)['config']
        self.assertEqual(saved['/drives/rootfs']['path_on_host'], frozen)
        # (a sparse file of the VM's disk size: its stat, not its bytes)
        frozen_stat = os.stat(frozen)
        tmpl_disk = os.path.join(self.vm_dir(tmpl_id), 'disk.raw')

        def disks_used(vm_id):
            with open(os.path.join(self.vm_dir(vm_id), 'firecracker.sock.disks.log')) as f:
                return {line.split(' ', 3)[3] for line in f.read().splitlines()}

        self.assertEqual(disks_used(tmpl_id), {tmpl_disk})

        def console(vm_id):
            with open(os.path.join(self.vm_dir(vm_id), 'console.log')) as f:
                return f.read()

        seen = {}
        for name in ('wa', 'wb'):
            path = self.create_vm(name, driver='firecracker', kernel='fk', memory_mib=256)
            self.start(path)
            self.vmm_pids.add(self.prop(path, 'Pid'))
            vm_id = self.prop(path, 'Id')
            own = os.path.join(self.vm_dir(vm_id), 'disk.raw')
            # restored, not booted: a load, no boot configuration, no InstanceStart
            reqs = [(r['method'], r['path'], r['body']) for r in self.requests(vm_id)]
            self.assertNotIn('/boot-source', [p for _, p, _ in reqs])
            self.assertNotIn('/actions', [p for _, p, _ in reqs])
            steps = [(m, p) for m, p, _ in reqs]
            load = steps.index(('PUT', '/snapshot/load'))
            self.assertEqual(steps[load:load + 3], [('PUT', '/snapshot/load'),
                                                    ('PATCH', '/drives/rootfs'),
                                                    ('PATCH', '/vm')])
            body = reqs[load][2]
            self.assertFalse(body['resume_vm'])
            self.assertEqual(body['vsock_override']['uds_path'],
                             os.path.join(self.vm_dir(vm_id), 'vsock.sock'))
            self.assertEqual(reqs[load + 1][2]['path_on_host'], own)
            self.assertEqual(reqs[load + 2][2]['state'], 'Resumed')
            # its guest ran on its own disk only
            self.assertEqual(disks_used(vm_id), {own})
            self.assertEqual(self.exec(path, ['true'])[0], 0)
            with open(os.path.join(self.vm_dir(vm_id), 'guest-root', 'etc', 'machine-id')) as f:
                machine_id = f.read().strip()
            seen[name] = (body['network_overrides'][0]['host_dev_name'], self.prop(path, 'MAC'),
                          self.prop(path, 'IPv4'), machine_id)
        self.assertEqual(len(entries), 1)
        for i in range(4):
            self.assertNotEqual(seen['wa'][i], seen['wb'][i], i)
        tmpl_tap = next(r['body']['host_dev_name'] for r in self.requests(tmpl_id)
                        if r['path'] == '/network-interfaces/eth0')
        self.assertNotIn(tmpl_tap, (seen['wa'][0], seen['wb'][0]))
        # the template's disk and the first VM's: never run on by a clone
        after = os.stat(frozen)
        self.assertEqual((after.st_size, after.st_mtime_ns),
                         (frozen_stat.st_size, frozen_stat.st_mtime_ns))
        self.assertEqual(disks_used(tmpl_id), {tmpl_disk})

        # the snapshot's disk gone: not used, the VM boots (with a warning)
        os.unlink(frozen)
        path = self.create_vm('cold', driver='firecracker', kernel='fk', memory_mib=256)
        self.start(path)
        self.vmm_pids.add(self.prop(path, 'Pid'))
        self.assertIn('Linux booting', console(self.prop(path, 'Id')))
        self.assertIn('the VM boots instead', self.session.log())

    def test_suspend_resume_fake(self):
        """Suspend and resume through the FAKE Firecracker's snapshot API
        (docs/suspend.md): the files, the request sequence, the tap and
        lease, a bangerd SIGKILL and helper restart while suspended, a full
        disk while saving, Stop and Delete of a suspended VM."""
        path, vm_id, pid = self.boot('fcsus')
        ip = self.prop(path, 'IPv4')
        state_dir = os.path.join(self.vm_dir(vm_id), 'suspend')

        def suspend():
            self.vm_call(path, 'Suspend', timeout=60000)

        def resume():
            self.vm_call(path, 'Resume', GLib.Variant('(a{sv})', ({},)), timeout=60000)
            self.vmm_pids.add(self.prop(path, 'Pid'))

        def assert_suspended(pid):
            self.assertEqual(self.prop(path, 'State'), 'suspended')
            self.assertEqual(self.prop(path, 'Pid'), 0)
            self.assertEqual(self.prop(path, 'IPv4'), ip)
            self.assertTrue(self.tap_exists(vm_id), 'the tap is kept while suspended')
            self.assertTrue(wait_pid_gone(pid, 10))
            self.assertEqual(sorted(os.listdir(state_dir)), ['memory', 'vmstate'])

        # bad states: a running VM is not resumed, a suspended one not suspended again
        with self.assertRaises(Exception) as cm:
            resume()
        self.assertIn('BadState', str(cm.exception))
        suspend()
        assert_suspended(pid)
        with self.assertRaises(Exception) as cm:
            suspend()
        self.assertIn('BadState', str(cm.exception))
        sent = [(r['method'], r['path']) for r in self.requests(vm_id)]
        self.assertEqual(sent[-2:], [('PATCH', '/vm'), ('PUT', '/snapshot/create')])

        self.session.stop_bangerd(signal.SIGKILL)
        self.kill_helper()
        self.start_helper()
        self.assertEqual(self.prop(path, 'State'), 'suspended')
        resume()
        new_pid = self.prop(path, 'Pid')
        self.assertNotEqual(new_pid, pid)
        self.assert_fc_running(path, vm_id, new_pid)
        self.assertEqual(self.prop(path, 'IPv4'), ip)
        self.assertTrue(self.tap_exists(vm_id))
        self.assertFalse(os.path.exists(state_dir))
        # loaded paused, the drive on the VM's disk, then resumed
        load, drive, cont = self.requests(vm_id)[-3:]
        self.assertEqual((load['method'], load['path']), ('PUT', '/snapshot/load'))
        self.assertFalse(load['body']['resume_vm'])
        self.assertEqual(load['body']['network_overrides'][0]['host_dev_name'],
                         'bg' + vm_id[:12])
        self.assertEqual((drive['method'], drive['path'], drive['body']['path_on_host']),
                         ('PATCH', '/drives/rootfs', os.path.join(self.vm_dir(vm_id), 'disk.raw')))
        self.assertEqual((cont['method'], cont['path'], cont['body']['state']),
                         ('PATCH', '/vm', 'Resumed'))
        self.assertEqual(self.exec(path, ['echo', 'back'])[:2], (0, b'back\n'))
        # the guest's clock was set to the host's now (the fake guest records it)
        with open(os.path.join(self.api_dir(vm_id), 'guest-clock')) as f:
            self.assertLess(abs(int(f.read().strip().lstrip('@')) - time.time()), 120)

        # a full disk while saving: the fake's 4 MiB of memory into 1 MiB
        os.makedirs(state_dir)
        subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', state_dir], check=True)
        try:
            with self.assertRaises(Exception) as cm:
                suspend()
            self.assertIn('No space left on device', str(cm.exception))
            self.assertIn('still running', str(cm.exception))
            self.assertEqual(os.listdir(state_dir), [])
        finally:
            subprocess.run(['umount', state_dir], check=True)
        self.assert_fc_running(path, vm_id, new_pid)
        self.assertEqual(self.exec(path, ['true'])[0], 0)

        # Stop of a suspended VM discards the state
        suspend()
        assert_suspended(new_pid)
        self.vm_call(path, 'Stop', GLib.Variant('(u)', (0,)))
        self.assertEqual(self.prop(path, 'State'), 'stopped')
        self.assertFalse(os.path.exists(state_dir))
        self.assert_released(path, vm_id)
        with self.assertRaises(Exception) as cm:
            suspend()
        self.assertIn('BadState', str(cm.exception))

        # Delete of a suspended VM removes every file
        self.start(path)
        last = self.prop(path, 'Pid')
        self.vmm_pids.add(last)
        suspend()
        self.assertEqual(self.prop(path, 'State'), 'suspended')
        self.assertTrue(wait_pid_gone(last, 10))
        self.vm_call(path, 'Delete', GLib.Variant('(a{sv})', ({},)))
        self.assertFalse(os.path.exists(self.vm_dir(vm_id)))
        self.assertFalse(self.tap_exists(vm_id), 'the tap outlived its deleted VM')


class ForcedStopTest(FcTestCase):
    """The stop escalation against a wedged guest, direct launch."""
    jailed = False
    fake_flags = {
        'test_sigterm_ends_it': '--test-ignore-ctrl-alt-del',
        'test_sigkill_ends_it': '--test-ignore-ctrl-alt-del --test-ignore-sigterm',
    }

    def test_sigterm_ends_it(self):
        _, vm_id, last_error = self.check_forced_stop('wedged')
        self.assertEqual(self.wedge_log(vm_id), ['ignored SendCtrlAltDel'])
        self.assertIn('SendCtrlAltDel (ignored), SIGTERM ended it', last_error)
        self.assertNotIn('SIGKILL', last_error)

    def test_sigkill_ends_it(self):
        _, vm_id, last_error = self.check_forced_stop('stubborn')
        self.assertEqual(self.wedge_log(vm_id), ['ignored SendCtrlAltDel', 'ignored SIGTERM'])
        self.assertIn('SendCtrlAltDel (ignored), SIGTERM (ignored), SIGKILL ended it', last_error)


class DmSnapshotTest(FcTestCase):
    jailed = False
    fake_dm = True

    def dm_calls(self):
        try:
            with open(os.path.join(self.dm_state, 'calls.log')) as f:
                return [json.loads(line) for line in f]
        except FileNotFoundError:
            return []

    def test_boot_delete(self):
        self.addCleanup(loopdev.detach_all, self.tmpdir)
        path, vm_id, pid = self.boot('dm')
        self.assert_fc_running(path, vm_id, pid)
        self.assertEqual(self.prop(path, 'DiskMode'), 'dm-snapshot')
        device = os.path.join(self.dm_dev, 'mapper', 'banger-' + vm_id)
        drive = next(r['body'] for r in self.requests(vm_id) if r['path'] == '/drives/rootfs')
        self.assertEqual(drive['path_on_host'], device)
        vm_dir = self.vm_dir(vm_id)
        self.assertFalse(os.path.exists(os.path.join(vm_dir, 'disk.raw')))
        self.assertTrue(os.path.isfile(os.path.join(vm_dir, 'snapshot.cow')))
        created = self.dm_calls()
        self.assertIn(['fake-dmsetup', 'create', 'banger-' + vm_id], [c[:3] for c in created])
        self.assertEqual(self.exec(path, ['echo', 'dm'])[:2], (0, b'dm\n'))

        # delete (killing it first): the snapshot goes before the directory
        self.vm_call(path, 'Delete', GLib.Variant('(a{sv})', ({'force': GLib.Variant('b', True)},)),
                     timeout=60000)
        self.assertTrue(wait_pid_gone(pid, 10))
        removed = [c[:2] for c in self.dm_calls()[len(created):]]
        self.assertIn(['fake-dmsetup', 'remove'], removed)
        self.assertEqual(loopdev.attached(self.tmpdir), {}, 'loop devices left attached')
        self.assertFalse(os.path.lexists(device))
        # the directory's files went after it (the fake guest's own
        # guest-root/ subdirectory may stay: the VM directory is flat)
        self.assertFalse(os.path.exists(os.path.join(vm_dir, 'snapshot.cow')))
        self.assertFalse(os.path.exists(os.path.join(vm_dir, 'disk.dev')))
        with open(os.path.join(self.dm_state, 'state.json')) as f:
            self.assertEqual(json.load(f), {'loops': {}, 'dm': {}})


class JailedTest(FcTestCase):
    jailed = True

    def test_boot_exec_kill(self):
        path, vm_id, pid = self.boot('jailed')
        self.assert_fc_running(path, vm_id, pid)
        boot = next(r['body'] for r in self.requests(vm_id) if r['path'] == '/boot-source')
        self.assertEqual(boot['kernel_image_path'], '/vmlinux')
        self.assertEqual(self.exec(path, ['echo', 'jailed'])[:2], (0, b'jailed\n'))
        # restart: the same jail id launched again (the helper removes the
        # stale pidfile and socket), a new Firecracker process
        self.vm_call(path, 'Restart', GLib.Variant('(a{sv})', ({},)), timeout=60000)
        pid2 = self.prop(path, 'Pid')
        self.vmm_pids.add(pid2)
        self.assertNotEqual(pid2, pid)
        self.assertTrue(wait_pid_gone(pid, 10))
        self.assert_fc_running(path, vm_id, pid2)
        self.assertEqual(self.exec(path, ['true'])[0], 0)
        self.vm_call(path, 'Kill')
        self.assertEqual(self.prop(path, 'State'), 'stopped')
        self.assert_released(path, vm_id, pid2)

    def test_daemons_killed_vm_survives(self):
        self.check_daemons_killed_vm_survives()

    def test_vmm_killed_while_daemons_down(self):
        self.check_vmm_killed_while_daemons_down()

    def test_delete_removes_jail(self):
        path, vm_id, pid = self.boot('gonejail')
        self.assert_fc_running(path, vm_id, pid)
        jail = os.path.join(self.base, 'firecracker', vm_id)
        root = os.path.join(jail, 'root')
        # the files the jail links to: the kernel's (and the VM's disk)
        linked = {}
        for name in ('vmlinux', 'initrd'):
            if os.path.exists(os.path.join(root, name)):
                linked[name] = os.stat(os.path.join(root, name))
        self.assertIn('vmlinux', linked)
        sources = {}
        for f in glob.glob(os.path.join(self.session.data_dir, '**'), recursive=True):
            st = os.lstat(f)
            for name, want in linked.items():
                if (st.st_ino, st.st_dev) == (want.st_ino, want.st_dev):
                    sources[name] = (f, st.st_size)
        self.assertEqual(set(sources), set(linked), 'the jail\'s files are not hard links')
        images = glob.glob(os.path.join(self.session.data_dir, 'images', '*', '*'))
        self.assertTrue(images)

        self.vm_call(path, 'Delete', GLib.Variant('(a{sv})', ({'force': GLib.Variant('b', True)},)),
                     timeout=60000)
        self.assertTrue(wait_pid_gone(pid, 10))
        self.assertFalse(os.path.lexists(jail), 'jail %s left behind' % jail)
        self.assertTrue(os.path.isdir(os.path.join(self.base, 'firecracker')))
        for name, (f, size) in sources.items():
            self.assertTrue(os.path.isfile(f), '%s (linked as %s) was removed' % (f, name))
            self.assertEqual(os.path.getsize(f), size)
        for f in images:
            self.assertTrue(os.path.exists(f), '%s was removed' % f)
        self.assertRegex(self.helper.output(), r'AUDIT uid=0 method=RemoveJail .* result=ok')
        self.assertNotIn('left behind', self.session.log())


class JailedStateTest(FcTestCase):
    """Suspend, resume and warm start of jailed Firecracker VMs
    (docs/suspend.md, docs/warm-start.md): the FAKE Firecracker writes its
    snapshot inside the jail (chroot-relative paths), the helper's
    TakeJailState moves it into the VM directory or the warm cache, and
    LaunchJailed links it into the next jail for the load."""
    jailed = True
    fake_flags = {'test_suspend_hostile_vmm_fake': '--test-hostile-snapshot'}

    def jail_root(self, vm_id):
        return os.path.join(self.base, 'firecracker', vm_id, 'root')

    def in_helper_ns(self, argv):
        """@argv's output in the helper's mount namespace (`ip netns exec`
        gave it its own), where it makes the jail's mounts."""
        return subprocess.run(['nsenter', '--mount', '--target', str(self.helper.proc.pid)]
                              + argv, check=True, capture_output=True, text=True).stdout.strip()

    def disks_used(self, vm_id):
        with open(os.path.join(self.api_dir(vm_id), 'firecracker.socket.disks.log')) as f:
            return {line.split(' ', 3)[3] for line in f.read().splitlines()}

    def console(self, vm_id):
        with open(os.path.join(self.vm_dir(vm_id), 'console.log')) as f:
            return f.read()

    def check_load(self, vm_id, reqs):
        """A restore in a jail: logger and metrics, the load from the files
        LaunchJailed linked in (chroot-relative), paused, the drive on the
        jail's /rootfs, then resumed; no boot configuration at all."""
        steps = [(r['method'], r['path']) for r in reqs]
        self.assertEqual(steps, [('PUT', '/logger'), ('PUT', '/metrics'),
                                 ('PUT', '/snapshot/load'), ('PATCH', '/drives/rootfs'),
                                 ('PATCH', '/vm')])
        load = reqs[2]['body']
        self.assertEqual(load['snapshot_path'], '/vmstate')
        self.assertEqual(load['mem_backend'], {'backend_type': 'File', 'backend_path': '/memory'})
        self.assertFalse(load['resume_vm'])
        self.assertEqual(load['vsock_override']['uds_path'], '/run/vsock.sock')
        self.assertEqual(reqs[3]['body']['path_on_host'], '/rootfs')
        self.assertEqual(reqs[4]['body']['state'], 'Resumed')
        root = self.jail_root(vm_id)
        # the jail's disk is the VM's own
        self.assertTrue(os.path.samefile(os.path.join(root, 'rootfs'),
                                         os.path.join(self.vm_dir(vm_id), 'disk.raw')))
        self.assertEqual(self.disks_used(vm_id), {'/rootfs'})
        return load

    def test_suspend_resume_fake(self):
        path, vm_id, pid = self.boot('jsus')
        ip = self.prop(path, 'IPv4')
        state_dir = os.path.join(self.vm_dir(vm_id), 'suspend')
        run = os.path.join(self.jail_root(vm_id), 'run')

        def suspend():
            self.vm_call(path, 'Suspend', timeout=60000)

        def resume():
            self.vm_call(path, 'Resume', GLib.Variant('(a{sv})', ({},)), timeout=60000)
            self.vmm_pids.add(self.prop(path, 'Pid'))

        def assert_suspended(pid):
            self.assertEqual(self.prop(path, 'State'), 'suspended')
            self.assertEqual(self.prop(path, 'Pid'), 0)
            self.assertEqual(self.prop(path, 'IPv4'), ip)
            self.assertTrue(self.tap_exists(vm_id), 'the tap is kept while suspended')
            self.assertTrue(wait_pid_gone(pid, 10))
            self.assertEqual(sorted(os.listdir(state_dir)), ['memory', 'vmstate'])
            for name in ('memory', 'vmstate'):
                st = os.lstat(os.path.join(state_dir, name))
                self.assertEqual((st.st_uid, st.st_nlink), (os.getuid(), 1), name)
                # out of the jail: it keeps no name for them
                self.assertFalse(os.path.lexists(os.path.join(run, name)), name)

        suspend()
        assert_suspended(pid)
        # the fake's "guest state": the booted guest's configuration, with
        # the chroot-relative paths it ran on
        with open(os.path.join(state_dir, 'vmstate')) as f:
            saved = json.load(f)['config']
        self.assertIn('banger.hostname=jsus', saved['/boot-source']['boot_args'])
        self.assertEqual(saved['/drives/rootfs']['path_on_host'], '/rootfs')
        create = self.requests(vm_id)[-1]
        self.assertEqual((create['method'], create['path']), ('PUT', '/snapshot/create'))
        self.assertEqual((create['body']['snapshot_path'], create['body']['mem_file_path']),
                         ('/run/vmstate', '/run/memory'))
        self.assertRegex(self.helper.output(),
                         r"AUDIT uid=0 method=TakeJailState action=org.banger.vm.launch "
                         r"args=\('%s', '%s', .* result=ok" % (vm_id, state_dir))

        # from files only: both daemons gone and back
        self.session.stop_bangerd(signal.SIGKILL)
        self.kill_helper()
        self.start_helper()
        # a bangerd now configured for direct Firecracker cannot restore a
        # jailed state: refused clearly, the VM stays suspended, state kept
        config = os.path.join(self.session.config_dir, 'config')
        with open(config) as f:
            jailed_config = f.read()
        with open(config, 'w') as f:
            f.write(jailed_config.replace('jailer=true', 'jailer=false'))
        self.session.stop_bangerd()
        with self.assertRaises(Exception) as cm:
            resume()
        self.assertIn('BadState', str(cm.exception))
        self.assertIn('written by a jailed Firecracker', str(cm.exception))
        self.assertEqual(self.prop(path, 'State'), 'suspended')
        self.assertEqual(sorted(os.listdir(state_dir)), ['memory', 'vmstate'])
        with open(config, 'w') as f:
            f.write(jailed_config)
        self.session.stop_bangerd()
        self.assertEqual(self.prop(path, 'State'), 'suspended')
        resume()
        new_pid = self.prop(path, 'Pid')
        self.assertNotEqual(new_pid, pid)
        self.assert_fc_running(path, vm_id, new_pid)
        self.assertEqual(self.prop(path, 'IPv4'), ip)
        self.assertTrue(self.tap_exists(vm_id))
        self.assertFalse(os.path.exists(state_dir))
        load = self.check_load(vm_id, self.requests(vm_id))
        self.assertEqual(load['network_overrides'][0]['host_dev_name'], 'bg' + vm_id[:12])
        # the guest continued where it was: restored, not booted again
        console = self.console(vm_id)
        self.assertIn('guest restored from /vmstate', console)
        self.assertNotIn('Linux booting', console.split('guest restored from /vmstate')[-1])
        self.assertEqual(self.exec(path, ['echo', 'back'])[:2], (0, b'back\n'))

        # a full disk while the helper copies the memory out: the guest
        # runs on, nothing is left behind in the VM directory or the jail.
        # The tmpfs is mounted in the helper's mount namespace (`ip netns
        # exec` gave it its own), where the helper writes.
        os.makedirs(state_dir)
        in_helper_ns = ['nsenter', '--mount', '--target', str(self.helper.proc.pid)]
        subprocess.run(in_helper_ns + ['mount', '-t', 'tmpfs', '-o', 'size=1m', 'tmpfs',
                                       state_dir], check=True)
        try:
            with self.assertRaises(Exception) as cm:
                suspend()
            self.assertIn('No space left on device', str(cm.exception))
            self.assertIn('out of the jail', str(cm.exception))
            # bangerd removed the directory it emptied (which unmounts the
            # tmpfs in the helper's namespace too)
            self.assertFalse(os.path.exists(state_dir))
        finally:
            subprocess.run(in_helper_ns + ['umount', state_dir], stderr=subprocess.DEVNULL)
        self.assertFalse(os.path.lexists(os.path.join(run, 'memory')))
        self.assert_fc_running(path, vm_id, new_pid)
        self.assertEqual(self.exec(path, ['true'])[0], 0)

        # Delete of a suspended VM removes every file: VM directory and jail
        suspend()
        assert_suspended(new_pid)
        self.vm_call(path, 'Delete', GLib.Variant('(a{sv})', ({},)))
        self.assertFalse(os.path.exists(self.vm_dir(vm_id)))
        self.assertFalse(os.path.lexists(os.path.join(self.base, 'firecracker', vm_id)))

    def test_suspend_hostile_vmm_fake(self):
        """A compromised VMM answers the snapshot with a symlink to
        /etc/passwd as its memory file: the helper refuses it, the user's
        files and /etc/passwd are untouched, and the guest runs on."""
        with open('/etc/passwd', 'rb') as f:
            passwd = f.read()
        path, vm_id, pid = self.boot('jhost')
        with self.assertRaises(Exception) as cm:
            self.vm_call(path, 'Suspend', timeout=60000)
        self.assertIn('/run/memory is a symlink', str(cm.exception))
        # (the first start's warm-start save met the same VMM, and was refused too)
        self.assertEqual(set(self.wedge_log(vm_id)), {'planted a symlink as the memory file'})
        self.assertIn('/run/memory is a symlink', self.session.log())
        self.assertEqual([d for d in os.listdir(os.path.join(self.session.data_dir, 'warm'))
                          if not d.startswith('.')], [])
        self.assertFalse(os.path.exists(os.path.join(self.vm_dir(vm_id), 'suspend')))
        self.assertFalse(os.path.lexists(os.path.join(self.jail_root(vm_id), 'run', 'memory')))
        with open('/etc/passwd', 'rb') as f:
            self.assertEqual(f.read(), passwd)
        self.assert_fc_running(path, vm_id, pid)
        self.assertEqual(self.exec(path, ['true'])[0], 0)

    def test_warm_start_fake(self):
        """A jailed first start saves the template (its snapshot names the
        jail's /rootfs); two jailed clones restore it, not boot, each in
        its own jail on its own disk, with its own tap and MAC."""
        tmpl, tmpl_id, _ = self.boot('jtmpl')
        entries = [d for d in glob.glob(os.path.join(self.session.data_dir, 'warm', '*'))
                   if not os.path.basename(d).startswith('.')]
        self.assertEqual(len(entries), 1)
        entry = entries[0]
        self.assertEqual(sorted(os.listdir(entry)), ['disk', 'manifest.ini', 'memory', 'vmstate'])
        with open(os.path.join(entry, 'vmstate')) as f:
            saved = json.load(f)['config']
        self.assertEqual(saved['/drives/rootfs']['path_on_host'], '/rootfs')
        frozen = os.path.join(entry, 'disk')
        frozen_stat = os.stat(frozen)
        tmpl_disk = os.path.join(self.vm_dir(tmpl_id), 'disk.raw')
        self.assertEqual(self.disks_used(tmpl_id), {'/rootfs'})
        self.assertFalse(os.path.lexists(os.path.join(self.jail_root(tmpl_id), 'run', 'memory')))

        seen = {}
        for name in ('jwa', 'jwb'):
            path = self.create_vm(name, driver='firecracker', kernel='fk', memory_mib=256)
            self.start(path)
            pid = self.prop(path, 'Pid')
            self.vmm_pids.add(pid)
            vm_id = self.prop(path, 'Id')
            self.assert_fc_running(path, vm_id, pid)
            load = self.check_load(vm_id, self.requests(vm_id))
            root = self.jail_root(vm_id)
            own = os.path.join(self.vm_dir(vm_id), 'disk.raw')
            for other in (frozen, tmpl_disk):
                self.assertFalse(os.path.samefile(os.path.join(root, 'rootfs'), other))
            self.assertFalse(os.path.samefile(own, frozen))
            # the state in the jail is the cache's, bind-mounted read-only
            # (in the helper's mount namespace, which the jailed VMM shares)
            for f in ('memory', 'vmstate'):
                self.assertEqual(self.in_helper_ns(['stat', '-c', '%d:%i', os.path.join(root, f)]),
                                 self.in_helper_ns(['stat', '-c', '%d:%i', os.path.join(entry, f)]),
                                 f)
                self.assertIn('ro', self.in_helper_ns(
                    ['findmnt', '-n', '-o', 'VFS-OPTIONS', os.path.join(root, f)]).split(','))
            self.assertEqual(self.console(vm_id).count('Linux booting'), 0)
            self.assertEqual(self.exec(path, ['true'])[0], 0)
            seen[name] = (load['network_overrides'][0]['host_dev_name'], self.prop(path, 'MAC'),
                          self.prop(path, 'IPv4'), own)
        for i in range(4):
            self.assertNotEqual(seen['jwa'][i], seen['jwb'][i], i)
        after = os.stat(frozen)
        self.assertEqual((after.st_size, after.st_mtime_ns),
                         (frozen_stat.st_size, frozen_stat.st_mtime_ns))
        self.assertIn('restored from snapshot', self.session.log())


class ForcedJailedStopTest(FcTestCase):
    """The stop escalation against a wedged guest in a jail: the signal
    goes through the helper's KillJailed."""
    jailed = True
    fake_flags = {'test_killjailed_ends_it': '--test-ignore-ctrl-alt-del'}

    def test_killjailed_ends_it(self):
        _, vm_id, last_error = self.check_forced_stop('wedgedjail')
        self.assertEqual(self.wedge_log(vm_id), ['ignored SendCtrlAltDel'])
        self.assertIn('SIGTERM through the helper’s KillJailed ended it', last_error)
        self.assertRegex(self.helper.output(),
                         r"AUDIT uid=0 method=KillJailed action=org.banger.vm.launch "
                         r"args=\('%s', 15, .* result=ok" % vm_id)


if __name__ == '__main__':
    unittest.main()
