#!/usr/bin/python3
"""banger on a real systemd host (issue 8): a Debian bookworm container booted
with systemd-nspawn (tests/host/hostlib.py), the build installed in it with
`meson install`, polkitd, logind, the system bus and user managers real, and
a normal user, alice, working in login sessions. What a user would check,
checked the way the user would: through `banger`, `systemctl`, `loginctl`,
`ip`.

One meson test per case (tests/host/meson.build); run as root."""

import contextlib
import json
import os
import re
import shlex
import sys
import time
import unittest

import hostlib
from hostlib import HostTestCase, wait_until

ALICE = 'alice'
BOB = 'bob'
VM = 'dev'
DATA = '/home/alice/.local/share/banger'
# A guest process counting forever, one line per number, on the guest's root
# disk; detached (setsid, no pipes held) so `vm exec` returns
# (tests/vm/test_suspend.py).
COUNTER = 'i=0; while :; do i=$((i+1)); echo $i >> /root/counter; sleep 0.05; done'

# What `banger system install` writes (src/cli/system-install.c's table).
SYSTEM_FILES = [
    '/etc/dbus-1/system.d/org.banger.Helper.conf',
    '/usr/share/dbus-1/system-services/org.banger.Helper.service',
    '/usr/share/dbus-1/services/org.banger.Manager.service',
    '/usr/share/polkit-1/actions/org.banger.policy',
    '/etc/polkit-1/rules.d/50-org.banger.rules',
    '/etc/systemd/system/bangerd-root.service',
    '/etc/systemd/user/bangerd.service',
]

STATUS_KEYS = {'ok', 'problems', 'units', 'versions', 'drift', 'bus_names', 'group', 'linger',
               'network'}


def build_config():
    """The paths compiled into this build (config.h of BANGER_BUILD_ROOT)."""
    out = {}
    with open(os.path.join(hostlib.build_root(), 'config.h')) as f:
        for line in f:
            m = re.match(r'#define (BANGER_\w+) "(.*)"$', line.strip())
            if m:
                out[m.group(1)] = m.group(2)
    return out


def host_kernel_release():
    """The release of the kernel in /boot banger imports by default (the
    guest's kernel), e.g. 6.1.0-57-cloud-amd64."""
    names = sorted(n for n in os.listdir('/boot') if n.startswith('vmlinuz-'))
    return names[-1][len('vmlinuz-'):]


def lower_keys(d):
    return {k.lower(): v for k, v in d.items()}


class HostTest(HostTestCase):

    # ---- helpers ------------------------------------------------------

    def banger(self, *args, user=ALICE, status=0, timeout=300, env=None):
        """`banger ARGS` as @user in a fresh login session; asserts the exit
        status unless @status is None."""
        r = self.host.user(user, ['banger'] + list(args), timeout=timeout, env=env)
        if status is not None:
            self.assertEqual(r.returncode, status, f'as {user}: {r!r}')
        return r

    def install(self, user=ALICE, *extra):
        """`sudo banger system install` typed by @user (SUDO_USER=@user)."""
        r = self.host.sudo(user, ['banger', 'system', 'install'] + list(extra))
        self.assertEqual(r.returncode, 0, f'sudo banger system install: {r!r}')
        return r

    def login_again(self, user=ALICE):
        """Logs @user out of every session; the next command is a new login
        (with the groups of now)."""
        self.host.logout(user)
        groups = self.host.user(user, ['id', '-nG']).stdout.split()
        return groups

    def install_and_login(self):
        r = self.install()
        groups = self.login_again()
        self.assertIn('banger', groups, 'after `system install` and a new login, alice is in '
                      f'group banger (id -nG: {groups}); install said:\n{r.stdout}{r.stderr}')
        return r

    def vm_show(self, name, user=ALICE):
        return lower_keys(self.banger('vm', 'show', name, '--json', user=user).json())

    def vm_list(self, user=ALICE):
        return [lower_keys(v) for v in self.banger('vm', 'list', '--json', user=user).json()]

    def boot_id(self, name):
        r = self.banger('vm', 'exec', name, '--', 'cat', '/proc/sys/kernel/random/boot_id',
                        timeout=120)
        bid = r.stdout.strip()
        self.assertRegex(bid, r'^[0-9a-f-]{36}$', repr(r))
        return bid

    def vmm_alive(self, pid):
        """The VMM process, seen from inside the container: alive and QEMU."""
        r = self.host.run(['cat', f'/proc/{pid}/comm'])
        return r.returncode == 0 and r.stdout.strip().startswith('qemu')

    def assert_vm_unchanged(self, name, pid, boot_id, when):
        info = self.vm_show(name)
        self.assertEqual(info.get('state'), 'running', f'{when}: vm show says {info}')
        self.assertEqual(info.get('pid'), pid, f'{when}: the VMM changed pid: {info}')
        self.assertTrue(self.vmm_alive(pid), f'{when}: VMM {pid} is gone')
        listed = {v.get('name'): v for v in self.vm_list()}
        self.assertIn(name, listed, f'{when}: vm list: {listed}')
        self.assertEqual(listed[name].get('state'), 'running', f'{when}: vm list: {listed}')
        self.assertEqual(self.boot_id(name), boot_id, f'{when}: the guest rebooted')

    def taps(self):
        r = self.host.run(['ip', '-o', 'link', 'show'], check=True)
        return [m.group(1) for m in re.finditer(r'^\d+: (bg[0-9a-f]+)[@:]', r.stdout, re.M)]

    def status_json(self, user=ALICE, status=None):
        r = self.banger('system', 'status', '--json', user=user, status=status)
        try:
            return r, r.json()
        except json.JSONDecodeError as e:
            self.fail(f'system status --json is not JSON ({e}): {r!r}')

    # ---- 1. install → status → vm run ------------------------------------

    def test_install_status_run(self):
        r = self.install()
        out = r.stdout + r.stderr
        for target in SYSTEM_FILES:
            self.assertTrue(self.host.exists(target), f'{target} not installed:\n{out}')
        self.assertEqual(self.host.read('/etc/polkit-1/rules.d/50-org.banger.rules'),
                         self.host.read('/usr/local/share/banger/system/50-org.banger.rules'))
        self.assertIn('alice', self.host.run(['getent', 'group', 'banger'], check=True).stdout,
                      f'system install adds SUDO_USER to group banger:\n{out}')
        self.assertTrue(self.host.exists('/var/lib/systemd/linger/alice'),
                        f'system install enables linger for alice:\n{out}')
        self.assertRegex(out, r'(?i)log (out and )?(in )?again|new login|log in',
                         'install tells the user to log in again for the group')

        groups = self.login_again()
        self.assertIn('banger', groups)
        r = self.banger('system', 'status', status=None)
        self.assertEqual(r.returncode, 0, f'banger system status after install: {r!r}')
        r, st = self.status_json()
        self.assertEqual(r.returncode, 0, repr(r))
        self.assertTrue(STATUS_KEYS <= set(st), f'keys of system status --json: {sorted(st)}')
        self.assertIs(st['ok'], True, json.dumps(st, indent=1))
        self.assertEqual(st['problems'], [], json.dumps(st, indent=1))
        self.assertIs(st['group']['member'], True, st['group'])
        self.assertIs(st['group']['effective'], True, st['group'])
        self.assertEqual(st['group']['name'], 'banger')
        self.assertIs(st['linger'], True)
        self.assertIs(st['drift'], False, st['versions'])
        self.assertIsInstance(st['versions']['cli'], str)
        for unit, u in st['units'].items():
            self.assertIsInstance(u['active'], str, unit)
            self.assertIsInstance(u['enabled'], str, unit)
        self.assertTrue({'cli', 'bangerd', 'helper', 'install_record'} <= set(st['versions']),
                        st['versions'])
        self.assertEqual(set(st['bus_names']), {'org.banger.Manager', 'org.banger.Helper'})
        self.assertTrue(all(isinstance(v, bool) for v in st['bus_names'].values()), st)
        self.assertIsInstance(st['network']['up'], bool, st['network'])

        r = self.banger('vm', 'run', '--', 'uname', '-a', status=None, timeout=300)
        self.assertEqual(r.returncode, 0, repr(r))
        self.assertRegex(r.stdout, r'^Linux \S+ ' + re.escape(host_kernel_release()) + ' ',
                         repr(r))
        # With the helper: a network device, no warning about a missing helper.
        self.assertNotRegex(r.stderr, r'(?i)helper|no network|without (a )?network', repr(r))
        journal = self.host.run(['journalctl', '-b', '--no-pager', '-o', 'cat',
                                 '-u', 'bangerd-root.service'], check=True).stdout
        self.assertRegex(journal, r'AUDIT uid=1000 method=EnsureNetwork .* result=ok', journal)
        self.assertRegex(journal, r'AUDIT uid=1000 method=CreateTap .* result=ok', journal)
        self.assertEqual(self.vm_list(), [], 'vm run removes its VM')
        # The first VM brought the network up, and status says so.
        r, st = self.status_json()
        self.assertEqual(r.returncode, 0, repr(r))
        self.assertIs(st['network']['up'], True, st['network'])
        self.assertIsInstance(st['network']['address'], str, st['network'])

        # The doctor of an unprivileged bangerd reads the firewall through
        # the helper (InspectFirewall), not "skip": issue 11, item 4.
        def doctor_rows():
            r = self.banger('doctor', '--json', status=None)
            try:
                return {d['id']: d for d in json.loads(r.stdout)}
            except json.JSONDecodeError as e:
                self.fail(f'doctor --json is not JSON ({e}): {r!r}')
        rows = doctor_rows()
        for check in ('nat', 'firewall'):
            self.assertEqual(rows[check]['status'], 'ok', rows[check])
            self.assertIn('read by the helper', rows[check]['message'], rows[check])
        self.host.run(['nft', 'add', 'table', 'ip', 'filter'], check=True)
        self.host.run(['nft', 'add', 'chain', 'ip', 'filter', 'FORWARD',
                       '{ type filter hook forward priority 0; policy drop; }'], check=True)
        row = doctor_rows()['firewall']
        self.assertEqual(row['status'], 'fail', row)
        self.assertIn('ip filter FORWARD', row['message'])
        self.host.run(['nft', 'delete', 'table', 'ip', 'filter'], check=True)

    # ---- issue 13 and issue 11's ssh on the real host, as alice ----------

    def vm_dir(self, name):
        return f'{DATA}/vms/{self.vm_show(name)["id"]}'

    def not_alices(self, top=DATA):
        """Paths under @top (in the container) not owned by alice."""
        out = []
        base = self.host.path(top)
        for dirpath, dirs, names in os.walk(base):
            for n in [''] + dirs + names:
                p = os.path.join(dirpath, n) if n else dirpath
                with contextlib.suppress(FileNotFoundError):
                    if os.lstat(p).st_uid != hostlib.USERS[ALICE]:
                        out.append(p[len(base) - len(top):])
        return out

    def check_warm_start(self, template):
        """Issue 13 item 1: @template's first boot saved the key's snapshot;
        a new VM is restored from it (the template's boot, no kernel banner
        in its console) and takes its own identity; `image warm list` and
        `prune` work as alice; everything in alice's data dir is alice's."""
        entries = self.banger('image', 'warm', 'list', '--json').json()
        self.assertEqual(len(entries), 1, f'the first boot saved one snapshot: {entries}')
        self.banger('vm', 'create', 'w1')
        self.banger('vm', 'start', 'w1', timeout=300)
        tmpl, clone = self.vm_show(template), self.vm_show('w1')
        self.assertEqual(clone.get('state'), 'running', clone)
        self.assertEqual(clone.get('boot_id'), tmpl.get('boot_id'),
                         'restored, not booted: the template\'s boot')
        console = self.host.read(f'{DATA}/vms/{clone["id"]}/console.log')
        self.assertNotIn(b'Linux version', console, 'a restore prints no kernel banner')
        self.assertEqual(len(self.banger('image', 'warm', 'list', '--json').json()), 1)
        for key in ('id', 'mac', 'ipv4'):
            self.assertNotEqual(clone.get(key), tmpl.get(key), key)
        r = self.banger('vm', 'exec', 'w1', '--', 'sh', '-c',
                        'hostname; cat /sys/class/net/eth0/address; '
                        'ip -4 -o addr show dev eth0; ping -c 1 -W 10 ' + tmpl['ipv4'])
        self.assertEqual(r.returncode, 0, repr(r))
        lines = r.stdout.splitlines()
        self.assertEqual(lines[0], 'w1', 'the clone\'s own hostname')
        self.assertEqual(lines[1], clone['mac'].lower(), 'the clone\'s own MAC')
        self.assertIn(f' {clone["ipv4"]}/', lines[2], 'the clone\'s own address')
        self.assertEqual(self.not_alices(), [], 'alice\'s data dir holds only her files')
        self.banger('vm', 'rm', '-f', 'w1')
        r = self.banger('image', 'warm', 'prune')
        self.assertRegex(r.stdout, r'freed .*\(1 snapshot', repr(r))
        self.assertEqual(self.banger('image', 'warm', 'list', '--json').json(), [])

    def check_ssh_without_sshd(self, name):
        """Issue 11: plain ssh and scp to a VM of the minimal image (no sshd
        in it) through this host's `sshd -i` run as alice by the
        ProxyCommand; the ssh service itself is masked in the tree."""
        self.assertNotEqual(self.host.run(['systemctl', 'is-active', 'ssh.service']).stdout
                            .strip(), 'active')
        self.banger('ssh-config')
        r = self.host.user(ALICE, ['ssh', '-o', 'BatchMode=yes', f'{name}.vm', 'echo', 'hi'],
                           timeout=180)
        self.assertEqual((r.returncode, r.stdout), (0, 'hi\n'), repr(r))
        r = self.host.user(ALICE, ['ssh', '-o', 'BatchMode=yes', f'{name}.vm', 'exit 7'],
                           timeout=180)
        self.assertEqual(r.returncode, 7, f'the guest command\'s exit status: {r!r}')
        # scp both ways (OpenSSH 9: SFTP, the host's sftp-server shipped in)
        self.host.user(ALICE, ['sh', '-c', 'head -c 300000 /dev/urandom > up.bin'], check=True)
        r = self.host.user(ALICE, ['scp', '-o', 'BatchMode=yes', 'up.bin',
                                   f'{name}.vm:/root/up.bin'], timeout=300)
        self.assertEqual(r.returncode, 0, repr(r))
        want = self.host.user(ALICE, ['md5sum', 'up.bin'], check=True).stdout.split()[0]
        got = self.banger('vm', 'exec', name, '--', 'md5sum', '/root/up.bin').stdout.split()[0]
        self.assertEqual(got, want, 'scp up: the guest has the very bytes')
        r = self.host.user(ALICE, ['scp', '-o', 'BatchMode=yes', f'{name}.vm:/root/up.bin',
                                   'down.bin'], timeout=300)
        self.assertEqual(r.returncode, 0, repr(r))
        self.host.user(ALICE, ['cmp', 'up.bin', 'down.bin'], check=True)
        self.assertEqual(self.host.stat('/home/alice/down.bin').st_uid, 1000)

    def guest_counter(self, name):
        r = self.banger('vm', 'exec', name, '--', 'cat', '/root/counter', timeout=120)
        return [int(n) for n in r.stdout.split()]

    def assert_counter_goes_on(self, name, before):
        """Every number since the start is there, once, in order, and the
        counter runs past @before: the guest process went on."""
        wait_until(lambda: self.guest_counter(name)[-1] > before, 60,
                   f'the guest counter to go on after {before}', interval=0.5)
        numbers = self.guest_counter(name)
        self.assertEqual(numbers, list(range(1, len(numbers) + 1)), 'numbers lost or repeated')

    def assert_suspended(self, name, ipv4, when, taps=1):
        info = self.vm_show(name)
        self.assertEqual(info.get('state'), 'suspended', f'{when}: {info}')
        self.assertIn(info.get('pid'), (0, None), f'{when}: {info}')
        self.assertEqual(info.get('ipv4'), ipv4, f'{when}: the lease is kept')
        listed = {v.get('name'): v.get('state') for v in self.vm_list()}
        self.assertEqual(listed.get(name), 'suspended', f'{when}: vm list: {listed}')
        # its tap is kept (with its claim on the address) until a reboot
        self.assertEqual(len(self.taps()), taps, f'{when}: taps {self.taps()}')
        self.assertTrue(self.host.exists(f'{self.vm_dir(name)}/suspend/vmstate'), when)

    def check_suspend_resume(self, name, boot_id, restart_helper, restart_daemon):
        """Issue 13 item 2: a suspended VM outlives restarts of both daemons
        and a reboot of the host with nothing of it running, and resumes
        where it was."""
        self.banger('vm', 'exec', name, '--', 'setsid', 'sh', '-c',
                    COUNTER + ' </dev/null >/dev/null 2>&1 &')
        wait_until(lambda: len(self.guest_counter(name)) >= 3, 60, 'the guest counter',
                   interval=0.5)
        info = self.vm_show(name)
        pid, ipv4 = info['pid'], info['ipv4']
        before = self.guest_counter(name)[-1]
        self.banger('vm', 'suspend', name, timeout=300)
        wait_until(lambda: not self.vmm_alive(pid), 30, f'VMM {pid} to end')
        self.assert_suspended(name, ipv4, 'after vm suspend')
        r = self.banger('vm', 'exec', name, '--', 'true', status=None)
        self.assertNotEqual(r.returncode, 0, f'exec in a suspended VM: {r!r}')
        self.assertIn(name, r.stderr, repr(r))

        restart_helper()
        restart_daemon()
        self.assert_suspended(name, ipv4, 'after both daemons restarted')
        t0 = time.monotonic()
        self.host.shutdown()
        self.host.boot()
        hostlib.log(f'reboot of the container: {time.monotonic() - t0:.1f} s')
        self.assert_suspended(name, ipv4, 'after a reboot', taps=0)
        self.assertEqual(self.host.unit_property('bangerd.service', 'ActiveState', user=ALICE),
                         'active')

        self.banger('vm', 'resume', name, timeout=300)
        info = self.vm_show(name)
        self.assertEqual(info.get('state'), 'running', info)
        self.assertEqual(info.get('ipv4'), ipv4, 'the same address')
        self.assertNotEqual(info.get('pid'), pid)
        self.assertTrue(self.vmm_alive(info['pid']))
        self.assertEqual(len(self.taps()), 1, 'the tap is back')
        self.assertEqual(self.boot_id(name), boot_id, 'the same boot')
        self.assertFalse(self.host.exists(f'{self.vm_dir(name)}/suspend/vmstate'))
        self.assert_counter_goes_on(name, before)
        self.assertEqual(self.banger('vm', 'exec', name, '--', 'echo', 'hi').stdout, 'hi\n')
        gateway = self.status_json()[1]['network']['address'].split('/')[0]
        r = self.banger('vm', 'exec', name, '--', 'ping', '-c', '1', '-W', '10', gateway,
                        status=None)
        self.assertEqual(r.returncode, 0, f'the guest reaches its gateway: {r!r}')
        # ssh after the reboot: alice's runtime dir (where the proxy writes
        # sshd's configuration) is a new one
        r = self.host.user(ALICE, ['ssh', '-o', 'BatchMode=yes', f'{name}.vm', 'tail -n 1',
                                   '/root/counter'], timeout=180)
        self.assertEqual(r.returncode, 0, repr(r))
        self.assertGreater(int(r.stdout), before, repr(r))

    # ---- 2. a long-lived VM outlives restarts and logout -------------------

    def test_vm_survives_restarts_and_logout(self):
        self.install_and_login()
        terminal = self.host.session(ALICE)      # alice is logged in, a terminal open
        self.banger('vm', 'create', VM)
        self.banger('vm', 'start', VM, timeout=300)
        info = self.vm_show(VM)
        self.assertEqual(info.get('state'), 'running', info)
        pid = info.get('pid')
        self.assertIsInstance(pid, int, info)
        self.assertGreater(pid, 0, info)
        self.assertTrue(self.vmm_alive(pid))
        boot_id = self.boot_id(VM)
        self.assertEqual(self.banger('vm', 'exec', VM, '--', 'echo', 'hi').stdout, 'hi\n')

        # dev's first boot saved the warm snapshot: a second VM restores it
        t0 = time.monotonic()
        self.check_warm_start(VM)
        t1 = time.monotonic()
        self.check_ssh_without_sshd(VM)
        t2 = time.monotonic()
        hostlib.log(f'added: warm start {t1 - t0:.1f} s, ssh without sshd {t2 - t1:.1f} s')

        # systemd refuses a 6th start of a unit within 10 s (StartLimitBurst=5,
        # StartLimitIntervalSec=10s, the defaults); this cycle starts each
        # unit twice (the plain systemctl restart, then `banger system
        # restart`) every few seconds. The test's own systemctl restarts
        # clear the counter first, as an administrator would after "start
        # request repeated too quickly"; `banger system restart` gets no such
        # help.
        def restart_helper():
            self.host.run(['systemctl', 'reset-failed', 'bangerd-root.service'])
            r = self.host.run(['systemctl', 'restart', 'bangerd-root.service'])
            self.assertEqual(r.returncode, 0, repr(r))

        def restart_daemon():
            self.host.user(ALICE, ['systemctl', '--user', 'reset-failed', 'bangerd.service'])
            r = self.host.user(ALICE, ['systemctl', '--user', 'restart', 'bangerd.service'])
            self.assertEqual(r.returncode, 0, repr(r))

        def system_restart():
            self.banger('system', 'restart')

        def logout_login():
            nonlocal terminal
            terminal.close()
            self.host.logout(ALICE)
            self.assertEqual(self.host.user_state(ALICE), 'lingering',
                             'with linger, alice\'s manager stays after logout')
            terminal = self.host.session(ALICE)

        steps = [('systemctl restart bangerd-root', restart_helper),
                 ('systemctl --user restart bangerd', restart_daemon),
                 ('banger system restart', system_restart),
                 ('logout and login', logout_login)]
        for what, step in steps:
            step()
            self.assert_vm_unchanged(VM, pid, boot_id, f'after {what}')
            self.assertEqual(self.banger('vm', 'exec', VM, '--', 'echo', 'hi').stdout, 'hi\n')

        lost = []
        for cycle in range(20):
            for what, step in steps:
                step()
            info = self.vm_show(VM)
            if info.get('state') != 'running' or info.get('pid') != pid \
                    or not self.vmm_alive(pid):
                lost.append((cycle, info))
                break
            self.assert_vm_unchanged(VM, pid, boot_id, f'after restart cycle {cycle + 1}')
        self.assertEqual(lost, [], 'guests lost in 20 restart cycles')
        terminal.close()
        t0 = time.monotonic()
        self.check_suspend_resume(VM, boot_id, restart_helper, restart_daemon)
        hostlib.log(f'added: suspend, restarts, reboot, resume {time.monotonic() - t0:.1f} s')
        self.banger('vm', 'rm', '-f', VM)

    # ---- 3. a user not in group banger ----------------------------------

    def test_user_not_in_group_refused(self):
        self.install()
        self.assertNotIn('banger', self.host.user(BOB, ['id', '-nG']).stdout.split())
        r = self.banger('vm', 'run', '--', 'true', user=BOB, status=None, timeout=300)
        self.assertNotEqual(r.returncode, 0, f'bob, not in group banger, ran a VM: {r!r}')
        self.assertRegex(r.stderr, r'(?i)group\W+banger|banger\W+group',
                         f'the error names group banger: {r!r}')
        self.assertRegex(r.stderr, r'banger system install --user bob|usermod -aG banger bob|'
                                   r'gpasswd -a bob banger|adduser bob banger',
                         f'the error says how to fix it: {r!r}')
        self.assertEqual(self.vm_list(user=BOB), [], 'nothing is left in vm list')
        self.assertEqual(self.taps(), [], 'no tap is left')
        vms = self.host.path('/home/bob/.local/share/banger/vms')
        self.assertEqual(os.listdir(vms) if os.path.isdir(vms) else [], [],
                         'no VM directory is left')

    # ---- 4. uninstall --------------------------------------------------

    def listing(self):
        """Every path under /etc, /usr and /var/lib of the container."""
        out = set()
        for top in ('etc', 'usr', 'var/lib'):
            base = os.path.join(self.host.root, top)
            for dirpath, dirs, names in os.walk(base):
                for n in dirs + names:
                    out.add('/' + os.path.relpath(os.path.join(dirpath, n), self.host.root))
        return out

    # What the system itself writes while it runs (not banger's): journal
    # catalogs, polkit's and systemd's own state, the user's linger-less
    # traces. Measured on the booted tree with no banger command run.
    SYSTEM_NOISE = re.compile(r'^/var/lib/(systemd/(timers|catalog|coredump|backlight|'
                              r'random-seed|timesync)|private|dbus|polkit-1|sudo)(/|$)')

    def test_uninstall_leaves_nothing(self):
        before = self.listing()
        self.install_and_login()
        self.banger('vm', 'run', '--', 'true', timeout=300)
        self.banger('vm', 'create', VM)
        self.banger('vm', 'start', VM, timeout=300)
        r = self.host.sudo(ALICE, ['banger', 'system', 'uninstall'])
        self.assertNotEqual(r.returncode, 0, f'uninstall refuses while a VM runs: {r!r}')
        self.assertRegex(r.stdout + r.stderr, r'--force', repr(r))
        for target in SYSTEM_FILES:
            self.assertTrue(self.host.exists(target), f'a refused uninstall removed {target}')
        self.assertEqual(self.vm_show(VM).get('state'), 'running')
        self.banger('vm', 'stop', VM, timeout=120)

        r = self.host.sudo(ALICE, ['banger', 'system', 'uninstall'])
        self.assertEqual(r.returncode, 0, repr(r))
        after = self.listing()
        added = sorted(p for p in after - before if not self.SYSTEM_NOISE.match(p))
        removed = sorted(p for p in before - after if not self.SYSTEM_NOISE.match(p))
        self.assertEqual(added, [], f'left outside the user\'s data after uninstall:\n{r!r}')
        self.assertEqual(removed, [], 'uninstall removed files it did not install')
        for target in SYSTEM_FILES:
            self.assertFalse(self.host.exists(target), target)
        self.assertEqual(self.host.unit_property('bangerd-root.service', 'LoadState'), 'not-found',
                         f'the helper\'s unit is gone after uninstall: {r!r}')
        self.assertEqual(self.host.unit_property('bangerd.service', 'LoadState', user=ALICE),
                         'not-found', f'alice\'s bangerd unit is gone after uninstall: {r!r}')
        for name in ('bangerd-root', 'bangerd'):
            self.assertNotEqual(self.host.run(['pgrep', '-x', name]).returncode, 0,
                                f'{name} still runs after uninstall')
        # the user's data stays, and so does the group (only --purge removes it)
        self.assertTrue(self.host.exists('/home/alice/.local/share/banger/banger.db'))
        self.assertEqual(self.host.run(['getent', 'group', 'banger']).returncode, 0)

        r = self.host.sudo(ALICE, ['banger', 'system', 'uninstall'])
        self.assertEqual(r.returncode, 0, repr(r))
        self.assertRegex(r.stdout + r.stderr, r'(?i)nothing to do', repr(r))
        self.assertEqual(self.listing() - after, set())

    # ---- 5. the units' directives, and the helper's writes under them ------

    def unit_directives(self, unit, user=None):
        """[Service] directives of @unit as systemd loads them (the unit
        file and its drop-ins, via `systemctl cat`): name → list of values
        (list-valued directives accumulate; an empty value resets)."""
        argv = ['systemctl'] + (['--user'] if user else []) + ['cat', unit]
        r = self.host.user(user, argv) if user else self.host.run(argv)
        self.assertEqual(r.returncode, 0, repr(r))
        section = None
        out = {}
        for line in r.stdout.splitlines():
            line = line.strip()
            if not line or line[0] in '#;':
                continue
            if line.startswith('['):
                section = line
                continue
            if section != '[Service]' or '=' not in line:
                continue
            k, v = line.split('=', 1)
            k, v = k.strip(), v.strip()
            if v == '':
                out[k] = []
            else:
                out.setdefault(k, []).append(v)
        return out

    def expand(self, value, user):
        if user:
            uid = hostlib.USERS[user]
            value = value.replace('%h', f'/home/{user}').replace('%t', f'/run/user/{uid}')
            value = value.replace('%U', str(uid))
        else:
            value = value.replace('%t', '/run').replace('%h', '/root')
        return value

    LIST_DIRECTIVES = {'CapabilityBoundingSet', 'AmbientCapabilities', 'RestrictAddressFamilies',
                       'ReadWritePaths', 'ReadOnlyPaths', 'InaccessiblePaths', 'ExecPaths',
                       'NoExecPaths', 'SystemCallFilter', 'RestrictNamespaces', 'DeviceAllow',
                       'SupplementaryGroups'}
    NOT_COMPARED = {'ExecStart', 'ExecStartPre', 'ExecStartPost', 'ExecStop', 'ExecReload',
                    'Environment'}

    def assert_directives_in_force(self, unit, user=None):
        want = self.unit_directives(unit, user)
        self.assertIn('KillMode', want, f'{unit} sets KillMode')
        self.assertEqual(want['KillMode'], ['process'], unit)
        props = [k for k in want if k not in self.NOT_COMPARED]
        argv = ['systemctl'] + (['--user'] if user else []) + ['show', unit] + \
            [f'-p{p}' for p in props]
        r = self.host.user(user, argv) if user else self.host.run(argv)
        self.assertEqual(r.returncode, 0, repr(r))
        shown = {}
        for line in r.stdout.splitlines():
            k, _, v = line.partition('=')
            shown[k] = v
        mismatches = []
        for k in props:
            values = [self.expand(v, user) for v in want[k]]
            got = shown.get(k)
            if got is None:
                mismatches.append(f'{k}: not known to systemd (ignored)')
                continue
            if k in self.LIST_DIRECTIVES:
                w = {x.lower() for v in values for x in v.split()}
                g = {x.lower() for x in got.split()}
                if k.endswith('Paths'):
                    # "-" (ignore if missing) is shown too; compare the paths.
                    w = {x.lstrip('-+') for x in w}
                    g = {x.lstrip('-+') for x in g}
                if w != g:
                    mismatches.append(f'{k}: unit {sorted(w)} != in force {sorted(g)}')
                continue
            v = values[-1]
            if k == 'SystemCallArchitectures' and v == 'native':
                ok = got in ('native', 'x86-64')
            elif v.lower() in ('yes', 'true', 'on', '1') and got in ('yes', 'true'):
                ok = True
            elif v.lower() in ('no', 'false', 'off', '0') and got in ('no', 'false'):
                ok = True
            elif k in ('TimeoutStartSec', 'TimeoutStopSec', 'RestartSec'):
                ok = True  # shown in another unit; not a sandboxing directive
            else:
                ok = v == got
            if not ok:
                mismatches.append(f'{k}: unit {v!r} != in force {got!r}')
        self.assertEqual(mismatches, [], f'{unit}: directives not in force:\n{r.stdout}')
        # systemd said nothing against the unit files while loading them
        journal = self.host.run(['journalctl', '-b', '--no-pager', '-o', 'cat'],
                                check=True).stdout
        complaints = [line for line in journal.splitlines()
                      if unit in line and re.search(r'Unknown (key|section)|[Ii]gnoring|'
                                                    r'Failed to parse|not supported', line)]
        self.assertEqual(complaints, [], f'systemd complained about {unit}')
        return want

    def main_pid(self, unit, user=None):
        pid = int(self.host.unit_property(unit, 'MainPID', user=user) or 0)
        self.assertGreater(pid, 0, f'{unit} is not running')
        return pid

    def writable_in(self, pid, path):
        """Whether @path is writable inside the mount namespace of @pid (as
        root: only a read-only mount makes access(W_OK) fail)."""
        r = self.host.run(['nsenter', '-t', str(pid), '-m', '--', 'test', '-w', path])
        return r.returncode == 0

    def proc_status(self, pid):
        text = self.host.run(['cat', f'/proc/{pid}/status'], check=True).stdout
        return dict(line.split(':\t', 1) for line in text.splitlines() if ':\t' in line)

    CAPS = ['CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_DAC_READ_SEARCH', 'CAP_FOWNER', 'CAP_FSETID',
            'CAP_KILL', 'CAP_SETGID', 'CAP_SETUID', 'CAP_SETPCAP', 'CAP_LINUX_IMMUTABLE',
            'CAP_NET_BIND_SERVICE', 'CAP_NET_BROADCAST', 'CAP_NET_ADMIN', 'CAP_NET_RAW',
            'CAP_IPC_LOCK', 'CAP_IPC_OWNER', 'CAP_SYS_MODULE', 'CAP_SYS_RAWIO', 'CAP_SYS_CHROOT',
            'CAP_SYS_PTRACE', 'CAP_SYS_PACCT', 'CAP_SYS_ADMIN', 'CAP_SYS_BOOT', 'CAP_SYS_NICE',
            'CAP_SYS_RESOURCE', 'CAP_SYS_TIME', 'CAP_SYS_TTY_CONFIG', 'CAP_MKNOD', 'CAP_LEASE',
            'CAP_AUDIT_WRITE', 'CAP_AUDIT_CONTROL', 'CAP_SETFCAP', 'CAP_MAC_OVERRIDE',
            'CAP_MAC_ADMIN', 'CAP_SYSLOG', 'CAP_WAKE_ALARM', 'CAP_BLOCK_SUSPEND',
            'CAP_AUDIT_READ', 'CAP_PERFMON', 'CAP_BPF', 'CAP_CHECKPOINT_RESTORE']

    def helper_call(self, method, *args, interactive=False):
        """gdbus call of org.banger.Helper.METHOD as alice (a login session;
        what bangerd does, minus bangerd)."""
        argv = ['gdbus', 'call', '--system', '-d', 'org.banger.Helper', '-o', '/org/banger/Helper',
                '-m', f'org.banger.Helper.{method}'] + list(args)
        return self.host.user(ALICE, argv, timeout=60)

    def test_unit_directives_in_force(self):
        self.install_and_login()
        # Something that runs through both: a VM (helper: network, tap).
        self.banger('vm', 'run', '--', 'true', timeout=300)

        # bangerd-root
        want = self.assert_directives_in_force('bangerd-root.service')
        self.assertEqual(self.host.unit_property('bangerd-root.service', 'ActiveState'), 'active')
        pid = self.main_pid('bangerd-root.service')
        st = self.proc_status(pid)
        caps = int(st['CapBnd'], 16)
        in_force = {c for i, c in enumerate(self.CAPS) if caps >> i & 1}
        wanted = {c.upper() for v in want.get('CapabilityBoundingSet', []) for c in v.split()}
        if wanted:
            self.assertEqual(in_force, wanted, 'the helper\'s bounding set')
        if want.get('NoNewPrivileges', ['no'])[-1] == 'yes':
            self.assertEqual(st['NoNewPrivs'].strip(), '1')
        self.assertEqual(st['Seccomp'].strip(), '2', 'SystemCallArchitectures= etc. in force')
        protect = want.get('ProtectSystem', ['no'])[-1]
        rw = {self.expand(p, None).lstrip('-') for v in want.get('ReadWritePaths', [])
              for p in v.split()}
        if protect in ('yes', 'full', 'strict'):
            self.assertFalse(self.writable_in(pid, '/usr/lib'), 'ProtectSystem: /usr read-only')
            for p in rw:
                if self.host.exists(p):
                    self.assertTrue(self.writable_in(pid, p), f'ReadWritePaths: {p} writable')
        if protect in ('full', 'strict'):
            self.assertFalse(self.writable_in(pid, '/etc/systemd'), 'ProtectSystem: /etc read-only')
        if want.get('ProtectHome', ['no'])[-1] == 'read-only':
            self.assertFalse(self.writable_in(pid, '/home/alice/.bashrc'),
                             'ProtectHome: a home is read-only to the helper')
        if want.get('PrivateTmp', ['no'])[-1] == 'yes':
            self.host.run(['touch', '/tmp/banger-host-probe'], check=True)
            r = self.host.run(['nsenter', '-t', str(pid), '-m', '--', 'test', '-e',
                               '/tmp/banger-host-probe'])
            self.assertNotEqual(r.returncode, 0, 'PrivateTmp: the helper has its own /tmp')

        # bangerd (alice's user manager)
        want = self.assert_directives_in_force('bangerd.service', user=ALICE)
        self.assertEqual(self.host.unit_property('bangerd.service', 'ActiveState', user=ALICE),
                         'active')
        pid = self.main_pid('bangerd.service', user=ALICE)
        st = self.proc_status(pid)
        if want.get('NoNewPrivileges', ['no'])[-1] == 'yes':
            self.assertEqual(st['NoNewPrivs'].strip(), '1')
        if want.get('ProtectSystem', ['no'])[-1] == 'strict':
            self.assertFalse(self.writable_in(pid, '/var/tmp'), 'ProtectSystem=strict')
            self.assertFalse(self.writable_in(pid, '/etc'), 'ProtectSystem=strict')
        if want.get('ProtectHome', ['no'])[-1] == 'read-only':
            self.assertFalse(self.writable_in(pid, '/home/alice'), 'ProtectHome=read-only')
        for v in want.get('ReadWritePaths', []):
            for p in v.split():
                p = self.expand(p, ALICE).lstrip('-')
                self.assertTrue(self.writable_in(pid, p), f'bangerd: ReadWritePaths {p}')

    def install_fakes(self):
        """The project's fakes for the tools that cannot run here (jailer,
        Firecracker, dmsetup), installed into the container, and a
        helper.conf pointing at them. Paths the helper's sandbox must open
        (jail base, snapshot records, the user's directories) stay at their
        defaults."""
        fakes = os.path.join(hostlib.source_root(), 'tests', 'fakes')
        lib = '/usr/local/lib/banger-test'
        dst = os.path.join(self.host.root, lib.lstrip('/'))
        os.makedirs(os.path.join(dst, 'bin'), exist_ok=True)
        for n in ('fake-jailer', 'fake-firecracker.py', 'fake-dmsetup',
                  'fake_dm_state.py'):
            with open(os.path.join(fakes, n), 'rb') as f:
                data = f.read()
            with open(os.path.join(dst, n), 'wb') as f:
                f.write(data)
            os.chmod(os.path.join(dst, n), 0o755)
        os.symlink(f'{lib}/fake-firecracker.py', os.path.join(dst, 'bin', 'firecracker'))
        # The fake Firecracker validates every request against the upstream
        # contract, which lives beside the checkout (never in the repo).
        contract = os.path.join(os.path.dirname(hostlib.source_root()), 'shared', 'contracts',
                                'firecracker-v1.16.1.yaml')
        if not os.path.exists(contract):
            contract = '/work/shared/contracts/firecracker-v1.16.1.yaml'
        cdir = os.path.join(self.host.root, 'work/shared/contracts')
        os.makedirs(cdir, exist_ok=True)
        with open(contract, 'rb') as f, open(os.path.join(cdir, os.path.basename(contract)),
                                             'wb') as g:
            g.write(f.read())
        # The fake device-mapper keeps its "devices" where the real ones
        # are, under /dev (the unit leaves /dev writable for them).
        state = '/dev/banger-test-dm'
        for tool in ('dmsetup',):
            with open(os.path.join(dst, 'bin', tool), 'w') as f:
                f.write('#!/usr/bin/python3\nimport os, sys\n'
                        f'os.environ["BANGER_FAKE_DM_STATE"] = "{state}"\n'
                        f'os.execv("{lib}/fake-{tool}", ["{tool}"] + sys.argv[1:])\n')
            os.chmod(os.path.join(dst, 'bin', tool), 0o755)
        self.host.run(['mkdir', '-p', f'{state}/dev/mapper'], check=True)
        self.host.run(['touch', f'{state}/dev/mapper/control'], check=True)
        # Loop devices are real (the helper attaches them itself with
        # LOOP_CONFIGURE): the nodes udev would make on a host, in the
        # container's /dev (nspawn makes none). They are the machine's
        # loop devices: whatever this test leaves attached is detached.
        self.host.run(['sh', '-c', '[ -e /dev/loop-control ] || mknod -m 0660 /dev/loop-control '
                       'c 10 237; for i in $(seq 0 255); do [ -e /dev/loop$i ] || '
                       'mknod -m 0660 /dev/loop$i b 7 $i; done'], check=True)
        self.addCleanup(self.detach_loops, '/home/alice/')
        conf = build_config()['BANGER_SYSCONFDIR'] + '/helper.conf'
        self.host.run(['mkdir', '-p', os.path.dirname(conf)], check=True)
        with open(os.path.join(self.host.root, conf.lstrip('/')), 'w') as f:
            f.write('[jail]\n'
                    f'jailer={lib}/fake-jailer\n'
                    f'firecracker={lib}/bin/firecracker\n'
                    '[storage]\n'
                    f'dmsetup={lib}/bin/dmsetup\n'
                    f'dm_control={state}/dev/mapper/control\n'
                    f'dev_dir={state}/dev\n')
        return state

    def loops(self, under):
        """{'/dev/loopN': backing file} of the loop devices backed by files
        under @under, as the container sees them."""
        r = self.host.run(['sh', '-c', 'grep -H . /sys/block/loop*/loop/backing_file || true'])
        out = {}
        for line in r.stdout.splitlines():
            path, _, backing = line.partition(':')
            if backing.startswith(under):
                out['/dev/' + path.split('/')[3]] = backing
        return out

    def detach_loops(self, under):
        if self.host.nspawn is None or self.host.nspawn.poll() is not None:
            return
        for dev in self.loops(under):
            self.host.run(['losetup', '-d', dev])

    def test_helper_writes_under_units(self):
        self.install_and_login()
        state = self.install_fakes()
        r = self.host.run(['systemctl', 'restart', 'bangerd-root.service'])
        self.assertEqual(r.returncode, 0, repr(r))
        vm_id = '0123456789abcdef'
        data = '/home/alice/.local/share/banger'
        # alice's files, made by alice
        self.host.user(ALICE, ['mkdir', '-p', f'{data}/images/img1', f'{data}/kernels/k1',
                               f'{data}/vms/{vm_id}'], check=True)
        self.host.user(ALICE, ['truncate', '-s', '4M', f'{data}/images/img1/rootfs.raw'],
                       check=True)
        self.host.user(ALICE, ['sh', '-c', f'printf "\\177ELF fake" > {data}/kernels/k1/vmlinux; '
                               f'printf "fake disk" > {data}/vms/{vm_id}/disk.raw'], check=True)

        # CreateSnapshot: the COW file in alice's VM directory, the record
        # in /run/banger, the "devices" handed to alice.
        r = self.helper_call('CreateSnapshot', vm_id, f'{data}/images/img1/rootfs.raw', '{}')
        self.assertEqual(r.returncode, 0, f'CreateSnapshot under the unit: {r!r}')
        self.assertIn(f'{state}/dev/mapper/banger-{vm_id}', r.stdout)
        cow = f'{data}/vms/{vm_id}/snapshot.cow'
        st = self.host.stat(cow)
        self.assertEqual(st.st_uid, 1000, 'the COW file is alice\'s')
        self.assertEqual(st.st_size, 4 * 1024 * 1024 + 4 * 1024 * 1024)
        self.assertTrue(self.host.exists(f'/run/banger/snapshots/{vm_id}'))
        dev = self.host.stat(f'{state}/dev/mapper/banger-{vm_id}')
        self.assertEqual(dev.st_uid, 1000)
        loops = self.loops('/home/alice/')
        self.assertEqual(sorted(loops.values()), sorted([f'{data}/images/img1/rootfs.raw', cow]),
                         'the origin and the COW file are attached')
        r = self.helper_call('RemoveSnapshot', vm_id, '{}')
        self.assertEqual(r.returncode, 0, f'RemoveSnapshot under the unit: {r!r}')
        self.assertFalse(self.host.exists(f'/run/banger/snapshots/{vm_id}'))
        self.assertEqual(self.loops('/home/alice/'), {}, 'RemoveSnapshot detached both')

        # LaunchJailed: the jail under /srv/jailer with alice's files linked
        # in, the VMM running as alice; KillJailed; RemoveJail.
        spec = (f"{{'vm_id': <'{vm_id}'>, 'kernel': <'{data}/kernels/k1/vmlinux'>, "
                f"'rootfs': <'{data}/vms/{vm_id}/disk.raw'>, 'vcpus': <uint32 1>, "
                f"'memory_mib': <uint32 128>}}")
        r = self.helper_call('LaunchJailed', spec, '{}')
        self.assertEqual(r.returncode, 0, f'LaunchJailed under the unit: {r!r}')
        pid = int(re.match(r'\(uint32 (\d+),\)', r.stdout.strip()).group(1))
        jail = f'/srv/jailer/firecracker/{vm_id}'
        root = f'{jail}/root'
        self.assertEqual(self.host.run(['cat', f'/proc/{pid}/comm']).stdout.strip(), 'firecracker')
        self.assertEqual(self.host.run(['stat', '-c', '%u', f'/proc/{pid}'],
                                       check=True).stdout.strip(), '1000')
        self.assertEqual(self.host.read(f'{root}/firecracker.pid').decode().strip(), str(pid))
        self.assertEqual(self.host.read(f'{jail}/banger-owner').decode().strip(), '1000')
        # alice's very files are in the jail, as the VMM sees it: hard
        # links, or (home and /srv/jailer are different mounts in the
        # unit's namespace: ReadWritePaths= binds) bind mounts in the
        # helper's mount namespace, which the VMM inherits.
        for name, src in (('vmlinux', f'{data}/kernels/k1/vmlinux'),
                          ('rootfs', f'{data}/vms/{vm_id}/disk.raw')):
            a = self.host.run(['nsenter', '-t', str(pid), '-m', '--', 'stat', '-c', '%d:%i',
                               f'{root}/{name}'], check=True).stdout
            b = self.host.run(['stat', '-c', '%d:%i', src], check=True).stdout
            self.assertEqual(a, b, f'{name} is alice\'s very file, placed in the jail')
        # The VMM outlives a restart of the helper (KillMode=process).
        r = self.host.run(['systemctl', 'restart', 'bangerd-root.service'])
        self.assertEqual(r.returncode, 0, repr(r))
        self.assertEqual(self.host.run(['cat', f'/proc/{pid}/comm']).stdout.strip(), 'firecracker',
                         'the jailed VMM survived the helper\'s restart')
        r = self.helper_call('KillJailed', vm_id, '15', '{}')
        self.assertEqual(r.returncode, 0, f'KillJailed under the unit: {r!r}')
        wait_until(lambda: self.host.run(['test', '-d', f'/proc/{pid}']).returncode != 0
                   or 'Z' in self.host.run(['ps', '-o', 'stat=', '-p', str(pid)]).stdout,
                   30, 'the jailed VMM to exit')
        r = self.helper_call('RemoveJail', vm_id, '{}')
        self.assertEqual(r.returncode, 0, f'RemoveJail under the unit: {r!r}')
        self.assertFalse(self.host.exists(jail))
        journal = self.host.run(['journalctl', '-b', '--no-pager', '-o', 'cat', '-u',
                                 'bangerd-root.service'], check=True).stdout
        for method in ('CreateSnapshot', 'RemoveSnapshot', 'LaunchJailed', 'KillJailed',
                       'RemoveJail'):
            self.assertRegex(journal, rf'AUDIT uid=1000 method={method} .* result=ok')


if __name__ == '__main__':
    unittest.main(verbosity=2)
