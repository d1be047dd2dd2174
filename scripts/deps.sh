#!/usr/bin/env bash
# deps.sh: install the Debian 12 packages lkc's build, tests and benchmarks
# need, then libseccomp built with musl (scripts/install-libseccomp-musl.sh,
# which `make lkc` links), CRIU 4.x (scripts/install-criu.sh) and the
# Kubernetes CRI tools test/clients drives pods with, crictl and containerd
# 2.x (scripts/install-cri-tools.sh), and a single-node Kubernetes
# (kube-apiserver, kubelet, kubectl, etcd: scripts/install-kube.sh), each
# into a private prefix.
# Idempotent and fast when everything is already there: apt-get update/install
# only run if a package is missing. Must run as root.
#
# lxcfs and cgroup-tools (cgrulesengd) are the peers the /proc view and the
# rules engine are measured against; bench/ and the tests start their own
# lxcfs and cgrulesengd and stop them.
# docker.io is for test/clients, which starts a dockerd of its own; on a host
# with a running init, its postinst also starts the system's dockerd.
# Packages are installed with --no-install-recommends (podman's Recommends
# would pull buildah and dbus-user-session -> systemd; qemu's would pull the
# GTK/SDL GUI; the kernel's would pull firmware and apparmor).
# linux-image-amd64 is only there for a VM test (its /boot/vmlinuz-*); its
# postinst runs update-initramfs, which works non-interactively here.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
pkgs=(
  busybox-static runc crun iptables iproute2 libseccomp-dev pkg-config gcc
  musl-tools linux-libc-dev gperf dpkg-dev debian-archive-keyring make podman
  containerd qemu-system-x86 linux-image-amd64 kmod cpio conmon
  containernetworking-plugins docker.io lxcfs cgroup-tools
)

say() { echo "deps: $*"; }
die() { echo "deps: error: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root"
command -v apt-get >/dev/null && command -v dpkg-query >/dev/null || die "needs a Debian system (apt-get, dpkg-query)"

missing_pkgs() {
  local st
  st=$(dpkg-query -W -f='${Package} ${db:Status-Status}\n' "${pkgs[@]}" 2>/dev/null || true)
  for p in "${pkgs[@]}"; do
    grep -qx "$p installed" <<<"$st" || echo "$p"
  done
}

mapfile -t missing < <(missing_pkgs)
if [ ${#missing[@]} -eq 0 ]; then
  say "packages: all ${#pkgs[@]} already installed"
else
  export DEBIAN_FRONTEND=noninteractive
  log=$(mktemp /tmp/lkc-deps.XXXXXX.log)
  # Other jobs may be running apt/dpkg concurrently: wait for the lock
  # instead of failing. Keep existing config files on upgrades.
  apt_opts=(
    -q -y --no-install-recommends
    -o DPkg::Lock::Timeout=900
    -o Dpkg::Options::=--force-confdef
    -o Dpkg::Options::=--force-confold
  )
  say "apt-get update"
  apt-get -q -o DPkg::Lock::Timeout=900 update >"$log" 2>&1 ||
    { tail -20 "$log" >&2; die "apt-get update failed (full log: $log)"; }
  say "installing: ${missing[*]}"
  apt-get "${apt_opts[@]}" install "${missing[@]}" >>"$log" 2>&1 ||
    { tail -40 "$log" >&2; die "apt-get install failed (full log: $log)"; }
  mapfile -t still < <(missing_pkgs)
  [ ${#still[@]} -eq 0 ] || die "still not installed after apt-get: ${still[*]} (log: $log)"
  rm -f "$log"
  say "packages: installed ${#missing[@]}, all ${#pkgs[@]} present"
fi

# Binaries the tests call directly (catches a package that installed but is
# broken, e.g. diverted or removed by hand).
for b in busybox runc crun iptables ip pkg-config gcc musl-gcc gperf dpkg-source make podman containerd \
  qemu-system-x86_64 modprobe cpio conmon ctr containerd-shim-runc-v2 dockerd; do
  command -v "$b" >/dev/null || die "$b not found in PATH after install"
done
ls /boot/vmlinuz-* >/dev/null 2>&1 || die "no /boot/vmlinuz-* although linux-image-amd64 is installed"
say "tools: ok"

say "libseccomp (musl): running install-libseccomp-musl.sh"
"$here/install-libseccomp-musl.sh" || die "install-libseccomp-musl.sh failed"
say "criu: running install-criu.sh"
"$here/install-criu.sh" || die "install-criu.sh failed"
say "cri tools: running install-cri-tools.sh"
"$here/install-cri-tools.sh" || die "install-cri-tools.sh failed"
say "kubernetes: running install-kube.sh"
"$here/install-kube.sh" || die "install-kube.sh failed"
say "done"
