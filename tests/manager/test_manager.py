#!/usr/bin/python3
"""Integration tests for bangerd: the real binary, D-Bus activated from the
build tree's service file on a private session bus (tests/lib/session_bus.py).
Nothing is mocked except the owner of org.banger.Helper, which is a
python-dbusmock stand-in (a fake, named as such) on a private system bus.
"""

import contextlib
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import unittest

import gi
gi.require_version('Gio', '2.0')
from gi.repository import Gio, GLib  # noqa: E402

from session_bus import SessionBus, SystemBus, build_root, wait_pid_gone  # noqa: E402

MANAGER = 'org.banger.Manager'
MANAGER_PATH = '/org/banger/Manager'
MANAGER_IFACE = 'org.banger.Manager'
VM_IFACE = 'org.banger.VM'
ALLOWED_ERROR_PREFIXES = ('org.banger.Error.', 'org.freedesktop.DBus.Error.')
TIMEOUT = 10


def source_root():
    return os.environ['BANGER_SOURCE_ROOT']


def bangerd_path():
    return os.path.join(build_root(), 'src', 'service', 'bangerd')


def remote_error(e):
    """(D-Bus error name, message) of a GLib.Error from a D-Bus call."""
    name = Gio.DBusError.get_remote_error(e)
    if name is None:
        # Errors mapped back to a registered GLib domain lose the remote name
        # only if this process registered that domain, which it does not.
        raise AssertionError('not a remote D-Bus error: %s' % e)
    Gio.DBusError.strip_remote_error(e)
    return name, e.message


class ManagerTestCase(unittest.TestCase):
    """A private session bus per test; bangerd starts on the first call."""

    system_bus = False

    def setUp(self):
        self._stack = contextlib.ExitStack()
        self._tmp = tempfile.TemporaryDirectory(prefix='banger-manager-')
        self.tmpdir = self._tmp.name
        self.logs = []
        self.sysbus = None
        if self.system_bus:
            self.sysbus = self._stack.enter_context(SystemBus(self.tmpdir))
        self.bus = self._stack.enter_context(SessionBus(
            self.tmpdir, bangerd_args=['-vv'],
            system_bus_address=self.sysbus.address if self.sysbus else None))
        self.env = self.bus.env
        self.conn = self.bus.connect()

    def tearDown(self):
        self.conn.close_sync(None)
        # Buses (and the activated bangerd) are stopped by pid here.
        self._stack.close()
        for b in (self.bus, self.sysbus):
            if b is not None:
                self.logs.append('--- %s bus log ---\n%s' % (b.kind, b.log()))
        self._tmp.cleanup()

    def run(self, result=None):
        result = result or self.defaultTestResult()
        before = len(result.failures) + len(result.errors)
        super().run(result)
        if len(result.failures) + len(result.errors) > before:
            sys.stderr.write('\n'.join(self.logs) + '\n')
        return result

    # --- helpers ---

    def call(self, method, args=None, reply_type=None, path=MANAGER_PATH, iface=MANAGER_IFACE,
             fd_list=None):
        ret = self.conn.call_with_unix_fd_list_sync(
            MANAGER, path, iface, method, args,
            GLib.VariantType(reply_type) if reply_type else None,
            Gio.DBusCallFlags.NONE, TIMEOUT * 1000, fd_list, None)
        return ret[0].unpack() if isinstance(ret, tuple) else ret.unpack()

    def call_error(self, method, args=None, path=MANAGER_PATH, iface=MANAGER_IFACE, fd_list=None):
        """Calls a method that must fail; returns (error name, message)."""
        try:
            self.call(method, args, path=path, iface=iface, fd_list=fd_list)
        except GLib.Error as e:
            return remote_error(e)
        self.fail('%s.%s unexpectedly succeeded' % (iface, method))

    def create_vm(self, name, **extra):
        spec = {'name': GLib.Variant('s', name)}
        spec.update(extra)
        return self.call('CreateVM', GLib.Variant('(a{sv})', (spec,)), '(o)')[0]

    def get_property(self, path, iface, prop):
        return self.call('Get', GLib.Variant('(ss)', (iface, prop)), '(v)', path=path,
                         iface='org.freedesktop.DBus.Properties')[0]

    def run_tool(self, *argv, check=True):
        p = subprocess.run(list(argv), env=self.env, capture_output=True, text=True,
                           timeout=TIMEOUT)
        self.logs.append('$ %s\n%s%s' % (' '.join(argv), p.stdout, p.stderr))
        if check:
            self.assertEqual(p.returncode, 0, p.stderr)
        return p

    def gdbus(self, method, *args, path=MANAGER_PATH, iface=MANAGER_IFACE, check=True):
        return self.run_tool('gdbus', 'call', '--session', '--dest', MANAGER,
                             '--object-path', path, '--method', '%s.%s' % (iface, method),
                             *args, check=check)

    def wait_for(self, condition, what, timeout=TIMEOUT):
        """Iterates the main loop until condition() holds (events only; the
        100 ms tick just bounds how late the deadline is noticed)."""
        ctx = GLib.MainContext.default()
        deadline = time.monotonic() + timeout
        tick = GLib.timeout_add(100, lambda: True)
        try:
            while not condition():
                if time.monotonic() > deadline:
                    self.fail('timed out waiting for %s' % what)
                ctx.iteration(True)
        finally:
            GLib.source_remove(tick)


class ActivationTest(ManagerTestCase):

    def test_activation(self):
        # Nothing runs until the first call: the bus starts bangerd itself.
        self.assertIsNone(self.bus.bangerd_pid())
        version = self.get_property(MANAGER_PATH, MANAGER_IFACE, 'Version')
        self.assertRegex(version, r'^\d+\.\d+\.\d+')
        pid = self.bus.bangerd_pid()
        self.assertIsNotNone(pid)
        self.assertEqual(os.path.realpath('/proc/%d/exe' % pid), os.path.realpath(bangerd_path()))
        # It is dbus-daemon's descendant, not ours.
        with open('/proc/%d/stat' % pid) as f:
            ppid = int(f.read().rsplit(')', 1)[1].split()[1])
        self.assertNotEqual(ppid, os.getpid())
        # The rest of the Manager's properties are readable and sensible.
        self.assertEqual(self.get_property(MANAGER_PATH, MANAGER_IFACE, 'DataDir'),
                         self.bus.data_dir)
        self.assertEqual(self.get_property(MANAGER_PATH, MANAGER_IFACE, 'DefaultImage'),
                         'minimal')
        self.assertEqual(self.get_property(MANAGER_PATH, MANAGER_IFACE, 'DefaultKernel'),
                         'default')
        self.assertFalse(self.get_property(MANAGER_PATH, MANAGER_IFACE, 'HelperAvailable'))
        self.assertNotEqual(self.get_property(MANAGER_PATH, MANAGER_IFACE, 'Commit'), '')
        self.assertTrue(os.path.exists(os.path.join(self.bus.data_dir, 'banger.db')))

    def test_config_defaults(self):
        os.makedirs(self.bus.config_dir, exist_ok=True)
        with open(os.path.join(self.bus.config_dir, 'config'), 'w') as f:
            f.write('[defaults]\nimage=debian\nkernel=cloud\n')
        self.assertEqual(self.get_property(MANAGER_PATH, MANAGER_IFACE, 'DefaultImage'), 'debian')
        self.assertEqual(self.get_property(MANAGER_PATH, MANAGER_IFACE, 'DefaultKernel'), 'cloud')
        path = self.create_vm('dev')
        self.assertEqual(self.get_property(path, VM_IFACE, 'Image'), 'debian')
        self.assertEqual(self.get_property(path, VM_IFACE, 'Kernel'), 'cloud')
        # A name that is neither registered nor a default is refused, naming it.
        name, message = self.call_error(
            'CreateVM', GLib.Variant('(a{sv})', ({'name': GLib.Variant('s', 'other'),
                                                  'image': GLib.Variant('s', 'alpine')},)))
        self.assertEqual(name, 'org.banger.Error.NotFound', message)
        self.assertIn('alpine', message)


class CommandLineClientsTest(ManagerTestCase):

    def test_gdbus_create_list_delete(self):
        out = self.gdbus('CreateVM', "{'name': <'dev'>, 'vcpus': <uint32 4>}").stdout
        self.assertEqual(out.strip(), "(objectpath '/org/banger/Manager/vms/dev',)")
        out = self.gdbus('CreateVM', "{'name': <'web-1'>}").stdout
        self.assertEqual(out.strip(), "(objectpath '/org/banger/Manager/vms/web_2d1',)")
        out = self.gdbus('ListVMs').stdout
        self.assertEqual(out.strip(), "([objectpath '/org/banger/Manager/vms/dev', "
                         "'/org/banger/Manager/vms/web_2d1'],)")
        out = self.gdbus('FindVM', 'web-1').stdout
        self.assertEqual(out.strip(), "(objectpath '/org/banger/Manager/vms/web_2d1',)")
        out = self.run_tool('gdbus', 'introspect', '--session', '--dest', MANAGER,
                            '--object-path', '/org/banger/Manager/vms/dev',
                            '--only-properties').stdout
        self.assertIn("readonly u VCPUs = 4;", out)
        self.assertIn("readonly s State = 'created';", out)
        out = self.gdbus('Delete', '{}', path='/org/banger/Manager/vms/dev', iface=VM_IFACE).stdout
        self.assertEqual(out.strip(), '()')
        out = self.gdbus('ListVMs').stdout
        self.assertEqual(out.strip(), "([objectpath '/org/banger/Manager/vms/web_2d1'],)")
        out = self.gdbus('PruneVMs').stdout
        self.assertEqual(out.strip(), "(['web-1'],)")
        out = self.gdbus('ListVMs').stdout
        self.assertEqual(out.strip(), '(@ao [],)')

    def test_busctl(self):
        p = self.run_tool('busctl', '--user', 'call', MANAGER, MANAGER_PATH, MANAGER_IFACE,
                          'CreateVM', 'a{sv}', '2', 'name', 's', 'dev', 'memory_mib', 'u', '2048')
        self.assertEqual(p.stdout.strip(), 'o "/org/banger/Manager/vms/dev"')
        p = self.run_tool('busctl', '--user', 'get-property', MANAGER,
                          '/org/banger/Manager/vms/dev', VM_IFACE, 'MemoryMiB')
        self.assertEqual(p.stdout.strip(), 'u 2048')
        p = self.run_tool('busctl', '--user', 'get-property', MANAGER,
                          '/org/banger/Manager/vms/dev', VM_IFACE, 'MAC')
        self.assertRegex(p.stdout.strip(), r'^s "52:54(:[0-9a-f]{2}){4}"$')
        p = self.run_tool('busctl', '--user', 'get-property', MANAGER, MANAGER_PATH,
                          MANAGER_IFACE, 'Version')
        self.assertRegex(p.stdout.strip(), r'^s "\d+\.\d+\.\d+')
        p = self.run_tool('busctl', '--user', 'introspect', MANAGER, '/org/banger/Manager/vms/dev')
        self.assertIn('org.banger.VM', p.stdout)
        self.assertRegex(p.stdout, r'\.State\s+property\s+s\s+"created"\s+emits-change')
        self.assertNotIn('const', p.stdout)  # every property emits PropertiesChanged
        p = self.run_tool('busctl', '--user', 'introspect', MANAGER, MANAGER_PATH)
        self.assertIn('org.banger.Manager', p.stdout)
        self.assertIn('org.freedesktop.DBus.ObjectManager', p.stdout)
        p = self.run_tool('busctl', '--user', 'tree', MANAGER)
        self.assertIn('/org/banger/Manager/vms/dev', p.stdout)
        p = self.run_tool('busctl', '--user', 'call', MANAGER, '/org/banger/Manager/vms/dev',
                          VM_IFACE, 'Delete', 'a{sv}', '1', 'force', 'b', 'false')
        self.assertEqual(p.returncode, 0)
        p = self.run_tool('busctl', '--user', 'call', MANAGER, MANAGER_PATH, MANAGER_IFACE,
                          'ListVMs')
        self.assertEqual(p.stdout.strip(), 'ao 0')


class SignalsTest(ManagerTestCase):

    system_bus = True

    def test_helper_available_changes(self):
        changes = []

        def on_changed(conn, sender, path, iface, signal_name, params):
            iface_name, changed, _ = params.unpack()
            if iface_name == MANAGER_IFACE and 'HelperAvailable' in changed:
                changes.append(changed['HelperAvailable'])

        # Activate first, then listen: HelperAvailable starts FALSE (no owner).
        self.assertFalse(self.get_property(MANAGER_PATH, MANAGER_IFACE, 'HelperAvailable'))
        sub = self.conn.signal_subscribe(None, 'org.freedesktop.DBus.Properties',
                                         'PropertiesChanged', MANAGER_PATH, None,
                                         Gio.DBusSignalFlags.NONE, on_changed)
        # A fake bangerd-root: python-dbusmock owning org.banger.Helper on
        # our private system bus.
        fake_helper = subprocess.Popen(
            ['/usr/bin/python3', '-m', 'dbusmock', '--system', 'org.banger.Helper',
             '/org/banger/Helper', 'org.banger.Helper'],
            env=self.sysbus.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            self.wait_for(lambda: True in changes, 'HelperAvailable to become true')
            self.assertTrue(self.get_property(MANAGER_PATH, MANAGER_IFACE, 'HelperAvailable'))
        finally:
            fake_helper.terminate()
            fake_helper.wait(TIMEOUT)
        self.wait_for(lambda: changes and changes[-1] is False, 'HelperAvailable to become false')
        self.assertEqual(changes, [True, False])
        self.assertFalse(self.get_property(MANAGER_PATH, MANAGER_IFACE, 'HelperAvailable'))
        self.conn.signal_unsubscribe(sub)

    def test_object_manager_signals(self):
        self.create_vm('first')  # activates bangerd; an object exists before the client
        client = Gio.DBusObjectManagerClient.new_sync(
            self.conn, Gio.DBusObjectManagerClientFlags.NONE, MANAGER, MANAGER_PATH,
            None, None, None)
        self.assertEqual([o.get_object_path() for o in client.get_objects()],
                         ['/org/banger/Manager/vms/first'])
        added, removed = [], []
        client.connect('object-added', lambda c, o: added.append(o.get_object_path()))
        client.connect('object-removed', lambda c, o: removed.append(o.get_object_path()))

        path = self.create_vm('second', vcpus=GLib.Variant('u', 3))
        self.wait_for(lambda: path in added, 'InterfacesAdded for %s' % path)
        obj = client.get_object(path)
        proxy = obj.get_interface(VM_IFACE)
        self.assertEqual(proxy.get_cached_property('Name').unpack(), 'second')
        self.assertEqual(proxy.get_cached_property('VCPUs').unpack(), 3)
        self.assertEqual(proxy.get_cached_property('State').unpack(), 'created')
        self.assertRegex(proxy.get_cached_property('Id').unpack(), r'^[0-9a-f]{16}$')

        self.call('Delete', GLib.Variant('(a{sv})', ({},)), path=path, iface=VM_IFACE)
        self.wait_for(lambda: path in removed, 'InterfacesRemoved for %s' % path)
        names = self.call('PruneVMs', None, '(as)')[0]
        self.assertEqual(names, ['first'])
        self.wait_for(lambda: '/org/banger/Manager/vms/first' in removed,
                      'InterfacesRemoved after PruneVMs')
        self.assertEqual(client.get_objects(), [])


    def test_system_bus_goes_away(self):
        # bangerd lives on the session bus: losing the system bus must only
        # turn HelperAvailable off, never end the daemon.
        path = self.create_vm('dev')
        pid = self.bus.bangerd_pid()
        self.sysbus.stop()
        self.assertEqual(self.call('FindVM', GLib.Variant('(s)', ('dev',)), '(o)')[0], path)
        self.assertFalse(self.get_property(MANAGER_PATH, MANAGER_IFACE, 'HelperAvailable'))
        self.assertEqual(self.bus.bangerd_pid(), pid)


class RestartTest(ManagerTestCase):

    def vm_props(self, path):
        return {p: self.get_property(path, VM_IFACE, p)
                for p in ('Name', 'Id', 'CreatedAt', 'MAC', 'VCPUs', 'MemoryMiB', 'State')}

    def test_state_survives_restart(self):
        path = self.create_vm('keep', memory_mib=GLib.Variant('u', 512))
        before = self.vm_props(path)
        old_pid = self.bus.bangerd_pid()
        # An unclean end: SIGKILL, no chance to flush anything.
        self.assertEqual(self.bus.stop_bangerd(signal.SIGKILL), old_pid)
        self.assertIsNone(self.bus.bangerd_pid())
        # The next call activates a new bangerd that finds the VM in the store.
        self.assertEqual(self.call('FindVM', GLib.Variant('(s)', ('keep',)), '(o)')[0], path)
        new_pid = self.bus.bangerd_pid()
        self.assertNotEqual(new_pid, old_pid)
        self.assertEqual(self.vm_props(path), before)
        # A clean stop (SIGTERM) keeps it too.
        self.bus.stop_bangerd(signal.SIGTERM)
        self.assertEqual(self.call('ListVMs', None, '(ao)')[0], [path])


    def test_replace(self):
        path = self.create_vm('keep')
        old_pid = self.bus.bangerd_pid()
        owners = []
        sub = self.conn.signal_subscribe(
            'org.freedesktop.DBus', 'org.freedesktop.DBus', 'NameOwnerChanged',
            '/org/freedesktop/DBus', MANAGER, Gio.DBusSignalFlags.NONE,
            lambda *a: owners.append(a[-1].unpack()[2]))
        log = open(os.path.join(self.tmpdir, 'replacement.log'), 'wb')
        replacement = subprocess.Popen([bangerd_path(), '--replace', '-v'], env=self.env,
                                       stdout=log, stderr=log)
        try:
            self.wait_for(lambda: any(owners), 'the new bangerd to own %s' % MANAGER)
            self.assertEqual(self.bus.bangerd_pid(), replacement.pid)
            # The replaced daemon exits by itself.
            self.assertTrue(wait_pid_gone(old_pid, TIMEOUT))
            self.assertEqual(self.call('ListVMs', None, '(ao)')[0], [path])
        finally:
            self.conn.signal_unsubscribe(sub)
            replacement.terminate()
            status = replacement.wait(TIMEOUT)
            log.close()
            with open(os.path.join(self.tmpdir, 'replacement.log')) as f:
                self.logs.append('--- replacement bangerd ---\n' + f.read())
        self.assertEqual(status, 0)


class ManyVmsTest(ManagerTestCase):
    """Hundreds of VM records in every idle state (issue 13: GetManagedObjects
    now sends properties each VM object keeps between changes, and `vm list`
    reads that reply itself): every VM, every property, every state, right
    after a change too. Speed is bench/scale's business, not this test's."""

    VMS = 300
    STATES = ('created', 'stopped', 'error')

    def managed_vms(self):
        objs = self.call('GetManagedObjects', None, '(a{oa{sa{sv}}})',
                         iface='org.freedesktop.DBus.ObjectManager')[0]
        return {path: ifaces[VM_IFACE] for path, ifaces in objs.items() if VM_IFACE in ifaces}

    def get_all(self, path):
        return self.call('GetAll', GLib.Variant('(s)', (VM_IFACE,)), '(a{sv})', path=path,
                         iface='org.freedesktop.DBus.Properties')[0]

    def banger(self, *args):
        p = subprocess.run([os.path.join(build_root(), 'src', 'cli', 'banger'), *args],
                           env=self.env, capture_output=True, text=True, timeout=60)
        self.logs.append('$ banger %s\n%s%s' % (' '.join(args), p.stdout[-2000:], p.stderr))
        self.assertEqual(p.returncode, 0, p.stderr)
        return p.stdout

    def assert_bus_and_cli_agree(self, want):
        """@want: name -> (state, created_at). GetManagedObjects has every
        VM with every property, each equal to Properties.GetAll; `vm list`,
        `--json`, `ps -a --names` and `ps` show the same."""
        vms = self.managed_vms()
        names = sorted(want, key=lambda n: (want[n][1], n))
        self.assertEqual(sorted(v['Name'] for v in vms.values()), sorted(want))
        for path, props in vms.items():
            self.assertEqual(set(props), self.property_names, path)
            self.assertEqual(props, self.get_all(path), path)
            self.assertEqual((props['State'], props['CreatedAt']), want[props['Name']], path)

        # ListVMRows: `vm list`'s columns of each, the properties' values,
        # oldest first then by name
        listed = self.call('ListVMRows', None, '(a(ossssuuut))')[0]
        self.assertEqual([r[1] for r in listed], names)
        for path, name, state, image, ipv4, vcpus, memory, disk, created in listed:
            props = vms[path]
            self.assertEqual((name, state, image, ipv4, vcpus, memory, disk, created),
                             (props['Name'], props['State'], props['Image'], props['IPv4'],
                              props['VCPUs'], props['MemoryMiB'], props['DiskMiB'],
                              props['CreatedAt']), path)

        rows = self.banger('vm', 'list').splitlines()
        self.assertEqual(rows[0].split()[:2], ['NAME', 'STATE'])
        self.assertEqual([r.split()[:2] for r in rows[1:]], [[n, want[n][0]] for n in names])

        listed = json.loads(self.banger('vm', 'list', '--json'))
        by_name = {v['Name']: v for v in vms.values()}
        self.assertEqual([v['name'] for v in listed], names)
        for v in listed:
            props = by_name[v['name']]
            self.assertEqual(len(v), len(self.property_names), v['name'])
            self.assertEqual((v['state'], v['created_at'], v['last_error'], v['mac'], v['id']),
                             (props['State'], props['CreatedAt'], props['LastError'],
                              props['MAC'], props['Id']), v['name'])

        self.assertEqual(self.banger('vm', 'ps', '-a', '--names').split(), names)
        self.assertEqual(self.banger('vm', 'ps').splitlines()[1:], [])  # none is running

    def test_list_and_objects_with_many_vms(self):
        for i in range(self.VMS):
            self.create_vm('many%03d' % i)
        xml = self.call('Introspect', None, '(s)', path='/org/banger/Manager/vms/many000',
                        iface='org.freedesktop.DBus.Introspectable')[0]
        self.property_names = {
            p.name for p in Gio.DBusNodeInfo.new_for_xml(xml).lookup_interface(VM_IFACE).properties}
        self.assertIn('LastError', self.property_names)

        # Every idle state, creation times out of name order, one VM whose
        # image is gone (its start fails at once, without a guest): written
        # to the store while bangerd is down, as an earlier run would have.
        self.bus.stop_bangerd(signal.SIGTERM)
        db = sqlite3.connect(os.path.join(self.bus.data_dir, 'banger.db'))
        want = {}
        with db:
            for i in range(self.VMS):
                name = 'many%03d' % i
                state = self.STATES[i % len(self.STATES)]
                created = 1700000000 + (i * 7919) % 97
                db.execute('UPDATE vms SET state = ?, created_at = ?, last_error = ? '
                           'WHERE name = ?', (state, created,
                                              'failed %d' % i if state == 'error' else '', name))
                want[name] = (state, created)
            db.execute("UPDATE vms SET image = 'gone-image' WHERE name = 'many001'")
        db.close()
        self.assert_bus_and_cli_agree(want)

        # Changes after objects have been sent: a failed start (starting,
        # then error with its reason), a delete, a create.
        self.assertEqual(want['many001'][0], 'stopped')
        self.call_error('Start', GLib.Variant('(a{sv})', ({},)),
                        path='/org/banger/Manager/vms/many001', iface=VM_IFACE)
        self.wait_for(lambda: self.managed_vms()['/org/banger/Manager/vms/many001']['State']
                      == 'error', 'many001 to be in error after its failed start')
        props = self.managed_vms()['/org/banger/Manager/vms/many001']
        self.assertIn('gone-image', props['LastError'])
        self.assertEqual(props, self.get_all('/org/banger/Manager/vms/many001'))
        want['many001'] = ('error', want['many001'][1])
        self.call('Delete', GLib.Variant('(a{sv})', ({},)), path='/org/banger/Manager/vms/many002',
                  iface=VM_IFACE)
        del want['many002']
        path = self.create_vm('late')
        want['late'] = ('created', self.get_property(path, VM_IFACE, 'CreatedAt'))
        self.assert_bus_and_cli_agree(want)


class ErrorsTest(ManagerTestCase):

    def assert_error(self, expected_name, method, args=None, path=MANAGER_PATH,
                     iface=MANAGER_IFACE, mentions=()):
        name, message = self.call_error(method, args, path=path, iface=iface)
        self.assertEqual(name, expected_name, message)
        for word in mentions:
            self.assertIn(word, message)
        return message

    def spec(self, **kw):
        return GLib.Variant('(a{sv})', (kw,))

    def test_invalid_name(self):
        for bad in ('Dev', '1vm', 'a_b', 'trailing-', 'x' * 40, ''):
            self.assert_error('org.banger.Error.InvalidArgument', 'CreateVM',
                              self.spec(name=GLib.Variant('s', bad)), mentions=['name'])
        self.assert_error('org.banger.Error.InvalidArgument', 'CreateVM', self.spec(),
                          mentions=['name'])
        self.assertEqual(self.call('ListVMs', None, '(ao)')[0], [])

    def test_unknown_key(self):
        self.assert_error('org.banger.Error.InvalidArgument', 'CreateVM',
                          self.spec(name=GLib.Variant('s', 'dev'), colour=GLib.Variant('s', 'red')),
                          mentions=['colour'])
        self.assert_error('org.banger.Error.InvalidArgument', 'CreateVM',
                          self.spec(name=GLib.Variant('s', 'dev'), vcpus=GLib.Variant('s', '2')),
                          mentions=['vcpus'])
        self.assertEqual(self.call('ListVMs', None, '(ao)')[0], [])

    def test_absurd_memory(self):
        self.assert_error('org.banger.Error.InvalidArgument', 'CreateVM',
                          self.spec(name=GLib.Variant('s', 'dev'),
                                    memory_mib=GLib.Variant('u', 4000000000)),
                          mentions=['memory_mib'])
        self.assert_error('org.banger.Error.InvalidArgument', 'CreateVM',
                          self.spec(name=GLib.Variant('s', 'dev'), vcpus=GLib.Variant('u', 0)),
                          mentions=['vcpus'])
        self.assertEqual(self.call('ListVMs', None, '(ao)')[0], [])

    def test_duplicate(self):
        path = self.create_vm('dev')
        vm_id = self.get_property(path, VM_IFACE, 'Id')
        self.assert_error('org.banger.Error.Exists', 'CreateVM',
                          self.spec(name=GLib.Variant('s', 'dev')), mentions=['dev'])
        # The first VM is untouched.
        self.assertEqual(self.get_property(path, VM_IFACE, 'Id'), vm_id)
        self.assertEqual(self.call('ListVMs', None, '(ao)')[0], [path])

    def test_delete_unknown(self):
        self.create_vm('dev')
        # What a client does to delete by name: FindVM, then Delete.
        self.assert_error('org.banger.Error.NotFound', 'FindVM', GLib.Variant('(s)', ('ghost',)),
                          mentions=['ghost'])
        # A stale path (the VM is gone) is a standard D-Bus error, from GDBus.
        path = self.create_vm('gone')
        self.call('Delete', GLib.Variant('(a{sv})', ({},)), path=path, iface=VM_IFACE)
        name, _ = self.call_error('Delete', GLib.Variant('(a{sv})', ({},)), path=path,
                                  iface=VM_IFACE)
        self.assertTrue(name.startswith('org.freedesktop.DBus.Error.Unknown'), name)
        # Unknown option keys are refused, and nothing is deleted.
        self.assert_error('org.banger.Error.InvalidArgument', 'Delete',
                          GLib.Variant('(a{sv})', ({'forse': GLib.Variant('b', True)},)),
                          path='/org/banger/Manager/vms/dev', iface=VM_IFACE, mentions=['forse'])
        self.assertEqual(self.call('FindVM', GLib.Variant('(s)', ('dev',)), '(o)')[0],
                         '/org/banger/Manager/vms/dev')

    def test_update_bad_options(self):
        # Update is implemented (tests/update covers it against a loopback
        # release server); what it is asked is checked before any job or
        # download starts, and the error names what was wrong.
        self.assert_error('org.banger.Error.InvalidArgument', 'Update',
                          GLib.Variant('(a{sv})', ({'to': GLib.Variant('s', 'latest!')},)),
                          mentions=['latest!'])
        self.assert_error('org.banger.Error.InvalidArgument', 'Update',
                          GLib.Variant('(a{sv})', ({'when': GLib.Variant('s', 'now')},)),
                          mentions=['when'])
        p = self.gdbus('Update', "{'force': <'yes'>}", check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn('org.banger.Error.InvalidArgument', p.stderr)
        self.assertIn('force', p.stderr)

def documented_status():
    """{(interface, method): status} from the tables in docs/dbus-api.md."""
    status = {}
    row = re.compile(r'^\|\s*`(org\.banger\.\w+)\.(\w+)`\s*\|\s*(\w+)')
    with open(os.path.join(source_root(), 'docs', 'dbus-api.md')) as f:
        for line in f:
            m = row.match(line)
            if m:
                status[(m.group(1), m.group(2))] = m.group(3).lower()
    return status


def introspected_methods(iface):
    path = os.path.join(source_root(), 'introspection', iface + '.xml')
    with open(path) as f:
        node = Gio.DBusNodeInfo.new_for_xml(f.read())
    return node.lookup_interface(iface).methods


_DEFAULTS = {'s': 'x', 'o': '/x', 'u': 0, 'i': 0, 'q': 0, 't': 0, 'b': False, 'as': [],
             'a{sv}': {}}


class DoctorTest(ManagerTestCase):

    def test_doctor(self):
        rows = self.call('Doctor', None, '(a(ssss))')[0]
        checks = {r[0]: r for r in rows}
        for row in rows:
            self.assertIn(row[1], ('ok', 'warn', 'fail', 'skip'), row)
            self.assertTrue(row[2], row)
        # Which accelerator was chosen, and why, as TESTING.md asks.
        accel = checks['accelerator']
        if accel[1] == 'warn':
            self.assertIn('TCG', accel[2])
            # Some of these machines have /dev/kvm but no vmx/svm, others no
            # /dev/kvm at all (TESTING.md): the reason names what is missing.
            if os.path.exists('/dev/kvm'):
                self.assertIn('vmx', accel[2])
            else:
                self.assertIn('/dev/kvm', accel[2])
        self.assertEqual(checks['qemu'][1], 'ok')
        self.assertIn(self.bus.data_dir, checks['store'][2])
        # No helper on this private bus: a warning that says what it costs.
        self.assertEqual(checks['helper'][1], 'warn')
        self.assertIn('network', checks['helper'][2])
        self.assertIn('will be built on first use', checks['default-image'][2])
        self.assertIn('disk', checks)

    def test_resolve_name(self):
        self.create_vm('dev')
        for name in ('nosuch', 'nosuch.vm'):
            err, message = self.call_error('ResolveName', GLib.Variant('(s)', (name,)))
            self.assertEqual(err, 'org.banger.Error.NotFound', message)
        # A VM that never started has no lease yet.
        err, message = self.call_error('ResolveName', GLib.Variant('(s)', ('dev.vm',)))
        self.assertEqual(err, 'org.banger.Error.NotFound', message)
        self.assertIn('no address', message)


class EveryMethodTest(ManagerTestCase):

    def call_any(self, iface, method, path):
        """Calls @method with placeholder arguments; returns None on success
        or (error name, message)."""
        sig = ''.join(a.signature for a in method.in_args)
        values, fd_list = [], None
        for a in method.in_args:
            if a.signature == 'h':
                fd_list = fd_list or Gio.UnixFDList()
                fd = os.open('/dev/null', os.O_RDWR)
                values.append(fd_list.append(fd))
                os.close(fd)
            else:
                values.append(_DEFAULTS[a.signature])
        args = GLib.Variant('(%s)' % sig, tuple(values)) if sig else None
        try:
            self.call(method.name, args, path=path, iface=iface, fd_list=fd_list)
            return None
        except GLib.Error as e:
            return remote_error(e)

    def test_every_method_answers_in_banger_domains(self):
        documented = documented_status()
        vm_path = self.create_vm('probe')
        # VM methods first (Delete last: it removes the object), then the
        # Manager's (PruneVMs would remove the VM too).
        plan = [(VM_IFACE, vm_path, m) for m in sorted(introspected_methods(VM_IFACE),
                                                        key=lambda m: m.name == 'Delete')]
        plan += [(MANAGER_IFACE, MANAGER_PATH, m) for m in introspected_methods(MANAGER_IFACE)]
        for iface, path, method in plan:
            with self.subTest(method='%s.%s' % (iface, method.name)):
                status = documented.get((iface, method.name))
                self.assertEqual(status, 'implemented',
                                 'docs/dbus-api.md has no status for %s.%s' % (iface, method.name))
                # The wrong signature is refused with the standard error
                # (before the real call: Delete removes the object).
                if method.in_args:
                    args = GLib.Variant('(ss)', ('x', 'y'))
                    if ''.join(a.signature for a in method.in_args) == 'ss':
                        args = GLib.Variant('(u)', (1,))
                    name, _ = self.call_error(method.name, args, path=path, iface=iface)
                    self.assertEqual(name, 'org.freedesktop.DBus.Error.InvalidArgs')
                result = self.call_any(iface, method, path)
                if result is not None:
                    name, message = result
                    self.assertTrue(name.startswith(ALLOWED_ERROR_PREFIXES),
                                    '%s: %s' % (name, message))
                if result is not None:
                    self.assertNotEqual(result[0], 'org.banger.Error.Unsupported', result[1])


class CheckMigrationsTest(unittest.TestCase):

    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory(prefix='banger-migrations-')
        self.tmpdir = self._tmp.name
        self.addCleanup(self._tmp.cleanup)

    def check(self, *extra, env=None):
        return subprocess.run([bangerd_path(), '--check-migrations', *extra],
                              capture_output=True, text=True, timeout=TIMEOUT, env=env)

    def make_banger_db(self):
        """A database written by the real bangerd (activated once, then stopped)."""
        with SessionBus(self.tmpdir) as bus:
            subprocess.run(['gdbus', 'call', '--session', '--dest', MANAGER, '--object-path',
                            MANAGER_PATH, '--method', MANAGER_IFACE + '.CreateVM',
                            "{'name': <'dev'>}"], env=bus.env, check=True,
                           capture_output=True, timeout=TIMEOUT)
            bus.stop_bangerd()
            return os.path.join(bus.data_dir, 'banger.db')

    def test_fresh(self):
        missing = os.path.join(self.tmpdir, 'nothing-here.db')
        p = self.check('--db', missing)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertFalse(os.path.exists(missing), 'the check must not create the database')
        # Without --db it checks $XDG_DATA_HOME/banger/banger.db.
        env = dict(os.environ, XDG_DATA_HOME=os.path.join(self.tmpdir, 'empty'))
        p = self.check(env=env)
        self.assertEqual(p.returncode, 0, p.stderr)
        # And a database the daemon itself wrote.
        db = self.make_banger_db()
        p = self.check('--db', db)
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_future(self):
        db = self.make_banger_db()
        with contextlib.closing(sqlite3.connect(db)) as c:
            c.execute('PRAGMA user_version = 1000')
            c.commit()
        with open(db, 'rb') as f:
            before = f.read()
        p = self.check('--db', db)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn('newer', p.stderr)
        self.assertIn('1000', p.stderr)
        with open(db, 'rb') as f:
            self.assertEqual(f.read(), before, 'the check must not change the database')

    def test_corrupt(self):
        db = os.path.join(self.tmpdir, 'banger.db')
        with open(db, 'wb') as f:
            f.write(b'this is not a database\n' * 200)
        p = self.check('--db', db)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn(db, p.stderr)
        self.assertRegex(p.stderr, r'not an SQLite database|corrupt')


if __name__ == '__main__':
    unittest.main()
