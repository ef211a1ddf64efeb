#!/usr/bin/python3
"""bench/fuzz: runs each libFuzzer target (fuzz/) for a number of executions
(default 1 000 000) from a copy of its seed corpus, and prints executions,
executions per second, new corpus entries and crashes per target.

    run-fuzz.py [--runs N] [--max-time S] [--only NAME,…] CORPUS_ROOT NAME=BINARY…

A crash stops that target's run (libFuzzer does); its input is kept under
the printed artifact directory and the next target runs. Exit status 1 if
any target crashed."""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time


def run_one(name, binary, seeds, runs, max_time, work):
    corpus = os.path.join(work, name, 'corpus')
    artifacts = os.path.join(work, name, 'artifacts') + '/'
    shutil.copytree(seeds, corpus)
    os.makedirs(artifacts)
    args = [binary, '-runs=%d' % runs, '-print_final_stats=1', '-error_exitcode=1',
            '-timeout=25', '-rss_limit_mb=2048', '-artifact_prefix=' + artifacts, corpus]
    if max_time:
        args.insert(1, '-max_total_time=%d' % max_time)
    # (GLib criticals abort through the harnesses' own log handler.)
    env = dict(os.environ, ASAN_OPTIONS='detect_leaks=1',
               UBSAN_OPTIONS='print_stacktrace=1:halt_on_error=1')
    start = time.monotonic()
    proc = subprocess.run(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, errors='replace')
    elapsed = time.monotonic() - start
    out = proc.stdout
    m = re.search(r'stat::number_of_executed_units:\s*(\d+)', out)
    execs = int(m.group(1)) if m else 0
    if not m:
        m = re.search(r'Done (\d+) runs', out)
        execs = int(m.group(1)) if m else 0
    crashes = sorted(f for f in os.listdir(artifacts))
    if proc.returncode != 0 and not crashes:
        # Killed by a signal libFuzzer does not catch: no input was kept.
        crashes = ['(exit status %d, no input kept: see the log)' % proc.returncode]
    log = os.path.join(work, name, 'log')
    with open(log, 'w') as f:
        f.write(out)
    return {'name': name, 'execs': execs, 'seconds': elapsed,
            'corpus': len(os.listdir(corpus)), 'crashes': crashes, 'rc': proc.returncode,
            'log': log, 'artifacts': artifacts}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--runs', type=int, default=1000000)
    ap.add_argument('--max-time', type=int, default=0, help='seconds per target (0: none)')
    ap.add_argument('--only', default='')
    ap.add_argument('--keep', action='store_true', help='keep the work directory')
    ap.add_argument('corpus_root')
    ap.add_argument('targets', nargs='+')
    opts = ap.parse_args()
    only = set(filter(None, opts.only.split(',')))
    work = tempfile.mkdtemp(prefix='banger-fuzz-bench-')
    results = []
    for spec in opts.targets:
        name, binary = spec.split('=', 1)
        if only and name not in only:
            continue
        r = run_one(name, binary, os.path.join(opts.corpus_root, name), opts.runs,
                    opts.max_time, work)
        results.append(r)
        print('%-16s %10d execs %8.0f/s %6.0f s  corpus %5d  crashes %d%s' % (
            r['name'], r['execs'], r['execs'] / max(r['seconds'], 0.001), r['seconds'],
            r['corpus'], len(r['crashes']),
            ('  ' + ', '.join(c if c.startswith('(') else r['artifacts'] + c
                              for c in r['crashes'])) if r['crashes'] else ''),
            flush=True)
    total = sum(len(r['crashes']) for r in results)
    print('%d targets, %d executions, %d crashes' % (
        len(results), sum(r['execs'] for r in results), total))
    if total or opts.keep:
        print('work directory (logs, artifacts): ' + work)
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if total else 0


if __name__ == '__main__':
    sys.exit(main())
