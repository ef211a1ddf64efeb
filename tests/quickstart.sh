#!/bin/sh
# As root on Debian 12: installs what is missing, builds, and boots a sandbox
# from the built-in default image (minimal) and kernel (the host's), running
# `uname -a` in it. On a machine without systemd or a system bus it brings
# up a private system bus, polkitd and the helper itself (and says so).
set -eu
cd "$(dirname "$0")/.."
./tests/setup-debian.sh
[ -f build/build.ninja ] || meson setup build
ninja -C build
exec /usr/bin/python3 tests/lib/quickstart.py vm run -- uname -a
