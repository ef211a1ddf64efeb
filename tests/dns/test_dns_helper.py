#!/usr/bin/python3
"""org.banger.Helper.ConfigureDNS: the real bangerd-root and the real
polkitd on a private system bus (tests/lib/system_bus.py), the bridge in a
network namespace of the test's own, and a FAKE systemd-resolved
(tests/fakes/fake-resolved.py) on that bus, in that namespace, recording
every call it gets.

User banger-test-a is allowed every org.banger action; banger-test-b none.
One meson test per test case (tests/dns/meson.build)."""

import json
import os
import re
import unittest

from system_bus import SystemBus, root_may_own, source_root, stop_helper_checked

A = 'banger-test-a'
B = 'banger-test-b'
BRIDGE = 'banger0'
ADDRESS = '10.77.0.1/24'
FAKE_RESOLVED = os.path.join(source_root(), 'tests', 'fakes', 'fake-resolved.py')

# The fake resolved's name.
RESOLVED_POLICY = root_may_own('org.freedesktop.resolve1')


class ResolvedSystemBus(SystemBus):
    """SystemBus with a hole in the bus policy for the fake resolved."""

    def _start_bus(self):
        includedir = self._mkdir('system.d')
        self._write(os.path.join(includedir, 'banger-test-resolved.conf'), RESOLVED_POLICY)
        super()._start_bus()

    def start_fake_resolved(self):
        """Runs the fake in the helper's network namespace (it checks
        ifindexes against the links there)."""
        self.resolved_record = os.path.join(self.tmp, 'resolved-calls.jsonl')
        open(self.resolved_record, 'w').close()
        self.resolved = self._spawn('fake-resolved', [
            'ip', 'netns', 'exec', self.netns, '/usr/bin/python3', FAKE_RESOLVED,
            '--record', self.resolved_record])
        self.wait_for_name('org.freedesktop.resolve1', self.resolved)
        return self.resolved

    def resolved_calls(self):
        path = getattr(self, 'resolved_record', None)
        if path is None or not os.path.exists(path):
            return []
        with open(path) as f:
            return [json.loads(line) for line in f if line.strip()]


class DnsHelperCase(unittest.TestCase):
    with_resolved = True
    dns_port = None  # root's helper.conf [dns] port=; None: the default

    def setUp(self):
        self.bus = ResolvedSystemBus().start()
        self.addCleanup(self.bus.stop)
        self.bus.start_helper(bridge=BRIDGE, address=ADDRESS, dns_port=self.dns_port)
        if self.with_resolved:
            self.bus.start_fake_resolved()

    def tearDown(self):
        stop_helper_checked(self, self.bus,
                            lambda: 'fake resolved got: %r' % self.bus.resolved_calls())

    def call_ok(self, user, method, *args):
        ok, out = self.bus.call(user, method, *args)
        self.assertTrue(ok, f'{method} as {user} failed: {out}')
        return out

    def assert_error(self, expected, user, method, *args):
        ok, out = self.bus.call(user, method, *args)
        self.assertFalse(ok, f'{method} as {user} unexpectedly succeeded: {out}')
        m = re.search(r'GDBus\.Error:([A-Za-z0-9_.]+):', out)
        self.assertIsNotNone(m, out)
        self.assertEqual(m.group(1), expected, out)
        return out

    def bridge_ifindex(self):
        return self.bus.link(BRIDGE)['ifindex']

    def assert_routed(self, port):
        ifindex = self.bridge_ifindex()
        calls = self.bus.resolved_calls()
        self.assertEqual([c['method'] for c in calls],
                         ['SetLinkDNSEx', 'SetLinkDomains', 'SetLinkDefaultRoute',
                          'SetLinkDNSSEC'], calls)
        for c in calls:
            self.assertNotIn('error', c)
            self.assertEqual(c['ifindex'], ifindex, c)
            self.assertEqual(c['ifname'], BRIDGE, c)
            self.assertEqual(c['uid'], 0, 'the helper (root) makes the calls')
        self.assertEqual(calls[0]['args'],
                         [{'family': 2, 'address': '127.0.0.1', 'port': port, 'name': ''}])
        self.assertEqual(calls[1]['args'], [['vm', True]], 'the routing-only domain ~vm')
        self.assertEqual(calls[2]['args'], False, 'never the default route')
        self.assertEqual(calls[3]['args'], 'no')


class ConfigureDnsTest(DnsHelperCase):

    def test_default_port(self):
        self.call_ok(A, 'EnsureNetwork', '{}')
        self.call_ok(A, 'ConfigureDNS', '{}')
        self.assert_routed(42069)

    def test_denied_user_reaches_nothing(self):
        self.call_ok(A, 'EnsureNetwork', '{}')
        out = self.assert_error('org.freedesktop.DBus.Error.AccessDenied', B, 'ConfigureDNS',
                                "{'port': <uint16 5353>}")
        self.assertIn('org.banger.network.dns', out)
        self.assertEqual(self.bus.resolved_calls(), [], 'a denied call reached resolved')

    def test_invalid_options_before_polkit(self):
        self.call_ok(A, 'EnsureNetwork', '{}')
        for user in (A, B):  # the same answer for everyone: polkit is never asked
            for options, word in (("{'port': <uint16 0>}", 'port'),
                                  ("{'port': <uint32 5353>}", 'port'),
                                  ("{'server': <'8.8.8.8'>}", 'server')):
                out = self.assert_error('org.banger.Error.InvalidArgument', user, 'ConfigureDNS',
                                        options)
                self.assertIn(word, out)
        self.assertEqual(self.bus.resolved_calls(), [])

    def test_needs_the_bridge(self):
        out = self.assert_error('org.banger.Error.BadState', A, 'ConfigureDNS', '{}')
        self.assertIn('EnsureNetwork', out)
        self.assertEqual(self.bus.resolved_calls(), [])


class RootPortTest(DnsHelperCase):
    dns_port = 5353

    def test_routes_vm_domain(self):
        self.call_ok(A, 'EnsureNetwork', '{}')
        self.call_ok(A, 'ConfigureDNS', "{'port': <uint16 5353>, 'interactive': <false>}")
        self.assert_routed(5353)
        log = self.bus.helper.output()
        self.assertRegex(log, r'AUDIT uid=\d+ method=ConfigureDNS action=org\.banger\.network\.dns '
                              r'.* result=ok')

    def test_port_from_root_config(self):
        """Issue 10: the caller cannot send everyone's .vm lookups to a port
        of its choosing; without the option, root's port is used."""
        self.call_ok(A, 'EnsureNetwork', '{}')
        out = self.assert_error('org.banger.Error.InvalidArgument', A, 'ConfigureDNS',
                                "{'port': <uint16 6000>}")
        self.assertIn('5353', out)
        self.assertEqual(self.bus.resolved_calls(), [], 'the caller\'s port reached resolved')
        self.call_ok(A, 'ConfigureDNS', '{}')
        self.assert_routed(5353)


class NoResolvedTest(DnsHelperCase):
    with_resolved = False
    dns_port = 5353

    def test_unsupported_without_resolved(self):
        self.call_ok(A, 'EnsureNetwork', '{}')
        out = self.assert_error('org.banger.Error.Unsupported', A, 'ConfigureDNS',
                                "{'port': <uint16 5353>}")
        self.assertIn('systemd-resolved is not running', out)
        self.assertIn('point a resolver at 127.0.0.1:5353 for the vm domain', out)
        self.assertIn('server=/vm/127.0.0.1#5353', out)
        # Authorization still comes first.
        self.assert_error('org.freedesktop.DBus.Error.AccessDenied', B, 'ConfigureDNS', '{}')


if __name__ == '__main__':
    unittest.main()
