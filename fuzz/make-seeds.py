#!/usr/bin/env python3
"""Writes the seed corpora in fuzz/corpus/<target>/ (small, hand-made inputs
that reach each parser's main paths). Run again after a format change; the
fuzzers grow their own corpora from these, and crashes found are added here
as regression inputs."""
import io
import json
import lzma
import os
import struct
import sys
import tarfile
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")


def put(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---- agent frames (docs/agent-protocol.md) ----
def frame(ftype, stream, payload=b"", flags=0):
    hdr = struct.pack("<IBBHII", 0x52474E42, 1, ftype, flags, stream, len(payload))
    hdr += struct.pack("<I", zlib.crc32(payload))
    hdr += struct.pack("<I", zlib.crc32(hdr))
    return hdr + payload


def field(tag, value):
    if isinstance(value, str):
        value = value.encode()
    return struct.pack("<HI", tag, len(value)) + value


def u32(tag, v):
    return field(tag, struct.pack("<I", v))


def u64(tag, v):
    return field(tag, struct.pack("<Q", v))


T = dict(HELLO=1, ERROR=2, OK=3, EXEC=0x10, EXEC_STARTED=0x11, DATA=0x12, RESIZE=0x13,
         SIGNAL=0x14, EXIT=0x15, FILE_PUT=0x20, FILE_GET=0x21, STATS=0x30, PORTS=0x31,
         BOOT_ID=0x32, PING=0x33, SETUP=0x40, POWEROFF=0x41)
EOF_FLAG = 0x100

# Host side: replies to the requests the harness has in flight (streams 1..7:
# exec, file get, ping, stats, ports, boot id, setup). The first byte picks
# before/after the handshake (odd: before).
exec_run = (frame(T["EXEC_STARTED"], 1, u32(17, 42)) + frame(T["DATA"], 1, b"hello\n", 1)
            + frame(T["DATA"], 1, b"oops\n", 2) + frame(T["DATA"], 1, b"", 1 | EOF_FLAG)
            + frame(T["DATA"], 1, b"", 2 | EOF_FLAG) + frame(T["EXIT"], 1, u32(18, 3) + u32(19, 0)))
put("agent-host", "exec", b"\x00" + exec_run)
put("agent-host", "file-get", b"\x00" + frame(T["OK"], 2, u32(21, 0o644) + u64(22, 5))
    + frame(T["DATA"], 2, b"vm-1\n", 1) + frame(T["DATA"], 2, b"", 1 | EOF_FLAG))
stats = b"".join(u64(t, 1 << 30) for t in (40, 41, 45, 46)) + b"".join(
    field(t, struct.pack("<d", 0.5)) for t in (42, 43, 44, 47))
ports = (field(50, "tcp") + field(51, "0.0.0.0") + u32(52, 22) + u32(53, 100) + field(54, "sshd")
         + field(50, "udp") + field(51, "::") + u32(52, 53) + u32(53, 0) + field(54, ""))
put("agent-host", "simple", b"\x00" + frame(T["OK"], 3) + frame(T["OK"], 4, stats)
    + frame(T["OK"], 5, ports) + frame(T["OK"], 6, field(3, "boot-2"))
    + frame(T["OK"], 7, u32(63, 1)))
put("agent-host", "errors", b"\x00" + frame(T["ERROR"], 1, u32(30, 2) + field(31, "ENOENT: no"))
    + frame(T["ERROR"], 2, u32(30, 13) + field(31, "denied")) + frame(T["ERROR"], 0, u32(30, 1))
    + frame(T["ERROR"], 3, b"\x01\x00\xff"))
bad = bytearray(frame(T["DATA"], 1, b"x" * 100, 1))
bad[30] ^= 1
put("agent-host", "resync", b"\x01" + b"junk" + bytes(bad) + b"BNGR" + exec_run)
put("agent-host", "stale-hello", b"\x01" + frame(T["HELLO"], 0, u32(1, 1) + u64(4, 7)) + exec_run)

# Guest side: requests from the host.
put("agent-guest", "session", b"\x05" + frame(T["HELLO"], 0, u32(1, 1) + u64(4, 99))
    + frame(T["PING"], 1) + frame(T["STATS"], 2) + frame(T["PORTS"], 3) + frame(T["BOOT_ID"], 4))
put("agent-guest", "exec", b"\x00" + frame(T["EXEC"], 5, field(10, "sh") + field(10, "-c")
    + field(10, "cat") + field(11, "A=1") + field(12, "/") + u32(13, 1) + u32(14, 24)
    + u32(15, 80)) + frame(T["DATA"], 5, b"input", 0) + frame(T["RESIZE"], 5, u32(14, 50)
    + u32(15, 132)) + frame(T["SIGNAL"], 5, u32(16, 15)) + frame(T["DATA"], 5, b"", EOF_FLAG)
    + frame(T["ERROR"], 5))
put("agent-guest", "files", b"\x09" + frame(T["FILE_PUT"], 6, field(20, "/tmp/x") + u32(21, 0o600))
    + frame(T["DATA"], 6, b"content", 0) + frame(T["DATA"], 6, b"", EOF_FLAG)
    + frame(T["FILE_GET"], 7, field(20, "/etc/hostname")))
put("agent-guest", "setup", b"\x02" + frame(T["SETUP"], 8, field(60, "ssh-ed25519 AAAA k")
    + field(61, "-----BEGIN OPENSSH PRIVATE KEY-----") + field(62, "ssh-ed25519 AAAA h"))
    + frame(T["POWEROFF"], 9))
badg = bytearray(frame(T["PING"], 10, b"abc"))
badg[25] ^= 1
put("agent-guest", "malformed", b"\x03" + b"xxBNGR" + bytes(badg) + frame(0x7f, 11)
    + frame(T["EXEC"], 12, b"\x0a\x00\xff\xff\x00\x00sh") + frame(T["PING"], 0)
    + frame(T["EXEC"], 0, field(10, "x")))

# ---- DNS ----
def dns_query(name, qtype=1, edns=True, qid=0x1234, flags=0x0100):
    q = struct.pack(">HHHHHH", qid, flags, 1, 0, 0, 1 if edns else 0)
    for label in name.split("."):
        q += bytes([len(label)]) + label.encode()
    q += b"\x00" + struct.pack(">HH", qtype, 1)
    if edns:
        q += b"\x00" + struct.pack(">HHIH", 41, 1232, 0, 0)
    return q


put("dns", "a-dev", dns_query("dev.vm"))
put("dns", "aaaa-dev", dns_query("dev.vm", 28, edns=False))
put("dns", "nx", dns_query("nope.vm", 1))
put("dns", "soa-apex", dns_query("vm", 6))
put("dns", "any-upper", dns_query("DEV.VM", 255))
put("dns", "outside", dns_query("example.com", 1))
put("dns", "pointer", struct.pack(">HHHHHH", 1, 0x0100, 1, 0, 0, 0) + b"\xc0\x0c"
    + struct.pack(">HH", 1, 1))

# ---- OCI manifests, indexes, configs (first byte: document kind / header) ----
D = "sha256:" + "ab" * 32
index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
         "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                        "digest": D, "size": 100,
                        "platform": {"os": "linux", "architecture": "arm64"}},
                       {"mediaType": "application/vnd.oci.image.manifest.v1+json",
                        "digest": D, "size": 100,
                        "platform": {"os": "linux", "architecture": "amd64"}}]}
manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": D,
                       "size": 7023},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                        "digest": D, "size": 32654},
                       {"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                        "digest": D}]}
config = {"architecture": "amd64", "os": "linux",
          "config": {"Env": ["PATH=/usr/bin"], "Entrypoint": ["/bin/sh"], "Cmd": ["-c", "x"],
                     "WorkingDir": "/srv", "User": "1000:1000"}}
put("oci-manifest", "index", b"\x01" + json.dumps(index).encode())
put("oci-manifest", "manifest", b"\x02" + json.dumps(manifest).encode())
put("oci-manifest", "docker-list", b"\x03" + json.dumps(
    {"schemaVersion": 2, "manifests": index["manifests"]}).encode())
put("oci-manifest", "config", b"\x80" + json.dumps(config).encode())
put("oci-manifest", "empty", b"\x02")
put("oci-manifest", "wrong-types", b"\x01" + json.dumps(
    {"mediaType": {}, "manifests": [{"digest": 7, "platform": {"os": 1, "architecture": []}}],
     "config": {"digest": D, "size": "12"}, "layers": [{"digest": D, "size": -1,
                                                         "mediaType": {}}]}).encode())
put("oci-manifest", "wrong-types-manifest", b"\x02" + json.dumps(
    {"config": {"digest": D, "size": {}}, "layers": [{"digest": [], "size": 1.5}]}).encode())
put("oci-manifest", "config-wrong-types", b"\x80" + json.dumps(
    {"architecture": 64, "config": {"WorkingDir": {}, "User": 0, "Env": "x"}}).encode())
put("oci-manifest", "config-odd", b"\x81" + json.dumps(
    {"architecture": "amd64", "config": {"Env": [1, None], "Cmd": "notalist"}}).encode())


# ---- tar layers ----
def tar(entries, fmt=tarfile.PAX_FORMAT):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as t:
        for e in entries:
            info = tarfile.TarInfo(e[0])
            kind = e[1]
            if kind == "file":
                data = e[2].encode()
                info.size = len(data)
                info.mode = 0o644
                t.addfile(info, io.BytesIO(data))
                continue
            if kind == "dir":
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
            elif kind == "sym":
                info.type = tarfile.SYMTYPE
                info.linkname = e[2]
            elif kind == "hard":
                info.type = tarfile.LNKTYPE
                info.linkname = e[2]
            elif kind == "fifo":
                info.type = tarfile.FIFOTYPE
            elif kind == "chr":
                info.type = tarfile.CHRTYPE
                info.devmajor, info.devminor = 1, 3
            t.addfile(info)
    return buf.getvalue()


basic = tar([("etc", "dir"), ("etc/hostname", "file", "vm\n"), ("bin", "dir"),
             ("bin/sh", "file", "#!"), ("bin/ash", "hard", "bin/sh"),
             ("usr", "dir"), ("usr/bin", "sym", "../bin"), ("dev", "dir"),
             ("dev/null", "chr"), ("run", "dir"), ("run/fifo", "fifo")])
whiteouts = tar([("etc", "dir"), ("etc/.wh.hostname", "file", ""), ("var", "dir"),
                 ("var/.wh..wh..opq", "file", ""), ("var/new", "file", "x")])
escapes = tar([("../evil", "file", "x"), ("/abs", "file", "x"),
               ("link", "sym", "/etc"), ("link/passwd", "file", "x"),
               ("h", "hard", "../../etc/shadow")])
put("oci-layer", "basic", basic)
put("oci-layer", "whiteouts", whiteouts)
put("oci-layer", "escapes", escapes)
put("oci-layer", "gnu", tar([("a" * 150, "file", "long name"), ("d", "dir")], tarfile.GNU_FORMAT))
put("copyout-pump", "out-basic", b"\x00" + basic)
put("copyout-pump", "in-basic", b"\x01" + tar([("dir", "dir"), ("dir/f", "file", "x"),
                                                ("dir/l", "sym", "f"), ("dir/h", "hard", "dir/f")]))
put("copyout-pump", "out-escapes", b"\x00" + escapes)
put("copyout-pump", "out-symlink-dir", b"\x00" + tar([("s", "sym", "/tmp"), ("s", "dir"),
                                                       ("s/x", "file", "y")]))


# ---- bzImage: a boot-protocol 2.08+ header and a compressed payload ----
def bzimage(payload, setup_sects=1):
    img = bytearray(512 * (setup_sects + 1))
    img[0x1F1] = setup_sects
    img[0x202:0x206] = b"HdrS"
    img[0x206:0x208] = struct.pack("<H", 0x20F)
    img[0x248:0x24C] = struct.pack("<I", 0)
    img[0x24C:0x250] = struct.pack("<I", len(payload))
    return bytes(img) + payload


elf = b"\x7fELF\x02\x01\x01" + b"\x00" * 57 + b"kernel" * 20
put("bzimage", "xz", bzimage(lzma.compress(elf, format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC32)))
gz = zlib.compressobj(9, zlib.DEFLATED, 31)
put("bzimage", "gzip", bzimage(gz.compress(elf) + gz.flush()))
put("bzimage", "lzma", bzimage(lzma.compress(elf, format=lzma.FORMAT_ALONE)))
put("bzimage", "lz4-magic", bzimage(b"\x02\x21\x4c\x18" + struct.pack("<I", 40) + b"\x00" * 40))
put("bzimage", "zstd-magic", bzimage(b"\x28\xb5\x2f\xfd" + b"\x00" * 40))
put("bzimage", "old-protocol", bzimage(b"\x00" * 16)[:0x206] + b"\x00\x02" + b"\x00" * 600)

# ---- modules.dep (NUL between modules.dep, .builtin, .alias, .softdep) ----
dep = ("kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio_ring.ko "
       "kernel/drivers/virtio/virtio.ko\n"
       "kernel/drivers/net/virtio_net.ko.xz: kernel/drivers/net/net_failover.ko "
       "kernel/net/core/failover.ko kernel/drivers/virtio/virtio_ring.ko\n"
       "kernel/drivers/virtio/virtio_ring.ko:\nkernel/drivers/virtio/virtio.ko:\n"
       "kernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko\n"
       "kernel/net/core/failover.ko:\nkernel/a.ko: kernel/a.ko\n")
put("kmod-deps", "virtio", dep + "\0kernel/fs/ext4/ext4.ko\n\0alias virtio:d00000002v* virtio_blk\n"
    "alias pci:v00001AF4d* virtio_pci\n\0softdep virtio_net pre: failover post: a\n")
put("kmod-deps", "cycle", "kernel/a.ko: kernel/b.ko\nkernel/b.ko: kernel/a.ko\n\0\0\0")

# ---- update manifest (odd first byte) and SHA256SUMS (even) ----
rel = {"schema": 1, "latest": "0.2.0",
       "versions": {"0.2.0": {"tarball": "banger-0.2.0-x86_64.tar.gz", "sha256sums": "SHA256SUMS",
                              "signature": "SHA256SUMS.sig", "size": 5242880, "notes": "n"},
                    "0.1.9": {"tarball": "https://mirror.example/b.tar.gz",
                              "sha256sums": "S", "signature": "S.sig"}}}
put("update-manifest", "manifest", b"\x01" + json.dumps(rel).encode())
put("update-manifest", "manifest-bad-latest", b"\x01" + json.dumps(
    {"schema": 1, "latest": "9.9.9", "versions": {}}).encode())
put("update-manifest", "sums", b"\x00" + ("ab" * 32 + "  banger-0.2.0.tar.gz\n"
    + "cd" * 32 + " *install.sh\n").encode())
put("update-manifest", "sums-dup", b"\x00" + ("ab" * 32 + "  banger-0.2.0.tar.gz\n"
    + "ab" * 32 + "  banger-0.2.0.tar.gz\nnot a line\n").encode())

# ---- catalog index ----
cat = {"version": 1,
       "images": [{"name": "debian", "description": "Debian 12",
                   "oci": "docker.io/library/debian:bookworm"},
                  {"name": "alpine-base", "rootfs": {"url": "https://example/a.tar.gz",
                                                     "sha256": "ab" * 32}}],
       "kernels": [{"name": "default", "version": "6.1.90", "url": "https://example/vmlinux",
                    "sha256": "cd" * 32, "description": "6.1"}]}
put("catalog-index", "index", json.dumps(cat))
put("catalog-index", "bad-entry", json.dumps({"version": 1, "images": [{"name": "-x", "oci": ""}]}))
put("catalog-index", "version2", json.dumps({"version": 2}))
# Regressions: an empty body and members of the wrong type hit json-glib
# assertions (found by fuzz-catalog-index and fuzz-oci-manifest).
put("catalog-index", "empty", b"")
put("catalog-index", "wrong-types", json.dumps({"version": "1", "images": [
    {"name": {}, "oci": []}, {"name": "x", "rootfs": {"url": 5, "sha256": None}}],
    "kernels": [{"name": "k", "version": [], "url": {}, "sha256": 1}]}))

# ---- OCI references ----
for i, r in enumerate(["debian", "library/debian:bookworm", "docker.io/library/debian@" + D,
                       "localhost:5000/a/b/c:v1.2", "127.0.0.1:5000/x:latest@" + D,
                       "[::1]:5000/r", "UPPER/case", "a//b", "registry.example.com/ns/img:t" + "a" * 130]):
    put("oci-reference", "ref%d" % i, r)
