"""Shared state of the FAKE losetup and FAKE dmsetup (tests only).

Device-mapper and loop devices cannot be used on the test machines (no
/dev/mapper/control, no module loading), so these fakes follow the real
tools' argv and output and keep what they "attached" in
$BANGER_FAKE_DM_STATE/state.json. Their "devices" are regular files under
$BANGER_FAKE_DM_STATE/dev so ownership can be checked. Every call is
appended to calls.log (one JSON argv per line)."""

import fcntl
import json
import os
import sys


def state_dir():
    d = os.environ.get('BANGER_FAKE_DM_STATE')
    if not d:
        sys.stderr.write('fake: BANGER_FAKE_DM_STATE is not set\n')
        sys.exit(2)
    return d


class State:
    """The state file, locked for the whole call."""

    def __enter__(self):
        d = state_dir()
        self.dev = os.path.join(d, 'dev')
        os.makedirs(os.path.join(self.dev, 'mapper'), exist_ok=True)
        self.lock = open(os.path.join(d, 'state.lock'), 'w')
        fcntl.flock(self.lock, fcntl.LOCK_EX)
        self.path = os.path.join(d, 'state.json')
        try:
            with open(self.path) as f:
                self.data = json.load(f)
        except FileNotFoundError:
            self.data = {'loops': {}, 'dm': {}}
        with open(os.path.join(d, 'calls.log'), 'a') as f:
            f.write(json.dumps([os.path.basename(sys.argv[0])] + sys.argv[1:]) + '\n')
        return self

    def save(self):
        tmp = self.path + '.tmp'
        with open(tmp, 'w') as f:
            json.dump(self.data, f)
        os.rename(tmp, self.path)

    def __exit__(self, *exc):
        self.lock.close()
        return False

    def fail_requested(self, what):
        """A test asks a step to fail by creating fail-<what> in the state dir."""
        return os.path.exists(os.path.join(state_dir(), f'fail-{what}'))
