#!/usr/bin/python3
"""bangerd-root's CreateSnapshot/RemoveSnapshot with real loop devices (the
helper attaches them itself) and the FAKE dmsetup (tests/fakes/: these
machines have no device-mapper), on a private system bus with the real
polkitd (tests/lib/system_bus.py).
banger-test-a is allowed org.banger.storage.snapshot by the test rules,
banger-test-b is not: B getting InvalidArgument or NotAuthorized instead of
AccessDenied proves the check ran before polkit."""

import json
import subprocess
import os
import re
import sys
import unittest

import loopdev
from fanotify_pause import FanotifyPause
from mount_ns import private_tmpfs
from system_bus import SystemBus, build_root, source_root

A = 'banger-test-a'
B = 'banger-test-b'
VM_ID = '0123456789abcdef'
ORIGIN_BYTES = 4 * 1024 * 1024


class SnapshotTest(unittest.TestCase):
    def setUp(self):
        self.bus = SystemBus().start()
        self.addCleanup(self.bus.stop)
        tmp = self.bus.tmp
        # After the helper has stopped (cleanups run in reverse): whatever
        # a failed test left attached.
        self.addCleanup(loopdev.detach_all, tmp)
        self.state = os.path.join(tmp, 'fake-dm')
        os.makedirs(self.state)
        self.dev = os.path.join(self.state, 'dev')
        self.dm_control = os.path.join(self.dev, 'mapper', 'control')
        os.makedirs(os.path.dirname(self.dm_control))
        with open(self.dm_control, 'w'):
            pass
        self.records = os.path.join(tmp, 'run-snapshots')
        self.files = {}
        for user in (A, B):
            self.make_user_files(user)
        self.write_conf()
        self.start_helper()

    def make_user_files(self, user):
        tmp = self.bus.tmp
        uid, gid = self.bus.users[user]
        home = os.path.join(tmp, f'home-{uid}')
        data = os.path.join(home, 'banger')
        idir = os.path.join(data, 'images', 'img1')
        os.makedirs(idir, exist_ok=True)
        origin = os.path.join(idir, 'rootfs.raw')
        with open(origin, 'wb') as f:
            f.truncate(ORIGIN_BYTES)
        os.symlink(origin, os.path.join(idir, 'link.raw'))
        for root, dirs, names in os.walk(home):
            for n in dirs + names:
                os.lchown(os.path.join(root, n), uid, gid)
        os.chown(home, uid, gid)
        os.chmod(home, 0o755)
        self.files[user] = {'uid': uid, 'data': data, 'origin': origin,
                            'link': os.path.join(idir, 'link.raw')}

    def write_conf(self):
        tmp = self.bus.tmp
        fakes = os.path.join(source_root(), 'tests', 'fakes')
        self.conf = os.path.join(tmp, 'helper.conf')
        with open(self.conf, 'w') as f:
            f.write('[network]\nbridge=banger0\naddress=10.77.0.1/24\n'
                    f'[jail]\nuser_dirs={tmp}/home-%U/banger\n'
                    f'[storage]\ndmsetup={fakes}/fake-dmsetup\n'
                    f'dm_control={self.dm_control}\ndev_dir={self.dev}\n'
                    f'state_dir={self.records}\n')

    def start_helper(self):
        env = self.bus.env()
        env['BANGER_FAKE_DM_STATE'] = self.state
        binary = os.path.join(build_root(), 'src', 'helper', 'bangerd-root')
        self.helper = self.bus._spawn(f'bangerd-root-{len(self.bus.processes)}',
                                      [binary, '-vv', '--config', self.conf], env=env)
        self.bus.wait_for_name('org.banger.Helper', self.helper)

    def tearDown(self):
        # A clean exit, also under ASan/UBSan (a leak or UB report makes the
        # status non-zero or shows in the log).
        status = self.helper.stop()
        log = self.helper.output()
        result = self._outcome.result
        if any(test is self for test, _ in result.errors + result.failures):
            print(self.bus.logs(), file=sys.stderr)
        self.assertEqual(status, 0, log)
        self.assertNotIn('runtime error:', log)
        self.assertNotIn('LeakSanitizer', log)

    # ---- helpers ------------------------------------------------------

    def fake_state(self):
        try:
            with open(os.path.join(self.state, 'state.json')) as f:
                return json.load(f)
        except FileNotFoundError:
            return {'loops': {}, 'dm': {}}

    def calls(self):
        try:
            with open(os.path.join(self.state, 'calls.log')) as f:
                return [json.loads(line) for line in f]
        except FileNotFoundError:
            return []

    def read_only(self, dev):
        with open(f'/sys/block/{os.path.basename(dev)}/ro') as f:
            return f.read().strip() == '1'

    def create(self, user=A, vm_id=VM_ID, origin=None):
        origin = origin or self.files[user]['origin']
        return self.bus.call(user, 'CreateSnapshot', vm_id, origin, '{}')

    def error(self, ok_out):
        ok, out = ok_out
        self.assertFalse(ok, out)
        return re.search(r'GDBus\.Error:([A-Za-z0-9_.]+):', out).group(1)

    def loops(self):
        return loopdev.attached(self.bus.tmp)

    def assert_nothing_created(self):
        self.assertEqual(self.fake_state(), {'loops': {}, 'dm': {}})
        self.assertEqual(self.loops(), {})
        self.assertFalse(os.path.exists(self.records) and os.listdir(self.records))
        for user in (A, B):
            self.assertFalse(os.path.exists(os.path.join(self.files[user]['data'], 'vms', VM_ID,
                                                         'snapshot.cow')))

    # ---- cases --------------------------------------------------------

    def test_create_and_remove(self):
        ok, out = self.create()
        self.assertTrue(ok, out)
        device = os.path.join(self.dev, 'mapper', f'banger-{VM_ID}')
        self.assertIn(f"'{device}'", out)
        st = self.fake_state()
        self.assertEqual(list(st['dm']), [f'banger-{VM_ID}'])
        t = st['dm'][f'banger-{VM_ID}']
        fields = t['table'].split()
        self.assertEqual(fields[:3], ['0', str(ORIGIN_BYTES // 512), 'snapshot'])
        self.assertEqual(fields[5:], ['N', '8'])
        # real loop devices: the origin's read-only, the COW's read-write
        loops = self.loops()
        cow = os.path.join(self.files[A]['data'], 'vms', VM_ID, 'snapshot.cow')
        self.assertEqual(loops, {t['origin']: self.files[A]['origin'], t['cow']: cow})
        self.assertEqual(self.read_only(t['origin']), True)
        self.assertEqual(self.read_only(t['cow']), False)
        uid = self.files[A]['uid']
        self.assertEqual(os.stat(cow).st_uid, uid)
        self.assertGreaterEqual(os.stat(cow).st_size, ORIGIN_BYTES)
        self.assertEqual(os.stat(cow).st_blocks, 0)  # sparse
        # The device (mapper entry and the dm-N node behind it) is A's.
        self.assertEqual(os.stat(device).st_uid, uid)
        self.assertEqual(os.stat(os.path.join(self.dev, f"dm-{t['minor']}")).st_uid, uid)
        with open(os.path.join(self.records, VM_ID)) as f:
            record = f.read()
        self.assertIn(f'uid={uid}', record)
        self.assertIn(t['origin'], record)

        ok, out = self.bus.call(A, 'RemoveSnapshot', VM_ID, '{}')
        self.assertTrue(ok, out)
        self.assertEqual(self.fake_state(), {'loops': {}, 'dm': {}})
        self.assertEqual(self.loops(), {})
        self.assertFalse(os.path.exists(os.path.join(self.records, VM_ID)))
        self.assertFalse(os.path.lexists(device))
        self.assertTrue(os.path.exists(cow))  # the caller's to delete
        self.assertEqual(self.error(self.bus.call(A, 'RemoveSnapshot', VM_ID, '{}')),
                         'org.banger.Error.NotFound')

    def test_other_user_cannot_remove(self):
        ok, out = self.create()
        self.assertTrue(ok, out)
        self.assertEqual(self.error(self.bus.call(B, 'RemoveSnapshot', VM_ID, '{}')),
                         'org.banger.Error.NotAuthorized')
        self.assertEqual(self.error(self.create(user=B)), 'org.banger.Error.NotAuthorized')
        self.assertEqual(list(self.fake_state()['dm']), [f'banger-{VM_ID}'])
        self.assertEqual(len(self.loops()), 2)
        ok, out = self.bus.call(A, 'RemoveSnapshot', VM_ID, '{}')
        self.assertTrue(ok, out)

    def test_bad_origin_refused_before_polkit(self):
        outside = os.path.join(self.bus.tmp, 'outside.raw')
        with open(outside, 'wb') as f:
            f.truncate(ORIGIN_BYTES)
        for user in (A, B):  # B is denied by polkit, yet gets InvalidArgument
            uid, gid = self.bus.users[user]
            os.chown(outside, uid, gid)
            for origin in (outside, self.files[user]['link'], self.files[A if user == B else B]['origin'],
                           'relative/path', self.files[user]['origin'] + '/../x'):
                self.assertEqual(self.error(self.create(user=user, origin=origin)),
                                 'org.banger.Error.InvalidArgument', (user, origin))
            for bad_id in ('xyz', '0123456789ABCDEF', '../../etc/passwd', ''):
                self.assertEqual(self.error(self.create(user=user, vm_id=bad_id)),
                                 'org.banger.Error.InvalidArgument', (user, bad_id))
            self.assertEqual(self.error(self.bus.call(user, 'RemoveSnapshot', 'nope', '{}')),
                             'org.banger.Error.InvalidArgument')
        self.assertEqual(self.calls(), [])
        self.assert_nothing_created()

    def test_failed_create_rolls_back(self):
        with open(os.path.join(self.state, 'fail-create'), 'w'):
            pass
        self.assertEqual(self.error(self.create()), 'org.banger.Error.Failed')
        names = [c[:2] for c in self.calls()]
        self.assertIn(['fake-dmsetup', 'create'], names)
        # both loop devices detached again, the new COW file removed
        self.assert_nothing_created()

    def test_origin_swap_race(self):
        """Issue 10, finding 1: the caller swaps the checked origin (and the
        COW file) for symlinks to root's files between the check and the
        attach. The helper is paused at the exact point (fanotify
        FAN_OPEN_PERM on the COW file's open, on a tmpfs of this test's own
        mount namespace): the loop devices must be backed by the files that
        were checked, never by root's."""
        self.helper.stop()
        data = self.files[A]['data']
        private_tmpfs(self, data)
        self.make_user_files(A)
        uid, gid = self.bus.users[A]
        os.chown(data, uid, gid)
        self.start_helper()
        victims = []
        for name in ('victim-origin', 'victim-cow'):
            victim = os.path.join(self.bus.tmp, name)
            with open(victim, 'wb') as f:
                f.truncate(ORIGIN_BYTES)
            victims.append(victim)
        origin = self.files[A]['origin']
        cow = os.path.join(data, 'vms', VM_ID, 'snapshot.cow')
        checked = os.stat(origin)
        swapped = []
        swap = ('import os, sys\n'
                'for name, victim in ((sys.argv[1], sys.argv[3]), (sys.argv[2], sys.argv[4])):\n'
                '    os.rename(name, name + ".x")\n'
                '    os.symlink(victim, name)\n')
        with FanotifyPause(data) as pause:
            def on_open(path):
                if path == cow and not swapped:
                    res = subprocess.run(['setpriv', f'--reuid={uid}', f'--regid={gid}',
                                          '--clear-groups', '/usr/bin/python3', '-c', swap,
                                          origin, cow, *victims], capture_output=True, text=True)
                    swapped.append(res.returncode == 0 or res.stderr)
            pause.on_open = on_open
            ok, out = self.create()
        self.assertEqual(swapped, [True], 'the swap did not happen while the helper was paused')
        self.assertTrue(ok, out)
        t = self.fake_state()['dm'][f'banger-{VM_ID}']
        backings = set(self.loops().values())
        for victim in victims:
            self.assertNotIn(victim, backings, 'root\'s file was attached')
        self.assertEqual(loopdev.backing_inode(t['origin']), (checked.st_dev, checked.st_ino))
        cow_st = os.stat(cow + '.x')
        self.assertEqual(loopdev.backing_inode(t['cow']), (cow_st.st_dev, cow_st.st_ino))
        ok, out = self.bus.call(A, 'RemoveSnapshot', VM_ID, '{}')
        self.assertTrue(ok, out)

    def test_no_device_mapper(self):
        os.unlink(self.dm_control)
        ok, out = self.create()
        self.assertFalse(ok, out)
        self.assertIn('org.banger.Error.Unsupported', out)
        self.assertIn('device-mapper is not available on this host', out)
        # Authorization comes first: B, with a valid origin of its own, is
        # denied and never learns device-mapper is missing.
        ok, out = self.create(user=B)
        self.assertEqual(self.error((ok, out)), 'org.freedesktop.DBus.Error.AccessDenied')
        self.assertEqual(self.calls(), [])
        self.assert_nothing_created()


if __name__ == '__main__':
    unittest.main()
