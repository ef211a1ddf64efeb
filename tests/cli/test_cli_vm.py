#!/usr/bin/python3
"""The banger CLI against real guests.

Every case gets its own world, the way tests/vm does it: a private system
bus with the real polkitd and bangerd-root in a network namespace this test
creates, and a private session bus that activates the real bangerd inside
that namespace (the test thread enters it, so every process it spawns —
dbus-daemon, bangerd, QEMU, banger, ssh — lives there). QEMU runs under
TCG. The CLI is the only client: each assertion is about what a user sees
(output, exit status, messages) and about what is left behind.

CliImageTest needs no network: only a session bus and bangerd (image
builds and kernel imports are local work).

One meson test per test case (tests/cli/meson.build)."""

import fcntl
import json
import os
import pty
import re
import select
import signal
import subprocess
import sys
import tempfile
import termios
import time
import unittest

import image_cache  # noqa: E402
from netns import current_netns, enter_netns, leave_netns  # noqa: E402
from session_bus import SessionBus, build_root, wait_pid_gone
from system_bus import SystemBus

BANGER = os.path.join(build_root(), 'src', 'cli', 'banger')
AGENT = os.path.join(build_root(), 'src', 'agent', 'banger-agent')
# What the debian image is made of besides the agent (the cache's key).
DEBIAN_RECIPE = os.path.join(os.environ['BANGER_SOURCE_ROOT'], 'src', 'service', 'assets',
                             'image-recipes.c')
# The first start in a world builds the default image and kernel.
BOOT_TIMEOUT = 240
TIMEOUT = 60




def read_until(fd, pattern, timeout):
    """Reads from @fd until @pattern (bytes regex) matches what was read or
    EOF; returns everything read. Waits on the descriptor, not on time."""
    data = b''
    deadline = time.monotonic() + timeout
    while not re.search(pattern, data):
        left = deadline - time.monotonic()
        if left <= 0:
            break
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            break
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: the pty's other side is closed
            break
        if not chunk:
            break
        data += chunk
    return data


class _World(unittest.TestCase):
    """Common plumbing: env, running banger, logs on failure."""

    def banger(self, *args, status=0, timeout=TIMEOUT, **kw):
        kw.setdefault('stdin', subprocess.DEVNULL)
        r = subprocess.run([BANGER] + list(args), env=self.env, capture_output=True, text=True,
                           timeout=timeout, **kw)
        if status is not None:
            self.assertEqual(r.returncode, status,
                             'banger %s exited %d\nstdout:\n%s\nstderr:\n%s' %
                             (' '.join(args), r.returncode, r.stdout, r.stderr))
        return r

    def popen(self, *args, **kw):
        kw.setdefault('stdin', subprocess.DEVNULL)
        proc = subprocess.Popen([BANGER] + list(args), env=self.env, **kw)
        self.addCleanup(self._reap, proc)
        return proc

    def _reap(self, proc):
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()

    def _outcome_failed(self):
        outcome = getattr(self, '_outcome', None)
        if outcome is None:
            return False
        result = getattr(outcome, 'result', None)
        errors = getattr(result, 'errors', []) + getattr(result, 'failures', [])
        return bool(errors) or not getattr(outcome, 'success', True)

    def vms(self):
        return json.loads(self.banger('vm', 'list', '--json').stdout)

    def assert_clean_error(self, r, *words):
        self.assertTrue(r.stderr.startswith('banger: '), r.stderr)
        self.assertNotIn('GDBus.Error', r.stderr)
        self.assertNotIn('org.banger.Error', r.stderr)
        for word in words:
            self.assertIn(word, r.stderr)


class NetWorld(_World):
    """A world with networking: helper, polkitd and bangerd in a netns.
    (Also the base of tests/cli/test_cli_pull.py's VM cases.)"""

    # True: the system bus has no helper and cannot activate one (a host
    # where banger's system files were never installed).
    WITHOUT_HELPER = False
    # True: the case boots the debian image, built before the netns exists.
    BUILD_DEBIAN = False

    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory(prefix='banger-cli-vm-test-')
        self.tmpdir = self._tmp.name
        os.chmod(self.tmpdir, 0o755)
        self.addCleanup(self._tmp.cleanup)
        if self._testMethodName == 'test_ssh_debian' or self.BUILD_DEBIAN:
            self._build_debian_outside_netns()
        self._old_netns = current_netns()
        self.addCleanup(self._leave_netns)
        self.system = SystemBus()
        self.system.start()
        self.addCleanup(self._stop_system)
        if not self.WITHOUT_HELPER:
            self.system.start_helper()
            enter_netns(self.system.netns)
        env = dict(os.environ)
        env['BANGER_AGENT'] = AGENT
        env['BANGER_ACCEL'] = 'tcg'
        self.session = SessionBus(self.tmpdir, system_bus_address=self.system.address,
                                  bangerd_args=['-vv'], env=env)
        self.session.start()
        self.addCleanup(self._stop_session)
        self.env = dict(self.session.env)
        self.env['LC_ALL'] = 'C.UTF-8'

    def _build_debian_outside_netns(self):
        """debootstrap needs Debian's archive, which the test's netns cannot
        reach: build the image with a bangerd outside it, on the same data
        directory, before the networked world starts. No traffic goes
        anywhere but the apt archive the machine is configured with.

        Built for real once per test run (tests/lib/image_cache.py): the
        first case that needs it runs `banger image build debian`, the
        others register a copy of that root filesystem, which holds the same
        agent (the key) and the same sshd, so their VMs are the same."""
        env = dict(os.environ)
        env['BANGER_AGENT'] = AGENT
        builder = SessionBus(self.tmpdir, bangerd_args=['-vv'], env=env)
        builder.start()
        try:
            self.env = dict(builder.env)
            self.env['LC_ALL'] = 'C.UTF-8'

            def build():
                t0 = time.monotonic()
                r = self.banger('image', 'build', 'debian', timeout=360, status=None)
                if r.returncode != 0:
                    sys.stderr.write(builder.log())
                self.assertEqual((r.returncode, r.stdout), (0, 'debian\n'), r.stderr)
                sys.stderr.write('built the debian image in %.0f s\n' % (time.monotonic() - t0))
                image = json.loads(self.banger('image', 'show', 'debian', '--json').stdout)
                return os.path.join(builder.data_dir, 'images', image['id'], 'rootfs.ext4')

            rootfs, built = image_cache.ensure('debian', [DEBIAN_RECIPE, AGENT], build)
            if not built:
                t0 = time.monotonic()
                self.assertEqual(self.banger('image', 'register', 'debian', '--rootfs', rootfs,
                                             timeout=120).stdout, 'debian\n')
                sys.stderr.write('registered the debian image built earlier in this run (%s) '
                                 'in %.1f s\n' % (rootfs, time.monotonic() - t0))
        finally:
            builder.stop()

    def _leave_netns(self):
        leave_netns(self._old_netns)

    def vmm_pids(self):
        pids = set()
        vms = os.path.join(self.session.data_dir, 'vms')
        for vm_id in os.listdir(vms) if os.path.isdir(vms) else ():
            try:
                with open(os.path.join(vms, vm_id, 'qemu.pid')) as f:
                    pids.add(int(f.read().strip()))
            except (OSError, ValueError):
                pass
        return {p for p in pids if os.path.exists('/proc/%d' % p)}

    def _stop_session(self):
        # VMMs outlive bangerd by design: end the ones this test started.
        for pid in self.vmm_pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            wait_pid_gone(pid, 5)
        self.session.stop()
        if self._outcome_failed():
            sys.stderr.write('===== session bus and bangerd =====\n' + self.session.log())
            vms = os.path.join(self.session.data_dir, 'vms')
            for vm_id in os.listdir(vms) if os.path.isdir(vms) else ():
                log = os.path.join(vms, vm_id, 'console.log')
                if os.path.exists(log):
                    with open(log, errors='replace') as f:
                        sys.stderr.write('===== %s =====\n%s\n' % (log, f.read()[-4000:]))

    def _stop_system(self):
        if self._outcome_failed():
            sys.stderr.write(self.system.logs())
        self.system.stop()

    def boot(self, name, *create_args):
        self.banger('vm', 'create', name, *create_args)
        self.assertEqual(self.banger('vm', 'start', name, timeout=BOOT_TIMEOUT).stdout,
                         name + '\n')
        vm = json.loads(self.banger('vm', 'show', name, '--json').stdout)
        self.assertEqual(vm['state'], 'running')
        return vm

    def assert_nothing_left(self):
        self.assertEqual(self.vms(), [])
        self.assertEqual(self.vmm_pids(), set())
        taps = json.loads(self.system.ns_run(['ip', '-j', 'link', 'show']))
        self.assertEqual([t['ifname'] for t in taps if t['ifname'].startswith('bg')], [])



class CliVmTest(NetWorld):
    """vm run, exec, ssh, logs, stats, ports and state messages."""

    # ---- vm run ----------------------------------------------------------

    def test_run_exit_status(self):
        r = self.banger('vm', 'run', '--', 'sh', '-c', 'echo out; echo err >&2; exit 7',
                        status=7, timeout=BOOT_TIMEOUT)
        self.assertEqual(r.stdout, 'out\n')
        self.assertIn('err\n', r.stderr)
        self.assert_nothing_left()

    def test_run_uname(self):
        r = self.banger('vm', 'run', '--name', 'uname-test', '--memory', '512M', '--',
                        'uname', '-r', timeout=BOOT_TIMEOUT)
        self.assertRegex(r.stdout, r'^\d+\.\d+\.\d+\S*\n$')
        self.assert_nothing_left()
        # A name that is not valid is refused before anything is made.
        r = self.banger('vm', 'run', '--name', 'Bad_Name', '--', 'true', status=1)
        self.assert_clean_error(r, '“Bad_Name”')
        self.assert_nothing_left()

    def test_run_ctrl_c(self):
        """SIGINT to `vm run` reaches the guest command; the VM is removed."""
        proc = self.popen('vm', 'run', '--', 'sh', '-c', 'echo ready; exec sleep 100',
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        line = read_until(proc.stdout.fileno(), rb'ready\n', BOOT_TIMEOUT)
        self.assertIn(b'ready', line)
        proc.send_signal(signal.SIGINT)
        self.assertEqual(proc.wait(timeout=TIMEOUT), 130)
        self.assert_nothing_left()

    def test_run_shows_image_build(self):
        """A fresh data dir: the first start builds the default image and
        `vm run` shows that job on stderr (plain lines, not a tty)."""
        r = self.banger('vm', 'run', '--', 'true', timeout=BOOT_TIMEOUT)
        self.assertEqual(r.stdout, '')
        lines = r.stderr.splitlines()
        build = [l for l in lines if l.startswith('build-image minimal:')]
        self.assertTrue(build, r.stderr)
        self.assertIn('build-image minimal: done', lines)
        self.assert_nothing_left()

    # ---- vm exec -----------------------------------------------------------

    def test_exec_stdin_and_statuses(self):
        self.boot('ex')
        r = self.banger('vm', 'exec', 'ex', '--', 'cat', input='hi\n', stdin=None)
        self.assertEqual(r.stdout, 'hi\n')
        self.banger('vm', 'exec', 'ex', '--', 'true', status=0)
        self.banger('vm', 'exec', 'ex', '--', 'false', status=1)
        self.banger('vm', 'exec', 'ex', '--', 'sh', '-c', 'kill -9 $$', status=137)
        # without "--" too; stdout and stderr stay apart
        r = self.banger('vm', 'exec', 'ex', 'sh', '-c', 'echo o; echo e >&2')
        self.assertEqual((r.stdout, r.stderr), ('o\n', 'e\n'))
        # environment and working directory
        r = self.banger('vm', 'exec', '-e', 'GREETING=hello there', '-e', 'X=1', '-w', '/tmp',
                        'ex', '--', 'sh', '-c', 'echo "$GREETING/$X"; pwd')
        self.assertEqual(r.stdout, 'hello there/1\n/tmp\n')
        r = self.banger('vm', 'exec', '-e', 'NOVALUE', 'ex', '--', 'true', status=2)
        self.assertIn('NOVALUE', r.stderr)
        # a reader that stops early (`| head`): bangerd gets EPIPE writing the
        # rest of the output, and neither it nor the VM goes away
        daemon = self.session.bangerd_pid()
        proc = self.popen('vm', 'exec', 'ex', '--', 'sh', '-c',
                          'i=0; while [ $i -lt 4000 ]; do echo line-$i-of-enough-output-to-fill'
                          '-a-pipe; i=$((i+1)); done', stdout=subprocess.PIPE,
                          stderr=subprocess.DEVNULL)
        self.assertEqual(os.read(proc.stdout.fileno(), 7), b'line-0-')
        proc.stdout.close()
        proc.wait(timeout=TIMEOUT)
        self.assertEqual(self.banger('vm', 'exec', 'ex', '--', 'echo', 'still').stdout, 'still\n')
        self.assertEqual(self.session.bangerd_pid(), daemon)
        # the image has no sshd: `vm ssh` goes through the agent
        r = self.banger('vm', 'ssh', 'ex', '--', 'echo', 'via agent')
        self.assertEqual(r.stdout, 'via agent\n')

    def test_exec_tty(self):
        """`exec -t` under a real pty: the guest command sees a terminal."""
        self.boot('tty')
        pid, master = pty.fork()
        if pid == 0:
            # The window size the guest must see: ours, set before banger looks.
            fcntl.ioctl(0, termios.TIOCSWINSZ, bytes([33, 0, 111, 0, 0, 0, 0, 0]))
            os.execve(BANGER, [BANGER, 'vm', 'exec', '-t', 'tty', '--', 'sh', '-c',
                               'tty; stty size'], self.env)
        try:
            out = read_until(master, rb'\d+ \d+\s*\r?\n', TIMEOUT)
        finally:
            _, status = os.waitpid(pid, 0)
            os.close(master)
        self.assertEqual(os.waitstatus_to_exitcode(status), 0, out)
        self.assertRegex(out, rb'/dev/pts/\d+')
        self.assertIn(b'33 111', out)

    def test_exec_ctrl_c(self):
        """SIGINT to banger becomes SignalExec: the guest's sleep ends, 130."""
        self.boot('sig')
        proc = self.popen('vm', 'exec', 'sig', '--', 'sh', '-c', 'echo ready; exec sleep 100',
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.assertIn(b'ready', read_until(proc.stdout.fileno(), rb'ready\n', TIMEOUT))
        start = time.monotonic()
        proc.send_signal(signal.SIGINT)
        self.assertEqual(proc.wait(timeout=TIMEOUT), 130)
        self.assertLess(time.monotonic() - start, 20)
        r = self.banger('vm', 'exec', 'sig', '--', 'ps')
        self.assertNotIn('sleep 100', r.stdout)
        # SIGTERM is forwarded as SIGTERM
        proc = self.popen('vm', 'exec', 'sig', '--', 'sh', '-c', 'echo ready; exec sleep 100',
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.assertIn(b'ready', read_until(proc.stdout.fileno(), rb'ready\n', TIMEOUT))
        proc.send_signal(signal.SIGTERM)
        self.assertEqual(proc.wait(timeout=TIMEOUT), 128 + signal.SIGTERM)

    # ---- logs, stats, ports ------------------------------------------------

    def test_logs_stats_ports(self):
        self.boot('obs')
        out = self.banger('vm', 'logs', 'obs').stdout
        self.assertIn('Linux version', out)

        stats = json.loads(self.banger('vm', 'stats', 'obs', '--json').stdout)
        for key in ('vmm_cpu_seconds', 'vmm_rss_bytes', 'mem_total_bytes',
                    'mem_available_bytes', 'load1', 'load5', 'load15', 'disk_total_bytes',
                    'disk_free_bytes'):
            self.assertIn(key, stats)
        self.assertGreater(stats['vmm_rss_bytes'], 0)
        self.assertGreater(stats['mem_total_bytes'], 0)
        table = self.banger('vm', 'stats', 'obs').stdout
        self.assertRegex(table, r'(?m)^mem_total_bytes\s+\d+(\.\d)?\u00a0[KMG]iB$')

        # a guest listener shows up in `vm ports`
        listener = self.popen('vm', 'exec', 'obs', '--', 'busybox', 'nc', '-l', '-p', '8080',
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        ports = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            ports = json.loads(self.banger('vm', 'ports', 'obs', '--json').stdout)
            if any(p['port'] == 8080 for p in ports):
                break
        port = [p for p in ports if p['port'] == 8080]
        self.assertTrue(port, ports)
        self.assertEqual(set(port[0]), {'protocol', 'address', 'port', 'pid', 'process'})
        self.assertTrue(port[0]['protocol'].startswith('tcp'))
        # the process name is the executable's (busybox) or the applet's
        self.assertTrue(port[0]['process'] in ('nc', 'busybox'), port[0])
        self.assertGreater(port[0]['pid'], 0)
        table = self.banger('vm', 'ports', 'obs').stdout.splitlines()
        self.assertEqual(table[0].split(), ['PROTO', 'ADDRESS', 'PORT', 'PID', 'PROCESS'])
        self.assertTrue(any(' 8080 ' in line for line in table[1:]), table)
        listener.send_signal(signal.SIGTERM)
        self.assertEqual(listener.wait(timeout=TIMEOUT), 128 + signal.SIGTERM)

        # logs -f follows until the VM stops
        follow = self.popen('vm', 'logs', '-f', 'obs', stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
        self.assertIn(b'Linux version',
                      read_until(follow.stdout.fileno(), rb'Linux version', TIMEOUT))
        self.banger('vm', 'stop', 'obs', timeout=TIMEOUT)
        self.assertEqual(follow.wait(timeout=TIMEOUT), 0)

    # ---- state errors ------------------------------------------------------

    def test_state_messages(self):
        self.boot('st')
        r = self.banger('vm', 'start', 'st', status=1)
        self.assertEqual(r.stderr, 'banger: VM “st” is already running\n')
        self.assertEqual(self.banger('vm', 'stop', 'st', '-t', '20').stdout, 'st\n')
        r = self.banger('vm', 'exec', 'st', '--', 'true', status=1)
        self.assertEqual(r.stderr, 'banger: VM “st” is not running (it is stopped); start it '
                                   'with “banger vm start st”\n')
        for verb in ('stats', 'ports'):
            r = self.banger('vm', verb, 'st', status=1)
            self.assert_clean_error(r, 'not running')
        r = self.banger('vm', 'stop', 'st', status=1)
        self.assertEqual(r.stderr, 'banger: VM “st” is not running (it is stopped)\n')
        # like `docker restart`, restarting a stopped VM starts it
        self.banger('vm', 'restart', 'st', timeout=BOOT_TIMEOUT)
        self.banger('vm', 'exec', 'st', '--', 'true')
        self.banger('vm', 'restart', 'st', timeout=BOOT_TIMEOUT)
        self.banger('vm', 'exec', 'st', '--', 'true')
        # suspend and resume (docs/suspend.md)
        r = self.banger('vm', 'resume', 'st', status=1)
        self.assertEqual(r.stderr, 'banger: VM “st” is not suspended (it is running)\n')
        self.assertEqual(self.banger('vm', 'suspend', 'st', timeout=BOOT_TIMEOUT).stdout, 'st\n')
        r = self.banger('vm', 'exec', 'st', '--', 'true', status=1)
        self.assertEqual(r.stderr, 'banger: VM “st” is suspended; resume it with '
                                   '“banger vm resume st”\n')
        r = self.banger('vm', 'suspend', 'st', status=1)
        self.assertEqual(r.stderr, 'banger: VM “st” is not running (it is suspended)\n')
        self.assertIn('suspended', self.banger('vm', 'list').stdout)
        # `vm ps` lists VMs with a VMM: a suspended one has none
        ps = self.banger('vm', 'ps').stdout.splitlines()[1:]
        self.assertNotIn('st', [line.split()[0] for line in ps if line.strip()])
        self.assertEqual(self.banger('vm', 'resume', 'st', timeout=BOOT_TIMEOUT).stdout, 'st\n')
        self.banger('vm', 'exec', 'st', '--', 'true')
        self.assertEqual(self.banger('vm', 'kill', 'st').stdout, 'st\n')
        self.assertEqual(json.loads(self.banger('vm', 'show', 'st', '--json').stdout)['state'],
                         'stopped')
        self.banger('vm', 'rm', 'st')
        self.assert_nothing_left()

    # ---- ssh through real OpenSSH -----------------------------------------

    def test_ssh_debian(self):
        # built by setUp (see _build_debian_outside_netns)
        self.assertIn('debian', self.banger('image', 'list', '--names').stdout.split())
        self.boot('deb', '--image', 'debian')
        # stdin closed: a host-key prompt could not be answered and would fail
        r = self.banger('vm', 'ssh', 'deb', '--', 'uname', '-a', timeout=TIMEOUT)
        self.assertRegex(r.stdout, r'^Linux deb ')
        self.assertNotIn('authenticity', r.stderr)
        self.assertNotIn('Permanently added', r.stderr)
        # the exit status comes through ssh
        self.banger('vm', 'ssh', 'deb', '--', 'exit 3', status=3)


class CliNoHelperTest(NetWorld):
    """A host without the root helper: VMs boot without network, and the CLI
    says so with the command that fixes it (before, nothing was said)."""

    WITHOUT_HELPER = True

    def test_run_and_start_without_helper_say_so(self):
        r = self.banger('vm', 'run', '--name', 'nonet', '--', 'true', timeout=BOOT_TIMEOUT)
        self.assertIn('warning: VM “nonet” has no network (no IPv4 address, no nonet.vm name): '
                      'the root helper bangerd-root is not installed', r.stderr)
        self.assertIn('sudo banger system install --user ', r.stderr)
        self.assertEqual(self.vms(), [])
        self.banger('vm', 'create', 'kept')
        r = self.banger('vm', 'start', 'kept', timeout=BOOT_TIMEOUT)
        self.assertEqual(r.stdout, 'kept\n')
        self.assertIn('warning: VM “kept” has no network', r.stderr)
        self.assertIn('banger vm restart kept', r.stderr)
        show = self.banger('vm', 'show', 'kept').stdout
        self.assertRegex(show, r'(?m)^Network: +the root helper bangerd-root is not installed')
        # …and exec works through the agent all the same.
        self.assertEqual(self.banger('vm', 'exec', 'kept', '--', 'echo', 'hi').stdout, 'hi\n')

    def test_system_status_without_helper(self):
        r = self.banger('system', 'status', '--json', status=3)
        st = json.loads(r.stdout)
        self.assertFalse(st['ok'])
        self.assertIsNone(st['versions']['helper'])
        self.assertEqual(st['versions']['bangerd'], st['versions']['cli'])
        self.assertTrue(st['bus_names']['org.banger.Manager'])
        self.assertFalse(st['bus_names']['org.banger.Helper'])
        self.assertTrue(any('bangerd-root does not answer' in p and
                            'sudo banger system install' in p for p in st['problems']),
                        st['problems'])
        text = self.banger('system', 'status', status=3).stdout
        self.assertIn('Problems:', text)
        # The alias answers the same.
        alias = json.loads(self.banger('daemon', 'status', '--json', status=3).stdout)
        self.assertEqual(alias['problems'], st['problems'])


class CliImageTest(_World):
    """Images and kernels: a session bus and bangerd, no network needed."""

    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory(prefix='banger-cli-image-test-')
        self.tmpdir = self._tmp.name
        self.addCleanup(self._tmp.cleanup)
        env = dict(os.environ)
        env['BANGER_AGENT'] = AGENT
        self.session = SessionBus(self.tmpdir, bangerd_args=['-vv'], env=env)
        self.session.start()
        self.addCleanup(self._stop_session)
        self.env = dict(self.session.env)
        self.env['LC_ALL'] = 'C.UTF-8'

    def _stop_session(self):
        self.session.stop()
        if self._outcome_failed():
            sys.stderr.write('===== session bus and bangerd =====\n' + self.session.log())

    def test_image_build_progress_and_list(self):
        r = self.banger('image', 'build', 'minimal', '--name', 'mini', timeout=120)
        self.assertEqual(r.stdout, 'mini\n')
        # stderr is not a terminal: plain lines, one per message or step
        lines = r.stderr.splitlines()
        self.assertTrue(lines, r.stderr)
        for line in lines:
            self.assertTrue(line.startswith('build-image '), line)
            self.assertNotIn('\r', line)
            self.assertNotIn('\033', line)
        self.assertTrue(lines[-1].endswith(': done'), lines)
        self.assertRegex(r.stderr, r'\d+%')

        images = json.loads(self.banger('image', 'list', '--json').stdout)
        mini = [i for i in images if i['name'] == 'mini']
        self.assertEqual(len(mini), 1, images)
        for key in ('id', 'source', 'digest', 'size_bytes', 'kernel', 'created_at', 'config',
                    'used_by'):
            self.assertIn(key, mini[0])
        self.assertGreater(mini[0]['size_bytes'], 0)
        self.assertEqual(mini[0]['used_by'], [])
        self.assertEqual(json.loads(self.banger('image', 'show', 'mini', '--json').stdout),
                         mini[0])
        table = self.banger('image', 'list').stdout.splitlines()
        self.assertEqual(table[0].split(), ['NAME', 'SOURCE', 'KERNEL', 'SIZE', 'USED', 'BY',
                                            'CREATED'])
        self.assertIn('mini', self.banger('image', 'list', '--names').stdout.split())
        self.assertRegex(self.banger('image', 'show', 'mini').stdout, r'(?m)^Name:\s+mini$')

        # --quiet: nothing on stderr
        r = self.banger('image', 'build', 'minimal', '--name', 'quiet', '--quiet', timeout=120)
        self.assertEqual((r.stdout, r.stderr), ('quiet\n', ''))
        # a recipe that does not exist, a name that is taken
        r = self.banger('image', 'build', 'nosuch', status=1)
        self.assert_clean_error(r, 'nosuch')
        r = self.banger('image', 'build', 'minimal', '--name', 'mini', status=1)
        self.assert_clean_error(r, 'mini')
        # register: a rootfs file under a new name; rm
        self.assertEqual(self.banger('image', 'rm', 'quiet').stdout, 'quiet\n')
        r = self.banger('image', 'show', 'quiet', status=1)
        self.assertEqual(r.stderr, 'banger: no image named “quiet”\n')

    def test_image_progress_bar(self):
        """--progress=bar draws one line redrawn in place with \\r."""
        # bytes: text mode would turn the \r into \n
        r = subprocess.run([BANGER, 'image', 'build', 'minimal', '--name', 'barred',
                            '--progress', 'bar'], env=self.env, capture_output=True,
                           stdin=subprocess.DEVNULL, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, b'barred\n')
        self.assertIn(b'\r', r.stderr)
        self.assertNotIn(b'\n', r.stderr[:-1])
        self.assertRegex(r.stderr, rb'\r\[#{20}\] 100%  .*done\x1b\[K\n$')
        r = self.banger('image', 'build', 'minimal', '--progress', 'fancy', status=2)
        self.assertIn('fancy', r.stderr)

    def test_image_build_ctrl_c(self):
        """Ctrl-C during a build calls Job.Cancel: exit 130, no image kept."""
        proc = self.popen('image', 'build', 'debian', '--name', 'cancelled',
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        # the first progress line says the job is under way
        first = read_until(proc.stderr.fileno(), rb'\n', 60)
        self.assertTrue(first.startswith(b'build-image '), first)
        proc.send_signal(signal.SIGINT)
        self.assertEqual(proc.wait(timeout=60), 130)
        rest = proc.stderr.read().decode()
        self.assertIn('Cancelling', rest)
        self.assertIn('banger: interrupted', rest)
        self.assertEqual(proc.stdout.read(), b'')
        self.assertNotIn('cancelled', self.banger('image', 'list', '--names').stdout.split())

    def test_image_rm_in_use(self):
        self.banger('image', 'build', 'minimal', '--name', 'used', '--quiet', timeout=120)
        self.banger('vm', 'create', 'user', '--image', 'used')
        image = json.loads(self.banger('image', 'show', 'used', '--json').stdout)
        self.assertEqual(image['used_by'], ['user'])
        r = self.banger('image', 'rm', 'used', status=1)
        self.assert_clean_error(r, 'image “used” is in use', 'banger image rm -f used')
        self.assertIn('used', self.banger('image', 'list', '--names').stdout.split())
        self.banger('vm', 'rm', 'user')
        self.assertEqual(self.banger('image', 'rm', 'used').stdout, 'used\n')

    def test_image_register(self):
        self.banger('image', 'build', 'minimal', '--name', 'base', '--quiet', timeout=120)
        rootfs = os.path.join(self.tmpdir, 'rootfs.ext4')
        # a filesystem made big and mostly empty, as image files are
        subprocess.run(['mke2fs', '-q', '-t', 'ext4', '-F', rootfs, '1G'], check=True)
        self.assertEqual(self.banger('image', 'register', 'mine', '--rootfs', rootfs).stdout,
                         'mine\n')
        image = json.loads(self.banger('image', 'show', 'mine', '--json').stdout)
        self.assertEqual(image['name'], 'mine')
        # the copy is the same bytes and as sparse as the user's file (a
        # plain copy took the whole gigabyte)
        stored = os.path.join(self.session.data_dir, 'images', image['id'], 'rootfs.ext4')
        subprocess.run(['cmp', rootfs, stored], check=True)
        used = os.stat(rootfs).st_blocks * 512
        self.assertLessEqual(os.stat(stored).st_blocks * 512, used + (1 << 20),
                             'the registered image is not sparse')
        self.assertLess(used, 256 << 20)
        r = self.banger('image', 'register', 'mine2', status=2)
        self.assertIn('--rootfs', r.stderr)
        r = self.banger('image', 'register', 'mine3', '--rootfs', '/nonexistent', status=1)
        self.assert_clean_error(r, '/nonexistent', 'does not exist')

    def test_kernel_import_not_a_kernel(self):
        junk = os.path.join(self.tmpdir, 'not-a-kernel')
        with open(junk, 'wb') as f:
            f.write(b'this is not a kernel\n' * 100)
        r = self.banger('kernel', 'import', junk, '--name', 'junk', status=1)
        self.assert_clean_error(r, 'not-a-kernel')
        self.assertEqual(len(r.stderr.splitlines()), 1, r.stderr)
        r = self.banger('kernel', 'import', os.path.join(self.tmpdir, 'missing'), status=1)
        self.assert_clean_error(r, 'does not exist')
        self.assertNotIn('junk', self.banger('kernel', 'list', '--names').stdout.split())
        r = self.banger('kernel', 'show', 'junk', status=1)
        self.assertEqual(r.stderr, 'banger: no kernel named “junk”\n')
        r = self.banger('kernel', 'rm', 'junk', status=1)
        self.assert_clean_error(r, 'junk')

    def test_kernel_import_list_show_rm(self):
        kernels = sorted(k for k in os.listdir('/boot') if k.startswith('vmlinuz-'))
        if not kernels:
            self.fail('no kernel in /boot (Debian package linux-image-cloud-amd64)')
        path = os.path.join('/boot', kernels[-1])
        release = kernels[-1][len('vmlinuz-'):]
        self.assertEqual(self.banger('kernel', 'import', path, '--name', 'host',
                                     timeout=120).stdout, 'host\n')
        listed = json.loads(self.banger('kernel', 'list', '--json').stdout)
        host = [k for k in listed if k['name'] == 'host']
        self.assertEqual(len(host), 1, listed)
        self.assertEqual(host[0]['version'], release)
        for key in ('id', 'source', 'path', 'vmlinux_path', 'initrd_path', 'created_at'):
            self.assertIn(key, host[0])
        self.assertEqual(json.loads(self.banger('kernel', 'show', 'host', '--json').stdout),
                         host[0])
        text = self.banger('kernel', 'show', 'host').stdout
        self.assertRegex(text, r'(?m)^Version:\s+%s$' % re.escape(release))
        table = self.banger('kernel', 'list').stdout.splitlines()
        self.assertEqual(table[0].split(), ['NAME', 'VERSION', 'SOURCE', 'INITRD', 'CREATED'])
        r = self.banger('kernel', 'import', path, '--name', 'host', status=1)
        self.assert_clean_error(r, 'kernel “host” already exists')
        self.assertEqual(self.banger('kernel', 'rm', 'host').stdout, 'host\n')
        self.assertNotIn('host', self.banger('kernel', 'list', '--names').stdout.split())


if __name__ == '__main__':
    unittest.main()
