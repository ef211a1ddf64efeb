#!/usr/bin/python3
"""`banger system install`, run as the real CLI binary.

Every case installs under --root into its own temporary directory (the
packager's DESTDIR), from the build tree's copies (BANGER_SYSTEM_DATA_DIR =
<build>/data/system, made by data/system/meson.build). Nothing here writes
to the machine's /etc or /usr/share. The group is created with the real
groupadd --prefix in a fake <root>/etc/group. The non-root case runs the CLI
as banger-test-a (tests/lib/system_bus.py creates the test users)."""

import json
import os
import pwd
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import unittest

from session_bus import build_root
from system_bus import ensure_test_users, make_bus_config, source_root, wait_until

BANGER = os.path.join(build_root(), 'src', 'cli', 'banger')
SYSTEM_DATA = os.path.join(build_root(), 'data', 'system')
TIMEOUT = 30

# target on the host → the file meson installs in the usual place (the
# build's copy), which the data/system copy must equal byte for byte.
FILES = {
    '/etc/dbus-1/system.d/org.banger.Helper.conf':
        ('source', 'data/dbus/org.banger.Helper.conf'),
    '/usr/share/dbus-1/system-services/org.banger.Helper.service':
        ('build', 'data/dbus/org.banger.Helper.service'),
    '/usr/share/dbus-1/services/org.banger.Manager.service':
        ('build', 'data/dbus/org.banger.Manager.service'),
    '/usr/share/polkit-1/actions/org.banger.policy':
        ('build', 'data/polkit/org.banger.policy'),
    '/etc/polkit-1/rules.d/50-org.banger.rules':
        ('source', 'data/polkit/50-org.banger.rules'),
    '/etc/systemd/system/bangerd-root.service':
        ('build', 'data/systemd/bangerd-root.service'),
    '/etc/systemd/user/bangerd.service':
        ('build', 'data/systemd/bangerd.service'),
}


# Generated, not copied (live installs only): ReadWritePaths= for the banger
# directories of group banger's members, so the helper can write there.
DROPIN = '/etc/systemd/system/bangerd-root.service.d/50-banger-users.conf'


def build_copy(target):
    tree, rel = FILES[target]
    top = source_root() if tree == 'source' else build_root()
    with open(os.path.join(top, rel), 'rb') as f:
        return f.read()


class SystemInstallTest(unittest.TestCase):

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix='banger-sysinst-test-')
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        self.root = os.path.join(self.tmp, 'root')
        os.mkdir(self.root)
        self.env = dict(os.environ)
        self.env['BANGER_SYSTEM_DATA_DIR'] = SYSTEM_DATA
        self.env['LC_ALL'] = 'C.UTF-8'
        # No bus: a case that wrongly tried a reload would fail loudly.
        self.env['DBUS_SYSTEM_BUS_ADDRESS'] = 'unix:path=' + os.path.join(self.tmp, 'no-bus')

    def banger(self, *args, status=0, user=None, env=None):
        argv = [BANGER] + list(args)
        if user is not None:
            uid, gid = user
            argv = ['setpriv', f'--reuid={uid}', f'--regid={gid}', '--clear-groups'] + argv
        r = subprocess.run(argv, env=env or self.env, capture_output=True, text=True,
                           timeout=TIMEOUT)
        if status is not None:
            self.assertEqual(r.returncode, status,
                             'banger %s exited %d\nstdout:\n%s\nstderr:\n%s' %
                             (' '.join(args), r.returncode, r.stdout, r.stderr))
        return r

    def install_json(self, *extra, root=None):
        r = self.banger('system', 'install', '--root', root or self.root, '--json', *extra)
        return json.loads(r.stdout)

    def path(self, target):
        return os.path.join(self.root, target.lstrip('/'))

    def statuses(self, report):
        return {f['target']: f['status'] for f in report['files']}

    def snapshot(self):
        """(mtime_ns, inode, mode, bytes) of every file under the root."""
        snap = {}
        for dirpath, _, names in os.walk(self.root):
            for name in names:
                p = os.path.join(dirpath, name)
                st = os.lstat(p)
                with open(p, 'rb') as f:
                    snap[p] = (st.st_mtime_ns, st.st_ino, st.st_mode, f.read())
        return snap

    def make_group_files(self):
        etc = os.path.join(self.root, 'etc')
        os.makedirs(etc, exist_ok=True)
        with open(os.path.join(etc, 'group'), 'w') as f:
            f.write('root:x:0:\n')
        with open(os.path.join(etc, 'gshadow'), 'w') as f:
            f.write('root:*::\n')
        os.chmod(os.path.join(etc, 'gshadow'), 0o640)

    def test_root_installs_every_file(self):
        self.make_group_files()
        r = self.banger('system', 'install', '--root', self.root)
        for target in FILES:
            p = self.path(target)
            with open(p, 'rb') as f:
                self.assertEqual(f.read(), build_copy(target), target)
            st = os.lstat(p)
            self.assertTrue(stat.S_ISREG(st.st_mode), target)
            self.assertEqual(stat.S_IMODE(st.st_mode), 0o644, target)
            self.assertRegex(r.stdout, r'(?m)^installed +' + re.escape(p) + '$')
        # Nothing but these files (and the group files) was written.
        written = {p for p in self.snapshot() if '/etc/group' not in p and '/etc/gshadow' not in p}
        self.assertEqual(written, {self.path(t) for t in FILES})
        # The group the polkit rules name, made by the real groupadd.
        with open(os.path.join(self.root, 'etc', 'group')) as f:
            self.assertRegex(f.read(), r'(?m)^banger:x:\d+:$')
        self.assertIn('group banger: created', r.stdout)
        self.assertIn('systemd: skipped: --root', r.stdout)
        self.assertIn('dbus-daemon: skipped: --root', r.stdout)

    def test_second_run_unchanged(self):
        self.make_group_files()
        first = self.install_json()
        self.assertEqual(set(self.statuses(first).values()), {'installed'})
        self.assertEqual(len(first['files']), len(FILES))
        self.assertEqual({f['target'] for f in first['files']}, set(FILES))
        self.assertTrue(all(f['mode'] == '0644' for f in first['files']))
        before = self.snapshot()
        second = self.install_json()
        self.assertEqual(set(self.statuses(second).values()), {'unchanged'})
        self.assertEqual(self.snapshot(), before, 'a second run touched a file')
        steps = {s['name']: s['status'] for s in second['steps']}
        self.assertEqual(steps['group'], 'exists')
        text = self.banger('system', 'install', '--root', self.root).stdout
        self.assertEqual(len(re.findall(r'(?m)^unchanged ', text)), len(FILES))

    def test_modified_file_updated(self):
        self.install_json()
        unit = self.path('/etc/systemd/system/bangerd-root.service')
        rules = self.path('/etc/polkit-1/rules.d/50-org.banger.rules')
        with open(unit, 'a') as f:
            f.write('# local edit\n')
        os.chmod(rules, 0o600)  # same bytes, wrong mode
        old_inode = os.stat(unit).st_ino
        report = self.install_json()
        statuses = self.statuses(report)
        self.assertEqual(statuses.pop('/etc/systemd/system/bangerd-root.service'), 'updated')
        self.assertEqual(statuses.pop('/etc/polkit-1/rules.d/50-org.banger.rules'), 'updated')
        self.assertEqual(set(statuses.values()), {'unchanged'})
        with open(unit, 'rb') as f:
            self.assertEqual(f.read(), build_copy('/etc/systemd/system/bangerd-root.service'))
        # Replaced by rename (a new inode), never rewritten in place.
        self.assertNotEqual(os.stat(unit).st_ino, old_inode)
        self.assertEqual(stat.S_IMODE(os.stat(rules).st_mode), 0o644)
        # No temporary file left next to it.
        self.assertEqual(sorted(os.listdir(os.path.dirname(unit))), ['bangerd-root.service'])

    def test_dry_run_writes_nothing(self):
        self.make_group_files()
        before = self.snapshot()
        r = self.banger('system', 'install', '--root', self.root, '--dry-run')
        self.assertEqual(self.snapshot(), before)
        self.assertEqual(sorted(os.listdir(self.root)), ['etc'])
        self.assertEqual(len(re.findall(r'(?m)^would install ', r.stdout)), len(FILES))
        self.assertIn('group banger: would create', r.stdout)
        # After a real install, a dry run names the one edited file.
        self.banger('system', 'install', '--root', self.root)
        unit = self.path('/etc/systemd/user/bangerd.service')
        with open(unit, 'w') as f:
            f.write('edited\n')
        before = self.snapshot()
        report = self.install_json('-n')
        self.assertTrue(report['dry_run'])
        statuses = self.statuses(report)
        self.assertEqual(statuses.pop('/etc/systemd/user/bangerd.service'), 'updated')
        self.assertEqual(set(statuses.values()), {'unchanged'})
        self.assertEqual(self.snapshot(), before)

    def test_non_root_refused(self):
        users = ensure_test_users()
        user = users['banger-test-a']
        targets = {t: (os.lstat(t).st_mtime_ns if os.path.lexists(t) else None) for t in FILES}
        r = self.banger('system', 'install', status=1, user=user)
        self.assertIn('needs root', r.stderr)
        self.assertIn('run it with sudo', r.stderr)
        self.assertEqual(r.stdout, '')
        now = {t: (os.lstat(t).st_mtime_ns if os.path.lexists(t) else None) for t in FILES}
        self.assertEqual(now, targets)
        # The same user may stage into a directory of their own (packaging).
        os.chmod(self.tmp, 0o755)
        os.chown(self.root, *user)
        self.banger('system', 'install', '--root', self.root, user=user)
        for target in FILES:
            self.assertEqual(os.lstat(self.path(target)).st_uid, user[0])

    def test_unit_idle_timeout(self):
        """The installed helper exits when idle; D-Bus activation brings it
        back on the next call."""
        unit = build_copy('/etc/systemd/system/bangerd-root.service').decode()
        execs = re.findall(r'(?m)^ExecStart=(.*)$', unit)
        self.assertEqual(len(execs), 1, unit)
        m = re.search(r'(?:^|\s)--idle-timeout[ =](\d+)(?:\s|$)', execs[0])
        self.assertIsNotNone(m, execs[0])
        self.assertGreater(int(m.group(1)), 0)
        self.assertTrue(execs[0].split()[0].endswith('/bangerd-root'), execs[0])
        # The helper itself accepts the option as written in the unit.
        helper = os.path.join(build_root(), 'src', 'helper', 'bangerd-root')
        r = subprocess.run([helper, '--help'], capture_output=True, text=True, timeout=TIMEOUT)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn('--idle-timeout', r.stdout)

    def test_symlink_left_alone(self):
        """A unit masked by the administrator stays masked."""
        unit = self.path('/etc/systemd/system/bangerd-root.service')
        os.makedirs(os.path.dirname(unit))
        os.symlink('/dev/null', unit)
        report = self.install_json()
        self.assertEqual(self.statuses(report)['/etc/systemd/system/bangerd-root.service'],
                         'skipped')
        self.assertEqual(os.readlink(unit), '/dev/null')

    def test_missing_source_writes_nothing(self):
        partial = os.path.join(self.tmp, 'partial')
        shutil.copytree(SYSTEM_DATA, partial)
        os.unlink(os.path.join(partial, 'org.banger.policy'))
        env = dict(self.env, BANGER_SYSTEM_DATA_DIR=partial)
        r = self.banger('system', 'install', '--root', self.root, status=1, env=env)
        self.assertIn('org.banger.policy', r.stderr)
        self.assertIn('reinstall banger', r.stderr)
        self.assertEqual(os.listdir(self.root), [])

    def test_help_and_completion(self):
        out = self.banger('system', 'install', '--help').stdout
        for flag in ('--root', '--dry-run', '--json'):
            self.assertIn(flag, out)
        self.assertIn('install', self.banger('system', '--help').stdout)
        script = self.banger('completion', 'bash').stdout
        self.assertRegex(script, r"'banger system'\) echo '[^']*\binstall\b")
        self.assertRegex(script, r"'banger system install'\) echo '[^']*--root[^']*--dry-run")


# Files of the machine's /etc the namespace's copy needs: the dynamic
# linker's cache, the user and group databases, groupadd's defaults.
ETC_KEEP = ('ld.so.cache', 'ld.so.conf', 'passwd', 'group', 'shadow', 'gshadow',
            'login.defs', 'nsswitch.conf')
MOUNT_OVER = ('/usr/share/dbus-1/system-services', '/usr/share/dbus-1/services',
              '/usr/share/polkit-1/actions')


def sysconfdir():
    """BANGER_SYSCONFDIR of this build (config.h)."""
    with open(os.path.join(build_root(), 'config.h')) as f:
        return re.search(r'#define BANGER_SYSCONFDIR "([^"]+)"', f.read()).group(1)


def request_helper_name(address):
    """RequestName("org.banger.Helper") as root: the helper's bus policy is
    what allows it, so this tells whether dbus-daemon has read it."""
    r = subprocess.run(['gdbus', 'call', '--address', address, '--dest', 'org.freedesktop.DBus',
                        '--object-path', '/org/freedesktop/DBus',
                        '--method', 'org.freedesktop.DBus.RequestName', 'org.banger.Helper', '4'],
                       capture_output=True, text=True, timeout=TIMEOUT)
    return r.returncode == 0


def in_namespace(tmp):
    """Runs inside `unshare -m`: a private copy of /etc and empty tmpfs over
    the /usr/share targets, a private system bus, then the real command
    without --root. Prints a JSON report for the test to check."""
    subprocess.run(['mount', '--make-rprivate', '/'], check=True)
    etc = os.path.join(tmp, 'etc')
    os.mkdir(etc)
    for name in ETC_KEEP:
        if os.path.exists('/etc/' + name):
            shutil.copy2('/etc/' + name, etc)
    os.makedirs(os.path.join(etc, 'dbus-1', 'system.d'))
    subprocess.run(['mount', '--bind', etc, '/etc'], check=True)
    for d in MOUNT_OVER:
        subprocess.run(['mount', '-t', 'tmpfs', 'tmpfs', d], check=True)
    # install creates banger's configuration directory: a tmpfs over its
    # nearest existing parent keeps the machine's untouched.
    parent = os.path.dirname(sysconfdir())
    while not os.path.isdir(parent):
        parent = os.path.dirname(parent)
    subprocess.run(['mount', '-t', 'tmpfs', 'tmpfs', parent], check=True)
    # Hide a running systemd: Reload must not reach the machine's manager.
    if os.path.isdir('/run/systemd'):
        subprocess.run(['mount', '-t', 'tmpfs', 'tmpfs', '/run/systemd'], check=True)

    sock = os.path.join(tmp, 'system_bus')
    conf = os.path.join(tmp, 'system.conf')
    includedir = os.path.join(tmp, 'bus.d')
    os.mkdir(includedir)
    with open(conf, 'w') as f:
        f.write(make_bus_config(sock, includedir))
    bus = subprocess.Popen(['dbus-daemon', '--config-file', conf, '--nofork', '--nopidfile'],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: os.path.exists(sock), 5, 'the private system bus')
        address = 'unix:path=' + sock
        env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=address, LC_ALL='C.UTF-8',
                   BANGER_SYSTEM_DATA_DIR=SYSTEM_DATA)
        # Run through sudo, install would act for the sudo user too.
        env.pop('SUDO_USER', None)
        before = request_helper_name(address)
        r = subprocess.run([BANGER, 'system', 'install', '--json'], env=env, capture_output=True,
                           text=True, timeout=TIMEOUT)
        after = request_helper_name(address)
        with open('/etc/group') as f:
            group = f.read()
        contents = {}
        for target in FILES:
            with open(target, 'rb') as f:
                contents[target] = (f.read() == build_copy(target),
                                    stat.S_IMODE(os.stat(target).st_mode))
        with open(DROPIN) as f:
            dropin_before = f.read()
        config_dir = os.path.isdir(sysconfdir())
        again = subprocess.run([BANGER, 'system', 'install'], env=env, capture_output=True,
                               text=True, timeout=TIMEOUT)
        # For a user: added to the group, their banger directories opened to
        # the helper; linger is logind's, skipped without systemd.
        for_user = subprocess.run([BANGER, 'system', 'install', '--user', 'banger-test-a'],
                                  env=env, capture_output=True, text=True, timeout=TIMEOUT)
        with open('/etc/group') as f:
            group_after = f.read()
        with open(DROPIN) as f:
            dropin_after = f.read()
        no_user = subprocess.run([BANGER, 'system', 'install', '--user', 'no-such-user-x'],
                                 env=env, capture_output=True, text=True, timeout=TIMEOUT)
    finally:
        bus.send_signal(signal.SIGTERM)
        bus.wait(timeout=5)
    print(json.dumps({'status': r.returncode, 'stdout': r.stdout, 'stderr': r.stderr,
                      'name_before': before, 'name_after': after,
                      'group': re.search(r'(?m)^banger:', group) is not None,
                      'files': {t: list(v) for t, v in contents.items()},
                      'again': again.stdout, 'again_status': again.returncode,
                      'dropin_before': dropin_before, 'dropin_after': dropin_after,
                      'config_dir': config_dir,
                      'for_user': for_user.stdout, 'for_user_status': for_user.returncode,
                      'for_user_stderr': for_user.stderr,
                      'member': re.search(r'(?m)^banger:.*\bbanger-test-a\b', group_after)
                      is not None,
                      'no_user': no_user.stderr, 'no_user_status': no_user.returncode}))


class SystemInstallLiveTest(unittest.TestCase):
    """Without --root, as root, in a private mount namespace: the machine's
    /etc and /usr/share are never touched."""

    def test_live_group_and_reloads(self):
        ensure_test_users()
        tmp = tempfile.mkdtemp(prefix='banger-sysinst-live-')
        self.addCleanup(shutil.rmtree, tmp, ignore_errors=True)
        r = subprocess.run(['unshare', '-m', sys.executable, os.path.abspath(__file__),
                            '--in-namespace', tmp], capture_output=True, text=True,
                           timeout=2 * TIMEOUT)
        self.assertEqual(r.returncode, 0, r.stderr)
        out = json.loads(r.stdout)
        self.assertEqual(out['status'], 0, out['stderr'])
        report = json.loads(out['stdout'])
        self.assertIsNone(report['root'])
        self.assertEqual({f['status'] for f in report['files']}, {'installed'})
        self.assertEqual({f['target'] for f in report['files']}, set(FILES) | {DROPIN})
        self.assertEqual(out['files'], {t: [True, 0o644] for t in FILES})
        steps = {s['name']: (s['status'], s['message']) for s in report['steps']}
        self.assertEqual(steps['group'][0], 'created')
        # The helper's unit opens it with ReadWritePaths=-…: it must exist.
        self.assertEqual(steps['config-dir'], ('created', sysconfdir()))
        self.assertTrue(out['config_dir'])
        self.assertTrue(out['group'])
        self.assertEqual(steps['systemd'], ('skipped', 'systemd is not running'))
        self.assertEqual(steps['dbus-daemon'][0], 'reloaded')
        # The bus policy it installed is in force: root may now own the name.
        self.assertFalse(out['name_before'])
        self.assertTrue(out['name_after'])
        self.assertEqual(out['again_status'], 0)
        self.assertIn('group banger: exists', out['again'])
        self.assertIn('systemd: not needed', out['again'])
        self.assertIn('dbus-daemon: not needed', out['again'])
        self.assertEqual(len(re.findall(r'(?m)^unchanged ', out['again'])), len(FILES) + 1)
        # No member yet: the drop-in opens nothing.
        self.assertNotIn('ReadWritePaths', out['dropin_before'])
        self.assertEqual(out['for_user_status'], 0, out['for_user'] + out['for_user_stderr'])
        self.assertTrue(out['member'])
        self.assertIn('member of group banger: added', out['for_user'])
        self.assertIn('linger (VMs keep running after logout): skipped', out['for_user'])
        home = pwd.getpwnam('banger-test-a').pw_dir
        self.assertIn(f'ReadWritePaths=-{home}/.local/share/banger -{home}/.cache/banger',
                      out['dropin_after'])
        self.assertIn('banger-test-a can run', out['for_user'])
        self.assertEqual(out['no_user_status'], 1)
        self.assertIn('there is no user “no-such-user-x”', out['no_user'])


if __name__ == '__main__':
    if len(sys.argv) == 3 and sys.argv[1] == '--in-namespace':
        in_namespace(sys.argv[2])
        sys.exit(0)
    unittest.main()
