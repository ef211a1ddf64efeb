#!/usr/bin/python3
"""A FAKE Firecracker for banger's tests (Firecracker cannot run on machines
without KVM). It is not Firecracker: it boots nothing. It does what banger
relies on, faithfully to the upstream API contract
(firecracker-v1.16.1.yaml, Swagger 2.0):

- serves the API as HTTP/1.1 on the unix socket given by --api-sock, and
  refuses to start if that path already exists (real Firecracker fails to
  bind: "Address in use");
- validates EVERY request against the contract: the path (templates such as
  /drives/{drive_id}), the method, and the JSON body (required fields,
  types, enums, nested $refs, no unknown fields, path id equal to body id);
  a request that fails gets 400 {"fault_message": ...} as from Firecracker;
- refuses what Firecracker refuses: pre-boot configuration after
  InstanceStart, a second InstanceStart, InstanceStart without a boot
  source, logger/metrics paths that do not exist yet;
- reports its state ("Not started", "Running", "Paused") in GET /;
- PATCH /vm pauses and resumes the "guest" (Paused/Resumed, post-boot
  only); PUT /snapshot/create (paused only, as the contract says) writes
  the snapshot file (the configuration as JSON, so a load can restore it)
  and the memory file (FAKE_MEMORY_BYTES of "guest memory": enough to
  fill a small tmpfs, which then fails the request as Firecracker does,
  naming the OS error); PUT /snapshot/load works only on a fresh process
  (nothing configured but the logger and metrics), wants exactly one of
  mem_file_path and mem_backend, refuses missing or corrupt files and
  overrides of interfaces the snapshot lacks, applies network_overrides
  and vsock_override, then runs the "guest" again (its agent), resumed
  when resume_vm says so; a load opens the drive files the snapshot
  names (their paths as they were at the save), so a snapshot whose disk
  is gone is refused;
- PATCH /drives/{drive_id} (post-boot only, also while paused, and only for
  a drive that exists) re-points a drive at another path_on_host, which
  must exist (Firecracker opens it);
- the "guest" uses its drives whenever it runs (a boot, a load with
  resume_vm, PATCH /vm Resumed): each time, one line "running on
  <drive_id> <path_on_host>" per drive is appended to <api-sock>.disks.log,
  so a test can tell which disk file a restored guest writes to;
- on InstanceStart, if a vsock is configured, serves the hybrid vsock on
  uds_path: a client writes "CONNECT <port>\\n", gets "OK <n>\\n" and is then
  relayed to a real banger-agent (--listen-unix) that the fake started, so
  the agent client really talks to an agent; the fake exits when that agent
  exits (the guest powered off);
- SendCtrlAltDel with reboot=k on the kernel command line ends the process
  (the guest reboots, and Firecracker exits on a guest reboot);
- it is, on the process level, a "firecracker": prctl(PR_SET_NAME) makes
  /proc/<pid>/comm say so, and the jailer (or the test) passes argv[0]
  "firecracker".

Every request is appended as one JSON line {"method", "path", "body"} to
<api-sock>.requests.jsonl (host path) so tests can assert the sequence.

Environment:
  FAKE_FIRECRACKER_CHROOT   absolute API paths are resolved under it (set by
                            the fake jailer: the fake cannot really chroot)
  FAKE_FIRECRACKER_CONTRACT the contract file (default: the shared one)
  FAKE_FIRECRACKER_AGENT    banger-agent binary (default: the build tree's)
  FAKE_FIRECRACKER_MALFORM  a path whose answer is malformed (for tests of
                            the client's error handling)

A WEDGED guest, for tests of the stop escalation (never a Firecracker
behaviour worth copying, only one a stop must survive):
  --test-ignore-ctrl-alt-del  SendCtrlAltDel is answered 204 as always, but
                              nothing ends: the guest ignores the reboot
  --test-ignore-sigterm       SIGTERM is caught and ignored (the process
                              keeps running until SIGKILL)
A COMPROMISED VMM, for tests of what the host trusts of a jail's contents:
  --test-hostile-snapshot     PUT /snapshot/create writes the state, then
                              puts a symlink to /etc/passwd where the memory
                              file should be, and answers 204 as if all
                              were well
Since banger builds the command line itself, all of them can also be given as the
environment FAKE_FIRECRACKER_TEST_FLAGS (space-separated, e.g.
"--test-ignore-ctrl-alt-del --test-ignore-sigterm"), which the fake jailer
passes on. Each switch, when it takes effect, appends one line to
<api-sock>.wedge.log ("ignored SendCtrlAltDel", "ignored SIGTERM") so a test
can see which step the host took. The guest's own side (its agent ignoring
the power-off) is tests/firecracker/fake-guest-agent's hang-on-poweroff.
"""

import ctypes
import json
import os
import re
import signal
import socket
import socketserver
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler

import yaml


def _die_with_parent():
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


_spawn_requests = None


def _spawn_for_life(argv):
    """Popen(@argv) from a thread that lives as long as this process, with
    PR_SET_PDEATHSIG: the death signal follows the spawning *thread*, and
    the API's handler threads end after each request."""
    import queue
    global _spawn_requests
    if _spawn_requests is None:
        _spawn_requests = queue.Queue()

        def spawner():
            while True:
                args, reply = _spawn_requests.get()
                try:
                    reply.put(subprocess.Popen(args, stdin=subprocess.DEVNULL,
                                               preexec_fn=_die_with_parent))
                except OSError as e:
                    reply.put(e)
        threading.Thread(target=spawner, daemon=True).start()
    reply = queue.Queue()
    _spawn_requests.put((argv, reply))
    proc = reply.get()
    if isinstance(proc, Exception):
        raise proc
    return proc

PR_SET_NAME = 15
VERSION = '1.16.1'
# Pre-boot-only resources (Firecracker: "The requested operation is not
# supported after starting the microVM.")
PRE_BOOT = ('/machine-config', '/boot-source', '/drives/', '/network-interfaces/', '/vsock',
            '/logger', '/metrics', '/serial', '/cpu-config', '/entropy', '/balloon', '/mmds/config',
            '/pmem/')

# The fake's "guest memory" in a snapshot's memory file.
FAKE_MEMORY_BYTES = 4 << 20
SNAPSHOT_MAGIC = 'fake-firecracker-snapshot-v1'

state = {
    'started': False,
    'paused': False,
    'config': {},
    'lock': threading.Lock(),
}


def set_comm(name):
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_NAME, name.encode(), 0, 0, 0)


CONTRACT_NAME = 'firecracker-v1.16.1.yaml'


def default_contract():
    """The upstream contract lives beside the checkout in ../shared/contracts
    (never copied into the repo). A clone made elsewhere (a fresh-clone
    check in /tmp) falls back to the workplace's /work/shared."""
    here = os.path.dirname(os.path.abspath(__file__))
    candidates = [os.path.normpath(os.path.join(here, '..', '..', '..', 'shared', 'contracts',
                                                CONTRACT_NAME)),
                  os.path.join('/work', 'shared', 'contracts', CONTRACT_NAME)]
    for path in candidates:
        if os.path.exists(path):
            return path
    sys.exit('fake-firecracker: the Firecracker API contract is in none of: '
             + ', '.join(candidates) + ' (set FAKE_FIRECRACKER_CONTRACT)')


class Contract:
    def __init__(self, path):
        with open(path) as f:
            self.doc = yaml.safe_load(f)
        self.routes = []
        for template, ops in self.doc['paths'].items():
            names = re.findall(r'\{(\w+)\}', template)
            regex = '^' + re.sub(r'\\\{\w+\\\}', '([^/]+)', re.escape(template)) + '$'
            self.routes.append((re.compile(regex), names, template, ops))

    def route(self, path):
        for regex, names, template, ops in self.routes:
            m = regex.match(path)
            if m:
                return template, dict(zip(names, m.groups())), ops
        return None, None, None

    def resolve(self, schema):
        while '$ref' in schema:
            name = schema['$ref'].split('/')[-1]
            schema = self.doc['definitions'][name]
        return schema

    def check(self, value, schema, where):
        """Raises ValueError naming what is wrong."""
        schema = self.resolve(schema)
        kind = schema.get('type', 'object' if 'properties' in schema else None)
        if 'enum' in schema and value not in schema['enum'] and str(value) not in [
                str(e) for e in schema['enum']]:
            raise ValueError(f'{where}: {value!r} is not one of {schema["enum"]}')
        if kind == 'object':
            if not isinstance(value, dict):
                raise ValueError(f'{where}: expected an object')
            props = schema.get('properties', {})
            for req in schema.get('required', []):
                if req not in value:
                    raise ValueError(f'{where}: missing field `{req}`')
            extra = schema.get('additionalProperties')
            for key, item in value.items():
                if key in props:
                    self.check(item, props[key], f'{where}.{key}')
                elif isinstance(extra, dict):
                    self.check(item, extra, f'{where}.{key}')
                elif extra is not True:
                    # Firecracker's structs deny unknown fields.
                    raise ValueError(f'{where}: unknown field `{key}`')
        elif kind == 'array':
            if not isinstance(value, list):
                raise ValueError(f'{where}: expected an array')
            for i, item in enumerate(value):
                self.check(item, schema.get('items', {}), f'{where}[{i}]')
        elif kind == 'string':
            if not isinstance(value, str):
                raise ValueError(f'{where}: expected a string')
        elif kind == 'integer':
            if not isinstance(value, int) or isinstance(value, bool):
                raise ValueError(f'{where}: expected an integer')
            if 'minimum' in schema and value < schema['minimum']:
                raise ValueError(f'{where}: {value} is below {schema["minimum"]}')
            if 'maximum' in schema and value > schema['maximum']:
                raise ValueError(f'{where}: {value} is above {schema["maximum"]}')
        elif kind == 'number':
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise ValueError(f'{where}: expected a number')
        elif kind == 'boolean':
            if not isinstance(value, bool):
                raise ValueError(f'{where}: expected a boolean')


class Fault(Exception):
    pass


class Firecracker:
    def __init__(self, args, contract):
        self.args = args
        self.contract = contract
        self.chroot = os.environ.get('FAKE_FIRECRACKER_CHROOT', '')
        self.record_path = self.host_path(args.api_sock) + '.requests.jsonl'
        self.agent = None
        self.vsock_server = None

    def host_path(self, path):
        if self.chroot and path.startswith('/'):
            return os.path.join(self.chroot, path.lstrip('/'))
        if self.chroot:
            return os.path.join(self.chroot, path)
        return path

    def wedge_note(self, what):
        with open(self.host_path(self.args.api_sock) + '.wedge.log', 'a') as f:
            f.write(what + '\n')

    def on_sigterm(self, *unused):
        if self.args.test_ignore_sigterm:
            self.wedge_note('ignored SIGTERM')
            return
        self.exit()

    def record(self, method, path, body):
        with open(self.record_path, 'a') as f:
            f.write(json.dumps({'method': method, 'path': path, 'body': body}) + '\n')

    def handle(self, method, path, raw):
        """Returns (status, body-or-None)."""
        body = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError as e:
                self.record(method, path, raw.decode(errors='replace'))
                raise Fault(f'Invalid JSON body: {e}')
        self.record(method, path, body)
        template, params, ops = self.contract.route(path)
        if template is None or method.lower() not in ops:
            raise Fault(f'Invalid request method and/or path: {method} {path}.')
        op = ops[method.lower()]
        for param in op.get('parameters', []):
            if param.get('in') == 'body':
                if body is None:
                    if param.get('required'):
                        raise Fault('The body of the request is empty.')
                    continue
                try:
                    self.contract.check(body, param['schema'], 'body')
                except ValueError as e:
                    raise Fault(f'An error occurred when deserializing the json body of a '
                                f'request: {e}.')
        for name, value in (params or {}).items():
            if isinstance(body, dict) and name in body and body[name] != value:
                raise Fault(f'The id from the path [{value}] does not match the id from the '
                            f'body [{body[name]}]!')
        with state['lock']:
            return self.apply(method, template, path, body)

    def apply(self, method, template, path, body):
        started = state['started']
        cfg = state['config']
        if method == 'GET':
            if template == '/':
                return 200, {'id': self.args.id or 'anonymous-instance',
                             'state': ('Paused' if state['paused'] else 'Running') if started
                             else 'Not started',
                             'vmm_version': VERSION, 'app_name': 'Firecracker'}
            if template == '/version':
                return 200, {'firecracker_version': VERSION}
            if template == '/machine-config':
                return 200, cfg.get('/machine-config', {'vcpu_count': 1, 'mem_size_mib': 128})
            return 200, cfg.get(path, {})
        if template == '/actions':
            action = body['action_type']
            if action == 'InstanceStart':
                if started:
                    raise Fault('The requested operation is not supported after starting the '
                                'microVM.')
                if '/boot-source' not in cfg:
                    raise Fault('Cannot start microvm that was already started or without a '
                                'kernel configuration: MissingKernelConfig')
                self.boot()
                state['started'] = True
                return 204, None
            if action == 'SendCtrlAltDel':
                if not started:
                    raise Fault('The requested operation is not supported before starting the '
                                'microVM.')
                if self.args.test_ignore_ctrl_alt_del:
                    self.wedge_note('ignored SendCtrlAltDel')
                elif 'reboot=k' in cfg['/boot-source'].get('boot_args', ''):
                    # The guest reboots; Firecracker exits on a guest reboot.
                    threading.Timer(0.05, self.exit).start()
                return 204, None
            return 204, None
        if method == 'PUT' and any(path == p or (p.endswith('/') and path.startswith(p))
                                   for p in PRE_BOOT):
            if started:
                raise Fault('The requested operation is not supported after starting the '
                            'microVM.')
            if template in ('/logger', '/metrics'):
                key = 'log_path' if template == '/logger' else 'metrics_path'
                if key in body and not os.path.isfile(self.host_path(body[key])):
                    raise Fault(f'Cannot open the {template[1:]} file: No such file or '
                                f'directory (os error 2)')
            if template == '/boot-source':
                if not os.path.isfile(self.host_path(body['kernel_image_path'])):
                    raise Fault('Invalid kernel path: No such file or directory (os error 2)')
            if template == '/drives/{drive_id}':
                if not os.path.isfile(self.host_path(body['path_on_host'])):
                    raise Fault('Unable to create the block device: No such file or directory '
                                '(os error 2)')
            cfg[path] = body
            return 204, None
        if method == 'PATCH' and not started:
            raise Fault('The requested operation is not supported before starting the microVM.')
        if method == 'PATCH' and template == '/drives/{drive_id}':
            return self.patch_drive(path, body)
        if template == '/snapshot/create':
            return self.snapshot_create(body)
        if template == '/snapshot/load':
            return self.snapshot_load(body)
        if method == 'PATCH' and template == '/vm':
            was_paused = state['paused']
            state['paused'] = body['state'] == 'Paused'
            if was_paused and not state['paused']:
                self.note_disks()
            return 204, None
        cfg[path] = body
        return 204, None

    # ---- snapshots --------------------------------------------------------

    def snapshot_create(self, body):
        if not state['started']:
            raise Fault('The requested operation is not supported before starting the microVM.')
        if not state['paused']:
            raise Fault('Create snapshot error: Cannot save the microVM state: the microVM is not '
                        'paused')
        snapshot = self.host_path(body['snapshot_path'])
        memory = self.host_path(body['mem_file_path'])
        try:
            with open(snapshot, 'w') as f:
                json.dump({'magic': SNAPSHOT_MAGIC, 'config': state['config']}, f)
            with open(memory, 'wb') as f:
                chunk = b'\xa5' * 65536
                for _ in range(FAKE_MEMORY_BYTES // len(chunk)):
                    f.write(chunk)
        except OSError as e:
            raise Fault(f'Create snapshot error: Cannot save the microVM state: {e.strerror} '
                        f'(os error {e.errno})')
        if self.args.test_hostile_snapshot:
            os.unlink(memory)
            os.symlink('/etc/passwd', memory)
            self.wedge_note('planted a symlink as the memory file')
        return 204, None

    def snapshot_load(self, body):
        cfg = state['config']
        if state['started'] or any(k not in ('/logger', '/metrics') for k in cfg):
            raise Fault('Loading a microVM snapshot not allowed after configuring boot-specific '
                        'resources.')
        if ('mem_file_path' in body) == ('mem_backend' in body):
            raise Fault('An error occurred when deserializing the json body of a request: '
                        'exactly one of mem_file_path and mem_backend must be given.')
        memory = body.get('mem_file_path') or body['mem_backend']['backend_path']
        if 'mem_backend' in body and body['mem_backend']['backend_type'] != 'File':
            raise Fault('Load snapshot error: the fake only serves File memory backends')
        try:
            with open(self.host_path(body['snapshot_path'])) as f:
                saved = json.load(f)
            with open(self.host_path(memory), 'rb') as f:
                f.read(1)
        except OSError as e:
            raise Fault(f'Load snapshot error: Cannot open snapshot file: {e.strerror} '
                        f'(os error {e.errno})')
        except ValueError as e:
            raise Fault(f'Load snapshot error: Failed to load snapshot state from file: {e}')
        if not isinstance(saved, dict) or saved.get('magic') != SNAPSHOT_MAGIC:
            raise Fault('Load snapshot error: Failed to load snapshot state from file: bad magic')
        restored = dict(saved['config'])
        for override in body.get('network_overrides', []):
            key = '/network-interfaces/' + override['iface_id']
            if key not in restored:
                raise Fault(f'Load snapshot error: Invalid network interface override: '
                            f'{override["iface_id"]} is not in the snapshot')
            restored[key] = dict(restored[key], host_dev_name=override['host_dev_name'])
        if 'vsock_override' in body:
            if '/vsock' not in restored:
                raise Fault('Load snapshot error: the snapshot has no vsock device to override')
            restored['/vsock'] = dict(restored['/vsock'],
                                      uds_path=body['vsock_override']['uds_path'])
        # Firecracker opens the drives' backing files the snapshot names.
        for key, drive in sorted(restored.items()):
            if key.startswith('/drives/') and not os.path.isfile(
                    self.host_path(drive['path_on_host'])):
                raise Fault(f'Load snapshot error: Failed to restore from snapshot: Block '
                            f'device error: cannot open {drive["path_on_host"]}: No such file '
                            f'or directory (os error 2)')
        restored.update(cfg)  # the logger and metrics of this process
        state['config'] = restored
        self.boot(restored_from=body['snapshot_path'], running=body.get('resume_vm', False))
        state['started'] = True
        state['paused'] = not body.get('resume_vm', False)
        return 204, None

    def patch_drive(self, path, body):
        drive = state['config'].get(path)
        if drive is None:
            raise Fault(f'Drive update error: no drive with id {body["drive_id"]}')
        if 'path_on_host' in body:
            if not os.path.isfile(self.host_path(body['path_on_host'])):
                raise Fault('Drive update error: Unable to patch the block device: No such '
                            'file or directory (os error 2)')
            state['config'][path] = dict(drive, path_on_host=body['path_on_host'])
        return 204, None

    def note_disks(self):
        with open(self.host_path(self.args.api_sock) + '.disks.log', 'a') as f:
            for key, drive in sorted(state['config'].items()):
                if key.startswith('/drives/'):
                    f.write(f'running on {key[len("/drives/"):]} {drive["path_on_host"]}\n')

    # ---- the "guest" --------------------------------------------------

    def boot(self, restored_from=None, running=True):
        cfg = state['config']
        if running:
            self.note_disks()
        serial = cfg.get('/serial', {}).get('serial_out_path')
        if serial:
            with open(self.host_path(serial), 'a') as f:
                if restored_from:
                    f.write(f'fake firecracker: guest restored from {restored_from}\n')
                else:
                    f.write(f'fake firecracker: Linux booting with '
                            f'{cfg["/boot-source"].get("boot_args", "")}\n')
        vsock = cfg.get('/vsock')
        if vsock:
            self.start_agent(self.host_path(vsock['uds_path']))

    def start_agent(self, uds_path):
        agent = os.environ.get('FAKE_FIRECRACKER_AGENT') or os.path.join(
            os.environ.get('BANGER_BUILD_ROOT', ''), 'src', 'agent', 'banger-agent')
        self.agent_sock = uds_path + '.agent'
        for p in (uds_path, self.agent_sock):
            if os.path.exists(p):
                os.unlink(p)
        if os.path.exists(agent):
            # The guest ends with its VMM: a fake SIGKILLed by a forced stop
            # must not leave its agent running (PR_SET_PDEATHSIG).
            self.agent = _spawn_for_life([agent, '--listen-unix', self.agent_sock])
            threading.Thread(target=self.watch_agent, daemon=True).start()
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(uds_path)
        listener.listen(8)
        self.vsock_listener = listener
        threading.Thread(target=self.vsock_loop, daemon=True).start()

    def watch_agent(self):
        self.agent.wait()
        # The agent's power-off ends the guest, and with it Firecracker.
        self.exit()

    def vsock_loop(self):
        while True:
            try:
                conn, _ = self.vsock_listener.accept()
            except OSError:
                return
            threading.Thread(target=self.vsock_conn, args=(conn,), daemon=True).start()

    def vsock_conn(self, conn):
        line = b''
        while not line.endswith(b'\n') and len(line) < 64:
            chunk = conn.recv(1)
            if not chunk:
                conn.close()
                return
            line += chunk
        m = re.match(rb'^CONNECT (\d+)\n$', line)
        if not m or int(m.group(1)) != 1024 or self.agent is None:
            conn.close()  # nobody listens on that port in the guest
            return
        guest = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            guest.connect(self.agent_sock)
        except OSError:
            conn.close()  # the guest's agent is not up yet: the host retries
            return
        conn.sendall(b'OK 1073741824\n')

        def pump(src, dst):
            try:
                while True:
                    data = src.recv(65536)
                    if not data:
                        break
                    dst.sendall(data)
            except OSError:
                pass
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        threading.Thread(target=pump, args=(guest, conn), daemon=True).start()
        pump(conn, guest)

    def exit(self, *unused):
        if self.agent is not None and self.agent.poll() is None:
            self.agent.terminate()
            self.agent.wait()
        os._exit(0)


class Handler(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    server_version = 'Firecracker API'
    sys_version = ''

    def log_message(self, *args):
        pass

    def address_string(self):
        return 'unix'

    def send(self, status, body):
        malform = os.environ.get('FAKE_FIRECRACKER_MALFORM')
        if malform and self.path == malform:
            payload = b'{"state": "Running", "id": '  # cut short
            status = 200
        elif body is None:
            payload = b''
        else:
            payload = json.dumps(body).encode()
        self.send_response(status)
        if payload:
            self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def dispatch(self):
        length = int(self.headers.get('Content-Length') or 0)
        raw = self.rfile.read(length) if length else b''
        try:
            status, body = self.server.fc.handle(self.command, self.path, raw)
        except Fault as e:
            status, body = 400, {'fault_message': str(e)}
        self.send(status, body)

    do_GET = do_PUT = do_PATCH = do_POST = do_DELETE = dispatch


class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


def parse_args(argv):
    import argparse
    p = argparse.ArgumentParser(prog='firecracker')
    p.add_argument('--api-sock', default='/run/firecracker.socket')
    p.add_argument('--id', default='')
    # Passed by the jailer:
    p.add_argument('--start-time-us')
    p.add_argument('--start-time-cpu-us')
    p.add_argument('--parent-cpu-time-us')
    p.add_argument('--level')
    # Test switches (see the module's docstring): a wedged guest.
    p.add_argument('--test-ignore-ctrl-alt-del', action='store_true')
    p.add_argument('--test-ignore-sigterm', action='store_true')
    p.add_argument('--test-hostile-snapshot', action='store_true')
    extra = os.environ.get('FAKE_FIRECRACKER_TEST_FLAGS', '').split()
    for flag in extra:
        if flag not in ('--test-ignore-ctrl-alt-del', '--test-ignore-sigterm',
                        '--test-hostile-snapshot'):
            p.error(f'FAKE_FIRECRACKER_TEST_FLAGS: unknown switch {flag}')
    return p.parse_args(argv + extra)


def main():
    set_comm('firecracker')
    args = parse_args(sys.argv[1:])
    contract = Contract(os.environ.get('FAKE_FIRECRACKER_CONTRACT') or default_contract())
    fc = Firecracker(args, contract)
    sock_path = fc.host_path(args.api_sock)
    if os.path.exists(sock_path):
        print(f'Failed to open the API socket at: {args.api_sock}. Check that it is not already '
              f'used. Address in use (os error 98)', file=sys.stderr)
        return 1
    server = Server(sock_path, Handler)
    server.fc = fc
    signal.signal(signal.SIGTERM, fc.on_sigterm)
    signal.signal(signal.SIGINT, fc.exit)
    server.serve_forever()
    return 0


if __name__ == '__main__':
    sys.exit(main())
