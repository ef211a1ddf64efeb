#!/usr/bin/python3
"""bench/pull: banger's pull + rootfs build against skopeo copy + umoci
unpack + mke2fs -d, for the same image from the same loopback registry.

    BANGER_BUILD_ROOT=build-x /usr/bin/python3 bench/pull/bench_pull.py [--mib N]

or `meson test --benchmark --suite oci`. Builds a synthetic image (three
layers: many small files, a few large ones), pushes it to docker-registry on
127.0.0.1, then times, each with a cold cache:
  banger:   oci-pull-tool pull (manifest, layers in parallel, verify, ext4)
  baseline: skopeo copy docker://… oci:DIR; umoci unpack; mke2fs -t ext4 -d
and prints both times and the ratio."""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', '..', 'tests', 'oci'))
import ocitest  # noqa: E402


def build_image(tmp, total_mib):
    layout = ocitest.new_layout(tmp, 'bench')
    per_layer = total_mib * 1024 * 1024 // 3
    for n in range(3):
        entries = [{'name': 'l%d' % n, 'type': 'dir'}]
        size = 0
        i = 0
        # a mix like a distribution: mostly small files, some large
        while size < per_layer * 0.6:
            data = os.urandom(2048 + (i * 7919) % 30000)
            entries.append({'name': 'l%d/f%05d' % (n, i), 'data': data})
            size += len(data)
            i += 1
        while size < per_layer:
            data = os.urandom(4 * 1024 * 1024)
            entries.append({'name': 'l%d/big%03d' % (n, i), 'data': data})
            size += len(data)
            i += 1
        ocitest.add_layer(layout, 'latest', tmp, entries)
    return layout


def timed(fn):
    t = time.monotonic()
    fn()
    return time.monotonic() - t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--mib', type=int, default=96, help='image content size')
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix='banger-bench-pull-')
    reg = None
    try:
        reg = ocitest.Registry(tmp)
        layout = build_image(tmp, args.mib)
        reg.push(layout, 'latest', 'bench:latest')
        ref = reg.host + '/bench:latest'
        env = ocitest.Env(tmp)

        result = {}

        def banger():
            proc, lines = env.pull(ref, timeout=600)
            if proc.returncode != 0:
                raise RuntimeError(proc.stdout + proc.stderr)
            result.update(lines[0])
        t_banger = timed(banger)

        base = os.path.join(tmp, 'baseline')
        os.makedirs(base)
        bundle = os.path.join(base, 'bundle')
        img = os.path.join(base, 'rootfs.ext4')
        size_mib = result['rootfs_bytes'] // (1024 * 1024)

        def baseline():
            subprocess.run(['skopeo', '--insecure-policy', 'copy', '--quiet',
                            '--src-tls-verify=false', 'docker://' + ref,
                            'oci:%s/oci:latest' % base], check=True)
            subprocess.run(['umoci', 'unpack', '--image', '%s/oci:latest' % base, bundle],
                           check=True, capture_output=True)
            subprocess.run(['mke2fs', '-q', '-F', '-t', 'ext4', '-d',
                            os.path.join(bundle, 'rootfs'), img, '%dM' % size_mib],
                           check=True, capture_output=True)
        t_base = timed(baseline)
        print('image: %d MiB of content in 3 layers, rootfs %d MiB' % (args.mib, size_mib))
        print('banger pull + rootfs:                  %.2f s' % t_banger)
        print('skopeo copy + umoci unpack + mke2fs -d: %.2f s' % t_base)
        print('ratio (baseline / banger):             %.2fx' % (t_base / t_banger))
    finally:
        if reg is not None:
            reg.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == '__main__':
    main()
