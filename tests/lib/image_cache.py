"""Images that several tests of one run boot, built once per run.

    import image_cache
    rootfs, built = image_cache.ensure('debian', [recipe_source, agent_binary], build)

The first test of a run that needs the image calls build() (which builds it
for real, e.g. `banger image build debian` in the test's own data directory,
and returns the path of its root filesystem); ensure() keeps a copy of that
file in the cache and returns (that copy, True). Every later test of the
same run gets (the copy, False) and registers it in its own data directory
(`banger image register NAME --rootfs COPY`), instead of building again.

The entry is keyed by a hash of the given input files (what determines the
image: the recipe's source, the agent binary it embeds) and of the run, so
a change to either, or a new run, builds anew: each run still tests the
build end to end once. The run is the process that started the tests, the
meson test runner (the tests' parent: a test run by hand shares with the
other tests that shell runs). Each pass of tests/run-all.sh is a run of its
own; they could not share anyway, as their agents differ (the build
directory's path is in the binary). Entries of runs that are over are
removed.

Like hostlib.ensure_tree: the copy is written to a temporary file and
renamed into place under an exclusive flock, so two tests of a run build
once and neither ever sees half a file. A test that waits for the lock
waits for the build itself (meson's timeout bounds it); if that build
failed, the waiting test builds in turn, and fails the same way.
"""

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import time

CACHE = os.environ.get('BANGER_HOST_CACHE', '/var/cache/banger-test')
# Bump when what an entry holds changes.
FORMAT = 1
ROOTFS = 'rootfs.ext4'
MARKER = 'entry.json'


def _start_time(pid):
    """The start time of @pid (clock ticks after boot), or None if it is
    gone: with the pid it names one process, whatever reuses the pid."""
    try:
        with open(f'/proc/{pid}/stat') as f:
            return int(f.read().rsplit(')', 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def run_owner():
    pid = os.getppid()
    return pid, _start_time(pid)


def _file_hash(path):
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            h.update(chunk)
    return h.hexdigest()


def entry_path(name, inputs):
    pid, start = run_owner()
    desc = json.dumps({'format': FORMAT, 'name': name, 'run': [pid, start],
                       'inputs': {os.path.basename(p): _file_hash(p) for p in inputs}},
                      sort_keys=True)
    return os.path.join(CACHE, f'image-{name}-' + hashlib.sha256(desc.encode()).hexdigest()[:16])


def _remove_finished_runs(keep):
    """Removes the entries (a few hundred MiB each) of runs that are over."""
    for n in os.listdir(CACHE):
        path = os.path.join(CACHE, n)
        if not n.startswith('image-') or path == keep or n.endswith('.lock') \
                or not os.path.isdir(path):
            continue
        try:
            with open(os.path.join(path, MARKER)) as f:
                pid, start = json.load(f)['run']
        except (OSError, ValueError, KeyError, TypeError):
            pid, start = None, None
        if pid is not None and _start_time(pid) == start:
            continue
        # A directory without a marker is either half-built by a test that
        # died or being built right now: its own lock tells which.
        with open(path + '.lock', 'w') as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue
            shutil.rmtree(path, ignore_errors=True)
            with contextlib.suppress(OSError):
                os.unlink(path + '.lock')


def ensure(name, inputs, build):
    """Returns (path of the cached root filesystem, True if build() ran
    here). build() builds the image and returns its root filesystem's path;
    it raises (or fails the test) if the build fails, and nothing is kept."""
    path = entry_path(name, inputs)
    rootfs = os.path.join(path, ROOTFS)
    marker = os.path.join(path, MARKER)
    os.makedirs(CACHE, exist_ok=True)
    with open(path + '.lock', 'w') as lock:
        # Blocks while another test of the run builds: waiting on the build
        # itself, not on time.
        fcntl.flock(lock, fcntl.LOCK_EX)
        if os.path.exists(marker):
            return rootfs, False
        _remove_finished_runs(keep=path)
        shutil.rmtree(path, ignore_errors=True)      # no marker: never finished
        t0 = time.monotonic()
        built = build()
        os.makedirs(path)
        tmp = rootfs + '.tmp'
        # With its holes (the image is mostly empty space): a quarter of
        # the writes and of the disk a plain copy takes.
        subprocess.run(['cp', '--sparse=always', built, tmp], check=True)
        os.rename(tmp, rootfs)
        pid, start = run_owner()
        with open(marker + '.tmp', 'w') as f:
            json.dump({'run': [pid, start], 'inputs': list(inputs),
                       'built_in_s': round(time.monotonic() - t0, 1)}, f)
        os.rename(marker + '.tmp', marker)
        return rootfs, True
