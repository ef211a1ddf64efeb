#!/bin/sh
# banger installer: downloads the latest signed banger release, checks it the
# way `banger update` does, installs it, and runs `sudo banger system install`.
#
#   curl -fsSL https://banger.dev/install.sh | sh
#
# It runs as you. It asks for sudo only to write the programs into
# /usr/local and to run `banger system install`, and says why before asking.
#
# Environment (docs/update.md, "The installer"):
#   BANGER_INSTALL_NONINTERACTIVE=1   no questions; sudo -n (fails instead of
#                                     asking for a password). For CI.
#   BANGER_INSTALL_VERSION=X.Y.Z      this version instead of the latest.
#   BANGER_RELEASE_MANIFEST_URL=URL   another manifest (a mirror; HTTPS, or
#                                     plain HTTP to a loopback address only).
#   BANGER_INSTALL_PREFIX=DIR         install under DIR instead of /usr/local.
#                                     The release's units and bus files name
#                                     /usr/local: other prefixes are for tests.
#   BANGER_INSTALL_TOML=FILE          where the install record goes (default:
#                                     the release's sysconfdir, /usr/local/etc
#                                     for /usr/local, /etc for /usr).
#   BANGER_INSTALL_SKIP_SYSTEM_INSTALL=1
#                                     do not run `banger system install` (tests,
#                                     or to run it yourself later).
#   BANGER_INSTALL_PUBKEY_FILE=FILE   TEST ONLY: trust FILE's key instead of the
#                                     release key below. Never set it otherwise.
#
# No shell string is ever evaluated: every program is run with its arguments.

set -eu

DEFAULT_MANIFEST_URL='https://banger.dev/releases/manifest.json'

# The release public key (ECDSA P-256, PEM): the same key bangerd is built
# with (meson -Drelease_pubkey). The release tooling writes it between the
# two marker lines; a copy of this script without it refuses to install.
# ---- BEGIN RELEASE PUBLIC KEY ----
RELEASE_PUBKEY=''
# ---- END RELEASE PUBLIC KEY ----

MANIFEST_URL=${BANGER_RELEASE_MANIFEST_URL:-$DEFAULT_MANIFEST_URL}
WANT_VERSION=${BANGER_INSTALL_VERSION:-}
PREFIX=${BANGER_INSTALL_PREFIX:-/usr/local}
BINDIR=$PREFIX/bin
LIBEXECDIR=$PREFIX/libexec
# meson's sysconfdir for that prefix: where bangerd-root reads helper.conf
# and keeps install.toml.
case $PREFIX in
  /usr) SYSCONFDIR=/etc ;;
  *) SYSCONFDIR=$PREFIX/etc ;;
esac
INSTALL_TOML=${BANGER_INSTALL_TOML:-$SYSCONFDIR/banger/install.toml}
NONINTERACTIVE=${BANGER_INSTALL_NONINTERACTIVE:-0}
SKIP_SYSTEM_INSTALL=${BANGER_INSTALL_SKIP_SYSTEM_INSTALL:-0}

say() { printf '%s\n' "$*"; }
warn() { printf 'banger installer: %s\n' "$*" >&2; }
die() {
  warn "$*"
  exit 1
}

WORK=
cleanup() {
  if [ -n "$WORK" ]; then
    rm -rf -- "$WORK"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- what we need ----

need() {
  command -v "$1" >/dev/null 2>&1 || die "this installer needs '$1'; install it and run me again"
}
for tool in openssl sha256sum tar gzip awk sed mktemp install mv id uname; do
  need "$tool"
done
if command -v curl >/dev/null 2>&1; then
  FETCH=curl
elif command -v wget >/dev/null 2>&1; then
  FETCH=wget
else
  die "this installer needs curl or wget; install one and run me again"
fi

case $(uname -m) in
  x86_64) ;;
  *) die "banger releases are built for x86_64 only (this machine is $(uname -m))" ;;
esac

# ---- the key ----

WORK=$(mktemp -d "${TMPDIR:-/tmp}/banger-install.XXXXXXXX")
PUBKEY=$WORK/release-key.pem
if [ -n "${BANGER_INSTALL_PUBKEY_FILE:-}" ]; then
  {
    say '!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!'
    say '!! WARNING: BANGER_INSTALL_PUBKEY_FILE is set. This is for banger'"'"'s TESTS ONLY.'
    say '!! The release key built into this script is NOT used: whoever holds the'
    say "!! private half of $BANGER_INSTALL_PUBKEY_FILE"
    say '!! can make this installer put any program on your system, run as root.'
    say '!! Unset BANGER_INSTALL_PUBKEY_FILE unless you are running banger'"'"'s tests.'
    say '!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!'
  } >&2
  [ -f "$BANGER_INSTALL_PUBKEY_FILE" ] || die "BANGER_INSTALL_PUBKEY_FILE: no such file"
  cp -- "$BANGER_INSTALL_PUBKEY_FILE" "$PUBKEY"
elif [ -n "$RELEASE_PUBKEY" ]; then
  printf '%s\n' "$RELEASE_PUBKEY" >"$PUBKEY"
else
  die "this copy of install.sh carries no release key, so it cannot check a release; get install.sh from a banger release"
fi
openssl pkey -pubin -in "$PUBKEY" -noout 2>/dev/null \
  || die "the release key is not a PEM public key"

# ---- downloads: HTTPS, or plain HTTP to loopback only (as banger update) ----

is_loopback_http() {
  case $1 in
    http://127.*/* | http://127.* | http://localhost/* | http://localhost:* | http://localhost | \
      'http://[::1]'/* | 'http://[::1]':* | 'http://[::1]') return 0 ;;
  esac
  return 1
}

check_url() {
  case $1 in
    *[[:space:]\"\'\`\\]*) die "refusing $1: it contains spaces, quotes or backslashes" ;;
    https://*) return 0 ;;
  esac
  is_loopback_http "$1" && return 0
  die "refusing $1: releases come over HTTPS (plain HTTP only from loopback)"
}

# fetch URL FILE
fetch() {
  check_url "$1"
  if [ "$FETCH" = curl ]; then
    if is_loopback_http "$1"; then
      curl -fsS --max-redirs 0 -o "$2" -- "$1"
    else
      curl -fsS --proto =https --proto-redir =https -L -o "$2" -- "$1"
    fi
  else
    wget -q --max-redirect=0 -O "$2" -- "$1"
  fi || die "cannot download $1"
}

# resolve REF: REF relative to the manifest's URL (as banger update does).
resolve() {
  case $1 in
    *://*) printf '%s\n' "$1" ;;
    /*) printf '%s\n' "$MANIFEST_URL" | sed -e 's|^\([a-z]*://[^/]*\).*$|\1|' -e "s|\$|$1|" ;;
    *) printf '%s/%s\n' "${MANIFEST_URL%/*}" "$1" ;;
  esac
}

# ---- the manifest (not signed: it only says where to look) ----

# A small JSON reader in awk: prints one "path<TAB>value" line per string or
# number, the path made of the keys ("/versions/0.2.0/tarball"). Strings with
# \u escapes or control characters are refused; nothing here is evaluated.
json_flatten() {
  awk '
  function fail(m) { printf "bad manifest: %s\n", m > "/dev/stderr"; bad = 1; exit 1 }
  function ws() { while (pos <= n && index(" \t\r\n", substr(s, pos, 1)) > 0) pos++ }
  function str(   out, c) {
    if (substr(s, pos, 1) != "\"") fail("string expected")
    pos++; out = ""
    while (pos <= n) {
      c = substr(s, pos, 1)
      if (c == "\"") { pos++; return out }
      if (c == "\\") {
        pos++; c = substr(s, pos, 1)
        if (c == "n") c = "\n"; else if (c == "t") c = "\t"
        else if (c != "\"" && c != "\\" && c != "/") fail("unsupported escape")
      }
      out = out c; pos++
    }
    fail("unterminated string")
  }
  function value(path,   c, k, i, start) {
    ws(); c = substr(s, pos, 1)
    if (c == "{") {
      pos++; ws()
      if (substr(s, pos, 1) == "}") { pos++; return }
      for (;;) {
        ws(); k = str(); ws()
        if (substr(s, pos, 1) != ":") fail("colon expected")
        pos++; value(path "/" k); ws(); c = substr(s, pos, 1); pos++
        if (c == "}") return
        if (c != ",") fail("comma expected")
      }
    } else if (c == "[") {
      pos++; ws(); i = 0
      if (substr(s, pos, 1) == "]") { pos++; return }
      for (;;) {
        value(path "/" i++); ws(); c = substr(s, pos, 1); pos++
        if (c == "]") return
        if (c != ",") fail("comma expected")
      }
    } else if (c == "\"") {
      printf "%s\t%s\n", path, str()
    } else {
      start = pos
      while (pos <= n && index(",}] \t\r\n", substr(s, pos, 1)) == 0) pos++
      printf "%s\t%s\n", path, substr(s, start, pos - start)
    }
  }
  { s = s $0 "\n" }
  END {
    if (bad) exit 1
    n = length(s); pos = 1
    if (n > 1048576) fail("larger than 1 MiB")
    if (s ~ /[\001-\010\013\014\016-\037]/) fail("control characters")
    value(""); ws()
    if (pos <= n) fail("trailing data")
  }'
}

# manifest_get PATH: the value at PATH, or nothing.
manifest_get() {
  awk -F '\t' -v p="$1" '$1 == p { print $2; exit }' "$WORK/manifest.flat"
}

say "Fetching the release manifest from $MANIFEST_URL"
fetch "$MANIFEST_URL" "$WORK/manifest.json"
json_flatten <"$WORK/manifest.json" >"$WORK/manifest.flat" || die "$MANIFEST_URL is not a release manifest"
[ "$(manifest_get /schema)" = 1 ] || die "$MANIFEST_URL: unknown manifest schema"

if [ -n "$WANT_VERSION" ]; then
  VERSION=${WANT_VERSION#v}
else
  VERSION=$(manifest_get /latest)
fi
case $VERSION in
  '' | *[!0-9.]* | .* | *. | *..*) die "'$VERSION' is not a version (X.Y.Z)" ;;
esac
[ "$(printf '%s\n' "$VERSION" | awk -F. '{ print NF }')" = 3 ] || die "'$VERSION' is not a version (X.Y.Z)"
TARBALL_REF=$(manifest_get "/versions/$VERSION/tarball")
SUMS_REF=$(manifest_get "/versions/$VERSION/sha256sums")
SIG_REF=$(manifest_get "/versions/$VERSION/signature")
if [ -z "$TARBALL_REF" ] || [ -z "$SUMS_REF" ] || [ -z "$SIG_REF" ]; then
  die "the manifest has no release $VERSION"
fi
TARBALL_NAME=banger-$VERSION-x86_64.tar.gz

# ---- verify: the signature over SHA256SUMS first, then the tarball's hash ----

say "Downloading banger $VERSION"
fetch "$(resolve "$SUMS_REF")" "$WORK/SHA256SUMS"
fetch "$(resolve "$SIG_REF")" "$WORK/SHA256SUMS.sig"
openssl dgst -sha256 -verify "$PUBKEY" -signature "$WORK/SHA256SUMS.sig" "$WORK/SHA256SUMS" \
  >/dev/null 2>&1 || die "SHA256SUMS is not signed by the release key: refusing to install"
# The signed list must name the tarball as this version: a manifest cannot
# pass an old signed tarball off as a new version.
WANT_SUM=$(awk -v f="$TARBALL_NAME" '
  ($2 == f || $2 == "*" f) && $1 ~ /^[0-9a-f]+$/ && length($1) == 64 { print $1; exit }' \
  "$WORK/SHA256SUMS")
[ -n "$WANT_SUM" ] || die "the signed SHA256SUMS does not list $TARBALL_NAME"
fetch "$(resolve "$TARBALL_REF")" "$WORK/$TARBALL_NAME"
GOT_SUM=$(sha256sum "$WORK/$TARBALL_NAME" | awk '{ print $1 }')
[ "$GOT_SUM" = "$WANT_SUM" ] \
  || die "$TARBALL_NAME has sha256 $GOT_SUM, but the signed SHA256SUMS says $WANT_SUM"

# ---- unpack: exactly the release's regular files ----

TOP=banger-$VERSION
tar -tvzf "$WORK/$TARBALL_NAME" >"$WORK/listing" || die "$TARBALL_NAME is not a tar.gz archive"
awk -v top="$TOP" '
  BEGIN { want[top "/bangerd"]; want[top "/banger"]; want[top "/bangerd-root"]
          want[top "/banger-agent"]; want[top "/BUILDINFO"] }
  {
    name = $NF
    if (substr($1, 1, 1) == "d" && (name == top || name == top "/")) next
    if (substr($1, 1, 1) != "-" || !(name in want) || (name in seen)) { bad = 1; exit }
    seen[name]
  }
  END { if (bad) exit 1; for (w in want) if (!(w in seen)) exit 1 }' "$WORK/listing" \
  || die "$TARBALL_NAME does not hold exactly bangerd, banger, bangerd-root, banger-agent and BUILDINFO"
mkdir "$WORK/unpacked"
tar -xzf "$WORK/$TARBALL_NAME" -C "$WORK/unpacked" --no-same-owner
for f in bangerd banger bangerd-root banger-agent BUILDINFO; do
  if [ ! -f "$WORK/unpacked/$TOP/$f" ] || [ -L "$WORK/unpacked/$TOP/$f" ]; then
    die "$TOP/$f is not a regular file"
  fi
  # Each file against its own signed line, as bangerd and bangerd-root
  # check them (docs/update.md): a release without per-file lines is refused.
  WANT_FILE_SUM=$(awk -v f="$TOP/$f" '
    ($2 == f || $2 == "*" f) && $1 ~ /^[0-9a-f]+$/ && length($1) == 64 { print $1; exit }' \
    "$WORK/SHA256SUMS")
  [ -n "$WANT_FILE_SUM" ] || die "the signed SHA256SUMS does not list $TOP/$f"
  GOT_FILE_SUM=$(sha256sum "$WORK/unpacked/$TOP/$f" | awk '{ print $1 }')
  [ "$GOT_FILE_SUM" = "$WANT_FILE_SUM" ] \
    || die "$TOP/$f has sha256 $GOT_FILE_SUM, but the signed SHA256SUMS says $WANT_FILE_SUM"
done
buildinfo() {
  awk -F= -v k="$1" '$1 == k { print $2; exit }' "$WORK/unpacked/$TOP/BUILDINFO"
}
[ "$(buildinfo version)" = "$VERSION" ] || die "BUILDINFO says version $(buildinfo version), not $VERSION"
COMMIT=$(buildinfo commit)
BUILT_AT=$(buildinfo built_at)
printf '%s\n' "$COMMIT" | grep -Eqx '[0-9a-f]{7,40}(-dirty)?|unknown' || die "BUILDINFO: bad commit"
printf '%s\n' "$BUILT_AT" | grep -Eqx '[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z' \
  || die "BUILDINFO: bad built_at"
say "banger $VERSION: signature and checksum verified"

# ---- sudo, explained first ----

# writable DIR: can we create DIR (or its nearest existing parent) ourselves?
writable() {
  d=$1
  while [ ! -d "$d" ]; do
    d=$(dirname -- "$d")
  done
  [ -w "$d" ]
}

NEED_ROOT_FOR_FILES=0
for d in "$BINDIR" "$LIBEXECDIR/banger" "$(dirname -- "$INSTALL_TOML")"; do
  writable "$d" || NEED_ROOT_FOR_FILES=1
done
NEED_ROOT_FOR_SYSTEM=1
[ "$SKIP_SYSTEM_INSTALL" = 1 ] && NEED_ROOT_FOR_SYSTEM=0

SUDO=
if [ "$(id -u)" != 0 ] && { [ $NEED_ROOT_FOR_FILES = 1 ] || [ $NEED_ROOT_FOR_SYSTEM = 1 ]; }; then
  say ''
  say 'banger needs administrator rights (sudo) for this, and only this:'
  if [ $NEED_ROOT_FOR_FILES = 1 ]; then
    say "  - to copy its four programs into $BINDIR and $LIBEXECDIR,"
    say "    and to write $INSTALL_TOML (what was installed), which only root may write;"
  fi
  if [ $NEED_ROOT_FOR_SYSTEM = 1 ]; then
    # shellcheck disable=SC2016 # backquotes shown, not run
    say '  - to run `banger system install`, which installs the privileged helper'
    say '    bangerd-root (a system service that creates the network bridge and taps'
    say '    for your VMs), its D-Bus and polkit files, creates the group banger, adds'
    say '    you to it, and lets your VMs keep running after you log out (linger).'
  fi
  say 'Everything else (download, checks) ran as you. Nothing else will run as root.'
  if [ "$NONINTERACTIVE" = 1 ]; then
    SUDO='sudo -n'
    say 'BANGER_INSTALL_NONINTERACTIVE=1: using sudo without a password prompt (sudo -n).'
    need sudo
  else
    need sudo
    SUDO=sudo
    if ! { : </dev/tty >/dev/tty; } 2>/dev/null; then
      die "no terminal to ask on; set BANGER_INSTALL_NONINTERACTIVE=1 to go on without questions"
    fi
    printf 'Continue? sudo will ask for your password. [y/N] ' >/dev/tty
    read -r answer </dev/tty || answer=
    case $answer in
      y | Y | yes | YES | Yes) ;;
      *) die "nothing was installed" ;;
    esac
  fi
fi

# as_root PROGRAM ARGS...: PROGRAM with sudo when we need it.
as_root() {
  if [ -n "$SUDO" ]; then
    # shellcheck disable=SC2086 # "sudo" or "sudo -n", two fixed words
    $SUDO -- "$@"
  else
    "$@"
  fi
}
files_as_root() {
  if [ $NEED_ROOT_FOR_FILES = 1 ]; then
    as_root "$@"
  else
    "$@"
  fi
}

# ---- install: each file next to its place, then renamed over it ----

# place SRC DIR NAME
# shellcheck disable=SC2015 # any step failing is the error
place() {
  files_as_root install -d -m 0755 -- "$2" \
    && files_as_root install -m 0755 -- "$1" "$2/.$3.new" \
    && files_as_root mv -f -- "$2/.$3.new" "$2/$3" \
    || die "cannot install $2/$3${SUDO:+ (did sudo refuse?)}"
}
place "$WORK/unpacked/$TOP/bangerd" "$BINDIR" bangerd
place "$WORK/unpacked/$TOP/banger" "$BINDIR" banger
place "$WORK/unpacked/$TOP/bangerd-root" "$LIBEXECDIR" bangerd-root
place "$WORK/unpacked/$TOP/banger-agent" "$LIBEXECDIR/banger" banger-agent

NOW=$(date -u +%Y-%m-%dT%H:%M:%SZ)
cat >"$WORK/install.toml" <<EOF
# What banger's installer installed (banger update rewrites this file).
version = "$VERSION"
commit = "$COMMIT"
built_at = "$BUILT_AT"
installed_at = "$NOW"
installed_by_uid = $(id -u)
EOF
# shellcheck disable=SC2015 # any step failing is the error
files_as_root install -d -m 0755 -- "$(dirname -- "$INSTALL_TOML")" \
  && files_as_root install -m 0644 -- "$WORK/install.toml" "$INSTALL_TOML" \
  || die "cannot write $INSTALL_TOML"
say "Installed banger $VERSION into $BINDIR and $LIBEXECDIR"

if [ "$SKIP_SYSTEM_INSTALL" = 1 ]; then
  # shellcheck disable=SC2016 # backquotes shown, not run
  say 'BANGER_INSTALL_SKIP_SYSTEM_INSTALL=1: not running `banger system install`;'
  say "run \`sudo $BINDIR/banger system install\` yourself to finish."
  exit 0
fi
say "Running: sudo $BINDIR/banger system install"
as_root "$BINDIR/banger" system install || die "\`banger system install\` failed (above)"
