#!/usr/bin/python3
"""Warm start (issue 13, docs/warm-start.md) end to end, in the world of
test_vm.py (real bangerd, helper, polkitd, QEMU under TCG, the `minimal`
image): a VM's first boot saves a snapshot of the idle guest, later VMs of
the same key restore it and take their own identity through the agent;
stale and corrupt snapshots are never used.

A restored guest shares its template's boot: its BootId equals the
template's and its console log has no kernel banner, which is how the
cases below tell a restore from a boot.

One meson test per test case (tests/vm/meson.build)."""

import glob
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import unittest

from gi.repository import GLib  # noqa: E402

from system_bus import wait_until  # noqa: E402
from test_vm import BOOT_TIMEOUT_MS, VmTestCase  # noqa: E402


class WarmTestCase(VmTestCase):

    def warm_entries(self):
        return sorted(d for d in glob.glob(os.path.join(self.session.data_dir, 'warm', '*'))
                      if not os.path.basename(d).startswith('.'))

    def console(self, path):
        log = os.path.join(self.vm_dir(self.prop(path, 'Id')), 'console.log')
        try:
            with open(log, errors='replace') as f:
                return f.read()
        except FileNotFoundError:
            return ''

    def booted(self, path):
        return 'Linux version' in self.console(path)

    def out(self, path, argv):
        status, out, err = self.exec(path, argv)
        self.assertEqual(status, 0, '%s: %r %r' % (argv, out, err))
        return out.decode().strip()

    def pinned_key(self, vm_id):
        known = os.path.join(self.session.data_dir, 'ssh', 'known_hosts')
        with open(known) as f:
            for line in f:
                fields = line.split()
                if fields and fields[0] == 'banger-' + vm_id:
                    return ' '.join(fields[1:3])
        self.fail('no pinned host key for banger-%s' % vm_id)

    def qemu_argv(self, path):
        with open('/proc/%d/cmdline' % self.prop(path, 'Pid'), 'rb') as f:
            return [a.decode() for a in f.read().split(b'\0') if a]

    def template(self, name='tmpl'):
        """Boots the key's first VM, which saves the snapshot."""
        path = self.create_vm(name)
        self.start(path)
        self.assertTrue(self.booted(path))
        entries = self.warm_entries()
        self.assertEqual(len(entries), 1, entries)
        return path, entries[0]


class WarmTest(WarmTestCase):

    def test_two_clones_have_their_own_identity(self):
        tmpl, entry = self.template()
        for name in ('vmstate', 'disk', 'manifest.ini', 'memory'):
            self.assertTrue(os.path.exists(os.path.join(entry, name)), name)
        # the guest memory is a file of its own, as big as the guest's and as
        # sparse as what the idle guest touched; the stream holds the rest
        memory_bytes = self.prop(tmpl, 'MemoryMiB') << 20
        st = os.stat(os.path.join(entry, 'memory'))
        self.assertEqual(st.st_size, memory_bytes)
        self.assertLess(st.st_blocks * 512, memory_bytes // 2)
        self.assertLess(os.path.getsize(os.path.join(entry, 'vmstate')), 16 << 20)
        tmpl_boot = self.prop(tmpl, 'BootId')
        tmpl_machine_id = self.out(tmpl, ['cat', '/etc/machine-id']) \
            if self.exec(tmpl, ['test', '-e', '/etc/machine-id'])[0] == 0 else ''

        clones = [self.create_vm(n) for n in ('wa', 'wb')]
        for p in clones:
            self.start(p)
            # restored, not booted: the template's boot, no kernel banner
            self.assertEqual(self.prop(p, 'BootId'), tmpl_boot)
            self.assertFalse(self.booted(p), self.console(p)[-2000:])
            self.assertEqual(self.prop(p, 'State'), 'running')
            # the clone maps the template's memory copy-on-write: what it
            # owns alone is what it changed, not the whole guest's memory
            with open('/proc/%d/status' % self.prop(p, 'Pid')) as f:
                anon_kib = int(re.search(r'RssAnon:\s+(\d+) kB', f.read()).group(1))
            self.assertLess(anon_kib << 10, memory_bytes // 2)
            # nor does its VMM read the kernel and initrd again
            self.assertNotIn('-kernel', self.qemu_argv(p))
            self.assertIn('-kernel', self.qemu_argv(tmpl))
        self.assertEqual(len(self.warm_entries()), 1)

        seen = {}
        host_now = time.time()
        for p in clones:
            name = self.prop(p, 'Name')
            vm_id = self.prop(p, 'Id')
            mac = self.prop(p, 'MAC')
            ipv4 = self.prop(p, 'IPv4')
            ident = {
                'mac': self.out(p, ['cat', '/sys/class/net/eth0/address']),
                'ip': self.out(p, ['ip', '-4', '-o', 'addr', 'show', 'dev', 'eth0']),
                'hostname': self.out(p, ['hostname']),
                'etc_hostname': self.out(p, ['cat', '/etc/hostname']),
                'machine_id': self.out(p, ['cat', '/etc/machine-id']),
                'host_key': self.out(p, ['cat', '/etc/ssh/ssh_host_ed25519_key.pub']),
                'random': self.out(p, ['od', '-An', '-tx1', '-N32', '/dev/urandom']),
                'clock': int(self.out(p, ['date', '+%s'])),
            }
            self.assertEqual(ident['mac'], mac.lower())
            self.assertIn(' %s/' % ipv4, ident['ip'])
            self.assertEqual(ident['hostname'], name)
            self.assertEqual(ident['etc_hostname'], name)
            self.assertRegex(ident['machine_id'], '^[0-9a-f]{32}$')
            self.assertNotEqual(ident['machine_id'], tmpl_machine_id)
            # the key the host pinned for this VM is the one the guest has
            self.assertEqual(' '.join(ident['host_key'].split()[:2]), self.pinned_key(vm_id))
            # the clock is today's, not the save's (generous: a loaded host)
            self.assertLess(abs(ident['clock'] - host_now), 120)
            seen[name] = ident
        a, b = seen['wa'], seen['wb']
        for key in ('mac', 'ip', 'hostname', 'machine_id', 'host_key', 'random'):
            self.assertNotEqual(a[key], b[key], key)

        # a clone suspends and resumes like any VM, its files and identity intact
        clone = clones[0]
        self.exec(clone, ['sh', '-c', 'echo kept > /root/mark'])
        self.vm_call(clone, 'Suspend', timeout=BOOT_TIMEOUT_MS)
        self.assertEqual(self.prop(clone, 'State'), 'suspended')
        self.vm_call(clone, 'Resume', GLib.Variant('(a{sv})', ({},)), timeout=BOOT_TIMEOUT_MS)
        self.assertEqual(self.prop(clone, 'State'), 'running')
        self.assertEqual(self.out(clone, ['cat', '/root/mark']), 'kept')
        self.assertEqual(self.out(clone, ['hostname']), 'wa')

        # the template, its memory a memfd: a suspend writes the plain stream
        # (the memory file is for the warm save only). Onto a full disk (a 1 MiB tmpfs as the state
        # directory): a clear error, the guest runs on, nothing left; then
        # for real, and it resumes with its files and identity
        self.exec(tmpl, ['sh', '-c', 'echo tmpl-kept > /root/mark'])
        state_dir = os.path.join(self.vm_dir(self.prop(tmpl, 'Id')), 'suspend')
        os.makedirs(state_dir, exist_ok=True)
        subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', state_dir], check=True)
        try:
            message = self.assert_error('org.banger.Error.Failed', self.vm_call, tmpl, 'Suspend',
                                        timeout=BOOT_TIMEOUT_MS)
            self.assertIn('No space left on device', message)
            self.assertEqual(os.listdir(state_dir), [])
        finally:
            subprocess.run(['umount', state_dir], check=True)
        self.assertEqual(self.prop(tmpl, 'State'), 'running')
        self.vm_call(tmpl, 'Suspend', timeout=BOOT_TIMEOUT_MS)
        self.assertEqual(self.prop(tmpl, 'State'), 'suspended')
        self.assertEqual(sorted(os.listdir(state_dir)), ['vmstate'])
        self.vm_call(tmpl, 'Resume', GLib.Variant('(a{sv})', ({},)), timeout=BOOT_TIMEOUT_MS)
        self.assertEqual(self.prop(tmpl, 'State'), 'running')
        self.qemu_pids.add(self.prop(tmpl, 'Pid'))
        self.assertEqual(self.prop(tmpl, 'BootId'), tmpl_boot)
        self.assertEqual(self.out(tmpl, ['cat', '/root/mark']), 'tmpl-kept')
        self.assertEqual(self.out(tmpl, ['hostname']), 'tmpl')

        # they reach each other on their own addresses
        ips = [self.prop(p, 'IPv4') for p in clones]
        self.assertNotEqual(ips[0], ips[1])
        for p, other in ((clones[0], ips[1]), (clones[1], ips[0])):
            status, out, err = self.exec(p, ['ping', '-c', '1', '-W', '5', other])
            self.assertEqual(status, 0, out + err)

        # a process started in one is not in the other
        status, out, err = self.exec(clones[0], ['sh', '-c',
                                                 'sleep 4242 >/dev/null 2>&1 </dev/null &'])
        self.assertEqual(status, 0, out + err)
        self.assertIn('sleep 4242', self.out(clones[0], ['ps']))
        # the process the agent starts to warm a restored guest up is gone,
        # reaped: no zombie left in either clone
        for p in clones:
            self.assertEqual(self.out(p, ['sh', '-c', 'grep -l "^State:.*Z" /proc/[0-9]*/status '
                                      '2>/dev/null; true']), '')
        self.assertNotIn('sleep 4242', self.out(clones[1], ['ps']))
        self.assertNotIn('sleep 4242', self.out(tmpl, ['ps']))

        # each clone has a disk of its own: a file written in one is not in the other
        self.out(clones[0], ['sh', '-c', 'echo mine > /root/warm-file && sync'])
        self.assertNotEqual(self.exec(clones[1], ['test', '-e', '/root/warm-file'])[0], 0)

        # deleting the snapshot does not take the clones' disks with it
        for e in self.warm_entries():
            subprocess.run(['rm', '-rf', e], check=True)
        self.vm_call(clones[0], 'Restart', GLib.Variant('(a{sv})', ({},)), timeout=180000)
        self.qemu_pids.add(self.prop(clones[0], 'Pid'))
        self.assertEqual(self.out(clones[0], ['cat', '/root/warm-file']), 'mine')


class WarmStaleTest(WarmTestCase):

    def test_stale_corrupt_and_off_snapshots_are_not_used(self):
        tmpl, entry = self.template()
        argv = self.qemu_argv(tmpl)
        kernel = argv[argv.index('-kernel') + 1]
        disk = os.path.join(entry, 'disk')
        info = json.loads(subprocess.run(['qemu-img', 'info', '--output=json', '-U', disk],
                                         capture_output=True, text=True, check=True).stdout)
        rootfs = info['full-backing-filename']

        # turned off for one start: it boots, the snapshot stays
        off = self.create_vm('off')
        self.start(off, {'warm': GLib.Variant('b', False)})
        self.assertTrue(self.booted(off))
        self.assertEqual(self.warm_entries(), [entry])

        # a corrupt state: QEMU refuses it, the VM boots (with a warning),
        # the broken snapshot is replaced by a good one from that boot
        state = os.path.join(entry, 'vmstate')
        size = os.path.getsize(state)
        with open(state, 'r+b') as f:
            f.seek(size // 3)
            f.write(os.urandom(4096))
            f.truncate(size // 2)
        bad = self.create_vm('corrupt')
        self.start(bad)
        self.assertEqual(self.prop(bad, 'State'), 'running')
        self.assertTrue(self.booted(bad))
        self.assertEqual(self.out(bad, ['hostname']), 'corrupt')
        self.assertIn('starting from snapshot', self.session.log())
        self.assertEqual(self.warm_entries(), [entry])
        self.assertGreater(os.path.getsize(state), size // 2)
        good = self.create_vm('good')
        self.start(good)
        self.assertFalse(self.booted(good))
        self.assertEqual(self.out(good, ['hostname']), 'good')

        # a memory file cut short: refused before QEMU maps it (it would
        # grow it with zeros), the VM boots, a good snapshot replaces it
        memory = os.path.join(entry, 'memory')
        memory_bytes = self.prop(good, 'MemoryMiB') << 20
        with open(memory, 'r+b') as f:
            f.truncate(memory_bytes // 2)
        short = self.create_vm('short')
        self.start(short)
        self.assertEqual(self.prop(short, 'State'), 'running')
        self.assertTrue(self.booted(short))
        self.assertEqual(self.out(short, ['hostname']), 'short')
        self.assertIn('is not the guest', self.session.log())
        self.assertEqual(self.warm_entries(), [entry])
        self.assertEqual(os.path.getsize(memory), memory_bytes)

        # bangerd killed in the middle of a restore: the next bangerd stops
        # that VM (or finds it running, if its start had finished), never a
        # VM with its template's identity; started again, it boots its disk
        cut = self.create_vm('cut')
        errors = []

        def starter():
            try:
                self.start(cut)
            except Exception as e:  # noqa: BLE001 - the kill ends the call
                errors.append(e)
        t = threading.Thread(target=starter)
        t.start()
        deadline = time.monotonic() + 60
        while self.prop(cut, 'Pid') == 0 and time.monotonic() < deadline:
            pass
        self.assertNotEqual(self.prop(cut, 'Pid'), 0)
        self.qemu_pids.add(self.prop(cut, 'Pid'))
        self.session.stop_bangerd(signal.SIGKILL)
        t.join(60)
        state = self.prop(cut, 'State')
        self.assertIn(state, ('stopped', 'running'))
        if state == 'stopped':
            self.assertIn('restored from a snapshot', self.prop(cut, 'LastError'))
            self.assertFalse(os.path.exists(os.path.join(self.vm_dir(self.prop(cut, 'Id')),
                                                         'warm-clone.ini')))
            self.start(cut)
        self.assertEqual(self.out(cut, ['hostname']), 'cut')
        self.assertIn(' %s/' % self.prop(cut, 'IPv4'),
                      self.out(cut, ['ip', '-4', '-o', 'addr', 'show', 'dev', 'eth0']))

        # a new kernel, then a new image (the agent lives in the image):
        # each is a new key, booted and saved, never the old snapshot
        keys = set(self.warm_entries())
        for i, changed in enumerate((kernel, rootfs)):
            st = os.stat(changed)
            os.utime(changed, ns=(st.st_atime_ns, st.st_mtime_ns + 1000000000))
            p = self.create_vm('stale%d' % i)
            self.start(p)
            self.assertTrue(self.booted(p), 'a stale snapshot was used')
            now = set(self.warm_entries())
            self.assertEqual(len(now), len(keys) + 1)
            keys = now

        # the listing, and removing the image removes its snapshots
        listed = self.call('ListWarmSnapshots')[0]
        self.assertEqual(sorted(e['key'] for e in listed),
                         sorted(os.path.basename(k) for k in keys))
        self.assertTrue(all(e['image'] == 'minimal' and e['size_bytes'] > 0 for e in listed))
        self.assertEqual(self.call('PruneWarmSnapshots', GLib.Variant(
            '(a{sv})', ({'image': GLib.Variant('s', 'other')},)))[0], 0)
        self.call('DeleteImage', GLib.Variant('(sa{sv})', ('minimal', {
            'force': GLib.Variant('b', True)})))
        wait_until(lambda: self.warm_entries() == [], 30, 'the image\'s snapshots removed')



class WarmFullDiskTest(WarmTestCase):

    def test_template_save_onto_a_full_disk(self):
        """The key's first VM cannot save its snapshot: the warm cache is a
        16 MiB tmpfs, and the guest's memory (~120 MiB of it touched) does
        not fit. A warning names the cause, the VM runs on as started,
        nothing of the snapshot is left; with room again, the next VM of
        the key boots and saves it."""
        first = self.create_vm('full')  # bangerd is up: its data dir exists
        warm = os.path.join(self.session.data_dir, 'warm')
        os.makedirs(warm, exist_ok=True)
        subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=16m', 'tmpfs', warm], check=True)
        try:
            self.start(first)
            self.assertEqual(os.listdir(warm), [])
        finally:
            subprocess.run(['umount', warm], check=True)
        self.assertIn("cannot write the guest's memory", self.session.log())
        self.assertIn('No space left on device', self.session.log())
        self.assertEqual(self.prop(first, 'State'), 'running')
        self.assertTrue(self.booted(first))
        self.assertEqual(self.out(first, ['hostname']), 'full')
        self.assertEqual(self.warm_entries(), [])
        nxt, entry = self.template('next')
        self.assertEqual(self.out(nxt, ['hostname']), 'next')
        self.assertTrue(os.path.isfile(os.path.join(entry, 'memory')))


if __name__ == '__main__':
    unittest.main(argv=[sys.argv[0]] + sys.argv[1:], verbosity=2)
