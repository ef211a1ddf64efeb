#!/usr/bin/python3
"""bench/dns: bangerd's `.vm` responder against dnsmasq serving the same
record, asked the same query mix by dnsperf, in one run, and the ratio.

The record: one VM, `bench.vm`, holding the lease 10.77.0.2, written into
bangerd's store by bench/dns/seed-lease (bangerd's own store calls) before
bangerd starts; dnsmasq gets it as `--host-record=bench.vm,10.77.0.2` with
`--local=/vm/` (the rest of `.vm` answered NXDOMAIN locally) and TTL 0, as
bangerd's. The query mix (each line as often): `bench.vm A`, `BENCH.Vm A`
(a found name in another case), `nosuch.vm A` (NXDOMAIN), `bench.vm AAAA`
(NODATA). Before the load each query is asked of both with dig and the
answers compared, so the two are known to do the same work.

The two servers are measured in turns (bangerd, dnsmasq, bangerd, ...), one
dnsperf run of SECONDS each, and the median of each is reported with the
ratio of the medians and the median ratio of each bangerd run to the dnsmasq
run after it (the host's other load drifts less within a pair). Also the
server's own CPU time per answered query (all its threads, /proc/PID/stat):
dnsperf on one core may be what limits both, and this says which server
costs less whatever the client manages.

Needs the Debian packages dnsperf and dnsmasq-base (no test needs them, so
tests/setup-debian.sh does not install them: `apt-get install dnsperf
dnsmasq-base`). Run as root or not, from a build tree:
    meson test -C build --benchmark --suite bench --verbose dns
or  BANGER_BUILD_ROOT=build /usr/bin/python3 bench/dns/bench_dns.py [RUNS [SECONDS]]
"""

import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_ROOT = os.path.dirname(os.path.dirname(HERE))
os.environ.setdefault('BANGER_SOURCE_ROOT', SOURCE_ROOT)
os.environ.setdefault('BANGER_BUILD_ROOT', os.path.join(SOURCE_ROOT, 'build'))
BUILD = os.path.abspath(os.environ['BANGER_BUILD_ROOT'])
sys.path.insert(0, os.path.join(SOURCE_ROOT, 'tests', 'lib'))

from session_bus import SessionBus  # noqa: E402

SEED = os.path.join(BUILD, 'bench', 'dns', 'seed-lease')
NAME = 'bench'
ADDRESS = '10.77.0.2'
QUERIES = ['bench.vm A', 'BENCH.Vm A', 'nosuch.vm A', 'bench.vm AAAA']


def free_port():
    """A port free for both UDP and TCP on 127.0.0.1 right now."""
    for _ in range(50):
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        t.bind(('127.0.0.1', 0))
        port = t.getsockname()[1]
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            u.bind(('127.0.0.1', port))
            return port
        except OSError:
            continue
        finally:
            t.close()
            u.close()
    raise RuntimeError('no free port')


def need(program, package):
    path = shutil.which(program, path=os.environ.get('PATH', '') + ':/usr/sbin:/sbin')
    if path is None:
        sys.exit('bench/dns needs %s (Debian package %s): apt-get install %s'
                 % (program, package, package))
    return path


def dig(port, query):
    """(status, answer lines without the TTL) for @query asked of @port."""
    name, rtype = query.split()
    out = subprocess.run(['dig', '@127.0.0.1', '-p', str(port), '+tries=3', '+time=5',
                          '+norecurse', name, rtype],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    m = re.search(r'status: (\w+)', out)
    answers = []
    section = None
    for line in out.splitlines():
        s = re.match(r';; (\w+) SECTION:', line)
        if s:
            section = s.group(1)
        elif not line.strip():
            section = None
        elif section == 'ANSWER' and not line.startswith(';'):
            f = line.split()
            answers.append(' '.join(f[:1] + f[2:]))
    return (m.group(1) if m else None, answers)


def wait_answers(port, what):
    """Waits (dig's own timeouts, a few tries) until @port answers."""
    for _ in range(20):
        try:
            if dig(port, QUERIES[0])[0] is not None:
                return
        except subprocess.CalledProcessError:
            continue
    raise RuntimeError('%s does not answer on 127.0.0.1:%d' % (what, port))


def cpu_seconds(pid):
    """User + system CPU time of @pid, all its threads, so far."""
    with open('/proc/%d/stat' % pid) as f:
        fields = f.read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


def dnsperf(dnsperf_bin, port, queries, seconds, server_pid):
    """(q/s, mean latency, lost, response codes, server CPU µs per answered query)."""
    cpu = cpu_seconds(server_pid)
    out = subprocess.run([dnsperf_bin, '-s', '127.0.0.1', '-p', str(port), '-d', queries,
                          '-l', str(seconds), '-c', '1', '-q', '100'],
                         capture_output=True, text=True, timeout=seconds + 120, check=True).stdout
    qps = float(re.search(r'Queries per second:\s+([\d.]+)', out).group(1))
    lat = float(re.search(r'Average Latency \(s\):\s+([\d.]+)', out).group(1))
    lost = re.search(r'Queries lost:\s+(\d+)', out).group(1)
    codes = re.search(r'Response codes:\s+(.*)', out)
    completed = int(re.search(r'Queries completed:\s+(\d+)', out).group(1))
    cpu_us = 1e6 * (cpu_seconds(server_pid) - cpu) / max(completed, 1)
    return qps, lat, int(lost), codes.group(1).strip() if codes else '', cpu_us


def main():
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    seconds = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    dnsperf_bin = need('dnsperf', 'dnsperf')
    dnsmasq_bin = need('dnsmasq', 'dnsmasq-base')
    need('dig', 'bind9-dnsutils')
    tmp = tempfile.mkdtemp(prefix='banger-bench-dns-')
    os.chmod(tmp, 0o755)
    session = None
    dnsmasq = None
    try:
        queries = os.path.join(tmp, 'queries')
        with open(queries, 'w') as f:
            f.write('\n'.join(QUERIES) + '\n')

        port = free_port()
        session = SessionBus(tmp)
        os.makedirs(session.config_dir, exist_ok=True)
        with open(os.path.join(session.config_dir, 'config'), 'w') as f:
            f.write('[dns]\nport=%d\n' % port)
        os.makedirs(session.data_dir, mode=0o700, exist_ok=True)
        subprocess.run([SEED, os.path.join(session.data_dir, 'banger.db'), NAME, ADDRESS],
                       check=True)
        session.start()
        # Any call activates bangerd; it listens once reconciled.
        subprocess.run(['gdbus', 'call', '--session', '-d', 'org.banger.Manager',
                        '-o', '/org/banger/Manager', '-m', 'org.freedesktop.DBus.Peer.Ping'],
                       env=session.env,
                       capture_output=True, check=True, timeout=60)
        wait_answers(port, 'bangerd')

        mport = free_port()
        dnsmasq = subprocess.Popen(
            [dnsmasq_bin, '--keep-in-foreground', '--conf-file=/dev/null', '--pid-file=',
             '--port=%d' % mport, '--listen-address=127.0.0.1', '--bind-interfaces',
             '--no-resolv', '--no-hosts', '--no-poll', '--local=/vm/', '--local-ttl=0',
             '--host-record=%s.vm,%s' % (NAME, ADDRESS), '--log-facility=-'],
            stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, 'dnsmasq.log'), 'w'))
        wait_answers(mport, 'dnsmasq')

        # The same answers from both (TTLs apart, which are 0 in both).
        for q in QUERIES:
            b, d = dig(port, q), dig(mport, q)
            if b != d:
                raise RuntimeError('%s: bangerd answers %r, dnsmasq %r' % (q, b, d))

        bangerd_pid = session.bangerd_pid()
        results = {'bangerd': [], 'dnsmasq': []}
        for _ in range(runs):
            results['bangerd'].append(dnsperf(dnsperf_bin, port, queries, seconds, bangerd_pid))
            results['dnsmasq'].append(dnsperf(dnsperf_bin, mport, queries, seconds, dnsmasq.pid))

        print('DNS, UDP, dnsperf -c 1 -q 100, %d s per run, %d runs each in turns; '
              'query mix: %s' % (seconds, runs, ', '.join(QUERIES)))
        print('answers compared with dig: identical (status and records)')
        med = {}
        for who in ('bangerd', 'dnsmasq'):
            rs = results[who]
            med[who] = statistics.median(r[0] for r in rs)
            print('  %-8s %9.0f q/s  mean latency %6.3f ms  lost %d  server CPU %5.1f us/query'
                  '  runs: %s' % (
                      who, med[who], 1000 * statistics.median(r[1] for r in rs),
                      sum(r[2] for r in rs), statistics.median(r[4] for r in rs),
                      ' '.join('%.0f' % r[0] for r in rs)))
            print('           response codes (last run): %s' % rs[-1][3])
        # Each bangerd run against the dnsmasq run right after it: the
        # host's load drifts less within a pair than across the session.
        pairs = [b[0] / d[0] for b, d in zip(results['bangerd'], results['dnsmasq'])]
        print('  ratio bangerd / dnsmasq: %.2f of the medians, %.2f median of the %d pairs '
              '(goal >= 1.0)' % (med['bangerd'] / med['dnsmasq'], statistics.median(pairs),
                                 len(pairs)))
        print('  load average at the end: %.2f %.2f %.2f' % os.getloadavg())
        return 0
    finally:
        if dnsmasq is not None:
            dnsmasq.terminate()
            dnsmasq.wait(timeout=10)
        if session is not None:
            session.stop_bangerd()
            session.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == '__main__':
    sys.exit(main())
