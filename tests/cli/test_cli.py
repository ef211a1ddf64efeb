#!/usr/bin/python3
"""The banger CLI, run as a real binary.

CliTest needs no daemon: help, usage errors, version, completion scripts
(checked by bash, zsh and fish themselves) and the message when the session
bus is not there. CliDaemonTest runs the real bangerd, D-Bus activated on a
private session bus (tests/lib/session_bus.py), and drives it through the
CLI only."""

import json
import os
import pwd
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

from session_bus import SessionBus, SystemBus, build_root

BANGER = os.path.join(build_root(), 'src', 'cli', 'banger')
SOURCE_ROOT = os.environ.get('BANGER_SOURCE_ROOT', os.path.join(os.path.dirname(__file__), '..', '..'))
TIMEOUT = 30


def run(args, env, **kw):
    return subprocess.run([BANGER] + list(args), env=env, capture_output=True, text=True,
                          timeout=TIMEOUT, **kw)


class _Base(unittest.TestCase):

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix='banger-cli-test-')
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)

    def start_mock(self, bus, address, name, path, *flags):
        """python-dbusmock owning @name (@path, interface @name) on the bus
        (--session or --system) at @address; its org.freedesktop.DBus.Mock
        interface, to give it methods and objects."""
        import dbus
        self.mock = subprocess.Popen(
            ['/usr/bin/python3', '-m', 'dbusmock', bus, *flags, name, path, name],
            env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.addCleanup(self.stop_mock)
        subprocess.run(['gdbus', 'wait', bus, '--timeout', '10', name],
                       env=self.env, check=True, timeout=TIMEOUT)
        conn = dbus.bus.BusConnection(address)
        self.addCleanup(conn.close)
        return dbus.Interface(conn.get_object(name, path), 'org.freedesktop.DBus.Mock')

    def stop_mock(self):
        self.mock.terminate()
        self.mock.wait(timeout=10)
        self.mock.stderr.close()

    def banger(self, *args, status=0):
        r = run(args, self.env)
        if status is not None:
            self.assertEqual(r.returncode, status,
                             'banger %s exited %d\nstdout:\n%s\nstderr:\n%s' %
                             (' '.join(args), r.returncode, r.stdout, r.stderr))
        return r


class CliTest(_Base):
    """Everything that works without bangerd."""

    def setUp(self):
        super().setUp()
        self.env = dict(os.environ)
        # A bus address whose socket does not exist: nothing can answer.
        self.env['DBUS_SESSION_BUS_ADDRESS'] = 'unix:path=' + os.path.join(self.tmp, 'no-bus')
        self.env['DBUS_SYSTEM_BUS_ADDRESS'] = 'unix:path=' + os.path.join(self.tmp, 'no-bus')
        self.env['XDG_DATA_HOME'] = os.path.join(self.tmp, 'data')
        self.env['LC_ALL'] = 'C.UTF-8'

    def commands_of(self, help_text):
        """The command names listed under "Commands:" in group help."""
        names = []
        in_list = False
        for line in help_text.splitlines():
            if line == 'Commands:':
                in_list = True
            elif in_list and not line.strip():
                break
            elif in_list:
                names.append(line.split()[0])
        return names

    def test_help_top(self):
        for args in (['--help'], ['-h'], ['help']):
            out = self.banger(*args).stdout
            self.assertIn('Usage:', out)
            for name in ('vm', 'system', 'doctor', 'version', 'completion', 'help'):
                self.assertIn(name, self.commands_of(out))
        # No command at all: help on stderr, usage status.
        r = self.banger(status=2)
        self.assertIn('Commands:', r.stderr)

    def test_help_group(self):
        a = self.banger('help', 'vm').stdout
        b = self.banger('vm', '--help').stdout
        self.assertEqual(a, b)
        self.assertIn('banger vm [OPTION…] COMMAND', a)
        commands = self.commands_of(a)
        for verb in ('create', 'list', 'ps', 'show', 'rm', 'prune', 'start', 'stop',
                     'restart', 'kill', 'suspend', 'resume', 'exec', 'ssh', 'run', 'logs',
                     'stats', 'ports'):
            self.assertIn(verb, commands)

    def test_help_leaf(self):
        a = self.banger('vm', 'create', '--help').stdout
        b = self.banger('help', 'vm', 'create').stdout
        c = self.banger('vm', 'create', '-h').stdout
        self.assertEqual(a, b)
        self.assertEqual(a, c)
        self.assertIn('banger vm create [OPTION…] NAME', a)
        for flag in ('--image', '--kernel', '--cpus', '--memory', '--disk', '--driver',
                     '--verbose'):
            self.assertIn(flag, a)
        # Hidden helper flags stay out of help.
        self.assertNotIn('--names', self.banger('vm', 'list', '--help').stdout)

    def test_help_everywhere(self):
        """Walks the whole command tree through help output: every group and
        every command answers --help with its own usage line."""
        todo = [[]]
        seen = 0
        while todo:
            path = todo.pop()
            out = self.banger(*(path + ['--help'])).stdout
            self.assertIn('banger ' + ' '.join(path), 'banger ' + out.split('\n')[1].strip()
                          if path else out)
            self.assertEqual(out, self.banger('help', *path).stdout)
            seen += 1
            for name in self.commands_of(out):
                todo.append(path + [name])
        self.assertGreater(seen, 20)

    def test_unknown_command(self):
        r = self.banger('frobnicate', status=2)
        self.assertIn('unknown command “frobnicate”', r.stderr)
        self.assertIn('banger --help', r.stderr)
        r = self.banger('vm', 'frobnicate', status=2)
        self.assertIn('frobnicate', r.stderr)
        self.assertIn('banger vm --help', r.stderr)
        r = self.banger('help', 'vm', 'frobnicate', status=2)
        self.assertIn('frobnicate', r.stderr)

    def test_unknown_option(self):
        r = self.banger('vm', 'list', '--frobnicate', status=2)
        self.assertIn('--frobnicate', r.stderr)
        self.assertIn('banger vm list --help', r.stderr)
        r = self.banger('--frobnicate', 'vm', status=2)
        self.assertIn('--frobnicate', r.stderr)

    def test_usage_errors(self):
        r = self.banger('vm', 'create', status=2)
        self.assertIn('missing argument', r.stderr)
        r = self.banger('vm', 'show', 'a', 'b', status=2)
        self.assertIn('unexpected argument “b”', r.stderr)
        r = self.banger('vm', 'create', 'x', '--cpus', 'many', status=2)
        self.assertIn('--cpus', r.stderr)

    def test_bad_sizes(self):
        for flag, value in (('--memory', '12X'), ('--memory', '0'), ('--disk', '1.5G'),
                            ('--disk', '-1'), ('--memory', '99999999999G'), ('--disk', 'G')):
            r = self.banger('vm', 'create', 'x', flag, value, status=2)
            self.assertIn(flag, r.stderr, r.stderr)
            self.assertIn(value, r.stderr, r.stderr)
            # Rejected before any bus traffic: no "cannot reach".
            self.assertNotIn('cannot reach', r.stderr)

    def test_verbose(self):
        # -v is accepted before the command, after it, and repeated.
        self.banger('-v', 'vm', 'create', '--help')
        self.banger('vm', '-vv', 'create', '--help')
        r = self.banger('-vv', 'version')
        self.assertIn('bangerd', r.stderr)  # the debug line says why bangerd is missing

    def test_version_without_daemon(self):
        out = self.banger('version').stdout
        self.assertRegex(out, r'^banger \d+\.\d+\.\d+\n')
        self.assertRegex(out, r'commit:\s+\S+')
        self.assertRegex(out, r'built:\s+\d{4}-\d\d-\d\dT')
        self.assertIn('bangerd: not reachable', out)
        data = json.loads(self.banger('version', '--json').stdout)
        self.assertEqual(set(data), {'version', 'commit', 'build_time', 'daemon'})
        self.assertIsNone(data['daemon'])
        self.assertNotEqual(data['commit'], '')

    def test_unreachable_daemon(self):
        for args in (['vm', 'list'], ['vm', 'create', 'dev'], ['vm', 'rm', 'dev'], ['doctor']):
            r = self.banger(*args, status=1)
            self.assertRegex(r.stderr, r'^banger: cannot reach bangerd on the session bus: ')
            self.assertNotIn('GDBus.Error', r.stderr)

    def test_unloadable_libarchive(self):
        """libarchive is loaded when a copy first needs it, not linked
        (src/common/archive-api.h): one that cannot be loaded is a clear
        error of that command, before any call to bangerd, and the commands
        that do not need it run without it."""
        libdir = os.path.join(self.tmp, 'lib')
        os.makedirs(libdir)
        with open(os.path.join(libdir, 'libarchive.so.13'), 'wb') as f:
            f.write(b'not a library\n')
        self.env['LD_LIBRARY_PATH'] = libdir
        for args in (['vm', 'cp', 'dev:/etc/hostname', self.tmp], ['vm', 'push', 'dev']):
            r = self.banger(*args, status=1)
            self.assertRegex(r.stderr, r'^banger: cannot load libarchive \(libarchive\.so\.13\): '
                             r'.*libarchive\.so\.13')
            self.assertNotIn('bangerd', r.stderr)
        self.assertRegex(self.banger('version').stdout, r'^banger \d+\.\d+\.\d+\n')

    def test_unreachable_helper(self):
        r = self.banger('system', 'network', 'up', status=1)
        self.assertRegex(r.stderr, r'^banger: cannot reach bangerd-root on the system bus')

    def completion(self, shell):
        out = self.banger('completion', shell).stdout
        path = os.path.join(self.tmp, 'banger.' + shell)
        with open(path, 'w') as f:
            f.write(out)
        return out, path

    # ---- manual pages --------------------------------------------------

    def _help_options(self, argv):
        """Long option names in a --help output (GOption's layout)."""
        r = subprocess.run(argv + ['--help'], capture_output=True, text=True, env=self.env,
                           timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout, re.findall(r'(?m)^\s+(?:-\w, )?--([a-z][a-z0-9-]*)', r.stdout)

    def _leaves(self, path):
        """Every command path below `banger PATH…`, from the help itself."""
        out, _ = self._help_options([BANGER] + path)
        if 'Commands:' not in out:
            return [path]
        block = out.split('Commands:', 1)[1].split('Options:', 1)[0]
        leaves = []
        for line in block.splitlines():
            m = re.match(r'^  (\S+)\s+(.*)$', line)
            if not m:
                continue
            if m.group(2).startswith('Alias of'):
                leaves.append(path + [m.group(1)])
                continue
            leaves += self._leaves(path + [m.group(1)])
        return leaves

    @staticmethod
    def _roff(text):
        return text.replace('-', '\\-')

    def test_man_pages_match_help(self):
        with open(os.path.join(build_root(), 'data', 'man', 'banger.1')) as f:
            page = f.read()
        leaves = self._leaves([])
        self.assertIn(['vm', 'create'], leaves)
        self.assertIn(['daemon'], leaves)
        for leaf in leaves:
            self.assertIn('.SS "' + self._roff(' '.join(['banger'] + leaf)), page, leaf)
            if self._help_options([BANGER] + leaf)[0].find('Alias of') >= 0:
                continue
            for option in self._help_options([BANGER] + leaf)[1]:
                self.assertIn('\\fB\\-\\-' + self._roff(option) + '\\fR', page,
                              '%s --%s is not in banger(1)' % (' '.join(leaf), option))
        # The daemons' hand-written pages: every option of their --help.
        for binary, name in ((os.path.join(build_root(), 'src', 'service', 'bangerd'), 'bangerd.8'),
                             (os.path.join(build_root(), 'src', 'helper', 'bangerd-root'),
                              'bangerd-root.8')):
            with open(os.path.join(SOURCE_ROOT, 'data', 'man', name)) as f:
                text = f.read()
            options = self._help_options([binary])[1]
            self.assertIn('help', options)
            for option in options:
                self.assertIn('\\fB\\-\\-' + self._roff(option) + '\\fR', text,
                              '%s --%s is not in %s' % (binary, option, name))

    def test_completion_bash(self):
        out, path = self.completion('bash')
        subprocess.run(['bash', '-n', path], check=True, timeout=TIMEOUT)
        # Drive the completion function the way bash would.
        probe = ('source %s\n'
                 't() { COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]}-1)); '
                 'COMPREPLY=(); _banger; echo "${COMPREPLY[*]}"; }\n'
                 't banger ""\nt banger vm cr\nt banger -v vm create --image x --me\n'
                 't banger system network ""\nt banger completion ""\n'
                 't banger vm workspace ""\nt banger ssh-config --\n' % path)
        r = subprocess.run(['bash', '-c', probe], capture_output=True, text=True, check=True,
                           timeout=TIMEOUT)
        lines = r.stdout.splitlines()
        self.assertEqual(lines[0], 'vm image kernel system daemon ps ssh-config doctor update '
                                   'version completion help')
        self.assertEqual(lines[1], 'create')
        self.assertEqual(lines[2], '--memory')
        self.assertEqual(lines[3], 'up down')
        self.assertEqual(lines[4], 'bash zsh fish')
        self.assertEqual(lines[5], 'push diff pull')
        self.assertEqual(set(lines[6].split()), {'--print', '--remove', '--help', '--verbose'})

    def test_completion_zsh(self):
        out, path = self.completion('zsh')
        self.assertTrue(out.startswith('#compdef banger\n'))
        if shutil.which('zsh') is None:
            self.fail('zsh is not installed (Debian package "zsh")')
        subprocess.run(['zsh', '-n', path], check=True, timeout=TIMEOUT)
        self.assertIn("'banger vm create')", out)

    def test_completion_fish(self):
        out, path = self.completion('fish')
        if shutil.which('fish') is None:
            self.fail('fish is not installed (Debian package "fish")')
        subprocess.run(['fish', '-n', path], check=True, timeout=TIMEOUT)
        r = subprocess.run(['fish', '--no-config', '-c',
                            'source %s; complete -C "banger vm cr"; '
                            'complete -C "banger vm create --me"' % path],
                           capture_output=True, text=True, check=True, timeout=TIMEOUT,
                           env=self.env)
        self.assertRegex(r.stdout, r'(?m)^create\t')
        self.assertRegex(r.stdout, r'(?m)^--memory\t')

    def test_ssh_config_files(self):
        """`banger ssh-config` on the user's files, without bangerd: a home
        without ~/.ssh gets both (and --remove takes the file away again);
        a symbolic link is written through, keeps its mode and comes back
        byte-identical; --print writes nothing; both flags are refused."""
        home = os.path.join(self.tmp, 'home')
        os.makedirs(home)
        self.env['HOME'] = home
        self.env['XDG_CONFIG_HOME'] = os.path.join(self.tmp, 'config')
        config = os.path.join(home, '.ssh', 'config')
        shortcut = os.path.join(self.tmp, 'config', 'banger', 'ssh_config')
        # --print: the block, nothing written
        r = self.banger('ssh-config', '--print')
        self.assertIn('Host *.vm\n', r.stdout)
        self.assertIn("'%s' __ssh-proxy %%h %%p %%r" % BANGER, r.stdout)
        # VMs without sshd: the login name is the user's own, set before Host *.vm sets root
        self.assertIn('Match host *.vm exec "\'%s\' __ssh-uses-agent %%h"\n    User %s\n'
                      'Host *.vm\n    User root\n' % (BANGER, pwd.getpwuid(os.getuid()).pw_name),
                      r.stdout)
        self.assertFalse(os.path.exists(config) or os.path.exists(shortcut))
        # no ~/.ssh at all
        r = self.banger('ssh-config')
        self.assertEqual(os.stat(os.path.dirname(config)).st_mode & 0o777, 0o700)
        self.assertEqual(os.stat(config).st_mode & 0o777, 0o600)
        with open(config) as f:
            self.assertEqual(f.read().splitlines()[1], 'Include ' + shortcut)
        with open(shortcut) as f:
            self.assertEqual(f.read(), self.banger('ssh-config', '--print').stdout)
        self.banger('ssh-config', '--remove')
        self.assertFalse(os.path.exists(config) or os.path.exists(shortcut))
        # a dotfile manager's link, mode 0644, no newline at the end
        real = os.path.join(self.tmp, 'dotfiles-ssh-config')
        original = b'Host *\n    ServerAliveInterval 30'
        with open(real, 'wb') as f:
            f.write(original)
        os.chmod(real, 0o644)
        os.symlink(real, config)
        self.banger('ssh-config')
        self.assertTrue(os.path.islink(config))
        self.assertEqual(os.stat(real).st_mode & 0o777, 0o644)
        with open(real, 'rb') as f:
            text = f.read()
        self.assertTrue(text.startswith(b'# Added by'))
        self.assertTrue(text.endswith(b'\nInclude ' + shortcut.encode() + b'\n' + original))
        self.banger('ssh-config', '--remove')
        self.assertTrue(os.path.islink(config))
        with open(real, 'rb') as f:
            self.assertEqual(f.read(), original)
        r = self.banger('ssh-config', '--print', '--remove', status=2)
        self.assertIn('--print and --remove', r.stderr)

    def test_completion_unknown_shell(self):
        r = self.banger('completion', 'ksh', status=2)
        self.assertIn('ksh', r.stderr)


class CliDaemonTest(_Base):
    """The CLI against the real bangerd on a private session bus."""

    def setUp(self):
        super().setUp()
        self.bus = SessionBus(self.tmp)
        self.bus.start()
        self.addCleanup(self.stop_bus)
        self.env = dict(self.bus.env)
        self.env['LC_ALL'] = 'C.UTF-8'

    def stop_bus(self):
        self.bus.stop_bangerd()
        self.bus.stop()
        outcome = getattr(self, '_outcome', None)
        if outcome is not None and not getattr(outcome, 'success', True):
            sys.stderr.write('---- dbus-daemon and bangerd log ----\n%s\n' % self.bus.log())

    def list_json(self, *extra):
        return json.loads(self.banger('vm', 'list', '--json', *extra).stdout)

    def test_create_list_show_rm(self):
        r = self.banger('vm', 'create', 'dev', '--cpus', '3', '--memory', '2G', '--disk', '10240')
        self.assertEqual(r.stdout, 'dev\n')

        table = self.banger('vm', 'list').stdout.splitlines()
        self.assertEqual(table[0].split(), ['NAME', 'STATE', 'IMAGE', 'CPUS', 'MEMORY', 'DISK',
                                            'IP', 'CREATED'])
        self.assertEqual(len(table), 2)
        self.assertTrue(table[1].startswith('dev '))
        self.assertIn('created', table[1].split())
        # g_format_size() joins number and unit with a no-break space, so
        # splitting a row on blanks keeps "2.0 GiB" one field.
        self.assertIn('2.0\u00a0GiB', table[1])
        self.assertIn('10.0\u00a0GiB', table[1])
        # Columns line up: every header starts where its cells start.
        self.assertEqual(table[0].index('STATE'), table[1].index('created'))
        self.assertTrue(table[1].endswith('just now') or table[1].endswith('seconds ago'))

        vms = self.list_json()
        self.assertEqual(len(vms), 1)
        vm = vms[0]
        self.assertEqual(vm['name'], 'dev')
        self.assertEqual(vm['state'], 'created')
        self.assertEqual(vm['vcpus'], 3)
        self.assertEqual(vm['memory_mib'], 2048)
        self.assertEqual(vm['disk_mib'], 10240)
        self.assertRegex(vm['id'], r'^[0-9a-f]{16}$')
        self.assertGreater(vm['created_at'], 0)
        self.assertEqual(vm['started_at'], 0)
        for key in ('driver', 'image', 'kernel', 'ipv4', 'mac', 'pid', 'agent_version',
                    'boot_id', 'disk_mode', 'last_error'):
            self.assertIn(key, vm)

        shown = json.loads(self.banger('vm', 'show', 'dev', '--json').stdout)
        self.assertEqual(shown, vm)
        text = self.banger('vm', 'show', 'dev').stdout
        self.assertRegex(text, r'(?m)^Name:\s+dev$')
        self.assertRegex(text, r'(?m)^State:\s+created$')
        self.assertRegex(text, r'(?m)^Memory:\s+2\.0\u00a0GiB$')
        self.assertRegex(text, r'(?m)^Started:\s+never$')

        self.assertEqual(self.banger('vm', 'list', '--names').stdout, 'dev\n')
        self.assertEqual(self.banger('vm', 'rm', 'dev').stdout, 'dev\n')
        self.assertEqual(self.list_json(), [])

    def test_ps_shows_running_only(self):
        self.banger('vm', 'create', 'idle')
        self.assertEqual(json.loads(self.banger('vm', 'ps', '--json').stdout), [])
        self.assertEqual(len(self.banger('vm', 'ps').stdout.splitlines()), 1)  # header only
        self.assertEqual([v['name'] for v in json.loads(
            self.banger('vm', 'ps', '-a', '--json').stdout)], ['idle'])
        self.assertEqual([v['name'] for v in self.list_json()], ['idle'])

    def test_create_duplicate(self):
        self.banger('vm', 'create', 'dev')
        r = self.banger('vm', 'create', 'dev', status=1)
        self.assertTrue(r.stderr.startswith('banger: VM “dev” already exists'), r.stderr)
        self.assertNotIn('GDBus.Error', r.stderr)
        self.assertEqual(len(self.list_json()), 1)

    def test_create_invalid_name(self):
        for name in ('Bad_Name', '9lives', 'trailing-'):
            r = self.banger('vm', 'create', name, status=1)
            self.assertIn('“%s”' % name, r.stderr)
            self.assertTrue(r.stderr.startswith('banger: '), r.stderr)
        self.assertEqual(self.list_json(), [])

    def test_create_out_of_range(self):
        # The CLI parses the size; the range is the daemon's rule.
        r = self.banger('vm', 'create', 'small', '--memory', '64M', status=1)
        self.assertIn('memory', r.stderr)
        self.assertNotIn('GDBus.Error', r.stderr)

    def test_rm_unknown(self):
        r = self.banger('vm', 'rm', 'nope', status=1)
        self.assertEqual(r.stderr.splitlines()[0], 'banger: no VM named “nope”')
        # Several names: the others are still removed, the failure reported.
        self.banger('vm', 'create', 'a')
        self.banger('vm', 'create', 'b')
        r = self.banger('vm', 'rm', 'a', 'nope', 'b', status=1)
        self.assertEqual(r.stdout, 'a\nb\n')
        self.assertIn('no VM named “nope”', r.stderr)
        self.assertEqual(self.list_json(), [])

    def test_prune(self):
        self.banger('vm', 'create', 'one')
        self.banger('vm', 'create', 'two')
        r = self.banger('vm', 'prune')
        self.assertEqual(sorted(r.stdout.split()), ['one', 'two'])
        self.assertEqual(self.list_json(), [])

    def test_start_error_is_clean(self):
        self.banger('vm', 'create', 'dev')
        r = self.banger('vm', 'start', 'dev', status=1)
        # The first start builds the default image: its progress lines
        # (build-image minimal: …) may come before the one error line.
        self.assertTrue(r.stderr.splitlines()[-1].startswith('banger: '), r.stderr)
        for line in r.stderr.splitlines()[:-1]:
            self.assertTrue(line.startswith('build-image '), r.stderr)
        self.assertNotIn('GDBus.Error', r.stderr)
        self.assertNotIn('org.banger.Error', r.stderr)
        if 'not supported' in r.stderr:
            # Unsupported: the daemon's own message follows the CLI's words.
            self.assertRegex(r.stderr, r'^banger: not supported by this bangerd \(VM “dev”\): \S')
        r = self.banger('vm', 'start', 'ghost', status=1)
        self.assertIn('no VM named “ghost”', r.stderr)
        # The other verbs reach the daemon too and fail as cleanly.
        for verb in (['stop', 'dev'], ['kill', 'dev'], ['exec', 'dev', '--', 'true'],
                     ['stats', 'dev'], ['ports', 'dev'], ['logs', 'dev']):
            r = self.banger('vm', *verb, status=None)
            self.assertIn(r.returncode, (0, 1), r.stderr)
            self.assertNotIn('GDBus.Error', r.stderr)

    def test_version_shows_daemon(self):
        out = self.banger('version').stdout
        self.assertRegex(out, r'(?m)^bangerd \d+\.\d+\.\d+ \(commit [0-9a-f]{7,}')
        data = json.loads(self.banger('version', '--json').stdout)
        self.assertEqual(data['daemon']['version'], data['version'])
        self.assertRegex(data['daemon']['commit'], r'^[0-9a-f]{7,}')
        self.assertRegex(data['commit'], r'^[0-9a-f]{7,}')


class CliOldDaemonTest(_Base):
    """`vm list` against a FAKE bangerd older than ListVMRows: python-dbusmock
    as org.banger.Manager with an ObjectManager and one VM object. The CLI
    hears UnknownMethod and reads GetManagedObjects instead, as before."""

    def setUp(self):
        super().setUp()
        import dbus
        self.bus = SessionBus(self.tmp)
        self.bus.start()
        self.addCleanup(self.bus.stop)
        self.env = dict(self.bus.env)
        self.env['DBUS_SESSION_BUS_ADDRESS'] = self.bus.address
        self.env['LC_ALL'] = 'C.UTF-8'
        # Owns the name before anything asks for it: the real bangerd is
        # never activated. -m: with an ObjectManager.
        self.fake = self.start_mock('--session', self.bus.address, 'org.banger.Manager',
                                    '/org/banger/Manager', '-m')
        self.fake.AddObject('/org/banger/Manager/vms/old', 'org.banger.VM', {
            'Name': 'old', 'Id': '0123456789abcdef', 'State': 'stopped', 'Driver': 'qemu',
            'Image': 'minimal', 'Kernel': 'default', 'VCPUs': dbus.UInt32(3),
            'MemoryMiB': dbus.UInt32(2048), 'DiskMiB': dbus.UInt32(4096), 'IPv4': '',
            'MAC': '52:54:01:23:45:67', 'Pid': dbus.UInt32(0),
            'CreatedAt': dbus.UInt64(1700000000), 'StartedAt': dbus.UInt64(0),
            'AgentVersion': '', 'BootId': '', 'DiskMode': 'qcow2-overlay', 'LastError': '',
        }, dbus.Array([], signature='(ssss)'))

    def test_list_from_an_older_daemon(self):
        table = self.banger('vm', 'list').stdout.splitlines()
        self.assertEqual(len(table), 2, table)
        self.assertEqual(table[1].split()[:4], ['old', 'stopped', 'minimal', '3'])
        self.assertIn('2.0\u00a0GiB', table[1])
        self.assertEqual(self.banger('vm', 'list', '--names').stdout, 'old\n')


class CliHelperTest(_Base):
    """`banger system network` against a FAKE org.banger.Helper: python-dbusmock
    on a private system bus (the real bangerd-root needs root, polkitd and a
    network namespace; its own suite tests it). The fake records the calls,
    so the test checks what the CLI sent."""

    def setUp(self):
        super().setUp()
        self.sysbus = SystemBus(self.tmp)
        self.sysbus.start()
        self.addCleanup(self.sysbus.stop)
        self.env = dict(self.sysbus.env)
        self.env['LC_ALL'] = 'C.UTF-8'
        self.fake = self.start_mock('--system', self.sysbus.address, 'org.banger.Helper',
                                    '/org/banger/Helper')
        self.fake.AddMethod('org.banger.Helper', 'EnsureNetwork', 'a{sv}', 's',
                            'ret = "10.77.0.1/24"')
        self.fake.AddMethod('org.banger.Helper', 'TeardownNetwork', 'a{sv}', '',
                            'raise dbus.exceptions.DBusException("not allowed", '
                            'name="org.freedesktop.DBus.Error.AccessDenied")')

    def test_network_up_interactive(self):
        r = self.banger('system', 'network', 'up')
        self.assertIn('10.77.0.1/24', r.stdout)
        calls = self.fake.GetMethodCalls('EnsureNetwork')
        self.assertEqual(len(calls), 1)
        options = calls[0][1][0]
        self.assertEqual(dict(options), {'interactive': True})

    def test_network_down_denied(self):
        r = self.banger('system', 'network', 'down', status=1)
        self.assertEqual(r.stderr.splitlines()[0], 'banger: not authorized: not allowed')


if __name__ == '__main__':
    unittest.main()
