"""banger update end to end: a release served over loopback HTTP by
python3's http.server (the test's own child), signed at test time with the
committed TEST-ONLY key, the real bangerd-testkey (the build's bangerd with
that key) activated from a temporary "installed prefix" on a private session
bus, and the real bangerd-root with the real polkitd on a private system bus.
"""

import hashlib
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', 'lib'))
from session_bus import SessionBus  # noqa: E402
from system_bus import SystemBus, Process, wait_until, socket_accepts  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
KEY = os.path.join(HERE, 'TEST-ONLY-release-key.pem')
NEW = '99.0.0'
FILES = {'bangerd': 'bin', 'banger': 'bin', 'bangerd-root': 'libexec',
         'banger-agent': 'libexec/banger'}
BUILT = {'bangerd': 'src/service/bangerd-testkey', 'banger': 'src/cli/banger',
         'bangerd-root': 'src/helper/bangerd-root', 'banger-agent': 'src/agent/banger-agent'}


def build(path):
    return os.path.join(os.environ['BANGER_BUILD_ROOT'], path)


def free_port():
    import socket
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
    s.close()
    return port


class UpdateTest(unittest.TestCase):
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
        self.sb = SystemBus().start()
        self.addCleanup(self.sb.stop)
        self.home = os.path.join(self.tmp, 'session')
        self.cache = os.path.join(self.home, 'home', 'cache', 'banger')
        self.install_toml = os.path.join(self.prefix, 'etc', 'install.toml')
        conf = os.path.join(self.tmp, 'helper.conf')
        with open(conf, 'w') as f:
            f.write('[update]\nbindir=%s/bin\nlibexecdir=%s/libexec\ninstall_toml=%s\n'
                    'staging_dirs=%s;%s/users/%%U\n' % (self.prefix, self.prefix,
                                                       self.install_toml, self.cache, self.tmp))
        self.helper = self.sb._spawn('bangerd-root', [
            os.path.join(self.prefix, 'libexec', 'bangerd-root'), '-vv', '--config', conf])
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
        return '%s\n===== session bus =====\n%s\n===== http =====\n%s' % (
            self.sb.logs(), self.bus.log(), self.http.output())

    # ---- the release ----

    def publish(self, version=NEW, bangerd=None, bad_sig=False, bad_hash=False):
        name = 'banger-%s-x86_64.tar.gz' % version
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode='w:gz') as tar:
            def add(member, data, mode=0o755):
                info = tarfile.TarInfo('banger-%s/%s' % (version, member))
                info.size = len(data)
                info.mode = mode
                tar.addfile(info, io.BytesIO(data))
            for f in FILES:
                data = self.old[f] + b'\0NEW-RELEASE-MARKER ' + version.encode()
                if f == 'bangerd' and bangerd is not None:
                    data = bangerd
                add(f, data)
            add('BUILDINFO', ('[release]\nversion=%s\ncommit=0123456789ab\n'
                              'built_at=2030-01-02T03:04:05Z\n' % version).encode(), 0o644)
        self.tarball = buf.getvalue()
        with open(os.path.join(self.www, name), 'wb') as f:
            f.write(self.tarball + (b'x' if bad_hash else b''))
        sums = '%s  %s\n' % (hashlib.sha256(self.tarball).hexdigest(), name)
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

    def banger(self, *args):
        env = dict(self.bus.env)
        env['DBUS_SYSTEM_BUS_ADDRESS'] = self.sb.address
        return subprocess.run([build('src/cli/banger'), *args], capture_output=True, text=True,
                              env=env, timeout=120)

    def installed(self, name):
        with open(os.path.join(self.prefix, FILES[name], name), 'rb') as f:
            return f.read()

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
        for name in FILES:
            self.assertTrue(self.installed(name).endswith(b'NEW-RELEASE-MARKER ' + NEW.encode()),
                            name)
            self.assertFalse(os.path.exists(os.path.join(self.prefix, FILES[name], name + '.old')))
        with open(self.install_toml) as f:
            toml = f.read()
        self.assertIn('version = "%s"' % NEW, toml)
        self.assertIn('commit = "0123456789ab"', toml)
        # The helper left after the finish, so the next call starts the new one.
        wait_until(lambda: not self.helper.alive(), 10, 'the helper to exit')

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

    def test_dry_run(self):
        self.publish()
        res = self.banger('update', '--dry-run', '--progress', 'none')
        self.run_ok(res)
        self.assertIn('dry run', res.stdout)
        self.assert_untouched()

    def _staging_for(self, user, outside=False, symlink=False):
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
            shutil.copy(build(BUILT[name]), p)
            os.chown(p, uid, gid, follow_symlinks=False)
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

    def test_install_release_denied(self):
        # B passes every check but polkit says no (auth_admin, no agent).
        ok, out = self._install_as('banger-test-b', self._staging_for('banger-test-b'))
        self.assertFalse(ok)
        self.assertIn('AccessDenied', out)
        self.assert_untouched()


if __name__ == '__main__':
    unittest.main()
