"""banger update end to end: a release served over loopback HTTP by
python3's http.server (the test's own child), signed at test time with the
committed TEST-ONLY key, the real bangerd-testkey (the build's bangerd with
that key) activated from a temporary "installed prefix" on a private session
bus, and the real bangerd-root with the real polkitd on a private system bus.
"""

import hashlib
import io
import os
import pty
import re
import select
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', 'lib'))
from session_bus import SessionBus  # noqa: E402
from system_bus import SystemBus, Process, wait_until, socket_accepts  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
KEY = os.path.join(HERE, 'TEST-ONLY-release-key.pem')


def _project_version():
    with open(os.path.join(os.environ['BANGER_SOURCE_ROOT'], 'meson.build')) as f:
        return re.search(r"version: '([0-9.]+)'", f.read()).group(1)


# The release's binaries are copies of the build's with a marker appended;
# its version is the build's with the major number made of 9s, the same
# length, so that the version string inside a copy can be patched in place
# (the new bangerd-root must say it is the version being installed).
CURRENT = _project_version()
NEW = '9' * len(CURRENT.split('.')[0]) + CURRENT[len(CURRENT.split('.')[0]):]
assert tuple(map(int, NEW.split('.'))) > tuple(map(int, CURRENT.split('.'))), NEW
PASSWORD = 'TEST-ONLY-admin-password'

# banger-test-b is its own polkit administrator here: auth_admin asks for
# b's password, which exists only in the test's private copy of /etc/shadow.
ADMIN_RULE = '''
polkit.addAdminRule(function(action, subject) {
    return ["unix-user:banger-test-b"];
});
'''


def with_version(data, new=NEW):
    """@data with the build's version string (a NUL-terminated literal, not
    part of a longer number) replaced by @new, which has the same length."""
    out, n = re.subn(rb'(?<![0-9.])' + re.escape(CURRENT.encode()) + rb'(?=\0)', new.encode(), data)
    assert n > 0, 'no version string to patch'
    return out
FILES = {'bangerd': 'bin', 'banger': 'bin', 'bangerd-root': 'libexec',
         'banger-agent': 'libexec/banger'}
BUILT = {'bangerd': 'src/service/bangerd-testkey', 'banger': 'src/cli/banger',
         'bangerd-root': 'src/helper/bangerd-root-testkey', 'banger-agent': 'src/agent/banger-agent'}
# The helper verifies the staged release with the key it is built with:
# bangerd-root-testkey is bangerd-root with the TEST-ONLY key (never
# installed), as bangerd-testkey is bangerd.


def build(path):
    return os.path.join(os.environ['BANGER_BUILD_ROOT'], path)


def sign(path, out):
    subprocess.run(['openssl', 'dgst', '-sha256', '-sign', KEY, '-out', out, path], check=True)


def sign_staging(staging, version=NEW, owner=None):
    """Writes what bangerd stages with a release next to the files in
    @staging: SHA256SUMS with a line per file, as the release lists them
    (banger-<version>/<name>), and its signature by the TEST-ONLY key."""
    lines = ''
    for name in FILES:
        p = os.path.join(staging, name)
        if os.path.isfile(p) and not os.path.islink(p):
            with open(p, 'rb') as f:
                lines += '%s  banger-%s/%s\n' % (hashlib.sha256(f.read()).hexdigest(), version,
                                                  name)
    sums = os.path.join(staging, 'SHA256SUMS')
    with open(sums, 'w') as f:
        f.write(lines)
    sign(sums, os.path.join(staging, 'SHA256SUMS.sig'))
    if owner is not None:
        for name in ('SHA256SUMS', 'SHA256SUMS.sig'):
            os.chown(os.path.join(staging, name), *owner)


def free_port():
    import socket
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
    s.close()
    return port


class UserSessionBus(SessionBus):
    """A session bus of its own for a test user: dbus-daemon (and the
    bangerd it activates) run as that user, as on a real login."""

    CONFIG = '''<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <servicedir>{servicedir}</servicedir>
  <policy context="default">
    <!-- the user, and root (the test) to find bangerd's pid -->
    <allow user="*"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
'''

    def __init__(self, tmpdir, uid, gid, **kwargs):
        super().__init__(tmpdir, **kwargs)
        self.uid, self.gid = uid, gid

    def start(self):
        config = os.path.join(self.tmpdir, 'bus.conf')
        with open(config, 'w') as f:
            f.write(self.CONFIG.format(socket=self.socket, servicedir=self.servicedir))
        for root, dirs, files in os.walk(os.path.dirname(self.tmpdir)):
            for name in [root] + [os.path.join(root, n) for n in dirs + files]:
                os.chown(name, self.uid, self.gid)
        self._log = open(self.log_path, 'wb')
        self._proc = subprocess.Popen(
            ['setpriv', '--reuid=%d' % self.uid, '--regid=%d' % self.gid, '--clear-groups',
             'dbus-daemon', '--config-file', config, '--nofork', '--print-address=1',
             '--print-pid=1', '--nosyslog'],
            stdout=subprocess.PIPE, stderr=self._log, env=self.env, cwd='/')
        self.address = self._proc.stdout.readline().decode().strip()
        self.pid = int(self._proc.stdout.readline().decode().strip() or 0)
        self._proc.stdout.close()
        if not self.address:
            self.stop()
            raise RuntimeError('dbus-daemon did not start:\n' + self.log())
        self.env['DBUS_SESSION_BUS_ADDRESS'] = self.address
        return self


def exec_as_user(shadow, bus_dir, uid, gid, *argv):
    """Runs inside `unshare -m` (as root): the test's shadow file (with the
    test user's password) over /etc/shadow and the private system bus's
    directory over /run/dbus, because polkit-agent-helper-1 (setuid root)
    clears its environment and talks to the default system bus socket;
    then becomes @argv as the user, same pid, same terminal."""
    subprocess.run(['mount', '--bind', shadow, '/etc/shadow'], check=True)
    subprocess.run(['mount', '--bind', bus_dir, '/run/dbus'], check=True)
    os.execvp('setpriv', ['setpriv', '--reuid=' + uid, '--regid=' + gid, '--clear-groups', '--',
                          *argv])


class PtyRun:
    """A command on a pty of its own (its controlling terminal), so that
    polkit's text agent, which opens /dev/tty, asks there."""

    def __init__(self, argv, env):
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            try:
                os.execvpe(argv[0], argv, env)
            finally:
                os._exit(127)
        self.out = b''
        self.status = None

    def read_until(self, pattern, timeout):
        """Reads until @pattern (a regex on bytes) is in the output; False
        if the command ended or @timeout passed first."""
        deadline = time.monotonic() + timeout
        while not re.search(pattern, self.out):
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            ready, _, _ = select.select([self.fd], [], [], left)
            if not ready:
                continue
            try:
                data = os.read(self.fd, 4096)
            except OSError:  # EIO: the other side is closed
                data = b''
            if not data:
                return False
            self.out += data
        return True

    def echo_off(self):
        """The terminal does not echo (a password prompt is reading)."""
        import termios
        return not termios.tcgetattr(self.fd)[3] & termios.ECHO

    def send(self, text):
        os.write(self.fd, text.encode())

    def wait(self, timeout):
        """Reads to the end and returns the exit status (None on timeout)."""
        self.read_until(rb'(?!x)x', timeout)
        fd = os.pidfd_open(self.pid)
        try:
            if select.select([fd], [], [], 10)[0]:
                self.status = os.waitstatus_to_exitcode(os.waitpid(self.pid, 0)[1])
        finally:
            os.close(fd)
        return self.status

    def text(self):
        return self.out.decode(errors='replace')

    def kill(self):
        if self.status is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
        os.close(self.fd)


class UpdateTest(unittest.TestCase):
    HELPER_ARGS = ()

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix='banger-update-test-')
        os.chmod(self.tmp, 0o755)
        self.prefix = os.path.join(self.tmp, 'prefix')
        self.old = {}
        for name, sub in FILES.items():
            d = os.path.join(self.prefix, sub)
            os.makedirs(d, exist_ok=True)
            shutil.copy(build(BUILT[name]), os.path.join(d, name))
            with open(os.path.join(d, name), 'rb') as f:
                self.old[name] = f.read()
        self.www = os.path.join(self.tmp, 'www')
        os.makedirs(self.www)
        self.port = free_port()
        self.sb = SystemBus(extra_rules=ADMIN_RULE).start()
        self.addCleanup(self.sb.stop)
        self.home = os.path.join(self.tmp, 'session')
        self.cache = os.path.join(self.home, 'home', 'cache', 'banger')
        self.install_toml = os.path.join(self.prefix, 'etc', 'install.toml')
        # The user session of the prompt test (banger-test-b's own bus).
        self.user_tmp = os.path.join(self.tmp, 'user')
        self.user_cache = os.path.join(self.user_tmp, 'home', 'cache', 'banger')
        conf = os.path.join(self.tmp, 'helper.conf')
        with open(conf, 'w') as f:
            f.write('[update]\nbindir=%s/bin\nlibexecdir=%s/libexec\ninstall_toml=%s\n'
                    'staging_dirs=%s;%s;%s/users/%%U\n' % (
                        self.prefix, self.prefix, self.install_toml, self.cache, self.user_cache,
                        self.tmp))
        self.helper = self.sb._spawn('bangerd-root', [
            os.path.join(self.prefix, 'libexec', 'bangerd-root'), '-vv', '--config', conf,
            *self.HELPER_ARGS])
        self.sb.wait_for_name('org.banger.Helper', self.helper)
        self.http = Process('http', [sys.executable, '-m', 'http.server', '--bind', '127.0.0.1',
                                     str(self.port), '--directory', self.www],
                            os.path.join(self.tmp, 'http.log'))
        self.addCleanup(self.http.stop)
        wait_until(lambda: self._http_up(), what='http.server')
        env = dict(os.environ)
        env['BANGER_TEST_RELEASE_MANIFEST_URL'] = 'http://127.0.0.1:%d/manifest.json' % self.port
        self.bus = SessionBus(self.home, system_bus_address=self.sb.address, env=env)
        self.bus.start()
        self.addCleanup(self.bus.stop)
        # Activation from the installed prefix, as the installed service file does.
        with open(os.path.join(self.bus.servicedir, 'org.banger.Manager.service'), 'w') as f:
            f.write('[D-BUS Service]\nName=org.banger.Manager\nExec=%s/bin/bangerd -vv\n'
                    % self.prefix)
        subprocess.run(['dbus-send', '--session', '--dest=org.freedesktop.DBus', '--type=method_call',
                        '/org/freedesktop/DBus', 'org.freedesktop.DBus.ReloadConfig'],
                       env=self.bus.env, check=True)

    def tearDown(self):
        if hasattr(self, '_outcome') and any(e for _, e in getattr(self._outcome, 'errors', [])):
            pass
        shutil.rmtree(self.tmp, ignore_errors=True)

    def _http_up(self):
        import socket
        try:
            socket.create_connection(('127.0.0.1', self.port), 0.2).close()
            return True
        except OSError:
            return False

    def logs(self):
        user = getattr(self, 'user_bus', None)
        return '%s\n===== session bus =====\n%s\n===== user session bus =====\n%s\n' \
            '===== http =====\n%s' % (self.sb.logs(), self.bus.log(),
                                       user.log() if user is not None else '',
                                       self.http.output())

    # ---- the release ----

    def publish(self, version=NEW, bangerd=None, helper=None, bad_sig=False, bad_hash=False,
                patch_version=True, per_file=True):
        name = 'banger-%s-x86_64.tar.gz' % version
        buf = io.BytesIO()
        members = {}
        with tarfile.open(fileobj=buf, mode='w:gz') as tar:
            def add(member, data, mode=0o755):
                members[member] = data
                info = tarfile.TarInfo('banger-%s/%s' % (version, member))
                info.size = len(data)
                info.mode = mode
                tar.addfile(info, io.BytesIO(data))
            for f in FILES:
                data = self.old[f] + b'\0NEW-RELEASE-MARKER ' + version.encode()
                if f == 'bangerd-root' and patch_version:
                    data = with_version(data, version)
                if f == 'bangerd' and bangerd is not None:
                    data = bangerd
                if f == 'bangerd-root' and helper is not None:
                    data = helper
                add(f, data)
            add('BUILDINFO', ('[release]\nversion=%s\ncommit=0123456789ab\n'
                              'built_at=2030-01-02T03:04:05Z\n' % version).encode(), 0o644)
        self.tarball = buf.getvalue()
        with open(os.path.join(self.www, name), 'wb') as f:
            f.write(self.tarball + (b'x' if bad_hash else b''))
        # The tarball's line, then one per file in it: the per-file lines are
        # what bangerd-root checks the staged files against (docs/update.md).
        sums = '%s  %s\n' % (hashlib.sha256(self.tarball).hexdigest(), name)
        for member, data in (members.items() if per_file else ()):
            sums += '%s  banger-%s/%s\n' % (hashlib.sha256(data).hexdigest(), version, member)
        with open(os.path.join(self.www, 'SHA256SUMS'), 'w') as f:
            f.write(sums)
        signed = os.path.join(self.tmp, 'signed')
        with open(signed, 'w') as f:
            f.write(sums + ('tampered\n' if bad_sig else ''))
        subprocess.run(['openssl', 'dgst', '-sha256', '-sign', KEY, '-out',
                        os.path.join(self.www, 'SHA256SUMS.sig'), signed], check=True)
        with open(os.path.join(self.www, 'manifest.json'), 'w') as f:
            f.write('{"schema": 1, "latest": "%s", "versions": {"%s": {"tarball": "%s", '
                    '"sha256sums": "SHA256SUMS", "signature": "SHA256SUMS.sig", '
                    '"notes": "test release"}}}' % (version, version, name))

    def banger_env(self, extra, *args):
        env = dict(self.bus.env)
        env['DBUS_SYSTEM_BUS_ADDRESS'] = self.sb.address
        env.update(extra)
        return subprocess.run([build('src/cli/banger'), *args], capture_output=True, text=True,
                              env=env, timeout=120)

    def banger(self, *args):
        env = dict(self.bus.env)
        env['DBUS_SYSTEM_BUS_ADDRESS'] = self.sb.address
        return subprocess.run([build('src/cli/banger'), *args], capture_output=True, text=True,
                              env=env, timeout=120)

    def installed(self, name):
        with open(os.path.join(self.prefix, FILES[name], name), 'rb') as f:
            return f.read()

    def assert_updated(self, uid=0):
        for name in FILES:
            data = self.installed(name)
            self.assertTrue(data.endswith(b'NEW-RELEASE-MARKER ' + NEW.encode()), name)
            self.assertFalse(os.path.exists(os.path.join(self.prefix, FILES[name], name + '.old')))
            st = os.stat(os.path.join(self.prefix, FILES[name], name))
            self.assertEqual((st.st_uid, st.st_gid, st.st_mode & 0o7777), (0, 0, 0o755), name)
        with open(self.install_toml) as f:
            toml = f.read()
        self.assertIn('version = "%s"' % NEW, toml)
        self.assertIn('commit = "0123456789ab"', toml)
        self.assertIn('installed_by_uid = %d' % uid, toml)
        # The doctor ran the new helper, as root, from the old one.
        wait_until(lambda: 'passed its self-check: version ' + NEW in self.helper.output(), 10,
                   'the self-check line')
        # The helper left after the finish, so the next call starts the new one.
        wait_until(lambda: not self.helper.alive(), 10, 'the helper to exit')

    def assert_untouched(self):
        for name in FILES:
            self.assertEqual(self.installed(name), self.old[name], name)
            self.assertFalse(os.path.exists(os.path.join(self.prefix, FILES[name], name + '.old')))
            self.assertFalse(os.path.exists(os.path.join(self.prefix, FILES[name], name + '.new')))
        self.assertFalse(os.path.exists(self.install_toml))
        self.assertFalse(os.path.exists(os.path.join(self.cache, 'update', 'staging')))

    def run_ok(self, res):
        self.assertEqual(res.returncode, 0, res.stdout + res.stderr + self.logs())

    # ---- cases ----

    def test_check(self):
        self.publish()
        res = self.banger('update', '--check')
        self.run_ok(res)
        self.assertIn(NEW + ' is available', res.stdout)

    def test_full_update(self):
        self.publish()
        res = self.banger('update', '--progress', 'none')
        self.run_ok(res)
        self.assertIn('updated to ' + NEW, res.stdout)
        self.assert_updated()

    def test_bad_signature(self):
        self.publish(bad_sig=True)
        res = self.banger('update', '--progress', 'none')
        self.assertNotEqual(res.returncode, 0)
        self.assertIn('not signed by the release key', res.stderr)
        self.assert_untouched()

    def test_bad_hash(self):
        self.publish(bad_hash=True)
        res = self.banger('update', '--progress', 'none')
        self.assertNotEqual(res.returncode, 0)
        self.assertIn('signed SHA256SUMS says', res.stderr)
        self.assert_untouched()

    def test_no_per_file_hashes(self):
        # A release whose signed SHA256SUMS lists only the tarball (the
        # format before issue 10, finding 7): the helper could not check the
        # staged files, so bangerd refuses it before anyone is asked for a
        # password.
        self.publish(per_file=False)
        res = self.banger('update', '--progress', 'none')
        self.assertNotEqual(res.returncode, 0, res.stdout)
        self.assertIn('SHA256SUMS does not list banger-%s/' % NEW, res.stderr)
        self.assert_untouched()

    def test_check_migrations_fails(self):
        self.publish(bangerd=b'#!/bin/sh\necho "database is newer" >&2\nexit 1\n')
        res = self.banger('update', '--progress', 'none')
        self.assertNotEqual(res.returncode, 0)
        self.assertIn('database is newer', res.stderr)
        self.assert_untouched()

    def test_doctor_fails_rolls_back(self):
        # Passes --check-migrations, then cannot start: the doctor after the
        # restart gets no answer.
        self.publish(bangerd=b'#!/bin/sh\n[ "$1" = --check-migrations ] && exit 0\nexit 1\n')
        res = self.banger('update', '--progress', 'none')
        self.assertNotEqual(res.returncode, 0, res.stdout + self.logs())
        self.assertIn('rolled back', res.stderr)
        self.assert_untouched()
        # And the old bangerd answers again.
        self.run_ok(self.banger('update', '--check'))

    def test_new_helper_fails_doctor(self):
        # The new bangerd-root cannot serve: its self-check (run as root by
        # the old helper after the swap) fails, so helper, bangerd, CLI and
        # agent are all put back, byte for byte.
        self.publish(helper=b'#!/bin/sh\necho "bangerd-root: TEST cannot start" >&2\nexit 1\n')
        res = self.banger('update', '--progress', 'none')
        self.assertNotEqual(res.returncode, 0, res.stdout + self.logs())
        self.assertIn('rolled back', res.stderr)
        self.assertIn('TEST cannot start', res.stderr)
        self.assert_untouched()
        wait_until(lambda: not self.helper.alive(), 10, 'the helper to exit after the rollback')
        # The old bangerd answers again.
        self.run_ok(self.banger('update', '--check'))

    def test_new_helper_wrong_version(self):
        # A bangerd-root that starts but is not the version the release says
        # (here: the build's own version) fails the doctor too.
        self.publish(patch_version=False)
        res = self.banger('update', '--progress', 'none')
        self.assertNotEqual(res.returncode, 0, res.stdout + self.logs())
        self.assertIn('not the release being installed', res.stderr)
        self.assert_untouched()

    # ---- the prompt in the terminal ----

    def shadow_with_password(self, user):
        hashed = subprocess.run(['openssl', 'passwd', '-6', '-stdin'], input=PASSWORD,
                                capture_output=True, text=True, check=True).stdout.strip()
        with open('/etc/shadow') as f:
            lines = [line if not line.startswith(user + ':') else
                     '%s:%s:19000:0:99999:7:::\n' % (user, hashed) for line in f]
        path = os.path.join(self.tmp, 'shadow')
        with open(path, 'w') as f:
            f.writelines(lines)
        os.chmod(path, 0o600)
        return path

    def test_prompt_at_cli(self):
        """banger-test-b (not in group banger, so no bypass) runs `banger
        update` in a terminal with its own session bus and bangerd: polkit
        asks for an administrator's password through the CLI's text agent,
        it is typed there, and the update goes through."""
        uid, gid = self.sb.users['banger-test-b']
        self.publish()
        env = dict(os.environ)
        env['BANGER_TEST_RELEASE_MANIFEST_URL'] = 'http://127.0.0.1:%d/manifest.json' % self.port
        env['LC_ALL'] = 'C.UTF-8'
        ubus = UserSessionBus(self.user_tmp, uid, gid, system_bus_address=self.sb.address,
                              env=env)
        with open(os.path.join(ubus.servicedir, 'org.banger.Manager.service'), 'w') as f:
            f.write('[D-BUS Service]\nName=org.banger.Manager\nExec=%s/bin/bangerd -vv\n'
                    % self.prefix)
        ubus.start()
        self.addCleanup(ubus.stop)
        self.user_bus = ubus
        run = PtyRun(['unshare', '-m', '--propagation', 'private', '--', sys.executable,
                      os.path.abspath(__file__), 'exec-as-user',
                      self.shadow_with_password('banger-test-b'), self.sb.tmp, str(uid), str(gid),
                      build('src/cli/banger'), 'update', '--progress', 'none'], ubus.env)
        self.addCleanup(run.kill)
        self.assertTrue(run.read_until(rb'Password:', 90), run.text() + self.logs())
        self.assertIn('AUTHENTICATING FOR org.banger.system.update', run.text())
        self.assertIn('Authenticating as: banger-test-b', run.text())
        # polkit's agent turns echo off (flushing what was typed before)
        # after it printed the prompt: type once it listens.
        wait_until(run.echo_off, 30, 'the agent to read the password')
        run.send(PASSWORD + '\n')
        status = run.wait(90)
        self.assertEqual(status, 0, run.text() + self.logs())
        self.assertIn('updated to ' + NEW, run.text())
        self.assertNotIn(PASSWORD, run.text())  # not echoed
        # One prompt only: check and finish came from the same client.
        self.assertEqual(run.text().count('Password:'), 1, run.text())
        self.assert_updated(uid)

    # ---- the pending swap, from the helper's side ----

    def _stage_as_root(self):
        staging = os.path.join(self.tmp, 'users', '0', 'update')
        os.makedirs(staging)
        os.chmod(os.path.join(self.tmp, 'users'), 0o755)
        for name in FILES:
            with open(os.path.join(staging, name), 'wb') as f:
                f.write(self.old[name] + b'\0NEW-RELEASE-MARKER ' + NEW.encode())
        sign_staging(staging)
        return staging

    def _own_connection(self):
        from gi.repository import Gio
        return Gio.DBusConnection.new_for_address_sync(
            self.sb.address, Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT |
            Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION, None, None)

    def _install(self, conn, staging, **options):
        from gi.repository import GLib, Gio
        opts = {k: GLib.Variant('b' if isinstance(v, bool) else 's', v)
                for k, v in options.items()}
        conn.call_sync('org.banger.Helper', '/org/banger/Helper', 'org.banger.Helper',
                       'InstallRelease', GLib.Variant('(sa{sv})', (staging, opts)), None,
                       Gio.DBusCallFlags.NONE, 30000, None)

    def _staged_by_bangerd(self):
        """Runs bangerd's Update job over the session bus (what `banger
        update` does before it asks for the swap): the release is
        downloaded, verified and staged, and nothing installs it yet."""
        from gi.repository import GLib, Gio
        conn = Gio.DBusConnection.new_for_address_sync(
            self.bus.address, Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT |
            Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION, None, None)
        self.addCleanup(conn.close_sync, None)
        job = conn.call_sync('org.banger.Manager', '/org/banger/Manager', 'org.banger.Manager',
                             'Update', GLib.Variant('(a{sv})', ({},)), GLib.VariantType('(o)'),
                             Gio.DBusCallFlags.NONE, 60000, None).unpack()[0]

        def ended():
            state = conn.call_sync('org.banger.Manager', job, 'org.freedesktop.DBus.Properties',
                                   'Get', GLib.Variant('(ss)', ('org.banger.Job', 'State')),
                                   GLib.VariantType('(v)'), Gio.DBusCallFlags.NONE, 10000,
                                   None).unpack()[0]
            return state if state in ('succeeded', 'failed', 'cancelled') else None
        self.assertEqual(wait_until(ended, 90, 'the Update job'), 'succeeded', self.logs())
        staging = os.path.join(self.cache, 'update', 'staging')
        for name in ('SHA256SUMS', 'SHA256SUMS.sig', *FILES):
            self.assertTrue(os.path.isfile(os.path.join(staging, name)), name)
        return staging

    def assert_nothing_installed(self):
        for name in FILES:
            self.assertEqual(self.installed(name), self.old[name], name)
            for suffix in ('.old', '.new'):
                self.assertFalse(os.path.exists(os.path.join(self.prefix, FILES[name],
                                                             name + suffix)), name + suffix)
        self.assertFalse(os.path.exists(self.install_toml))
        self.assertFalse(os.path.exists(self.install_toml + '.pending'))

    def test_tampered_staging_refused(self):
        # Issue 10, finding 7: bangerd verified and staged the release; then
        # code running as the same user swaps a staged file. The helper
        # checks the signature and every file's hash itself, on what it
        # copies, and refuses; nothing is installed. The untouched staging
        # then installs.
        from gi.repository import GLib
        self.publish()
        staging = self._staged_by_bangerd()
        conn = self._own_connection()
        self.addCleanup(conn.close_sync, None)
        info = dict(version=NEW, commit='0123456789ab', built_at='2030-01-02T03:04:05Z')
        path = os.path.join(staging, 'banger')
        with open(path, 'rb') as f:
            good = f.read()

        def replace(name, data):
            # A new inode renamed over the name, as an attacker would.
            tmp = os.path.join(staging, '.' + name + '.tmp')
            with open(tmp, 'wb') as f:
                f.write(data)
            os.chmod(tmp, 0o755)
            os.replace(tmp, os.path.join(staging, name))

        replace('banger', b'#!/bin/sh\necho pwned\n')
        with self.assertRaises(GLib.Error) as err:
            self._install(conn, staging, **info)
        self.assertIn('org.banger.Error.Verification', err.exception.message)
        self.assertIn('changed after it was verified', err.exception.message)
        self.assert_nothing_installed()

        # Re-signing is not possible without the key: a SHA256SUMS rewritten
        # with the swapped file's hash fails the signature.
        with open(os.path.join(staging, 'SHA256SUMS')) as f:
            sums = f.read()
        forged = re.sub(r'^[0-9a-f]{64}(?=  banger-%s/banger$)' % re.escape(NEW),
                        hashlib.sha256(b'#!/bin/sh\necho pwned\n').hexdigest(), sums,
                        flags=re.M)
        self.assertNotEqual(forged, sums)
        replace('SHA256SUMS', forged.encode())
        with self.assertRaises(GLib.Error) as err:
            self._install(conn, staging, **info)
        self.assertIn('org.banger.Error.Verification', err.exception.message)
        self.assertIn('not signed by the release key', err.exception.message)
        self.assert_nothing_installed()
        self.assertIn('InstallRelease', self.helper.output())

        # The release as bangerd staged it installs.
        replace('SHA256SUMS', sums.encode())
        replace('banger', good)
        self._install(conn, staging, **info)
        for name in FILES:
            self.assertTrue(self.installed(name).endswith(b'NEW-RELEASE-MARKER ' + NEW.encode()),
                            name)
        self._install(conn, staging, rollback=True)
        wait_until(lambda: not self.helper.alive(), 10, 'the helper to exit')
        self.assert_nothing_installed()

    def test_client_leaves_rolls_back(self):
        # The swap's client leaves the bus without finishing: the helper
        # puts the old set back by itself and exits.
        staging = self._stage_as_root()
        conn = self._own_connection()
        self._install(conn, staging, version=NEW, commit='0123456789ab',
                      built_at='2030-01-02T03:04:05Z')
        self.assertTrue(self.installed('banger').endswith(NEW.encode()))
        conn.close_sync(None)
        wait_until(lambda: not self.helper.alive(), 10, 'the helper to roll back and exit')
        self.assertIn('rolled back: its client left the bus', self.helper.output())
        shutil.rmtree(os.path.join(self.tmp, 'users'))
        self.assert_untouched()

    def test_helper_stopped_rolls_back(self):
        # The helper is stopped (SIGTERM, as `systemctl stop` does) with a
        # swap pending: it puts the old set back before it exits.
        staging = self._stage_as_root()
        conn = self._own_connection()
        self.addCleanup(conn.close_sync, None)
        self._install(conn, staging, version=NEW, commit='0123456789ab',
                      built_at='2030-01-02T03:04:05Z')
        self.assertTrue(self.installed('bangerd').endswith(NEW.encode()))
        self.assertEqual(self.helper.stop(), 0, self.helper.output())
        self.assertIn('rolled back: the helper is stopping', self.helper.output())
        shutil.rmtree(os.path.join(self.tmp, 'users'))
        self.assert_untouched()

    def test_other_client_needs_polkit(self):
        # Another connection (here: user b's, with no agent) gets no free
        # finish of someone else's pending swap: polkit decides, and says no.
        staging = self._stage_as_root()
        conn = self._own_connection()
        self.addCleanup(conn.close_sync, None)
        self._install(conn, staging, version=NEW, commit='0123456789ab',
                      built_at='2030-01-02T03:04:05Z')
        b_staging = self._staging_for('banger-test-b')
        ok, out = self.sb.call('banger-test-b', 'InstallRelease', b_staging, "{'finish': <true>}")
        self.assertFalse(ok)
        self.assertIn('AccessDenied', out)
        self.assertFalse(os.path.exists(self.install_toml))
        self._install(conn, staging, rollback=True)
        wait_until(lambda: not self.helper.alive(), 10, 'the helper to exit')
        shutil.rmtree(os.path.join(self.tmp, 'users'))
        self.assert_untouched()

    # ---- install.sh, from the same signed release ----

    def installer(self, embed_key=True):
        """A copy of the repository's install.sh; with @embed_key the TEST-ONLY
        public key written between its markers, as release tooling writes the
        real one."""
        with open(os.path.join(os.environ['BANGER_SOURCE_ROOT'], 'install.sh')) as f:
            text = f.read()
        if embed_key:
            with open(os.path.join(HERE, 'TEST-ONLY-release-key.pub.pem')) as f:
                pem = f.read().strip()
            text, n = re.subn(r"(# ---- BEGIN RELEASE PUBLIC KEY ----\n)RELEASE_PUBKEY=''\n",
                              lambda m: m.group(1) + "RELEASE_PUBKEY='%s'\n" % pem, text)
            self.assertEqual(n, 1)
        path = os.path.join(self.tmp, 'install-%s.sh' % ('key' if embed_key else 'nokey'))
        with open(path, 'w') as f:
            f.write(text)
        os.chmod(path, 0o755)
        return path

    def run_installer(self, script, prefix_owner='banger-test-b', **env_extra):
        """Runs @script as banger-test-b (a user, not root) into a fresh prefix
        under the test's directory, without `banger system install`."""
        uid, gid = self.sb.users['banger-test-b']
        self.inst = os.path.join(self.tmp, 'inst')
        os.makedirs(self.inst, exist_ok=True)
        owner = self.sb.users[prefix_owner] if prefix_owner else (0, 0)
        os.chown(self.inst, *owner)
        env = {'PATH': '/usr/sbin:/usr/bin:/sbin:/bin', 'HOME': '/', 'LC_ALL': 'C.UTF-8',
               'TMPDIR': self.inst if prefix_owner else '/tmp',
               'BANGER_RELEASE_MANIFEST_URL': 'http://127.0.0.1:%d/manifest.json' % self.port,
               'BANGER_INSTALL_PREFIX': self.inst,
               'BANGER_INSTALL_TOML': os.path.join(self.inst, 'etc', 'install.toml'),
               'BANGER_INSTALL_NONINTERACTIVE': '1',
               'BANGER_INSTALL_SKIP_SYSTEM_INSTALL': '1'}
        env.update(env_extra)
        return subprocess.run(['setpriv', '--reuid=%d' % uid, '--regid=%d' % gid,
                               '--clear-groups', script], capture_output=True, text=True,
                              env=env, cwd='/', stdin=subprocess.DEVNULL, timeout=120)

    def assert_installed_by_script(self):
        members = {}
        with tarfile.open(fileobj=io.BytesIO(self.tarball)) as tar:
            for m in tar.getmembers():
                members[os.path.basename(m.name)] = tar.extractfile(m).read()
        for name, sub in FILES.items():
            path = os.path.join(self.inst, sub, name)
            with open(path, 'rb') as f:
                self.assertEqual(f.read(), members[name], name)
            self.assertEqual(os.stat(path).st_mode & 0o7777, 0o755, name)
        with open(os.path.join(self.inst, 'etc', 'install.toml')) as f:
            toml = f.read()
        self.assertIn('version = "%s"' % NEW, toml)
        self.assertIn('commit = "0123456789ab"', toml)
        self.assertIn('installed_by_uid = %d' % self.sb.users['banger-test-b'][0], toml)

    def assert_nothing_installed_by_script(self):
        left = [os.path.join(r, f) for r, _, fs in os.walk(self.inst) for f in fs]
        self.assertEqual(left, [])

    def test_install_script(self):
        self.publish()
        res = self.run_installer(self.installer())
        self.assertEqual(res.returncode, 0, res.stdout + res.stderr + self.logs())
        self.assertIn('signature and checksum verified', res.stdout)
        self.assertIn('not running `banger system install`', res.stdout)
        self.assertNotIn('WARNING', res.stderr)
        self.assert_installed_by_script()

    def test_install_script_bad_signature(self):
        self.publish(bad_sig=True)
        res = self.run_installer(self.installer())
        self.assertNotEqual(res.returncode, 0, res.stdout)
        self.assertIn('not signed by the release key', res.stderr)
        self.assert_nothing_installed_by_script()

    def test_install_script_bad_hash(self):
        self.publish(bad_hash=True)
        res = self.run_installer(self.installer())
        self.assertNotEqual(res.returncode, 0, res.stdout)
        self.assertIn('but the signed SHA256SUMS says', res.stderr)
        self.assert_nothing_installed_by_script()

    def test_install_script_key_override(self):
        self.publish()
        script = self.installer(embed_key=False)
        # The repository's copy carries no key: it refuses...
        res = self.run_installer(script)
        self.assertNotEqual(res.returncode, 0, res.stdout)
        self.assertIn('carries no release key', res.stderr)
        self.assert_nothing_installed_by_script()
        # ...unless the test-only override names one, loudly.
        res = self.run_installer(script, BANGER_INSTALL_PUBKEY_FILE=os.path.join(
            HERE, 'TEST-ONLY-release-key.pub.pem'))
        self.assertEqual(res.returncode, 0, res.stdout + res.stderr)
        self.assertIn('WARNING: BANGER_INSTALL_PUBKEY_FILE is set', res.stderr)
        self.assertIn('TESTS ONLY', res.stderr)
        self.assert_installed_by_script()

    def test_install_script_explains_sudo(self):
        # A prefix the user may not write, no prompts allowed: the script
        # says why it needs root before trying sudo (absent here, or -n).
        self.publish()
        res = self.run_installer(self.installer(), prefix_owner=None)
        self.assertNotEqual(res.returncode, 0, res.stdout)
        self.assertIn('needs administrator rights (sudo) for this, and only this', res.stdout)
        self.assertIn('sudo -n', res.stdout + res.stderr)
        self.assert_nothing_installed_by_script()

    def test_install_script_plain_http_refused(self):
        res = self.run_installer(self.installer(),
                                 BANGER_RELEASE_MANIFEST_URL='http://example.invalid/m.json')
        self.assertNotEqual(res.returncode, 0, res.stdout)
        self.assertIn('plain HTTP only from loopback', res.stderr)
        self.assert_nothing_installed_by_script()

    def test_dry_run(self):
        """Issue 11, item 6: --dry-run prints the plan from the signed file
        list; the tarball is never requested and nothing changes on disk."""
        self.publish()
        name = 'banger-%s-x86_64.tar.gz' % NEW
        with open(os.path.join(self.www, name), 'rb') as f:
            tarball_sha = hashlib.sha256(f.read()).hexdigest()
        cache_before = sorted(os.listdir(self.cache)) if os.path.isdir(self.cache) else []
        env_conf = os.path.join(self.tmp, 'helper.conf')
        res = self.banger_env({'BANGER_HELPER_CONF': env_conf}, 'update', '--dry-run')
        self.run_ok(res)
        out = res.stdout
        base = 'http://127.0.0.1:%d/' % self.port
        self.assertIn('installed version: ' + CURRENT, out)
        self.assertIn('new version:       ' + NEW, out)
        self.assertIn('manifest:          ' + base + 'manifest.json', out)
        self.assertIn('tarball:           ' + base + name + ' (not downloaded)', out)
        self.assertIn(base + 'SHA256SUMS (signature ' + base + 'SHA256SUMS.sig verified', out)
        self.assertIn('  %s  %s\n' % (tarball_sha, name), out)
        for f, sub in FILES.items():
            self.assertIn('  %s\n' % os.path.join(self.prefix, sub, f), out)
        self.assertIn('  %s (the install record' % self.install_toml, out)
        self.assertIn('bangerd: process ', out)
        self.assertIn('bangerd-root: exits after the update', out)
        self.assertNotIn('Would refuse now', out)
        # the server's request log: the signed part was fetched, the tarball never
        wait_until(lambda: '"GET /SHA256SUMS.sig ' in self.http.output(), 10,
                   'the signature request in the server log')
        requests = re.findall(r'"GET (\S+) ', self.http.output())
        self.assertEqual(sorted(set(requests)),
                         ['/SHA256SUMS', '/SHA256SUMS.sig', '/manifest.json'], requests)
        # nothing changed: installed files, no install.toml, no staging or download
        self.assert_untouched()
        self.assertFalse(os.path.exists(os.path.join(self.cache, 'update')))
        self.assertEqual(sorted(os.listdir(self.cache)) if os.path.isdir(self.cache) else [],
                         cache_before)

    def test_dry_run_bad_signature(self):
        """The plan is only shown for a release the key vouches for."""
        self.publish(bad_sig=True)
        res = self.banger('update', '--dry-run')
        self.assertNotEqual(res.returncode, 0, res.stdout)
        self.assertIn('signature', res.stderr)
        self.assertNotIn('new version', res.stdout)
        self.assertNotIn('.tar.gz ', ' '.join(re.findall(r'"GET (\S+) ', self.http.output())))
        self.assert_untouched()

    def _staging_for(self, user, outside=False, symlink=False, fifo=False):
        uid, gid = self.sb.users[user]
        base = os.path.join(self.tmp, 'elsewhere' if outside else 'users', str(uid))
        staging = os.path.join(base, 'update')
        os.makedirs(staging)
        for d in (base, staging):
            os.chown(d, uid, gid)
            os.chmod(d, 0o755)
        for name in FILES:
            p = os.path.join(staging, name)
            if symlink and name == 'banger':
                os.symlink('/bin/true', p)
                continue
            if fifo and name == 'banger':
                os.mkfifo(p)
                os.chown(p, uid, gid)
                continue
            shutil.copy(build(BUILT[name]), p)
            os.chown(p, uid, gid, follow_symlinks=False)
        sign_staging(staging, owner=(uid, gid))
        return staging

    def _install_as(self, user, staging):
        return self.sb.call(user, 'InstallRelease', staging,
                            "{'version': <'%s'>, 'commit': <'0123456789ab'>, "
                            "'built_at': <'2030-01-02T03:04:05Z'>}" % NEW)

    def test_install_release_outside_cache(self):
        ok, out = self._install_as('banger-test-a', self._staging_for('banger-test-a', outside=True))
        self.assertFalse(ok)
        self.assertIn('InvalidArgument', out)
        self.assertIn('not under', out)
        self.assertIn('action=org.banger.system.update', self.helper.output())
        self.assert_untouched()

    def test_install_release_symlink(self):
        ok, out = self._install_as('banger-test-a', self._staging_for('banger-test-a', symlink=True))
        self.assertFalse(ok)
        self.assertIn('InvalidArgument', out)
        self.assertIn('symlinks are not followed', out)
        self.assert_untouched()

    def test_install_release_fifo_before_polkit(self):
        # A FIFO where a staged file should be: the checks before polkit
        # (open to any local user) answer at once instead of blocking a
        # helper thread on the FIFO for ever (issue 10, finding 3).
        staging = self._staging_for('banger-test-a', fifo=True)
        start = time.monotonic()
        ok, out = self._install_as('banger-test-a', staging)
        self.assertLess(time.monotonic() - start, 5, 'the helper blocked on a FIFO')
        self.assertFalse(ok)
        self.assertIn('InvalidArgument', out)
        self.assertIn('is not a regular file', out)
        self.assert_untouched()

    def test_install_release_denied(self):
        # B passes every check but polkit says no (auth_admin, no agent).
        ok, out = self._install_as('banger-test-b', self._staging_for('banger-test-b'))
        self.assertFalse(ok)
        self.assertIn('AccessDenied', out)
        self.assert_untouched()


class IdleUpdateTest(UpdateTest):
    """The helper as installed: it exits when idle, but not with a swap
    pending."""
    HELPER_ARGS = ('--idle-timeout', '1')

    def test_pending_swap_blocks_idle_exit(self):
        staging = self._stage_as_root()
        conn = self._own_connection()
        self.addCleanup(conn.close_sync, None)
        self._install(conn, staging, version=NEW, commit='0123456789ab',
                      built_at='2030-01-02T03:04:05Z')
        # Three idle periods pass with the swap pending: still there.
        with self.assertRaises(subprocess.TimeoutExpired):
            self.helper.proc.wait(3.5)
        self._install(conn, staging, finish=True)
        wait_until(lambda: not self.helper.alive(), 10, 'the helper to exit after the finish')
        self.assertEqual(self.helper.proc.returncode, 0)
        for name in FILES:
            self.assertTrue(self.installed(name).endswith(NEW.encode()), name)


if __name__ == '__main__':
    if len(sys.argv) > 2 and sys.argv[1] == 'exec-as-user':
        exec_as_user(*sys.argv[2:6], *sys.argv[6:])
    unittest.main()
