#!/bin/sh
# The whole test suite, as CI runs it: install what is missing, build with
# --werror, run every test, then build again with ASan/UBSan (and
# LeakSanitizer) and run every test once more. Fails if any test fails or is
# skipped. Run as root from the source tree.
set -eu
cd "$(dirname "$0")/.."
src=$(pwd)

./tests/setup-debian.sh

build_and_test() {
  dir=$1
  shift
  if [ ! -f "$dir/build.ninja" ]; then
    meson setup "$dir" --werror "$@"
  fi
  ninja -C "$dir"
  meson test -C "$dir" --print-errorlogs --num-processes 2 ${BANGER_TEST_ARGS:-}
  # A skipped test is a test that did not run: fail, as power-profiles-daemon's CI does.
  /usr/bin/python3 "$src/tests/check-no-skips.py" "$dir/meson-logs/testlog.json"
}

echo "=== build and test (--werror) ==="
build_and_test build

echo "=== build and test under ASan/UBSan ==="
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:strict_string_checks=1"
export LSAN_OPTIONS="suppressions=$src/tests/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
build_and_test build-asan -Db_sanitize=address,undefined -Db_lundef=false

echo "=== all tests passed ==="
