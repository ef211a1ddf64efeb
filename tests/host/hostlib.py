"""A real systemd host for banger's tests: a Debian bookworm tree booted with
systemd-nspawn, with the build installed in it, logind login sessions for
normal users, the system bus, the real polkitd and user managers.

API (everything runs as root on the test machine; see docs/testing.md,
"The host suite"):

    import hostlib
    tree = hostlib.ensure_tree()          # cached bookworm tree (built once, locked)
    host = hostlib.Host(name='mytest')    # one throw-away container
    host.start()                          # overlay + meson install + boot, waits for systemd
    host.run(['systemctl', 'is-active', 'dbus'])           # as root inside → Result
    host.user('alice', ['banger', 'vm', 'list'])           # in a new login session of alice
    host.sudo('alice', ['banger', 'system', 'install'])   # `sudo -S` as alice, password typed
    with host.user_pty('alice', ['banger', 'update']) as p:  # on a terminal
        p.expect(r'Password:'); p.send(hostlib.PASSWORD + '\\n'); status = p.wait()
    host.logs()                           # journal, nspawn output, banger's VM logs
    host.stop()                           # poweroff, wait, unmount, remove

or derive the test class from hostlib.HostTestCase: it starts self.host in
setUp, stops it at the end and prints the logs if the test failed.

Users in the tree: `alice` (uid 1000, in group sudo, password PASSWORD) and
`bob` (uid 1001, not in sudo, same password). Neither is in group banger.

Every process is a child of the test and is stopped by its pid; all mounts
live in the test's own mount namespace (made private at the first Host.start),
so they vanish with the test process even if it is killed.
"""

import contextlib
import ctypes
import errno
import fcntl
import hashlib
import json
import os
import re
import select
import shlex
import shutil
import signal
import subprocess
import sys
import termios
import time
import unittest

SUITE = 'bookworm'
# Bump when the post-debootstrap setup below changes: the cache key changes.
RECIPE = 4
PACKAGES = sorted(set('''
    systemd-sysv libpam-systemd dbus dbus-user-session polkitd
    iproute2 nftables sudo procps qemu-system-x86 qemu-utils openssh-client
    openssh-server openssh-sftp-server
    busybox-static e2fsprogs kmod cpio util-linux python3 python3-yaml
    libglib2.0-0 libglib2.0-bin libsoup-3.0-0 libjson-glib-1.0-0 libpolkit-agent-1-0
    libpolkit-gobject-1-0 libnm0 libsqlite3-0 libnl-3-200 libnl-route-3-200 libnftables1
    libnftnl11 libmnl0 libxtables12 libjansson4 libarchive13 libext2fs2 libcom-err2
    libgnutls30 liblz4-1 liblzma5 libzstd1 libbz2-1.0 libxml2 libacl1 libsystemd0
    libpsl5 libnghttp2-14 libbrotli1 libgssapi-krb5-2 libicu72 libudev1
'''.split()))

USERS = {'alice': 1000, 'bob': 1001}
PASSWORD = 'banger-test-password'
CACHE = os.environ.get('BANGER_HOST_CACHE', '/var/cache/banger-test')
TREE_TIMEOUT = 900
BOOT_TIMEOUT = 120
STOP_TIMEOUT = 60
HOST_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'


def log(msg):
    print(f'[hostlib {time.strftime("%H:%M:%S")}] {msg}', file=sys.stderr, flush=True)


def build_root():
    return os.environ['BANGER_BUILD_ROOT']


def source_root():
    return os.environ['BANGER_SOURCE_ROOT']


def wait_until(predicate, timeout, what, interval=0.1):
    """Polls @predicate until it returns a true value (returned); raises
    TimeoutError naming @what otherwise. For conditions that have no event
    to wait on from outside the container (a unit state, a session list)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f'timed out after {timeout} s waiting for {what}')
        time.sleep(interval)


# ---- the cached tree -----------------------------------------------------

def apt_mirror():
    """The Debian archive the host's apt uses (deb822 or one-line sources)."""
    files = ['/etc/apt/sources.list']
    d = '/etc/apt/sources.list.d'
    if os.path.isdir(d):
        files += [os.path.join(d, n) for n in sorted(os.listdir(d))
                  if n.endswith('.list') or n.endswith('.sources')]
    for path in files:
        try:
            with open(path) as f:
                text = f.read()
        except OSError:
            continue
        if path.endswith('.sources'):
            for stanza in re.split(r'\n\s*\n', text):
                fields = {}
                for line in stanza.splitlines():
                    m = re.match(r'^([A-Za-z-]+):\s*(.*)$', line)
                    if m:
                        fields[m.group(1).lower()] = m.group(2)
                if (fields.get('enabled', 'yes') != 'no'
                        and SUITE in fields.get('suites', '').split()
                        and 'deb' in fields.get('types', '').split()):
                    return fields['uris'].split()[0]
        else:
            for line in text.splitlines():
                w = line.split()
                w = [x for x in w if not x.startswith('[')]
                if len(w) >= 3 and w[0] == 'deb' and w[2] == SUITE:
                    return w[1]
    return 'http://deb.debian.org/debian'


def tree_key():
    desc = json.dumps({'suite': SUITE, 'recipe': RECIPE, 'packages': PACKAGES,
                       'mirror': apt_mirror(), 'users': USERS}, sort_keys=True)
    return hashlib.sha256(desc.encode()).hexdigest()[:16]


def tree_path():
    return os.path.join(CACHE, 'host-' + tree_key())


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def _chroot(root, argv, **kw):
    env = {'PATH': HOST_PATH, 'LC_ALL': 'C.UTF-8', 'DEBIAN_FRONTEND': 'noninteractive'}
    return subprocess.run(['chroot', root] + argv, env=env, check=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=300, **kw)


def _setup_tree(root):
    """What every copy of the tree starts with: users, sudo, no timers that
    could run apt during a test."""
    with open(os.path.join(root, 'etc/hostname'), 'w') as f:
        f.write('banger-host\n')
    with open(os.path.join(root, 'etc/hosts'), 'w') as f:
        f.write('127.0.0.1 localhost\n127.0.1.1 banger-host\n::1 localhost\n')
    for user, uid in USERS.items():
        _chroot(root, ['useradd', '--create-home', '--shell', '/bin/bash', '--uid', str(uid),
                       '--user-group', user])
    _chroot(root, ['usermod', '-aG', 'sudo', 'alice'])
    _chroot(root, ['chpasswd'], input='\n'.join(f'{u}:{PASSWORD}' for u in USERS) + '\n')
    # Timers that would start apt, e2scrub or fstrim in the middle of a test.
    for unit in ('apt-daily.timer', 'apt-daily-upgrade.timer', 'dpkg-db-backup.timer',
                 'e2scrub_all.timer', 'fstrim.timer', 'systemd-tmpfiles-clean.timer'):
        link = os.path.join(root, 'etc/systemd/system', unit)
        if not os.path.lexists(link):
            os.symlink('/dev/null', link)
    # openssh-server is there for its sshd program, which banger's ssh
    # shortcut runs as the user in inetd mode for VMs without sshd
    # (docs/cli.md); its service stays off, as that path never needs it.
    for unit in ('ssh.service', 'ssh.socket'):
        link = os.path.join(root, 'etc/systemd/system', unit)
        if os.path.lexists(link):
            os.unlink(link)
        os.symlink('/dev/null', link)
    # The machine id is made at each boot (nspawn hands one in).
    with open(os.path.join(root, 'etc/machine-id'), 'w'):
        pass
    _chroot(root, ['apt-get', 'clean'])
    lists = os.path.join(root, 'var/lib/apt/lists')
    for n in os.listdir(lists):
        p = os.path.join(lists, n)
        if os.path.isfile(p):
            os.unlink(p)


def ensure_tree(timeout=TREE_TIMEOUT):
    """Returns the cached tree's path, building it first if needed. Built
    into a temporary directory and renamed into place under an exclusive
    lock, so concurrent tests build it once and never see half a tree."""
    path = tree_path()
    marker = os.path.join(path, '.banger-host-tree')
    if os.path.exists(marker):
        return path
    os.makedirs(CACHE, exist_ok=True)
    with open(path + '.lock', 'w') as lock:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f'another test has been building {path} for {timeout} s')
                time.sleep(0.5)
        if os.path.exists(marker):
            return path
        # Leftovers of a build that died (its pid is gone).
        prefix = os.path.basename(path) + '.tmp-'
        for n in os.listdir(CACHE):
            if n.startswith(prefix) and not _pid_alive(int(n[len(prefix):] or 0)):
                shutil.rmtree(os.path.join(CACHE, n), ignore_errors=True)
        if os.path.isdir(path):
            shutil.rmtree(path)         # no marker: not a finished tree
        tmp = f'{path}.tmp-{os.getpid()}'
        debs = os.path.join(CACHE, 'debs')
        os.makedirs(debs, exist_ok=True)
        argv = ['debootstrap', '--variant=minbase', '--cache-dir=' + debs,
                '--include=' + ','.join(PACKAGES), SUITE, tmp, apt_mirror()]
        log('building the host tree: ' + ' '.join(argv))
        t0 = time.monotonic()
        r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=max(60, deadline - time.monotonic()),
                           env={'PATH': HOST_PATH, 'LC_ALL': 'C.UTF-8'})
        if r.returncode != 0:
            shutil.rmtree(tmp, ignore_errors=True)
            raise RuntimeError(f'debootstrap failed ({r.returncode}):\n{r.stdout[-6000:]}')
        try:
            _setup_tree(tmp)
        except subprocess.CalledProcessError as e:
            shutil.rmtree(tmp, ignore_errors=True)
            raise RuntimeError(f'setting up the tree failed: {e.cmd}:\n{e.output}')
        with open(os.path.join(tmp, '.banger-host-tree'), 'w') as f:
            json.dump({'packages': PACKAGES, 'recipe': RECIPE, 'mirror': apt_mirror(),
                       'built_in_s': round(time.monotonic() - t0, 1)}, f)
        os.rename(tmp, path)
        log(f'host tree ready in {time.monotonic() - t0:.0f} s: {path}')
        return path


# ---- one container -------------------------------------------------------

CLONE_NEWNS = 0x00020000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18
_libc = ctypes.CDLL(None, use_errno=True)
_private_ns = False
_live_hosts = []


def _private_mount_namespace():
    """Moves this process into its own mount namespace with private
    propagation: the overlay and everything mounted for the containers exist
    only here and disappear with the test process, whatever kills it."""
    global _private_ns
    if _private_ns:
        return
    if _libc.unshare(CLONE_NEWNS) != 0:
        e = ctypes.get_errno()
        raise OSError(e, 'unshare(CLONE_NEWNS): ' + os.strerror(e))
    if _libc.mount(b'none', b'/', None, MS_REC | MS_PRIVATE, None) != 0:
        e = ctypes.get_errno()
        raise OSError(e, 'making / private: ' + os.strerror(e))
    _private_ns = True


def _on_sigterm(signum, frame):
    # meson's timeout (and Ctrl-C) end the test with SIGTERM/SIGINT: power
    # the containers off first, so nothing outlives the test.
    for h in list(_live_hosts):
        try:
            h.stop(timeout=20)
        except Exception as e:  # noqa: BLE001 - best effort on the way out
            log(f'stopping {h.name}: {e}')
    os._exit(128 + signum)


def _ppid(pid):
    with open(f'/proc/{pid}/stat') as f:
        return int(f.read().rsplit(')', 1)[1].split()[1])


def _children(pid):
    out = []
    for n in os.listdir('/proc'):
        if n.isdigit():
            try:
                if _ppid(int(n)) == pid:
                    out.append(int(n))
            except (OSError, IndexError, ValueError):
                pass
    return out


def _comm(pid):
    try:
        with open(f'/proc/{pid}/comm') as f:
            return f.read().strip()
    except OSError:
        return None


def _cgroup2_root():
    """Where this machine mounts the unified (v2) cgroup hierarchy:
    /sys/fs/cgroup, or /sys/fs/cgroup/unified under the hybrid layout."""
    with open('/proc/self/mountinfo') as f:
        for line in f:
            left, _, right = line.partition(' - ')
            if right.split()[0] == 'cgroup2':
                return left.split()[4]
    raise RuntimeError('no cgroup2 hierarchy is mounted')


def _cgroup2_own():
    with open('/proc/self/cgroup') as f:
        for line in f:
            if line.startswith('0::'):
                return line[3:].strip()
    return '/'


def _container_cgroups(name):
    """The cgroup for the container named @name (a directory name) in the
    unified hierarchy, and the one nspawn mirrors it to in the named
    "systemd" v1 hierarchy where this machine mounts the hybrid layout."""
    paths = [os.path.join(_cgroup2_root(), _cgroup2_own().lstrip('/'), name)]
    with open('/proc/self/mountinfo') as f:
        for line in f:
            left, _, right = line.partition(' - ')
            fields = right.split()
            if fields[0] == 'cgroup' and 'name=systemd' in fields[2].split(','):
                with open('/proc/self/cgroup') as g:
                    own = next((x.split(':', 2)[2].strip() for x in g
                                if x.split(':')[1] == 'name=systemd'), '/')
                paths.append(os.path.join(left.split()[4], own.lstrip('/'), name))
                break
    return paths


def _rmdir_cgroup(path):
    """Removes a cgroup and the ones below it (empty ones only)."""
    if not os.path.isdir(path):
        return
    for dirpath, dirs, _ in os.walk(path, topdown=False):
        for d in dirs:
            with contextlib.suppress(OSError):
                os.rmdir(os.path.join(dirpath, d))
    with contextlib.suppress(OSError):
        os.rmdir(path)


class Result:
    def __init__(self, argv, returncode, stdout, stderr):
        self.argv = argv
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr

    def json(self):
        return json.loads(self.stdout)

    def __repr__(self):
        return (f'<{shlex.join(self.argv)} exited {self.returncode}\n'
                f'--- stdout:\n{self.stdout}--- stderr:\n{self.stderr}>')


class CommandFailed(AssertionError):
    pass


def _run_group(argv, input=None, timeout=120, env=None):
    """Runs argv in its own process group, capturing output; on timeout the
    whole group is killed (nsenter forks, so killing it alone would leave
    the command running in the container)."""
    p = subprocess.Popen(argv, stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=env, start_new_session=True)
    try:
        out, err = p.communicate(input=input, timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(p.pid, signal.SIGKILL)
        out, err = p.communicate()
        raise TimeoutError(f'timed out after {timeout} s: {shlex.join(argv)}\n'
                           f'--- stdout:\n{out}--- stderr:\n{err}')
    return Result(argv, p.returncode, out, err)


class PtyProcess:
    """A command on a terminal (host-side pty; /dev/tty inside the container
    is that terminal). expect() reads until a regex matches the output seen
    since the last match, with a timeout; send() types."""

    def __init__(self, argv, env):
        self.argv = argv
        master, slave = os.openpty()
        self.master = master

        def child_setup():
            os.setsid()
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        self.proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env,
                                     preexec_fn=child_setup, close_fds=True)
        os.close(slave)
        self.output = ''
        self.on_close = None
        self._pos = 0
        self.returncode = None

    def _read(self, timeout):
        r, _, _ = select.select([self.master], [], [], max(0, timeout))
        if not r:
            return True
        try:
            data = os.read(self.master, 65536)
        except OSError as e:
            if e.errno == errno.EIO:        # every slave fd closed: the command ended
                return False
            raise
        if not data:
            return False
        self.output += data.decode('utf-8', 'replace')
        return True

    def expect(self, pattern, timeout=60):
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            m = rx.search(self.output, self._pos)
            if m:
                self._pos = m.end()
                return m
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f'no {pattern!r} within {timeout} s from '
                                   f'{shlex.join(self.argv)}; output:\n{self.output}')
            if not self._read(min(left, 1.0)) and self.proc.poll() is not None:
                m = rx.search(self.output, self._pos)
                if m:
                    self._pos = m.end()
                    return m
                raise AssertionError(f'{shlex.join(self.argv)} ended ({self.proc.returncode}) '
                                     f'before {pattern!r}; output:\n{self.output}')

    def send(self, text):
        os.write(self.master, text.encode())

    def wait(self, timeout=120):
        """Reads everything up to the end and returns the exit status."""
        deadline = time.monotonic() + timeout
        while self._read(min(1.0, max(0, deadline - time.monotonic()))):
            if time.monotonic() > deadline:
                self.close()
                raise TimeoutError(f'{shlex.join(self.argv)} still running after {timeout} s; '
                                   f'output:\n{self.output}')
        self.returncode = self.proc.wait(timeout=max(1, deadline - time.monotonic()))
        return self.returncode

    def close(self):
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            if self.on_close:
                self.on_close()
        with contextlib.suppress(OSError):
            os.close(self.master)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Session:
    """A login session of a user kept open until close() (a terminal left
    open): `runuser -l USER` waiting on a pipe. Closing the pipe ends it, as
    logging out does."""

    def __init__(self, host, user):
        self.host = host
        self.user = user
        svc, self.unit = host._service(['runuser', '-l', user, '-c', 'exec cat'])
        argv = host._nsenter(svc)
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, env=host._env(),
                                     start_new_session=True)
        # The session exists once logind lists one more for the user.

    def close(self, timeout=30):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
                self.host._stop_unit(self.unit)


class Host:
    """One container: an overlay over the cached tree with the build
    installed (meson install --destdir, default prefix /usr/local), booted
    with systemd-nspawn as this process's child."""

    def __init__(self, name='host'):
        self.name = re.sub(r'[^A-Za-z0-9-]', '-', name)[-40:].strip('-') or 'host'
        self.nspawn = None
        self.pid1 = None
        self.dir = None
        self.root = None
        self.console_log = None
        self.timings = {}
        self._units = 0
        self.cgroup = None

    # -- lifecycle --

    def _clean_stale(self, run):
        for n in os.listdir(run):
            m = re.match(r'^(\d+)-', n)
            if m and not _pid_alive(int(m.group(1))):
                d = os.path.join(run, n)
                # An nspawn left by a test that was SIGKILLed: end it by pid.
                for p in os.listdir('/proc'):
                    if not p.isdigit():
                        continue
                    try:
                        with open(f'/proc/{p}/cmdline', 'rb') as f:
                            cmd = f.read().split(b'\0')
                    except OSError:
                        continue
                    if cmd and os.path.basename(cmd[0]) == b'systemd-nspawn' and \
                            (d + '/merged').encode() in cmd:
                        log(f'killing stale container {p} of {d}')
                        for c in _children(int(p)):
                            with contextlib.suppress(ProcessLookupError):
                                os.kill(c, signal.SIGKILL)
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(int(p), signal.SIGKILL)
                shutil.rmtree(d, ignore_errors=True)
                with contextlib.suppress(Exception):
                    for path in _container_cgroups(n):
                        _rmdir_cgroup(path)

    def start(self):
        t0 = time.monotonic()
        tree = ensure_tree()
        self.timings['tree'] = time.monotonic() - t0
        _private_mount_namespace()
        if signal.getsignal(signal.SIGTERM) is not _on_sigterm:
            signal.signal(signal.SIGTERM, _on_sigterm)
        run = os.path.join(CACHE, 'run')
        os.makedirs(run, exist_ok=True)
        self._clean_stale(run)
        self.dir = os.path.join(run, f'{os.getpid()}-{self.name}')
        shutil.rmtree(self.dir, ignore_errors=True)
        for d in ('upper', 'work', 'merged'):
            os.makedirs(os.path.join(self.dir, d))
        self.root = os.path.join(self.dir, 'merged')
        _live_hosts.append(self)
        subprocess.run(['mount', '-t', 'overlay', 'overlay', '-o',
                        f'lowerdir={tree},upperdir={self.dir}/upper,workdir={self.dir}/work',
                        self.root], check=True)
        t1 = time.monotonic()
        # `meson test` rebuilds only what the tests depend on; meson install
        # needs every installed file (man pages, translations...). One ninja
        # at a time (a no-op after run-all.sh's own build).
        # If that build fails (a tree being edited), what was built before
        # is installed, and only a failing install fails the test.
        with open(os.path.join(build_root(), '.hostlib-ninja.lock'), 'w') as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            built = _run_group(['ninja', '-C', build_root()], timeout=600, env=dict(os.environ))
        if built.returncode != 0:
            log('ninja failed; installing what is built:\n' + built.stdout[-2000:])
        r = _run_group(['meson', 'install', '-C', build_root(), '--no-rebuild', '--quiet',
                        '--destdir', self.root], timeout=300, env=dict(os.environ))
        if r.returncode != 0:
            raise RuntimeError(f'meson install failed: {r}\n(ninja: {built!r})')
        self.timings['install'] = time.monotonic() - t1
        self.boot()
        self.timings['start'] = time.monotonic() - t0
        log(f'{self.name}: up, pid1 {self.pid1}; ' +
            ', '.join(f'{k} {v:.1f} s' for k, v in self.timings.items()))
        return self

    def boot(self, timeout=BOOT_TIMEOUT):
        t0 = time.monotonic()
        argv = ['systemd-nspawn', '--quiet', '--register=no', '--keep-unit', '-D', self.root,
                '--boot', '--private-network', '--machine=' + self.name[:64],
                '--hostname=banger-host', '--link-journal=no', '--resolv-conf=off',
                '--timezone=off', '--console=read-only', '--bind-ro=/boot']
        for kver in sorted(os.listdir('/lib/modules')) if os.path.isdir('/lib/modules') else []:
            argv.append(f'--bind-ro=/lib/modules/{kver}:/usr/lib/modules/{kver}')
        self.console_log = os.path.join(self.dir, f'nspawn-{int(time.time())}.log')
        # The container gets the unified cgroup hierarchy, as a Debian 12
        # host has by default, even where this machine mounts the hybrid
        # one.
        env = dict(self._env(), SYSTEMD_NSPAWN_UNIFIED_HIERARCHY='1')
        # A cgroup of its own: with --keep-unit and no systemd on this
        # machine nspawn runs the container in the cgroup it was started in,
        # and two containers in one cgroup share one tree: each one's
        # systemd removed the other's system.slice/…, user-1000.slice/
        # session-c1.scope (same names in both) under it ("Failed to attach
        # to cgroup", sessions stuck "closing").
        self.cgroup = os.path.join(_cgroup2_root(), _cgroup2_own().lstrip('/'),
                                   os.path.basename(self.dir))
        _rmdir_cgroup(self.cgroup)
        os.makedirs(self.cgroup)
        procs = os.path.join(self.cgroup, 'cgroup.procs')

        def enter_cgroup():
            os.setsid()
            with open(procs, 'w') as f:
                f.write(str(os.getpid()))
        with open(self.console_log, 'w') as out:
            self.nspawn = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                           stderr=subprocess.STDOUT, env=env,
                                           preexec_fn=enter_cgroup)

        def find_pid1():
            if self.nspawn.poll() is not None:
                raise RuntimeError(f'systemd-nspawn exited {self.nspawn.returncode}:\n'
                                   + self._tail(self.console_log))
            for c in _children(self.nspawn.pid):
                if _comm(c) == 'systemd':
                    return c
            return None
        self.pid1 = wait_until(find_pid1, timeout, 'the container\'s systemd', interval=0.05)
        deadline = t0 + timeout
        state = None
        while time.monotonic() < deadline:
            try:
                r = self.run(['systemctl', 'is-system-running', '--wait'],
                             timeout=max(1, deadline - time.monotonic()))
            except TimeoutError:
                break
            state = r.stdout.strip()
            if state in ('running', 'degraded'):
                break
            # Before systemd listens, systemctl cannot connect: try again.
            time.sleep(0.2)
        if state not in ('running', 'degraded'):
            raise RuntimeError(f'the container did not boot within {timeout} s (state {state}):\n'
                               + self._tail(self.console_log))
        if state == 'degraded':
            log('container degraded: ' + self.run(['systemctl', '--failed', '--no-legend']).stdout)
        self.timings['boot'] = time.monotonic() - t0

    def shutdown(self, timeout=STOP_TIMEOUT):
        """Powers the container off (SIGTERM to nspawn) and waits for it; the
        overlay stays, so boot() can start it again (a reboot)."""
        if self.nspawn is None:
            return
        if self.nspawn.poll() is None:
            self.nspawn.send_signal(signal.SIGTERM)
            try:
                self.nspawn.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                log(f'{self.name}: no poweroff within {timeout} s, killing it')
                if self.pid1 and _pid_alive(self.pid1):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(self.pid1, signal.SIGKILL)  # ends the whole pid namespace
                self.nspawn.kill()
                self.nspawn.wait()
        self.nspawn = None
        self.pid1 = None
        if self.cgroup:
            for path in _container_cgroups(os.path.basename(self.cgroup)):
                _rmdir_cgroup(path)

    def stop(self, timeout=STOP_TIMEOUT):
        try:
            self.shutdown(timeout)
        finally:
            if self.root and os.path.ismount(self.root):
                r = subprocess.run(['umount', self.root], capture_output=True, text=True)
                if r.returncode != 0:
                    subprocess.run(['umount', '-l', self.root])
            if self.dir and not os.environ.get('BANGER_HOST_KEEP'):
                shutil.rmtree(self.dir, ignore_errors=True)
            if self in _live_hosts:
                _live_hosts.remove(self)

    # -- commands --

    @staticmethod
    def _env():
        return {'PATH': HOST_PATH, 'LC_ALL': 'C.UTF-8', 'TERM': 'dumb'}

    def _nspawn_alive(self):
        if self.nspawn is None or self.nspawn.poll() is not None:
            raise RuntimeError(f'the container {self.name} is not running')

    def _nsenter(self, argv):
        self._nspawn_alive()
        return ['nsenter', '-t', str(self.pid1), '-a', '--', 'env', '-i', 'PATH=' + HOST_PATH,
                'LC_ALL=C.UTF-8', 'TERM=dumb'] + list(argv)

    def run(self, argv, input=None, timeout=120, check=False):
        """argv as root inside the container (not in a login session)."""
        r = _run_group(self._nsenter(argv), input=input, timeout=timeout, env=self._env())
        r.argv = list(argv)
        if check and r.returncode != 0:
            raise CommandFailed(repr(r))
        return r

    def uid(self, user):
        return int(self.run(['id', '-u', user], check=True).stdout)

    def _user_cmd(self, user, argv, env=None, pty=False):
        uid = self.uid(user) if user not in USERS else USERS[user]
        assign = {'XDG_RUNTIME_DIR': f'/run/user/{uid}',
                  'DBUS_SESSION_BUS_ADDRESS': f'unix:path=/run/user/{uid}/bus',
                  'LC_ALL': 'C.UTF-8'}
        assign.update(env or {})
        script = 'export ' + ' '.join(f'{k}={shlex.quote(v)}' for k, v in assign.items()) + \
            '; exec ' + shlex.join(argv)
        # runuser -c calls setsid() (no controlling terminal, against
        # TIOCSTI); --pty gives the command a terminal of its own instead.
        return ['runuser'] + (['--pty'] if pty else []) + ['-l', user, '-c', script]

    def _service(self, argv):
        """argv as a transient service of the container's systemd
        (systemd-run --pipe: our stdio, its exit status). Logins start from
        there, inside the container's cgroup tree, as on a real host: a
        process nsenter'd from outside sits in a cgroup the container's
        systemd does not manage."""
        self._units += 1
        unit = f'hostlib-{self._units}'
        return ['systemd-run', '--quiet', '--wait', '--pipe', '--collect',
                '--service-type=exec', f'--unit={unit}', '--'] + list(argv), unit

    def _stop_unit(self, unit):
        with contextlib.suppress(Exception):
            self.run(['systemctl', 'kill', '--signal=SIGKILL', unit + '.service'], timeout=30)

    def user(self, user, argv, input=None, timeout=120, check=False, env=None):
        """argv as @user in a new logind login session (runuser -l: PAM,
        pam_systemd, the user's manager and session bus), with
        XDG_RUNTIME_DIR and DBUS_SESSION_BUS_ADDRESS set."""
        svc, unit = self._service(self._user_cmd(user, argv, env))
        try:
            r = self.run(svc, input=input, timeout=timeout)
        except TimeoutError:
            self._stop_unit(unit)
            raise
        r.argv = list(argv)
        if check and r.returncode != 0:
            raise CommandFailed(f'as {user}: {r!r}')
        return r

    def sudo(self, user, argv, timeout=300, check=False, env=None):
        """`sudo argv` as @user in a login session, the password typed on
        sudo's stdin (sudo -S): SUDO_USER is @user."""
        r = self.user(user, ['sudo', '-S', '-p', '[sudo password]', '--'] + list(argv),
                      input=PASSWORD + '\n', timeout=timeout, env=env)
        r.argv = ['sudo'] + list(argv)
        if check and r.returncode != 0:
            raise CommandFailed(f'as {user}: {r!r}')
        return r

    def user_pty(self, user, argv, env=None):
        """argv as @user in a login session on a terminal: a PtyProcess to
        expect()/send() and wait() on (use it as a context manager)."""
        svc, unit = self._service(self._user_cmd(user, argv, env, pty=True))
        p = PtyProcess(self._nsenter(svc), self._env())
        p.on_close = lambda: self._stop_unit(unit)
        return p

    def session(self, user):
        """Keeps a login session of @user open until its close()."""
        before = set(self.sessions(user))
        s = Session(self, user)
        wait_until(lambda: set(self.sessions(user)) - before, 60,
                   f'a new login session of {user}')
        return s

    def sessions(self, user):
        r = self.run(['loginctl', 'show-user', user, '-p', 'Sessions', '--value'])
        return r.stdout.split() if r.returncode == 0 else []

    def user_state(self, user):
        r = self.run(['loginctl', 'show-user', user, '-p', 'State', '--value'])
        return r.stdout.strip() if r.returncode == 0 else 'offline'

    def logout(self, user, timeout=60):
        """Ends every login session of @user (as logging out of each) and
        waits until logind lists none."""
        for s in self.sessions(user):
            self.run(['loginctl', 'terminate-session', s])
        try:
            wait_until(lambda: not self.sessions(user), 10, f'{user} logged out')
            return
        except TimeoutError:
            pass
        # Seen while containers still shared one cgroup (see boot()): a
        # session scope "active (abandoned)", its cgroup removed by the other
        # container's systemd, the session stuck "closing". Stopping the
        # (empty) scope is what logind's terminate would have done; kept as
        # a fallback, and logged.
        for s in self.sessions(user):
            st = self.run(['systemctl', 'status', '--no-pager', '--lines=0',
                           f'session-{s}.scope'], timeout=30)
            log(f'session {s} of {user} still listed 10 s after terminate: stopping its scope\n'
                + st.stdout)
            self.run(['systemctl', 'stop', f'session-{s}.scope'], timeout=60)
        wait_until(lambda: not self.sessions(user), timeout, f'{user} logged out')

    def path(self, path):
        """@path as the host sees it: through /proc/PID1/root while the
        container runs (its /run, /tmp and /dev are mounts of its own), the
        overlay otherwise."""
        if self.pid1 and self.nspawn is not None and self.nspawn.poll() is None:
            return f'/proc/{self.pid1}/root/' + path.lstrip('/')
        return os.path.join(self.root, path.lstrip('/'))

    def read(self, path):
        """A file of the container."""
        with open(self.path(path), 'rb') as f:
            return f.read()

    def exists(self, path):
        return os.path.lexists(self.path(path))

    def stat(self, path):
        return os.lstat(self.path(path))

    def unit_property(self, unit, prop, user=None):
        argv = ['systemctl'] + (['--user'] if user else []) + \
            ['show', unit, '-p', prop, '--value']
        r = self.user(user, argv) if user else self.run(argv)
        return r.stdout.strip()

    # -- logs --

    @staticmethod
    def _tail(path, lines=200):
        try:
            with open(path, errors='replace') as f:
                return ''.join(f.readlines()[-lines:])
        except OSError as e:
            return f'({path}: {e})\n'

    def logs(self):
        """Everything worth reading after a failure, as one string."""
        out = []
        if self.console_log:
            out.append(f'==== systemd-nspawn / console ({self.console_log}) ====\n'
                       + self._tail(self.console_log, 300))
        if self.nspawn is not None and self.nspawn.poll() is None:
            try:
                r = self.run(['journalctl', '-b', '--no-pager', '-o', 'short-monotonic',
                              '-n', '4000'], timeout=60)
                out.append('==== journal of the container (-n 4000) ====\n' + r.stdout + r.stderr)
                r = self.run(['systemctl', '--failed', '--no-pager'], timeout=30)
                out.append('==== failed units ====\n' + r.stdout)
                r = self.run(['loginctl', 'list-sessions', '--no-pager'], timeout=30)
                out.append('==== sessions ====\n' + r.stdout)
                for user in USERS:
                    for s in self.sessions(user):
                        r = self.run(['loginctl', 'session-status', '--no-pager', s], timeout=30)
                        out.append(f'==== session {s} of {user} ====\n' + r.stdout + r.stderr)
                r = self.run(['systemd-cgls', '--no-pager', '-l'], timeout=30)
                out.append('==== control groups ====\n' + r.stdout + r.stderr)
            except Exception as e:  # noqa: BLE001
                out.append(f'(journal: {e})')
        if self.root:
            for user in USERS:
                vms = os.path.join(self.root, 'home', user, '.local/share/banger/vms')
                if os.path.isdir(vms):
                    for vm in sorted(os.listdir(vms)):
                        p = os.path.join(vms, vm, 'console.log')
                        if os.path.exists(p):
                            out.append(f'==== {user}: {vm}/console.log ====\n' + self._tail(p, 120))
        return '\n'.join(out)


class HostTestCase(unittest.TestCase):
    """Starts self.host (a fresh container) in setUp; stops it at the end and
    prints its logs if the test failed."""

    def setUp(self):
        self.host = Host(name=self.id().split('.')[-1])
        self.addCleanup(self._finish_host)
        self.host.start()

    def _failed(self):
        result = getattr(self._outcome, 'result', None)
        if result is None:
            return True
        return any(t is self for t, _ in result.errors + result.failures)

    def _finish_host(self):
        try:
            if self._failed():
                print(self.host.logs(), file=sys.stderr, flush=True)
        finally:
            self.host.stop()


if __name__ == '__main__':
    # `hostlib.py`: build the cached tree now (the suite's host-tree test).
    t = time.monotonic()
    print(ensure_tree(), f'({time.monotonic() - t:.1f} s)')
