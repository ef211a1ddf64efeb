"""Images, kernels and jobs over D-Bus: the build tree's bangerd activated on
a private session bus, the real busybox-static and host kernel, the image
checked with e2fsprogs' debugfs."""

import os
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import unittest

import gi
gi.require_version('Gio', '2.0')
from gi.repository import Gio, GLib  # noqa: E402

from session_bus import SessionBus, build_root, iterate_until  # noqa: E402

MANAGER = 'org.banger.Manager'
PATH = '/org/banger/Manager'


def remote_error(e):
    return Gio.DBusError.get_remote_error(e)


class ImagesTestCase(unittest.TestCase):
    agent = None  # path given to bangerd as BANGER_AGENT

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix='banger-images-')
        self.bus = SessionBus(self.tmp)
        self.bus.env['BANGER_AGENT'] = self.agent or os.path.join(
            build_root(), 'src', 'agent', 'banger-agent')
        self.bus.start()
        self.conn = self.bus.connect()
        self.ctx = GLib.MainContext.default()

    def tearDown(self):
        ok = not any(e for _, e in getattr(self._outcome, 'errors', []) if e) and \
            getattr(self._outcome, 'success', True)
        self.conn.close_sync(None)
        self.bus.stop_bangerd()
        self.bus.stop()
        if not ok:
            sys.stderr.write('--- bangerd log ---\n' + self.bus.log())
        shutil.rmtree(self.tmp, ignore_errors=True)

    def call(self, method, args, sig, iface='org.banger.Manager', path=PATH, timeout=60000):
        return self.conn.call_sync(MANAGER, path, iface, method,
                                   GLib.Variant(sig, args) if sig else None,
                                   None, Gio.DBusCallFlags.NONE, timeout, None).unpack()

    def managed(self):
        (objs,) = self.call('GetManagedObjects', None, None,
                            iface='org.freedesktop.DBus.ObjectManager')
        return objs

    def wait(self, cond, timeout=60):
        iterate_until(self.ctx, cond, timeout)
        self.assertTrue(cond(), 'timed out')

    def build(self, recipe, on_job=None, name=None):
        """BuildImage; returns (job path, Completed args, progress values seen)."""
        seen = {'completed': None, 'progress': []}

        def on_signal(conn, sender, path, iface, signal, params):
            if signal == 'Completed':
                seen['completed'] = params.unpack()
            elif signal == 'PropertiesChanged':
                changed = params.unpack()[1]
                if 'Progress' in changed:
                    seen['progress'].append(changed['Progress'])
        sub = self.conn.signal_subscribe(MANAGER, None, None, None, None,
                                         Gio.DBusSignalFlags.NONE, on_signal)
        opts = {'name': GLib.Variant('s', name)} if name else {}
        (job,) = self.call('BuildImage', (recipe, opts), '(sa{sv})')
        self.assertTrue(job.startswith('/org/banger/Manager/jobs/'))
        if on_job:
            on_job(job)
        self.wait(lambda: seen['completed'] is not None, timeout=60)
        self.conn.signal_unsubscribe(sub)
        return job, seen['completed'], seen['progress']

    def debugfs(self, image, request):
        return subprocess.run(['debugfs', '-R', request, image], capture_output=True,
                              text=True, check=True).stdout


class BuildTest(ImagesTestCase):
    def test_build_minimal(self):
        job, (success, message, result), progress = self.build('minimal')
        self.assertTrue(success, message)
        self.assertEqual(result, '/org/banger/Manager/images/minimal')
        objs = self.managed()
        img = objs[result]['org.banger.Image']
        self.assertGreater(img['SizeBytes'], 0)
        self.assertEqual(img['Source'], 'recipe:minimal')
        self.assertEqual(img['UsedBy'], [])
        # The job lingers after completion with its outcome.
        props = objs[job]['org.banger.Job']
        self.assertEqual(props['State'], 'succeeded')
        self.assertEqual(props['Progress'], 1.0)
        self.assertEqual(props['Operation'], 'build-image')
        self.assertEqual(props['StartedByUID'], os.getuid())
        self.assertEqual(progress[-1], 1.0)

        # The file system itself, read with e2fsprogs.
        rootfs = os.path.join(self.bus.data_dir, 'images', img['Id'], 'rootfs.ext4')
        bb = self.debugfs(rootfs, 'stat /bin/busybox')
        self.assertIn('Type: regular', bb)
        self.assertRegex(bb, r'Mode:\s+0755')
        sh = self.debugfs(rootfs, 'stat /bin/sh')
        self.assertIn('Type: symlink', sh)
        self.assertIn('Fast link dest: "/bin/busybox"', sh)
        agent = self.debugfs(rootfs, 'stat /.banger/agent')
        self.assertIn('Type: regular', agent)
        self.assertRegex(agent, r'Mode:\s+0755')
        self.assertRegex(self.debugfs(rootfs, 'stat /tmp'), r'Mode:\s+01777')
        passwd = self.debugfs(rootfs, 'cat /etc/passwd')
        self.assertTrue(passwd.startswith('root:x:0:0:'))
        subprocess.run(['e2fsck', '-fn', rootfs], check=True, capture_output=True)

        # Building it again: Exists, naming it.
        with self.assertRaises(GLib.Error) as cm:
            self.call('BuildImage', ('minimal', {}), '(sa{sv})')
        self.assertEqual(remote_error(cm.exception), 'org.banger.Error.Exists')
        self.assertIn('minimal', cm.exception.message)

    def test_unknown_recipe(self):
        with self.assertRaises(GLib.Error) as cm:
            self.call('BuildImage', ('nosuch', {}), '(sa{sv})')
        self.assertEqual(remote_error(cm.exception), 'org.banger.Error.NotFound')
        self.assertIn('nosuch', cm.exception.message)


class CancelTest(ImagesTestCase):
    def setUp(self):
        # The agent is read from a fifo: the build blocks there until the
        # test writes it, so the Cancel deterministically lands mid-build.
        self.fifo_dir = tempfile.mkdtemp(prefix='banger-fifo-')
        self.agent = os.path.join(self.fifo_dir, 'agent')
        os.mkfifo(self.agent)
        super().setUp()

    def tearDown(self):
        super().tearDown()
        shutil.rmtree(self.fifo_dir, ignore_errors=True)

    def test_cancel(self):
        def cancel_then_feed(job):
            self.call('Cancel', None, None, iface='org.banger.Job', path=job)

            def feed():
                with open(self.agent, 'wb') as f:
                    f.write(b'\x7fELF not really')
            threading.Thread(target=feed, daemon=True).start()
        job, (success, message, result), _ = self.build('minimal', on_job=cancel_then_feed)
        self.assertFalse(success)
        self.assertEqual(message, 'cancelled')
        self.assertEqual(result, '/')
        objs = self.managed()
        self.assertEqual(objs[job]['org.banger.Job']['State'], 'cancelled')
        self.assertFalse([p for p in objs if p.startswith('/org/banger/Manager/images/')])
        images = os.path.join(self.bus.data_dir, 'images')
        self.assertEqual(os.listdir(images) if os.path.isdir(images) else [], [])
        # Cancelling again: the job has ended.
        with self.assertRaises(GLib.Error) as cm:
            self.call('Cancel', None, None, iface='org.banger.Job', path=job)
        self.assertEqual(remote_error(cm.exception), 'org.banger.Error.BadState')


class UsageTest(ImagesTestCase):
    def test_delete_used_image_busy(self):
        _, (success, message, _), _ = self.build('minimal')
        self.assertTrue(success, message)
        (vm,) = self.call('CreateVM', ({'name': GLib.Variant('s', 'dev'),
                                        'image': GLib.Variant('s', 'minimal')},), '(a{sv})')
        self.assertEqual(self.managed()['/org/banger/Manager/images/minimal']
                         ['org.banger.Image']['UsedBy'], ['dev'])
        with self.assertRaises(GLib.Error) as cm:
            self.call('DeleteImage', ('minimal', {}), '(sa{sv})')
        self.assertEqual(remote_error(cm.exception), 'org.banger.Error.Busy')
        self.assertIn('dev', cm.exception.message)
        self.call('Delete', ({},), '(a{sv})', iface='org.banger.VM', path=vm)
        self.call('DeleteImage', ('minimal', {}), '(sa{sv})')
        self.assertNotIn('/org/banger/Manager/images/minimal', self.managed())

    def test_create_vm_unknown_image(self):
        for key, value in (('image', 'nosuch'), ('kernel', 'nokernel')):
            with self.assertRaises(GLib.Error) as cm:
                self.call('CreateVM', ({'name': GLib.Variant('s', 'x'),
                                        key: GLib.Variant('s', value)},), '(a{sv})')
            self.assertEqual(remote_error(cm.exception), 'org.banger.Error.NotFound')
            self.assertIn(value, cm.exception.message)

    def test_import_kernel(self):
        bogus = os.path.join(self.tmp, 'bogus')
        with open(bogus, 'w') as f:
            f.write('not a kernel\n')
        with self.assertRaises(GLib.Error) as cm:
            self.call('ImportKernel', (bogus, {}), '(sa{sv})')
        self.assertEqual(remote_error(cm.exception), 'org.banger.Error.InvalidArgument')
        self.assertIn(bogus, cm.exception.message)
        self.assertFalse([p for p in self.managed() if '/kernels/' in p])

        host = sorted(p for p in os.listdir('/boot') if p.startswith('vmlinuz-'))[-1]
        (path,) = self.call('ImportKernel', ('/boot/' + host, {'name': GLib.Variant('s', 'k')}),
                            '(sa{sv})')
        self.assertEqual(path, '/org/banger/Manager/kernels/k')
        k = self.managed()[path]['org.banger.Kernel']
        self.assertEqual(k['Version'], host[len('vmlinuz-'):])
        self.assertTrue(os.path.isfile(k['InitrdPath']))
        self.call('DeleteKernel', ('k', {}), '(sa{sv})')
        self.assertNotIn(path, self.managed())


if __name__ == '__main__':
    unittest.main(argv=sys.argv[:1] + sys.argv[1:], verbosity=2)
