#!/usr/bin/env bash
# install-criu.sh: install CRIU 4.2+ from Debian testing into a private prefix
# (default /opt/lkc/criu, override with $LKC_CRIU_PREFIX) and put a wrapper at
# <prefix>/criu, which is the path lkc looks up by default.
#
# Debian 12's criu 3.17 cannot run on kernels >= 6.15 (it fails in kerndat with
# "vdso: Unexpected rt vDSO area bounds"), and trixie's 4.1.1 cannot dump
# TCP/UDP sockets on kernels >= 6.16 nor serve lazy pages here; 4.2.1 (forky,
# sid) does all three (docs/criu.md). Suites are tried in order: forky, sid,
# then trixie's 4.1.1 as a last resort. A newer criu needs a newer libc, so the .debs of criu and its whole Depends closure
# (libc6 included) are unpacked with dpkg-deb -x into the prefix and criu is
# run through the prefix's own dynamic loader with --library-path. Nothing is
# installed with dpkg, and the system's apt sources, lists, cache and config
# are never touched: apt runs against a throw-away sources list/state dir.
#
# Podman runs `criu` from PATH itself, and so does runc: unless a CRIU of at
# least $LKC_CRIU_MIN is on the standard PATH already, a symlink to the
# wrapper is put there ($LKC_CRIU_LINK).
#
# Idempotent: if <prefix>/criu --version already reports 4.x it only verifies.
# Environment:
#   LKC_CRIU_PREFIX   install prefix (default /opt/lkc/criu)
#   LKC_CRIU_MIRROR   Debian mirror URL (default: the one the system uses)
#   LKC_CRIU_SUITE    Debian suite(s) to take criu from, tried in order
#                     (default "forky sid trixie")
#   LKC_CRIU_MIN      version an existing install must have to be kept
#                     (default 4.2)
#   LKC_CRIU_FORCE=1  reinstall even if a 4.x wrapper is already there
#   LKC_CRIU_LINK     the `criu` command made on PATH (default
#                     /usr/local/sbin/criu; "none" makes none)
set -euo pipefail

prefix=${LKC_CRIU_PREFIX:-/opt/lkc/criu}
prefix=${prefix%/}
suites=${LKC_CRIU_SUITE:-forky sid trixie}
min=${LKC_CRIU_MIN:-4.2}
wrapper=$prefix/criu
link=${LKC_CRIU_LINK:-/usr/local/sbin/criu}
# The PATH a root login shell on Debian has, which is where Podman and
# containerd's runc find CRIU when started from one.
std_path=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
marker=.lkc-criu   # marks a prefix this script owns (safe to replace)
arch=$(dpkg --print-architecture)
[ "$arch" = amd64 ] || { echo "install-criu: error: only amd64 is supported (got $arch)" >&2; exit 1; }
triplet=x86_64-linux-gnu

say() { echo "install-criu: $*"; }
die() { echo "install-criu: error: $*" >&2; exit 1; }

loader=usr/lib/$triplet/ld-linux-x86-64.so.2
# write_launch PREFIX FILE: the command line the wrapper execs, one
# NUL-terminated argument each; lkc runs it itself and spares every CRIU
# start the shell (internal/checkpoint, launchFile).
write_launch() {
  printf '%s\0' "$1/$loader" --library-path "$1/usr/lib/$triplet:$1/lib/$triplet" "$1/usr/sbin/criu" >"$2"
}

[ "$(id -u)" = 0 ] || die "must run as root"
case $prefix in
  /*) ;;
  *) die "LKC_CRIU_PREFIX must be an absolute path (got '$prefix')" ;;
esac
[ "$prefix" != "" ] && [ "$prefix" != /usr ] && [ "$prefix" != /opt ] || die "refusing prefix '$prefix'"

# link_on_path makes `criu` on the standard PATH this CRIU, unless one new
# enough is there already; a link to the wrapper it made before is kept.
link_on_path() {
  local found v
  [ "$link" != none ] || return 0
  if [ "$(readlink "$link" 2>/dev/null)" = "$wrapper" ]; then
    say "criu on PATH: $link -> $wrapper"
    return 0
  fi
  found=$(PATH=$std_path command -v criu || true)
  v=$([ -n "$found" ] && "$found" --version 2>/dev/null | sed -n 's/^Version: //p' || true)
  if [ -n "$v" ] && new_enough "$v"; then
    say "criu on PATH: $found (CRIU $v) kept"
    return 0
  fi
  if [ -e "$link" ] || [ -L "$link" ]; then
    die "$link is not a CRIU of at least $min (Podman and runc would run it): remove it, or set LKC_CRIU_LINK"
  fi
  mkdir -p "$(dirname "$link")"
  ln -s "$wrapper" "$link"
  say "criu on PATH: $link -> $wrapper${found:+ (ahead of $found${v:+, CRIU $v})}"
}

# verify prints the version and what `criu check` says. --version failing is
# fatal; `criu check` problems are reported but not fatal (they usually mean
# a missing optional piece such as iptables, see docs/criu.md).
verify() {
  local v out rc
  v=$("$wrapper" --version 2>&1) || die "$wrapper --version failed: $v"
  grep -q '^Version: 4\.' <<<"$v" || die "$wrapper --version does not report 4.x: $v"
  say "$(head -1 <<<"$v")"
  set +e
  out=$("$wrapper" check 2>&1)
  rc=$?
  set -e
  "$(dirname "${BASH_SOURCE[0]}")/drop-kdat-tmp"
  if [ $rc -eq 0 ]; then
    say "criu check: $(tail -1 <<<"$out")"
  else
    say "criu check: FAILED (exit $rc); output follows:"
    sed 's/^/  /' <<<"$out"
  fi
  say "wrapper: $wrapper"
}

# new_enough VERSION: is VERSION at least $min?
new_enough() {
  [ "$(printf '%s\n%s\n' "$min" "$1" | sort -V | head -1)" = "$min" ]
}

# pipe_size lets CRIU's page server serve lazy pages (post-copy): it asks
# for 3.2 MiB pipes, above the default fs.pipe-max-size (1 MiB), which only
# CAP_SYS_RESOURCE may exceed, and some hosts withhold that even from root
# (docs/criu.md). Only ever raised, and kept across reboots in sysctl.d.
pipe_size() {
  local want=4194304 cur
  cur=$(cat /proc/sys/fs/pipe-max-size)
  if [ "$cur" -lt "$want" ]; then
    echo "fs.pipe-max-size = $want" >/etc/sysctl.d/60-lkc-criu.conf
    sysctl -qw fs.pipe-max-size=$want || die "cannot raise fs.pipe-max-size to $want"
    say "fs.pipe-max-size raised from $cur to $want (for lazy pages)"
  fi
}
pipe_size

have=$("$wrapper" --version 2>/dev/null | sed -n 's/^Version: //p' || true)
if [ "${LKC_CRIU_FORCE:-0}" != 1 ] && [ -n "$have" ] && new_enough "$have"; then
  say "already installed"
  write_launch "$prefix" "$wrapper.launch"
  verify
  link_on_path
  exit 0
fi

# The prefix is replaced wholesale, so only ever remove one we created.
if [ -e "$prefix" ] && [ ! -e "$prefix/$marker" ] && [ -n "$(ls -A "$prefix" 2>/dev/null)" ]; then
  die "$prefix exists, is not empty and was not created by this script; remove it or set LKC_CRIU_PREFIX"
fi

# Mirror: reuse the host the system's own bookworm entry points at.
find_mirror() {
  local codename files
  codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
  # one-line format: deb [opts] URI suite components...
  files=$(ls /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null || true)
  if [ -n "$files" ]; then
    # shellcheck disable=SC2086
    sed -e 's/#.*//' -e 's/\[[^]]*\]//' $files 2>/dev/null |
      awk -v c="$codename" '$1 == "deb" && $3 == c { print $2; exit }'
  fi
  # deb822 format
  files=$(ls /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
  if [ -n "$files" ]; then
    # shellcheck disable=SC2086
    awk -v c="$codename" '
      BEGIN { RS = ""; FS = "\n" }
      {
        types = ""; uris = ""; suites = ""; enabled = "yes"
        for (i = 1; i <= NF; i++) {
          line = $i
          if (line ~ /^#/) continue
          if (tolower(line) ~ /^types:/)   { sub(/^[^:]*:[ \t]*/, "", line); types = line }
          if (tolower(line) ~ /^uris:/)    { sub(/^[^:]*:[ \t]*/, "", line); uris = line }
          if (tolower(line) ~ /^suites:/)  { sub(/^[^:]*:[ \t]*/, "", line); suites = line }
          if (tolower(line) ~ /^enabled:/) { sub(/^[^:]*:[ \t]*/, "", line); enabled = tolower(line) }
        }
        if (enabled == "no" || (" " types " ") !~ / deb /) next
        n = split(suites, s, /[ \t]+/)
        for (j = 1; j <= n; j++) if (s[j] == c) { split(uris, u, /[ \t]+/); print u[1]; exit }
      }' $files
  fi
}
mirror=${LKC_CRIU_MIRROR:-$(find_mirror | head -1)}
mirror=${mirror:-http://deb.debian.org/debian}
mirror=${mirror%/}
work=$(mktemp -d /tmp/lkc-criu.XXXXXX)
trap 'rm -rf "$work"' EXIT
chmod 755 "$work"   # apt downloads as the unprivileged _apt user
mkdir -p "$work/empty" "$work/debs"
chown _apt "$work/debs" 2>/dev/null || true
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
[ -r "$keyring" ] || die "$keyring missing (apt-get install debian-archive-keyring)"

# Dir::Etc::main/parts must come from APT_CONFIG: they are read before any -o,
# and leaving them at the system values would run the system's apt.conf.d
# hooks (e.g. APT::Update::Post-Invoke) against our private update.
# Network settings (proxy, date checks) are copied from the system config.
{
  echo "Dir::Etc::main \"/dev/null\";"
  echo "Dir::Etc::parts \"$work/empty\";"
  apt-config dump 2>/dev/null |
    grep -E '^Acquire::((https?|ftp)::Proxy|Check-Valid-Until|Check-Date|Retries|ForceIPv4|ForceIPv6)' || true
} >"$work/apt.conf"
export APT_CONFIG=$work/apt.conf

# resolve SUITE: private apt state for SUITE in $work/SUITE; sets apt_opts
# and pkgs to the Depends closure of criu + libcompel1 (libc6 included: a
# newer criu needs a newer glibc than bookworm's 2.36). Recommends (iproute2,
# python3-pycriu) are left out: criu calls the system's ip/iptables binaries.
resolve() {
  local d=$work/$1
  mkdir -p "$d/lists/partial" "$d/cache/archives/partial" "$d/state"
  echo "deb [signed-by=$keyring] $mirror $1 main" >"$d/sources.list"
  apt_opts=(
    -o "Dir::Etc::SourceList=$d/sources.list"
    -o "Dir::Etc::SourceParts=$work/empty"
    -o "Dir::Etc::Preferences=/dev/null"
    -o "Dir::Etc::PreferencesParts=$work/empty"
    -o "Dir::State=$d/state"
    -o "Dir::State::Lists=$d/lists"
    -o "Dir::State::status=/dev/null"
    -o "Dir::Cache=$d/cache"
    -o "APT::Architecture=$arch"
    -o "APT::Architectures::=$arch"
    -o "Acquire::Languages=none"
    -q
  )
  say "apt-get update ($1, private lists)"
  apt-get "${apt_opts[@]}" update >"$d/update.log" 2>&1 ||
    { say "apt-get update for $1 failed: $(tail -1 "$d/update.log")"; return 1; }
  mapfile -t pkgs < <(apt-cache "${apt_opts[@]}" depends --recurse --no-recommends \
    --no-suggests --no-conflicts --no-breaks --no-replaces --no-enhances \
    criu libcompel1 2>/dev/null | grep -v '^[ <]' | sort -u)
  [ ${#pkgs[@]} -gt 2 ] || { say "no installable criu in $1"; return 1; }
}

suite=
for s in $suites; do
  say "looking for criu in $mirror $s"
  if resolve "$s"; then
    suite=$s
    break
  fi
done
[ -n "$suite" ] || die "no suite of '$suites' has an installable criu"
say "downloading ${#pkgs[@]} packages: ${pkgs[*]}"
(cd "$work/debs" && apt-get "${apt_opts[@]}" download "${pkgs[@]}") >"$work/download.log" 2>&1 ||
  { cat "$work/download.log" >&2; die "apt-get download failed"; }

# Unpack into a staging dir next to the prefix, then swap it in.
parent=$(dirname "$prefix")
mkdir -p "$parent"
stage=$(mktemp -d "$parent/.criu-stage.XXXXXX")
trap 'rm -rf "$work" "$stage"' EXIT
for deb in "$work"/debs/*.deb; do
  dpkg-deb -x "$deb" "$stage"
done
(cd "$work/debs" && ls *.deb) >"$stage/$marker"
chmod 755 "$stage"

[ -e "$stage/$loader" ] || die "the suite's libc6 did not provide /$loader"
[ -x "$stage/usr/sbin/criu" ] || die "criu package did not provide /usr/sbin/criu"

write_wrapper() { # write_wrapper PREFIX FILE
  cat >"$2" <<EOF
#!/bin/sh
# Generated by lkc scripts/install-criu.sh: run Debian $suite's criu with the
# prefix's own glibc. --library-path (not LD_LIBRARY_PATH) so that programs
# criu spawns (iptables-restore, ip, tar, ...) still use the system libraries.
# exec keeps inherited fds, so "criu swrk <fd>" (go-criu) works through this.
p=$1
exec "\$p/$loader" --library-path "\$p/usr/lib/$triplet:\$p/lib/$triplet" "\$p/usr/sbin/criu" "\$@"
EOF
  chmod 755 "$2"
}
write_wrapper "$stage" "$stage/criu.test"
v=$("$stage/criu.test" --version 2>&1) || die "unpacked criu does not run: $v"
rm -f "$stage/criu.test"

if [ -e "$prefix" ]; then
  old=$prefix.old.$$
  mv "$prefix" "$old"
  mv "$stage" "$prefix"
  rm -rf "$old"
else
  mv "$stage" "$prefix"
fi
write_wrapper "$prefix" "$wrapper"
write_launch "$prefix" "$wrapper.launch"
say "installed $(head -1 <<<"$v" | sed 's/^Version: /criu /')"
verify
link_on_path
