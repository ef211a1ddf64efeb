#!/usr/bin/python3
"""bangerd-root against the real polkitd on a private system bus, with the
network work done inside a network namespace the test creates.

User banger-test-a is allowed every org.banger action by a test rule;
banger-test-b by nothing (the policy's defaults then ask for an admin,
which without an agent means no)."""

import hashlib
import os
import re
import subprocess
import unittest
import xml.etree.ElementTree as ET

from system_bus import SystemBus, build_root, stop_helper_checked, wait_until

A = 'banger-test-a'
B = 'banger-test-b'
VM_ID = '0123456789abcdef'
TAP = 'bg0123456789ab'
BRIDGE = 'banger0'
ADDRESS = '10.77.0.1/24'

ACTIONS = {
    'org.banger.network.setup', 'org.banger.vm.network', 'org.banger.vm.launch',
    'org.banger.storage.snapshot', 'org.banger.network.dns', 'org.banger.system.update',
    'org.banger.network.inspect',
}

# Extra polkit rules per test: to show that ownership (not polkit) is what
# stops B from deleting A's tap, B is allowed org.banger.vm.network there.
EXTRA_RULES = {
    'test_address_claims': '''
polkit.addRule(function(action, subject) {
    if (action.id == "org.banger.vm.network" && subject.user == "banger-test-b") {
        return polkit.Result.YES;
    }
    return polkit.Result.NOT_HANDLED;
});
''',
    'test_teardown_keeps_other_users_taps': '''
polkit.addRule(function(action, subject) {
    if ((action.id == "org.banger.vm.network" || action.id == "org.banger.network.setup")
        && subject.user == "banger-test-b") {
        return polkit.Result.YES;
    }
    return polkit.Result.NOT_HANDLED;
});
''',
    'test_delete_tap_ownership': '''
polkit.addRule(function(action, subject) {
    if (action.id == "org.banger.vm.network" && subject.user == "banger-test-b") {
        return polkit.Result.YES;
    }
    return polkit.Result.NOT_HANDLED;
});
''',
}


def policy_path():
    return os.path.join(build_root(), 'data', 'polkit', 'org.banger.policy')


class HelperTest(unittest.TestCase):
    helper_args = ()

    def setUp(self):
        self.bus = SystemBus(extra_rules=EXTRA_RULES.get(self._testMethodName, '')).start()
        self.addCleanup(self.bus.stop)
        self.bus.start_helper(bridge=BRIDGE, address=ADDRESS, args=self.helper_args)
        self.uid_a = self.bus.users[A][0]
        self.uid_b = self.bus.users[B][0]

    def tearDown(self):
        stop_helper_checked(self, self.bus)

    # ---- helpers ------------------------------------------------------

    def call_ok(self, user, method, *args):
        ok, out = self.bus.call(user, method, *args)
        self.assertTrue(ok, f'{method} as {user} failed: {out}')
        return out

    def call_error(self, user, method, *args):
        ok, out = self.bus.call(user, method, *args)
        self.assertFalse(ok, f'{method} as {user} unexpectedly succeeded: {out}')
        m = re.search(r'GDBus\.Error:([A-Za-z0-9_.]+):', out)
        self.assertIsNotNone(m, out)
        return m.group(1), out

    def assert_error(self, expected, user, method, *args):
        name, out = self.call_error(user, method, *args)
        self.assertEqual(name, expected, out)
        return out

    def nft_table(self):
        res = subprocess.run(['ip', 'netns', 'exec', self.bus.netns, 'nft', 'list', 'table',
                              'inet', 'banger'], capture_output=True, text=True)
        return res.stdout if res.returncode == 0 else None

    def addresses(self, ifname):
        import json
        out = self.bus.ns_run(['ip', '-j', 'addr', 'show', 'dev', ifname])
        return [f"{a['local']}/{a['prefixlen']}" for a in json.loads(out)[0]['addr_info']
                if a['family'] == 'inet']

    def assert_nothing_created(self):
        self.assertIsNone(self.bus.link(BRIDGE), 'the bridge exists')
        self.assertIsNone(self.bus.link(TAP), 'the tap exists')
        self.assertIsNone(self.nft_table(), 'the nftables table exists')

    def helper_log(self):
        return self.bus.helper.output()

    def wait_for_log(self, pattern):
        return wait_until(lambda: re.search(pattern, self.helper_log(), re.M), 5.0,
                          f'/{pattern}/ in the helper log')

    # ---- cases --------------------------------------------------------

    def test_ensure_network(self):
        out = self.call_ok(A, 'EnsureNetwork', '{}')
        self.assertEqual(out, f"('{ADDRESS}',)")

        link = self.bus.link(BRIDGE)
        self.assertIsNotNone(link)
        self.assertEqual(link['linkinfo']['info_kind'], 'bridge')
        self.assertIn('UP', link['flags'])
        self.assertEqual(self.addresses(BRIDGE), [ADDRESS])
        table = self.nft_table()
        self.assertIsNotNone(table)
        self.assertRegex(table, r"ip saddr @vms ip daddr != 10\.77\.0\.0/24 masquerade")
        self.assertIn(f'iifname "{BRIDGE}" ip saddr @vms accept', table)
        self.assertEqual(self.bus.ns_run(['cat', '/proc/sys/net/ipv4/ip_forward']).strip(), '1')

        # Idempotent: same answer, one address, one table with the same rules.
        out = self.call_ok(A, 'EnsureNetwork', "{'interactive': <false>}")
        self.assertEqual(out, f"('{ADDRESS}',)")
        self.assertEqual(self.addresses(BRIDGE), [ADDRESS])
        self.assertEqual(self.nft_table(), table)
        self.assertEqual(len(re.findall('masquerade', self.nft_table())), 1)

    def test_denied_user_changes_nothing(self):
        out = self.assert_error('org.freedesktop.DBus.Error.AccessDenied', B, 'EnsureNetwork', '{}')
        self.assertIn('not authorized', out)
        self.assert_error('org.freedesktop.DBus.Error.AccessDenied', B, 'CreateTap', VM_ID, '{}')
        # interactive with no agent anywhere: still no
        self.assert_error('org.freedesktop.DBus.Error.AccessDenied', B, 'EnsureNetwork',
                          "{'interactive': <true>}")
        self.assert_nothing_created()

    def test_invalid_arguments_before_polkit(self):
        invalid = 'org.banger.Error.InvalidArgument'
        # B is denied by polkit, yet gets InvalidArgument: validation ran first.
        for user in (B, A):
            self.assert_error(invalid, user, 'CreateTap', '../x', '{}')
            self.assert_error(invalid, user, 'EnsureNetwork', "{'bogus': <1>}")
            self.assert_error(invalid, user, 'EnsureNetwork', "{'interactive': <'yes'>}")
            self.assert_error(invalid, user, 'DeleteTap', VM_ID.upper(), '{}')
            self.assert_error(invalid, user, 'KillJailed', VM_ID, '19', '{}')
            self.assert_error(invalid, user, 'CreateSnapshot', VM_ID, '/home/../etc/shadow', '{}')
        self.assert_nothing_created()

    def test_create_tap_owner(self):
        self.call_ok(A, 'EnsureNetwork', '{}')
        out = self.call_ok(A, 'CreateTap', VM_ID, '{}')
        self.assertEqual(out, f"('{TAP}',)")

        link = self.bus.link(TAP)
        self.assertIsNotNone(link)
        self.assertEqual(link['linkinfo']['info_kind'], 'tun')
        self.assertEqual(link['linkinfo']['info_data']['type'], 'tap')
        self.assertTrue(link['linkinfo']['info_data']['persist'])
        self.assertEqual(link.get('master'), BRIDGE)
        self.assertIn('UP', link['flags'])
        owner = self.bus.ns_run(['cat', f'/sys/class/net/{TAP}/owner']).strip()
        self.assertEqual(int(owner), self.uid_a)

        # Retrying is harmless.
        self.assertEqual(self.call_ok(A, 'CreateTap', VM_ID, '{}'), f"('{TAP}',)")

        # The bridge keeps its own fixed MAC (from its name), whatever taps
        # come and go: a guest's ARP entry for the gateway stays right
        # across another VM's stop and its own suspend/resume.
        expected = '02:' + ':'.join('%02x' % b for b in hashlib.sha256(
            b'banger-bridge:' + BRIDGE.encode()).digest()[:5])
        self.assertEqual(self.bus.link(BRIDGE)['address'], expected)
        self.call_ok(A, 'DeleteTap', VM_ID, '{}')
        self.assertEqual(self.bus.link(BRIDGE)['address'], expected)
        self.call_ok(A, 'CreateTap', VM_ID, '{}')
        self.assertEqual(self.bus.link(BRIDGE)['address'], expected)

    def test_create_tap_needs_bridge(self):
        out = self.assert_error('org.banger.Error.BadState', A, 'CreateTap', VM_ID, '{}')
        self.assertIn('EnsureNetwork', out)
        self.assertIsNone(self.bus.link(TAP))

    def test_delete_tap_ownership(self):
        self.call_ok(A, 'EnsureNetwork', '{}')
        self.call_ok(A, 'CreateTap', VM_ID, '{}')

        # B passes polkit for vm.network (this test's rule) but does not own it.
        out = self.assert_error('org.banger.Error.NotAuthorized', B, 'DeleteTap', VM_ID, '{}')
        self.assertIn(str(self.uid_a), out)
        self.assertIsNotNone(self.bus.link(TAP), 'B deleted A’s tap')
        # …nor may B take it over by creating it again.
        self.assert_error('org.banger.Error.Exists', B, 'CreateTap', VM_ID, '{}')
        self.assertEqual(int(self.bus.ns_run(['cat', f'/sys/class/net/{TAP}/owner'])), self.uid_a)

        self.call_ok(A, 'DeleteTap', VM_ID, '{}')
        self.assertIsNone(self.bus.link(TAP))
        self.assert_error('org.banger.Error.NotFound', A, 'DeleteTap', VM_ID, '{}')

    def test_teardown_network(self):
        self.call_ok(A, 'EnsureNetwork', '{}')
        self.call_ok(A, 'CreateTap', VM_ID, '{}')
        self.call_ok(A, 'CreateTap', 'fedcba9876543210', '{}')
        self.call_ok(A, 'TeardownNetwork', '{}')
        self.assert_nothing_created()
        self.assertIsNone(self.bus.link('bgfedcba987654'))
        # Idempotent too.
        self.call_ok(A, 'TeardownNetwork', '{}')

    def test_teardown_keeps_other_users_taps(self):
        """Issue 10: group banger runs TeardownNetwork without a password, so
        it takes down the caller's taps only; the bridge and the table stay
        while another user's tap is on it."""
        other_id, other_tap = 'fedcba9876543210', 'bgfedcba987654'
        self.call_ok(A, 'EnsureNetwork', '{}')
        self.call_ok(A, 'CreateTap', VM_ID, '{}')
        self.call_ok(B, 'CreateTap', other_id, '{}')
        self.call_ok(B, 'TeardownNetwork', '{}')
        self.assertIsNotNone(self.bus.link(TAP), "B's teardown removed A's tap")
        self.assertIsNone(self.bus.link(other_tap))
        self.assertIsNotNone(self.bus.link(BRIDGE))
        self.assertIsNotNone(self.nft_table())
        self.assertEqual(self.bus.link(TAP).get('master'), BRIDGE)
        # the last user's teardown takes the rest
        self.call_ok(A, 'TeardownNetwork', '{}')
        self.assertIsNone(self.bus.link(TAP))
        self.assertIsNone(self.bus.link(BRIDGE))
        self.assertIsNone(self.nft_table())

    def guard_table(self):
        res = subprocess.run(['ip', 'netns', 'exec', self.bus.netns, 'nft', 'list', 'table',
                              'bridge', 'banger_guard'], capture_output=True, text=True)
        return res.stdout if res.returncode == 0 else None

    def claim(self, user, vm_id, mac, ipv4):
        return self.bus.call(user, 'CreateTap', vm_id,
                             f"{{'mac': <'{mac}'>, 'ipv4': <'{ipv4}'>}}")

    def test_address_claims(self):
        """Issue 10, finding 6: a tap sends only from its guest's MAC and
        leased address (the table bridge banger_guard), and an address or
        MAC another user's tap holds is refused."""
        other_id, other_tap = 'fedcba9876543210', 'bgfedcba987654'
        self.call_ok(A, 'EnsureNetwork', '{}')
        ok, out = self.claim(A, VM_ID, '52:54:01:23:45:67', '10.77.0.5')
        self.assertTrue(ok, out)
        table = self.guard_table()
        self.assertIn(f'iifname "{TAP}" jump guard_{TAP}', table)
        self.assertIn('ether saddr != 52:54:01:23:45:67 drop', table)
        self.assertIn('ip saddr 10.77.0.5 accept', table)
        self.assertIn('iifname "bg*" drop', table)
        # B may use vm.network (this test's rule), but not A's address or MAC
        for mac, ipv4 in (('52:54:fe:dc:ba:98', '10.77.0.5'), ('52:54:01:23:45:67', '10.77.0.6')):
            ok, out = self.claim(B, other_id, mac, ipv4)
            self.assertFalse(ok, out)
            self.assertIn('org.banger.Error.Exists', out)
        self.assertNotIn(f'guard_{other_tap}', self.guard_table())
        ok, out = self.claim(B, other_id, '52:54:fe:dc:ba:98', '10.77.0.6')
        self.assertTrue(ok, out)
        self.assertIn('ip saddr 10.77.0.6 accept', self.guard_table())
        # shapes before polkit, the subnet after
        for mac, ipv4, when in (('01:00:5e:00:00:01', '10.77.0.7', 'shape'),
                                ('52:54:00:00:00:01', '10.77.0.07', 'shape'),
                                ('52:54:00:00:00:01', '10.78.0.7', 'subnet'),
                                ('52:54:00:00:00:01', '10.77.0.1', 'subnet'),
                                ('52:54:00:00:00:01', '10.77.0.255', 'subnet')):
            ok, out = self.claim(A, VM_ID, mac, ipv4)
            self.assertFalse(ok, (mac, ipv4))
            self.assertIn('org.banger.Error.InvalidArgument', out)
        self.assertIn('ether saddr != 52:54:01:23:45:67 drop', self.guard_table())
        # A's tap gone, its rules too
        self.call_ok(A, 'DeleteTap', VM_ID, '{}')
        self.assertNotIn(f'guard_{TAP}', self.guard_table())
        self.assertIn(f'guard_{other_tap}', self.guard_table())

    def vm_set(self):
        """The set `vms` of inet banger as {address: tap}, None without the table."""
        import json
        res = subprocess.run(['ip', 'netns', 'exec', self.bus.netns, 'nft', '-j', 'list', 'set',
                              'inet', 'banger', 'vms'], capture_output=True, text=True)
        if res.returncode != 0:
            return None
        items = [i['set'] for i in json.loads(res.stdout)['nftables'] if 'set' in i]
        out = {}
        for e in items[0].get('elem', []):
            # an element with a comment is {"elem": {"val": ADDR, "comment": TAP}}
            self.assertIsInstance(e, dict, e)
            out[e['elem']['val']] = e['elem'].get('comment')
        return out

    def test_firewall_follows_taps(self):
        """Issue 11, item 5: a VM is NATed and forwarded exactly while its tap
        exists (its address in the set `vms`, named by its tap), and the
        shared table stays, granting nothing, while the network is up."""
        other_id, other_tap = 'fedcba9876543210', 'bgfedcba987654'
        self.call_ok(A, 'EnsureNetwork', '{}')
        self.assertEqual(self.vm_set(), {})
        table = self.nft_table()
        self.assertIn('ip saddr @vms ip daddr != 10.77.0.0/24 masquerade', table)
        self.assertIn(f'iifname "{BRIDGE}" ip saddr @vms accept', table)
        self.assertIn(f'iifname "{BRIDGE}" drop', table)
        # a tap without a claim gets no element (its guard drops everything)
        self.call_ok(A, 'CreateTap', other_id, '{}')
        self.assertEqual(self.vm_set(), {})
        ok, out = self.claim(A, VM_ID, '52:54:01:23:45:67', '10.77.0.5')
        self.assertTrue(ok, out)
        ok, out = self.claim(A, other_id, '52:54:01:23:45:68', '10.77.0.6')
        self.assertTrue(ok, out)
        self.assertEqual(self.vm_set(), {'10.77.0.5': TAP, '10.77.0.6': other_tap})
        self.call_ok(A, 'DeleteTap', VM_ID, '{}')
        self.assertEqual(self.vm_set(), {'10.77.0.6': other_tap})
        self.assertNotIn(f'guard_{TAP}', self.guard_table())
        # a flushed ruleset comes back whole at the next tap change
        self.bus.ns_run(['nft', 'flush', 'ruleset'])
        ok, out = self.claim(A, VM_ID, '52:54:01:23:45:67', '10.77.0.5')
        self.assertTrue(ok, out)
        self.assertEqual(self.vm_set(), {'10.77.0.5': TAP, '10.77.0.6': other_tap})
        self.assertIn(f'guard_{other_tap}', self.guard_table())
        self.call_ok(A, 'DeleteTap', VM_ID, '{}')
        # a tap deleted behind banger's back: its DeleteTap is NotFound, and
        # its rules go all the same
        self.bus.ns_run(['ip', 'link', 'delete', other_tap])
        self.assertEqual(self.vm_set(), {'10.77.0.6': other_tap})
        self.assert_error('org.banger.Error.NotFound', A, 'DeleteTap', other_id, '{}')
        self.assertEqual(self.vm_set(), {})
        self.assertNotIn(f'guard_{other_tap}', self.guard_table())
        self.call_ok(A, 'TeardownNetwork', '{}')
        self.assertIsNone(self.vm_set())
        self.assertIsNone(self.guard_table())
        # a late DeleteTap (a VM stopped after network down) does not bring
        # the tables back without the bridge
        self.assert_error('org.banger.Error.NotFound', A, 'DeleteTap', VM_ID, '{}')
        self.assertIsNone(self.vm_set())
        self.assertIsNone(self.guard_table())

    def test_inspect_firewall(self):
        """Issue 11, item 4: an unprivileged bangerd's doctor reads the
        firewall through the helper: the facts for the helper's bridge, the
        other tables' dropping forward chains by name, never the ruleset;
        refused to a user polkit does not allow."""
        def facts():
            out = self.call_ok(A, 'InspectFirewall', '{}')
            m = re.fullmatch(r"\(\{'table': <(true|false)>, 'masquerade': <(true|false)>, "
                             r"'drop_chains': <(?:@as )?\[(.*)\]>\},\)", out.strip())
            self.assertIsNotNone(m, out)
            chains = re.findall(r"'([^']*)'", m.group(3))
            return m.group(1) == 'true', m.group(2) == 'true', chains

        self.assertEqual(facts(), (False, False, []))
        self.call_ok(A, 'EnsureNetwork', '{}')
        self.assertEqual(facts(), (True, True, []))
        # another firewall's forward chain with policy drop defeats banger's
        self.bus.ns_run(['nft', 'add', 'table', 'inet', 'other'])
        self.bus.ns_run(['nft', 'add', 'chain', 'inet', 'other', 'screen',
                         '{ type filter hook forward priority 10; policy drop; }'])
        self.assertEqual(facts(), (True, True, ['inet other screen']))
        # … unless it lets the bridge through
        self.bus.ns_run(['nft', 'add', 'rule', 'inet', 'other', 'screen', 'iifname', BRIDGE,
                         'accept'])
        self.assertEqual(facts(), (True, True, []))
        self.bus.ns_run(['nft', 'delete', 'table', 'inet', 'other'])
        # a ruleset flushed by a firewall reload: banger's table is gone
        self.bus.ns_run(['nft', 'flush', 'ruleset'])
        self.assertEqual(facts(), (False, False, []))
        out = self.assert_error('org.freedesktop.DBus.Error.AccessDenied', B, 'InspectFirewall',
                                '{}')
        self.assertIn('not authorized', out)
        # the bridge is the helper's own; a caller cannot ask about another
        self.assert_error('org.banger.Error.InvalidArgument', A, 'InspectFirewall',
                          "{'bridge': <'eth0'>}")

    def test_unsupported_after_authorization(self):
        # CreateSnapshot/RemoveSnapshot are implemented: tests/snapshot covers
        # their Unsupported (no device-mapper) after authorization. ConfigureDNS
        # needs systemd-resolved, which this private system bus does not have
        # (tests/dns covers it against a fake resolved).
        out = self.assert_error('org.banger.Error.Unsupported', A, 'ConfigureDNS', '{}')
        self.assertRegex(out, r'needs \S', 'the message names what is missing')
        self.assertIn('systemd-resolved', out)
        # Authorization comes first: B never learns it is unsupported.
        self.assert_error('org.freedesktop.DBus.Error.AccessDenied', B, 'ConfigureDNS', '{}')

    def test_audit_lines(self):
        self.call_ok(A, 'EnsureNetwork', '{}')
        self.call_error(B, 'EnsureNetwork', '{}')
        self.call_error(B, 'CreateTap', '../x', '{}')
        self.wait_for_log(rf'AUDIT uid={self.uid_a} method=EnsureNetwork '
                          r'action=org\.banger\.network\.setup args=\(\{\},\) result=ok$')
        self.wait_for_log(rf'AUDIT uid={self.uid_b} method=EnsureNetwork '
                          r'action=org\.banger\.network\.setup .* '
                          r'result=org\.freedesktop\.DBus\.Error\.AccessDenied ')
        self.wait_for_log(rf"AUDIT uid={self.uid_b} method=CreateTap action=org\.banger\.vm\.network "
                          r"args=\('\.\./x', \{\}\) result=org\.banger\.Error\.InvalidArgument ")
        # One line per call.
        self.assertEqual(len(re.findall(r'AUDIT ', self.helper_log())), 3)

    def test_version_property_public(self):
        # Reading Version needs no polkit action, even for B.
        uid, gid = self.bus.users[B]
        res = subprocess.run(['setpriv', f'--reuid={uid}', f'--regid={gid}', '--clear-groups',
                              'gdbus', 'call', '--system', '--dest', 'org.banger.Helper',
                              '--object-path', '/org/banger/Helper', '--method',
                              'org.freedesktop.DBus.Properties.Get', 'org.banger.Helper',
                              'Version'], capture_output=True, text=True, env=self.bus.env(),
                             cwd='/')
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertRegex(res.stdout, r"\(<'\d+\.\d+\.\d+'>,\)")

    def test_polkit_loaded_rules(self):
        # polkitd compiled both the shipped rules file and the test's: a
        # syntax error in 50-org.banger.rules would leave it at 1.
        # …and the allow rule works (A passes without any agent).
        self.call_ok(A, 'EnsureNetwork', '{}')
        # polkitd's output reaches its log file when its stdio buffer is
        # flushed, not when it owns its name: wait for the line.
        wait_until(lambda: 'Finished loading, compiling and executing 2 rules'
                   in self.bus.polkitd.output(), 10, 'polkitd to log its rules')
        self.assertNotRegex(self.bus.polkitd.output(),
                            r'(?i)error (compiling|loading|evaluating|executing)')

    def test_networkmanager_unmanaged(self):
        # python-dbusmock's NetworkManager on this private system bus: the
        # helper must find NM's name owned and set Managed=false on the
        # device named like the bridge, and leave other devices alone.
        from gi.repository import GLib
        env = self.bus.env()
        mock = self.bus._spawn('networkmanager-mock', [
            '/usr/bin/python3', '-m', 'dbusmock', '--system', '--template', 'networkmanager'],
            env=env)
        self.bus.wait_for_name('org.freedesktop.NetworkManager', mock)
        paths = {}
        for dev, iface in (('mock_bridge', BRIDGE), ('mock_eth0', 'eth0')):
            paths[iface] = self.bus.call_as_root(
                'org.freedesktop.NetworkManager', '/org/freedesktop', 'org.freedesktop.DBus.Mock',
                'AddEthernetDevice', GLib.Variant('(ssi)', (dev, iface, 100)), '(s)')[0]

        def managed(iface):
            return self.bus.call_as_root(
                'org.freedesktop.NetworkManager', paths[iface], 'org.freedesktop.DBus.Properties',
                'Get', GLib.Variant('(ss)', ('org.freedesktop.NetworkManager.Device', 'Managed')),
                '(v)')[0]

        self.assertTrue(managed(BRIDGE))
        self.call_ok(A, 'EnsureNetwork', '{}')
        wait_until(lambda: managed(BRIDGE) is False, 5.0, 'Managed=false on the bridge')
        self.assertTrue(managed('eth0'))


    def test_replace(self):
        # A second helper with --replace takes the name; the first exits 0.
        first = self.bus.helper
        binary = os.path.join(build_root(), 'src', 'helper', 'bangerd-root')
        second = self.bus._spawn('bangerd-root-2', [
            'ip', 'netns', 'exec', self.bus.netns, binary, '-v', '--replace',
            '--config', self.bus.helper_conf])
        wait_until(lambda: first.proc.poll() is not None, 10.0, 'the first helper to exit')
        self.assertEqual(first.proc.returncode, 0)
        self.bus.wait_for_name('org.banger.Helper', second)
        self.assertEqual(self.call_ok(A, 'EnsureNetwork', '{}'), f"('{ADDRESS}',)")
        self.assertEqual(second.stop(), 0)


class IdleHelperTest(HelperTest):
    """The helper with --idle-timeout exits by itself once calls drain."""
    helper_args = ('--idle-timeout', '1')

    def test_idle_exit(self):
        self.call_ok(A, 'EnsureNetwork', '{}')
        proc = self.bus.helper.proc
        wait_until(lambda: proc.poll() is not None, 10.0, 'the idle helper to exit')
        self.assertEqual(proc.returncode, 0)
        self.assertFalse(self.bus.name_has_owner('org.banger.Helper'))


# Only the idle test runs in IdleHelperTest.
for _name in [n for n in dir(HelperTest) if n.startswith('test_')]:
    setattr(IdleHelperTest, _name, None)


class PolicyFileTest(unittest.TestCase):
    """The built policy file, without a bus."""

    def test_policy_xmllint(self):
        subprocess.run(['xmllint', '--noout', policy_path()], check=True)
        dtd = '/usr/share/polkit-1/policyconfig-1.dtd'
        if os.path.exists(dtd):
            subprocess.run(['xmllint', '--noout', '--dtdvalid', dtd, policy_path()], check=True)

    def test_policy_actions(self):
        root = ET.parse(policy_path()).getroot()
        ids = [a.get('id') for a in root.findall('action')]
        self.assertEqual(sorted(ids), sorted(ACTIONS))
        for action in root.findall('action'):
            self.assertTrue(action.findtext('description'))
            self.assertTrue(action.findtext('message'))
            defaults = action.find('defaults')
            # Nobody passes without authenticating unless a rule says so.
            for key in ('allow_any', 'allow_inactive', 'allow_active'):
                self.assertTrue(defaults.findtext(key).startswith('auth_admin'), action.get('id'))
        update = [a for a in root.findall('action') if a.get('id') == 'org.banger.system.update'][0]
        self.assertEqual(update.find('defaults').findtext('allow_active'), 'auth_admin')


if __name__ == '__main__':
    unittest.main()
