"""Helpers for the OCI tests: Debian's docker-registry on loopback (own
child, stopped by pid), a small bearer-token server, test images made with
umoci and crafted tar layers, pushed with skopeo, and debugfs to read the
ext4 results."""

import base64
import datetime
import hashlib
import http.server
import io
import json
import os
import re
import shutil
import socket
import subprocess
import tarfile
import tempfile
import threading
import time
import urllib.error
import urllib.request

TOOL = os.environ.get('OCI_PULL_TOOL') or os.path.join(
    os.environ.get('BANGER_BUILD_ROOT', 'build'), 'tests', 'oci', 'oci-pull-tool')


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout=15.0, what='condition'):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise TimeoutError('timed out waiting for ' + what)


class TokenServer:
    """A distribution token issuer: ES256 JWTs with an x5c self-signed
    certificate. Anonymous callers get pull, callers with the right Basic
    credentials get pull and push. Records the Authorization it saw."""

    def __init__(self, tmp, service, user, password, anonymous_pull):
        import jwt  # noqa: F401 (checked here so a missing package fails loudly)
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID
        self.service = service
        self.issuer = 'banger-test-issuer'
        self.user, self.password = user, password
        self.anonymous_pull = anonymous_pull
        self.key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, 'banger-test-token')])
        now = datetime.datetime.utcnow()
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(days=1))
                .not_valid_after(now + datetime.timedelta(days=1))
                .sign(self.key, hashes.SHA256()))
        self.cert_der = cert.public_bytes(serialization.Encoding.DER)
        self.cert_path = os.path.join(tmp, 'token-cert.pem')
        with open(self.cert_path, 'wb') as f:
            f.write(cert.public_bytes(serialization.Encoding.PEM))
        self.requests = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                server.requests.append({'path': self.path,
                                        'authorization': self.headers.get('Authorization')})
                self.send_response(200)
                body = json.dumps({'token': server.issue(self)}).encode()
                self.send_header('Content-Type', 'application/json')
                self.send_header('Content-Length', str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.port = self.httpd.server_address[1]
        self.realm = 'http://127.0.0.1:%d/token' % self.port
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def issue(self, handler):
        import jwt
        from urllib.parse import parse_qs, urlparse
        query = parse_qs(urlparse(handler.path).query)
        authed = False
        auth = handler.headers.get('Authorization') or ''
        if auth.startswith('Basic '):
            user, _, pw = base64.b64decode(auth[6:]).decode().partition(':')
            authed = (user, pw) == (self.user, self.password)
        access = []
        for scope in query.get('scope', []):
            for one in scope.split(' '):
                parts = one.split(':')
                if len(parts) == 3 and parts[0] == 'repository':
                    wanted = parts[2].split(',')
                    allowed = [a for a in wanted if a == 'pull' or authed]
                    if not self.anonymous_pull and not authed:
                        allowed = []  # a registry that needs credentials even to pull
                    access.append({'type': 'repository', 'name': parts[1], 'actions': allowed})
        now = int(time.time())
        claims = {'iss': self.issuer, 'sub': 'test', 'aud': self.service, 'iat': now,
                  'nbf': now - 10, 'exp': now + 600, 'jti': os.urandom(8).hex(),
                  'access': access}
        headers = {'x5c': [base64.b64encode(self.cert_der).decode()]}
        return jwt.encode(claims, self.key, algorithm='ES256', headers=headers)

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class Registry:
    """docker-registry (distribution 2.8) on 127.0.0.1:<free port>."""

    def __init__(self, tmp, auth=None, user='tester', password='s3cret'):
        self.tmp = tmp
        self.root = os.path.join(tmp, 'registry-storage')
        os.makedirs(self.root, exist_ok=True)
        self.port = free_port()
        self.host = '127.0.0.1:%d' % self.port
        self.user, self.password = user, password
        self.token = None
        self.log_path = os.path.join(tmp, 'registry.log')
        auth_yaml = ''
        if auth == 'basic':
            htpasswd = subprocess.run(['htpasswd', '-Bbn', user, password], check=True,
                                      capture_output=True, text=True).stdout
            path = os.path.join(tmp, 'htpasswd')
            with open(path, 'w') as f:
                f.write(htpasswd)
            auth_yaml = 'auth:\n  htpasswd:\n    realm: banger-test\n    path: %s\n' % path
        elif auth in ('token', 'token-anonymous'):
            # push needs the credentials; pull too unless 'token-anonymous'
            self.token = TokenServer(tmp, 'banger-test-registry', user, password,
                                     anonymous_pull=(auth == 'token-anonymous'))
            auth_yaml = ('auth:\n  token:\n    realm: %s\n    service: %s\n    issuer: %s\n'
                         '    rootcertbundle: %s\n' % (self.token.realm, self.token.service,
                                                       self.token.issuer, self.token.cert_path))
        config = ('version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\n'
                  'storage:\n  filesystem:\n    rootdirectory: %s\n  delete:\n    enabled: true\n'
                  'http:\n  addr: %s\n%s' % (self.root, self.host, auth_yaml))
        self.config_path = os.path.join(tmp, 'registry.yml')
        with open(self.config_path, 'w') as f:
            f.write(config)
        self.log = open(self.log_path, 'w')
        self.proc = subprocess.Popen(['docker-registry', 'serve', self.config_path],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        wait_until(self._ready, 15, 'docker-registry to listen')

    def _ready(self):
        if self.proc.poll() is not None:
            raise RuntimeError('docker-registry exited:\n' + self.read_log())
        try:
            urllib.request.urlopen('http://%s/v2/' % self.host, timeout=1)
            return True
        except urllib.error.HTTPError:
            return True  # 401: up, and asking for credentials
        except OSError:
            return False

    def read_log(self):
        self.log.flush()
        with open(self.log_path, errors='replace') as f:
            return f.read()

    def access(self):
        """(method, path, status, range) of each request in the access log."""
        out = []
        for line in self.read_log().splitlines():
            m = re.search(r'"(GET|HEAD|PUT|POST|PATCH|DELETE) (\S+) HTTP/[0-9.]+" (\d+)', line)
            if m:
                out.append((m.group(1), m.group(2), int(m.group(3))))
        return out

    def blob_gets(self, repo):
        return [p for (meth, p, st) in self.access()
                if meth == 'GET' and p.startswith('/v2/%s/blobs/' % repo) and st in (200, 206)]

    def push(self, layout, tag, dest, fmt=None, extra=()):
        cmd = ['skopeo', '--insecure-policy', 'copy', '--quiet', '--dest-tls-verify=false']
        if self.token is not None or os.path.exists(os.path.join(self.tmp, 'htpasswd')):
            cmd.append('--dest-creds=%s:%s' % (self.user, self.password))
        if fmt:
            cmd += ['--format', fmt]
        cmd += list(extra)
        cmd += ['oci:%s:%s' % (layout, tag), 'docker://%s/%s' % (self.host, dest)]
        subprocess.run(cmd, check=True, capture_output=True)

    def blob_path(self, digest):
        hexd = digest.split(':', 1)[1]
        return os.path.join(self.root, 'docker', 'registry', 'v2', 'blobs', 'sha256', hexd[:2],
                            hexd, 'data')

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        if self.token is not None:
            self.token.stop()


# ---- layers ----

def tar_layer(path, entries):
    """Writes an uncompressed PAX tar. entries: dicts with name, type
    ('file','dir','symlink','hardlink','char','fifo'), data, mode, uid, gid,
    target, major, minor, pax (extra PAX records)."""
    with tarfile.open(path, 'w', format=tarfile.PAX_FORMAT) as tar:
        for e in entries:
            info = tarfile.TarInfo(e['name'])
            info.mode = e.get('mode', 0o755 if e.get('type') == 'dir' else 0o644)
            info.uid, info.gid = e.get('uid', 0), e.get('gid', 0)
            info.mtime = e.get('mtime', 1700000000)
            kind = e.get('type', 'file')
            data = e.get('data', b'')
            if kind == 'dir':
                info.type = tarfile.DIRTYPE
            elif kind == 'symlink':
                info.type, info.linkname = tarfile.SYMTYPE, e['target']
            elif kind == 'hardlink':
                info.type, info.linkname = tarfile.LNKTYPE, e['target']
            elif kind == 'char':
                info.type, info.devmajor, info.devminor = tarfile.CHRTYPE, e['major'], e['minor']
            elif kind == 'fifo':
                info.type = tarfile.FIFOTYPE
            if 'pax' in e:
                info.pax_headers = e['pax']
            if kind == 'file':
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(info)


def umoci(*args):
    subprocess.run(['umoci'] + list(args), check=True, capture_output=True)


def new_layout(tmp, name='layout', tag='latest'):
    layout = os.path.join(tmp, name)
    umoci('init', '--layout', layout)
    umoci('new', '--image', '%s:%s' % (layout, tag))
    return layout


def add_layer(layout, tag, tmp, entries):
    path = os.path.join(tmp, 'layer-%s.tar' % os.urandom(4).hex())
    tar_layer(path, entries)
    umoci('raw', 'add-layer', '--image', '%s:%s' % (layout, tag), path)
    os.unlink(path)


# The capability a file with cap_net_raw=ep has (VFS_CAP_REVISION_2).
CAP_NET_RAW = bytes.fromhex('0100000200200000000000000000000000000000')
LONG_DIR = 'usr/share/' + '/'.join(['d%02d-' % i + 'x' * 20 for i in range(8)])
LONG_NAME = LONG_DIR + '/' + 'long-file-name-' + 'y' * 120 + '.txt'


def build_rich_image(tmp, layout_name='rich'):
    """Four layers: base content; a whiteout (umoci insert --whiteout); an
    opaque directory (umoci insert --opaque); a hard link into the first
    layer and a file replaced by a symlink."""
    layout = new_layout(tmp, layout_name)
    img = '%s:latest' % layout
    add_layer(layout, 'latest', tmp, [
        {'name': 'bin', 'type': 'dir'},
        {'name': 'etc', 'type': 'dir'},
        {'name': 'opt', 'type': 'dir'},
        {'name': 'opt/app', 'type': 'dir'},
        {'name': 'data', 'type': 'dir', 'mode': 0o1777},
        {'name': 'dev', 'type': 'dir'},
        {'name': 'home/user', 'type': 'dir', 'uid': 1000, 'gid': 1000, 'mode': 0o750},
        {'name': 'home/user/notes', 'data': b'mine\n', 'uid': 1000, 'gid': 1000, 'mode': 0o600},
        {'name': 'etc/hostname', 'data': b'base\n'},
        {'name': 'etc/config', 'data': b'old config\n'},
        {'name': 'bin/tool', 'data': b'#!/bin/sh\necho tool\n' * 100, 'mode': 0o755},
        {'name': 'bin/su', 'data': b'setuid binary\n', 'mode': 0o4755},
        {'name': 'bin/ping', 'data': b'ping binary\n', 'mode': 0o755,
         'pax': {'SCHILY.xattr.security.capability': CAP_NET_RAW.decode('latin-1')}},
        {'name': 'opt/app/old1', 'data': b'1'},
        {'name': 'opt/app/old2', 'data': b'2'},
        {'name': 'data/gone.txt', 'data': b'to be removed\n'},
        {'name': 'data/kept.txt', 'data': b'kept\n'},
        {'name': 'dev/null', 'type': 'char', 'major': 1, 'minor': 3, 'mode': 0o666},
        {'name': 'dev/fifo', 'type': 'fifo', 'mode': 0o600},
        {'name': LONG_NAME, 'data': b'long\n'},
        {'name': 'big.bin', 'data': os.urandom(3 * 1024 * 1024)},
    ])
    umoci('insert', '--image', img, '--whiteout', '/data/gone.txt')
    src = os.path.join(tmp, 'opaque-src')
    os.makedirs(src, exist_ok=True)
    with open(os.path.join(src, 'new.txt'), 'w') as f:
        f.write('new\n')
    umoci('insert', '--image', img, '--opaque', src, '/opt/app')
    add_layer(layout, 'latest', tmp, [
        {'name': 'bin/tool-link', 'type': 'hardlink', 'target': 'bin/tool'},
        {'name': 'etc/config', 'type': 'symlink', 'target': 'hostname'},
        {'name': 'etc/motd', 'data': b'hello from layer 4\n'},
    ])
    umoci('config', '--image', img, '--config.entrypoint', '/bin/tool',
          '--config.cmd', 'serve', '--config.cmd', '--port=80', '--config.env', 'MODE=test',
          '--config.workingdir', '/opt/app', '--config.user', '1000:1000')
    return layout


def build_small_image(tmp, name='small', size=2 * 1024 * 1024, layers=3):
    layout = new_layout(tmp, name)
    for i in range(layers):
        add_layer(layout, 'latest', tmp, [
            {'name': 'layer%d' % i, 'type': 'dir'},
            {'name': 'layer%d/blob' % i, 'data': os.urandom(size)},
        ])
    return layout


def write_blob(layout, data):
    digest = 'sha256:' + hashlib.sha256(data).hexdigest()
    with open(os.path.join(layout, 'blobs', 'sha256', digest[7:]), 'wb') as f:
        f.write(data)
    return digest


def make_index(layout, tag='latest', new_tag='multi'):
    """Adds an image index to @layout listing a fake linux/arm64 image
    first and the real linux/amd64 one second."""
    with open(os.path.join(layout, 'index.json')) as f:
        index = json.load(f)
    desc = next(m for m in index['manifests']
                if m.get('annotations', {}).get('org.opencontainers.image.ref.name') == tag)
    with open(os.path.join(layout, 'blobs', 'sha256', desc['digest'][7:]), 'rb') as f:
        manifest = json.load(f)
    with open(os.path.join(layout, 'blobs', 'sha256', manifest['config']['digest'][7:]),
              'rb') as f:
        config = json.load(f)
    config['architecture'] = 'arm64'
    cdata = json.dumps(config).encode()
    arm = dict(manifest)
    arm['config'] = dict(manifest['config'], digest=write_blob(layout, cdata), size=len(cdata))
    adata = json.dumps(arm).encode()
    amd_desc = {'mediaType': 'application/vnd.oci.image.manifest.v1+json',
                'digest': desc['digest'], 'size': desc['size'],
                'platform': {'architecture': 'amd64', 'os': 'linux'}}
    arm_desc = {'mediaType': 'application/vnd.oci.image.manifest.v1+json',
                'digest': write_blob(layout, adata), 'size': len(adata),
                'platform': {'architecture': 'arm64', 'os': 'linux'}}
    idx = {'schemaVersion': 2, 'mediaType': 'application/vnd.oci.image.index.v1+json',
           'manifests': [arm_desc, amd_desc]}
    idata = json.dumps(idx).encode()
    index['manifests'].append({'mediaType': 'application/vnd.oci.image.index.v1+json',
                               'digest': write_blob(layout, idata), 'size': len(idata),
                               'annotations': {'org.opencontainers.image.ref.name': new_tag}})
    with open(os.path.join(layout, 'index.json'), 'w') as f:
        json.dump(index, f)
    return amd_desc['digest']


def manifest_of(layout, tag='latest'):
    with open(os.path.join(layout, 'index.json')) as f:
        index = json.load(f)
    desc = next(m for m in index['manifests']
                if m.get('annotations', {}).get('org.opencontainers.image.ref.name') == tag)
    with open(os.path.join(layout, 'blobs', 'sha256', desc['digest'][7:]), 'rb') as f:
        return desc['digest'], json.load(f)


# ---- the engine and the results ----

class Env:
    """Private XDG dirs for one test, and the tool run with them."""

    def __init__(self, tmp):
        self.tmp = tmp
        self.env = dict(os.environ)
        for var in ('XDG_CACHE_HOME', 'XDG_CONFIG_HOME', 'XDG_RUNTIME_DIR', 'XDG_DATA_HOME',
                    'HOME'):
            d = os.path.join(tmp, var.lower())
            os.makedirs(d, mode=0o700, exist_ok=True)
            self.env[var] = d
        self.env.pop('REGISTRY_AUTH_FILE', None)
        self.env.pop('DOCKER_CONFIG', None)
        self.work = os.path.join(tmp, 'work')
        os.makedirs(self.work, exist_ok=True)
        self.cache = os.path.join(self.env['XDG_CACHE_HOME'], 'banger', 'blobs')

    def write_auth(self, host, user, password, where='runtime'):
        auth = base64.b64encode(('%s:%s' % (user, password)).encode()).decode()
        if where == 'runtime':
            path = os.path.join(self.env['XDG_RUNTIME_DIR'], 'containers', 'auth.json')
        else:
            path = os.path.join(self.env['HOME'], '.docker', 'config.json')
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, 'w') as f:
            json.dump({'auths': {host: {'auth': auth}}}, f)

    def run(self, *args, timeout=90, env=None):
        proc = subprocess.run([TOOL] + list(args), env=env or self.env, capture_output=True,
                              text=True, timeout=timeout)
        lines = [json.loads(l) for l in proc.stdout.splitlines() if l.startswith('{')]
        return proc, lines

    def pull(self, ref, *extra, timeout=90, env=None):
        return self.run('pull', ref, '--work', self.work, *extra, timeout=timeout, env=env)


def debugfs(image, command):
    return subprocess.run(['debugfs', '-R', command, image], capture_output=True, text=True,
                          check=True).stdout


def stat(image, path):
    """Mode, uid, gid, links, inode, type and fast link target of @path."""
    out = debugfs(image, 'stat "%s"' % path)
    if 'File not found' in out or not out.strip():
        return None
    info = {}
    m = re.search(r'Inode: (\d+)\s+Type: ([\w ]+?)\s+Mode:\s+(\d+)', out)
    if not m:
        return None
    info['inode'], info['type'], info['mode'] = int(m.group(1)), m.group(2), int(m.group(3), 8)
    m = re.search(r'User:\s+(\d+)\s+Group:\s+(\d+)', out)
    info['uid'], info['gid'] = int(m.group(1)), int(m.group(2))
    m = re.search(r'Links: (\d+)', out)
    info['links'] = int(m.group(1))
    m = re.search(r'Fast link dest: "(.*)"', out)
    info['target'] = m.group(1) if m else None
    m = re.search(r'Device major/minor number: (\d+):(\d+)', out)
    info['dev'] = (int(m.group(1)), int(m.group(2))) if m else None
    return info


def cat(image, path):
    return subprocess.run(['debugfs', '-R', 'cat "%s"' % path, image], capture_output=True,
                          check=True).stdout


def ls(image, path):
    out = debugfs(image, 'ls -p "%s"' % path)
    names = []
    for line in out.splitlines():
        parts = line.strip().strip('/').split('/')
        # /inode/mode/uid/gid/name/size/
        if len(parts) >= 6 and parts[4] not in ('.', '..'):
            names.append(parts[4])
    return sorted(names)


def fsck(image):
    return subprocess.run(['e2fsck', '-fn', image], capture_output=True, text=True)
