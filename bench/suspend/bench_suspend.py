#!/usr/bin/python3
"""bench/suspend: `banger vm suspend` and `banger vm resume` of a 512 MiB
guest with a running process, side by side with QEMU's own migration of
the very same guest to a file and an `-incoming` QEMU restoring it, in one
run, and the ratios (goal: ≤ 1.2, issue 13).

Each run, on one banger VM (image minimal, 512 MiB, a guest process
counting in a loop):
- bare save: on the VM's own QMP socket, `stop`, `migrate` into a file
  (handed over with getfd, the same "fd:" URI banger uses, since QEMU 7.2
  has no "file:" URI) until `completed`, with the same max-bandwidth
  banger sets; then the disk overlay is copied and the guest continued;
- bare restore: the VM's QEMU command line (as bangerd ran it, read from
  /proc) moved to a scratch directory, the VM's tap swapped for one of its
  own (the stream's virtio-net wants a vnet_hdr backend), plus
  `-incoming defer`; spawn → `migrate-incoming` → `completed` → `cont` →
  `running`;
- banger: `banger vm suspend` (save, VMM ended, tap deleted) and
  `banger vm resume` (tap, VMM restoring, the guest agent answering), each
  timed around the CLI.

Runs in a private world like the tests (private buses, polkitd, the helper
in a network namespace): run as root from a build tree,
    meson test -C build --benchmark --suite bench --verbose
or  BANGER_BUILD_ROOT=build /usr/bin/python3 bench/suspend/bench_suspend.py [RUNS]
"""

import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_ROOT = os.path.dirname(os.path.dirname(HERE))
os.environ.setdefault('BANGER_SOURCE_ROOT', SOURCE_ROOT)
os.environ.setdefault('BANGER_BUILD_ROOT', os.path.join(SOURCE_ROOT, 'build'))
BUILD = os.path.abspath(os.environ['BANGER_BUILD_ROOT'])
sys.path.insert(0, os.path.join(SOURCE_ROOT, 'tests', 'lib'))
sys.path.insert(0, os.path.join(SOURCE_ROOT, 'bench', 'boot'))

from bench_boot import banger, timed  # noqa: E402
from netns import enter_netns  # noqa: E402
from session_bus import SessionBus  # noqa: E402
from system_bus import SystemBus  # noqa: E402

MEMORY = '512M'
# banger's setting (src/service/vmm/vmm-qemu-state.c), so the ratio is
# banger's overhead, not a different throttle.
MAX_BANDWIDTH = 64 << 30
COUNTER = 'i=0; while :; do i=$((i+1)); echo $i > /root/counter; sleep 0.05; done'
TIMEOUT_S = 300
# The bare QEMU's own tap (the stream's virtio-net wants a vnet_hdr backend
# as the VM's tap has), made in the benchmark's network namespace.
BARE_TAP = 'benchtap0'


class Qmp:
    """A minimal QMP client (the benchmark's baseline needs nothing more)."""

    def __init__(self, path):
        deadline = time.monotonic() + 30
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.connect(path)
                break
            except OSError:
                self.sock.close()
                if time.monotonic() > deadline:
                    raise
                # QEMU binds its QMP socket while starting: nothing to wait on.
                time.sleep(0.002)
        self.file = self.sock.makefile('rb')
        self.read()  # greeting
        self.execute('qmp_capabilities')

    def read(self):
        while True:
            msg = json.loads(self.file.readline())
            if 'event' not in msg:
                return msg

    def execute(self, command, fd=None, **args):
        line = json.dumps({'execute': command, 'arguments': args}).encode() + b'\n'
        if fd is None:
            self.sock.sendall(line)
        else:
            socket.send_fds(self.sock, [line], [fd])
        reply = self.read()
        if 'error' in reply:
            raise RuntimeError('%s: %s' % (command, reply['error']))
        return reply['return']

    def wait(self, query, key, values):
        deadline = time.monotonic() + TIMEOUT_S
        while time.monotonic() < deadline:
            value = self.execute(query).get(key)
            if value in values:
                return value
            time.sleep(0.005)  # the same poll interval as banger's
        raise RuntimeError('%s never reached %s' % (query, values))

    def close(self):
        self.file.close()
        self.sock.close()


def bare_save(qmp_path, state_file):
    """stop + migrate to @state_file until completed, on a running QEMU."""
    qmp = Qmp(qmp_path)
    fd = os.open(state_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        start = time.monotonic()
        qmp.execute('stop')
        qmp.execute('migrate-set-parameters', **{'max-bandwidth': MAX_BANDWIDTH})
        qmp.execute('getfd', fd=fd, fdname='bench')
        qmp.execute('migrate', uri='fd:bench')
        status = qmp.wait('query-migrate', 'status', ('completed', 'failed', 'cancelled'))
        os.fsync(fd)
        took = time.monotonic() - start
    finally:
        os.close(fd)
    if status != 'completed':
        raise RuntimeError('bare migrate: ' + status)
    return qmp, took


def bare_restore_argv(cmdline, vm_dir, bare_dir):
    argv = [a.replace(vm_dir, bare_dir) for a in cmdline]
    out = []
    for a in argv:
        if a.startswith('tap,id=net0'):
            a = 'tap,id=net0,ifname=%s,script=no,downscript=no' % BARE_TAP
        # in the foreground, so its complaints reach the benchmark's output
        if a != '-daemonize':
            out.append(a)
    return out + ['-incoming', 'defer']


def bare_restore(argv, bare_dir, state_file):
    start = time.monotonic()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL)
    qmp = Qmp(os.path.join(bare_dir, 'qmp.sock'))
    fd = os.open(state_file, os.O_RDONLY)
    try:
        qmp.execute('getfd', fd=fd, fdname='bench')
    finally:
        os.close(fd)
    qmp.execute('migrate-incoming', uri='fd:bench')
    status = qmp.wait('query-migrate', 'status', ('completed', 'failed'))
    if status != 'completed':
        raise RuntimeError('bare restore: ' + status)
    qmp.wait('query-status', 'status', ('paused', 'running'))
    qmp.execute('cont')
    qmp.wait('query-status', 'status', ('running',))
    took = time.monotonic() - start
    qmp.execute('quit')
    qmp.close()
    proc.wait(30)
    return took


def main():
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    tmp = tempfile.mkdtemp(prefix='banger-bench-suspend-')
    os.chmod(tmp, 0o755)
    system = SystemBus(test_users=False)
    session = None
    try:
        system.start()
        system.start_helper()
        enter_netns(system.netns)
        subprocess.run(['ip', 'tuntap', 'add', 'dev', BARE_TAP, 'mode', 'tap'], check=True)
        env = dict(os.environ)
        env['BANGER_AGENT'] = os.path.join(BUILD, 'src', 'agent', 'banger-agent')
        session = SessionBus(tmp, system_bus_address=system.address, env=env)
        session.start()
        cenv = dict(session.env)
        cenv['DBUS_SESSION_BUS_ADDRESS'] = session.address

        banger(cenv, 'vm', 'create', 'bench', '--image', 'minimal', '--memory', MEMORY)
        banger(cenv, 'vm', 'start', 'bench')
        banger(cenv, 'vm', 'exec', 'bench', '--', 'setsid', 'sh', '-c',
               COUNTER + ' </dev/null >/dev/null 2>&1 &')
        info = json.loads(banger(cenv, 'vm', 'show', 'bench', '--json'))
        with open('/proc/%d/cmdline' % info['pid'], 'rb') as f:
            cmdline = [a.decode() for a in f.read().split(b'\0') if a]
        vm_dir = os.path.join(session.data_dir, 'vms', info['id'])
        accel = next((a.split('accel=')[1] for a in cmdline if 'accel=' in a), '?')

        bare_saves, bare_restores, suspends, resumes = [], [], [], []
        for i in range(runs):
            bare_dir = os.path.join(tmp, 'bare%d' % i)
            os.makedirs(bare_dir)
            state_file = os.path.join(bare_dir, 'vmstate')
            qmp, took = bare_save(os.path.join(vm_dir, 'qmp.sock'), state_file)
            bare_saves.append(took)
            # the disk as the state left it (flushed by the migration)
            shutil.copyfile(os.path.join(vm_dir, 'disk.qcow2'),
                            os.path.join(bare_dir, 'disk.qcow2'))
            qmp.execute('cont')
            qmp.close()
            bare_restores.append(bare_restore(bare_restore_argv(cmdline, vm_dir, bare_dir),
                                              bare_dir, state_file))
            shutil.rmtree(bare_dir, ignore_errors=True)

            suspends.append(timed(lambda: banger(cenv, 'vm', 'suspend', 'bench')))
            resumes.append(timed(lambda: banger(cenv, 'vm', 'resume', 'bench')))
        counter = banger(cenv, 'vm', 'exec', 'bench', '--', 'cat', '/root/counter').strip()
        banger(cenv, 'vm', 'rm', '-f', 'bench')

        def row(label, times):
            print('  %-46s %7.3f s   runs: %s' % (label, statistics.median(times),
                                                  ' '.join('%.3f' % t for t in times)))
        print('suspend and resume of a %s guest with a running process (counter at %s), '
              'median of %d runs (QEMU, %s)' % (MEMORY, counter, runs, accel))
        row('banger vm suspend', suspends)
        row('QEMU stop + migrate to a file', bare_saves)
        print('  ratio suspend / bare save: %.2f' % (statistics.median(suspends)
                                                     / statistics.median(bare_saves)))
        row('banger vm resume', resumes)
        row('QEMU -incoming from the file until running', bare_restores)
        print('  ratio resume / bare restore: %.2f' % (statistics.median(resumes)
                                                       / statistics.median(bare_restores)))
        return 0
    finally:
        if session is not None:
            session.kill_vmms()
            session.stop()
        system.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == '__main__':
    sys.exit(main())
