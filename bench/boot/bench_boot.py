#!/usr/bin/python3
"""bench/boot: `banger vm run --image minimal -- true` side by side with
the same QEMU command started bare and taken to the same point (the guest
agent answered and `true` ran in the guest), in one run, and the ratio.

The bare command is the one bangerd really used: read from the running
VMM's /proc/<pid>/cmdline, pointed at a scratch directory with a fresh qcow2
overlay on the same image, without the network device (there is no tap for
it; banger's figure includes creating one).

Runs in a private world like the tests (private buses, polkitd, the helper
in a network namespace): run as root from a build tree,
    meson test -C build --benchmark --suite bench --verbose
or  BANGER_BUILD_ROOT=build /usr/bin/python3 bench/boot/bench_boot.py [RUNS]
"""

import json
import os
import shutil
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

from netns import enter_netns  # noqa: E402
from session_bus import SessionBus  # noqa: E402
from system_bus import SystemBus  # noqa: E402

BANGER = os.path.join(BUILD, 'src', 'cli', 'banger')
BARE_BOOT = os.path.join(BUILD, 'bench', 'boot', 'bare-boot')


def banger(env, *args, check=True):
    res = subprocess.run([BANGER, *args], env=env, capture_output=True, text=True)
    if check and res.returncode != 0:
        raise RuntimeError('banger %s failed (%d): %s' % (' '.join(args), res.returncode,
                                                          res.stderr))
    return res.stdout


def timed(fn):
    start = time.monotonic()
    fn()
    return time.monotonic() - start


def bare_argv(cmdline, vm_dir, bare_dir):
    """The VMM's argv, moved to @bare_dir and without the network device."""
    argv = [a.replace(vm_dir, bare_dir) for a in cmdline]
    out = []
    skip = False
    for i, a in enumerate(argv):
        if skip:
            skip = False
            continue
        nxt = argv[i + 1] if i + 1 < len(argv) else ''
        if a == '-netdev' or (a == '-device' and nxt.startswith('virtio-net')):
            skip = True
            continue
        out.append(a)
    return out


def main():
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    tmp = tempfile.mkdtemp(prefix='banger-bench-boot-')
    os.chmod(tmp, 0o755)
    system = SystemBus(test_users=False)
    session = None
    try:
        system.start()
        system.start_helper()
        enter_netns(system.netns)
        env = dict(os.environ)
        env['BANGER_AGENT'] = os.path.join(BUILD, 'src', 'agent', 'banger-agent')
        session = SessionBus(tmp, system_bus_address=system.address, env=env)
        session.start()
        cenv = dict(session.env)
        cenv['DBUS_SESSION_BUS_ADDRESS'] = session.address

        # Warm-up: builds the minimal image and imports the default kernel.
        banger(cenv, 'vm', 'run', '--image', 'minimal', '--', 'true')

        banger_times = [timed(lambda: banger(cenv, 'vm', 'run', '--image', 'minimal', '--', 'true'))
                        for _ in range(runs)]

        # The command line bangerd used, from a running VM.
        banger(cenv, 'vm', 'create', 'benchref', '--image', 'minimal')
        banger(cenv, 'vm', 'start', 'benchref')
        info = json.loads(banger(cenv, 'vm', 'show', 'benchref', '--json'))
        pid = info['pid']
        with open('/proc/%d/cmdline' % pid, 'rb') as f:
            cmdline = [a.decode() for a in f.read().split(b'\0') if a]
        vm_dir = os.path.join(session.data_dir, 'vms', info['id'])
        overlay = os.path.join(vm_dir, 'disk.qcow2')
        qinfo = json.loads(subprocess.run(['qemu-img', 'info', '--output=json', '-U', overlay],
                                          capture_output=True, text=True, check=True).stdout)
        backing = qinfo['full-backing-filename']
        size = str(qinfo['virtual-size'])
        banger(cenv, 'vm', 'rm', '-f', 'benchref')

        bare_times = []
        for i in range(runs):
            bare_dir = os.path.join(tmp, 'bare%d' % i)
            os.makedirs(bare_dir)
            subprocess.run(['qemu-img', 'create', '-q', '-f', 'qcow2', '-F', 'raw', '-b', backing,
                            os.path.join(bare_dir, 'disk.qcow2'), size], check=True)
            argv = bare_argv(cmdline, vm_dir, bare_dir)
            argv_file = os.path.join(bare_dir, 'argv')
            with open(argv_file, 'wb') as f:
                f.write(b'\0'.join(a.encode() for a in argv))
            out = subprocess.run([BARE_BOOT, argv_file, os.path.join(bare_dir, 'qemu.pid'),
                                  os.path.join(bare_dir, 'agent.sock')],
                                 capture_output=True, text=True, check=True).stdout
            bare_times.append(float(out.strip()))

        b = statistics.median(banger_times)
        q = statistics.median(bare_times)
        print('boot to `true` in the guest, median of %d runs (QEMU %s)' % (runs, 'TCG'))
        print('  %-44s %7.3f s   runs: %s' % ('banger vm run --image minimal -- true', b,
                                              ' '.join('%.2f' % t for t in banger_times)))
        print('  %-44s %7.3f s   runs: %s' % ('same QEMU command, bare', q,
                                              ' '.join('%.2f' % t for t in bare_times)))
        print('  ratio banger / bare: %.2f' % (b / q))
        return 0
    finally:
        if session is not None:
            session.stop()
        system.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == '__main__':
    sys.exit(main())
