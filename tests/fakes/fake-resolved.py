#!/usr/bin/python3
"""A FAKE systemd-resolved for banger's tests (python-dbusmock has no
resolved template, and the real one would take over the machine's name
resolution). It is not systemd-resolved: it resolves nothing. It owns
org.freedesktop.resolve1 on the bus in DBUS_SYSTEM_BUS_ADDRESS and serves
the per-link calls of org.freedesktop.resolve1.Manager at
/org/freedesktop/resolve1 with the signatures of org.freedesktop.resolve1(5)
(systemd 252, Debian 12):

  SetLinkDNS(in i ifindex, in a(iay) addresses)
  SetLinkDNSEx(in i ifindex, in a(iayqs) addresses)
  SetLinkDomains(in i ifindex, in a(sb) domains)
  SetLinkDefaultRoute(in i ifindex, in b enable)
  SetLinkDNSSEC(in i ifindex, in s mode)
  RevertLink(in i ifindex)

and refuses what resolved refuses (src/resolve/resolved-link-bus.c):
- an ifindex that is not a link (looked up in the fake's own network
  namespace, so run it where the links are) → org.freedesktop.resolve1.NoSuchLink;
- the loopback link → org.freedesktop.resolve1.LinkBusy;
- an address family other than AF_INET/AF_INET6, an address of the wrong
  size, the null address or resolved's own stub 127.0.0.53/127.0.0.54,
  an invalid domain name, an unknown DNSSEC mode
  → org.freedesktop.DBus.Error.InvalidArgs;
- a caller that is not root → org.freedesktop.DBus.Error.AccessDenied (the
  real one asks polkit, which without an agent only lets root through).

Every accepted call is appended as one JSON line {"method", "ifindex",
"ifname", "args", "uid"} to the file given with --record, flushed before
the reply, so a test can read it once the caller has its answer. Refused
calls are recorded with "error" instead.
"""

import argparse
import json
import re
import socket
import sys

import dbus
import dbus.service
import dbus.mainloop.glib
from gi.repository import GLib

BUS_NAME = 'org.freedesktop.resolve1'
PATH = '/org/freedesktop/resolve1'
IFACE = 'org.freedesktop.resolve1.Manager'
AF_INET = 2
AF_INET6 = 10
DNSSEC_MODES = ('', 'yes', 'no', 'allow-downgrade')
LABEL = re.compile(r'^[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$')


class ResolvedError(dbus.DBusException):
    def __init__(self, name, message):
        super().__init__(message, name=name)


def invalid(message):
    return ResolvedError('org.freedesktop.DBus.Error.InvalidArgs', message)


def valid_domain(name):
    if name in ('', '.'):
        return True
    labels = name.rstrip('.').split('.')
    return len(name) <= 253 and all(LABEL.match(l) for l in labels)


class Manager(dbus.service.Object):
    def __init__(self, bus, record):
        super().__init__(bus, PATH)
        self.bus = bus
        self.record = record

    def _log(self, entry):
        self.record.write(json.dumps(entry) + '\n')
        self.record.flush()

    def _caller_uid(self, sender):
        dbus_obj = self.bus.get_object('org.freedesktop.DBus', '/org/freedesktop/DBus')
        return int(dbus.Interface(dbus_obj, 'org.freedesktop.DBus').GetConnectionUnixUser(sender))

    def _check(self, method, ifindex, sender, args):
        uid = self._caller_uid(sender)
        entry = {'method': method, 'ifindex': int(ifindex), 'uid': uid, 'args': args}
        try:
            if uid != 0:
                raise ResolvedError('org.freedesktop.DBus.Error.AccessDenied',
                                    'Access denied (fake resolved: only root may change links)')
            if ifindex <= 0:
                raise invalid('Invalid interface index')
            try:
                ifname = socket.if_indextoname(ifindex)
            except OSError:
                raise ResolvedError('org.freedesktop.resolve1.NoSuchLink',
                                    'Link %d not known' % ifindex) from None
            if ifname == 'lo':
                raise ResolvedError('org.freedesktop.resolve1.LinkBusy',
                                    'Link lo is loopback device.')
            entry['ifname'] = ifname
            return entry
        except dbus.DBusException as e:
            entry['error'] = e.get_dbus_name()
            self._log(entry)
            raise

    def _fail(self, entry, exc):
        entry['error'] = exc.get_dbus_name()
        self._log(entry)
        raise exc

    def _servers(self, entry, addresses, extended):
        out = []
        for a in addresses:
            family, raw = int(a[0]), bytes(a[1])
            port = int(a[2]) if extended else 0
            name = str(a[3]) if extended else ''
            if family not in (AF_INET, AF_INET6):
                self._fail(entry, invalid('Unknown address family %i' % family))
            if len(raw) != (4 if family == AF_INET else 16):
                self._fail(entry, invalid('Invalid address size'))
            if raw.strip(b'\0') == b'' or (family == AF_INET and raw in (bytes([127, 0, 0, 53]),
                                                                        bytes([127, 0, 0, 54]))):
                self._fail(entry, invalid('Invalid DNS server address'))
            if name and not valid_domain(name):
                self._fail(entry, invalid('Invalid DNS server name'))
            out.append({'family': family,
                        'address': socket.inet_ntop(socket.AF_INET if family == AF_INET
                                                    else socket.AF_INET6, raw),
                        'port': port, 'name': name})
        return out

    @dbus.service.method(IFACE, in_signature='ia(iay)', out_signature='', sender_keyword='sender')
    def SetLinkDNS(self, ifindex, addresses, sender=None):
        entry = self._check('SetLinkDNS', ifindex, sender, None)
        entry['args'] = self._servers(entry, addresses, False)
        self._log(entry)

    @dbus.service.method(IFACE, in_signature='ia(iayqs)', out_signature='',
                         sender_keyword='sender')
    def SetLinkDNSEx(self, ifindex, addresses, sender=None):
        entry = self._check('SetLinkDNSEx', ifindex, sender, None)
        entry['args'] = self._servers(entry, addresses, True)
        self._log(entry)

    @dbus.service.method(IFACE, in_signature='ia(sb)', out_signature='', sender_keyword='sender')
    def SetLinkDomains(self, ifindex, domains, sender=None):
        entry = self._check('SetLinkDomains', ifindex, sender, None)
        args = []
        for name, route_only in domains:
            if not valid_domain(str(name)):
                self._fail(entry, invalid('Invalid search domain %s' % name))
            args.append([str(name), bool(route_only)])
        entry['args'] = args
        self._log(entry)

    @dbus.service.method(IFACE, in_signature='ib', out_signature='', sender_keyword='sender')
    def SetLinkDefaultRoute(self, ifindex, enable, sender=None):
        entry = self._check('SetLinkDefaultRoute', ifindex, sender, bool(enable))
        self._log(entry)

    @dbus.service.method(IFACE, in_signature='is', out_signature='', sender_keyword='sender')
    def SetLinkDNSSEC(self, ifindex, mode, sender=None):
        entry = self._check('SetLinkDNSSEC', ifindex, sender, str(mode))
        if str(mode) not in DNSSEC_MODES:
            self._fail(entry, invalid('Invalid DNSSEC setting: %s' % mode))
        self._log(entry)

    @dbus.service.method(IFACE, in_signature='i', out_signature='', sender_keyword='sender')
    def RevertLink(self, ifindex, sender=None):
        entry = self._check('RevertLink', ifindex, sender, None)
        self._log(entry)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--record', required=True, help='JSON-lines file of the calls')
    args = parser.parse_args()
    dbus.mainloop.glib.DBusGMainLoop(set_as_default=True)
    bus = dbus.SystemBus()
    record = open(args.record, 'a')
    manager = Manager(bus, record)  # noqa: F841 - exported while referenced
    name = dbus.service.BusName(BUS_NAME, bus, do_not_queue=True)  # noqa: F841
    loop = GLib.MainLoop()
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, 15, loop.quit)
    loop.run()
    record.close()
    return 0


if __name__ == '__main__':
    sys.exit(main())
