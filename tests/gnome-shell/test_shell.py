#!/usr/bin/python3
"""banger's GNOME Shell extension inside a real, headless GNOME Shell 43,
against the real bangerd (tests/gnome-shell/shellworld.py builds the world).
The menu is driven through the shell's own Eval (unsafe mode), and what the
extension did is checked on bangerd's side (the CLI, the bus).

One meson test per case (tests/gnome-shell/meson.build)."""

import http.server
import json
import os
import select
import signal
import subprocess
import sys
import threading
import unittest
import urllib.error
import urllib.request

from gi.repository import GLib

from shellworld import BOOT_TIMEOUT, TIMEOUT, UUID, ShellWorld, wait_until

sys.path.insert(0, os.path.join(os.environ['BANGER_SOURCE_ROOT'], 'tests', 'oci'))
import ocitest  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


class MenuWorld(ShellWorld):
    """Helpers shared by the test classes below."""

    # "Open Terminal" and "Show Log" run fake-terminal.py instead of a
    # terminal: it appends its arguments to $BANGER_GS_WORLD/terminal.log.
    @property
    def terminal_log(self):
        return os.path.join(self.tmpdir, 'terminal.log')

    @property
    def extension_settings(self):
        return {'terminal-command': "'%s'" % self.fake_terminal}

    @property
    def fake_terminal(self):
        return os.path.join(os.environ['BANGER_SOURCE_ROOT'], 'tests', 'gnome-shell',
                            'fake-terminal.py')

    def row(self, name):
        rows = [r for r in self.menu_state()['rows'] if r['name'] == name]
        return rows[0] if rows else None

    def vm_action(self, name, action):
        """Opens the menu and the VM's submenu and chooses @action."""
        self.ext("ind.menu.open(false); "
                 "const row = [...ind._vmRows.values()].find(r => r.vm.name === '%s'); "
                 "row.setSubmenuShown(true); row.vmActions['%s'].activate(null); return true;"
                 % (name, action))
        self.wait_menu_closed()

    def wait_menu_closed(self):
        """Choosing an item closes the menu with an animation: the next
        step waits until it is over, as a user would."""
        wait_until(lambda: self.ext('return !ind.menu.isOpen && !ind.menu.actor.visible;'),
                   TIMEOUT, 'the menu to close')

    def unexpected(self):
        return [n for n in self.ext('return ext.debugNotifications;')
                if 'unexpectedly' in n['title']]

    def terminal_calls(self):
        try:
            with open(self.terminal_log) as f:
                return [json.loads(l) for l in f]
        except FileNotFoundError:
            return []

    def counters(self):
        """The extension's live signal connections, the model module's
        subscriptions/watches/instances, and the shell's match rules on the
        bus (dbus-daemon's own count, not the extension's word)."""
        ours = self.eval("(() => { const me = Main.extensionManager.lookup('%s'); "
                         "return [me.imports.extension.debugConnections, "
                         "Object.assign({}, me.imports.model.debugCounters)]; })()" % UUID)
        owner = self.call('org.freedesktop.DBus', '/org/freedesktop/DBus',
                          'org.freedesktop.DBus', 'GetNameOwner',
                          GLib.Variant('(s)', ('org.gnome.Shell',)))[0]
        stats = self.call('org.freedesktop.DBus', '/org/freedesktop/DBus',
                          'org.freedesktop.DBus.Debug.Stats', 'GetConnectionStats',
                          GLib.Variant('(s)', (owner,)))[0]
        return ours + [stats['MatchRules']]

    def images(self):
        return json.loads(self.banger('image', 'list', '--json').stdout)


class ShellTest(MenuWorld):

    def test_active_offers_to_start_bangerd(self):
        """ACTIVE with no error; bangerd not running yet: the menu says so,
        and its "Start bangerd" item D-Bus activates it."""
        self.assertIsNone(self.session.bangerd_pid())
        state = self.menu_state()
        self.assertTrue(state['daemonShown'], state)
        self.assertIn('banger-offline', state['styles'])
        self.assertEqual(state['rows'], [])
        self.ext('ind.menu.open(false); ind._startDaemonItem.activate(null); return true;')
        self.wait_menu_closed()
        wait_until(lambda: not self.menu_state()['daemonShown'], TIMEOUT, 'bangerd to come up')
        self.assertIsNotNone(self.session.bangerd_pid())
        state = self.menu_state()
        self.assertNotIn('banger-offline', state['styles'])
        self.assertIn('banger-idle', state['styles'])  # dimmed: nothing runs
        self.assertEqual(state['count'], '')
        # The image picker offers the default image (built on first start).
        self.assertIn('minimal (default)', state['images'])
        # bangerd restarting: the extension follows it by itself.
        self.banger('vm', 'create', 'keep')
        wait_until(lambda: [r['name'] for r in self.menu_state()['rows']] == ['keep'],
                   TIMEOUT, 'the new VM row')
        self.session.stop_bangerd(signal.SIGKILL)
        wait_until(lambda: self.menu_state()['daemonShown'], TIMEOUT, 'bangerd gone')
        self.assertEqual(self.menu_state()['rows'], [])
        self.banger('vm', 'list')  # any client activates it again
        wait_until(lambda: [r['name'] for r in self.menu_state()['rows']] == ['keep'],
                   TIMEOUT, 'the VM row after the restart')
        self.assertEqual(self.new_log_lines(), [])


    def test_error_notification_has_bangerds_message(self):
        """A call that bangerd refuses: a notification with its message."""
        self.banger('vm', 'create', 'idle')
        wait_until(lambda: [r['name'] for r in self.menu_state()['rows']] == ['idle'],
                   TIMEOUT, 'the VM row')
        self.ext("ind.menu.open(false); const row = ind._vmRows.values().next().value; "
                 "row.setSubmenuShown(true); row.vmActions.stop.activate(null); return true;")
        notes = wait_until(lambda: self.ext('return ext.debugNotifications;'), TIMEOUT,
                           'the error notification')
        self.assertEqual(len(notes), 1, notes)
        # bangerd's own words (BadState: the VM is not running), without the
        # D-Bus error name in front
        self.assertNotIn('GDBus.Error', notes[0]['body'])
        self.assertNotIn('org.banger.Error', notes[0]['body'])
        self.assertIn('idle', notes[0]['body'])
        self.assertIn('created', notes[0]['body'])
        # and it is a real notification in the shell's message tray
        titles = self.eval('Main.messageTray.getSources().flatMap(s => '
                           's.notifications.map(n => n.bannerBodyText))')
        self.assertIn(notes[0]['body'], titles)
        self.assertEqual(self.vms()['idle']['state'], 'created')
        # "Copy SSH Command" (shown for running VMs; chosen here directly):
        # the clipboard, read back through the shell's own St.Clipboard.
        self.vm_action('idle', 'ssh')
        self.eval("imports.gi.St.Clipboard.get_default().get_text("
                  "imports.gi.St.ClipboardType.CLIPBOARD, "
                  "(c, text) => { globalThis.bangerTestClipboard = text; }); true")
        clip = wait_until(lambda: self.eval('globalThis.bangerTestClipboard ?? null'), TIMEOUT,
                          'the clipboard')
        self.assertEqual(clip, 'banger vm ssh idle')
        self.assertEqual(self.new_log_lines(), [])

    def test_pull_job_progress(self):
        """A pull from a loopback registry: the job row with its progress
        and Cancel button, then a notification that it is done."""
        registry = ocitest.Registry(self.tmpdir)
        self.addCleanup(registry.stop)
        layout = ocitest.build_small_image(self.tmpdir, 'small', size=4 * 1024 * 1024, layers=3)
        registry.push(layout, 'latest', 'test/small:1')
        ref = '%s/test/small:1' % registry.host
        # bangerd first, and the extension connected to it: a pull that
        # activated bangerd could end before the extension has loaded.
        self.banger('version')
        wait_until(lambda: not self.menu_state()['daemonShown'], TIMEOUT, 'bangerd')
        self.banger('image', 'pull', ref, timeout=300)
        title = 'Pulling image %s' % ref
        texts = self.ext('return ind.debugJobTexts;')
        shown = [t for t in texts if t.startswith(title + ' | ')]
        self.assertTrue(shown, texts)
        # Progress as a percentage and in bytes, as bangerd reported it.
        self.assertTrue(any('%' in t and ' of ' in t for t in shown), shown)
        notes = wait_until(lambda: [n for n in self.ext('return ext.debugNotifications;')
                                    if n['title'] == 'Done: ' + title], TIMEOUT,
                           'the "done" notification')
        self.assertEqual(len(notes), 1, notes)
        # The finished job's row is gone; the image is in the picker.
        state = wait_until(lambda: (lambda s: s if not s['jobs'] else None)(self.menu_state()),
                           TIMEOUT, 'the job row to go')
        self.assertTrue(any(ref.split('/')[-1].split(':')[0] in i or ref in i
                            for i in state['images']), state['images'])
        self.assertEqual(self.new_log_lines(), [])


    def test_real_guest_from_the_menu(self):
        """`vm create` + `vm start` of a real minimal guest: count 1, row
        running (screenshots); "Suspend" suspends it and "Resume" resumes it
        (`banger vm list` agrees); "Stop" in the menu stops it (`banger vm list`
        agrees); "New Sandbox" boots another; its VMM killed from outside
        gives the "stopped unexpectedly" notification; "Delete…" asks first."""
        self.banger('vm', 'create', 'dev')
        self.banger('vm', 'start', 'dev', timeout=BOOT_TIMEOUT)
        wait_until(lambda: self.menu_state()['count'] == '1', TIMEOUT, 'the count to be 1')
        row = self.row('dev')
        self.assertEqual(row['state'], 'running')
        self.assertIn('minimal', row['details'])
        self.assertEqual(sorted(row['actions']),
                         ['delete', 'log', 'restart', 'ssh', 'stop', 'suspend', 'terminal'])
        self.assertNotIn('banger-idle', self.menu_state()['styles'])

        # No banner (the default image's build just ended) over the pictures.
        self.eval('Main.messageTray.getSources().forEach(s => s.destroy()); true')
        area = self.ext('const [x, y] = ind.get_transformed_position(); '
                        'const [w, h] = ind.get_transformed_size(); return [x, y, w, h];')
        self.screenshot('indicator.png', area)
        self.ext("ind.menu.open(false); const row = ind._vmRows.values().next().value; "
                 "row.setSubmenuShown(true); return true;")
        wait_until(lambda: self.ext('return ind.menu.isOpen;'), TIMEOUT, 'the menu to open')
        self.screenshot('menu-full.png')
        # The menu with the panel above it, for docs/gnome-shell.md; measured
        # after the full picture, when the submenu has its final size.
        box = self.ext('const a = ind.menu.actor; const [x, y] = a.get_transformed_position(); '
                       'const [w, h] = a.get_transformed_size(); return [x, y, w, h];')
        self.screenshot('menu.png', (box[0], 0, box[2], box[1] + box[3]))

        # Suspend and Resume from the menu (issue 13, item 2).
        self.vm_action('dev', 'suspend')
        wait_until(lambda: self.vms()['dev']['state'] == 'suspended', BOOT_TIMEOUT,
                   '`banger vm list` to say suspended')
        row = wait_until(lambda: (lambda r: r if r['state'] == 'suspended' else None)(
            self.row('dev')), TIMEOUT, 'the row to say suspended')
        self.assertEqual(sorted(row['actions']), ['delete', 'log', 'resume', 'stop'])
        self.vm_action('dev', 'resume')
        wait_until(lambda: self.vms()['dev']['state'] == 'running', BOOT_TIMEOUT,
                   '`banger vm list` to say running again')
        wait_until(lambda: self.row('dev')['state'] == 'running', TIMEOUT, 'the row')
        self.assertEqual(self.unexpected(), [])

        self.vm_action('dev', 'stop')
        wait_until(lambda: self.vms()['dev']['state'] == 'stopped', TIMEOUT,
                   '`banger vm list` to say stopped')
        wait_until(lambda: self.row('dev')['state'] == 'stopped', TIMEOUT, 'the row')
        self.assertEqual(self.menu_state()['count'], '')
        self.assertIn('banger-idle', self.menu_state()['styles'])
        # A stop that was asked for is not "unexpected".
        self.assertEqual(self.unexpected(), [])

        self.vm_action('dev', 'log')
        wait_until(self.terminal_calls, TIMEOUT, 'the terminal to be launched')
        self.assertEqual(self.terminal_calls(), [['banger', 'vm', 'logs', '--follow', 'dev']])

        # New Sandbox → the default image, booted.
        self.ext("ind.menu.open(false); ind._newMenu.setSubmenuShown(true); "
                 "ind._newMenu.menu._getMenuItems().find(i => "
                 "i.label.text === 'minimal (default)').activate(null); return true;")
        self.wait_menu_closed()
        wait_until(lambda: (self.row('sandbox-1') or {}).get('state') == 'running',
                   BOOT_TIMEOUT, 'the new sandbox to run')
        self.assertEqual(self.vms()['sandbox-1']['state'], 'running')
        self.assertEqual(self.menu_state()['count'], '1')
        # running first
        self.assertEqual([r['name'] for r in self.menu_state()['rows']], ['sandbox-1', 'dev'])

        self.vm_action('sandbox-1', 'terminal')
        wait_until(lambda: len(self.terminal_calls()) == 2, TIMEOUT, 'the second terminal')
        self.assertEqual(self.terminal_calls()[1], ['banger', 'vm', 'ssh', 'sandbox-1'])

        # Its VMM dies (killed from outside): bangerd says stopped, without
        # a Stop; the extension calls that unexpected.
        vm_id = self.vms()['sandbox-1']['id']
        with open(os.path.join(self.session.data_dir, 'vms', vm_id, 'qemu.pid')) as f:
            os.kill(int(f.read().strip()), signal.SIGKILL)
        notes = wait_until(self.unexpected, TIMEOUT, 'the notification')
        self.assertEqual([n['title'] for n in notes], ['Sandbox “sandbox-1” stopped unexpectedly'])
        self.assertEqual(self.row('sandbox-1')['state'], 'stopped')

        # Delete… asks; Cancel keeps the VM, Delete removes it.
        self.vm_action('sandbox-1', 'delete')
        wait_until(lambda: self.ext('return ind.confirmDialog?.state === imports.ui.modalDialog.State.OPENED;'), TIMEOUT,
                   'the confirmation dialog')
        self.ext("ind.confirmDialog.buttonLayout.get_children()[0].emit('clicked', 1); "
                 'return true;')
        wait_until(lambda: self.ext('return !ind.confirmDialog;'), TIMEOUT, 'the dialog to close')
        self.assertIn('sandbox-1', self.vms())
        self.vm_action('sandbox-1', 'delete')
        wait_until(lambda: self.ext('return ind.confirmDialog?.state === imports.ui.modalDialog.State.OPENED;'), TIMEOUT,
                   'the confirmation dialog')
        self.ext("ind.confirmDialog.buttonLayout.get_children()[1].emit('clicked', 1); "
                 'return true;')
        wait_until(lambda: 'sandbox-1' not in self.vms(), TIMEOUT, 'the VM to be deleted')
        wait_until(lambda: self.row('sandbox-1') is None, TIMEOUT, 'its row to go')
        self.assertEqual(self.new_log_lines(), [])


    def test_enable_disable_50_times(self):
        """disable()/enable() 50 times: nothing left behind (signal
        connections, D-Bus subscriptions and name watches, match rules on
        the bus, notification sources), no warning in the shell's log, and
        the extension still follows bangerd afterwards."""
        self.banger('vm', 'create', 'one')
        wait_until(lambda: self.row('one'), TIMEOUT, 'the row')
        # a notification source exists (an error), so its cleanup counts too
        self.vm_action('one', 'stop')
        wait_until(lambda: self.ext('return ext.debugNotifications;'), TIMEOUT, 'notification')
        enabled = self.counters()
        sources = self.eval('Main.messageTray.getSources().length')
        self.eval("Main.extensionManager._callExtensionDisable('%s'); true" % UUID)
        disabled = self.counters()
        self.assertEqual(disabled[:2], [0, {'subscriptions': 0, 'watches': 0, 'models': 0}])
        # The bus's own count: the model's four signal subscriptions and its
        # name watch are five distinct match rules, all gone after disable().
        # (GDBus shares identical rules within a connection, so a rule leaked
        # by disable() would show here as a smaller difference, not later as
        # growth.)
        self.assertEqual(enabled[2] - disabled[2], 5, (enabled, disabled))
        self.assertEqual(self.eval('Main.messageTray.getSources().length'), sources - 1)
        self.assertIsNone(self.eval("Main.panel.statusArea['%s'] ?? null" % UUID))
        self.eval("Main.extensionManager._callExtensionEnable('%s'); true" % UUID)
        self.assertEqual(self.counters(), enabled[:2] + [enabled[2]])
        # 49 more through the shell's own enable/disable paths; every other
        # one with the menu open, or fading out after a close (what a click
        # just before a screen lock does). The menu is disabled only once
        # it has been drawn open, as for a person: opening and destroying
        # it within one frame makes GNOME Shell 43 itself lay out the
        # destroyed menu (criticals from boxpointer.js, any extension).
        for i in range(49):
            if i % 2:
                self.ext('ind.menu.open(false); return true;')
                wait_until(lambda: self.ext('return ind.menu.actor.visible && '
                                            'ind.menu.actor.has_allocation();'),
                           TIMEOUT, 'the menu to be drawn')
            close = ('ind.menu.close(imports.ui.boxpointer.PopupAnimation.FULL);'
                     if i % 4 == 1 else '')
            self.ext("%s Main.extensionManager._callExtensionDisable('%s'); "
                     "Main.extensionManager._callExtensionEnable('%s'); return true;"
                     % (close, UUID, UUID))
        self.assertEqual(self.counters(), enabled)
        self.eval("Main.extensionManager._callExtensionDisable('%s'); true" % UUID)
        self.assertEqual(self.counters(), disabled)
        self.assertEqual(self.eval('Main.messageTray.getSources().length'), sources - 1)
        self.eval("Main.extensionManager._callExtensionEnable('%s'); true" % UUID)
        self.assertEqual(self.counters(), enabled)
        # and through the D-Bus API (what gnome-extensions does), once more
        for method, present in (('DisableExtension', False), ('EnableExtension', True)):
            self.call('org.gnome.Shell', '/org/gnome/Shell', 'org.gnome.Shell.Extensions',
                      method, GLib.Variant('(s)', (UUID,)))
            wait_until(lambda: self.eval("Main.panel.statusArea['%s'] !== undefined" % UUID)
                       == present, TIMEOUT, 'the indicator after ' + method)
            self.assertEqual(self.counters(), enabled if present else disabled)
        info = self.call('org.gnome.Shell', '/org/gnome/Shell', 'org.gnome.Shell.Extensions',
                         'GetExtensionInfo', GLib.Variant('(s)', (UUID,)))[0]
        self.assertEqual((info['state'], info.get('error', '')), (1, ''))
        # still live: a new VM shows up
        self.banger('vm', 'create', 'two')
        wait_until(lambda: self.row('two'), TIMEOUT, 'the new row')
        self.assertEqual(self.counters(), enabled)
        self.assertEqual(self.new_log_lines(), [])


    def test_cancel_job_from_menu(self):
        """A pull held at its first blob by a gate in front of the registry
        (so it is still running whatever the machine's speed): its row is in
        the open menu (screenshot), and the row's Cancel button ends it."""
        registry = ocitest.Registry(self.tmpdir)
        self.addCleanup(registry.stop)
        layout = ocitest.build_small_image(self.tmpdir, 'held', size=1024 * 1024, layers=2)
        registry.push(layout, 'latest', 'test/held:1')
        gate = BlobGate(registry.host)
        self.addCleanup(gate.stop)
        ref = '%s/test/held:1' % gate.host
        self.banger('version')  # activates bangerd
        wait_until(lambda: not self.menu_state()['daemonShown'], TIMEOUT, 'bangerd')
        job = self.call('org.banger.Manager', '/org/banger/Manager', 'org.banger.Manager',
                        'PullImage', GLib.Variant('(sa{sv})', (ref, {})))[0]
        self.assertTrue(gate.blob_asked.wait(TIMEOUT), 'the pull never asked for a blob')
        jobs = wait_until(lambda: self.menu_state()['jobs'], TIMEOUT, 'the job row')
        self.assertEqual(jobs[0]['title'], 'Pulling image %s' % ref)
        self.eval('Main.messageTray.getSources().forEach(s => s.destroy()); true')
        self.ext('ind.menu.open(false); return true;')
        wait_until(lambda: self.ext('return ind.menu.isOpen;'), TIMEOUT, 'the menu to open')
        self.screenshot('menu-job.png')
        self.ext("[...ind._jobRows.values()][0].cancelButton.emit('clicked', 1); return true;")
        wait_until(lambda: not self.menu_state()['jobs'], TIMEOUT, 'the job row to go')
        gate.open()
        # bangerd's side: the job says cancelled (while it is still
        # exported) and no image was registered.
        try:
            state = self.call('org.banger.Manager', job, 'org.freedesktop.DBus.Properties',
                              'Get', GLib.Variant('(ss)', ('org.banger.Job', 'State')))[0]
            self.assertEqual(state, 'cancelled')
        except GLib.Error as e:
            self.assertIn('UnknownObject', str(e))
        self.assertEqual([i['name'] for i in self.images()], [])
        notes = self.ext('return ext.debugNotifications;')
        self.assertEqual([n for n in notes if n['title'].startswith('Done')], [], notes)
        self.assertEqual(self.new_log_lines(), [])


class ShellErrorTest(MenuWorld):
    """bangerd's QEMU is /bin/false: every start fails, cheaply."""

    bangerd_env = {'BANGER_QEMU': '/bin/false'}

    def test_vm_in_error_shows_as_such(self):
        """A start that fails: the VM is in `error`; its row says so with
        LastError, the icon turns red, and the user is told why."""
        self.banger('vm', 'create', 'broken')
        wait_until(lambda: self.row('broken'), TIMEOUT, 'the row')
        self.vm_action('broken', 'start')
        row = wait_until(lambda: (lambda r: r if r and r['state'] == 'error' else None)(
            self.row('broken')), BOOT_TIMEOUT, 'the error state')
        path = self.call('org.banger.Manager', '/org/banger/Manager', 'org.banger.Manager',
                         'FindVM', GLib.Variant('(s)', ('broken',)))[0]
        last_error = self.call('org.banger.Manager', path, 'org.freedesktop.DBus.Properties',
                               'Get', GLib.Variant('(ss)', ('org.banger.VM', 'LastError')))[0]
        self.assertTrue(last_error)
        self.assertIn(last_error, row['details'])
        self.assertEqual(sorted(row['actions']), ['delete', 'log', 'start'])
        state = self.menu_state()
        self.assertIn('banger-error', state['styles'])
        self.assertEqual(state['count'], '')
        notes = wait_until(self.unexpected, TIMEOUT, 'the notification')
        self.assertEqual(notes[0]['title'], 'Sandbox “broken” stopped unexpectedly')
        self.assertIn(notes[0]['body'], row['details'])
        # The failed Start call itself is reported too, with bangerd's words.
        calls = wait_until(lambda: [n for n in self.ext('return ext.debugNotifications;')
                                    if n['title'] == 'banger'], TIMEOUT, 'the call error')
        self.assertNotIn('GDBus.Error', calls[0]['body'])
        self.eval('Main.messageTray.getSources().forEach(s => s.destroy()); true')
        self.ext('ind.menu.open(false); return true;')
        wait_until(lambda: self.ext('return ind.menu.isOpen;'), TIMEOUT, 'the menu to open')
        self.screenshot('menu-error.png')
        self.assertEqual(self.new_log_lines(), [])



class PrefsTest(MenuWorld):
    """prefs.js under gjs, GTK 4 and libadwaita on the headless shell's own
    Wayland display (tests/gnome-shell/prefs-test.js)."""

    def read_line(self, proc, timeout=TIMEOUT):
        ready, _, _ = select.select([proc.stdout], [], [], timeout)
        self.assertTrue(ready, 'prefs-test.js said nothing for %d s' % timeout)
        line = proc.stdout.readline()
        self.assertTrue(line, 'prefs-test.js exited')
        return line.rstrip('\n')

    def test_preferences_window(self):
        """The window shows every setting with its value; flipping "Show
        stopped sandboxes" there changes the setting and the shell's menu."""
        self.banger('vm', 'create', 'parked')
        wait_until(lambda: self.row('parked'), TIMEOUT, 'the row')
        env = dict(self.env)
        env.update({
            'WAYLAND_DISPLAY': 'wayland-0', 'GDK_BACKEND': 'wayland',
            'GSETTINGS_BACKEND': 'keyfile', 'NO_AT_BRIDGE': '1', 'GTK_A11Y': 'none',
            'BANGER_EXT_DIR': os.path.join(self.env['XDG_DATA_HOME'], 'gnome-shell',
                                           'extensions', UUID),
            'BANGER_PREFS_STUB': os.path.join(HERE, 'prefs-stub'),
        })
        # (criticals are read from its stderr below, like the shell's)
        for var in ('DISPLAY', 'G_DEBUG'):
            env.pop(var, None)
        errors = open(os.path.join(self.tmpdir, 'prefs-test.log'), 'w+')
        self.addCleanup(errors.close)
        proc = subprocess.Popen(['gjs', os.path.join(HERE, 'prefs-test.js')], env=env,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errors,
                                text=True)

        def stop():
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            proc.stdin.close()
            proc.stdout.close()
        self.addCleanup(stop)
        line = self.read_line(proc)
        self.assertTrue(line.startswith('ready '), line)
        state = json.loads(line[len('ready '):])
        self.assertEqual(state['rows'], ['Show stopped sandboxes', 'Terminal command',
                                         'Notifications', 'Long jobs'])
        self.assertEqual(state['switches'], [True, True])
        self.assertEqual(state['entries'], [self.fake_terminal])
        self.assertEqual(state['spins'], [0])
        self.screenshot('prefs.png')
        proc.stdin.write('toggle\n')
        proc.stdin.flush()
        line = self.read_line(proc)
        self.assertTrue(line.startswith('toggled '), line)
        self.assertFalse(json.loads(line[len('toggled '):])['show-stopped'])
        # the shell reads the same settings: the created VM leaves the menu
        wait_until(lambda: self.row('parked') is None, TIMEOUT, 'the row to be hidden')
        proc.stdin.write('quit\n')
        proc.stdin.flush()
        self.assertEqual(proc.wait(TIMEOUT), 0)
        errors.seek(0)
        bad = [l for l in errors.read().splitlines() if 'CRITICAL' in l or 'WARNING' in l]
        self.assertEqual(bad, [])
        self.assertEqual(self.new_log_lines(), [])


class BlobGate:
    """A loopback HTTP forwarder in front of docker-registry that holds
    every blob request until open() (or stop()); the rest passes at once."""

    def __init__(self, upstream):
        self.upstream = upstream
        self.blob_asked = threading.Event()
        self._open = threading.Event()
        gate = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = 'HTTP/1.1'

            def log_message(self, *args):
                pass

            def _forward(self, method):
                if '/blobs/' in self.path:
                    gate.blob_asked.set()
                    gate._open.wait(TIMEOUT * 2)
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() in ('accept', 'range', 'authorization')}
                req = urllib.request.Request('http://%s%s' % (gate.upstream, self.path),
                                             headers=headers, method=method)
                try:
                    resp = urllib.request.urlopen(req, timeout=TIMEOUT)
                except urllib.error.HTTPError as e:
                    resp = e
                body = resp.read() if method != 'HEAD' else b''
                self.send_response(resp.status)
                for k, v in resp.headers.items():
                    if k.lower() not in ('connection', 'transfer-encoding', 'content-length'):
                        self.send_header(k, v)
                self.send_header('Content-Length', resp.headers.get('Content-Length',
                                                                    str(len(body))))
                self.end_headers()
                try:
                    self.wfile.write(body)
                except OSError:
                    pass  # the puller gave up (cancelled)

            def do_GET(self):
                self._forward('GET')

            def do_HEAD(self):
                self._forward('HEAD')

        self.httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.httpd.daemon_threads = True
        self.host = '127.0.0.1:%d' % self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()

    def open(self):
        self._open.set()

    def stop(self):
        self._open.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join()


if __name__ == '__main__':
    unittest.main()
