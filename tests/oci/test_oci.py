#!/usr/bin/python3
"""OCI pulls end to end against Debian's docker-registry on loopback: the
engine (oci-pull-tool, no bus) pulls images made with umoci and pushed with
skopeo; the ext4 results are read back with debugfs and e2fsck."""

import hashlib
import http.server
import json
import os
import shutil
import sys
import tempfile
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ocitest  # noqa: E402


class OciTestCase(unittest.TestCase):
    auth = None

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix='banger-oci-')
        self.registry = None
        self.env = ocitest.Env(self.tmp)

    def tearDown(self):
        failed = self._outcome.errors if hasattr(self._outcome, 'errors') else None
        ok = all(e is None for _, e in failed) if failed else True
        if hasattr(self._outcome, 'result'):
            res = self._outcome.result
            ok = ok and not any(t is self for t, _ in res.failures + res.errors)
        if self.registry is not None:
            if not ok:
                print('---- registry log ----\n' + self.registry.read_log()[-6000:],
                      file=sys.stderr)
            self.registry.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def start_registry(self, auth=None):
        self.registry = ocitest.Registry(self.tmp, auth=auth)
        return self.registry

    def pull_ok(self, ref, *extra):
        proc, lines = self.env.pull(ref, *extra)
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        return lines[0]

    def pull_error(self, ref, *extra):
        proc, lines = self.env.pull(ref, *extra)
        self.assertNotEqual(proc.returncode, 0, proc.stdout)
        self.assertIn('error', lines[0], proc.stdout + proc.stderr)
        return lines[0]

    def assert_no_rootfs(self):
        self.assertEqual([f for f in os.listdir(self.env.work) if not f.startswith('.')], [],
                         'a failed pull left a rootfs behind')

    def check_rich(self, result):
        img = result['rootfs']
        st = ocitest.stat
        self.assertEqual(ocitest.fsck(img).returncode, 0, ocitest.fsck(img).stdout)
        # setuid kept
        self.assertEqual(st(img, '/bin/su')['mode'], 0o4755)
        # a hard link into a lower layer: one inode, two links
        tool, link = st(img, '/bin/tool'), st(img, '/bin/tool-link')
        self.assertEqual(tool['inode'], link['inode'])
        self.assertEqual(tool['links'], 2)
        self.assertEqual(ocitest.cat(img, '/bin/tool-link'), b'#!/bin/sh\necho tool\n' * 100)
        # a file replaced by a symlink
        config = st(img, '/etc/config')
        self.assertEqual(config['type'], 'symlink')
        self.assertEqual(config['target'], 'hostname')
        # whiteout: gone; its sibling kept; sticky bit on the dir kept
        self.assertIsNone(st(img, '/data/gone.txt'))
        self.assertEqual(ocitest.ls(img, '/data'), ['kept.txt'])
        self.assertEqual(st(img, '/data')['mode'], 0o1777)
        # opaque dir: only the upper layer's content
        self.assertEqual(ocitest.ls(img, '/opt/app'), ['new.txt'])
        self.assertEqual(ocitest.cat(img, '/opt/app/new.txt'), b'new\n')
        # owners and modes
        home = st(img, '/home/user')
        self.assertEqual((home['uid'], home['gid'], home['mode']), (1000, 1000, 0o750))
        notes = st(img, '/home/user/notes')
        self.assertEqual((notes['uid'], notes['mode']), (1000, 0o600))
        # device nodes and fifos
        null = st(img, '/dev/null')
        self.assertEqual((null['type'], null['dev'], null['mode']),
                         ('character special', (1, 3), 0o666))
        self.assertEqual(st(img, '/dev/fifo')['type'], 'FIFO')
        # long PAX names
        self.assertEqual(ocitest.cat(img, '/' + ocitest.LONG_NAME), b'long\n')
        # security.capability from a SCHILY.xattr PAX record
        caps = ocitest.debugfs(img, 'ea_get -x "/bin/ping" security.capability')
        self.assertIn('01 00 00 02 00 20 00 00', caps)
        self.assertEqual(ocitest.cat(img, '/etc/motd'), b'hello from layer 4\n')
        # the image config kept for `vm run IMAGE`
        self.assertEqual(result['config'], {
            'entrypoint': ['/bin/tool'], 'cmd': ['serve', '--port=80'], 'env': ['MODE=test'],
            'workdir': '/opt/app', 'user': '1000:1000'})


class PullTest(OciTestCase):

    def test_rich_oci(self):
        reg = self.start_registry()
        layout = ocitest.build_rich_image(self.tmp)
        reg.push(layout, 'latest', 'rich:v1')
        digest, _ = ocitest.manifest_of(layout)
        result = self.pull_ok(reg.host + '/rich:v1')
        self.assertEqual(result['reference'], reg.host + '/rich:v1')
        self.check_rich(result)
        # the OCI manifest pushed as is: same digest
        self.assertEqual(result['digest'], digest)

    def test_rich_docker_schema2(self):
        reg = self.start_registry()
        layout = ocitest.build_rich_image(self.tmp)
        reg.push(layout, 'latest', 'rich:docker', fmt='v2s2')
        result = self.pull_ok(reg.host + '/rich:docker')
        self.check_rich(result)
        manifest = json.loads(open(os.path.join(self.env.cache, 'sha256',
                                                result['digest'][7:])).read())
        self.assertEqual(manifest['mediaType'],
                         'application/vnd.docker.distribution.manifest.v2+json')

    def test_index_picks_linux_amd64(self):
        reg = self.start_registry()
        layout = ocitest.build_rich_image(self.tmp)
        amd64 = ocitest.make_index(layout, 'latest', 'multi')
        reg.push(layout, 'multi', 'rich:multi', extra=['--multi-arch', 'all'])
        result = self.pull_ok(reg.host + '/rich:multi')
        self.assertEqual(result['digest'], amd64)
        self.check_rich(result)

    def test_zstd_layers(self):
        reg = self.start_registry()
        layout = ocitest.build_rich_image(self.tmp)
        reg.push(layout, 'latest', 'rich:zstd',
                 extra=['--dest-compress', '--dest-compress-format', 'zstd'])
        result = self.pull_ok(reg.host + '/rich:zstd')
        self.check_rich(result)

    def test_by_digest_and_size(self):
        reg = self.start_registry()
        layout = ocitest.build_small_image(self.tmp, layers=1)
        reg.push(layout, 'latest', 'small:latest')
        digest, _ = ocitest.manifest_of(layout)
        result = self.pull_ok('%s/small@%s' % (reg.host, digest), '--size-mib', '100')
        self.assertEqual(result['digest'], digest)
        self.assertEqual(result['rootfs_bytes'], 100 * 1024 * 1024)
        self.assertEqual(os.path.getsize(result['rootfs']), 100 * 1024 * 1024)
        err = self.pull_error(reg.host + '/small:latest', '--size-mib', '1')
        self.assertEqual(err['error'], 'InvalidArgument')
        self.assertIn('cannot hold', err['message'])

    def test_missing_tag(self):
        reg = self.start_registry()
        err = self.pull_error(reg.host + '/nothing:here')
        self.assertEqual(err['error'], 'NotFound')
        self.assertIn('manifest here', err['message'])

    def test_agent_added(self):
        reg = self.start_registry()
        layout = ocitest.build_small_image(self.tmp, layers=1, size=1024)
        reg.push(layout, 'latest', 'small:latest')
        agent = os.path.join(self.tmp, 'fake-agent')
        with open(agent, 'wb') as f:
            f.write(b'\x7fELF fake agent')
        result = self.pull_ok(reg.host + '/small:latest', '--agent', agent)
        self.assertEqual(ocitest.cat(result['rootfs'], '/.banger/agent'), b'\x7fELF fake agent')
        self.assertEqual(ocitest.stat(result['rootfs'], '/.banger/agent')['mode'], 0o755)


class AuthTest(OciTestCase):

    def test_basic_auth(self):
        reg = self.start_registry('basic')
        layout = ocitest.build_small_image(self.tmp, layers=2, size=4096)
        reg.push(layout, 'latest', 'private/small:latest')
        err = self.pull_error(reg.host + '/private/small:latest')
        self.assertEqual(err['error'], 'NotAuthorized')
        self.assertIn('auth files', err['message'])
        self.env.write_auth(reg.host, reg.user, 'wrong')
        err = self.pull_error(reg.host + '/private/small:latest')
        self.assertEqual(err['error'], 'NotAuthorized')
        # credentials from $XDG_RUNTIME_DIR/containers/auth.json
        self.env.write_auth(reg.host, reg.user, reg.password)
        self.pull_ok(reg.host + '/private/small:latest')

    def test_bearer_token(self):
        reg = self.start_registry('token')
        layout = ocitest.build_small_image(self.tmp, layers=2, size=4096)
        reg.push(layout, 'latest', 'private/small:latest')
        seen = len(reg.token.requests)
        err = self.pull_error(reg.host + '/private/small:latest')
        self.assertEqual(err['error'], 'NotAuthorized')
        # credentials from ~/.docker/config.json, keyed the docker way
        self.env.write_auth('http://%s/v1/' % reg.host, reg.user, reg.password, where='docker')
        self.pull_ok(reg.host + '/private/small:latest')
        ours = reg.token.requests[seen:]
        self.assertTrue(any((r['authorization'] or '').startswith('Basic ') for r in ours))
        self.assertTrue(all('scope=repository%3Aprivate%2Fsmall%3Apull' in r['path']
                            or 'scope=repository:private/small:pull' in r['path']
                            for r in ours), ours)

    def test_bearer_anonymous(self):
        reg = self.start_registry('token-anonymous')
        layout = ocitest.build_small_image(self.tmp, layers=1, size=4096)
        reg.push(layout, 'latest', 'public/small:latest')
        seen = len(reg.token.requests)
        self.pull_ok(reg.host + '/public/small:latest')
        ours = reg.token.requests[seen:]
        self.assertTrue(ours)
        self.assertTrue(all(r['authorization'] is None for r in ours))


class IntegrityTest(OciTestCase):

    def test_tampered_blob(self):
        reg = self.start_registry()
        layout = ocitest.build_small_image(self.tmp, layers=2, size=64 * 1024)
        reg.push(layout, 'latest', 'small:latest')
        _, manifest = ocitest.manifest_of(layout)
        victim = manifest['layers'][1]['digest']
        path = reg.blob_path(victim)
        data = bytearray(open(path, 'rb').read())
        data[len(data) // 2] ^= 0xff
        with open(path, 'wb') as f:
            f.write(data)
        err = self.pull_error(reg.host + '/small:latest')
        self.assertEqual(err['error'], 'Verification')
        self.assertIn(victim, err['message'])
        self.assert_no_rootfs()
        blobs = os.listdir(os.path.join(self.env.cache, 'sha256'))
        self.assertNotIn(victim[7:], blobs)
        self.assertNotIn(victim[7:] + '.partial', blobs)

    def malicious(self, entries, pre=None):
        reg = self.start_registry()
        layout = ocitest.new_layout(self.tmp, 'evil')
        if pre:
            ocitest.add_layer(layout, 'latest', self.tmp, pre)
        ocitest.add_layer(layout, 'latest', self.tmp, entries)
        reg.push(layout, 'latest', 'evil:latest')
        err = self.pull_error(reg.host + '/evil:latest')
        self.assertEqual(err['error'], 'InvalidArgument', err)
        self.assert_no_rootfs()
        return err['message']

    def test_path_traversal(self):
        msg = self.malicious([{'name': 'etc', 'type': 'dir'},
                              {'name': '../../../etc/passwd', 'data': b'root::0:0::/:/bin/sh\n'}])
        self.assertIn('escapes the image root', msg)
        self.assertIn('../../../etc/passwd', msg)

    def test_absolute_path(self):
        msg = self.malicious([{'name': '/etc/shadow', 'data': b'x'}])
        self.assertIn('absolute path', msg)

    def test_symlink_escape(self):
        msg = self.malicious([{'name': 'evil/pwned', 'data': b'owned\n'}],
                             pre=[{'name': 'evil', 'type': 'symlink', 'target': '../../../tmp'}])
        self.assertIn('evil/pwned', msg)

    def test_hardlink_escape(self):
        msg = self.malicious([{'name': 'shadow', 'type': 'hardlink',
                               'target': '../../etc/shadow'}])
        self.assertIn('hard link', msg)
        self.assertIn('../../etc/shadow', msg)

    def test_absurd_size(self):
        reg = self.start_registry()
        layout = ocitest.new_layout(self.tmp, 'evil')
        # A header claiming 1 TiB with no data behind it.
        import tarfile
        path = os.path.join(self.tmp, 'absurd.tar')
        info = tarfile.TarInfo('huge.bin')
        info.size = 1 << 40
        with open(path, 'wb') as f:
            f.write(info.tobuf(format=tarfile.PAX_FORMAT))
            f.write(b'\0' * 4096)
        ocitest.umoci('raw', 'add-layer', '--image', layout + ':latest', path)
        reg.push(layout, 'latest', 'evil:latest')
        err = self.pull_error(reg.host + '/evil:latest')
        self.assertEqual(err['error'], 'InvalidArgument')
        self.assertIn('huge.bin', err['message'])
        self.assertIn('1099511627776 bytes', err['message'])
        self.assert_no_rootfs()


class CacheTest(OciTestCase):

    def test_concurrent_pulls_fetch_each_blob_once(self):
        reg = self.start_registry()
        layout = ocitest.build_small_image(self.tmp, layers=4, size=1024 * 1024)
        reg.push(layout, 'latest', 'small:latest')
        _, manifest = ocitest.manifest_of(layout)
        # Under the sanitizer run, LeakSanitizer's stop-the-world tracer
        # itself crashes ("Tracer caught signal 11") at the exit of this
        # process with dozens of worker threads; leaks of the same pull code
        # are checked by every single-pull case, so this one skips LSan only.
        env = dict(self.env.env)
        env['ASAN_OPTIONS'] = env.get('ASAN_OPTIONS', '') + ':detect_leaks=0'
        proc, lines = self.env.pull(reg.host + '/small:latest', '--count', '10', env=env)
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        self.assertEqual(len(lines), 10)
        self.assertEqual(len({l['digest'] for l in lines}), 1)
        gets = reg.blob_gets('small')
        wanted = [manifest['config']['digest']] + [l['digest'] for l in manifest['layers']]
        for digest in wanted:
            self.assertEqual(gets.count('/v2/small/blobs/' + digest), 1, gets)
        self.assertEqual(len(gets), len(wanted))
        # and a later pull fetches no blob at all
        self.pull_ok(reg.host + '/small:latest')
        self.assertEqual(len(reg.blob_gets('small')), len(wanted))

    def test_interrupted_pull_resumes_with_range(self):
        reg = self.start_registry()
        layout = ocitest.build_small_image(self.tmp, layers=1, size=16 * 1024 * 1024)
        reg.push(layout, 'latest', 'big:latest')
        _, manifest = ocitest.manifest_of(layout)
        layer = manifest['layers'][0]['digest']
        err = self.pull_error(reg.host + '/big:latest', '--cancel-after', str(4 << 20))
        self.assertEqual(err['error'], 'Cancelled')
        self.assert_no_rootfs()
        partial = os.path.join(self.env.cache, 'sha256', layer[7:] + '.partial')
        have = os.path.getsize(partial)
        self.assertGreaterEqual(have, 4 << 20)
        self.assertLess(have, manifest['layers'][0]['size'])
        self.pull_ok(reg.host + '/big:latest')
        statuses = [st for (m, p, st) in reg.access()
                    if m == 'GET' and p == '/v2/big/blobs/' + layer]
        self.assertEqual(statuses, [200, 206], reg.access())
        self.assertFalse(os.path.exists(partial))

    def test_cache_list_and_prune(self):
        reg = self.start_registry()
        a = ocitest.build_small_image(self.tmp, 'a', layers=1, size=8192)
        b = ocitest.build_small_image(self.tmp, 'b', layers=2, size=8192)
        reg.push(a, 'latest', 'a:latest')
        reg.push(b, 'latest', 'b:latest')
        ra = self.pull_ok(reg.host + '/a:latest')
        rb = self.pull_ok(reg.host + '/b:latest')
        proc, listed = self.env.run('cache-list')
        self.assertEqual(proc.returncode, 0)
        # manifest + config + layers of both
        self.assertEqual(len(listed), 3 + 4)
        _, mb = ocitest.manifest_of(b)
        keep = {rb['digest'], mb['config']['digest']} | {l['digest'] for l in mb['layers']}
        proc, freed = self.env.run('cache-prune', '--keep', rb['digest'])
        self.assertGreater(freed[0]['freed'], 8192)
        proc, listed = self.env.run('cache-list')
        self.assertEqual({l['digest'] for l in listed}, keep)
        self.assertNotIn(ra['digest'], {l['digest'] for l in listed})
        proc, freed = self.env.run('cache-prune')
        proc, listed = self.env.run('cache-list')
        self.assertEqual(listed, [])


class FlakyFront:
    """A front for the registry: answers the first request for each manifest
    with 503 (Retry-After: 0), and redirects every blob GET to the registry
    itself, as registries do to their blob storage."""

    def __init__(self, registry):
        import urllib.request
        self.seen = []
        front = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                front.seen.append((self.path, self.headers.get('Authorization')))
                if '/manifests/' in self.path and \
                        sum(1 for p, _ in front.seen if p == self.path) == 1:
                    self.send_response(503)
                    self.send_header('Retry-After', '0')
                    self.send_header('Content-Length', '0')
                    self.end_headers()
                    return
                if '/blobs/' in self.path:
                    self.send_response(307)
                    self.send_header('Location', 'http://%s%s' % (registry.host, self.path))
                    self.send_header('Content-Length', '0')
                    self.end_headers()
                    return
                req = urllib.request.Request('http://%s%s' % (registry.host, self.path),
                                             headers={'Accept': self.headers.get('Accept', '')})
                try:
                    with urllib.request.urlopen(req) as r:
                        body, status, headers = r.read(), r.status, r.headers
                except urllib.error.HTTPError as e:
                    body, status, headers = e.read(), e.code, e.headers
                self.send_response(status)
                for h in ('Content-Type', 'Docker-Content-Digest', 'WWW-Authenticate'):
                    if headers.get(h):
                        self.send_header(h, headers.get(h))
                self.send_header('Content-Length', str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        import urllib.error  # noqa: F401
        self.httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.host = '127.0.0.1:%d' % self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class FlakyTest(OciTestCase):

    def test_retry_and_redirect(self):
        reg = self.start_registry()
        layout = ocitest.build_small_image(self.tmp, layers=2, size=64 * 1024)
        reg.push(layout, 'latest', 'small:latest')
        front = FlakyFront(reg)
        self.addCleanup(front.stop)
        _, manifest = ocitest.manifest_of(layout)
        result = self.pull_ok(front.host + '/small:latest')
        self.assertEqual(result['reference'], front.host + '/small:latest')
        manifest_gets = [p for p, _ in front.seen if p == '/v2/small/manifests/latest']
        self.assertEqual(len(manifest_gets), 2)  # a 503, then the retry
        # every blob came from the redirect target (the registry itself)
        for layer in manifest['layers']:
            self.assertIn('/v2/small/blobs/' + layer['digest'], reg.blob_gets('small'))


class CatalogTest(OciTestCase):

    def serve(self, files):
        root = os.path.join(self.tmp, 'www')
        os.makedirs(root, exist_ok=True)
        for name, data in files.items():
            with open(os.path.join(root, name), 'wb') as f:
                f.write(data)

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *a, **kw):
                super().__init__(*a, directory=root, **kw)

            def log_message(self, *args):
                pass

        httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        self.addCleanup(httpd.server_close)
        self.addCleanup(httpd.shutdown)
        return 'http://127.0.0.1:%d' % httpd.server_address[1]

    def test_catalog_and_verified_download(self):
        kernel = os.urandom(100000)
        sha = hashlib.sha256(kernel).hexdigest()
        index = {'version': 1,
                 'images': [{'name': 'debian', 'oci': 'docker.io/library/debian:bookworm'},
                            {'name': 'alpine-rootfs',
                             'rootfs': {'url': 'https://example.invalid/a.tar.gz',
                                        'sha256': '0' * 64}}],
                 'kernels': [{'name': 'default', 'version': '6.1.0', 'url': 'x', 'sha256': sha}]}
        base = self.serve({'index.json': json.dumps(index).encode(), 'vmlinux': kernel,
                           'bad.json': b'{"version": 1, "images": [{"name": "x"}]}'})
        proc, lines = self.env.run('catalog', base + '/index.json')
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        self.assertEqual(lines[0], {'image': 'debian', 'oci': 'docker.io/library/debian:bookworm'})
        self.assertEqual(lines[2], {'kernel': 'default', 'version': '6.1.0'})
        proc, lines = self.env.run('catalog', base + '/bad.json')
        self.assertEqual(lines[0]['error'], 'InvalidArgument')
        self.assertIn('exactly one of', lines[0]['message'])
        dest = os.path.join(self.tmp, 'vmlinux')
        proc, lines = self.env.run('download', base + '/vmlinux', sha, dest)
        self.assertEqual(lines, [{'ok': True}])
        self.assertEqual(open(dest, 'rb').read(), kernel)
        dest2 = os.path.join(self.tmp, 'vmlinux2')
        proc, lines = self.env.run('download', base + '/vmlinux', 'f' * 64, dest2)
        self.assertEqual(lines[0]['error'], 'Verification')
        self.assertFalse(os.path.exists(dest2))


if __name__ == '__main__':
    unittest.main()
