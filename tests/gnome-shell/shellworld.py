"""A real GNOME Shell 43, headless, with banger's extension and the real
bangerd, for tests/gnome-shell/test_shell.py (recipe: ../shared/TESTING.md,
"A real GNOME Shell 43, headless"; docs/gnome-shell.md).

World per test case (the shell starts in about a second):
- a private "system" bus (GNOME 43 dies at start-up without one) with no
  services on it, and a private session bus that D-Bus activates the build
  tree's bangerd (tests/lib/session_bus.py); its <servicedir> holds only
  banger's service file, so the shell activates no helper of its own;
- fresh HOME and XDG_* directories; GSettings on the keyfile backend with
  the extension enabled (no dconf-service to outlive the test);
- the extension installed with `meson install --tags gnome-shell` into a
  destdir and copied to $XDG_DATA_HOME/gnome-shell/extensions/<uuid>/;
- gnome-shell --headless --wayland --no-x11 --virtual-monitor 1280x800
  --unsafe-mode (Eval and Screenshot refuse without it).

Every process is this test's child (dbus-daemons, the shell) or the bus's
(bangerd); VMMs are found through their pidfiles; anything else carrying
this world's marker in its environment is ended by pid at the end.
"""

import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import unittest

from gi.repository import Gio, GLib

import system_bus
from session_bus import SessionBus, SystemBus, build_root, wait_pid_gone

UUID = 'banger@banger.dev'
SHELL_START_TIMEOUT = 120
TIMEOUT = 120
BOOT_TIMEOUT = 400
BANGER = os.path.join(build_root(), 'src', 'cli', 'banger')
ARTEFACTS = os.path.join(build_root(), 'meson-logs', 'gnome-shell')

# Shell log lines that fail a test: anything JS reports, GLib criticals and
# warnings, and whatever names the extension.
BAD_LOG_WORDS = ('JS ERROR', 'JS WARNING', 'CRITICAL', 'Gjs-WARNING', 'Gjs-CRITICAL',
                 'GLib-GObject-WARNING', 'Gjs-Console-WARNING', UUID, 'banger')


def wait_until(predicate, timeout, what):
    """Re-checks @predicate (a read of the shell's or bangerd's state) until
    it holds; fails after @timeout seconds. The short pause between reads
    only bounds the load this puts on the machine."""
    try:
        return system_bus.wait_until(predicate, timeout, what, interval=0.05)
    except TimeoutError as e:
        # A failure of the case (what it checks did not happen), not an error.
        raise AssertionError(str(e)) from None


class ShellWorld(unittest.TestCase):
    """setUp starts the world; self.eval() runs JS in the shell."""

    # extra keys for the extension's settings section of the keyfile
    extension_settings = {}
    # extra environment for bangerd (and everything else in the world)
    bangerd_env = {}

    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory(prefix='banger-gs-')
        self.tmpdir = self._tmp.name
        os.chmod(self.tmpdir, 0o755)
        self.addCleanup(self._tmp.cleanup)
        self.marker = 'BANGER_GS_WORLD=' + self.tmpdir

        self.system = SystemBus(self.tmpdir)
        self.system.start()
        self.addCleanup(self.system.stop)
        env = dict(os.environ)
        env['BANGER_AGENT'] = os.path.join(build_root(), 'src', 'agent', 'banger-agent')
        env['BANGER_ACCEL'] = 'tcg'
        env['BANGER_GS_WORLD'] = self.tmpdir
        env.update(self.bangerd_env)
        self.session = SessionBus(self.tmpdir, system_bus_address=self.system.address,
                                  bangerd_args=['-vv'], env=env)
        self.session.start()
        self.addCleanup(self._stop_session)
        self.env = dict(self.session.env)
        self.env['LC_ALL'] = 'C.UTF-8'

        self._install_extension()
        self._write_settings()
        self._start_shell()
        self.conn = Gio.DBusConnection.new_for_address_sync(
            self.session.address,
            Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT |
            Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION, None, None)
        self.addCleanup(self.conn.close_sync, None)
        self._wait_shell_ready()

    # ---- setup -------------------------------------------------------------

    def _install_extension(self):
        destdir = os.path.join(self.tmpdir, 'destdir')
        r = subprocess.run(['meson', 'install', '-C', build_root(), '--no-rebuild', '--quiet',
                            '--destdir', destdir, '--tags', 'gnome-shell'],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        found = glob.glob(os.path.join(destdir, '**', 'gnome-shell', 'extensions', UUID),
                          recursive=True)
        self.assertEqual(len(found), 1, found)
        self.installed = found[0]
        dest = os.path.join(self.env['XDG_DATA_HOME'], 'gnome-shell', 'extensions', UUID)
        shutil.copytree(self.installed, dest)

    def _write_settings(self):
        path = os.path.join(self.env['XDG_CONFIG_HOME'], 'glib-2.0', 'settings')
        os.makedirs(path, exist_ok=True)
        ext = dict({'long-job-seconds': 'uint32 0'}, **self.extension_settings)
        with open(os.path.join(path, 'keyfile'), 'w') as f:
            f.write('[org/gnome/shell]\n'
                    "enabled-extensions=['%s']\n"
                    'disable-user-extensions=false\n'
                    "welcome-dialog-last-shown-version='999'\n\n"
                    '[org/gnome/shell/extensions/banger]\n' % UUID)
            for key, value in ext.items():
                f.write('%s=%s\n' % (key, value))

    def _start_shell(self):
        env = dict(self.env)
        env.update({'XDG_CURRENT_DESKTOP': 'GNOME', 'NO_AT_BRIDGE': '1',
                    'GSETTINGS_BACKEND': 'keyfile'})
        # G_DEBUG=fatal-criticals (meson's test environment, meant for
        # banger's own programs) would make the shell abort on its own
        # criticals, e.g. mutter's at shutdown; the log check after start-up
        # (new_log_lines) fails a case on any critical instead, and says
        # which.
        for var in ('DISPLAY', 'WAYLAND_DISPLAY', 'G_DEBUG'):
            env.pop(var, None)
        self.shell_log_path = os.path.join(self.tmpdir, 'gnome-shell.log')
        self._shell_log = open(self.shell_log_path, 'wb')
        self.shell = subprocess.Popen(
            ['gnome-shell', '--headless', '--wayland', '--no-x11',
             '--virtual-monitor', '1280x800', '--unsafe-mode'],
            stdin=subprocess.DEVNULL, stdout=self._shell_log, stderr=subprocess.STDOUT, env=env)
        self.addCleanup(self._stop_shell)

    def _wait_shell_ready(self):
        def extension_state():
            if self.shell.poll() is not None:
                raise AssertionError('gnome-shell exited %d:\n%s' %
                                     (self.shell.returncode, self.shell_log()))
            try:
                info = self.call('org.gnome.Shell', '/org/gnome/Shell',
                                 'org.gnome.Shell.Extensions', 'GetExtensionInfo',
                                 GLib.Variant('(s)', (UUID,)))[0]
            except GLib.Error:
                return None  # the shell is not on the bus yet
            return info if info.get('state') not in (None, 0, 6) else None
        info = wait_until(extension_state, SHELL_START_TIMEOUT, 'the extension to load')
        self.assertEqual(info['state'], 1, info)  # 1: ENABLED (ACTIVE)
        self.assertEqual(info.get('error', ''), '', info)
        wait_until(lambda: self.eval('Main.layoutManager._startingUp') is False,
                   SHELL_START_TIMEOUT, 'the end of start-up')
        # Root's session starts in the overview, with a "privileged user"
        # notification: neither belongs in the screenshots.
        self.eval('Main.overview.hide(); '
                  'Main.messageTray.getSources().forEach(s => s.destroy()); true')
        wait_until(lambda: self.eval('!Main.overview.visible && !Main.overview.animationInProgress'),
                   TIMEOUT, 'the overview to close')
        self.log_mark = len(self.shell_log())

    # ---- teardown ----------------------------------------------------------

    def _stop_shell(self):
        if self.shell.poll() is None:
            self.shell.terminate()
            try:
                self.shell.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.shell.kill()
                self.shell.wait()
        self._shell_log.close()
        if self._outcome_failed():
            sys.stderr.write('===== gnome-shell =====\n' + self.shell_log()[-20000:])

    def _stop_session(self):
        self.session.kill_vmms()
        self.session.stop()
        if self._outcome_failed():
            sys.stderr.write('===== session bus and bangerd =====\n' + self.session.log())
        # Whatever still carries this world's marker (a helper the shell
        # started that outlived it) is ended by its pid.
        for pid in self._marked_pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            wait_pid_gone(pid, 10)

    def _marked_pids(self):
        pids = []
        for entry in os.listdir('/proc'):
            if not entry.isdigit() or int(entry) == os.getpid():
                continue
            try:
                with open('/proc/%s/environ' % entry, 'rb') as f:
                    if self.marker.encode() + b'\0' in f.read():
                        pids.append(int(entry))
            except OSError:
                pass
        return pids

    def _outcome_failed(self):
        outcome = getattr(self, '_outcome', None)
        if outcome is None:
            return False
        result = getattr(outcome, 'result', None)
        errors = getattr(result, 'errors', []) + getattr(result, 'failures', [])
        return bool(errors) or not getattr(outcome, 'success', True)

    # ---- helpers -----------------------------------------------------------

    def shell_log(self):
        with open(self.shell_log_path, errors='replace') as f:
            return f.read()

    def new_log_lines(self):
        """Lines the shell logged since start-up finished that are bad."""
        text = self.shell_log()[self.log_mark:]
        return [l for l in text.splitlines() if any(w in l for w in BAD_LOG_WORDS)]

    def call(self, dest, path, iface, method, args=None, timeout=60000):
        reply = self.conn.call_sync(dest, path, iface, method, args, None,
                                    Gio.DBusCallFlags.NONE, timeout, None)
        return reply.unpack()

    def eval(self, code):
        """Runs @code in the shell; returns its value (JSON round trip)."""
        ok, result = self.call('org.gnome.Shell', '/org/gnome/Shell', 'org.gnome.Shell',
                               'Eval', GLib.Variant('(s)', (code,)))
        if not ok:
            raise AssertionError('Eval failed: %s\ncode: %s' % (result, code))
        return json.loads(result) if result else None

    def ext(self, code):
        """Runs @code with `ext` (the extension's state object) and `ind`
        (its indicator) in scope."""
        return self.eval("(() => { const ext = Main.extensionManager.lookup('%s').stateObj; "
                         'const ind = ext._indicator; %s })()' % (UUID, code))

    def menu_state(self):
        return self.ext('return ind.debugState();')

    def banger(self, *args, timeout=TIMEOUT, check=True):
        r = subprocess.run([BANGER] + list(args), env=self.env, capture_output=True, text=True,
                           timeout=timeout, stdin=subprocess.DEVNULL)
        if check:
            self.assertEqual(r.returncode, 0, 'banger %s: %s%s' % (' '.join(args), r.stdout,
                                                                    r.stderr))
        return r

    def vms(self):
        return {vm['name']: vm for vm in json.loads(self.banger('vm', 'list', '--json').stdout)}

    def screenshot(self, name, area=None):
        """Saves a PNG under meson-logs/gnome-shell/ (kept as an artefact)."""
        os.makedirs(ARTEFACTS, exist_ok=True)
        path = os.path.join(ARTEFACTS, name)
        if area:
            x, y, w, h = (int(v) for v in area)
            ok, used = self.call('org.gnome.Shell.Screenshot', '/org/gnome/Shell/Screenshot',
                                 'org.gnome.Shell.Screenshot', 'ScreenshotArea',
                                 GLib.Variant('(iiiibs)', (x, y, w, h, False, path)))
        else:
            ok, used = self.call('org.gnome.Shell.Screenshot', '/org/gnome/Shell/Screenshot',
                                 'org.gnome.Shell.Screenshot', 'Screenshot',
                                 GLib.Variant('(bbs)', (False, False, path)))
        self.assertTrue(ok, used)
        with open(used, 'rb') as f:
            self.assertEqual(f.read(8), b'\x89PNG\r\n\x1a\n')
        return used
