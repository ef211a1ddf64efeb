#!/bin/sh
# Installs what banger needs to build and to run its test suite on Debian 12,
# skipping anything already installed. Run as root. Used by run-all.sh and
# quickstart.sh; safe to run again.
set -eu

# openssh-server and openssh-sftp-server: `ssh NAME.vm` to a VM whose image
# has no sshd runs this host's sshd program (as you, in inetd mode) and ships
# its sftp-server into the guest (docs/cli.md, "VMs without sshd"). Only the
# programs are used; on a host that runs systemd, installing openssh-server
# also enables its ssh service: `systemctl disable --now ssh` if unwanted.

packages="
  gcc pkg-config meson ninja-build gettext git libxml2-utils
  libglib2.0-dev libglib2.0-bin libsoup-3.0-dev libjson-glib-dev
  libpolkit-gobject-1-dev libpolkit-agent-1-dev polkitd libnm-dev libsqlite3-dev
  libnl-3-dev libnl-route-3-dev libnftables-dev libarchive-dev libext2fs-dev
  libgnutls28-dev libsystemd-dev liblz4-dev liblzma-dev libzstd-dev
  dbus dbus-daemon systemd iproute2 nftables e2fsprogs cpio kmod comerr-dev
  qemu-system-x86 qemu-utils linux-image-cloud-amd64 busybox-static debootstrap systemd-container
  openssh-client openssh-server openssh-sftp-server rsync socat iputils-ping jq bind9-dnsutils openssl
  python3-gi python3-dbus python3-dbusmock python3-jwt python3-cryptography python3-yaml
  docker-registry skopeo umoci apache2-utils
  zsh fish
  gnome-shell gnome-shell-common gjs
  clang libclang-rt-14-dev
"

missing=""
for p in $packages; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
    missing="$missing $p"
  fi
done

if [ -n "$missing" ]; then
  echo "banger setup: installing:$missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  # --no-install-recommends: qemu's recommends pull in a whole GTK desktop.
  # shellcheck disable=SC2086
  apt-get install -y -q --no-install-recommends $missing
else
  echo "banger setup: all build and test dependencies present"
fi
