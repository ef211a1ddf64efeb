#!/usr/bin/python3
"""A hostile registry against the OCI engine (issue 10, finding 9): a FAKE
registry (a small HTTP server in this test speaking the distribution API's
GET /v2/<repo>/manifests/<ref> and /blobs/<digest>) that leaves sizes out,
gives negative ones, serves an oversized config and a decompression bomb;
and a download server announcing more than banger takes."""

import gzip
import hashlib
import http.server
import io
import json
import os
import sys
import tarfile
import threading
import unittest
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_oci import OciTestCase  # noqa: E402

MT_MANIFEST = 'application/vnd.oci.image.manifest.v1+json'
MT_CONFIG = 'application/vnd.oci.image.config.v1+json'
MT_LAYER_GZ = 'application/vnd.oci.image.layer.v1.tar+gzip'


def digest(data):
    return 'sha256:' + hashlib.sha256(data).hexdigest()


class FakeRegistry:
    """Serves one image, 'evil:latest', from a manifest and blobs in memory.
    A blob may be a callable writing its own body (to stream)."""

    def __init__(self):
        self.manifest = None
        self.blobs = {}
        self.gets = []
        reg = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = 'HTTP/1.1'

            def log_message(self, *args):
                pass

            def do_GET(self):
                reg.gets.append(self.path)
                if self.path == '/v2/':
                    return self.reply(200, b'{}', 'application/json')
                if self.path == '/v2/evil/manifests/latest':
                    body = json.dumps(reg.manifest).encode()
                    return self.reply(200, body, MT_MANIFEST, digest(body))
                if self.path.startswith('/v2/evil/blobs/'):
                    blob = reg.blobs.get(self.path[len('/v2/evil/blobs/'):])
                    if callable(blob):
                        return blob(self)
                    if blob is not None:
                        return self.reply(200, blob, 'application/octet-stream')
                self.reply(404, b'{"errors":[{"code":"BLOB_UNKNOWN"}]}', 'application/json')

            def reply(self, status, body, ctype, dgst=None):
                self.send_response(status)
                self.send_header('Content-Type', ctype)
                if dgst:
                    self.send_header('Docker-Content-Digest', dgst)
                self.send_header('Content-Length', str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.httpd.daemon_threads = True
        self.host = '127.0.0.1:%d' % self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    def image(self, config, layers, config_size='exact', layer_sizes=None):
        """Sets the manifest: @config bytes, @layers (bytes each); sizes are
        the true ones unless given (None: left out)."""
        cdesc = {'mediaType': MT_CONFIG, 'digest': digest(config)}
        if config_size == 'exact':
            cdesc['size'] = len(config)
        elif config_size is not None:
            cdesc['size'] = config_size
        self.blobs[digest(config)] = config
        ldescs = []
        for i, layer in enumerate(layers):
            d = {'mediaType': MT_LAYER_GZ, 'digest': digest(layer)}
            size = len(layer) if layer_sizes is None else layer_sizes[i]
            if size is not None:
                d['size'] = size
            self.blobs[digest(layer)] = layer
            ldescs.append(d)
        self.manifest = {'schemaVersion': 2, 'mediaType': MT_MANIFEST, 'config': cdesc,
                         'layers': ldescs}


def small_layer():
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode='w', format=tarfile.PAX_FORMAT) as t:
        info = tarfile.TarInfo('hello')
        info.size = 6
        t.addfile(info, io.BytesIO(b'hello\n'))
    return gzip.compress(buf.getvalue())


CONFIG = json.dumps({'architecture': 'amd64', 'os': 'linux', 'config': {}}).encode()


class HostileRegistryTest(OciTestCase):

    def setUp(self):
        super().setUp()
        self.fake = FakeRegistry()
        self.addCleanup(self.fake.stop)
        self.ref = self.fake.host + '/evil:latest'

    def test_negative_layer_size(self):
        self.fake.image(CONFIG, [small_layer()], layer_sizes=[-5])
        err = self.pull_error(self.ref)
        self.assertEqual(err['error'], 'Registry', err)
        self.assertIn('not a number of bytes', err['message'])
        self.assert_no_rootfs()

    def test_layer_without_size_still_pulls(self):
        # A missing size is tolerated, with a cap (BANGER_BLOB_MAX_UNSIZED).
        self.fake.image(CONFIG, [small_layer()], layer_sizes=[None])
        result = self.pull_ok(self.ref)
        self.assertTrue(os.path.exists(result['rootfs']))

    def test_config_without_size_is_capped(self):
        # 5 MiB of config with no size: the download stops at the 4 MiB cap
        # (before, it was read whole, whatever its length).
        config = b'{"architecture": "amd64", "pad": "' + b'x' * (5 << 20) + b'"}'
        self.fake.image(config, [small_layer()], config_size=None)
        err = self.pull_error(self.ref)
        self.assertEqual(err['error'], 'Verification', err)
        self.assertIn('no size in its manifest', err['message'])
        self.assert_no_rootfs()

    def test_config_claiming_too_much_is_not_fetched(self):
        self.fake.image(CONFIG, [small_layer()], config_size=100 << 20)
        err = self.pull_error(self.ref)
        self.assertEqual(err['error'], 'Registry', err)
        self.assertIn('image config', err['message'])
        self.assertNotIn('/v2/evil/blobs/' + digest(CONFIG), self.fake.gets)

    def test_decompression_bomb(self):
        # 1.25 GiB of zeros in one file, about 1.2 MiB gzipped: more than 64
        # times the layer and above the 1 GiB floor.
        size = 1280 << 20
        info = tarfile.TarInfo('zeros.bin')
        info.size = size
        comp = zlib.compressobj(9, zlib.DEFLATED, 31)
        parts = [comp.compress(info.tobuf(format=tarfile.PAX_FORMAT))]
        chunk = b'\0' * (64 << 20)
        for _ in range(size // len(chunk)):
            parts.append(comp.compress(chunk))
        parts.append(comp.compress(b'\0' * 1024))  # end of archive
        parts.append(comp.flush())
        layer = b''.join(parts)
        self.assertLess(len(layer), 16 << 20)
        self.fake.image(CONFIG, [layer])
        err = self.pull_error(self.ref)
        self.assertEqual(err['error'], 'InvalidArgument', err)
        self.assertIn('decompression bomb', err['message'])
        self.assert_no_rootfs()

    def test_download_announcing_too_much(self):
        # A catalog download whose Content-Length is above the cap is refused
        # before anything is written.
        def huge(handler):
            handler.send_response(200)
            handler.send_header('Content-Type', 'application/octet-stream')
            handler.send_header('Content-Length', str(17 << 30))
            handler.end_headers()
            handler.wfile.write(b'\0' * 4096)
        self.fake.blobs['vmlinux'] = huge
        dest = os.path.join(self.tmp, 'vmlinux')
        proc, lines = self.env.run('download', 'http://%s/v2/evil/blobs/vmlinux' % self.fake.host,
                                   '0' * 64, dest)
        self.assertEqual(lines[0]['error'], 'Verification', proc.stdout + proc.stderr)
        self.assertIn('16 GiB', lines[0]['message'])
        self.assertFalse(os.path.exists(dest))
        self.assertEqual([f for f in os.listdir(self.tmp) if f.startswith('vmlinux')], [])


if __name__ == '__main__':
    unittest.main()
