#!/usr/bin/python3
"""Runs the build tree's `banger` with whatever it needs around it.

On a desktop with systemd, where org.banger.Helper is installed on the real
system bus and a session bus runs, `banger` is simply run against them.

On a machine without systemd or a system bus (a container, a CI machine,
these build machines), it brings up what is missing the way the test suite
does, and says so: a private system bus with the real polkitd, bangerd-root
in a network namespace of its own (so the host's network is left alone),
and a private session bus that D-Bus-activates the build tree's bangerd in
that namespace. Everything is stopped again when `banger` exits, and the
exit status is banger's.

    quickstart.py [BANGER-ARGS…]
"""

import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_ROOT = os.path.dirname(os.path.dirname(HERE))
os.environ.setdefault('BANGER_SOURCE_ROOT', SOURCE_ROOT)
os.environ.setdefault('BANGER_BUILD_ROOT', os.path.join(SOURCE_ROOT, 'build'))
BUILD_ROOT = os.environ['BANGER_BUILD_ROOT']
BANGER = os.path.join(BUILD_ROOT, 'src', 'cli', 'banger')


def say(text):
    sys.stderr.write('quickstart: %s\n' % text)
    sys.stderr.flush()


def real_buses_usable():
    """TRUE when the real system bus can activate or reach the helper and
    a session bus exists."""
    if not os.environ.get('DBUS_SESSION_BUS_ADDRESS'):
        return False
    res = subprocess.run(['busctl', '--system', 'status', 'org.banger.Helper'],
                         capture_output=True)
    if res.returncode == 0:
        return True
    res = subprocess.run(['busctl', '--system', 'call', 'org.freedesktop.DBus',
                          '/org/freedesktop/DBus', 'org.freedesktop.DBus',
                          'ListActivatableNames'], capture_output=True, text=True)
    return res.returncode == 0 and 'org.banger.Helper' in res.stdout




def run_private(args):
    sys.path.insert(0, HERE)
    from session_bus import SessionBus
    from system_bus import SystemBus
    from netns import enter_netns

    say('no usable system bus with banger installed: starting a private system bus, '
        'polkitd and bangerd-root (in network namespace of their own), and a session bus '
        'for bangerd, as the test suite does')
    tmp = tempfile.mkdtemp(prefix='banger-quickstart-')
    os.chmod(tmp, 0o755)
    system = SystemBus(test_users=False)
    session = None
    try:
        system.start()
        system.start_helper()
        enter_netns(system.netns)
        env = dict(os.environ)
        env['BANGER_AGENT'] = os.path.join(BUILD_ROOT, 'src', 'agent', 'banger-agent')
        # Keep images and kernels between runs, like a real installation.
        home = os.path.join(os.path.expanduser('~'), '.local', 'share', 'banger-quickstart')
        os.makedirs(home, exist_ok=True)
        session = SessionBus(tmp, system_bus_address=system.address, env=env)
        for var, sub in (('XDG_DATA_HOME', 'data'), ('XDG_CACHE_HOME', 'cache')):
            path = os.path.join(home, sub)
            os.makedirs(path, mode=0o700, exist_ok=True)
            session.env[var] = path
        session.start()
        client_env = dict(session.env)
        client_env['DBUS_SESSION_BUS_ADDRESS'] = session.address
        return subprocess.run([BANGER, *args], env=client_env).returncode
    finally:
        if session is not None:
            session.stop()
        system.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    args = sys.argv[1:]
    if args[:1] == ['--']:
        args = args[1:]
    if not os.path.exists(BANGER):
        say('%s is missing: build first (meson setup build && ninja -C build)' % BANGER)
        return 1
    if real_buses_usable():
        say('using the real system and session buses')
        return subprocess.run([BANGER, *args]).returncode
    if os.geteuid() != 0:
        say('without systemd this needs root (it starts polkitd and the root helper)')
        return 1
    return run_private(args)


if __name__ == '__main__':
    sys.exit(main())
