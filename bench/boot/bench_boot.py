#!/usr/bin/python3
"""bench/boot: `banger vm run --image minimal -- true` booted (--cold) and
started warm (restored from the snapshot of a booted guest, the default,
docs/warm-start.md), side by side with the same QEMU command started bare
and taken to the same point (the guest agent answered and `true` ran in
the guest), in one run, and the ratios. Also the cost of a key's first
start, which boots and saves the snapshot: `vm run` with an empty cache.

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
import re
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
        # -v: bangerd logs how long each snapshot save took.
        session = SessionBus(tmp, system_bus_address=system.address, env=env,
                             bangerd_args=['-v'])
        session.start()
        cenv = dict(session.env)
        cenv['DBUS_SESSION_BUS_ADDRESS'] = session.address

        run_true = ['vm', 'run', '--image', 'minimal', '--', 'true']
        cold_true = ['vm', 'run', '--cold', '--image', 'minimal', '--', 'true']
        warm_dir = os.path.join(session.data_dir, 'warm')

        # Warm-up: builds the minimal image and imports the default kernel
        # (and saves the first snapshot).
        banger(cenv, *run_true)

        # The command line bangerd used, from a running VM.
        banger(cenv, 'vm', 'create', 'benchref', '--image', 'minimal')
        # Booted, not restored: the command line of a boot.
        banger(cenv, 'vm', 'start', '--cold', 'benchref')
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

        def bare(i):
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
            return float(out.strip())

        def first_start():
            # A key's first start: boot, then save the snapshot.
            shutil.rmtree(warm_dir, ignore_errors=True)
            return timed(lambda: banger(cenv, *run_true))

        # Interleaved, one of each per round: the load of a shared machine
        # changes over minutes, and must not favour one column.
        banger_times, warm_times, bare_times, save_times = [], [], [], []
        for i in range(runs):
            banger_times.append(timed(lambda: banger(cenv, *cold_true)))
            bare_times.append(bare(i))
            save_times.append(first_start())
            warm_times.append(timed(lambda: banger(cenv, *run_true)))

        b = statistics.median(banger_times)
        w = statistics.median(warm_times)
        f = statistics.median(save_times)
        q = statistics.median(bare_times)

        def row(label, value, times):
            print('  %-50s %7.3f s   runs: %s' % (label, value, ' '.join('%.2f' % t for t in times)))
        print('boot to `true` in the guest, median of %d runs (QEMU %s)' % (runs, 'TCG'))
        row('cold: banger vm run --cold --image minimal -- true', b, banger_times)
        row('warm: banger vm run --image minimal -- true', w, warm_times)
        row('same QEMU command, bare (cold boot)', q, bare_times)
        row('first start of a key: boot + save the snapshot', f, save_times)
        print('  ratio cold / bare: %.2f' % (b / q))
        print('  ratio warm / bare: %.2f   (goal <= 0.20)' % (w / q))
        saves = [float(x) for x in re.findall(r'saved snapshot \w+ for warm starts in ([0-9.]+) s',
                                              session.log())]
        if saves:
            print('  snapshot save (bangerd\'s log), median of %d: %.3f s   runs: %s'
                  % (len(saves), statistics.median(saves), ' '.join('%.2f' % t for t in saves)))
        return 0
    finally:
        if session is not None:
            session.stop()
        system.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == '__main__':
    sys.exit(main())
