#!/usr/bin/python3
"""bench/scale: bangerd with 1,000 VM records (created, never booted).

Prints, side by side in one run:
  - `banger vm list` (the whole command: process start, ListVMRows, the
    table), median of RUNS, against the goal (< 100 ms) and against
    `banger version` (the same process start, no list); `banger vm list
    --json` (GetManagedObjects: every property of every VM) beside it;
  - GetManagedObjects on the Manager, median of RUNS, against the goal
    (< 50 ms) and against the same call with no VM. The caller is
    raw_bus.RawBus, which reads the reply's bytes without unmarshalling
    them: the figure is bangerd's and the bus's, not a client library's;
  - the CPU time each takes (bangerd's and banger's), which a busy machine
    does not inflate the way it does wall-clock time;
  - bangerd's resident memory (Rss of /proc/PID/smaps_rollup) idle with no
    VM, its anonymous part (what is bangerd's own; the rest is shared
    library pages), and per VM record, against the goal (< 8 MiB).

BANGER_SCALE_BASELINE=DIR (a build tree of another commit) measures that
build the same way in the same run and prints the ratios.

Runs in a private world like the tests (a private session bus activating
the build tree's bangerd; no system bus, no helper: nothing is booted):
    meson test -C build --benchmark --suite bench --verbose scale
or  BANGER_BUILD_ROOT=build /usr/bin/python3 bench/scale/bench_scale.py [VMS [RUNS]]
"""

import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import gi
gi.require_version('Gio', '2.0')
from gi.repository import GLib, Gio  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_ROOT = os.path.dirname(os.path.dirname(HERE))
os.environ.setdefault('BANGER_SOURCE_ROOT', SOURCE_ROOT)
os.environ.setdefault('BANGER_BUILD_ROOT', os.path.join(SOURCE_ROOT, 'build'))
sys.path.insert(0, os.path.join(SOURCE_ROOT, 'tests', 'lib'))
sys.path.insert(0, HERE)

from raw_bus import RawBus  # noqa: E402
from session_bus import SessionBus  # noqa: E402

MANAGER = 'org.banger.Manager'
MANAGER_PATH = '/org/banger/Manager'
OM_IFACE = 'org.freedesktop.DBus.ObjectManager'
GOAL_LIST_MS = 100
GOAL_GMO_MS = 50
GOAL_RSS_MIB = 8
CLK_TCK = os.sysconf('SC_CLK_TCK')


def smaps_kib(pid, field):
    with open('/proc/%d/smaps_rollup' % pid) as f:
        for line in f:
            if line.startswith(field + ':'):
                return int(line.split()[1])
    raise RuntimeError('no %s in /proc/%d/smaps_rollup' % (field, pid))


def cpu_ms(pid):
    """utime + stime of @pid, all threads, in ms."""
    with open('/proc/%d/stat' % pid) as f:
        fields = f.read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / CLK_TCK


def children_cpu_ms():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (r.ru_utime + r.ru_stime) * 1000


def measure(fn, runs, pid):
    """Median wall-clock ms of @runs calls of @fn, the runs, and the mean
    CPU ms per call of bangerd (@pid) and of our children (banger)."""
    times = []
    cpu0, child0 = cpu_ms(pid), children_cpu_ms()
    for _ in range(runs):
        t = time.monotonic()
        fn()
        times.append((time.monotonic() - t) * 1000)
    return {'ms': statistics.median(times), 'runs': times,
            'bangerd_cpu': (cpu_ms(pid) - cpu0) / runs,
            'client_cpu': (children_cpu_ms() - child0) / runs}


def create_vms(conn, vms):
    """The records, through the real CreateVM (no boot: nothing started),
    16 calls in flight at once so that making 1,000 stays quick."""
    pending, errors = set(), []
    ctx = GLib.MainContext.default()

    def done(c, res, name):
        try:
            c.call_finish(res)
        except GLib.Error as e:
            errors.append('%s: %s' % (name, e.message))
        pending.discard(name)
    for i in range(vms):
        name = 'scale%04d' % i
        spec = {'name': GLib.Variant('s', name), 'vcpus': GLib.Variant('u', 1),
                'memory_mib': GLib.Variant('u', 256)}
        pending.add(name)
        conn.call(MANAGER, MANAGER_PATH, MANAGER, 'CreateVM', GLib.Variant('(a{sv})', (spec,)),
                  None, Gio.DBusCallFlags.NONE, 120000, None, done, name)
        while len(pending) >= 16:
            ctx.iteration(True)
    while pending:
        ctx.iteration(True)
    if errors:
        raise RuntimeError('CreateVM failed: %s' % '; '.join(errors[:5]))


def run_world(build, vms, runs):
    """Every figure for the build tree @build, in a world of its own."""
    os.environ['BANGER_BUILD_ROOT'] = build  # what SessionBus activates
    banger_bin = os.path.join(build, 'src', 'cli', 'banger')
    tmp = tempfile.mkdtemp(prefix='banger-bench-scale-')
    session = raw = conn = None
    try:
        session = SessionBus(tmp)
        session.start()
        env = dict(session.env)
        conn = session.connect()

        def banger(*args):
            res = subprocess.run([banger_bin, *args], env=env, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE, text=True)
            if res.returncode != 0:
                raise RuntimeError('banger %s failed (%d): %s' % (' '.join(args), res.returncode,
                                                                  res.stderr))

        # Activates bangerd; then it is idle, as in a user's session.
        conn.call_sync(MANAGER, MANAGER_PATH, OM_IFACE, 'GetManagedObjects', None, None,
                       Gio.DBusCallFlags.NONE, 120000, None)
        pid = session.bangerd_pid()
        raw = RawBus(session.address)

        def gmo():
            raw.call(MANAGER, MANAGER_PATH, OM_IFACE, 'GetManagedObjects')
        r = {'gmo_empty': measure(gmo, runs, pid),
             'rss_idle': smaps_kib(pid, 'Rss'), 'anon_idle': smaps_kib(pid, 'Anonymous')}

        create_vms(conn, vms)
        objs = conn.call_sync(MANAGER, MANAGER_PATH, OM_IFACE, 'GetManagedObjects', None, None,
                              Gio.DBusCallFlags.NONE, 120000, None).unpack()[0]
        got = sum(1 for i in objs.values() if 'org.banger.VM' in i)
        if got != vms:
            raise RuntimeError('%d VMs on the bus, %d created' % (got, vms))
        del objs

        gmo()  # the first call after the creations builds what later ones reuse
        r['gmo'] = measure(gmo, runs, pid)
        r['reply_bytes'] = raw.call(MANAGER, MANAGER_PATH, OM_IFACE, 'GetManagedObjects')
        r['list'] = measure(lambda: banger('vm', 'list'), runs, pid)
        r['list_json'] = measure(lambda: banger('vm', 'list', '--json'), runs, pid)
        r['version'] = measure(lambda: banger('version'), runs, pid)
        r['rss_full'] = smaps_kib(pid, 'Rss')
        return r
    finally:
        if raw is not None:
            raw.close()
        if conn is not None:
            conn.close_sync(None)
        if session is not None:
            session.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def row(label, m, goal=None, base=None):
    extra = ''
    if goal is not None:
        extra += '   goal < %d ms (%.2f of it)' % (goal, m['ms'] / goal)
    if base is not None:
        extra += '   baseline %.1f ms (%.2fx faster; cpu: bangerd %.1f ms, client %.1f ms)' % (
            base['ms'], base['ms'] / m['ms'], base['bangerd_cpu'], base['client_cpu'])
    print('  %-34s %7.1f ms  cpu: bangerd %5.1f ms, client %5.1f ms%s' % (
        label, m['ms'], m['bangerd_cpu'], m['client_cpu'], extra))
    print('  %-34s runs: %s' % ('', ' '.join('%.0f' % t for t in m['runs'])))


def main():
    vms = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 11
    build = os.path.abspath(os.environ['BANGER_BUILD_ROOT'])
    baseline_dir = os.environ.get('BANGER_SCALE_BASELINE')
    r = run_world(build, vms, runs)
    b = run_world(os.path.abspath(baseline_dir), vms, runs) if baseline_dir else None

    print('bangerd with %d VM records (created, not booted), median of %d runs%s' % (
        vms, runs, ', baseline: %s' % baseline_dir if b else ''))
    row('banger vm list', r['list'], GOAL_LIST_MS, b and b['list'])
    row('banger vm list --json', r['list_json'], None, b and b.get('list_json'))
    row('banger version (process start)', r['version'])
    row('GetManagedObjects (%d KiB reply)' % (r['reply_bytes'] // 1024), r['gmo'], GOAL_GMO_MS,
        b and b['gmo'])
    row('GetManagedObjects, no VM', r['gmo_empty'])
    print('  %-34s %7.2f MiB  (anonymous %.2f MiB; the rest is shared library pages)'
          '   goal < %d MiB (%.2f of it)%s' % (
              'bangerd idle RSS, no VM', r['rss_idle'] / 1024, r['anon_idle'] / 1024,
              GOAL_RSS_MIB, r['rss_idle'] / 1024 / GOAL_RSS_MIB,
              '   baseline %.2f MiB' % (b['rss_idle'] / 1024) if b else ''))
    print('  %-34s %7.2f MiB  (per VM record: %.1f KiB)%s' % (
        'bangerd RSS with %d VMs' % vms, r['rss_full'] / 1024,
        (r['rss_full'] - r['rss_idle']) / vms,
        '   baseline %.1f KiB per VM' % ((b['rss_full'] - b['rss_idle']) / vms) if b else ''))
    return 0


if __name__ == '__main__':
    sys.exit(main())
