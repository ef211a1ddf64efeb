#!/usr/bin/python3
"""PullImage, ListCache and PruneCache over D-Bus: the build tree's bangerd
activated on a private session bus pulls from docker-registry on loopback."""

import os
import shutil
import sys
import tempfile
import unittest

import gi
gi.require_version('Gio', '2.0')
from gi.repository import Gio, GLib  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ocitest  # noqa: E402
from session_bus import SessionBus, build_root, iterate_until  # noqa: E402

MANAGER = 'org.banger.Manager'
PATH = '/org/banger/Manager'


class DbusPullTest(unittest.TestCase):

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix='banger-oci-dbus-')
        self.registry = ocitest.Registry(self.tmp)
        self.bus = SessionBus(self.tmp)
        self.bus.env['BANGER_AGENT'] = os.path.join(build_root(), 'src', 'agent', 'banger-agent')
        self.bus.start()
        self.conn = self.bus.connect()
        self.ctx = GLib.MainContext.default()
        self.completed = {}
        self.sub = self.conn.signal_subscribe(MANAGER, 'org.banger.Job', 'Completed', None, None,
                                              Gio.DBusSignalFlags.NONE, self.on_completed)

    def on_completed(self, conn, sender, path, iface, signal, params):
        self.completed[path] = params.unpack()

    def tearDown(self):
        ok = not any(e for _, e in getattr(self._outcome, 'errors', []) if e) and \
            getattr(self._outcome, 'success', True)
        self.conn.signal_unsubscribe(self.sub)
        self.conn.close_sync(None)
        self.bus.stop_bangerd()
        self.bus.stop()
        if not ok:
            sys.stderr.write('--- bangerd log ---\n' + self.bus.log())
            sys.stderr.write('--- registry log ---\n' + self.registry.read_log()[-4000:])
        self.registry.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def call(self, method, args, sig, iface=MANAGER, path=PATH):
        return self.conn.call_sync(MANAGER, path, iface, method,
                                   GLib.Variant(sig, args) if sig else None,
                                   None, Gio.DBusCallFlags.NONE, 60000, None).unpack()

    def prop(self, path, iface, name):
        (v,) = self.call('Get', (iface, name), '(ss)', iface='org.freedesktop.DBus.Properties',
                         path=path)
        return v

    def wait_completed(self, job, timeout=60):
        iterate_until(self.ctx, lambda: job in self.completed, timeout)
        self.assertIn(job, self.completed, 'job %s did not complete' % job)
        return self.completed[job]

    def images_dirs(self):
        d = os.path.join(self.bus.env['XDG_DATA_HOME'], 'banger', 'images')
        return os.listdir(d) if os.path.isdir(d) else []

    def test_pull_registers_image(self):
        layout = ocitest.build_rich_image(self.tmp)
        self.registry.push(layout, 'latest', 'rich:v1')
        ref = self.registry.host + '/rich:v1'
        (job,) = self.call('PullImage', (ref, {'name': GLib.Variant('s', 'rich')}), '(sa{sv})')
        self.assertTrue(job.startswith('/org/banger/Manager/jobs/'))
        success, message = self.wait_completed(job)[:2]
        self.assertTrue(success, message)
        image = '/org/banger/Manager/images/rich'
        digest, _ = ocitest.manifest_of(layout)
        self.assertEqual(self.prop(image, 'org.banger.Image', 'Source'), ref)
        self.assertEqual(self.prop(image, 'org.banger.Image', 'Digest'), digest)
        config = self.prop(image, 'org.banger.Image', 'Config')
        self.assertEqual(config['entrypoint'], ['/bin/tool'])
        self.assertEqual(config['cmd'], ['serve', '--port=80'])
        self.assertEqual(config['user'], '1000:1000')
        self.assertEqual(self.prop(job, 'org.banger.Job', 'Operation'), 'pull-image')
        self.assertEqual(self.prop(job, 'org.banger.Job', 'BytesDone'),
                         self.prop(job, 'org.banger.Job', 'BytesTotal'))
        # the rootfs holds the layers and the agent
        (dirs,) = [self.images_dirs()]
        rootfs = os.path.join(self.bus.env['XDG_DATA_HOME'], 'banger', 'images', dirs[0],
                              'rootfs.ext4')
        self.assertEqual(ocitest.stat(rootfs, '/bin/su')['mode'], 0o4755)
        self.assertIsNotNone(ocitest.stat(rootfs, '/.banger/agent'))
        # the cache holds manifest, config and 4 layers, all kept by PruneCache
        (blobs,) = self.call('ListCache', None, None)
        self.assertEqual(len(blobs), 6)
        self.assertIn(digest, [b[0] for b in blobs])
        (freed,) = self.call('PruneCache', ({},), '(a{sv})')
        self.assertEqual(freed, 0)
        # a second pull under the same name is refused at once
        with self.assertRaises(GLib.Error) as cm:
            self.call('PullImage', (ref, {'name': GLib.Variant('s', 'rich')}), '(sa{sv})')
        self.assertEqual(Gio.DBusError.get_remote_error(cm.exception), 'org.banger.Error.Exists')
        with self.assertRaises(GLib.Error) as cm:
            self.call('PullImage', (ref, {'bogus': GLib.Variant('s', 'x')}), '(sa{sv})')

    def test_concurrent_pulls_share_one_job(self):
        layout = ocitest.build_small_image(self.tmp, layers=2, size=16 * 1024 * 1024)
        self.registry.push(layout, 'latest', 'big:latest')
        ref = self.registry.host + '/big:latest'
        results = []

        def done(conn, res):
            results.append(conn.call_finish(res).unpack()[0])
        for _ in range(2):
            self.conn.call(MANAGER, PATH, MANAGER, 'PullImage',
                           GLib.Variant('(sa{sv})', (ref, {})), None, Gio.DBusCallFlags.NONE,
                           60000, None, done)
        while len(results) < 2:
            self.ctx.iteration(True)
        self.assertEqual(results[0], results[1])
        success, message = self.wait_completed(results[0])[:2]
        self.assertTrue(success, message)
        self.assertEqual(self.prop('/org/banger/Manager/images/big', 'org.banger.Image',
                                   'Source'), ref)
        self.assertEqual(len(self.registry.blob_gets('big')), 3)

    def test_tampered_blob_registers_nothing(self):
        layout = ocitest.build_small_image(self.tmp, layers=1, size=64 * 1024)
        self.registry.push(layout, 'latest', 'small:latest')
        _, manifest = ocitest.manifest_of(layout)
        victim = manifest['layers'][0]['digest']
        path = self.registry.blob_path(victim)
        data = bytearray(open(path, 'rb').read())
        data[100] ^= 0x01
        open(path, 'wb').write(data)
        (job,) = self.call('PullImage', (self.registry.host + '/small:latest', {}), '(sa{sv})')
        success, message = self.wait_completed(job)[:2]
        self.assertFalse(success)
        self.assertIn(victim, message)
        self.assertIn('does not match its digest', message)
        self.assertEqual(self.prop(job, 'org.banger.Job', 'State'), 'failed')
        (objs,) = self.call('GetManagedObjects', None, None,
                            iface='org.freedesktop.DBus.ObjectManager')
        self.assertFalse([p for p in objs if p.startswith('/org/banger/Manager/images/small')])
        self.assertEqual(self.images_dirs(), [])


if __name__ == '__main__':
    unittest.main()
