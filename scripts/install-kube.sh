#!/usr/bin/env bash
# install-kube.sh: build the single-node Kubernetes test/clients runs a Pod
# on lkc with (TestKubernetes): kube-apiserver, kubelet and kubectl from
# k8s.io/kubernetes, and etcd from go.etcd.io/etcd/server/v3, into
#
#   /opt/lkc/kube-<v>/bin/{kube-apiserver,kubelet,kubectl,etcd}
#
# k8s.io/kubernetes cannot be built with `go install PKG@v`: its go.mod
# points its staging modules (k8s.io/api, k8s.io/client-go, ...) at
# ./staging with replace directives. scripts/kube/kubernetes is a module
# that requires it and replaces each staging module with its published
# release; scripts/kube/etcd is etcd's own main. Their go.sum pin every
# module, so each build takes the same sources from the module proxy.
#
# As install-cri-tools.sh: a prefix whose binaries are there and run is
# kept, so set-up and CI build them once per version; the module and build
# caches of a build are its own and removed afterwards (the build takes
# some 2.5 GB and ~10 min of both CPUs here). The binaries are static
# (CGO_ENABLED=0). Nothing is put on PATH.
#
# Environment:
#   LKC_KUBE_PREFIX   install prefix (default /opt/lkc/kube-v1.37.2)
#   LKC_KUBE_FORCE=1  rebuild even when the binaries are there
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
version=v1.37.2
prefix=${LKC_KUBE_PREFIX:-/opt/lkc/kube-$version}
prefix=${prefix%/}
export PATH=/usr/local/go/bin:$PATH

say() { echo "install-kube: $*"; }
die() { echo "install-kube: error: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root"
command -v go >/dev/null || die "go not found (looked in PATH and /usr/local/go/bin)"
grep -q "k8s.io/kubernetes $version\$" "$here/kube/kubernetes/go.mod" ||
  die "scripts/kube/kubernetes/go.mod does not require k8s.io/kubernetes $version"

present() {
  [ "${LKC_KUBE_FORCE:-}" = 1 ] && return 1
  "$prefix/bin/kube-apiserver" --version >/dev/null 2>&1 &&
    "$prefix/bin/kubelet" --version >/dev/null 2>&1 &&
    "$prefix/bin/kubectl" version --client >/dev/null 2>&1 &&
    "$prefix/bin/etcd" --version >/dev/null 2>&1
}
if present; then
  say "kubernetes $version: already in $prefix"
  exit 0
fi

mkdir -p "$(dirname "$prefix")"
work=$(mktemp -d "$(dirname "$prefix")/.build.XXXXXX")
trap 'rm -rf "$work"' EXIT
# What `kubelet --version` and the node's status report (make would set
# them from git).
v=k8s.io/component-base/version
ldflags="-s -w -X $v.gitVersion=$version -X $v.gitMajor=1 -X $v.gitMinor=37 -X $v.gitTreeState=clean"
ldflags="$ldflags -X k8s.io/client-go/pkg/version.gitVersion=$version"
build() {
  (cd "$1" && GOMODCACHE=$work/mod GOCACHE=$work/cache CGO_ENABLED=0 GOFLAGS="-buildvcs=false -modcacherw -mod=readonly" \
    go build -trimpath -ldflags "$ldflags" -o "$work/out/bin/" "${@:2}") || die "go build ${*:2} failed"
}
say "kubernetes $version: building kube-apiserver, kubelet, kubectl and etcd into $prefix"
build "$here/kube/kubernetes" k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kubectl
build "$here/kube/etcd" .
chmod 0755 "$work/out"
rm -rf "$prefix"
mv "$work/out" "$prefix"
present || die "the binaries in $prefix do not run"
say "done"
