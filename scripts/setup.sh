#!/usr/bin/env bash
# setup.sh: the README's first command. On a fresh Debian 12 machine it
# installs what lkc needs, builds bin/lkc, prepares a busybox bundle in
# tmp/demo and runs a real container that shows its isolation.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
export PATH=/usr/local/go/bin:/usr/local/sbin:/usr/sbin:/sbin:$PATH

./scripts/deps.sh
echo "setup: building bin/lkc"
make lkc >/dev/null

# The default CNI network `lkc` (docs/network.md), for containers that ask
# for it with the annotation org.lkc.network=lkc; one already there stays.
if ! grep -qs '"name": *"lkc"' /etc/lkc/net.d/*.conflist; then
  echo "setup: installing the default network lkc in /etc/lkc/net.d"
  install -D -m 0644 scripts/net/lkc.conflist /etc/lkc/net.d/lkc.conflist
fi

bundle=$repo/tmp/demo
./scripts/mkrootfs.sh "$bundle"
rm -f "$bundle/config.json"
bin/lkc spec --bundle "$bundle"
cat >"$bundle/rootfs/demo.sh" <<'DEMO'
#!/bin/sh
echo "inside the container:"
echo "  processes:  $(ps -o pid,comm | sed 1d | tr -s ' \n' ' ')"
echo "  hostname:   $(hostname)"
echo "  network:    $(ls /sys/class/net | tr '\n' ' ')"
echo "  root:       $(grep ' / ' /proc/mounts | head -1)"
echo "  cgroup:     $(grep memory /proc/self/cgroup)"
DEMO
chmod +x "$bundle/rootfs/demo.sh"
# The default spec asks for a terminal; the demo prints to a pipe instead.
sed -i -e 's/"terminal": true/"terminal": false/' -e 's|^\(\t*\)"sh"$|\1"/demo.sh"|' "$bundle/config.json"
grep -q '"/demo.sh"' "$bundle/config.json" || { echo "setup: could not set the demo command" >&2; exit 1; }

id=demo-$$
echo "setup: running container $id from $bundle"
bin/lkc run --bundle "$bundle" "$id"
# The host daemon serves the features containers opt into (a virtual /proc,
# OOM policies, rules; docs/daemon.md). create starts it on demand too; on a
# host with systemd, README.md shows the unit to use instead.
if ! bin/lkc daemon status >/dev/null 2>&1; then
  echo "setup: starting the host daemon (lkc daemon --detach)"
  bin/lkc daemon --detach
fi
echo "setup: done; bin/lkc is ready (see README.md)"
