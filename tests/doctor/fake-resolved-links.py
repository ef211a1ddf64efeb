#!/usr/bin/python3
"""FAKE-resolved, the read side: a stand-in for systemd-resolved's
org.freedesktop.resolve1 on a private system bus, for the doctor's
dns-routing check (systemd-resolved cannot run here). It answers what the
doctor asks, with resolved's documented names and types
(org.freedesktop.resolve1(5)):

  Manager.GetLink(i ifindex) -> o  (/org/freedesktop/resolve1/link/_<ifindex>)
  Properties.Get(org.freedesktop.resolve1.Link, DNSEx)   -> v(a(iayqs))
  Properties.Get(org.freedesktop.resolve1.Link, Domains) -> v(a(sb))

The link's settings come as JSON on argv[1]:
{"dns": [[2, [127, 0, 0, 1], 42069, ""]], "domains": [["vm", true]]}
(tests/fakes/fake-resolved.py is the write side the helper talks to.)

Prints "ready" once it owns the name; stops on SIGTERM."""

import json
import sys

import gi
gi.require_version('Gio', '2.0')
from gi.repository import GLib, Gio  # noqa: E402

import fake_bus  # noqa: E402

XML = '''<node>
 <interface name="org.freedesktop.resolve1.Manager">
  <method name="GetLink"><arg type="i" direction="in"/><arg type="o" direction="out"/></method>
 </interface>
</node>'''
LINK_PREFIX = '/org/freedesktop/resolve1/link/_'


def main():
    settings = json.loads(sys.argv[1])
    dns = GLib.Variant('a(iayqs)', [(f, bytes(a), p, n) for f, a, p, n in settings['dns']])
    domains = GLib.Variant('a(sb)', [tuple(d) for d in settings['domains']])
    loop = GLib.MainLoop()
    bus = Gio.bus_get_sync(Gio.BusType.SYSTEM, None)
    node = Gio.DBusNodeInfo.new_for_xml(XML)

    def manager_call(conn, sender, path, iface, method, params, invocation):
        ifindex = params.unpack()[0]
        invocation.return_value(GLib.Variant('(o)', (LINK_PREFIX + str(ifindex),)))

    bus.register_object('/org/freedesktop/resolve1', node.interfaces[0], manager_call)

    def link_filter(conn, message, incoming):
        path = message.get_path() or ''
        if not incoming or not path.startswith(LINK_PREFIX) or \
                message.get_interface() != 'org.freedesktop.DBus.Properties' or \
                message.get_member() != 'Get':
            return message
        iface, prop = message.get_body().unpack()
        if iface == 'org.freedesktop.resolve1.Link' and prop in ('DNSEx', 'Domains'):
            reply = message.new_method_reply()
            reply.set_body(GLib.Variant('(v)', (dns if prop == 'DNSEx' else domains,)))
        else:
            reply = fake_bus.not_faked(message)
        conn.send_message(reply, Gio.DBusSendMessageFlags.NONE)
        return None

    bus.add_filter(link_filter)
    fake_bus.serve(bus, loop, 'org.freedesktop.resolve1')


if __name__ == '__main__':
    main()
