#!/usr/bin/python3
"""bangerd-root's LaunchJailed/KillJailed with the FAKE jailer and the FAKE
Firecracker (tests/fakes/), on a private system bus with the real polkitd
(tests/lib/system_bus.py). User banger-test-a is allowed org.banger.vm.launch
by the test rules, banger-test-b is not: B getting InvalidArgument or
NotAuthorized instead of AccessDenied proves the check ran before polkit."""

import ctypes
import glob
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import unittest

from system_bus import SystemBus, build_root, source_root, wait_until

A = 'banger-test-a'
B = 'banger-test-b'
VM_ID = '0123456789abcdef'


def alive(pid):
    """A live process (a zombie has an empty command line)."""
    try:
        with open(f'/proc/{pid}/cmdline', 'rb') as f:
            return len(f.read()) > 0
    except OSError:
        return False


CLONE_NEWNS = 0x00020000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18
MNT_DETACH = 2


def libc_call(name, *args):
    libc = ctypes.CDLL(None, use_errno=True)
    if getattr(libc, name)(*args) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f'{name}: {os.strerror(err)}')


def mount_points():
    with open('/proc/self/mountinfo') as f:
        return [line.split()[4] for line in f]


def cmdline(pid):
    with open(f'/proc/{pid}/cmdline', 'rb') as f:
        return f.read().decode().split('\0')[:-1]


def http_get(sock_path, path):
    """GET over a unix socket, the way Firecracker's API is reached."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(sock_path)
    s.sendall(f'GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n'.encode())
    data = b''
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    return data.decode()


class JailTest(unittest.TestCase):
    def setUp(self):
        self.bus = SystemBus().start()
        self.addCleanup(self.bus.stop)
        self.uid_a, self.gid_a = self.bus.users[A]
        self.uid_b, self.gid_b = self.bus.users[B]
        tmp = self.bus.tmp
        self.base = os.path.join(tmp, 'jail')
        os.makedirs(self.base, mode=0o755)
        bindir = os.path.join(tmp, 'bin')
        os.makedirs(bindir, mode=0o755)
        # The jail is named after Firecracker's file name, as the jailer does.
        self.firecracker = os.path.join(bindir, 'firecracker')
        os.symlink(os.path.join(source_root(), 'tests', 'fakes', 'fake-firecracker.py'),
                   self.firecracker)
        self.files = {}
        for user, uid, gid in ((A, self.uid_a, self.gid_a), (B, self.uid_b, self.gid_b)):
            home = os.path.join(tmp, f'home-{uid}')
            data = os.path.join(home, 'banger')
            vm_dir = os.path.join(data, 'vms', VM_ID)
            kdir = os.path.join(data, 'kernels', 'k1')
            os.makedirs(vm_dir)
            os.makedirs(kdir)
            kernel = os.path.join(kdir, 'vmlinux')
            disk = os.path.join(vm_dir, 'disk.raw')
            with open(kernel, 'wb') as f:
                f.write(b'\x7fELF fake kernel')
            with open(disk, 'wb') as f:
                f.write(b'fake disk')
            for root, dirs, names in os.walk(home):
                for n in dirs + names:
                    os.chown(os.path.join(root, n), uid, gid)
            os.chown(home, uid, gid)
            os.chmod(home, 0o755)
            self.files[user] = {'kernel': kernel, 'rootfs': disk, 'data': data, 'vm_dir': vm_dir}
        self.conf = os.path.join(tmp, 'helper.conf')
        with open(self.conf, 'w') as f:
            f.write('[network]\nbridge=banger0\naddress=10.77.0.1/24\n[jail]\n'
                    f'jailer={os.path.join(source_root(), "tests", "fakes", "fake-jailer")}\n'
                    f'firecracker={self.firecracker}\n'
                    f'chroot_base={self.base}\n'
                    f'user_dirs={tmp}/home-%U/banger\n')
        self.start_helper()
        self.vmm_pids = []

    def start_helper(self):
        binary = os.path.join(build_root(), 'src', 'helper', 'bangerd-root')
        self.helper = self.bus._spawn(f'bangerd-root-{len(self.bus.processes)}',
                                      [binary, '-vv', '--config', self.conf])
        self.bus.wait_for_name('org.banger.Helper', self.helper)

    def tearDown(self):
        # VMMs are the helper's children only until it restarts: stop them
        # by pid in any case.
        for pid in self.vmm_pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        result = self._outcome.result
        if any(test is self for test, _ in result.errors + result.failures):
            print(self.bus.logs(), file=sys.stderr)

    # ---- helpers ------------------------------------------------------

    def spec(self, user, **override):
        f = self.files[user]
        items = {'vm_id': f"<'{VM_ID}'>", 'kernel': f"<'{f['kernel']}'>",
                 'rootfs': f"<'{f['rootfs']}'>", 'vcpus': '<uint32 2>',
                 'memory_mib': '<uint32 256>'}
        items.update(override)
        return '{' + ', '.join(f"'{k}': {v}" for k, v in items.items()) + '}'

    def launch(self, user=A, **override):
        ok, out = self.bus.call(user, 'LaunchJailed', self.spec(user, **override), '{}')
        self.assertTrue(ok, out)
        pid = int(re.match(r'\(uint32 (\d+),\)', out).group(1))
        self.vmm_pids.append(pid)
        return pid

    def error(self, user, method, *args):
        ok, out = self.bus.call(user, method, *args)
        self.assertFalse(ok, out)
        return re.search(r'GDBus\.Error:([A-Za-z0-9_.]+):', out).group(1), out

    def chroot(self):
        return os.path.join(self.base, 'firecracker', VM_ID, 'root')

    def assert_nothing_created(self):
        self.assertEqual(glob.glob(os.path.join(self.base, '*', '*')), [])

    def find_pid(self, vm_dir):
        out = subprocess.run([os.path.join(build_root(), 'tests', 'firecracker', 'fc-find-pid'),
                              vm_dir], capture_output=True, text=True, check=True).stdout
        return int(out)

    def link_vm_dir(self, user=A):
        """What bangerd does after LaunchJailed (start_jailed): the VM
        directory's API socket points into the jail."""
        vm_dir = self.files[user]['vm_dir']
        os.symlink(os.path.join(self.chroot(), 'run', 'firecracker.socket'),
                   os.path.join(vm_dir, 'firecracker.sock'))
        return vm_dir

    def wait_api(self):
        sock = os.path.join(self.chroot(), 'run', 'firecracker.socket')

        # The socket file appears at bind(), a moment before listen(): wait
        # until a connection is accepted, not merely for the path.
        def accepting():
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(sock)
                return True
            except OSError:
                return False
            finally:
                s.close()
        wait_until(accepting, 10, 'the API socket to accept connections')
        return sock

    # ---- cases --------------------------------------------------------

    def test_launch_and_kill(self):
        pid = self.launch()
        with open(f'/proc/{pid}/comm') as f:
            self.assertEqual(f.read().strip(), 'firecracker')
        args = cmdline(pid)
        self.assertEqual(args[0], 'firecracker')
        self.assertIn('--id', args)
        self.assertEqual(args[args.index('--id') + 1], VM_ID)
        self.assertEqual(args[args.index('--api-sock') + 1], '/run/firecracker.socket')
        self.assertFalse(any(self.base in a for a in args), args)
        self.assertEqual(os.stat(f'/proc/{pid}').st_uid, self.uid_a)
        root = self.chroot()
        with open(os.path.join(root, 'firecracker.pid')) as f:
            self.assertEqual(int(f.read()), pid)
        with open(os.path.join(self.base, 'firecracker', VM_ID, 'banger-owner')) as f:
            self.assertEqual(int(f.read()), self.uid_a)
        # linked, not copied: the very files that were checked
        for name, key in (('vmlinux', 'kernel'), ('rootfs', 'rootfs')):
            self.assertEqual(os.stat(os.path.join(root, name)).st_ino,
                             os.stat(self.files[A][key]).st_ino)
        with open(os.path.join(self.base, 'firecracker', VM_ID, 'fake-jailer.cgroup')) as f:
            cg = f.read()
        self.assertIn('version=2', cg)
        self.assertIn(f'memory.max={(256 + 128) * 1024 * 1024}', cg)
        self.assertIn('cpu.max=200000 100000', cg)
        reply = http_get(self.wait_api(), '/')
        self.assertIn('"state": "Not started"', reply)

        ok, out = self.bus.call(A, 'KillJailed', VM_ID, '15', '{}')
        self.assertTrue(ok, out)
        wait_until(lambda: not alive(pid), 5, 'the VMM to exit')
        self.assertTrue(re.search(rf'AUDIT uid={self.uid_a} method=KillJailed .* result=ok',
                                  self.helper.output()))
        # nothing left to signal
        name, out = self.error(A, 'KillJailed', VM_ID, '15', '{}')
        self.assertEqual(name, 'org.banger.Error.NotFound', out)

    def test_relaunch_removes_stale(self):
        pid = self.launch()
        self.wait_api()
        self.assertEqual(self.error(A, 'LaunchJailed', self.spec(A), '{}')[0],
                         'org.banger.Error.Busy')
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: not alive(pid), 5, 'the VMM to exit')
        # the pidfile and the socket are left behind; a relaunch clears them
        self.assertTrue(os.path.exists(os.path.join(self.chroot(), 'firecracker.pid')))
        self.assertTrue(os.path.exists(os.path.join(self.chroot(), 'run', 'firecracker.socket')))
        pid2 = self.launch()
        self.assertNotEqual(pid, pid2)
        self.assertIn('"state": "Not started"', http_get(self.wait_api(), '/'))

    def test_path_outside_refused(self):
        inside_link = os.path.join(self.files[A]['data'], 'sneaky')
        os.symlink('/etc/passwd', inside_link)
        os.lchown(inside_link, self.uid_a, self.gid_a)
        root_owned = os.path.join(self.files[A]['data'], 'rootowned')
        with open(root_owned, 'w') as f:
            f.write('x')
        for user in (A, B):  # B is denied by polkit, yet gets InvalidArgument
            for path in ('/etc/passwd', inside_link, root_owned,
                         os.path.join(self.files[A]['data'], 'missing'),
                         self.files[B if user == A else A]['rootfs']):
                name, out = self.error(user, 'LaunchJailed',
                                       self.spec(user, rootfs=f"<'{path}'>"), '{}')
                self.assertEqual(name, 'org.banger.Error.InvalidArgument', out)
        name, out = self.error(A, 'LaunchJailed', self.spec(A, kernel="<'/home/../etc/x'>"), '{}')
        self.assertEqual(name, 'org.banger.Error.InvalidArgument', out)
        self.assert_nothing_created()

    def test_invalid_id_refused(self):
        for user in (A, B):
            for bad in ('../x', 'ABCDEF0123456789', 'abc', '0123456789abcdef0', 'x' * 65):
                name, out = self.error(user, 'LaunchJailed', self.spec(user, vm_id=f"<'{bad}'>"),
                                       '{}')
                self.assertEqual(name, 'org.banger.Error.InvalidArgument', out)
        self.assert_nothing_created()

    def test_other_users_jail_refused(self):
        pid = self.launch(A)
        for user in (B,):
            name, out = self.error(user, 'LaunchJailed', self.spec(user), '{}')
            self.assertEqual(name, 'org.banger.Error.NotAuthorized', out)
            self.assertIn(str(self.uid_a), out)
            name, out = self.error(user, 'KillJailed', VM_ID, '9', '{}')
            self.assertEqual(name, 'org.banger.Error.NotAuthorized', out)
        self.assertTrue(alive(pid))
        with open(os.path.join(self.base, 'firecracker', VM_ID, 'banger-owner')) as f:
            self.assertEqual(int(f.read()), self.uid_a)

    def test_helper_restart_keeps_vmm(self):
        pid = self.launch()
        self.wait_api()
        vm_dir = self.link_vm_dir()
        self.assertEqual(self.find_pid(vm_dir), pid)
        # The helper dies hard (KillMode=process: its VMMs stay) and comes back.
        self.helper.stop(signal.SIGKILL)
        self.assertTrue(alive(pid))
        self.start_helper()
        self.assertTrue(alive(pid))
        self.assertEqual(self.find_pid(vm_dir), pid)
        self.assertIn('"state": "Not started"', http_get(self.wait_api(), '/'))
        # and the new helper still knows whose jail it is
        ok, out = self.bus.call(A, 'KillJailed', VM_ID, '15', '{}')
        self.assertTrue(ok, out)
        wait_until(lambda: not alive(pid), 5, 'the VMM to exit')

    def test_vmm_killed_find_pid_zero(self):
        pid = self.launch()
        self.wait_api()
        vm_dir = self.link_vm_dir()
        self.assertEqual(self.find_pid(vm_dir), pid)
        self.helper.stop(signal.SIGKILL)
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: not alive(pid), 5, 'the VMM to exit')
        # the pidfile still names it, but it is gone
        self.assertTrue(os.path.exists(os.path.join(self.chroot(), 'firecracker.pid')))
        self.assertEqual(self.find_pid(vm_dir), 0)

    # ---- RemoveJail ------------------------------------------------------

    def jail(self):
        return os.path.join(self.base, 'firecracker', VM_ID)

    def kill_and_wait(self, pid):
        ok, out = self.bus.call(A, 'KillJailed', VM_ID, '9', '{}')
        self.assertTrue(ok, out)
        wait_until(lambda: not alive(pid), 5, 'the VMM to exit')

    def sources_snapshot(self):
        out = {}
        for key in ('kernel', 'rootfs'):
            with open(self.files[A][key], 'rb') as f:
                out[self.files[A][key]] = f.read()
        return out

    def assert_sources_intact(self, before):
        for path, data in before.items():
            with open(path, 'rb') as f:
                self.assertEqual(f.read(), data, path)

    def test_remove_after_kill(self):
        before = self.sources_snapshot()
        pid = self.launch()
        self.wait_api()
        # the user owns the jail's /run: a link planted there to a directory
        # of theirs must be removed, never followed
        victim = os.path.join(self.files[A]['data'], 'keep')
        os.makedirs(victim)
        with open(os.path.join(victim, 'precious'), 'w') as f:
            f.write('x')
        os.symlink(victim, os.path.join(self.chroot(), 'run', 'link-to-dir'))
        os.symlink(os.path.join(victim, 'precious'), os.path.join(self.chroot(), 'run', 'link'))
        self.kill_and_wait(pid)
        ok, out = self.bus.call(A, 'RemoveJail', VM_ID, '{}')
        self.assertTrue(ok, out)
        self.assertFalse(os.path.lexists(self.jail()))
        self.assert_sources_intact(before)
        self.assertEqual(os.stat(self.files[A]['kernel']).st_nlink, 1)
        self.assertTrue(os.path.isfile(os.path.join(victim, 'precious')))
        self.assertTrue(re.search(rf'AUDIT uid={self.uid_a} method=RemoveJail .* result=ok',
                                  self.helper.output()))
        # idempotent, and the id can be launched again
        ok, out = self.bus.call(A, 'RemoveJail', VM_ID, '{}')
        self.assertTrue(ok, out)
        self.launch()

    def private_chroot_base(self):
        """The chroot base on its own tmpfs, so LaunchJailed must
        bind-mount the user's files (they are on another filesystem). All of
        it in a mount namespace of this test's own, which the restarted
        helper shares: nothing is mounted on the host."""
        self.helper.stop()
        libc_call('unshare', CLONE_NEWNS)
        libc_call('mount', b'none', b'/', None, ctypes.c_ulong(MS_REC | MS_PRIVATE), None)
        libc_call('mount', b'tmpfs', self.base.encode(), b'tmpfs', ctypes.c_ulong(0),
                  b'mode=0755')
        self.addCleanup(libc_call, 'umount2', self.base.encode(), MNT_DETACH)
        self.start_helper()

    def test_remove_bind_mounted(self):
        self.private_chroot_base()
        before = self.sources_snapshot()
        pid = self.launch()
        self.wait_api()
        mounted = [m for m in mount_points() if m.startswith(self.jail() + '/')]
        self.assertEqual(sorted(mounted), sorted([os.path.join(self.chroot(), 'vmlinux'),
                                                  os.path.join(self.chroot(), 'rootfs')]))
        self.kill_and_wait(pid)
        ok, out = self.bus.call(A, 'RemoveJail', VM_ID, '{}')
        self.assertTrue(ok, out)
        self.assertFalse(os.path.lexists(self.jail()))
        self.assertEqual([m for m in mount_points() if m.startswith(self.jail())], [])
        # the files that were bind-mounted into the jail are untouched
        self.assert_sources_intact(before)

    def test_remove_other_users_jail_refused(self):
        pid = self.launch(A)
        self.wait_api()
        self.kill_and_wait(pid)
        # B is denied by polkit, yet gets NotAuthorized: checked before polkit
        name, out = self.error(B, 'RemoveJail', VM_ID, '{}')
        self.assertEqual(name, 'org.banger.Error.NotAuthorized', out)
        self.assertIn(str(self.uid_a), out)
        with open(os.path.join(self.jail(), 'banger-owner')) as f:
            self.assertEqual(int(f.read()), self.uid_a)
        self.assertTrue(os.path.isfile(os.path.join(self.chroot(), 'vmlinux')))
        self.assertTrue(os.path.isfile(os.path.join(self.chroot(), 'firecracker.pid')))

    def test_remove_running_refused(self):
        pid = self.launch()
        self.wait_api()
        name, out = self.error(A, 'RemoveJail', VM_ID, '{}')
        self.assertEqual(name, 'org.banger.Error.BadState', out)
        self.assertIn(str(pid), out)
        self.assertTrue(alive(pid))
        self.assertIn('"state": "Not started"', http_get(self.wait_api(), '/'))
        self.assertTrue(os.path.isfile(os.path.join(self.chroot(), 'vmlinux')))

    def test_remove_invalid_id_refused(self):
        # something a bad id could reach if it were used as a path
        outside = os.path.join(self.base, 'x')
        os.makedirs(outside)
        for user in (A, B):  # B is denied by polkit, yet gets InvalidArgument
            for bad in ('../x', '..', 'ABCDEF0123456789', 'abc', '0123456789abcdef0', 'x' * 65,
                        ''):
                name, out = self.error(user, 'RemoveJail', f"'{bad}'", '{}')
                self.assertEqual(name, 'org.banger.Error.InvalidArgument', out)
                self.assertNotIn('AccessDenied', out)
        self.assertTrue(os.path.isdir(outside))

    def test_remove_absent_ok(self):
        ok, out = self.bus.call(A, 'RemoveJail', VM_ID, '{}')
        self.assertTrue(ok, out)
        self.assert_nothing_created()


class UnitFileTest(unittest.TestCase):
    def test_kill_mode_process(self):
        """VMMs must outlive restarts of bangerd and bangerd-root."""
        units = sorted(glob.glob(os.path.join(source_root(), 'data', 'systemd', '*.service.in')))
        self.assertEqual([os.path.basename(u) for u in units],
                         ['bangerd-root.service.in', 'bangerd.service.in'])
        for unit in units:
            with open(unit) as f:
                text = f.read()
            service = re.search(r'^\[Service\]$(.*?)(?=^\[|\Z)', text, re.M | re.S)
            self.assertIsNotNone(service, unit)
            modes = re.findall(r'^KillMode=(\S+)\s*$', service.group(1), re.M)
            self.assertEqual(modes, ['process'], unit)


if __name__ == '__main__':
    unittest.main()
