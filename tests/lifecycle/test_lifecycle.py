#!/usr/bin/python3
"""The rest of issue 4 through the real bangerd on a private session bus:
PromoteVM (real QEMU guests in a netns, through tests/vm's harness),
PullKernel from a catalog served over loopback HTTP by this test (the
catalog URL set in the user's config), ImportKernel's vmlinux, catalog
rootfs-tarball images, and orphaned directories removed at start-up.

One meson test per test case (tests/lifecycle/meson.build)."""

import glob
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import unittest

import gi
gi.require_version('Gio', '2.0')
from gi.repository import Gio, GLib  # noqa: E402

from loopback_http import serve_directory  # noqa: E402
from session_bus import SessionBus, build_root  # noqa: E402

sys.path.insert(0, os.path.join(os.environ['BANGER_SOURCE_ROOT'], 'tests', 'vm'))
from test_vm import VmTestCase  # noqa: E402

MANAGER = 'org.banger.Manager'
PATH = '/org/banger/Manager'


def host_kernel():
    kernels = sorted(glob.glob('/boot/vmlinuz-*'))
    if not kernels:
        raise AssertionError('no /boot/vmlinuz-* (tests need linux-image-cloud-amd64)')
    return kernels[-1]


def bzimage_release(path):
    """The release the boot protocol header points at (0x20e)."""
    with open(path, 'rb') as f:
        head = f.read(0x8000)
    ptr = int.from_bytes(head[0x20e:0x210], 'little') + 0x200
    return head[ptr:ptr + 128].split(b' ')[0].decode()


def elf_release(path):
    with open(path, 'rb') as f:
        data = f.read()
    assert data[:4] == b'\x7fELF', path + ' is not ELF'
    i = data.find(b'Linux version ')
    while i >= 0:
        word = data[i + 14:i + 14 + 128].split(b' ')[0]
        if word[:1].isdigit():
            return word.decode()
        i = data.find(b'Linux version ', i + 1)
    return None


def wait_job(conn, job, timeout=120):
    """Waits for the job's Completed signal (or reads its final State if it
    already ended); returns (success, message)."""
    seen = {}

    def on_signal(c, sender, path, iface, name, params):
        seen['done'] = params.unpack()
    sub = conn.signal_subscribe(MANAGER, 'org.banger.Job', 'Completed', job, None,
                                Gio.DBusSignalFlags.NONE, on_signal)
    try:
        (state,) = conn.call_sync(MANAGER, job, 'org.freedesktop.DBus.Properties', 'Get',
                                  GLib.Variant('(ss)', ('org.banger.Job', 'State')), None,
                                  Gio.DBusCallFlags.NONE, 10000, None).unpack()
        if state != 'running':
            (msg,) = conn.call_sync(MANAGER, job, 'org.freedesktop.DBus.Properties', 'Get',
                                    GLib.Variant('(ss)', ('org.banger.Job', 'Message')), None,
                                    Gio.DBusCallFlags.NONE, 10000, None).unpack()
            return state == 'succeeded', msg
        ctx = GLib.MainContext.default()
        expired = []
        src = GLib.timeout_add_seconds(timeout, lambda: expired.append(1) or False)
        while 'done' not in seen and not expired:
            ctx.iteration(True)
        if not expired:
            GLib.source_remove(src)
        if 'done' not in seen:
            raise AssertionError('job %s did not complete in %d s' % (job, timeout))
        return seen['done'][0], seen['done'][1]
    finally:
        conn.signal_unsubscribe(sub)


class PromoteTest(VmTestCase):
    """Real guests (tests/vm's world: helper, polkitd, netns, QEMU/TCG)."""

    def promote(self, vm, name):
        return self.call('PromoteVM', GLib.Variant('(ssa{sv})', (vm, name, {})))[0]

    def managed(self):
        return self.call('GetManagedObjects', None,
                         iface='org.freedesktop.DBus.ObjectManager')[0]

    def test_promote_stopped_vm(self):
        path = self.create_vm('src')
        # Never started: no disk yet, refused naming the state.
        self.assert_error('org.banger.Error.BadState', self.promote, 'src', 'promoted',
                          mentions=['src', 'created'])
        self.start(path)
        status, _, err = self.exec(path, ['sh', '-c', 'echo from-the-guest > /root/promoted.txt;'
                                          ' sync'])
        self.assertEqual(status, 0, err)
        self.vm_call(path, 'Stop', GLib.Variant('(u)', (30,)), timeout=60000)
        self.assertEqual(self.prop(path, 'State'), 'stopped')
        kernel = self.prop(path, 'Kernel')

        job = self.promote('src', 'promoted')
        self.assertTrue(job.startswith('/org/banger/Manager/jobs/'))
        ok, message = wait_job(self.conn, job)
        self.assertTrue(ok, message)
        objs = self.managed()
        img = objs['/org/banger/Manager/images/promoted']['org.banger.Image']
        self.assertEqual(img['Source'], 'vm:src')
        self.assertEqual(img['Kernel'], kernel)
        self.assertEqual(objs[job]['org.banger.Job']['Operation'], 'promote-vm')
        image_dir = os.path.join(self.session.data_dir, 'images', img['Id'])
        self.assertEqual(os.listdir(image_dir), ['rootfs.ext4'])
        rootfs = os.path.join(image_dir, 'rootfs.ext4')
        out = subprocess.run(['debugfs', '-R', 'cat /root/promoted.txt', rootfs],
                             capture_output=True, text=True, check=True).stdout
        self.assertEqual(out, 'from-the-guest\n')
        subprocess.run(['e2fsck', '-fn', rootfs], check=True, capture_output=True)
        # The name is taken now.
        self.assert_error('org.banger.Error.Exists', self.promote, 'src', 'promoted',
                          mentions=['promoted'])
        # And the promoted image boots, with the guest's file in it.
        path2 = self.create_vm('child', image='promoted')
        self.start(path2)
        status, out, _ = self.exec(path2, ['cat', '/root/promoted.txt'])
        self.assertEqual((status, out), (0, b'from-the-guest\n'))

    def test_promote_running_vm_refused(self):
        path = self.create_vm('busy')
        self.start(path)
        self.assert_error('org.banger.Error.BadState', self.promote, 'busy', 'snap',
                          mentions=['busy', 'running'])
        self.assert_error('org.banger.Error.NotFound', self.promote, 'nosuch', 'snap',
                          mentions=['nosuch'])
        self.assertNotIn('/org/banger/Manager/images/snap', self.managed())
        self.assertEqual(glob.glob(os.path.join(self.session.data_dir, 'images', '*', '*.promote')),
                         [])


class BusTestCase(unittest.TestCase):
    """bangerd on a private session bus; a loopback HTTP server (a thread of
    this test) serving self.www, named as the catalog in the user's config."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix='banger-lifecycle-')
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.www = os.path.join(self.tmp, 'www')
        os.makedirs(self.www)
        self.base = serve_directory(self, self.www)
        self.bus = SessionBus(self.tmp, bangerd_args=['-vv'])
        self.bus.env['BANGER_AGENT'] = os.path.join(build_root(), 'src', 'agent', 'banger-agent')
        os.makedirs(self.bus.config_dir, exist_ok=True)
        with open(os.path.join(self.bus.config_dir, 'config'), 'w') as f:
            f.write('[catalog]\nurl=%s/index.json\n' % self.base)
        self.catalog = {'version': 1, 'images': [], 'kernels': []}
        self.bus.start()
        self.addCleanup(self._stop)
        self.conn = Gio.DBusConnection.new_for_address_sync(
            self.bus.address, Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT |
            Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION, None, None)
        self.addCleanup(self.conn.close_sync, None)

    def _stop(self):
        failed = any(e for _, e in getattr(self._outcome, 'errors', []) if e) or \
            not getattr(self._outcome, 'success', True)
        self.bus.stop_bangerd()
        self.bus.stop()
        if failed:
            sys.stderr.write('--- bangerd log ---\n' + self.bus.log())

    def publish(self, name, data):
        with open(os.path.join(self.www, name), 'wb') as f:
            f.write(data)
        return self.base + '/' + name

    def write_catalog(self):
        self.publish('index.json', json.dumps(self.catalog).encode())

    def call(self, method, args, sig, iface='org.banger.Manager', path=PATH, timeout=60000):
        return self.conn.call_sync(MANAGER, path, iface, method,
                                   GLib.Variant(sig, args) if sig else None,
                                   None, Gio.DBusCallFlags.NONE, timeout, None).unpack()

    def managed(self):
        return self.call('GetManagedObjects', None, None,
                         iface='org.freedesktop.DBus.ObjectManager')[0]

    def dirs(self, kind):
        d = os.path.join(self.bus.data_dir, kind)
        return sorted(os.listdir(d)) if os.path.isdir(d) else []


class KernelPullTest(BusTestCase):
    def add_kernel(self, name, data, sha=None):
        url = self.publish(name + '.bin', data)
        self.catalog['kernels'].append({'name': name, 'version': '6.1', 'url': url,
                                        'sha256': sha or hashlib.sha256(data).hexdigest()})
        self.write_catalog()

    def test_pull_kernel(self):
        bz = host_kernel()
        with open(bz, 'rb') as f:
            self.add_kernel('cloud', f.read())
        (job,) = self.call('PullKernel', ('cloud', {}), '(sa{sv})')
        self.assertTrue(job.startswith('/org/banger/Manager/jobs/'))
        ok, message = wait_job(self.conn, job)
        self.assertTrue(ok, message)
        objs = self.managed()
        k = objs['/org/banger/Manager/kernels/cloud']['org.banger.Kernel']
        self.assertEqual(k['Source'], 'catalog:cloud')
        self.assertEqual(k['Version'], bzimage_release(bz))
        self.assertTrue(k['VmlinuxPath'].startswith(self.bus.data_dir))
        self.assertEqual(elf_release(k['VmlinuxPath']), bzimage_release(bz))
        self.assertEqual(objs[job]['org.banger.Job']['Operation'], 'pull-kernel')
        # Only the kernel's own directory, nothing of the download.
        self.assertEqual(self.dirs('kernels'), [k['Id']])
        # Unknown names: the job fails with NotFound's message.
        (job2,) = self.call('PullKernel', ('nosuch', {}), '(sa{sv})')
        ok, message = wait_job(self.conn, job2)
        self.assertFalse(ok)
        self.assertIn('nosuch', message)
        # The name is taken now.
        with self.assertRaises(GLib.Error) as cm:
            self.call('PullKernel', ('cloud', {}), '(sa{sv})')
        self.assertEqual(Gio.DBusError.get_remote_error(cm.exception), 'org.banger.Error.Exists')

    def test_pull_kernel_tampered(self):
        bz = host_kernel()
        with open(bz, 'rb') as f:
            data = f.read()
        tampered = data[:-10] + b'0123456789'
        self.add_kernel('evil', tampered, sha=hashlib.sha256(data).hexdigest())
        (job,) = self.call('PullKernel', ('evil', {}), '(sa{sv})')
        ok, message = wait_job(self.conn, job)
        self.assertFalse(ok)
        self.assertIn('sha256', message.lower())
        self.assertNotIn('/org/banger/Manager/kernels/evil', self.managed())
        self.assertEqual(self.dirs('kernels'), [])

    def test_import_kernel_unpacks(self):
        bz = host_kernel()
        (path,) = self.call('ImportKernel', (bz, {'name': GLib.Variant('s', 'host')}),
                            '(sa{sv})', timeout=120000)
        k = self.managed()[path]['org.banger.Kernel']
        self.assertTrue(k['Path'].endswith('/vmlinuz'))
        self.assertTrue(k['VmlinuxPath'].endswith('/vmlinux'))
        self.assertEqual(elf_release(k['VmlinuxPath']), bzimage_release(bz))
        self.assertEqual(k['Version'], bzimage_release(bz))


class TarballTest(BusTestCase):
    def tarball(self):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode='w:gz') as tar:
            def add(name, kind=tarfile.REGTYPE, data=b'', mode=0o644, link=''):
                ti = tarfile.TarInfo(name)
                ti.type, ti.mode, ti.size, ti.linkname = kind, mode, len(data), link
                tar.addfile(ti, io.BytesIO(data) if data else None)
            add('./etc', tarfile.DIRTYPE, mode=0o755)
            add('./etc/hello', data=b'hello from a tarball\n')
            add('./bin', tarfile.DIRTYPE, mode=0o755)
            add('./bin/tool', data=b'#!/bin/sh\n', mode=0o4755)
            add('./bin/alias', tarfile.SYMTYPE, link='tool')
        return buf.getvalue()

    def test_pull_rootfs_tarball(self):
        data = self.tarball()
        url = self.publish('rootfs.tar.gz', data)
        self.catalog['images'].append({'name': 'tarimg', 'rootfs': {
            'url': url, 'sha256': hashlib.sha256(data).hexdigest()}})
        self.catalog['images'].append({'name': 'badimg', 'rootfs': {
            'url': url, 'sha256': hashlib.sha256(b'other').hexdigest()}})
        self.write_catalog()

        (job,) = self.call('PullImage', ('tarimg', {}), '(sa{sv})')
        ok, message = wait_job(self.conn, job)
        self.assertTrue(ok, message)
        img = self.managed()['/org/banger/Manager/images/tarimg']['org.banger.Image']
        self.assertEqual(img['Source'], 'catalog:tarimg')
        image_dir = os.path.join(self.bus.data_dir, 'images', img['Id'])
        self.assertEqual(os.listdir(image_dir), ['rootfs.ext4'])
        rootfs = os.path.join(image_dir, 'rootfs.ext4')

        def debugfs(req):
            return subprocess.run(['debugfs', '-R', req, rootfs], capture_output=True,
                                  text=True, check=True).stdout
        self.assertEqual(debugfs('cat /etc/hello'), 'hello from a tarball\n')
        self.assertRegex(debugfs('stat /bin/tool'), r'Mode:\s+04755')
        self.assertIn('Fast link dest: "tool"', debugfs('stat /bin/alias'))
        self.assertIn('Type: regular', debugfs('stat /.banger/agent'))
        subprocess.run(['e2fsck', '-fn', rootfs], check=True, capture_output=True)

        # A download that does not match its sha256: nothing registered, nothing left.
        (job,) = self.call('PullImage', ('badimg', {}), '(sa{sv})')
        ok, message = wait_job(self.conn, job)
        self.assertFalse(ok)
        self.assertIn('sha256', message.lower())
        self.assertNotIn('/org/banger/Manager/images/badimg', self.managed())
        self.assertEqual(self.dirs('images'), [img['Id']])


class OrphanTest(BusTestCase):
    def test_orphans_removed_at_startup(self):
        # A registered image and kernel, through bangerd.
        rootfs = os.path.join(self.tmp, 'fs.ext4')
        subprocess.run(['mke2fs', '-q', '-F', '-t', 'ext4', rootfs, '8M'], check=True)
        self.call('RegisterImage', ('kept', rootfs, {}), '(ssa{sv})')
        self.call('ImportKernel', (host_kernel(), {'name': GLib.Variant('s', 'keptk')}),
                  '(sa{sv})', timeout=120000)
        objs = self.managed()
        img_id = objs['/org/banger/Manager/images/kept']['org.banger.Image']['Id']
        k_id = objs['/org/banger/Manager/kernels/keptk']['org.banger.Kernel']['Id']
        self.bus.stop_bangerd()

        # What a bangerd killed mid-pull leaves: id-shaped dirs without a record.
        data = self.bus.data_dir
        orphans = [os.path.join(data, 'images', '0123456789abcdef'),
                   os.path.join(data, 'kernels', 'fedcba9876543210')]
        for d in orphans:
            os.makedirs(os.path.join(d, 'sub'))
            with open(os.path.join(d, 'sub', 'partial'), 'w') as f:
                f.write('x')
        foreign = os.path.join(data, 'images', 'not-an-id')
        os.makedirs(foreign)

        # The next bangerd (activated by this call) removes them at start-up.
        self.managed()
        for d in orphans:
            self.assertFalse(os.path.exists(d), d)
        self.assertTrue(os.path.isdir(foreign))
        self.assertIn(img_id, self.dirs('images'))
        self.assertIn(k_id, self.dirs('kernels'))
        self.assertTrue(os.path.exists(os.path.join(data, 'images', img_id, 'rootfs.ext4')))


if __name__ == '__main__':
    unittest.main()
