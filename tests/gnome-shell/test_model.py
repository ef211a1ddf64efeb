#!/usr/bin/python3
"""The GNOME Shell extension's model (src/gnome-shell/model.js) under plain
gjs, against the real bangerd from the build tree, D-Bus activated on a
private session bus. The cases themselves are in model-test.js; this file
gives each one its world and cleans it up (VMMs by their pidfiles, the bus
and bangerd by pid). One meson test per case (tests/gnome-shell/meson.build).

No helper runs (the system bus address points nowhere): a guest boots
without a network device, so nothing but QEMU's own sockets is used."""

import os
import subprocess
import sys
import tempfile
import unittest

from session_bus import SessionBus, build_root

SRC = os.environ['BANGER_SOURCE_ROOT']
SCRIPT = os.path.join(SRC, 'tests', 'gnome-shell', 'model-test.js')
MODEL_DIR = os.path.join(SRC, 'src', 'gnome-shell')


class ModelTest(unittest.TestCase):
    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory(prefix='banger-gs-model-')
        self.addCleanup(self._tmp.cleanup)
        env = dict(os.environ)
        env['BANGER_AGENT'] = os.path.join(build_root(), 'src', 'agent', 'banger-agent')
        env['BANGER_ACCEL'] = 'tcg'
        self.session = SessionBus(self._tmp.name, bangerd_args=['-vv'], env=env)
        self.session.start()
        self.addCleanup(self._stop)

    def _stop(self):
        # VMMs outlive bangerd by design: end the ones this case started.
        self.session.kill_vmms()
        self.session.stop()

    def run_case(self, name, timeout=600):
        r = subprocess.run(['gjs', '-I', MODEL_DIR, SCRIPT, name], env=self.session.env,
                           capture_output=True, text=True, timeout=timeout)
        if r.returncode != 0:
            sys.stderr.write('===== session bus and bangerd =====\n' + self.session.log())
        self.assertEqual(r.returncode, 0, 'stdout:\n%s\nstderr:\n%s' % (r.stdout, r.stderr))
        # gjs prints warnings (e.g. a GObject critical) without failing
        self.assertNotIn('CRITICAL', r.stderr)
        self.assertNotIn('WARNING', r.stderr)

    def test_not_running_then_activated(self):
        self.run_case('test_not_running_then_activated')

    def test_vm_added_and_removed(self):
        self.run_case('test_vm_added_and_removed')

    def test_changes_while_loading(self):
        self.run_case('test_changes_while_loading')

    def test_state_changes_real_guest(self):
        self.run_case('test_state_changes_real_guest')

    def test_job_progress(self):
        self.run_case('test_job_progress')

    def test_daemon_killed_and_restarted(self):
        self.run_case('test_daemon_killed_and_restarted')


if __name__ == '__main__':
    unittest.main()
