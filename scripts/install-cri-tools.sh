#!/usr/bin/env bash
# install-cri-tools.sh: build the Kubernetes CRI tools test/clients drives
# pods with, which Debian 12 does not package: crictl (cri-tools) and
# containerd 2.x (containerd and its runc v2 shim), beside Debian's
# containerd 1.6. Each is built with `go install` from the Go module proxy
# at a pinned version into a prefix named by that version:
#
#   /opt/lkc/cri/crictl-<v>/bin/crictl
#   /opt/lkc/cri/containerd-<v>/bin/containerd
#   /opt/lkc/cri/containerd-<v>/bin/containerd-shim-runc-v2
#   /opt/lkc/cri/containerd-<v>/bin/ctr
#   /opt/lkc/cri/containerd-<r>/bin/{containerd,containerd-shim-runc-v2}
#
# <r> is the last containerd that restores a checkpoint archive through the
# CRI's CreateContainer (2.0 to 2.3; 2.4 removed it for KEP-5823's
# RestorePod); test/clients restores pods with it.
#
# A prefix whose binaries are there and run is kept, so set-up and CI build
# them once per version. The binaries are static (CGO_ENABLED=0) and
# containerd leaves out its btrfs snapshotter (cgo only); the tests use
# overlayfs. Nothing is put on PATH: the tests find the tools in these
# prefixes, and a host's own containerd 2.x stays untouched.
#
# Environment:
#   LKC_CRI_PREFIX          install prefix (default /opt/lkc/cri)
#   LKC_CRICTL_VERSION      cri-tools version (default v1.37.0)
#   LKC_CONTAINERD2_VERSION containerd 2.x version (default v2.4.2)
#   LKC_CONTAINERD_RESTORE_VERSION  the restoring containerd (default
#                           v2.3.7; "none" builds none)
#   LKC_CRI_FORCE=1         rebuild even when the binaries are there
set -euo pipefail

prefix=${LKC_CRI_PREFIX:-/opt/lkc/cri}
prefix=${prefix%/}
crictl_v=${LKC_CRICTL_VERSION:-v1.37.0}
ctd_v=${LKC_CONTAINERD2_VERSION:-v2.4.2}
restore_v=${LKC_CONTAINERD_RESTORE_VERSION:-v2.3.7}
export PATH=/usr/local/go/bin:$PATH

say() { echo "install-cri-tools: $*"; }
die() { echo "install-cri-tools: error: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root"
command -v go >/dev/null || die "go not found (looked in PATH and /usr/local/go/bin)"

# present DIR CMD...: DIR holds each CMD and each one answers --version.
present() {
  local dir=$1 c
  shift
  [ "${LKC_CRI_FORCE:-}" = 1 ] && return 1
  for c in "$@"; do
    "$dir/bin/$c" --version >/dev/null 2>&1 || return 1
  done
}

# work holds the module and build caches of this run (about 1.5 GB), kept
# apart from the user's and removed at the end: the binaries are what is
# cached, and they are rebuilt only for a new version.
work=
cleanup() { [ -z "$work" ] || rm -rf "$work"; }
trap cleanup EXIT

# build DIR LDFLAGS PKG...: go install each PKG into a scratch directory,
# then swap it in as DIR/bin, so an interrupted build leaves no half
# prefix behind.
build() {
  local dir=$1 ldflags=$2
  shift 2
  mkdir -p "$prefix"
  [ -n "$work" ] || work=$(mktemp -d "$prefix/.build.XXXXXX")
  rm -rf "$work/out"
  GOMODCACHE=$work/mod GOCACHE=$work/cache CGO_ENABLED=0 GOBIN=$work/out/bin GOFLAGS="-buildvcs=false -modcacherw" \
    go install -trimpath -tags no_btrfs -ldflags "-s -w $ldflags" "$@" ||
    die "go install $* failed"
  chmod 0755 "$work/out"
  rm -rf "$dir"
  mv "$work/out" "$dir"
}

crictl_dir=$prefix/crictl-$crictl_v
if present "$crictl_dir" crictl; then
  say "crictl $crictl_v: already in $crictl_dir"
else
  say "crictl $crictl_v: building into $crictl_dir"
  build "$crictl_dir" "-X sigs.k8s.io/cri-tools/pkg/version.Version=$crictl_v" \
    "sigs.k8s.io/cri-tools/cmd/crictl@$crictl_v"
fi

mod=github.com/containerd/containerd/v2
ctd_dir=$prefix/containerd-$ctd_v
if present "$ctd_dir" containerd containerd-shim-runc-v2 ctr; then
  say "containerd $ctd_v: already in $ctd_dir"
else
  say "containerd $ctd_v: building into $ctd_dir"
  build "$ctd_dir" "-X $mod/version.Version=$ctd_v -X $mod/version.Package=$mod" \
    "$mod/cmd/containerd@$ctd_v" "$mod/cmd/containerd-shim-runc-v2@$ctd_v" "$mod/cmd/ctr@$ctd_v"
fi
if [ "$restore_v" != none ]; then
  restore_dir=$prefix/containerd-$restore_v
  if present "$restore_dir" containerd containerd-shim-runc-v2; then
    say "containerd $restore_v: already in $restore_dir"
  else
    say "containerd $restore_v (restores through the CRI): building into $restore_dir"
    build "$restore_dir" "-X $mod/version.Version=$restore_v -X $mod/version.Package=$mod" \
      "$mod/cmd/containerd@$restore_v" "$mod/cmd/containerd-shim-runc-v2@$restore_v"
  fi
fi
say "done"
