#!/usr/bin/env bash
# mkrootfs.sh DIR: make DIR/rootfs a minimal busybox root filesystem from
# Debian's busybox-static. Idempotent; DIR/config.json is left alone.
set -euo pipefail
dir=${1:?usage: mkrootfs.sh BUNDLE_DIR}
bb=/bin/busybox
if ! "$bb" --help 2>&1 | sed -n 1p | grep -q BusyBox || ldd "$bb" >/dev/null 2>&1; then
  echo "mkrootfs: $bb is not a static busybox: apt-get install busybox-static" >&2
  exit 1
fi
root=$dir/rootfs
mkdir -p "$root"/{bin,sbin,etc,proc,sys,dev,tmp,root,usr/bin,usr/sbin,var,run}
chmod 1777 "$root/tmp"
cp "$bb" "$root/bin/busybox"
for applet in $("$root/bin/busybox" --list); do
  [ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
: >"$root/etc/hostname"
