#!/usr/bin/python3
"""The include graph of src/ (issue 9; docs/hacking.md, Layers).

Fails when
- any file-level #include cycle exists under src/ (bangerd, the helper, the
  CLI, the guest agent and its protocol library alike), or
- a folder includes from a folder it may not use: each folder of
  src/service is a layer that may include only from the layers below it
  (ALLOWED mirrors the dependencies in src/service/meson.build, where an
  upward include is also a build error; this test names the file and line).

Headers that are not in the tree (generated ones such as config.h,
banger-dbus.h) are outside the graph. A quoted include is resolved as the
compiler does: the including file's folder first, then the one file of that
name in the folders the including folder may use.
"""
import os
import re
import sys

SRC = os.path.join(os.environ.get('BANGER_SOURCE_ROOT',
                                  os.path.join(os.path.dirname(__file__), '..', '..')), 'src')
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)

# Folder (relative to src/) → the folders its files may include from,
# besides its own. Bottom layer first.
BELOW_SERVICE = {
    'service/core': ['common'],
    'service/store': ['common'],
    'service/imaging': ['service/core', 'common'],
    'service/oci': ['service/imaging', 'service/core', 'common'],
    'service/assets': ['service/oci', 'service/imaging', 'service/store', 'service/core',
                       'common'],
    'service/vmm': ['service/core', 'common'],
    'service/agent': ['agent/protocol', 'common'],
    'service/net': ['service/store', 'service/core', 'common'],
}
BELOW_SERVICE['service/vm'] = sorted(set(
    ['service/assets', 'service/vmm', 'service/agent', 'service/net']
    + [d for k in ('service/assets', 'service/vmm', 'service/agent', 'service/net')
       for d in BELOW_SERVICE[k]]))
BELOW_SERVICE['service/update'] = ['service/assets'] + BELOW_SERVICE['service/assets']
BELOW_SERVICE['service/doctor'] = sorted(set(
    ['service/assets', 'service/vmm', 'service/net', 'agent/protocol']
    + BELOW_SERVICE['service/assets'] + BELOW_SERVICE['service/vmm']
    + BELOW_SERVICE['service/net']))
BELOW_SERVICE['service'] = sorted(set(  # engine.c (the composition root)
    ['service/vm', 'service/update', 'service/doctor'] + BELOW_SERVICE['service/vm']
    + BELOW_SERVICE['service/update'] + BELOW_SERVICE['service/doctor']))
BELOW_SERVICE['service/dbus'] = ['service'] + BELOW_SERVICE['service']

ALLOWED = dict(BELOW_SERVICE)
ALLOWED.update({
    'common': [],
    'agent/protocol': [],
    'agent': ['agent/protocol'],
    'helper': ['common'],
    'cli': ['common'],
})
# main.c sits beside engine.c but is the top: it may use the D-Bus layer.
TOP_FILES = {'service/main.c': ['service/dbus'] + BELOW_SERVICE['service/dbus']}


def source_files():
    for root, dirs, files in os.walk(SRC):
        dirs[:] = [d for d in dirs if d not in ('gnome-shell',)]
        for f in files:
            if f.endswith(('.c', '.h')):
                yield os.path.relpath(os.path.join(root, f), SRC)


def main():
    files = sorted(source_files())
    by_name = {}
    for f in files:
        by_name.setdefault(os.path.basename(f), []).append(f)
    problems = []
    graph = {f: [] for f in files}
    for f in files:
        folder = os.path.dirname(f)
        if folder not in ALLOWED:
            problems.append(f'{f}: folder {folder} has no entry in this test\'s ALLOWED table')
            continue
        may_use = TOP_FILES.get(f, ALLOWED[folder])
        with open(os.path.join(SRC, f), encoding='utf-8') as fh:
            text = fh.read()
        for m in INCLUDE.finditer(text):
            name = m.group(1)
            line = text.count('\n', 0, m.start()) + 1
            if '/' in name:
                target = os.path.normpath(os.path.join(folder, name))
                candidates = [target] if target in graph else []
            else:
                same = os.path.join(folder, name)
                candidates = [same] if same in graph else by_name.get(name, [])
            if not candidates:
                continue  # a generated or system header
            usable = [c for c in candidates
                      if os.path.dirname(c) == folder or os.path.dirname(c) in may_use]
            if not usable:
                problems.append(f'{f}:{line}: includes "{name}" from '
                                f'{", ".join(sorted({os.path.dirname(c) for c in candidates}))}, '
                                f'which {folder} may not use (it is not below it)')
                continue
            if len(usable) > 1:
                problems.append(f'{f}:{line}: "{name}" is ambiguous: {", ".join(usable)}')
                continue
            graph[f].append((usable[0], line))

    # Cycles: depth-first search, reporting each cycle once by its members.
    seen_cycles = set()
    state = {}

    def visit(node, stack):
        state[node] = 1
        stack.append(node)
        for nxt, line in graph[node]:
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt):] + [nxt]
                key = frozenset(cycle)
                if key not in seen_cycles:
                    seen_cycles.add(key)
                    problems.append('include cycle: ' + ' → '.join(cycle))
            elif nxt not in state:
                visit(nxt, stack)
        stack.pop()
        state[node] = 2

    sys.setrecursionlimit(10000)
    for f in files:
        if f not in state:
            visit(f, [])

    edges = sum(len(v) for v in graph.values())
    if problems:
        print('\n'.join(problems))
        print(f'{len(problems)} problem(s) in {len(files)} files, {edges} includes')
        return 1
    print(f'ok: {len(files)} files, {edges} includes under src/, no cycle, no upward include')
    return 0


if __name__ == '__main__':
    sys.exit(main())
