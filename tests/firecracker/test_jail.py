#!/usr/bin/python3
"""bangerd-root's LaunchJailed/KillJailed with the FAKE jailer and the FAKE
Firecracker (tests/fakes/), on a private system bus with the real polkitd
(tests/lib/system_bus.py). User banger-test-a is allowed org.banger.vm.launch
by the test rules, banger-test-b is not: B getting InvalidArgument or
NotAuthorized instead of AccessDenied proves the check ran before polkit."""

import ctypes
import glob
import json
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
import unittest

from fanotify_pause import FanotifyPause
from mount_ns import CLONE_NEWNS, MNT_DETACH, MS_PRIVATE, MS_REC, libc_call, private_tmpfs
from system_bus import SystemBus, build_root, socket_accepts, source_root, wait_until

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


def mount_points():
    with open('/proc/self/mountinfo') as f:
        return [line.split()[4] for line in f]


def cmdline(pid):
    with open(f'/proc/{pid}/cmdline', 'rb') as f:
        return f.read().decode().split('\0')[:-1]


def http_request(sock_path, method, path, body):
    """One API call with a JSON body; returns the status code."""
    data = json.dumps(body).encode()
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(sock_path)
    s.sendall(f'{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n'
              f'Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n'
              .encode() + data)
    reply = b''
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        reply += chunk
    s.close()
    return int(reply.split(b' ', 2)[1]), reply.decode(errors='replace')


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

    def find_pid(self, vm_dir, user=A):
        """bangerd's find_pid, run as the VM's user, as bangerd is (it adopts
        only processes of its own uid)."""
        uid, gid = self.bus.users[user]
        out = subprocess.run(['setpriv', f'--reuid={uid}', f'--regid={gid}', '--clear-groups',
                              os.path.join(build_root(), 'tests', 'firecracker', 'fc-find-pid'),
                              vm_dir], capture_output=True, text=True, check=True, cwd='/').stdout
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
        wait_until(lambda: socket_accepts(sock), 10, 'the API socket to accept connections')
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
        private_tmpfs(self, self.base)
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


    # ---- hostile callers (issue 10) ------------------------------------

    def as_user(self, user, argv):
        uid, gid = self.bus.users[user]
        return subprocess.run(['setpriv', f'--reuid={uid}', f'--regid={gid}', '--clear-groups',
                               *argv], capture_output=True, text=True, cwd='/')

    def timed_error(self, user, method, *args):
        start = time.monotonic()
        ok, out = self.bus.call(user, method, *args)
        elapsed = time.monotonic() - start
        self.assertFalse(ok, out)
        return re.search(r'GDBus\.Error:([A-Za-z0-9_.]+):', out).group(1), out, elapsed

    def test_fifo_before_polkit(self):
        """Any local user (B is denied by polkit) names a FIFO as a file: the
        check before polkit must neither open it blocking nor keep a thread,
        and the helper still exits when idle."""
        self.helper.stop()
        binary = os.path.join(build_root(), 'src', 'helper', 'bangerd-root')
        self.helper = self.bus._spawn('bangerd-root-idle', [binary, '-vv', '--config', self.conf,
                                                            '--idle-timeout', '3'])
        self.bus.wait_for_name('org.banger.Helper', self.helper)
        for user in (B, A):
            fifo = os.path.join(self.files[user]['vm_dir'], 'fifo.raw')
            os.mkfifo(fifo)
            uid, gid = self.bus.users[user]
            os.chown(fifo, uid, gid)
            name, out, elapsed = self.timed_error(user, 'LaunchJailed',
                                                  self.spec(user, rootfs=f"<'{fifo}'>"), '{}')
            self.assertEqual(name, 'org.banger.Error.InvalidArgument', out)
            self.assertLess(elapsed, 2.0, f'answered after {elapsed:.1f} s')
        self.assert_nothing_created()
        # No thread is left parked on the FIFO: the idle exit happens.
        self.assertEqual(self.helper.proc.wait(15), 0, self.helper.output())

    def test_forged_pidfile(self):
        """The chroot is the VM user's (the jailer chowns it), so the pidfile
        is theirs to forge: another user's process named firecracker with the
        jail's id must not be signalled, and a FIFO or an endless file in its
        place must not stall the helper."""
        victim_sock = os.path.join(self.files[B]['vm_dir'], 'victim.sock')
        uid_b, gid_b = self.bus.users[B]
        # B's own Firecracker, run directly (no jail), with the id A's jail
        # is about to take: named firecracker, "--id VM_ID" on its command line.
        victim = subprocess.Popen(
            ['setpriv', f'--reuid={uid_b}', f'--regid={gid_b}', '--clear-groups',
             '/usr/bin/python3', os.path.join(source_root(), 'tests', 'fakes',
                                              'fake-firecracker.py'),
             '--id', VM_ID, '--api-sock', victim_sock],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd='/',
            env={'PATH': '/usr/bin:/bin', **{k: v for k, v in os.environ.items()
                                             if k.startswith('FAKE_FIRECRACKER')}})
        self.addCleanup(lambda: (victim.kill(), victim.wait()))
        wait_until(lambda: os.path.exists(victim_sock), 10, 'the victim VMM')
        pid = self.launch(A)
        self.wait_api()
        self.kill_and_wait(pid)
        pidfile = os.path.join(self.chroot(), 'firecracker.pid')
        # A, owner of the chroot, puts B's pid into the pidfile.
        res = self.as_user(A, ['/usr/bin/python3', '-c', 'import os,sys; os.unlink(sys.argv[1]); '
                               'open(sys.argv[1], "w").write(sys.argv[2])',
                               pidfile, str(victim.pid)])
        self.assertEqual(res.returncode, 0, res.stderr)
        name, out, elapsed = self.timed_error(A, 'KillJailed', VM_ID, '9', '{}')
        self.assertEqual(name, 'org.banger.Error.NotFound', out)
        self.assertIsNone(victim.poll(), 'B\'s VMM was killed through A\'s forged pidfile')
        # A FIFO and a link to an endless device in its place: answered at
        # once, and the jail lock is not held (a launch still works).
        for plant in (['/usr/bin/python3', '-c', 'import os,sys; os.unlink(sys.argv[1]); '
                       'os.mkfifo(sys.argv[1])', pidfile],
                      ['/usr/bin/python3', '-c', 'import os,sys; os.unlink(sys.argv[1]); '
                       'os.symlink("/dev/zero", sys.argv[1])', pidfile]):
            res = self.as_user(A, plant)
            self.assertEqual(res.returncode, 0, res.stderr)
            name, out, elapsed = self.timed_error(A, 'KillJailed', VM_ID, '9', '{}')
            self.assertEqual(name, 'org.banger.Error.NotFound', out)
            self.assertLess(elapsed, 2.0, f'answered after {elapsed:.1f} s')
        self.launch(A)
        self.assertIsNone(victim.poll())

    def test_relaunch_symlink_race(self):
        """A relaunch bind-mounts the user's files into the jail (another
        filesystem). The test pauses the helper on the open of the empty
        target file (fanotify FAN_OPEN_PERM, so the race is deterministic)
        and, as the VM's user, swaps that name for a symlink to a root-owned
        file: the user's kernel must never be mounted over it."""
        self.private_chroot_base()
        pid = self.launch()
        self.wait_api()
        self.kill_and_wait(pid)
        victim = os.path.join(self.bus.tmp, 'victim')
        with open(victim, 'w') as f:
            f.write('root only\n')
        target = os.path.join(self.chroot(), 'vmlinux')
        swaps = []
        with FanotifyPause(self.base) as pause:
            def on_open(path):
                if path == target and not swaps:
                    res = self.as_user(A, ['/usr/bin/python3', '-c',
                                           'import os,sys; os.rename(sys.argv[1], sys.argv[1] + '
                                           '".x"); os.symlink(sys.argv[2], sys.argv[1])',
                                           target, victim])
                    swaps.append(res.returncode == 0)
            pause.on_open = on_open
            ok, out = self.bus.call(A, 'LaunchJailed', self.spec(A), '{}')
        if ok:
            self.vmm_pids.append(int(re.match(r'\(uint32 (\d+),\)', out).group(1)))
        self.assertEqual(len(swaps), 1, 'the helper never opened the target file')
        self.addCleanup(lambda: victim in mount_points() and libc_call(
            'umount2', victim.encode(), MNT_DETACH))
        self.assertNotIn(victim, mount_points())
        with open(victim) as f:
            self.assertEqual(f.read(), 'root only\n')
        self.assertFalse(swaps[0], 'the VM user could rename in the jail root before launch')
        self.assertTrue(ok, out)

    def test_fake_jailer_like_real(self):
        """The fake jailer does what the real one does where banger depends
        on it (src/jailer/src/env.rs upstream)."""
        pid = self.launch()
        self.wait_api()
        root = self.chroot()
        for rel in ('', 'dev', 'dev/net', 'run'):
            st = os.stat(os.path.join(root, rel))
            self.assertEqual((st.st_uid, st.st_gid), (self.uid_a, self.gid_a), rel)
            self.assertEqual(st.st_mode & 0o777, 0o700, rel)
        for rel, dev in (('dev/kvm', (10, 232)), ('dev/net/tun', (10, 200))):
            st = os.lstat(os.path.join(root, rel))
            self.assertTrue(stat.S_ISCHR(st.st_mode), rel)
            self.assertEqual((os.major(st.st_rdev), os.minor(st.st_rdev)), dev, rel)
            self.assertEqual(st.st_uid, self.uid_a, rel)
        copy = os.lstat(os.path.join(root, 'firecracker'))
        self.assertTrue(stat.S_ISREG(copy.st_mode))
        self.assertEqual(copy.st_uid, self.uid_a)
        # --daemonize is a double fork: the VMM is no child of the helper
        # and no session leader.
        with open(f'/proc/{pid}/stat') as f:
            ppid = int(f.read().rsplit(')', 1)[1].split()[1])
        self.assertNotEqual(ppid, self.helper.pid)
        self.assertNotEqual(os.getsid(pid), pid)
        with open(os.path.join(root, 'firecracker.pid')) as f:
            self.assertEqual(f.read(), str(pid))
        # An existing node makes the jailer fail (mknod EEXIST), as upstream.
        self.kill_and_wait(pid)
        os.unlink(os.path.join(root, 'firecracker.pid'))
        res = subprocess.run([os.path.join(source_root(), 'tests', 'fakes', 'fake-jailer'),
                              '--id', VM_ID, '--exec-file', self.firecracker,
                              '--uid', str(self.uid_a), '--gid', str(self.gid_a),
                              '--chroot-base-dir', self.base, '--', '--api-sock',
                              '/run/firecracker.socket'], capture_output=True, text=True,
                             timeout=30)
        self.assertNotEqual(res.returncode, 0)
        self.assertIn('mknod', res.stderr)
        # and the helper's relaunch, which rebuilds the root, works
        self.launch()


class JailStateTest(JailTest):
    """TakeJailState, and LaunchJailed's state files: the saved state of a
    jailed Firecracker out of its jail into the user's directory, and into
    a new jail for the restore. The jail is the VM user's (the jailer
    chowns it), so everything in it is hostile: a compromised VMM can put
    anything where the state should be."""

    def setUp(self):
        super().setUp()
        # The restore's read-only bind mounts (LaunchJailed's state files)
        # go in a mount namespace of this test's own, which the restarted
        # helper shares: nothing is mounted on the host, and what is left
        # is detached at the end.
        self.helper.stop()
        libc_call('unshare', CLONE_NEWNS)
        libc_call('mount', b'none', b'/', None, ctypes.c_ulong(MS_REC | MS_PRIVATE), None)
        self.start_helper()
        self.addCleanup(self.detach_jail_mounts)

    def detach_jail_mounts(self):
        for m in mount_points():
            if m.startswith(self.base + '/'):
                libc_call('umount2', m.encode(), MNT_DETACH)

    def plant(self, name, data=b'', user=A, size=None):
        """A file in the jail's /run as the jail's user would leave it."""
        uid, gid = self.bus.users[user]
        path = os.path.join(self.chroot(), 'run', name)
        with open(path, 'wb') as f:
            f.write(data)
            if size is not None:
                f.truncate(size)
        os.chown(path, uid, gid)
        return path

    def dest(self, user=A, name='suspend'):
        uid, gid = self.bus.users[user]
        d = os.path.join(self.files[user]['vm_dir'], name)
        os.makedirs(d, exist_ok=True)
        os.chown(d, uid, gid)
        return d

    def take(self, dest, user=A, vm_id=VM_ID):
        return self.bus.call(user, 'TakeJailState', f"'{vm_id}'", f"'{dest}'", '{}')

    def take_error(self, dest, user=A):
        ok, out = self.take(dest, user)
        self.assertFalse(ok, out)
        return re.search(r'GDBus\.Error:([A-Za-z0-9_.]+):', out).group(1), out

    def check_take_and_restore(self):
        pid = self.launch()
        self.wait_api()
        memory = os.urandom(64 * 1024)
        self.plant('memory', memory)
        self.plant('vmstate', b'{"state": 1}')
        dest = self.dest()
        ok, out = self.take(dest)
        self.assertTrue(ok, out)
        self.assertTrue(re.search(rf'AUDIT uid={self.uid_a} method=TakeJailState '
                                  r'action=org.banger.vm.launch .* result=ok',
                                  self.helper.output()))
        self.assertEqual(sorted(os.listdir(dest)), ['memory', 'vmstate'])
        for name, data in (('memory', memory), ('vmstate', b'{"state": 1}')):
            st = os.lstat(os.path.join(dest, name))
            self.assertTrue(stat.S_ISREG(st.st_mode))
            self.assertEqual((st.st_uid, st.st_gid), (self.uid_a, self.gid_a), name)
            self.assertEqual(st.st_nlink, 1, name)
            with open(os.path.join(dest, name), 'rb') as f:
                self.assertEqual(f.read(), data)
            # the jail keeps no name for it
            self.assertFalse(os.path.lexists(os.path.join(self.chroot(), 'run', name)))
        # never written over: a second take finds nothing, and even with
        # new files in the jail refuses to replace the first
        self.plant('memory', b'new')
        self.plant('vmstate', b'new')
        name, out = self.take_error(dest)
        self.assertEqual(name, 'org.banger.Error.Exists', out)
        with open(os.path.join(dest, 'memory'), 'rb') as f:
            self.assertEqual(f.read(), memory)
        # the restore: a new jail with the state linked in, the very files
        self.kill_and_wait(pid)
        self.launch(state=f"<'{dest}/vmstate'>", memory=f"<'{dest}/memory'>")
        self.wait_api()
        for name in ('vmstate', 'memory'):
            in_jail = os.path.join(self.chroot(), name)
            self.assertTrue(os.path.samefile(in_jail, os.path.join(dest, name)), name)
            # bind-mounted read-only, even where a hard link would do: the
            # VMM (the user) cannot write to the state it restores from
            self.assertIn(in_jail, mount_points())
            res = self.as_user(A, ['/usr/bin/python3', '-c',
                                   'import sys; open(sys.argv[1], "r+b").write(b"x")', in_jail])
            self.assertNotEqual(res.returncode, 0)
            self.assertIn('Read-only file system', res.stderr)
        # the stale /run files of the old jail went with its root
        self.assertFalse(os.path.lexists(os.path.join(self.chroot(), 'run', 'memory')))
        return dest

    def test_take_state_fake(self):
        self.check_take_and_restore()

    def test_take_state_copy_fake(self):
        """The jail on another filesystem: copied, not linked, and still
        the user's."""
        self.private_chroot_base()
        dest = self.check_take_and_restore()
        self.assertNotEqual(os.stat(dest).st_dev, os.stat(self.chroot()).st_dev)

    def test_take_state_hostile_fake(self):
        pid = self.launch()
        self.wait_api()
        dest = self.dest()
        precious = os.path.join(self.files[A]['data'], 'precious')
        with open(precious, 'wb') as f:
            f.write(b'keep me')
        os.chown(precious, self.uid_a, self.gid_a)
        root_file = os.path.join(self.bus.tmp, 'root-only')
        with open(root_file, 'wb') as f:
            f.write(b'root')
        run = os.path.join(self.chroot(), 'run')

        def symlink(p):
            os.symlink(precious, p)

        def hardlink(p):
            os.link(precious, p)

        def fifo(p):
            os.mkfifo(p)
            os.chown(p, self.uid_a, self.gid_a)

        def directory(p):
            os.mkdir(p)
            os.chown(p, self.uid_a, self.gid_a)

        def oversized(p):
            # more than the jail's 256 MiB of guest memory, or than any
            # microVM state (sparse)
            name = os.path.basename(p)
            self.plant(name, size=((256 if name == 'memory' else 64) << 20) + 1)

        def root_owned(p):
            with open(p, 'wb') as f:
                f.write(b'x')

        def missing(p):
            pass

        cases = [('symlink', symlink, 'symlinks are not followed'),
                 ('hard link', hardlink, 'has 2 links'),
                 ('fifo', fifo, 'not a regular file'),
                 ('directory', directory, 'not a regular file'),
                 ('oversized', oversized, 'more than the'),
                 ('root-owned', root_owned, 'is owned by uid 0'),
                 ('missing', missing, 'No such file')]
        for what, make, message in cases:
            for name in ('memory', 'vmstate'):
                for n in ('memory', 'vmstate'):
                    p = os.path.join(run, n)
                    if os.path.isdir(p) and not os.path.islink(p):
                        os.rmdir(p)
                    elif os.path.lexists(p):
                        os.unlink(p)
                self.plant('memory' if name == 'vmstate' else 'vmstate', b'fine')
                make(os.path.join(run, name))
                start = time.monotonic()
                err, out = self.take_error(dest)
                self.assertLess(time.monotonic() - start, 5, f'{what} {name}')
                self.assertIn(err, ('org.banger.Error.InvalidArgument',
                                    'org.banger.Error.NotFound'), f'{what} {name}: {out}')
                self.assertIn(message, out, f'{what} {name}')
                self.assertIn(f'/run/{name}', out, f'{what} {name}')
                self.assertEqual(os.listdir(dest), [], f'{what} {name}')
        with open(precious, 'rb') as f:
            self.assertEqual(f.read(), b'keep me')
        self.assertEqual(os.stat(precious).st_nlink, 1)
        with open(root_file, 'rb') as f:
            self.assertEqual(f.read(), b'root')
        self.assertTrue(alive(pid))

        # the destination: only a directory of the caller's, under the
        # caller's banger directories, reached without a symlink
        for p in ('memory', 'vmstate'):
            q = os.path.join(run, p)
            if os.path.lexists(q):
                os.unlink(q)
        self.plant('memory', b'm')
        self.plant('vmstate', b's')
        link_dir = os.path.join(self.files[A]['data'], 'linkdir')
        os.symlink(dest, link_dir)
        os.lchown(link_dir, self.uid_a, self.gid_a)
        root_dir = os.path.join(self.files[A]['data'], 'rootdir')
        os.makedirs(root_dir)
        for bad in (link_dir, root_dir, self.dest(B), self.bus.tmp, '/etc',
                    self.files[A]['data'] + '/../x'):
            err, out = self.take_error(bad)
            self.assertEqual(err, 'org.banger.Error.InvalidArgument', f'{bad}: {out}')
        self.assertEqual(os.listdir(root_dir), [])
        self.assertEqual(os.listdir(self.dest(B)), [])
        # another user: checked before polkit (B is denied by polkit)
        for dest_b in (self.dest(B), dest):
            err, out = self.take_error(dest_b, user=B)
            self.assertEqual(err, 'org.banger.Error.NotAuthorized', out)
        self.assertTrue(os.path.exists(os.path.join(run, 'memory')))
        # and an existing name in the destination is kept
        with open(os.path.join(dest, 'vmstate'), 'wb') as f:
            f.write(b'mine')
        err, out = self.take_error(dest)
        self.assertEqual(err, 'org.banger.Error.Exists', out)
        self.assertEqual(sorted(os.listdir(dest)), ['vmstate'])
        with open(os.path.join(dest, 'vmstate'), 'rb') as f:
            self.assertEqual(f.read(), b'mine')
        # after all that, a good take works
        os.unlink(os.path.join(dest, 'vmstate'))
        ok, out = self.take(dest)
        self.assertTrue(ok, out)
        self.assertTrue(alive(pid))

    def test_fake_snapshot_as_jail_uid_fake(self):
        """End to end with the fakes as the real ones behave: the jailed
        fake Firecracker (running as A) writes its snapshot at
        chroot-relative paths, owned by A; TakeJailState hands it to A; the
        relaunched jail loads it from /vmstate and /memory."""
        self.launch()
        sock = self.wait_api()
        for method, path, body in (
                ('PUT', '/boot-source', {'kernel_image_path': '/vmlinux',
                                         'boot_args': 'console=ttyS0 reboot=k'}),
                ('PUT', '/drives/rootfs', {'drive_id': 'rootfs', 'path_on_host': '/rootfs',
                                           'is_root_device': True, 'is_read_only': False}),
                ('PUT', '/actions', {'action_type': 'InstanceStart'}),
                ('PATCH', '/vm', {'state': 'Paused'}),
                ('PUT', '/snapshot/create', {'snapshot_type': 'Full',
                                             'snapshot_path': '/run/vmstate',
                                             'mem_file_path': '/run/memory'})):
            status, reply = http_request(sock, method, path, body)
            self.assertEqual(status, 204, f'{method} {path}: {reply}')
        run = os.path.join(self.chroot(), 'run')
        for name in ('vmstate', 'memory'):
            st = os.lstat(os.path.join(run, name))
            self.assertTrue(stat.S_ISREG(st.st_mode), name)
            self.assertEqual(st.st_uid, self.uid_a, name)
        with open(os.path.join(run, 'vmstate')) as f:
            saved = json.load(f)['config']
        self.assertEqual(saved['/drives/rootfs']['path_on_host'], '/rootfs')
        dest = self.dest()
        ok, out = self.take(dest)
        self.assertTrue(ok, out)
        pid = int(open(os.path.join(self.chroot(), 'firecracker.pid')).read())
        self.kill_and_wait(pid)
        self.launch(state=f"<'{dest}/vmstate'>", memory=f"<'{dest}/memory'>")
        sock = self.wait_api()
        for method, path, body in (
                ('PUT', '/snapshot/load', {'snapshot_path': '/vmstate',
                                           'mem_backend': {'backend_type': 'File',
                                                           'backend_path': '/memory'},
                                           'resume_vm': False}),
                ('PATCH', '/drives/rootfs', {'drive_id': 'rootfs', 'path_on_host': '/rootfs'}),
                ('PATCH', '/vm', {'state': 'Resumed'})):
            status, reply = http_request(sock, method, path, body)
            self.assertEqual(status, 204, f'{method} {path}: {reply}')
        self.assertIn('"state": "Running"', http_get(sock, '/'))

    def test_launch_state_refused_fake(self):
        """The state's files pass the disk's checks, and go together."""
        dest = self.dest()
        good = os.path.join(dest, 'vmstate')
        with open(good, 'wb') as f:
            f.write(b's')
        os.chown(good, self.uid_a, self.gid_a)
        for spec in ({'state': f"<'{good}'>"},
                     {'state': f"<'{good}'>", 'memory': "<'/etc/passwd'>"},
                     {'state': f"<'{good}'>",
                      'memory': f"<'{self.files[B]['rootfs']}'>"}):
            name, out = self.error(A, 'LaunchJailed', self.spec(A, **spec), '{}')
            self.assertEqual(name, 'org.banger.Error.InvalidArgument', out)
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
