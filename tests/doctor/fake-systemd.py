#!/usr/bin/python3
"""FAKE-systemd: a stand-in for org.freedesktop.systemd1 on a private system
bus, for the doctor's hardening check where no systemd can run (these
machines; tests/host runs the real one). It answers what the doctor asks,
with systemd's documented names and types (org.freedesktop.systemd1(5)):

  Manager.LoadUnit(s) -> o
  Properties.Get(org.freedesktop.systemd1.Unit, LoadState) -> v(s)
  Properties.GetAll(org.freedesktop.systemd1.Service) -> a{sv}

The Service properties are what systemd derives from a unit file, read
from the file given (data/systemd/bangerd-root.service.in): yes/no as
booleans, CapabilityBoundingSet as the capability mask (t),
RestrictAddressFamilies as (allow-list, families) (bas),
SystemCallArchitectures as a string array, UMask as a number. A directive
the file does not set gets systemd's default (off). Overrides (JSON on
argv[2], e.g. '{"NoNewPrivileges": false}') stand for a drop-in.

Prints "ready" on stdout once it owns the name; stops on SIGTERM."""

import json
import sys

import gi
gi.require_version('Gio', '2.0')
from gi.repository import GLib, Gio  # noqa: E402

import fake_bus  # noqa: E402

CAPS = {'CAP_CHOWN': 0, 'CAP_DAC_OVERRIDE': 1, 'CAP_DAC_READ_SEARCH': 2, 'CAP_FOWNER': 3,
        'CAP_FSETID': 4, 'CAP_KILL': 5, 'CAP_SETGID': 6, 'CAP_SETUID': 7, 'CAP_SETPCAP': 8,
        'CAP_NET_BIND_SERVICE': 10, 'CAP_NET_RAW': 13, 'CAP_NET_ADMIN': 12,
        'CAP_SYS_MODULE': 16, 'CAP_SYS_CHROOT': 18, 'CAP_SYS_PTRACE': 19, 'CAP_SYS_ADMIN': 21,
        'CAP_MKNOD': 27}
BOOLEANS = ('NoNewPrivileges', 'PrivateTmp', 'ProtectKernelModules', 'ProtectKernelLogs',
            'ProtectClock', 'ProtectHostname', 'RestrictRealtime', 'LockPersonality',
            'ProtectKernelTunables', 'ProtectControlGroups')
UNIT_PATH = '/org/freedesktop/systemd1/unit/bangerd_2droot_2eservice'

XML = '''<node>
 <interface name="org.freedesktop.systemd1.Manager">
  <method name="LoadUnit"><arg type="s" direction="in"/><arg type="o" direction="out"/></method>
 </interface>
</node>'''


def service_properties(unit_file, overrides):
    keys = {}
    with open(unit_file) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith('#') or line.startswith('[') or '=' not in line:
                continue
            k, v = line.split('=', 1)
            keys[k] = v
    props = {}
    for b in BOOLEANS:
        props[b] = GLib.Variant('b', keys.get(b, 'no') == 'yes')
    props['ProtectSystem'] = GLib.Variant('s', keys.get('ProtectSystem', 'no'))
    props['ProtectHome'] = GLib.Variant('s', keys.get('ProtectHome', 'no'))
    props['KillMode'] = GLib.Variant('s', keys.get('KillMode', 'control-group'))
    props['UMask'] = GLib.Variant('u', int(keys.get('UMask', '0022'), 8))
    props['SystemCallArchitectures'] = GLib.Variant(
        'as', keys.get('SystemCallArchitectures', '').split())
    mask = 0
    if 'CapabilityBoundingSet' in keys:
        for name in keys['CapabilityBoundingSet'].split():
            mask |= 1 << CAPS[name]
    else:
        mask = (1 << 41) - 1
    props['CapabilityBoundingSet'] = GLib.Variant('t', mask)
    fams = keys.get('RestrictAddressFamilies', '').split()
    props['RestrictAddressFamilies'] = GLib.Variant('(bas)', (bool(fams), fams))
    for k, v in overrides.items():
        old = props[k]
        props[k] = GLib.Variant(old.get_type_string(), v)
    return props


def main():
    unit_file = sys.argv[1]
    overrides = json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
    props = service_properties(unit_file, overrides)
    loop = GLib.MainLoop()
    bus = Gio.bus_get_sync(Gio.BusType.SYSTEM, None)
    node = Gio.DBusNodeInfo.new_for_xml(XML)

    def manager_call(conn, sender, path, iface, method, params, invocation):
        if params.unpack()[0] == 'bangerd-root.service':
            invocation.return_value(GLib.Variant('(o)', (UNIT_PATH,)))
        else:
            invocation.return_dbus_error('org.freedesktop.systemd1.NoSuchUnit', 'no such unit')

    bus.register_object('/org/freedesktop/systemd1', node.interfaces[0], manager_call)

    def unit_filter(conn, message, incoming):
        if not incoming or message.get_path() != UNIT_PATH or \
                message.get_interface() != 'org.freedesktop.DBus.Properties':
            return message
        body = message.get_body().unpack()
        if message.get_member() == 'Get' and body == ('org.freedesktop.systemd1.Unit',
                                                      'LoadState'):
            reply = message.new_method_reply()
            reply.set_body(GLib.Variant('(v)', (GLib.Variant('s', 'loaded'),)))
        elif message.get_member() == 'GetAll' and body == ('org.freedesktop.systemd1.Service',):
            reply = message.new_method_reply()
            reply.set_body(GLib.Variant('(a{sv})', (props,)))
        else:
            reply = fake_bus.not_faked(message)
        conn.send_message(reply, Gio.DBusSendMessageFlags.NONE)
        return None

    bus.add_filter(unit_filter)
    fake_bus.serve(bus, loop, 'org.freedesktop.systemd1')


if __name__ == '__main__':
    main()
