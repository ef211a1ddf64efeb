#!/usr/bin/python3
"""Crash safety (issue 10): bangerd is SIGKILLed at 50 pseudo-random points
during create, start, pull, promote and delete. After each kill the next
call D-Bus-activates a new bangerd, and the test checks that the store
passes `PRAGMA integrity_check`, that every VM is in a true state
(reconcile), and that no tap, lease, VM directory (overlay), half image,
half blob, stray QEMU or job is left behind.

The schedule is seeded: the seed is printed at the start, and
BANGER_CRASH_SEED=<seed> replays the same schedule. A kill point is "after
the Nth D-Bus signal bangerd emits once the operation was sent" (N = 0:
right after sending it), so it is counted in bangerd's own events, not in
time. Where the operation ends before N signals came, bangerd is killed
right after its reply (or, for a job, its Completed signal): that is still
a point in the operation's life, just its last one. No assertion depends on
where exactly the kill landed: every outcome must be a consistent one.

The world is tests/vm's (VmTestCase): real bangerd, helper, polkitd, QEMU
(TCG) in a network namespace; pulls come from docker-registry on loopback
inside that namespace (tests/oci/ocitest.py)."""

import glob
import hashlib
import os
import random
import signal
import sqlite3
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.environ['BANGER_SOURCE_ROOT'], 'tests', 'oci'))

import gi  # noqa: E402
gi.require_version('Gio', '2.0')
from gi.repository import GLib, Gio  # noqa: E402

import ocitest  # noqa: E402
from session_bus import wait_pid_gone  # noqa: E402
from system_bus import wait_until  # noqa: E402
from test_vm import (MANAGER, MANAGER_IFACE, MANAGER_PATH, PROPS_IFACE, VM_IFACE,  # noqa: E402
                     BOOT_TIMEOUT_MS, DBusError, VmTestCase)

OM_IFACE = 'org.freedesktop.DBus.ObjectManager'
JOB_IFACE = 'org.banger.Job'
SETTLED = ('created', 'stopped', 'running', 'error')
# How many signals an operation emits, roughly: N is drawn below this, so
# most points land inside the operation and a few right after it.
SPREAD = {'create': 4, 'start': 8, 'delete': 5, 'pull': 12, 'promote': 8}


class CrashTest(VmTestCase):

    def setUp(self):
        super().setUp()
        # The registry runs inside the test's network namespace (setUp
        # entered it), where bangerd pulls from.
        self.registry = ocitest.Registry(self.tmpdir)
        self.addCleanup(self.registry.stop)
        layout = ocitest.build_small_image(self.tmpdir, layers=2, size=1024 * 1024)
        self.registry.push(layout, 'latest', 'crash:v1')
        self.ref = self.registry.host + '/crash:v1'
        self.ctx = GLib.MainContext.default()
        self.cache_dir = os.path.join(self.session.env['XDG_CACHE_HOME'], 'banger')
        self.landed = {}
        # Seconds each operation took to its end (updated as they finish).
        self.took = {'CreateVM': 0.05, 'Delete': 0.1, 'Start': 3.0, 'PullImage': 0.5,
                     'PromoteVM': 1.0}

    # ---- the kill ------------------------------------------------------

    def bangerd_pid(self):
        """The pid owning org.banger.Manager, activating bangerd if needed."""
        self.call('GetManagedObjects', None, iface=OM_IFACE, timeout=120000)
        reply = self.conn.call_sync('org.freedesktop.DBus', '/org/freedesktop/DBus',
                                    'org.freedesktop.DBus', 'GetConnectionUnixProcessID',
                                    GLib.Variant('(s)', (MANAGER,)), None,
                                    Gio.DBusCallFlags.NONE, 10000, None)
        return reply.unpack()[0]

    def crash_during(self, method, args, point, path=MANAGER_PATH, iface=MANAGER_IFACE,
                     job=False):
        """Sends @method and SIGKILLs bangerd at @point: ('signal', N), after
        it emitted N signals, or ('share', F), after the fraction F of the
        time the operation took when it last ran to its end here (most
        operations emit their signals only at the end, so counting signals
        alone would rarely land inside them). If the operation ends first
        (its reply, or the job's Completed), bangerd is killed right then.
        Returns (signals seen, the reply or None) and counts in
        self.landed whether the kill came before the operation ended."""
        pid = self.bangerd_pid()
        seen = {'n': 0, 'reply': None, 'done': False, 'job': None}

        def on_signal(conn, sender, obj, sig_iface, name, params):
            seen['n'] += 1
            if job and name == 'Completed' and obj == seen['job']:
                seen['done'] = True
        sub = self.conn.signal_subscribe(MANAGER, None, None, None, None,
                                         Gio.DBusSignalFlags.NONE, on_signal)

        def on_reply(conn, res):
            try:
                seen['reply'] = conn.call_finish(res).unpack()
                if job:
                    seen['job'] = seen['reply'][0]
                else:
                    seen['done'] = True
            except GLib.Error:
                seen['done'] = True  # refused, or bangerd is gone

        self.conn.call(MANAGER, path, iface, method, args, None, Gio.DBusCallFlags.NONE,
                       BOOT_TIMEOUT_MS, None, on_reply)
        self.conn.flush_sync(None)
        sent = time.monotonic()
        kind, value = point
        deadline = sent + (value * self.took.get(method, 0.05) if kind == 'share' else 180)
        while (kind == 'share' or seen['n'] < value) and not seen['done'] \
                and time.monotonic() < deadline:
            self.ctx.iteration(False) or time.sleep(0.0005)
        inside = not seen['done']
        if not inside:
            # Ran to its end: how long it takes, for the next 'share' point.
            self.took[method] = time.monotonic() - sent
        os.kill(pid, signal.SIGKILL)
        self.landed.setdefault(method, [0, 0])[0 if inside else 1] += 1
        self.assertTrue(wait_pid_gone(pid, 10), 'bangerd %d outlived SIGKILL' % pid)
        # The bus must have seen it go, or the next call is routed to the
        # dead connection and answered NoReply instead of activating a new
        # bangerd.
        wait_until(lambda: not self.conn.call_sync(
            'org.freedesktop.DBus', '/org/freedesktop/DBus', 'org.freedesktop.DBus',
            'NameHasOwner', GLib.Variant('(s)', (MANAGER,)), None, Gio.DBusCallFlags.NONE,
            10000, None).unpack()[0], 10, 'the bus to drop the dead bangerd')
        # Whatever is queued (the call's error once the bus says its
        # sender left, late signals) is dispatched before the next point.
        while self.ctx.pending():
            self.ctx.iteration(False)
        self.conn.signal_unsubscribe(sub)
        return seen['n'], seen['reply']

    # ---- what must hold after every restart ----------------------------

    def objects(self):
        return self.call('GetManagedObjects', None, iface=OM_IFACE, timeout=120000)[0]

    def vms(self):
        """{path: properties} of every VM, once none is starting/stopping
        (a restarted bangerd may still be finishing an adopted start)."""
        def settled():
            vms = {p: i[VM_IFACE] for p, i in self.objects().items() if VM_IFACE in i}
            return vms if all(v['State'] in SETTLED for v in vms.values()) else None
        return wait_until(settled, 120, 'every VM to settle')

    def store_rows(self, sql):
        db = sqlite3.connect('file:%s?mode=ro' % os.path.join(self.session.data_dir, 'banger.db'),
                             uri=True, timeout=30)
        try:
            return db.execute(sql).fetchall()
        finally:
            db.close()

    def qemus(self):
        """Pids of the QEMUs of this test (their command lines name its dir)."""
        out = set()
        for comm in glob.glob('/proc/[0-9]*/comm'):
            try:
                with open(comm) as f:
                    if not f.read().startswith('qemu-system'):
                        continue
                with open(comm[:-4] + 'cmdline', 'rb') as f:
                    if self.tmpdir.encode() in f.read():
                        out.add(int(comm.split('/')[2]))
            except (OSError, ValueError):
                pass
        return out

    def check(self, label):
        where = '%s: ' % label
        self.assertEqual(self.store_rows('PRAGMA integrity_check'), [('ok',)], where)
        self.assertEqual(self.store_rows('PRAGMA foreign_key_check'), [], where)
        vms = self.vms()
        running = {v['Id']: v for v in vms.values() if v['State'] == 'running'}
        ids = {v['Id'] for v in vms.values()}
        # Store and objects agree.
        self.assertEqual(sorted(ids), sorted(r[0] for r in self.store_rows('SELECT id FROM vms')),
                         where + 'VM objects and store rows differ')
        for v in vms.values():
            if v['State'] == 'running':
                self.assertTrue(self.qemu_alive(v['Pid']), where + '%s running without QEMU'
                                % v['Name'])
                # Its tap carries its claim (the helper's guard lets the tap
                # send only from it): an adopted VM must not be left with a
                # tap that drops all its traffic.
                link = self.system.link('bg' + v['Id'][:12])
                self.assertIsNotNone(link, where + '%s running without its tap' % v['Name'])
                self.assertTrue(link.get('ifalias', '').endswith('%s %s' % (v['MAC'], v['IPv4'])),
                                where + '%s: tap claim %r, VM %s %s' % (
                                    v['Name'], link.get('ifalias'), v['MAC'], v['IPv4']))
            else:
                self.assertEqual((v['Pid'], v['IPv4']), (0, ''), where + v['Name'])
        # Leases only for running VMs; taps only for running VMs.
        leased = {r[0] for r in self.store_rows('SELECT vm_id FROM leases')}
        self.assertLessEqual(leased, set(running), where + 'a lease of a VM that is not running')
        taps = {ln for ln in self.system.ns_run(['ip', '-o', 'link', 'show']).split('\n')
                for ln in [ln.split(':')[1].strip().split('@')[0] if ':' in ln else '']
                if ln.startswith('bg')}
        self.assertLessEqual(taps, {'bg' + i[:12] for i in running},
                             where + 'a tap of a VM that is not running')
        # No QEMU but the running VMs'. QEMU's -daemonize leaves its
        # foreground process a moment after the daemon wrote its pidfile:
        # waited for, with a timeout.
        owned = {v['Pid'] for v in running.values()}
        try:
            wait_until(lambda: self.qemus() <= owned, 10, 'stray QEMUs to go')
        except TimeoutError:
            pass
        self.assertLessEqual(self.qemus(), owned, where + 'a QEMU no running VM owns')
        # VM directories (disk overlays) only for VMs in the store.
        vm_dirs = set(os.listdir(os.path.join(self.session.data_dir, 'vms'))) \
            if os.path.isdir(os.path.join(self.session.data_dir, 'vms')) else set()
        self.assertLessEqual(vm_dirs, ids, where + 'a VM directory without its VM')
        # Image and kernel directories only for records: no half image.
        for kind in ('images', 'kernels'):
            d = os.path.join(self.session.data_dir, kind)
            have = set(os.listdir(d)) if os.path.isdir(d) else set()
            known = {r[0] for r in self.store_rows('SELECT id FROM %s' % kind)}
            self.assertLessEqual(have, known, where + 'a half-made %s entry' % kind)
            for i in known:
                self.assertTrue(os.path.isdir(os.path.join(d, i)), where + '%s/%s lost' % (kind, i))
        for path, ifaces in self.objects().items():
            # Jobs live in one bangerd: none survives it half-done.
            if JOB_IFACE in ifaces:
                self.assertNotEqual(ifaces[JOB_IFACE]['State'], 'running', where + path)
        # A blob under its final name is whole; a .partial is a prefix of the
        # real blob (kept on purpose, for a resumed download).
        blobs = os.path.join(self.cache_dir, 'blobs', 'sha256')
        for name in os.listdir(blobs) if os.path.isdir(blobs) else []:
            with open(os.path.join(blobs, name), 'rb') as f:
                data = f.read()
            if name.endswith('.partial'):
                with open(self.registry.blob_path('sha256:' + name[:-8]), 'rb') as f:
                    self.assertTrue(f.read().startswith(data), where + 'bad partial ' + name)
            else:
                self.assertEqual(hashlib.sha256(data).hexdigest(), name, where + 'half blob')

    # ---- the schedule ----------------------------------------------------

    def create(self, name):
        return self.create_vm(name)

    def vm_path(self, name):
        for p, i in self.objects().items():
            if VM_IFACE in i and i[VM_IFACE]['Name'] == name:
                return p
        return None

    def image_exists(self, name):
        return any('org.banger.Image' in i and i['org.banger.Image']['Name'] == name
                   for i in self.objects().values())

    @staticmethod
    def draw(rng, op):
        """A kill point: a third after the Nth signal, two thirds after a
        share of the operation's usual duration."""
        if rng.random() < 1 / 3:
            return ('signal', rng.randrange(SPREAD[op]))
        return ('share', round(rng.random(), 3))

    def test_sigkill_at_seeded_points(self):
        seed = int(os.environ.get('BANGER_CRASH_SEED') or random.SystemRandom().randrange(1 << 31))
        sys.stderr.write('crash schedule seed %d (BANGER_CRASH_SEED=%d replays it)\n'
                         % (seed, seed))
        rng = random.Random(seed)
        # 50 points: 16 creates, 7 starts each followed by a forced delete
        # of that VM, 3 deletes of created VMs, 12 pulls, 5 promotes.
        ops = ['create'] * 16 + ['start'] * 7 + ['delete'] * 3 + ['pull'] * 12 + ['promote'] * 5
        rng.shuffle(ops)
        points = 0
        t0 = time.monotonic()

        # The promote source: a VM with a disk, booted once and stopped.
        base = self.create('base')
        self.start(base)
        self.vm_call(base, 'Stop', GLib.Variant('(u)', (30,)), timeout=120000)
        self.check('setup')
        created = []

        for i, op in enumerate(ops):
            n = self.draw(rng, op)
            label = '#%d %s %s (seed %d)' % (i, op, n, seed)
            if op == 'create':
                name = 'c%d' % i
                self.crash_during('CreateVM', GLib.Variant('(a{sv})', (
                    {'name': GLib.Variant('s', name)},)), n)
                points += 1
                self.check(label)
                if self.vm_path(name) is not None:
                    created.append(name)
            elif op == 'delete':
                name = created.pop() if created else None
                if name is None:
                    name = 'd%d' % i
                    self.create(name)
                path = self.vm_path(name)
                self.crash_during('Delete', GLib.Variant('(a{sv})', ({},)), n, path=path,
                                  iface=VM_IFACE)
                points += 1
                self.check(label)
            elif op == 'start':
                name = 's%d' % i
                path = self.create(name)
                self.crash_during('Start', GLib.Variant('(a{sv})', ({},)), n, path=path,
                                  iface=VM_IFACE)
                points += 1
                self.check(label)
                # The same VM, running or not, deleted with force: a kill
                # point in the release of a tap, lease and QEMU.
                m = self.draw(rng, 'delete')
                self.crash_during('Delete', GLib.Variant('(a{sv})', (
                    {'force': GLib.Variant('b', True)},)), m, path=path, iface=VM_IFACE)
                points += 1
                self.check('%s, then delete %s' % (label, m))
                if self.vm_path(name) is not None:
                    self.vm_call(path, 'Delete', GLib.Variant('(a{sv})', (
                        {'force': GLib.Variant('b', True)},)), timeout=120000)
                    self.check(label + ', deleted after')
            elif op in ('pull', 'promote'):
                name = 'img%d' % i
                if op == 'pull':
                    args = GLib.Variant('(sa{sv})', (self.ref, {'name': GLib.Variant('s', name)}))
                    self.crash_during('PullImage', args, n, job=True)
                else:
                    args = GLib.Variant('(ssa{sv})', ('base', name, {}))
                    self.crash_during('PromoteVM', args, n, job=True)
                points += 1
                self.check(label)
                # Whole or absent; then gone again, with its blobs, so the
                # next pull downloads (and can be killed) again.
                if self.image_exists(name):
                    self.call('DeleteImage', GLib.Variant('(sa{sv})', (name, {})))
                self.call('PruneCache', GLib.Variant('(a{sv})', ({},)))
                self.check(label + ', image removed')
        for name in created:
            path = self.vm_path(name)
            if path is not None:
                self.vm_call(path, 'Delete', GLib.Variant('(a{sv})', ({},)))
        self.check('end')
        self.assertEqual(points, 50)
        sys.stderr.write('%d kill points in %.0f s; before the end / after it: %s\n' % (
            points, time.monotonic() - t0,
            ', '.join('%s %d/%d' % (k, v[0], v[1]) for k, v in sorted(self.landed.items()))))


if __name__ == '__main__':
    unittest.main()
