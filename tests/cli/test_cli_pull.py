#!/usr/bin/python3
"""The CLI of issue 4 end to end: `image pull`, `image cache list|prune`,
`image promote`, `kernel pull` and `vm run --image REF`.

Registries are Debian's real docker-registry on loopback, with test images
built by umoci and pushed by skopeo (tests/oci/ocitest.py). The image the
guests boot is a small busybox root file system with an /etc/os-release;
bangerd adds the agent.

- CliPullTest needs no VM and no helper: bangerd on a private session bus,
  the registry on 127.0.0.1 (pulling needs no privileges), and for
  `kernel pull` a loopback HTTP server (a thread of this test) named as
  the catalog in the user's config, the way tests/lifecycle does it.
- CliPullVmTest boots guests: tests/cli/test_cli_vm.py's world (helper,
  polkitd and bangerd in a network namespace this test creates), and the
  registry runs inside that namespace too, so bangerd reaches it on the
  namespace's own loopback.

One meson test per test case (tests/cli/meson.build)."""

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

from loopback_http import serve_directory
from session_bus import SessionBus

sys.path.insert(0, os.path.join(os.environ['BANGER_SOURCE_ROOT'], 'tests', 'oci'))
import ocitest  # noqa: E402
from test_cli_vm import AGENT, BANGER, BOOT_TIMEOUT, NetWorld, _World  # noqa: E402,F401

OS_RELEASE = b'PRETTY_NAME="banger test app 1"\nNAME="banger-test"\nID=bangertest\n'
APPLETS = ('sh', 'cat', 'echo', 'id', 'su', 'true', 'ls', 'sync', 'pwd', 'mkdir', 'setpriv')


def busybox_rootfs():
    """The entries of a small root file system: static busybox, its applets
    as symlinks, the directories the agent mounts on, and os-release."""
    with open('/bin/busybox', 'rb') as f:
        busybox = f.read()
    entries = [{'name': d, 'type': 'dir'} for d in ('bin', 'etc', 'proc', 'sys', 'run', 'srv')]
    entries += [
        {'name': 'dev', 'type': 'dir'},
        {'name': 'dev/console', 'type': 'char', 'major': 5, 'minor': 1, 'mode': 0o600},
        {'name': 'dev/null', 'type': 'char', 'major': 1, 'minor': 3, 'mode': 0o666},
        {'name': 'tmp', 'type': 'dir', 'mode': 0o1777},
        {'name': 'root', 'type': 'dir', 'mode': 0o700},
        {'name': 'home', 'type': 'dir'},
        {'name': 'home/app', 'type': 'dir', 'uid': 1000, 'gid': 1000},
        {'name': 'bin/busybox', 'data': busybox, 'mode': 0o755},
        {'name': 'etc/os-release', 'data': OS_RELEASE},
        {'name': 'etc/passwd',
         'data': b'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n'},
        {'name': 'etc/group', 'data': b'root:x:0:\napp:x:1000:\n'},
        {'name': 'etc/shells', 'data': b'/bin/sh\n'},
    ]
    entries += [{'name': 'bin/' + a, 'type': 'symlink', 'target': 'busybox'} for a in APPLETS]
    return entries


def build_app_image(tmp, name='app', cmd=None, entrypoint=None, env=(), workdir=None,
                    user=None):
    """An OCI layout holding one busybox layer and the given run config."""
    layout = ocitest.new_layout(tmp, name)
    # A file of its own, so no two test images share a layer (a shared
    # layer would come from the cache, not from the registry).
    ocitest.add_layer(layout, 'latest', tmp, busybox_rootfs() + [
        {'name': 'etc/image-id', 'data': os.urandom(8).hex().encode()}])
    args = []
    for word in entrypoint or ():
        args += ['--config.entrypoint', word]
    for word in cmd or ():
        args += ['--config.cmd', word]
    for item in env:
        args += ['--config.env', item]
    if workdir:
        args += ['--config.workingdir', workdir]
    if user:
        args += ['--config.user', user]
    if args:
        ocitest.umoci('config', '--image', '%s:latest' % layout, *args)
    return layout


def blobs_of(layout):
    """Every digest a pull of @layout's latest stores: manifest, config,
    layers."""
    digest, manifest = ocitest.manifest_of(layout)
    return {digest, manifest['config']['digest']} | {l['digest'] for l in manifest['layers']}


class CliPullTest(_World):
    """bangerd on a private session bus, docker-registry on loopback and a
    loopback HTTP catalog. No VM boots."""

    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory(prefix='banger-cli-pull-test-')
        self.tmpdir = self._tmp.name
        self.addCleanup(self._tmp.cleanup)
        self.registry = ocitest.Registry(self.tmpdir)
        self.addCleanup(self._stop_registry)

        self.www = os.path.join(self.tmpdir, 'www')
        os.makedirs(self.www)
        self.base = serve_directory(self, self.www)

        env = dict(os.environ)
        env['BANGER_AGENT'] = AGENT
        self.session = SessionBus(self.tmpdir, bangerd_args=['-vv'], env=env)
        os.makedirs(self.session.config_dir, exist_ok=True)
        with open(os.path.join(self.session.config_dir, 'config'), 'w') as f:
            f.write('[catalog]\nurl=%s/index.json\n' % self.base)
        self.session.start()
        self.addCleanup(self._stop_session)
        self.env = dict(self.session.env)
        self.env['LC_ALL'] = 'C.UTF-8'

    def _stop_session(self):
        self.session.stop()
        if self._outcome_failed():
            sys.stderr.write('===== session bus and bangerd =====\n' + self.session.log())

    def _stop_registry(self):
        if self._outcome_failed():
            sys.stderr.write('===== registry =====\n' + self.registry.read_log()[-4000:])
        self.registry.stop()

    def push_app(self, repo='test/app:1', **config):
        layout = build_app_image(self.tmpdir, 'app-' + os.urandom(3).hex(), **config)
        self.registry.push(layout, 'latest', repo)
        return layout, '%s/%s' % (self.registry.host, repo)

    def images(self):
        return json.loads(self.banger('image', 'list', '--json').stdout)

    def cache(self):
        return json.loads(self.banger('image', 'cache', 'list', '--json').stdout)

    def assert_plain_lines(self, stderr, operation):
        lines = stderr.splitlines()
        self.assertTrue(lines, stderr)
        for line in lines:
            self.assertTrue(line.startswith(operation + ' '), line)
            self.assertNotIn('\r', line)
            self.assertNotIn('\033', line)
        self.assertTrue(lines[-1].endswith(': done'), lines)

    # ---- image pull ------------------------------------------------------

    def test_pull_plain_progress_and_list(self):
        layout, ref = self.push_app(cmd=['echo', 'from-cmd'], env=['GREETING=hi there'],
                                    workdir='/srv', user='app')
        r = self.banger('image', 'pull', ref, timeout=120)
        self.assertEqual(r.stdout, 'app-1\n')
        # stderr is not a terminal: plain lines, with percentages and bytes
        self.assert_plain_lines(r.stderr, 'pull-image')
        self.assertRegex(r.stderr, r'(?m)^pull-image %s: \d+%%' % re.escape(ref))
        self.assertRegex(r.stderr, r'\(\d+(\.\d)?\u00a0(bytes|KiB|MiB) of ')

        digest, _ = ocitest.manifest_of(layout)
        image = [i for i in self.images() if i['name'] == 'app-1']
        self.assertEqual(len(image), 1, self.images())
        self.assertEqual(image[0]['digest'], digest)
        self.assertEqual(image[0]['source'], ref)
        self.assertEqual(image[0]['config']['cmd'], ['echo', 'from-cmd'])
        self.assertEqual(image[0]['config']['user'], 'app')

        # image show: source, digest and the run config
        text = self.banger('image', 'show', 'app-1').stdout
        self.assertRegex(text, r'(?m)^Source:\s+%s$' % re.escape(ref))
        self.assertRegex(text, r'(?m)^Digest:\s+%s$' % re.escape(digest))
        self.assertRegex(text, r'(?m)^Entrypoint:\s+-$')
        self.assertRegex(text, r'(?m)^Cmd:\s+echo from-cmd$')
        self.assertRegex(text, r"(?m)^Env:\s+.*'GREETING=hi there'")
        self.assertRegex(text, r'(?m)^Workdir:\s+/srv$')
        self.assertRegex(text, r'(?m)^User:\s+app$')

        # --name, --quiet, --size; the same job machinery, nothing on stderr
        r = self.banger('image', 'pull', ref, '--name', 'other', '-q', '--size', '256M',
                        timeout=120)
        self.assertEqual((r.stdout, r.stderr), ('other\n', ''))
        other = [i for i in self.images() if i['name'] == 'other'][0]
        self.assertEqual(other['size_bytes'], 256 * 1024 * 1024)
        # the default name is taken now: refused before any job, naming it
        r = self.banger('image', 'pull', ref, status=1)
        self.assert_clean_error(r, '“app-1”')
        self.assertEqual(len(r.stderr.splitlines()), 1, r.stderr)

    def test_pull_progress_bar(self):
        """--progress bar: one line redrawn with \\r, bytes of the total."""
        _, ref = self.push_app(repo='test/bar:1')
        # bytes: text mode would turn the \r into \n
        r = subprocess.run([BANGER, 'image', 'pull', ref, '--progress', 'bar'], env=self.env,
                           capture_output=True, stdin=subprocess.DEVNULL, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, b'bar-1\n')
        self.assertNotIn(b'\n', r.stderr[:-1])
        self.assertRegex(r.stderr, rb'\r\[#{20}\] 100%  [0-9.]+\xc2\xa0MiB/[0-9.]+\xc2\xa0MiB'
                                   rb'.*done\x1b\[K\n$')

    def test_pull_usage_and_bad_references(self):
        r = self.banger('image', 'pull', status=2)
        self.assertIn('missing argument', r.stderr)
        r = self.banger('image', 'pull', 'x/y', '--size', '12X', status=2)
        self.assertIn('12X', r.stderr)
        r = self.banger('image', 'pull', 'x/y', '--progress', 'fancy', status=2)
        self.assertIn('fancy', r.stderr)
        r = self.banger('image', 'pull', 'x/y', '--name', 'Bad_Name', status=1)
        self.assert_clean_error(r, '“Bad_Name”')
        # the daemon's parser refuses it before any job starts
        r = self.banger('image', 'pull', 'Not A Reference!', status=1)
        self.assert_clean_error(r, 'Not A Reference!')
        # a repository the registry does not have: the job fails, cleanly
        r = self.banger('image', 'pull', self.registry.host + '/test/missing:1', status=1)
        # the progress lines do not repeat the error: it is said once, last
        lines = r.stderr.splitlines()
        self.assertEqual(len([l for l in lines if 'manifest' in l]), 1, r.stderr)
        r.stderr = lines[-1]
        self.assert_clean_error(r, 'pulling “%s/test/missing:1” failed' % self.registry.host)
        self.assertEqual(self.images(), [])

    def test_pull_tampered_blob(self):
        layout, ref = self.push_app(repo='test/tampered:1')
        _, manifest = ocitest.manifest_of(layout)
        victim = manifest['layers'][0]['digest']
        path = self.registry.blob_path(victim)
        with open(path, 'rb') as f:
            data = bytearray(f.read())
        data[100] ^= 0x01
        with open(path, 'wb') as f:
            f.write(data)
        r = self.banger('image', 'pull', ref, '-q', status=1, timeout=120)
        self.assertEqual(r.stdout, '')
        self.assert_clean_error(r, 'pulling “%s” failed' % ref, victim,
                                'does not match its digest')
        self.assertEqual(len(r.stderr.splitlines()), 1, r.stderr)
        self.assertEqual(self.images(), [])
        self.assertNotIn(victim, [b['digest'] for b in self.cache()])

    # ---- image cache ----------------------------------------------------

    def test_cache_list_and_prune(self):
        self.assertEqual(self.cache(), [])
        layout, ref = self.push_app(repo='test/cached:1')
        self.banger('image', 'pull', ref, '-q', timeout=120)
        wanted = blobs_of(layout)
        cache = self.cache()
        self.assertEqual({b['digest'] for b in cache}, wanted)
        for blob in cache:
            self.assertEqual(set(blob), {'digest', 'size_bytes', 'last_used'})
            self.assertGreater(blob['size_bytes'], 0)
            self.assertGreater(blob['last_used'], 0)
        # the busybox layer is the big one
        self.assertGreater(max(b['size_bytes'] for b in cache), 500 * 1024)
        table = self.banger('image', 'cache', 'list').stdout.splitlines()
        self.assertEqual(table[0].split(), ['DIGEST', 'SIZE', 'LAST', 'USED'])
        self.assertEqual(len(table), 1 + len(wanted))
        self.assertTrue(all(re.match(r'^sha256:[0-9a-f]{64}  ', l) for l in table[1:]), table)

        # the image still needs every blob: nothing to free
        r = self.banger('image', 'cache', 'prune')
        self.assertEqual(r.stdout, 'freed 0 bytes (0 blobs)\n')
        self.assertEqual({b['digest'] for b in self.cache()}, wanted)

        # once the image is gone, prune frees them all and says which
        self.banger('image', 'rm', 'cached-1')
        r = self.banger('image', 'cache', 'prune')
        lines = r.stdout.splitlines()
        removed = {m.group(1) for m in
                   (re.match(r'^removed (sha256:[0-9a-f]{64}) \(.+\)$', l) for l in lines[:-1])
                   if m}
        self.assertEqual(removed, wanted, r.stdout)
        total = sum(b['size_bytes'] for b in cache)
        self.assertRegex(lines[-1], r'^freed \S+\u00a0\S+ \(%d blobs\)$' % len(wanted))
        self.assertEqual(self.cache(), [])
        self.assertGreater(total, 0)

    # ---- kernel pull -----------------------------------------------------

    def publish(self, name, data):
        with open(os.path.join(self.www, name), 'wb') as f:
            f.write(data)
        return self.base + '/' + name

    def test_kernel_pull_from_catalog(self):
        kernels = sorted(k for k in os.listdir('/boot') if k.startswith('vmlinuz-'))
        self.assertTrue(kernels, 'no kernel in /boot (Debian package linux-image-cloud-amd64)')
        with open(os.path.join('/boot', kernels[-1]), 'rb') as f:
            data = f.read()
        release = kernels[-1][len('vmlinuz-'):]
        catalog = {'version': 1, 'images': [], 'kernels': [
            {'name': 'cloud', 'version': '6.1', 'url': self.publish('cloud.bin', data),
             'sha256': hashlib.sha256(data).hexdigest()},
            {'name': 'bad', 'version': '6.1', 'url': self.publish('bad.bin', data[:-1] + b'!'),
             'sha256': hashlib.sha256(data).hexdigest()},
        ]}
        self.publish('index.json', json.dumps(catalog).encode())

        r = self.banger('kernel', 'pull', 'cloud', '--progress', 'plain', timeout=120)
        self.assertEqual(r.stdout, 'cloud\n')
        self.assert_plain_lines(r.stderr, 'pull-kernel')
        kernel = json.loads(self.banger('kernel', 'show', 'cloud', '--json').stdout)
        self.assertEqual((kernel['source'], kernel['version']), ('catalog:cloud', release))
        self.assertTrue(kernel['vmlinux_path'])
        # --name; then the name is taken
        r = self.banger('kernel', 'pull', 'cloud', '--name', 'cloud2', '-q', timeout=120)
        self.assertEqual((r.stdout, r.stderr), ('cloud2\n', ''))
        r = self.banger('kernel', 'pull', 'cloud', status=1)
        self.assert_clean_error(r, 'kernel “cloud” already exists')
        # not in the catalog; a download whose sha256 does not match
        r = self.banger('kernel', 'pull', 'nosuch', '-q', status=1)
        self.assert_clean_error(r, 'pulling kernel “nosuch” failed', 'nosuch')
        r = self.banger('kernel', 'pull', 'bad', '-q', status=1, timeout=120)
        self.assert_clean_error(r, 'pulling kernel “bad” failed', 'sha256')
        self.assertEqual(sorted(self.banger('kernel', 'list', '--names').stdout.split()),
                         ['cloud', 'cloud2'])


class CliPullVmTest(NetWorld):
    """Guests that boot pulled and promoted images; the registry runs in
    the test's network namespace (setUp entered it before starting it)."""

    def setUp(self):
        super().setUp()
        self.registry = ocitest.Registry(self.tmpdir)
        self.addCleanup(self._stop_registry)

    def _stop_registry(self):
        if self._outcome_failed():
            sys.stderr.write('===== registry =====\n' + self.registry.read_log()[-4000:])
        self.registry.stop()

    def push_app(self, repo, **config):
        layout = build_app_image(self.tmpdir, 'app-' + os.urandom(3).hex(), **config)
        self.registry.push(layout, 'latest', repo)
        return layout, '%s/%s' % (self.registry.host, repo)

    def test_run_pulls_reference(self):
        _, ref = self.push_app('test/app:1', cmd=['echo', 'from-cmd'])
        r = self.banger('vm', 'run', '--image', ref, '--', 'cat', '/etc/os-release',
                        timeout=BOOT_TIMEOUT)
        self.assertEqual(r.stdout, OS_RELEASE.decode())
        self.assertIn('No image named “%s”: pulling it' % ref, r.stderr)
        self.assertRegex(r.stderr, r'(?m)^pull-image %s: done$' % re.escape(ref))
        self.assertIn('app-1', self.banger('image', 'list', '--names').stdout.split())
        self.assert_nothing_left()

        # no command: the image's Cmd runs (no shell, no pty); the image
        # pulled before is reused, nothing is pulled again
        r = self.banger('vm', 'run', '--image', ref, timeout=BOOT_TIMEOUT)
        self.assertEqual(r.stdout, 'from-cmd\n')
        self.assertNotIn('pull-image', r.stderr)
        # by its local name too
        r = self.banger('vm', 'run', '--image', 'app-1', timeout=BOOT_TIMEOUT)
        self.assertEqual(r.stdout, 'from-cmd\n')
        self.assert_nothing_left()

    def test_run_image_config(self):
        """Entrypoint + Cmd with the image's Env and WorkingDir, as its
        User (busybox's setpriv cannot change ids, so through su)."""
        _, ref = self.push_app('test/config:1', entrypoint=['/bin/sh', '-c'],
                            cmd=['echo "$GREETING from $(pwd)"; id -u; exit 3'],
                            env=['GREETING=hello there'], workdir='/srv', user='app')
        r = self.banger('vm', 'run', '--image', ref, status=3, timeout=BOOT_TIMEOUT)
        self.assertEqual(r.stdout, 'hello there from /srv\n1000\n')
        self.assertNotIn('warning', r.stderr)
        # a tampered blob: a clean Verification message, nothing booted
        layout, ref2 = self.push_app('test/tampered:1', cmd=['true'])
        victim = ocitest.manifest_of(layout)[1]['layers'][0]['digest']
        path = self.registry.blob_path(victim)
        with open(path, 'rb') as f:
            data = bytearray(f.read())
        data[100] ^= 0x01
        with open(path, 'wb') as f:
            f.write(data)
        r = self.banger('vm', 'run', '--image', ref2, '--', 'true', status=1,
                        timeout=BOOT_TIMEOUT)
        lines = r.stderr.splitlines()
        self.assertTrue(lines[0].startswith('No image named'), lines)
        r.stderr = lines[-1]
        self.assert_clean_error(r, 'pulling “%s” failed' % ref2, victim,
                                'does not match its digest')
        self.assert_nothing_left()

    def test_promote_then_run(self):
        self.boot('src')
        self.banger('vm', 'exec', 'src', '--', 'sh', '-c',
                    'echo written-before > /root/the-file; sync')
        # a running VM is refused, naming its state
        r = self.banger('image', 'promote', 'src', 'promoted', status=1)
        self.assert_clean_error(r, 'running')
        self.banger('vm', 'stop', 'src', '-t', '20', timeout=BOOT_TIMEOUT)
        r = self.banger('image', 'promote', 'src', 'promoted', timeout=120)
        self.assertEqual(r.stdout, 'promoted\n')
        self.assertRegex(r.stderr, r'(?m)^promote-vm src: done$')
        image = json.loads(self.banger('image', 'show', 'promoted', '--json').stdout)
        self.assertEqual(image['source'], 'vm:src')
        r = self.banger('image', 'promote', 'src', 'promoted', status=1)
        self.assert_clean_error(r, 'image “promoted” already exists')
        r = self.banger('image', 'promote', 'nosuch', 'x', status=1)
        self.assert_clean_error(r, 'no VM named “nosuch”')
        self.banger('vm', 'rm', 'src')
        r = self.banger('vm', 'run', '--image', 'promoted', '--', 'cat', '/root/the-file',
                        timeout=BOOT_TIMEOUT)
        self.assertEqual(r.stdout, 'written-before\n')
        self.assertNotIn('pull', r.stderr)
        self.assert_nothing_left()


if __name__ == '__main__':
    unittest.main()
