"""What the doctor's fake D-Bus services (fake-systemd.py,
fake-resolved-links.py) share: refusing what they do not fake, and owning
their well-known name on the private system bus until SIGTERM."""

import signal
import sys

from gi.repository import GLib


def not_faked(message):
    """The reply to a property read the fake does not answer."""
    return message.new_method_error_literal('org.freedesktop.DBus.Error.UnknownProperty',
                                            'not faked')


def serve(bus, loop, name):
    """Owns @name on @bus (DO_NOT_QUEUE; exits if it cannot), prints "ready"
    for the test that waits on it, and runs @loop until SIGTERM."""
    reply = bus.call_sync('org.freedesktop.DBus', '/org/freedesktop/DBus', 'org.freedesktop.DBus',
                          'RequestName', GLib.Variant('(su)', (name, 4)),
                          None, 0, 5000, None)
    if reply.unpack()[0] != 1:
        sys.exit(f'cannot own {name}')
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, loop.quit)
    print('ready', flush=True)
    loop.run()
