#!/usr/bin/python3
"""`banger ssh-config`: plain OpenSSH (`ssh NAME.vm`, scp, rsync -e ssh, git)
against real guests, from a shell that knows nothing of banger but the
Include in its ~/.ssh/config.

Each case is a NetWorld (tests/cli/test_cli_vm.py): the real helper and
polkitd, bangerd and QEMU (TCG) in a network namespace this test creates;
the test thread enters it, so ssh, scp and rsync run there too. Nothing in
the namespace resolves `NAME.vm` (no systemd-resolved): only banger's
ProxyCommand finds the guest. HOME is the world's scratch home, whose
~/.ssh/config holds lines of "the user's" that must come out byte-identical.
OpenSSH reads the home directory of the passwd entry, not $HOME, so every
ssh, scp and rsync here is given that config with -F (what a user's own
~/.ssh/config is without it).

One meson test per test case (tests/cli/meson.build)."""

import fcntl
import hashlib
import os
import pty
import pwd
import select
import shutil
import signal
import struct
import subprocess
import termios
import time
import unittest

from test_cli_vm import BANGER, NetWorld, TIMEOUT, BOOT_TIMEOUT, read_until  # noqa: E402

# The user's own lines: a comment, a Host block and a Match block, and no
# newline at the end, which must stay so.
USER_CONFIG = (b'# my settings\n'
               b'Host example.org\n'
               b'    User alice\n'
               b'    Port 2222\n'
               b'\n'
               b'Match host nothing.invalid\n'
               b'    ForwardAgent no')


def read_to_eof(fd, timeout):
    """Reads @fd until its other side is closed (True) or @timeout
    passes (False), waiting on the descriptor."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            return False
        try:
            if not os.read(fd, 4096):
                return True
        except OSError:  # EIO: the pty's other side is closed
            return True


def sha256(path):
    with open(path, 'rb') as f:
        return hashlib.sha256(f.read()).hexdigest()


class _SshWorld(NetWorld):

    def setUp(self):
        super().setUp()
        self.home = self.env['HOME']
        self.ssh_dir = os.path.join(self.home, '.ssh')
        os.makedirs(self.ssh_dir, mode=0o700, exist_ok=True)
        self.config = os.path.join(self.ssh_dir, 'config')
        with open(self.config, 'wb') as f:
            f.write(USER_CONFIG)
        os.chmod(self.config, 0o600)
        self.shortcut = os.path.join(self.env['XDG_CONFIG_HOME'], 'banger', 'ssh_config')

    def tool(self, *argv, status=0, timeout=TIMEOUT, input=None):
        """Runs OpenSSH's (or rsync's) own command line, stdin closed (or
        @input): a host-key prompt could not be answered and would fail."""
        kw = {'input': input} if input is not None else {'stdin': subprocess.DEVNULL}
        r = subprocess.run(list(argv), env=self.env, capture_output=True, text=True,
                           timeout=timeout, cwd=self.tmpdir, **kw)
        if status is not None:
            self.assertEqual(r.returncode, status, '%s exited %d\nstdout:\n%s\nstderr:\n%s' %
                             (' '.join(argv), r.returncode, r.stdout, r.stderr))
        return r

    def ssh(self, host, *command, status=0, input=None):
        return self.tool('ssh', '-F', self.config, '-o', 'BatchMode=yes', host, *command,
                         status=status, input=input)

    def scp(self, *args, status=0):
        # a bound, not a speed: the first scp to a VM without sshd ships
        # sftp-server into it (TCG, a loaded machine, sanitizers)
        return self.tool('scp', '-F', self.config, '-o', 'BatchMode=yes', *args, status=status,
                         timeout=BOOT_TIMEOUT)

    def set_up_shortcut(self):
        r = self.banger('ssh-config')
        self.assertIn(self.shortcut, r.stdout)
        with open(self.config, 'rb') as f:
            text = f.read()
        # the Include first, then the user's bytes, untouched
        self.assertTrue(text.startswith(b'# Added by'), text)
        self.assertEqual(text.splitlines(True)[1], b'Include ' + self.shortcut.encode() + b'\n')
        self.assertTrue(text.endswith(USER_CONFIG), text)
        self.assertEqual(len(text.splitlines(True)[0]) + len(text.splitlines(True)[1])
                         + len(USER_CONFIG), len(text))
        # once: a second run changes nothing
        r = self.banger('ssh-config')
        self.assertIn('already includes it', r.stdout)
        with open(self.config, 'rb') as f:
            self.assertEqual(f.read(), text)
        # --print writes nothing and shows the Host block
        r = self.banger('ssh-config', '--print')
        self.assertIn('Host *.vm', r.stdout)
        self.assertIn('__ssh-proxy %h %p', r.stdout)

    def check_ssh_scp_rsync(self, name, rsync_path=None):
        """What a user of `ssh NAME.vm` does first, against the running VM
        @name: a command, its exit status, stdin, stdout and stderr; scp
        both ways; rsync -e ssh both ways (with --rsync-path @rsync_path
        when given)."""
        host = name + '.vm'
        # the right user and key, the pinned host key, no prompt
        r = self.ssh(host, 'true')
        self.assertNotIn('authenticity', r.stderr)
        self.assertNotIn('Permanently added', r.stderr)
        self.assertEqual(self.ssh(host, 'uname -n').stdout, name + '\n')
        self.ssh(host, 'exit 3', status=3)
        r = self.ssh(host, 'echo out; echo err >&2; exit 4', status=4)
        self.assertEqual((r.stdout, r.stderr), ('out\n', 'err\n'))
        # stdin travels, and its end too
        self.assertEqual(self.ssh(host, 'tr a-z A-Z', input='hello\nvm\n').stdout,
                         'HELLO\nVM\n')
        # nothing was written to a known_hosts file of the user's
        self.assertFalse(os.path.exists(os.path.join(self.ssh_dir, 'known_hosts')))

        # scp both ways (OpenSSH 9's scp speaks SFTP)
        up = os.path.join(self.tmpdir, 'up.bin')
        with open(up, 'wb') as f:
            f.write(os.urandom(300 * 1024))
        self.scp(up, host + ':/root/up.bin')
        self.assertEqual(self.ssh(host, 'sha256sum /root/up.bin').stdout.split()[0],
                         sha256(up))
        down = os.path.join(self.tmpdir, 'down.bin')
        self.scp(host + ':/root/up.bin', down)
        self.assertEqual(sha256(down), sha256(up))

        # rsync -e ssh both ways
        extra = ['--rsync-path', rsync_path] if rsync_path else []
        src = os.path.join(self.tmpdir, 'src')
        os.makedirs(os.path.join(src, 'sub'))
        with open(os.path.join(src, 'a.txt'), 'w') as f:
            f.write('alpha\n')
        with open(os.path.join(src, 'sub', 'b.bin'), 'wb') as f:
            f.write(os.urandom(100 * 1024))
        e = 'ssh -F %s -o BatchMode=yes' % self.config
        self.tool('rsync', '-a', '-e', e, *extra, src + '/', host + ':/root/synced/',
                  timeout=BOOT_TIMEOUT)
        self.assertEqual(self.ssh(host, 'cat /root/synced/a.txt').stdout, 'alpha\n')
        self.ssh(host, 'echo beta > /root/synced/new.txt')
        back = os.path.join(self.tmpdir, 'back')
        self.tool('rsync', '-a', '-e', e, *extra, host + ':/root/synced/', back + '/',
                  timeout=BOOT_TIMEOUT)
        with open(os.path.join(back, 'new.txt')) as f:
            self.assertEqual(f.read(), 'beta\n')
        self.assertEqual(sha256(os.path.join(back, 'sub', 'b.bin')),
                         sha256(os.path.join(src, 'sub', 'b.bin')))

    def git(self, cwd, *args):
        env = dict(self.env)
        env.update({'GIT_AUTHOR_NAME': 't', 'GIT_AUTHOR_EMAIL': 't@t', 'GIT_COMMITTER_NAME': 't',
                    'GIT_COMMITTER_EMAIL': 't@t', 'GIT_CONFIG_NOSYSTEM': '1',
                    'GIT_SSH_COMMAND': 'ssh -F %s -o BatchMode=yes' % self.config})
        r = subprocess.run(['git'] + list(args), cwd=cwd, env=env, capture_output=True,
                           text=True, stdin=subprocess.DEVNULL, timeout=BOOT_TIMEOUT)
        self.assertEqual(r.returncode, 0, 'git %s: %s' % (' '.join(args), r.stderr))
        return r.stdout

    def make_bare_repo(self):
        """A bare repository proj.git in the scratch directory, one commit
        of README."""
        src_repo = os.path.join(self.tmpdir, 'proj')
        os.makedirs(src_repo)
        self.git(src_repo, 'init', '-q', '-b', 'main')
        with open(os.path.join(src_repo, 'README'), 'w') as f:
            f.write('hello from the host\n')
        self.git(src_repo, 'add', 'README')
        self.git(src_repo, 'commit', '-q', '-m', 'first')
        self.git(self.tmpdir, 'clone', '-q', '--bare', src_repo, 'proj.git')
        return os.path.join(self.tmpdir, 'proj.git')

    def remove_shortcut(self):
        self.banger('ssh-config', '--remove')
        with open(self.config, 'rb') as f:
            self.assertEqual(f.read(), USER_CONFIG)
        self.assertFalse(os.path.exists(self.shortcut))
        r = self.banger('ssh-config', '--remove')
        self.assertIn('nothing to take out', r.stdout)
        with open(self.config, 'rb') as f:
            self.assertEqual(f.read(), USER_CONFIG)


class SshShortcutTest(_SshWorld):

    def put_host_tool(self, program):
        """Copies the host's @program (the guest runs the same Debian
        release) and the libraries it links, but libc, to /root/host-tools
        in the guest, with scp."""
        libs = [l.split('=>')[1].split()[0] for l in
                subprocess.run(['ldd', program], capture_output=True, text=True,
                               check=True).stdout.splitlines()
                if '=>' in l and 'libc.so' not in l]
        self.ssh('deb.vm', 'mkdir -p /root/host-tools')
        self.scp(program, *libs, 'deb.vm:/root/host-tools/')

    BUILD_DEBIAN = True

    def test_ssh_scp_rsync_debian(self):
        self.assertIn('debian', self.banger('image', 'list', '--names').stdout.split())
        self.set_up_shortcut()
        self.boot('deb', '--image', 'debian')

        # rsync -e ssh needs rsync in the guest. The image has none: the
        # host's (the same Debian release) goes in with scp, with the
        # libraries the guest lacks.
        rsync = shutil.which('rsync')
        self.assertIsNotNone(rsync, 'rsync is not installed (tests/setup-debian.sh)')
        self.ssh('deb.vm', 'true')
        self.put_host_tool(rsync)
        self.check_ssh_scp_rsync(
            'deb', rsync_path='LD_LIBRARY_PATH=/root/host-tools /root/host-tools/rsync')
        r = self.ssh('deb.vm', 'id -un; uname -n')
        self.assertEqual(r.stdout, 'root\ndeb\n')

        # git over ssh: a clone from a bare repository in the guest. The image
        # has no git either: the host's goes in the same way.
        self.scp('-r', self.make_bare_repo(), 'deb.vm:/root/proj.git')
        self.put_host_tool(shutil.which('git'))
        upload_pack = ('GIT_EXEC_PATH=/root/host-tools LD_LIBRARY_PATH=/root/host-tools '
                       '/root/host-tools/git upload-pack')
        self.git(self.tmpdir, 'clone', '-q', '-u', upload_pack, 'deb.vm:/root/proj.git',
                 'cloned')
        with open(os.path.join(self.tmpdir, 'cloned', 'README')) as f:
            self.assertEqual(f.read(), 'hello from the host\n')

        # a VM that does not exist: banger's words, through ssh
        r = self.ssh('nope.vm', 'true', status=255)
        self.assertIn('no VM named “nope”', r.stderr)

        # --remove: the user's file byte-identical, and NAME.vm no longer resolves
        self.remove_shortcut()
        r = self.ssh('deb.vm', 'true', status=255)
        self.assertNotIn('__ssh-proxy', r.stderr)


class SshShortcutMinimalTest(_SshWorld):

    def test_ssh_minimal_without_sshd(self):
        """The minimal image has no sshd (busybox alone, not even a C
        library): `ssh mini.vm` goes through banger's agent, the host's
        `sshd -i` speaking the protocol (docs/cli.md, "VMs without sshd"),
        and scp and rsync work with the host's sftp-server and rsync,
        which banger ships into the guest on first use."""
        self.set_up_shortcut()
        self.boot('mini')
        self.assertIsNotNone(shutil.which('rsync'), 'rsync is not installed '
                             '(tests/setup-debian.sh)')
        self.check_ssh_scp_rsync('mini')
        # the tools went in once, under /.banger/tools
        r = self.ssh('mini.vm', 'ls /.banger/tools')
        self.assertEqual(sorted(w.split('-')[0] for w in r.stdout.split()),
                         ['rsync', 'sftp'], r.stdout)

        # scp's legacy protocol (-O): the far side is the host's scp
        one = os.path.join(self.tmpdir, 'one.txt')
        with open(one, 'w') as f:
            f.write('legacy\n')
        self.scp('-O', one, 'mini.vm:/root/one.txt')
        self.assertEqual(self.ssh('mini.vm', 'cat /root/one.txt').stdout, 'legacy\n')

        # git over ssh, both ways: the host's git goes in as the far side
        # (git-upload-pack, git-receive-pack) on first use
        self.scp('-r', self.make_bare_repo(), 'mini.vm:/root/proj.git')
        self.git(self.tmpdir, 'clone', '-q', 'mini.vm:/root/proj.git', 'cloned')
        cloned = os.path.join(self.tmpdir, 'cloned')
        with open(os.path.join(cloned, 'README')) as f:
            self.assertEqual(f.read(), 'hello from the host\n')
        with open(os.path.join(cloned, 'README'), 'a') as f:
            f.write('and back\n')
        self.git(cloned, 'commit', '-q', '-a', '-m', 'second')
        self.git(cloned, 'push', '-q', 'origin', 'main')
        self.assertEqual(self.ssh('mini.vm', 'cat /root/proj.git/refs/heads/main').stdout.strip(),
                         self.git(cloned, 'rev-parse', 'HEAD').strip())

        # an interactive login: a pty in the guest, of the terminal's size,
        # and the exit status back
        pid, master = pty.fork()
        if pid == 0:
            # the size, before ssh reads it
            fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack('HHHH', 33, 101, 0, 0))
            os.execvpe('ssh', ['ssh', '-F', self.config, '-o', 'BatchMode=yes', 'mini.vm'],
                       self.env)
        try:
            # typed ahead: it waits in the terminal until the guest's shell reads it
            os.write(master, b'tty; stty size; echo mark-$((6*7)); exit 6\r')
            out = read_until(master, rb'mark-42', BOOT_TIMEOUT)
            self.assertIn(b'/dev/pts/', out)
            self.assertIn(b'33 101\r\n', out)
        finally:
            # ssh ends when the guest's shell does; if it did not, the test
            # must fail, not hang
            if not read_to_eof(master, BOOT_TIMEOUT):
                os.kill(pid, signal.SIGKILL)
            _, status = os.waitpid(pid, 0)
            os.close(master)
        self.assertEqual(os.waitstatus_to_exitcode(status), 6, out)

        # the guest logs in only the user the host's sshd runs as
        me = pwd.getpwuid(os.getuid()).pw_name
        other = 'nobody' if me != 'nobody' else 'root'
        r = self.ssh(other + '@mini.vm', 'true', status=255)
        self.assertIn('logs in only you', r.stderr)
        self.assertIn('“%s”' % me, r.stderr)

        # a stopped VM: banger's words, through ssh, and no sshd left behind
        self.banger('vm', 'stop', 'mini', timeout=BOOT_TIMEOUT)
        r = self.ssh('mini.vm', 'true', status=255)
        self.assertIn('not running', r.stderr)
        conf_dir = os.path.join(self.env['XDG_RUNTIME_DIR'], 'banger', 'sshd')
        self.assertTrue(os.listdir(conf_dir))
        self.assertEqual(subprocess.run(['pgrep', '-f', 'sshd -i -e -f ' + conf_dir],
                                        capture_output=True).returncode, 1)

        self.remove_shortcut()
        r = self.ssh('mini.vm', 'true', status=255)
        self.assertNotIn('__ssh-proxy', r.stderr)


class RunLoginSshTest(NetWorld):

    BUILD_DEBIAN = True

    def test_run_path_login_debian(self):
        """`vm run --image debian ./repo` without a command: the login is
        OpenSSH (the image has sshd) with a terminal, in the shipped tree;
        its exit status is banger's and the changes are saved."""
        repo = os.path.join(self.tmpdir, 'myrepo')
        os.makedirs(repo)
        env = dict(self.env)
        env.update({'GIT_AUTHOR_NAME': 't', 'GIT_AUTHOR_EMAIL': 't@t', 'GIT_COMMITTER_NAME': 't',
                    'GIT_COMMITTER_EMAIL': 't@t', 'GIT_CONFIG_NOSYSTEM': '1'})
        for args in (['init', '-q', '-b', 'main'], ['commit', '-q', '--allow-empty', '-m', 'a']):
            subprocess.run(['git'] + args, cwd=repo, env=env, check=True, capture_output=True)
        pid, master = pty.fork()
        if pid == 0:
            os.chdir(self.tmpdir)
            os.execve(BANGER, [BANGER, 'vm', 'run', '--name', 'rld', '--image', 'debian',
                               './myrepo'], self.env)
        try:
            # Typed ahead: it waits in the terminal until the guest's shell reads it.
            os.write(master, b'pwd; echo made > login.txt; echo mark-$((6*7)); exit 6\r')
            out = read_until(master, rb'saved in \S+rld\.patch', BOOT_TIMEOUT)
        finally:
            # ssh ends when the guest's shell does; if it did not, the test
            # must fail, not hang
            if not read_to_eof(master, BOOT_TIMEOUT):
                os.kill(pid, signal.SIGKILL)
            _, status = os.waitpid(pid, 0)
            os.close(master)
        self.assertEqual(os.waitstatus_to_exitcode(status), 6, out)
        self.assertIn(b'/root/myrepo\r\n', out)
        self.assertIn(b'mark-42', out)
        with open(os.path.join(repo, '.git', 'banger', 'rld.patch')) as f:
            self.assertIn('+made', f.read())
        self.assert_nothing_left()


if __name__ == '__main__':
    unittest.main()
