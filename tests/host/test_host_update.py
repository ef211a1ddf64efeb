#!/usr/bin/python3
"""`banger update` on a real systemd host (issue 8, item 5): the container of
tests/host/hostlib.py with the build installed and `sudo banger system
install` done for alice, bangerd as alice's user unit and bangerd-root as the
D-Bus-activated system unit, a VM running. A release signed with the
TEST-ONLY key is served over loopback HTTP inside the container; the
installed bangerd is the build's bangerd-testkey (the same daemon with that
key, reading the manifest URL from $BANGER_TEST_RELEASE_MANIFEST_URL, set by
a drop-in of alice's bangerd.service), because no installed build carries the
test key.

alice (in group sudo: Debian's polkit admin rule makes her an administrator)
runs `banger update` on a terminal and types her password at the prompt of
the CLI's own polkit text agent. Then a release whose new bangerd-root fails
its self-check: everything is rolled back byte for byte. The VM keeps its
VMM and its boot id throughout.

One meson test per case (tests/host/meson.build); run as root."""

import hashlib
import io
import os
import re
import shutil
import subprocess
import tarfile
import unittest

import hostlib
from hostlib import HostTestCase, wait_until

HERE = os.path.dirname(os.path.abspath(__file__))
KEY = os.path.join(HERE, '..', 'update', 'TEST-ONLY-release-key.pem')
ALICE = 'alice'
VM = 'dev'
PORT = 8089
WWW = '/srv/banger-release'


def build_config():
    """The paths and version compiled into this build (config.h)."""
    out = {}
    with open(os.path.join(hostlib.build_root(), 'config.h')) as f:
        for line in f:
            m = re.match(r'#define (\w+) "(.*)"$', line.strip())
            if m:
                out[m.group(1)] = m.group(2)
    return out


CONFIG = build_config()
BINDIR = CONFIG['BANGER_BINDIR']
LIBEXECDIR = CONFIG['BANGER_LIBEXECDIR']
INSTALL_TOML = CONFIG['BANGER_SYSCONFDIR'] + '/install.toml'
CURRENT = CONFIG['PACKAGE_VERSION']
FILES = {'bangerd': BINDIR, 'banger': BINDIR, 'bangerd-root': LIBEXECDIR,
         'banger-agent': LIBEXECDIR + '/banger'}
# Same length as the build's version, so it can be patched into the copy of
# bangerd-root (its self-check must report the release's version).
_major = CURRENT.split('.')[0]
NEW = '9' * len(_major) + CURRENT[len(_major):]
NEW2 = NEW.rsplit('.', 1)[0] + '.' + str(int(NEW.rsplit('.', 1)[1]) + 1)


def with_version(data, new):
    out, n = re.subn(rb'(?<![0-9.])' + re.escape(CURRENT.encode()) + rb'(?=\0)', new.encode(),
                     data)
    assert n > 0, 'no version string to patch'
    return out


class HostUpdateTest(HostTestCase):

    def banger(self, *args, status=0, timeout=300):
        r = self.host.user(ALICE, ['banger'] + list(args), timeout=timeout)
        if status is not None:
            self.assertEqual(r.returncode, status, repr(r))
        return r

    def setUp(self):
        super().setUp()
        h = self.host
        # The daemon with the TEST-ONLY key, as the installed bangerd.
        dst = h.path(BINDIR + '/bangerd')
        shutil.copyfile(os.path.join(hostlib.build_root(), 'src', 'service', 'bangerd-testkey'),
                        dst)
        os.chmod(dst, 0o755)
        # The helper with the same key: it verifies the staged release
        # itself before it installs it (docs/update.md).
        dst = h.path(LIBEXECDIR + '/bangerd-root')
        shutil.copyfile(os.path.join(hostlib.build_root(), 'src', 'helper',
                                     'bangerd-root-testkey'), dst)
        os.chmod(dst, 0o755)
        r = h.sudo(ALICE, ['banger', 'system', 'install'])
        self.assertEqual(r.returncode, 0, repr(r))
        h.logout(ALICE)
        # InstallRelease writes install.toml(.pending) in <sysconfdir>/banger,
        # which bangerd-root.service must open (ProtectSystem=full makes
        # /usr/local/etc read-only): system install creates the directory and
        # the unit names it in ReadWritePaths=.
        etc = CONFIG['BANGER_SYSCONFDIR']
        self.assertTrue(h.exists(etc), etc)
        rw = h.unit_property('bangerd-root.service', 'ReadWritePaths').split()
        # systemctl shows an optional ("-") entry with its dash.
        self.assertTrue(etc in rw or '-' + etc in rw, rw)
        # alice's bangerd finds the test's manifest (a drop-in, as an
        # administrator of a mirror would write one).
        uid = hostlib.USERS[ALICE]
        d = '/home/alice'
        for sub in ('.config', 'systemd', 'user', 'bangerd.service.d'):
            d += '/' + sub
            os.makedirs(h.path(d), exist_ok=True)
            os.chown(h.path(d), uid, uid)
        with open(h.path(d + '/50-test-release.conf'), 'w') as f:
            f.write('[Service]\nEnvironment=BANGER_TEST_RELEASE_MANIFEST_URL='
                    f'http://127.0.0.1:{PORT}/manifest.json\n')
        os.chown(h.path(d + '/50-test-release.conf'), uid, uid)
        h.user(ALICE, ['systemctl', '--user', 'daemon-reload'], check=True)
        # `system install` may have started it already (linger keeps it).
        h.user(ALICE, ['systemctl', '--user', 'try-restart', 'bangerd.service'], check=True)
        # The release server, on the container's loopback.
        h.run(['install', '-d', '-m', '0755', WWW], check=True)
        h.run(['systemd-run', '--unit=banger-test-release', '--collect', '--',
               'python3', '-m', 'http.server', '--bind', '127.0.0.1', str(PORT),
               '--directory', WWW], check=True)
        probe = ('import socket; socket.create_connection(("127.0.0.1", %d), 1).close()' % PORT)
        wait_until(lambda: h.run(['python3', '-c', probe]).returncode == 0, 30,
                   'the release server')
        # A long-lived VM.
        self.banger('vm', 'create', VM)
        self.banger('vm', 'start', VM, timeout=300)
        info = self.vm_show()
        self.assertEqual(info.get('state'), 'running', info)
        self.vmm_pid = info['pid']
        self.boot_id = self.guest_boot_id()

    # ---- helpers ----------------------------------------------------------

    def vm_show(self):
        return {k.lower(): v for k, v in self.banger('vm', 'show', VM, '--json').json().items()}

    def guest_boot_id(self):
        r = self.banger('vm', 'exec', VM, '--', 'cat', '/proc/sys/kernel/random/boot_id',
                        timeout=120)
        bid = r.stdout.strip()
        self.assertRegex(bid, r'^[0-9a-f-]{36}$', repr(r))
        return bid

    def assert_vm_unchanged(self, when):
        info = self.vm_show()
        self.assertEqual(info.get('state'), 'running', f'{when}: {info}')
        self.assertEqual(info.get('pid'), self.vmm_pid, f'{when}: the VMM changed: {info}')
        comm = self.host.run(['cat', f'/proc/{self.vmm_pid}/comm']).stdout.strip()
        self.assertTrue(comm.startswith('qemu'), f'{when}: VMM {self.vmm_pid} is gone ({comm!r})')
        self.assertEqual(self.guest_boot_id(), self.boot_id, f'{when}: the guest rebooted')

    def installed(self):
        return {name: self.host.read(f'{d}/{name}') for name, d in FILES.items()}

    def main_pid(self, unit, user=None):
        return int(self.host.unit_property(unit, 'MainPID', user=user) or 0)

    def wait_helper_gone(self, pid):
        """The helper that made a swap leaves after replying to finish or
        rollback (draining its calls first): until it has, a call could still
        reach it instead of the installed one."""
        wait_until(lambda: not self.host.exists(f'/proc/{pid}'), 60,
                   f'bangerd-root {pid} to exit after the update')

    def helper_version(self):
        r = self.host.user(ALICE, ['busctl', 'get-property', 'org.banger.Helper',
                                   '/org/banger/Helper', 'org.banger.Helper', 'Version'])
        self.assertEqual(r.returncode, 0, repr(r))
        return r.stdout.strip()

    def publish(self, version, helper=None):
        """A release made of the installed files (bangerd-root's version
        patched to @version) with a marker appended, or @helper as its
        bangerd-root; signed with the TEST-ONLY key."""
        name = f'banger-{version}-x86_64.tar.gz'
        current = self.installed()
        buf = io.BytesIO()
        members = {}
        with tarfile.open(fileobj=buf, mode='w:gz') as tar:
            def add(member, data, mode=0o755):
                members[member] = data
                info = tarfile.TarInfo(f'banger-{version}/{member}')
                info.size = len(data)
                info.mode = mode
                tar.addfile(info, io.BytesIO(data))
            for f, data in current.items():
                data = data + b'\0HOST-RELEASE-MARKER ' + version.encode()
                if f == 'bangerd-root':
                    data = helper if helper is not None else with_version(data, version)
                add(f, data)
            add('BUILDINFO', (f'[release]\nversion={version}\ncommit=0123456789ab\n'
                              'built_at=2030-01-02T03:04:05Z\n').encode(), 0o644)
        tarball = buf.getvalue()
        www = self.host.path(WWW)
        with open(os.path.join(www, name), 'wb') as f:
            f.write(tarball)
        sums = f'{hashlib.sha256(tarball).hexdigest()}  {name}\n'
        # One signed line per file too: the helper checks the staged files.
        for member, data in members.items():
            sums += f'{hashlib.sha256(data).hexdigest()}  banger-{version}/{member}\n'
        with open(os.path.join(www, 'SHA256SUMS'), 'w') as f:
            f.write(sums)
        subprocess.run(['openssl', 'dgst', '-sha256', '-sign', KEY, '-out',
                        os.path.join(www, 'SHA256SUMS.sig'), os.path.join(www, 'SHA256SUMS')],
                       check=True)
        with open(os.path.join(www, 'manifest.json'), 'w') as f:
            f.write('{"schema": 1, "latest": "%s", "versions": {"%s": {"tarball": "%s", '
                    '"sha256sums": "SHA256SUMS", "signature": "SHA256SUMS.sig", '
                    '"notes": "host test release"}}}' % (version, version, name))

    def echo_off(self):
        """The terminal of alice's `banger update` (the pty runuser --pty
        made inside the container) has echo off: polkit's agent is reading
        the password. It turns echo off with TCSAFLUSH after printing the
        prompt, so what is typed before would be lost."""
        r = self.host.run(['pgrep', '-u', ALICE, '-x', 'banger'])
        for pid in r.stdout.split():
            tty = self.host.run(['readlink', f'/proc/{pid}/fd/0']).stdout.strip()
            if tty.startswith('/dev/pts/'):
                st = self.host.run(['stty', '-F', tty, '-a'])
                if st.returncode == 0 and re.search(r'(^|\s)-echo(\s|$)', st.stdout):
                    return True
        return False

    def update_typing_password(self):
        """`banger update` as alice on a terminal; the password typed at the
        CLI's polkit prompt. Returns (exit status, output)."""
        with self.host.user_pty(ALICE, ['banger', 'update', '--progress', 'none']) as p:
            p.expect(r'AUTHENTICATING FOR org\.banger\.system\.update', timeout=300)
            p.expect(r'Password:', timeout=60)
            wait_until(self.echo_off, 60, 'the polkit agent to read the password')
            p.send(hostlib.PASSWORD + '\n')
            status = p.wait(timeout=300)
            return status, p.output

    # ---- the case -----------------------------------------------------------

    def test_update_then_rollback(self):
        h = self.host
        before = self.installed()
        bangerd_pid = self.main_pid('bangerd.service', user=ALICE)
        self.assertGreater(bangerd_pid, 0)
        self.assertEqual(self.helper_version(), f's "{CURRENT}"')

        helper_pid = self.main_pid('bangerd-root.service')
        self.assertGreater(helper_pid, 0)

        # 1. A good release: the password is typed at the CLI's prompt.
        self.publish(NEW)
        status, out = self.update_typing_password()
        self.assertEqual(status, 0, out)
        self.assertIn(f'updated to {NEW}', out)
        self.assertNotIn(hostlib.PASSWORD, out)
        self.assertEqual(out.count('Password:'), 1, out)
        after = self.installed()
        for name in FILES:
            self.assertTrue(after[name].endswith(b'HOST-RELEASE-MARKER ' + NEW.encode()), name)
            st = h.stat(f'{FILES[name]}/{name}')
            self.assertEqual((st.st_uid, st.st_mode & 0o7777), (0, 0o755), name)
            self.assertFalse(h.exists(f'{FILES[name]}/{name}.old'), name)
        toml = h.read(INSTALL_TOML).decode()
        self.assertIn(f'version = "{NEW}"', toml)
        self.assertIn('installed_by_uid = 1000', toml)
        # The new helper was judged by the old one, under the unit.
        journal = h.run(['journalctl', '-b', '--no-pager', '-o', 'cat', '-u',
                         'bangerd-root.service'], check=True).stdout
        self.assertIn(f'passed its self-check: version {NEW}', journal)
        # Units restarted: alice's bangerd is a new process, and the helper
        # that left after the finish is replaced, on the next call, by the
        # new one (D-Bus activation of bangerd-root.service).
        new_bangerd = self.main_pid('bangerd.service', user=ALICE)
        self.assertNotIn(new_bangerd, (0, bangerd_pid))
        self.wait_helper_gone(helper_pid)
        self.assertEqual(self.helper_version(), f's "{NEW}"')
        helper_pid = self.main_pid('bangerd-root.service')
        self.assertEqual(h.unit_property('bangerd-root.service', 'ActiveState'), 'active')
        self.assert_vm_unchanged('after the update')

        # 2. A release whose new bangerd-root cannot start: rolled back.
        self.publish(NEW2, helper=b'#!/bin/sh\necho "TEST: this bangerd-root cannot start" >&2\n'
                                  b'exit 1\n')
        status, out = self.update_typing_password()
        self.assertNotEqual(status, 0, out)
        self.assertIn('rolled back', out)
        self.assertIn('TEST: this bangerd-root cannot start', out)
        self.assertEqual(self.installed(), after, 'byte-identical after the rollback')
        for name in FILES:
            self.assertFalse(h.exists(f'{FILES[name]}/{name}.old'), name)
        self.assertFalse(h.exists(INSTALL_TOML + '.pending'))
        self.assertIn(f'version = "{NEW}"', h.read(INSTALL_TOML).decode())
        self.wait_helper_gone(helper_pid)
        self.assertEqual(self.helper_version(), f's "{NEW}"')
        self.assertEqual(h.user(ALICE, ['systemctl', '--user', 'is-active',
                                        'bangerd.service']).stdout.strip(), 'active')
        self.assert_vm_unchanged('after the rollback')
        self.assertNotEqual(before, after)


if __name__ == '__main__':
    unittest.main()
