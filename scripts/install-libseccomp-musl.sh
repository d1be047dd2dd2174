#!/usr/bin/env bash
# install-libseccomp-musl.sh: build libseccomp with musl from Debian's source
# into a private prefix (default /opt/lkc/libseccomp-musl, override with
# $LKC_SECCOMP_PREFIX), which `make lkc` links against.
#
# lkc is linked statically against musl (Makefile, docs/kernel.md), and
# Debian ships libseccomp.a only built against glibc. So the same source
# Debian built its libseccomp-dev from (same version, Debian's patches, such
# as the syscall table update) is fetched with `apt-get source` and built
# with musl-gcc. apt checks the chain: the suite's InRelease against
# debian-archive-keyring, the Sources index against InRelease, the .dsc and
# its tarballs against Sources; dpkg-source checks the tarballs against the
# .dsc again when it unpacks them. The system's apt sources, lists, cache
# and config are never touched: apt runs against a throw-away sources
# list/state dir (as scripts/install-criu.sh does).
#
# The prefix holds everything the musl build needs besides musl itself:
#   include/  seccomp.h and the kernel's uapi headers (linux-libc-dev),
#             copied, since musl-gcc only searches musl's own headers
#   lib/      libseccomp.a and pkgconfig/libseccomp.pc
# Idempotent: if the prefix was built from the libseccomp source version of
# the installed libseccomp-dev it only verifies.
# Environment:
#   LKC_SECCOMP_PREFIX   install prefix (default /opt/lkc/libseccomp-musl)
#   LKC_SECCOMP_MIRROR   Debian mirror URL (default http://deb.debian.org/debian)
#   LKC_SECCOMP_FORCE=1  rebuild even if the prefix is up to date
set -euo pipefail

prefix=${LKC_SECCOMP_PREFIX:-/opt/lkc/libseccomp-musl}
prefix=${prefix%/}
mirror=${LKC_SECCOMP_MIRROR:-http://deb.debian.org/debian}
mirror=${mirror%/}
marker=.lkc-libseccomp # the source version built; marks a prefix this script owns
keyring=/usr/share/keyrings/debian-archive-keyring.gpg

say() { echo "install-libseccomp-musl: $*"; }
die() { echo "install-libseccomp-musl: error: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root"
case $prefix in
  /*) ;;
  *) die "LKC_SECCOMP_PREFIX must be an absolute path (got '$prefix')" ;;
esac
[ "$prefix" != /usr ] && [ "$prefix" != /opt ] || die "refusing prefix '$prefix'"
[ "$(dpkg --print-architecture)" = amd64 ] || die "only amd64 is supported"
for t in musl-gcc make gperf dpkg-source; do
  command -v "$t" >/dev/null || die "$t not found (scripts/deps.sh installs it)"
done
[ -f /usr/include/linux/seccomp.h ] || die "kernel headers not found in /usr/include/linux (apt-get install linux-libc-dev)"
[ -r "$keyring" ] || die "$keyring missing (apt-get install debian-archive-keyring)"

# The version to build: the one Debian's glibc build (libseccomp-dev) has,
# so that both builds of lkc compile filters with the same libseccomp.
want=$(dpkg-query -W -f='${source:Version}' libseccomp-dev 2>/dev/null || true)
[ -n "$want" ] || die "libseccomp-dev is not installed (scripts/deps.sh installs it)"

# verify builds and runs a static musl program that links libseccomp, which
# proves the prefix and the library work together.
verify() {
  local d out
  d=$(mktemp -d /tmp/lkc-seccomp-check.XXXXXX)
  cat >"$d/check.c" <<'EOF'
#include <seccomp.h>
#include <stdio.h>
int main(void)
{
	const struct scmp_version *v = seccomp_version();
	printf("%u.%u.%u %d\n", v->major, v->minor, v->micro, seccomp_syscall_resolve_name("openat2"));
	return 0;
}
EOF
  musl-gcc -static -O2 -isystem "$prefix/include" -o "$d/check" "$d/check.c" -L"$prefix/lib" -lseccomp ||
    { rm -rf "$d"; die "cannot link a static musl program against $prefix/lib/libseccomp.a"; }
  out=$("$d/check") || { rm -rf "$d"; die "the static musl check program failed"; }
  rm -rf "$d"
  say "libseccomp $want (musl) in $prefix: version, openat2's number: $out"
}

if [ "${LKC_SECCOMP_FORCE:-0}" != 1 ] && [ "$(cat "$prefix/$marker" 2>/dev/null)" = "$want" ] &&
  [ -f "$prefix/lib/libseccomp.a" ]; then
  say "already built"
  verify
  exit 0
fi
if [ -e "$prefix" ] && [ ! -e "$prefix/$marker" ] && [ -n "$(ls -A "$prefix" 2>/dev/null)" ]; then
  die "$prefix exists, is not empty and was not created by this script; remove it or set LKC_SECCOMP_PREFIX"
fi

work=$(mktemp -d /tmp/lkc-seccomp.XXXXXX)
trap 'rm -rf "$work"' EXIT
chmod 755 "$work" # apt downloads as the unprivileged _apt user
mkdir -p "$work/empty" "$work/lists/partial" "$work/cache/archives/partial" "$work/state" "$work/src"
chown _apt "$work/src" 2>/dev/null || true
# Dir::Etc::main/parts come from APT_CONFIG so the system's apt.conf.d hooks
# never run against the private lists; network settings are copied over.
{
  echo "Dir::Etc::main \"/dev/null\";"
  echo "Dir::Etc::parts \"$work/empty\";"
  apt-config dump 2>/dev/null |
    grep -E '^Acquire::((https?|ftp)::Proxy|Check-Valid-Until|Check-Date|Retries|ForceIPv4|ForceIPv6)' || true
} >"$work/apt.conf"
export APT_CONFIG=$work/apt.conf
codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
# Point releases and security updates live in two more suites.
security=${mirror%/debian}/debian-security
{
  echo "deb-src [signed-by=$keyring] $mirror $codename main"
  echo "deb-src [signed-by=$keyring] $mirror $codename-updates main"
  echo "deb-src [signed-by=$keyring] $security $codename-security main"
} >"$work/sources.list"
apt_opts=(
  -o "Dir::Etc::SourceList=$work/sources.list"
  -o "Dir::Etc::SourceParts=$work/empty"
  -o "Dir::Etc::Preferences=/dev/null"
  -o "Dir::Etc::PreferencesParts=$work/empty"
  -o "Dir::State=$work/state"
  -o "Dir::State::Lists=$work/lists"
  -o "Dir::State::status=/dev/null"
  -o "Dir::Cache=$work/cache"
  -o "Acquire::Languages=none"
  -q
)
say "apt-get update ($codename sources, private lists)"
apt-get "${apt_opts[@]}" update >"$work/update.log" 2>&1 ||
  { cat "$work/update.log" >&2; die "apt-get update failed"; }
say "apt-get source libseccomp=$want"
(cd "$work/src" && apt-get "${apt_opts[@]}" source --download-only "libseccomp=$want") >"$work/source.log" 2>&1 ||
  { cat "$work/source.log" >&2; die "apt-get source libseccomp=$want failed"; }
dsc=$(ls "$work"/src/libseccomp_*.dsc)
# The .dsc's OpenPGP signature is the uploader's, which no keyring here
# holds; its hash was checked by apt against the signed Sources index.
dpkg-source --no-check -x "$dsc" "$work/build" >"$work/unpack.log" 2>&1 ||
  { cat "$work/unpack.log" >&2; die "dpkg-source -x $(basename "$dsc") failed"; }

# Build into a staging dir next to the prefix, then swap it in.
parent=$(dirname "$prefix")
mkdir -p "$parent"
stage=$(mktemp -d "$parent/.libseccomp-stage.XXXXXX")
trap 'rm -rf "$work" "$stage"' EXIT
mkdir -p "$stage/include"
cp -r /usr/include/linux /usr/include/asm-generic "$stage/include/"
cp -r /usr/include/x86_64-linux-gnu/asm "$stage/include/asm"

say "building $(basename "$dsc" .dsc) with musl"
(
  cd "$work/build"
  ./configure --prefix="$prefix" --enable-static --disable-shared \
    CC=musl-gcc CFLAGS="-O2 -isystem $stage/include"
  make -j"$(nproc)"
  make install DESTDIR="$work/dest"
) >"$work/build.log" 2>&1 || { tail -40 "$work/build.log" >&2; die "building libseccomp failed (see above)"; }
cp -r "$work/dest$prefix/include/." "$stage/include/"
mkdir -p "$stage/lib/pkgconfig"
cp "$work/dest$prefix/lib/libseccomp.a" "$stage/lib/"
cp "$work/dest$prefix/lib/pkgconfig/libseccomp.pc" "$stage/lib/pkgconfig/"
echo "$want" >"$stage/$marker"
chmod 755 "$stage"

if [ -e "$prefix" ]; then
  old=$prefix.old.$$
  mv "$prefix" "$old"
  mv "$stage" "$prefix"
  rm -rf "$old"
else
  mv "$stage" "$prefix"
fi
say "installed libseccomp $want"
verify
