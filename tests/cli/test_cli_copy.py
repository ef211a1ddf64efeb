#!/usr/bin/python3
"""CopyIn / CopyOut, `vm cp` and the repo workflow (`vm push`, `vm diff`,
`vm pull`, `vm run --repo`) against real guests.

Each case is its own NetWorld (tests/cli/test_cli_vm.py): private buses,
the real helper and polkitd, bangerd and QEMU (TCG) in a network namespace
the test creates. The D-Bus cases call org.banger.VM directly with Gio,
passing real files as the descriptors; the CLI cases run `banger`.

One meson test per test case (tests/cli/meson.build)."""

import hashlib
import io
import os
import pty
import shutil
import subprocess
import sys
import tarfile
import unittest

import gi

gi.require_version('Gio', '2.0')
from gi.repository import Gio, GLib  # noqa: E402

from test_cli_vm import BANGER as BANGER_CLI, NetWorld, TIMEOUT, BOOT_TIMEOUT  # noqa: E402
from test_cli_vm import read_until  # noqa: E402

BIG = 50 * 1024 * 1024
COPY_TIMEOUT = int(os.environ.get("COPY_TIMEOUT", "120"))


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        while True:
            chunk = f.read(1 << 20)
            if not chunk:
                return h.hexdigest()
            h.update(chunk)


def write_big(path, size):
    """Not all zeros, so a checksum proves the bytes, not the length."""
    block = hashlib.sha256(b'banger').digest() * (1 << 15)  # 1 MiB
    with open(path, 'wb') as f:
        for i in range(size // len(block)):
            f.write(i.to_bytes(4, 'little') + block[4:])


def git(cwd, *args, check=True, env=None):
    e = dict(os.environ)
    e.update({'GIT_AUTHOR_NAME': 't', 'GIT_AUTHOR_EMAIL': 't@t', 'GIT_COMMITTER_NAME': 't',
              'GIT_COMMITTER_EMAIL': 't@t', 'GIT_CONFIG_NOSYSTEM': '1', 'HOME': cwd})
    if env:
        e.update(env)
    r = subprocess.run(['git'] + list(args), cwd=cwd, capture_output=True, env=e, timeout=60)
    if check and r.returncode != 0:
        raise AssertionError('git %s: %s' % (' '.join(args), r.stderr.decode()))
    return r.stdout.decode()


class _CopyWorld(NetWorld):

    def bus(self):
        if not hasattr(self, '_conn'):
            self._conn = Gio.DBusConnection.new_for_address_sync(
                self.env['DBUS_SESSION_BUS_ADDRESS'],
                Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT
                | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION, None, None)
            self.addCleanup(self._conn.close_sync, None)
        return self._conn

    def call_copy(self, vm, method, path, fd, options=None):
        """CopyIn(h, s, a{sv}) or CopyOut(s, h, a{sv}) with @fd; returns
        None or the D-Bus error name and message."""
        fds = Gio.UnixFDList.new()
        idx = fds.append(fd)
        if method == 'CopyIn':
            args = GLib.Variant('(hsa{sv})', (idx, path, options or {}))
        else:
            args = GLib.Variant('(sha{sv})', (path, idx, options or {}))
        try:
            self.bus().call_with_unix_fd_list_sync(
                'org.banger.Manager', '/org/banger/Manager/vms/' + vm, 'org.banger.VM', method,
                args, None, Gio.DBusCallFlags.NONE, COPY_TIMEOUT * 1000, fds, None)
        except GLib.Error as e:
            return Gio.dbus_error_get_remote_error(e), e.message
        return None

    def guest(self, vm, *argv, status=0):
        return self.banger('vm', 'exec', vm, '--', *argv, status=status).stdout

    def make_tree(self, root):
        os.makedirs(os.path.join(root, 'sub', 'deeper'))
        os.makedirs(os.path.join(root, 'empty'))
        with open(os.path.join(root, 'script.sh'), 'w') as f:
            f.write('#!/bin/sh\necho hi\n')
        os.chmod(os.path.join(root, 'script.sh'), 0o750)
        with open(os.path.join(root, 'sub', 'secret'), 'w') as f:
            f.write('s3cret\n')
        os.chmod(os.path.join(root, 'sub', 'secret'), 0o600)
        with open(os.path.join(root, 'sub', 'deeper', 'plain.txt'), 'w') as f:
            f.write('plain\n')
        os.chmod(os.path.join(root, 'sub', 'deeper'), 0o711)
        os.symlink('sub/deeper/plain.txt', os.path.join(root, 'link'))
        write_big(os.path.join(root, 'big.bin'), BIG)

    def tree_listing(self, root):
        """path → (type, mode, symlink target or sha256)"""
        out = {}
        for dirpath, dirnames, filenames in os.walk(root):
            for name in dirnames + filenames:
                p = os.path.join(dirpath, name)
                rel = os.path.relpath(p, root)
                st = os.lstat(p)
                if os.path.islink(p):
                    out[rel] = ('l', os.readlink(p))
                elif os.path.isdir(p):
                    out[rel] = ('d', oct(st.st_mode & 0o7777))
                else:
                    out[rel] = ('f', oct(st.st_mode & 0o7777), sha256_file(p))
        return out


class CopyDbusTest(_CopyWorld):

    def test_copy_roundtrip(self):
        """A tree with modes, a symlink, an empty directory and a 50 MB
        file goes in with CopyIn and comes back with CopyOut unchanged."""
        self.boot('cp1')
        src = os.path.join(self.tmpdir, 'src')
        self.make_tree(src)
        tar_in = os.path.join(self.tmpdir, 'in.tar')
        with tarfile.open(tar_in, 'w', format=tarfile.PAX_FORMAT) as t:
            t.add(src, arcname='tree')
        with open(tar_in, 'rb') as f:
            self.assertIsNone(self.call_copy('cp1', 'CopyIn', '/srv/data', f.fileno()))
        # In the guest: modes, owner root (the default), the link, sizes.
        out = self.guest('cp1', 'stat', '-c', '%n %a %u:%g %F', '/srv/data/tree/script.sh',
                         '/srv/data/tree/sub/secret', '/srv/data/tree/sub/deeper',
                         '/srv/data/tree/empty')
        self.assertEqual(out.splitlines(), [
            '/srv/data/tree/script.sh 750 0:0 regular file',
            '/srv/data/tree/sub/secret 600 0:0 regular file',
            '/srv/data/tree/sub/deeper 711 0:0 directory',
            '/srv/data/tree/empty 755 0:0 directory'])
        self.assertEqual(self.guest('cp1', 'readlink', '/srv/data/tree/link'),
                         'sub/deeper/plain.txt\n')
        # no staging directory is left behind
        self.assertEqual(self.guest('cp1', 'ls', '-A', '/srv/data'), 'tree\n')
        # back out, unpacked on the host: the same tree
        tar_out = os.path.join(self.tmpdir, 'out.tar')
        with open(tar_out, 'wb') as f:
            self.assertIsNone(self.call_copy('cp1', 'CopyOut', '/srv/data/tree', f.fileno()))
        dest = os.path.join(self.tmpdir, 'dest')
        os.mkdir(dest)
        with tarfile.open(tar_out) as t:
            names = t.getnames()
            t.extractall(dest, numeric_owner=True)
        self.assertIn('tree', names)
        self.assertTrue(all(n == 'tree' or n.startswith('tree/') for n in names), names)
        self.assertEqual(self.tree_listing(os.path.join(dest, 'tree')), self.tree_listing(src))
        # owner option; a single file out has its base name as the entry
        with open(os.path.join(self.tmpdir, 'one.tar'), 'wb+') as f:
            with tarfile.open(fileobj=f, mode='w') as t:
                data = b'owned\n'
                info = tarfile.TarInfo('owned.txt')
                info.size = len(data)
                t.addfile(info, io.BytesIO(data))
            f.seek(0)
            self.assertIsNone(self.call_copy('cp1', 'CopyIn', '/srv', f.fileno(),
                                             {'owner': GLib.Variant('s', '1234:99')}))
            f.seek(0)
            err = self.call_copy('cp1', 'CopyIn', '/srv', f.fileno(),
                                 {'owner': GLib.Variant('s', 'root')})
            self.assertEqual(err[0], 'org.banger.Error.InvalidArgument')
            self.assertIn('“root”', err[1])
        self.assertEqual(self.guest('cp1', 'stat', '-c', '%u:%g', '/srv/owned.txt'), '1234:99\n')
        with open(os.path.join(self.tmpdir, 'single.tar'), 'wb+') as f:
            self.assertIsNone(self.call_copy('cp1', 'CopyOut', '/srv/owned.txt', f.fileno()))
            f.seek(0)
            with tarfile.open(fileobj=f) as t:
                self.assertEqual(t.getnames(), ['owned.txt'])
        with open(os.path.join(self.tmpdir, 'none.tar'), 'wb') as f:
            err = self.call_copy('cp1', 'CopyOut', '/srv/nothing-here', f.fileno())
        self.assertEqual(err[0], 'org.banger.Error.NotFound', err)
        self.assertIn('nothing-here', err[1])

    def test_copy_refusals(self):
        """Entries that escape the target are refused, naming the entry, and
        nothing at all is written; a stopped VM answers BadState."""
        self.boot('cp2')
        self.guest('cp2', 'mkdir', '-p', '/target')
        cases = [
            ('../evil', 'InvalidArgument', '“../evil”'),
            ('/etc/evil', 'InvalidArgument', '“/etc/evil”'),
            ('ok/../../evil', 'InvalidArgument', '“ok/../../evil”'),
        ]
        for name, error, words in cases:
            path = os.path.join(self.tmpdir, 'bad.tar')
            with tarfile.open(path, 'w', format=tarfile.PAX_FORMAT) as t:
                for n in ('first.txt', name):
                    info = tarfile.TarInfo(n)
                    info.size = 3
                    t.addfile(info, io.BytesIO(b'bad'))
            with open(path, 'rb') as f:
                err = self.call_copy('cp2', 'CopyIn', '/target', f.fileno())
            self.assertEqual(err[0], 'org.banger.Error.' + error, (name, err))
            self.assertIn(words, err[1])
        # through a symlink of the same archive
        path = os.path.join(self.tmpdir, 'link.tar')
        with tarfile.open(path, 'w', format=tarfile.PAX_FORMAT) as t:
            info = tarfile.TarInfo('esc')
            info.type = tarfile.SYMTYPE
            info.linkname = '/etc'
            t.addfile(info)
            info = tarfile.TarInfo('esc/evil')
            info.size = 3
            t.addfile(info, io.BytesIO(b'bad'))
        with open(path, 'rb') as f:
            err = self.call_copy('cp2', 'CopyIn', '/target', f.fileno())
        self.assertEqual(err[0], 'org.banger.Error.InvalidArgument', err)
        self.assertIn('“esc/evil”', err[1])
        # a truncated archive (a copy cut off in the middle): nothing either
        good = os.path.join(self.tmpdir, 'good.tar')
        with tarfile.open(good, 'w', format=tarfile.PAX_FORMAT) as t:
            info = tarfile.TarInfo('half.bin')
            info.size = 1 << 20
            t.addfile(info, io.BytesIO(b'x' * (1 << 20)))
        with open(good, 'rb') as f:
            data = f.read()
        with open(path, 'wb') as f:
            f.write(data[:600 * 1024])
        with open(path, 'rb') as f:
            err = self.call_copy('cp2', 'CopyIn', '/target', f.fileno())
        self.assertIsNotNone(err)
        self.assertEqual(self.guest('cp2', 'ls', '-A', '/target'), '')
        self.assertEqual(self.guest('cp2', 'ls', '/etc/evil', '/evil', status=1), '')
        # relative guest paths and unknown options
        with open(good, 'rb') as f:
            err = self.call_copy('cp2', 'CopyIn', 'target', f.fileno())
            self.assertEqual(err[0], 'org.banger.Error.InvalidArgument')
            f.seek(0)
            err = self.call_copy('cp2', 'CopyIn', '/target', f.fileno(),
                                 {'bogus': GLib.Variant('b', True)})
            self.assertEqual(err[0], 'org.banger.Error.InvalidArgument')
        # stopped VM
        self.banger('vm', 'stop', 'cp2', timeout=TIMEOUT)
        with open(good, 'rb') as f:
            err = self.call_copy('cp2', 'CopyIn', '/target', f.fileno())
        self.assertEqual(err[0], 'org.banger.Error.BadState', err)
        with open(os.path.join(self.tmpdir, 'x.tar'), 'wb') as f:
            err = self.call_copy('cp2', 'CopyOut', '/target', f.fileno())
        self.assertEqual(err[0], 'org.banger.Error.BadState', err)


class CopyCliTest(_CopyWorld):

    def test_vm_cp(self):
        """`vm cp` both ways: a directory tree, a file, and tar on - ."""
        self.boot('cpc')
        src = os.path.join(self.tmpdir, 'proj')
        os.makedirs(os.path.join(src, 'd'))
        with open(os.path.join(src, 'd', 'x.txt'), 'w') as f:
            f.write('x\n')
        os.chmod(os.path.join(src, 'd', 'x.txt'), 0o640)
        self.banger('vm', 'cp', src, 'cpc:/work')
        self.assertEqual(self.guest('cpc', 'stat', '-c', '%a', '/work/proj/d/x.txt'), '640\n')
        out = os.path.join(self.tmpdir, 'back')
        self.banger('vm', 'cp', 'cpc:/work/proj', out)
        with open(os.path.join(out, 'proj', 'd', 'x.txt')) as f:
            self.assertEqual(f.read(), 'x\n')
        self.assertEqual(os.stat(os.path.join(out, 'proj', 'd', 'x.txt')).st_mode & 0o777, 0o640)
        # tar streams on stdin and stdout
        r = subprocess.run(['tar', '-C', src, '-cf', '-', 'd'],
                           capture_output=True, check=True)
        r = subprocess.run([BANGER_CLI, 'vm', 'cp', '-', 'cpc:/streamed'], env=self.env,
                           input=r.stdout, capture_output=True, timeout=TIMEOUT)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.guest('cpc', 'cat', '/streamed/d/x.txt'), 'x\n')
        r = subprocess.run([BANGER_CLI, 'vm', 'cp', 'cpc:/streamed/d/x.txt', '-'], env=self.env,
                           capture_output=True, timeout=TIMEOUT)
        self.assertEqual(r.returncode, 0, r.stderr)
        with tarfile.open(fileobj=io.BytesIO(r.stdout)) as t:
            self.assertEqual(t.getnames(), ['x.txt'])
        # usage errors
        r = self.banger('vm', 'cp', src, out, status=2)
        self.assertIn('VM:PATH', r.stderr)
        r = self.banger('vm', 'cp', 'cpc:/nothing', out, status=1)
        self.assert_clean_error(r, 'nothing')

    def make_repo(self):
        repo = os.path.join(self.tmpdir, 'myrepo')
        os.makedirs(repo)
        git(repo, 'init', '-q', '-b', 'main')
        with open(os.path.join(repo, 'tracked.txt'), 'w') as f:
            f.write('one\ntwo\nthree\n')
        with open(os.path.join(repo, 'gone.txt'), 'w') as f:
            f.write('delete me\n')
        with open(os.path.join(repo, 'blob.bin'), 'wb') as f:
            f.write(bytes(range(256)) * 4)
        with open(os.path.join(repo, '.gitignore'), 'w') as f:
            f.write('*.log\n')
        git(repo, 'add', '.')
        git(repo, 'commit', '-q', '-m', 'base')
        with open(os.path.join(repo, 'untracked.txt'), 'w') as f:
            f.write('untracked\n')
        with open(os.path.join(repo, 'ignored.log'), 'w') as f:
            f.write('ignored\n')
        return repo

    def test_repo_push_diff_pull(self):
        self.boot('rp')
        repo = self.make_repo()
        r = self.banger('vm', 'push', 'rp', repo)
        self.assertEqual(r.stdout, '/root/myrepo\n')
        shipped = self.guest('rp', 'ls', '-A', '/root/myrepo').split()
        self.assertEqual(sorted(shipped), ['.gitignore', 'blob.bin', 'gone.txt', 'tracked.txt',
                                           'untracked.txt'])
        # nothing changed yet: an empty diff
        self.assertEqual(self.banger('vm', 'diff', 'rp', repo).stdout, '')
        # modify, add (text and binary), delete in the guest
        self.guest('rp', 'sh', '-c', 'cd /root/myrepo && echo four >> tracked.txt && '
                   'echo new > added.txt && printf "\\000\\001\\002" > added.bin && '
                   'rm gone.txt && echo more >> untracked.txt')
        patch = self.banger('vm', 'diff', 'rp', repo).stdout
        files = sorted(l.split(' b/')[-1] for l in patch.splitlines()
                       if l.startswith('diff --git'))
        self.assertEqual(files, ['added.bin', 'added.txt', 'gone.txt', 'tracked.txt',
                                 'untracked.txt'])
        self.assertIn('GIT binary patch', patch)
        self.assertIn('deleted file mode', patch)
        # a conflicting host change: pull refuses and changes nothing
        with open(os.path.join(repo, 'tracked.txt'), 'w') as f:
            f.write('one\nTWO\nthree\nTHREE-AND-A-HALF\n')
        before = git(repo, 'status', '--porcelain')
        r = self.banger('vm', 'pull', 'rp', repo, status=1)
        self.assert_clean_error(r, 'do not apply', 'nothing was changed')
        self.assertEqual(git(repo, 'status', '--porcelain'), before)
        self.assertFalse(os.path.exists(os.path.join(repo, 'added.txt')))
        # without it, pull applies everything
        git(repo, 'checkout', '--', 'tracked.txt')
        self.banger('vm', 'pull', 'rp', repo)
        status = sorted(git(repo, 'status', '--porcelain').splitlines())
        self.assertEqual(status, [' D gone.txt', ' M tracked.txt', '?? added.bin', '?? added.txt',
                                  '?? untracked.txt'])
        with open(os.path.join(repo, 'tracked.txt')) as f:
            self.assertEqual(f.read(), 'one\ntwo\nthree\nfour\n')
        with open(os.path.join(repo, 'added.bin'), 'rb') as f:
            self.assertEqual(f.read(), b'\0\1\2')
        with open(os.path.join(repo, 'untracked.txt')) as f:
            self.assertEqual(f.read(), 'untracked\nmore\n')

    def test_run_repo(self):
        repo = self.make_repo()
        r = self.banger('vm', 'run', '--name', 'rr', '--repo=' + repo, '--', 'sh', '-c',
                        'pwd; echo hi > new.txt; exit 3', status=3, timeout=BOOT_TIMEOUT)
        self.assertEqual(r.stdout, '/root/myrepo\n')
        patch_path = os.path.join(repo, '.git', 'banger', 'rr.patch')
        self.assertIn(patch_path, r.stderr)
        self.assertIn('new.txt', r.stderr)  # the stat
        with open(patch_path) as f:
            patch = f.read()
        self.assertIn('diff --git a/new.txt b/new.txt', patch)
        self.assertIn('+hi', patch)
        self.assert_nothing_left()

    def test_workspace_roundtrip(self):
        """`vm workspace push|diff|pull` (aliases of vm push, diff, pull):
        an edit made in the guest ends up in the host work tree."""
        self.boot('ws')
        repo = self.make_repo()
        r = self.banger('vm', 'workspace', 'push', 'ws', repo)
        self.assertEqual(r.stdout, '/root/myrepo\n')
        self.assertEqual(self.banger('vm', 'workspace', 'diff', 'ws', repo).stdout, '')
        self.guest('ws', 'sed', '-i', 's/two/TWO in the guest/', '/root/myrepo/tracked.txt')
        patch = self.banger('vm', 'workspace', 'diff', 'ws', repo).stdout
        self.assertIn('diff --git a/tracked.txt b/tracked.txt', patch)
        self.assertIn('+TWO in the guest', patch)
        self.banger('vm', 'workspace', 'pull', 'ws', repo)
        with open(os.path.join(repo, 'tracked.txt')) as f:
            self.assertEqual(f.read(), 'one\nTWO in the guest\nthree\n')
        self.assertEqual(git(repo, 'status', '--porcelain').splitlines(),
                         [' M tracked.txt', '?? untracked.txt'])
        # help says what the rows stand for
        r = self.banger('vm', 'workspace', '--help')
        for verb in ('push', 'diff', 'pull'):
            self.assertIn('Alias of “banger vm %s”' % verb, r.stdout)

    def test_run_path_exit_status(self):
        """`vm run ./repo -- CMD`: the tree is shipped, CMD runs in it (like
        `make -q`: its exit status says whether work is left), its status
        is banger's, and the VM is gone afterwards."""
        repo = self.make_repo()
        check = os.path.join(repo, 'check.sh')
        with open(check, 'w') as f:
            f.write('#!/bin/sh\npwd\ntest -f built && exit 0\necho "not built" >&2\nexit 4\n')
        os.chmod(check, 0o755)
        git(repo, 'add', 'check.sh')
        git(repo, 'commit', '-q', '-m', 'check')
        # a relative PATH, as typed in the repository's parent directory
        r = self.banger('vm', 'run', '--name', 'rp4', './myrepo', '--', './check.sh', status=4,
                        timeout=BOOT_TIMEOUT, cwd=self.tmpdir)
        self.assertEqual(r.stdout, '/root/myrepo\n')
        self.assertIn('not built', r.stderr)
        self.assert_nothing_left()
        # the same with the file the check looks for: status 0
        with open(os.path.join(repo, 'built'), 'w') as f:
            f.write('yes\n')
        r = self.banger('vm', 'run', './myrepo', '--', './check.sh', status=0,
                        timeout=BOOT_TIMEOUT, cwd=self.tmpdir)
        self.assertEqual(r.stdout, '/root/myrepo\n')
        self.assert_nothing_left()

    def test_run_path_login(self):
        """`vm run ./repo` without a command: the login (the agent's pty:
        the minimal image has no sshd) starts in the shipped tree, its exit
        status is banger's, and the changes made there are saved."""
        self.make_repo()
        pid, master = pty.fork()
        if pid == 0:
            os.chdir(self.tmpdir)
            os.execve(BANGER_CLI, [BANGER_CLI, 'vm', 'run', '--name', 'rl', './myrepo'],
                      self.env)
        try:
            # Typed ahead: the line waits in the terminal until bangerd reads
            # banger's stdin for the guest shell (no prompt to wait for).
            os.write(master, b'pwd; echo made > login.txt; echo mark-$((6*7)); exit 6\r')
            out = read_until(master, rb'saved in \S+rl\.patch', BOOT_TIMEOUT)
        finally:
            _, status = os.waitpid(pid, 0)
            os.close(master)
        self.assertEqual(os.waitstatus_to_exitcode(status), 6, out)
        self.assertIn(b'/root/myrepo\r\n', out)
        self.assertIn(b'mark-42', out)
        with open(os.path.join(self.tmpdir, 'myrepo', '.git', 'banger', 'rl.patch')) as f:
            self.assertIn('+made', f.read())
        self.assert_nothing_left()

    def test_run_path_not_git(self):
        """A PATH that is no git work tree (or no directory: `vm run true`,
        the habit from before PATH existed) is refused before any VM is
        made, naming the path."""
        plain = os.path.join(self.tmpdir, 'plain')
        os.makedirs(plain)
        r = self.banger('vm', 'run', plain, '--', 'true', status=2)
        self.assert_clean_error(r, plain, 'not in a git work tree')
        r = self.banger('vm', 'run', 'true', status=2, cwd=self.tmpdir)
        self.assert_clean_error(r, '“true” is not a directory', '“--”')
        r = self.banger('vm', 'run', '--repo=' + plain, '--', 'true', status=2)
        self.assert_clean_error(r, plain)
        self.assert_nothing_left()


if __name__ == '__main__':
    unittest.main()
