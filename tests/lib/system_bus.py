"""A private system bus with the real polkitd, and bangerd-root in a
network namespace, for the helper's tests.

Nothing here touches the host's bus, polkit or network:
- dbus-daemon runs from a config made of the stock system.conf with its own
  <listen> socket in a temporary directory, no <user>/<fork>/<pidfile>, no
  service activation, and an extra <includedir> holding the helper's bus
  policy (data/dbus/org.banger.Helper.conf) plus test-only holes;
- polkitd (the real one) runs in its own mount namespace (unshare -m) with
  the built org.banger.policy and test rules bind-mounted over the system
  directories it reads;
- bangerd-root runs inside `ip netns add banger-test-<pid>`;
- clients run as the users banger-test-a / banger-test-b via setpriv.

Every process is a child of the test and is stopped by its pid.
Run as root (the CI does).
"""

import fcntl
import json
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

STOCK_SYSTEM_CONF = '/usr/share/dbus-1/system.conf'
POLKITD = '/usr/lib/polkit-1/polkitd'
USERS_LOCK = '/run/lock/banger-test-users.lock'
TEST_USERS = ('banger-test-a', 'banger-test-b')

# The test's own rule: user A may do everything of banger's, user B gets no
# answer from this file (so the policy defaults, auth_admin, apply: denied
# without an agent).
TEST_RULES = '''// test only: banger-test-a is allowed every org.banger action
polkit.addRule(function(action, subject) {
    if (action.id.indexOf("org.banger.") == 0 && subject.user == "banger-test-a") {
        return polkit.Result.YES;
    }
    return polkit.Result.NOT_HANDLED;
});
'''


def root_may_own(name):
    """A test-only hole in the system bus policy (the stock system.conf
    denies owning names by default): root may own @name and be sent to it,
    for a fake of the service that owns it."""
    return f'''<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <policy user="root">
    <allow own="{name}"/>
    <allow send_destination="{name}"/>
  </policy>
</busconfig>
'''


# Root may run a mock NetworkManager.
TEST_BUS_POLICY = root_may_own('org.freedesktop.NetworkManager')


def build_root():
    return os.environ['BANGER_BUILD_ROOT']


def source_root():
    return os.environ['BANGER_SOURCE_ROOT']


def wait_until(predicate, timeout=5.0, what='condition', interval=0.01):
    """Polls @predicate every @interval seconds until it is true (returned);
    raises TimeoutError otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f'timed out after {timeout} s waiting for {what}')
        time.sleep(interval)


def socket_accepts(path):
    """TRUE once a unix socket accepts connections (its file appears at
    bind(), a moment before listen())."""
    import socket
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
        return True
    except OSError:
        return False
    finally:
        s.close()


def ensure_test_users():
    """Creates banger-test-a and banger-test-b if absent; returns
    {name: (uid, gid)}. Serialised with a lock: suites run in parallel."""
    os.makedirs(os.path.dirname(USERS_LOCK), exist_ok=True)
    with open(USERS_LOCK, 'w') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        users = {}
        for name in TEST_USERS:
            try:
                pw = pwd.getpwnam(name)
            except KeyError:
                subprocess.run(['useradd', '--system', '--no-create-home', '--user-group',
                                '--shell', '/usr/sbin/nologin', name], check=True)
                pw = pwd.getpwnam(name)
            users[name] = (pw.pw_uid, pw.pw_gid)
        return users


def make_bus_config(socket_path, includedir):
    """The stock system bus config, retargeted: own socket, no user
    switch, no fork, no pidfile, no syslog, no activation."""
    with open(STOCK_SYSTEM_CONF) as f:
        conf = f.read()
    conf = re.sub(r'<!--.*?-->', '', conf, flags=re.S)
    for pattern in (r'<user>[^<]*</user>', r'<fork\s*/>', r'<pidfile>[^<]*</pidfile>',
                    r'<syslog\s*/>', r'<standard_system_servicedirs\s*/>',
                    r'<servicehelper>[^<]*</servicehelper>'):
        conf = re.sub(pattern, '', conf)
    conf = re.sub(r'<listen>[^<]*</listen>', f'<listen>unix:path={socket_path}</listen>', conf)
    # The stock relative includedir means /usr/share/dbus-1/system.d.
    conf = conf.replace('<includedir>system.d</includedir>',
                        '<includedir>/usr/share/dbus-1/system.d</includedir>')
    conf = conf.replace('</busconfig>', f'  <includedir>{includedir}</includedir>\n</busconfig>')
    return conf


class Process:
    """A child process with its output in a log file."""

    def __init__(self, name, argv, log_path, env=None):
        self.name = name
        self.log_path = log_path
        self.log = open(log_path, 'wb')
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT, env=env,
                                     stdin=subprocess.DEVNULL)

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=5.0):
        """Stops the process (if still running); returns its exit status.
        Safe to call twice."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode

    def output(self):
        if not self.log.closed:
            self.log.flush()
        with open(self.log_path, 'rb') as f:
            return f.read().decode(errors='replace')


class SystemBus:
    """A private system bus, the real polkitd on it, and (on request)
    bangerd-root in a fresh network namespace."""

    def __init__(self, extra_rules='', test_users=True):
        self.extra_rules = extra_rules
        # The quickstart uses this class too, as root: it needs no test users.
        self.users = ensure_test_users() if test_users else {}
        self.tmp = tempfile.mkdtemp(prefix='banger-helper-test-')
        # polkitd drops to its own user and the clients run as test users:
        # everything they read must be reachable.
        os.chmod(self.tmp, 0o755)
        self.socket_path = os.path.join(self.tmp, 'system_bus_socket')
        self.address = f'unix:path={self.socket_path}'
        self.processes = []
        self.netns = None
        self.helper = None
        self._conn = None

    # ---- set-up -------------------------------------------------------

    def _write(self, path, text, mode=0o644):
        with open(path, 'w') as f:
            f.write(text)
        os.chmod(path, mode)

    def _mkdir(self, *parts):
        path = os.path.join(self.tmp, *parts)
        os.makedirs(path, exist_ok=True)
        os.chmod(path, 0o755)
        return path

    def env(self):
        env = dict(os.environ)
        env['DBUS_SYSTEM_BUS_ADDRESS'] = self.address
        # A client run as a test user must not try to reach root's session.
        env.pop('DBUS_SESSION_BUS_ADDRESS', None)
        return env

    def start(self):
        try:
            self._start_bus()
            self._start_polkitd()
        except Exception:
            self.stop()
            raise
        return self

    def _start_bus(self):
        includedir = self._mkdir('system.d')
        shutil.copy(os.path.join(source_root(), 'data', 'dbus', 'org.banger.Helper.conf'),
                    includedir)
        self._write(os.path.join(includedir, 'banger-test.conf'), TEST_BUS_POLICY)
        conf_path = os.path.join(self.tmp, 'system.conf')
        self._write(conf_path, make_bus_config(self.socket_path, includedir))
        self.bus = self._spawn('dbus-daemon', ['dbus-daemon', '--nofork', '--nopidfile',
                                               f'--config-file={conf_path}'])
        wait_until(lambda: socket_accepts(self.socket_path) or not self.bus.alive(),
                   what='the bus socket')
        if not self.bus.alive():
            raise RuntimeError('dbus-daemon failed:\n' + self.bus.output())

    def _start_polkitd(self):
        actions = self._mkdir('polkit', 'actions')
        rules_etc = self._mkdir('polkit', 'rules-etc')
        rules_usr = self._mkdir('polkit', 'rules-usr')
        shutil.copy(os.path.join(build_root(), 'data', 'polkit', 'org.banger.policy'), actions)
        # The real rules file where packages install it; the test rules in
        # /etc where an admin would put theirs.
        shutil.copy(os.path.join(source_root(), 'data', 'polkit', '50-org.banger.rules'),
                    rules_usr)
        self._write(os.path.join(rules_etc, '10-banger-test.rules'), TEST_RULES + self.extra_rules)
        self.polkitd = self._spawn('polkitd', [
            'unshare', '-m', '--propagation', 'private', '--',
            sys.executable, os.path.abspath(__file__), 'exec-polkitd',
            actions, rules_etc, rules_usr])
        self.wait_for_name('org.freedesktop.PolicyKit1', self.polkitd)

    def _spawn(self, name, argv, env=None):
        proc = Process(name, argv, os.path.join(self.tmp, f'{name}.log'), env or self.env())
        self.processes.append(proc)
        return proc

    # ---- the bus --------------------------------------------------------

    def connection(self):
        if self._conn is None:
            from gi.repository import Gio
            self._conn = Gio.DBusConnection.new_for_address_sync(
                self.address,
                Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT |
                Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION, None, None)
        return self._conn

    def call_as_root(self, dest, path, iface, method, params=None, reply_type=None):
        from gi.repository import GLib, Gio
        return self.connection().call_sync(
            dest, path, iface, method, params,
            GLib.VariantType.new(reply_type) if reply_type else None,
            Gio.DBusCallFlags.NONE, 10000, None).unpack()

    def name_has_owner(self, name):
        from gi.repository import GLib
        return self.call_as_root('org.freedesktop.DBus', '/org/freedesktop/DBus',
                                 'org.freedesktop.DBus', 'NameHasOwner',
                                 GLib.Variant('(s)', (name,)), '(b)')[0]

    def wait_for_name(self, name, proc=None, timeout=10.0):
        def ready():
            if proc is not None and not proc.alive():
                raise RuntimeError(f'{proc.name} exited:\n{proc.output()}')
            return self.name_has_owner(name)
        wait_until(ready, timeout, f'{name} on the bus')

    # ---- the helper -----------------------------------------------------

    def start_helper(self, bridge='banger0', address='10.77.0.1/24', args=(), dns_port=None):
        self.netns = f'banger-test-{os.getpid()}'
        subprocess.run(['ip', 'netns', 'add', self.netns], check=True)
        self.ns_run(['ip', 'link', 'set', 'lo', 'up'])
        self.helper_conf = os.path.join(self.tmp, 'helper.conf')
        conf = f'[network]\nbridge={bridge}\naddress={address}\n'
        if dns_port is not None:
            conf += f'[dns]\nport={dns_port}\n'
        self._write(self.helper_conf, conf)
        self._helper_args = tuple(args)
        return self._spawn_helper('bangerd-root')

    def _spawn_helper(self, name):
        binary = os.path.join(build_root(), 'src', 'helper', 'bangerd-root')
        self.helper = self._spawn(name, [
            'ip', 'netns', 'exec', self.netns, binary, '-vv', '--config', self.helper_conf,
            *self._helper_args])
        self.wait_for_name('org.banger.Helper', self.helper)
        return self.helper

    def restart_helper(self):
        """Stops the helper (SIGTERM, as systemd would) and starts a new one
        in the same namespace with the same configuration: what a package
        upgrade or a crash and restart does. Returns the old one's status."""
        status = self.helper.stop()
        self._restarts = getattr(self, '_restarts', 0) + 1
        self._spawn_helper(f'bangerd-root-{self._restarts}')
        return status

    def ns_run(self, argv, check=True):
        """Runs @argv in the helper's network namespace; returns stdout."""
        res = subprocess.run(['ip', 'netns', 'exec', self.netns, *argv], capture_output=True,
                             text=True)
        if check and res.returncode != 0:
            raise RuntimeError(f'{argv} failed: {res.stderr}')
        return res.stdout

    def link(self, name):
        """`ip -d -j link show NAME` in the namespace as a dict, or None."""
        res = subprocess.run(['ip', 'netns', 'exec', self.netns, 'ip', '-d', '-j', 'link', 'show',
                              'dev', name], capture_output=True, text=True)
        if res.returncode != 0:
            return None
        return json.loads(res.stdout)[0]

    def call(self, user, method, *args):
        """Calls org.banger.Helper.METHOD as @user with gdbus (arguments in
        GVariant text form). Returns (ok, output): the reply text, or the
        D-Bus error name and message."""
        uid, gid = self.users[user]
        argv = ['setpriv', f'--reuid={uid}', f'--regid={gid}', '--clear-groups',
                'gdbus', 'call', '--system', '--dest', 'org.banger.Helper',
                '--object-path', '/org/banger/Helper', '--method', f'org.banger.Helper.{method}',
                '--timeout', '20', '--', *args]
        res = subprocess.run(argv, capture_output=True, text=True, env=self.env(), cwd='/')
        if res.returncode == 0:
            return True, res.stdout.strip()
        return False, res.stderr.strip()

    def logs(self):
        return '\n'.join(f'===== {p.name} (pid {p.pid}) =====\n{p.output()}'
                         for p in self.processes)

    def stop(self):
        if self._conn is not None:
            self._conn.close_sync(None)
            self._conn = None
        for proc in reversed(self.processes):
            proc.stop()
        if self.netns is not None:
            subprocess.run(['ip', 'netns', 'del', self.netns], capture_output=True)
            self.netns = None
        shutil.rmtree(self.tmp, ignore_errors=True)


def stop_helper_checked(test, bus, *more_logs):
    """A test's tearDown for @bus's helper: stops it, which must be clean on
    SIGTERM (under ASan/UBSan a leak or undefined behaviour shows up as a
    non-zero status or a report in its output), and fails @test if it was
    not. The daemons' logs, and each of @more_logs (callables), are printed
    only when something failed."""
    status = bus.helper.stop()
    log = bus.helper.output()
    helper_bad = status != 0 or 'Sanitizer' in log or 'runtime error' in log
    result = test._outcome.result
    failed = any(t is test for t, _ in result.errors + result.failures)
    if failed or helper_bad:
        print(bus.logs(), file=sys.stderr)
        for more in more_logs:
            print(more(), file=sys.stderr)
    test.assertFalse(helper_bad, f'bangerd-root exited with status {status}')


def exec_polkitd(actions, rules_etc, rules_usr):
    """Runs inside `unshare -m`: binds the test's directories over the ones
    polkitd reads, then becomes polkitd (same pid, so the test stops it)."""
    for src, dst in ((actions, '/usr/share/polkit-1/actions'),
                     (rules_etc, '/etc/polkit-1/rules.d'),
                     (rules_usr, '/usr/share/polkit-1/rules.d')):
        subprocess.run(['mount', '--bind', src, dst], check=True)
    os.execv(POLKITD, [POLKITD])


if __name__ == '__main__' and len(sys.argv) == 5 and sys.argv[1] == 'exec-polkitd':
    exec_polkitd(*sys.argv[2:])
