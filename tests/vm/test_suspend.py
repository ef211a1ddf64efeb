#!/usr/bin/python3
"""Suspend and resume end to end (issue 13 item 2, docs/suspend.md): the
real bangerd, helper, polkitd and QEMU (TCG) of tests/vm/test_vm.py, one
guest shared by all the steps (a boot is the expensive part), a guest
process writing a counter throughout.

One meson test per test case (tests/vm/meson.build)."""

import os
import signal
import subprocess
import sys
import threading
import time
import unittest

from gi.repository import GLib  # noqa: E402

from session_bus import wait_pid_gone  # noqa: E402
from system_bus import wait_until  # noqa: E402
from test_vm import BOOT_TIMEOUT_MS, DBusError, VmTestCase  # noqa: E402

# A guest process counting forever, one line per number, in a file on the
# guest's root disk; detached (setsid, no pipes held) so the Exec returns.
COUNTER = ('i=0; while :; do i=$((i+1)); echo $i >> /root/counter; sleep 0.05; done')
BAD_STATE = 'org.banger.Error.BadState'


class SuspendTest(VmTestCase):

    def counter(self, path):
        """The numbers the guest wrote so far."""
        status, out, err = self.exec(path, ['cat', '/root/counter'])
        self.assertEqual(status, 0, err)
        return [int(n) for n in out.split()]

    def assert_counter_goes_on(self, path, before):
        """Every number since the start is there, once, in order, and the
        counter runs past where it was: the process continued."""
        last = [0]

        def grew():
            last[0] = self.counter(path)[-1]
            return last[0] > before
        wait_until(grew, 60, 'the guest counter to go on after %d' % before)
        numbers = self.counter(path)
        self.assertEqual(numbers, list(range(1, len(numbers) + 1)), 'numbers lost or repeated')

    def suspend(self, path):
        self.vm_call(path, 'Suspend', timeout=BOOT_TIMEOUT_MS)

    def resume(self, path):
        self.vm_call(path, 'Resume', GLib.Variant('(a{sv})', ({},)), timeout=BOOT_TIMEOUT_MS)
        self.qemu_pids.add(self.prop(path, 'Pid'))

    def assert_suspended(self, path, vm_id, ipv4, pid):
        self.assertEqual(self.prop(path, 'State'), 'suspended')
        self.assertEqual(self.prop(path, 'Pid'), 0)
        # the lease and the tap (with its claim on the address) are kept,
        # the VMM is gone
        self.assertEqual(self.prop(path, 'IPv4'), ipv4)
        self.assertTrue(self.tap_exists(vm_id), 'no tap while suspended')
        self.assertTrue(wait_pid_gone(pid, 10), 'QEMU %d left running' % pid)
        state = os.path.join(self.vm_dir(vm_id), 'suspend', 'vmstate')
        self.assertTrue(os.path.isfile(state), state)

    def assert_running(self, path, vm_id, ipv4):
        self.assertEqual(self.prop(path, 'State'), 'running')
        self.assertEqual(self.prop(path, 'IPv4'), ipv4)
        self.assertTrue(self.tap_exists(vm_id))
        self.assertTrue(self.qemu_alive(self.prop(path, 'Pid')))
        # the guest's network works through the new tap, with its old address
        # and the gateway's MAC it had cached (the bridge keeps its own)
        status, out, err = self.exec(path, ['ping', '-c', '1', '-W', '10', '10.77.0.1'])
        self.assertEqual(status, 0, out + err)

    def assert_whole(self, path, vm_id, ipv4):
        """After a bangerd that died mid-operation: running or suspended,
        never half of each. Brings it back to running."""
        state = self.prop(path, 'State')
        self.assertIn(state, ('running', 'suspended'))
        vmstate = os.path.join(self.vm_dir(vm_id), 'suspend', 'vmstate')
        if state == 'suspended':
            self.assertEqual(self.prop(path, 'Pid'), 0)
            for pid in self.vm_pids_on_disk():  # exited (maybe not yet reaped)
                self.assertTrue(wait_pid_gone(pid, 10), 'QEMU %d left running' % pid)
            self.assertTrue(os.path.isfile(vmstate))
            self.assertTrue(self.tap_exists(vm_id))
            self.resume(path)
        self.assert_running(path, vm_id, ipv4)
        self.assertFalse(os.path.exists(vmstate))
        self.assert_counter_goes_on(path, self.counter(path)[-1])

    def kill_bangerd_during(self, path, method, args, leaving):
        """Calls @method in a thread and SIGKILLs bangerd once the VM has
        left the state @leaving (or the call returned)."""
        def call():
            try:
                self.vm_call(path, method, args, timeout=BOOT_TIMEOUT_MS)
            except DBusError:
                pass  # bangerd died under it
        t = threading.Thread(target=call)
        t.start()
        deadline = time.monotonic() + 60
        while (t.is_alive() and self.prop(path, 'State') == leaving
               and time.monotonic() < deadline):
            pass
        self.assertIsNotNone(self.session.stop_bangerd(signal.SIGKILL))
        t.join(60)
        self.assertFalse(t.is_alive())

    def test_suspend_resume_restart_bad_input_delete(self):
        path = self.create_vm('sus')
        vm_id = self.prop(path, 'Id')
        vm_dir = self.vm_dir(vm_id)
        states = self.watch_states(path)

        # bad input on a VM that never ran
        self.assert_error(BAD_STATE, self.suspend, path, mentions=('sus', 'created'))
        self.assert_error(BAD_STATE, self.resume, path, mentions=('sus', 'created'))

        self.start(path)
        ipv4 = self.prop(path, 'IPv4')
        boot_id = self.prop(path, 'BootId')
        self.assertNotEqual(ipv4, '')
        status, _, err = self.exec(path, ['setsid', 'sh', '-c', COUNTER + ' </dev/null '
                                          '>/dev/null 2>&1 &'])
        self.assertEqual(status, 0, err)
        wait_until(lambda: len(self.counter(path)) >= 3, 60, 'the guest counter')

        # resume of a running VM: refused, still running
        self.assert_error(BAD_STATE, self.resume, path, mentions=('sus', 'running'))
        self.assert_running(path, vm_id, ipv4)

        # 1. suspend → resume: the counter continues, nothing lost; the
        # guest's clock is set to now (here from a clock set to 1970 first)
        self.assertEqual(self.exec(path, ['date', '-u', '-s', '@100'])[0], 0)
        pid = self.prop(path, 'Pid')
        self.suspend(path)
        self.assert_suspended(path, vm_id, ipv4, pid)
        self.assertTrue(self.pump(lambda: 'suspending' in states), states)
        self.assert_error(BAD_STATE, self.suspend, path, mentions=('sus', 'suspended'))
        self.assert_error('org.banger.Error.BadState', self.exec, path, ['true'],
                          mentions=('sus',))
        self.resume(path)
        self.assert_running(path, vm_id, ipv4)
        self.assertTrue(self.pump(lambda: 'resuming' in states), states)
        self.assertEqual(self.prop(path, 'BootId'), boot_id, 'the guest booted again')
        _, out, _ = self.exec(path, ['date', '+%s'])
        self.assertLess(abs(int(out) - time.time()), 120, 'the guest clock was not set')
        self.assertFalse(os.path.exists(os.path.join(vm_dir, 'suspend', 'vmstate')))
        before = self.counter(path)[-1]
        self.assert_counter_goes_on(path, before)

        # 2. suspend → bangerd SIGKILL + helper restart (+ the network gone,
        # as after a host reboot) → resume
        pid = self.prop(path, 'Pid')
        self.suspend(path)
        self.assert_suspended(path, vm_id, ipv4, pid)
        self.assertIsNotNone(self.session.stop_bangerd(signal.SIGKILL))
        # and what a host reboot takes away too: the bridge, the tap and
        # banger's firewall table (the helper makes them again on the
        # resume's EnsureNetwork and CreateTap); the state is only files
        self.system.ns_run(['ip', 'link', 'del', 'banger0'])
        self.system.ns_run(['ip', 'link', 'del', 'bg' + vm_id[:12]])
        self.system.ns_run(['nft', 'delete', 'table', 'inet', 'banger'], check=False)
        self.system.restart_helper()
        # the next call activates a new bangerd: reconcile leaves it suspended
        self.assertEqual(self.prop(path, 'State'), 'suspended')
        self.assertTrue(os.path.isfile(os.path.join(vm_dir, 'suspend', 'vmstate')))
        self.resume(path)
        self.assert_running(path, vm_id, ipv4)
        self.assertEqual(self.prop(path, 'BootId'), boot_id)
        self.assert_counter_goes_on(path, self.counter(path)[-1])

        # 2b. bangerd SIGKILLed in the middle of a suspend, then of a
        # resume: the next one finishes or undoes it
        self.kill_bangerd_during(path, 'Suspend', None, 'running')
        self.assert_whole(path, vm_id, ipv4)
        self.suspend(path)
        self.kill_bangerd_during(path, 'Resume', GLib.Variant('(a{sv})', ({},)), 'suspended')
        self.assert_whole(path, vm_id, ipv4)
        self.qemu_pids.add(self.prop(path, 'Pid'))

        # 2c. `network down` while it is suspended: not refused (its tap
        # is on the bridge, but nothing uses it), and the resume makes the
        # network and the tap again
        pid = self.prop(path, 'Pid')
        self.suspend(path)
        self.assert_suspended(path, vm_id, ipv4, pid)
        res = self.network_down()
        self.assertEqual(res.returncode, 0, res.stdout + res.stderr)
        self.assertIsNone(self.system.link('banger0'))
        self.assertFalse(self.tap_exists(vm_id))
        self.resume(path)
        self.assert_running(path, vm_id, ipv4)
        self.assert_counter_goes_on(path, self.counter(path)[-1])

        # 3. the disk fills while saving (a 1 MiB tmpfs as the state
        # directory): a clear error, the VM still running, no state left
        state_dir = os.path.join(vm_dir, 'suspend')
        os.makedirs(state_dir, exist_ok=True)
        subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', state_dir], check=True)
        try:
            message = self.assert_error('org.banger.Error.Failed', self.suspend, path)
            self.assertIn('still running', message)
            self.assertIn('No space left on device', message)
            self.assertEqual(os.listdir(state_dir), [])
        finally:
            subprocess.run(['umount', state_dir], check=True)
        self.assert_running(path, vm_id, ipv4)
        self.assert_counter_goes_on(path, self.counter(path)[-1])

        # 4. Stop of a suspended VM discards its state: stopped, tap and
        # lease released
        pid = self.prop(path, 'Pid')
        self.suspend(path)
        self.assert_suspended(path, vm_id, ipv4, pid)
        rows = {r[0]: r[1:] for r in self.call('Doctor', timeout=120000)[0]}
        self.assertEqual(rows['vm-suspended'][0], 'ok', rows['vm-suspended'])
        self.assertIn('1 suspended VM', rows['vm-suspended'][1])
        # its state lost (a wiped disk): resume refused, still suspended, doctor warns
        vmstate = os.path.join(state_dir, 'vmstate')
        os.rename(vmstate, vmstate + '.away')
        self.assert_error('org.banger.Error.NotFound', self.resume, path,
                          mentions=('sus', 'missing', 'vm stop'))
        self.assertEqual(self.prop(path, 'State'), 'suspended')
        self.assertEqual(self.prop(path, 'IPv4'), ipv4)
        self.assertTrue(self.tap_exists(vm_id))
        rows = {r[0]: r[1:] for r in self.call('Doctor', timeout=120000)[0]}
        self.assertEqual(rows['vm-suspended:sus'][0], 'warn', rows)
        self.assertIn('vm stop sus', rows['vm-suspended:sus'][2])
        self.vm_call(path, 'Stop', GLib.Variant('(u)', (0,)))
        self.assertEqual(self.prop(path, 'State'), 'stopped')
        self.assertFalse(os.path.exists(state_dir))
        self.assert_released(path, vm_id)
        self.assert_error(BAD_STATE, self.suspend, path, mentions=('sus', 'stopped'))
        self.assert_error(BAD_STATE, self.resume, path, mentions=('sus', 'stopped'))

        # 5. suspend → Delete removes every file
        self.start(path)
        pid = self.prop(path, 'Pid')
        self.suspend(path)
        self.assert_suspended(path, vm_id, self.prop(path, 'IPv4'), pid)
        self.vm_call(path, 'Delete', GLib.Variant('(a{sv})', ({},)))
        self.assertFalse(os.path.exists(vm_dir), os.listdir(vm_dir) if os.path.exists(vm_dir)
                         else '')
        self.assertFalse(self.tap_exists(vm_id))
        known_hosts = os.path.join(self.session.data_dir, 'ssh', 'known_hosts')
        with open(known_hosts) as f:
            self.assertNotIn('banger-' + vm_id, f.read())
        with self.assertRaises(DBusError):
            self.prop(path, 'State')


if __name__ == '__main__':
    unittest.main(argv=sys.argv[:1] + sys.argv[1:], verbosity=2)
