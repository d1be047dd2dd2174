#!/bin/sh
# bench/evacuate.sh N MIB [MIGRATE FLAGS...]: times checkpoint --all and
# restore --all of N busybox containers holding MIB MiB each, then
# migrate --all of N fresh ones to an lkc serve on this machine with a
# second root (docs/evacuate.md). Needs root, CRIU 4 and bin/lkc.
# PARALLEL bounds each command, FROZEN is migrate --all's --frozen and
# SESSIONS the serve's --sessions (unset: lkc's defaults); MIGRATE_ONLY=1 skips checkpoint
# --all and restore --all. After the evacuation one more container of the same size is
# migrated alone, for the ratio of the evacuation's total to it. Prints
# the totals, the ratios, the CPU time the evacuation took on each side
# and on the whole host, and the load average; leaves nothing behind.
set -eu
n=${1:?usage: bench/evacuate.sh N MIB [migrate flags]}
mib=${2:?usage: bench/evacuate.sh N MIB [migrate flags]}
shift 2
here=$(cd "$(dirname "$0")/.." && pwd)
lkc=${LKC_BINARY:-$here/bin/lkc}
dir=$(mktemp -d /var/tmp/lkc-evac-bench.XXXXXX)
serve=
cleanup() {
	[ -z "$serve" ] || { kill "$serve" 2>/dev/null; wait "$serve" 2>/dev/null || true; }
	for r in "$dir/src" "$dir/dst"; do
		[ -d "$r" ] || continue
		for id in $(ls "$r"); do "$lkc" --root "$r" delete --force "$id" >/dev/null 2>&1 || true; done
	done
	for d in /sys/fs/cgroup/*/lkc-evac-bench /sys/fs/cgroup/*/*/*/lkc-evac-bench; do
		[ -d "$d" ] && rmdir "$d" 2>/dev/null || true
	done
	rm -rf "$dir"
}
trap cleanup EXIT INT TERM
"$here/scripts/mkrootfs.sh" "$dir" >/dev/null
mkdir "$dir/bundle"
(cd "$dir/bundle" && "$lkc" spec)
bytes=$((mib << 20))
python3 - "$dir/bundle/config.json" "$dir/rootfs" "$bytes" <<'PY'
import json, sys
p, root, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
s = json.load(open(p))
s["process"]["terminal"] = False
s["root"] = {"path": root, "readonly": True}
s["process"]["args"] = ["sleep", "100000"] if n == 0 else ["/bin/sh", "-c",
    "head -c %d /dev/urandom | dd bs=%d count=1 iflag=fullblock 2>/dev/null | sleep 100000" % (n, n)]
json.dump(s, open(p, "w"))
PY
start() {
	for i in $(seq 1 "$n"); do
		"$lkc" --root "$dir/src" run -d --bundle "$dir/bundle" "evb$i" </dev/null >/dev/null 2>&1
	done
	# Until every holder has its memory.
	for i in $(seq 1 "$n"); do
		for t in $(seq 1 300); do
			used=$("$lkc" --root "$dir/src" stats --json --no-stream "evb$i" | jq .memoryUsed)
			[ "${used:-0}" -ge "$bytes" ] && break
			sleep 0.1
		done
	done
}
ms() { python3 -c "import time; print(int(time.time()*1000))"; }
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
if [ -z "${MIGRATE_ONLY:-}" ]; then
start
t0=$(ms)
"$lkc" --root "$dir/src" checkpoint --all --json --image-dir "$dir/images" ${PARALLEL:+--parallel $PARALLEL} >"$dir/ckpt.json"
t1=$(ms)
"$lkc" --root "$dir/src" restore --all --json --image-dir "$dir/images" ${PARALLEL:+--parallel $PARALLEL} >"$dir/rst.json"
t2=$(ms)
python3 - "$dir/ckpt.json" "$dir/rst.json" $((t1 - t0)) $((t2 - t1)) "$n" "$mib" <<'PY'
import json, sys
m, r = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
dump = {c["id"]: c.get("dumpMs", 0) for c in m["containers"]}
rst = {c["id"]: c.get("ms", 0) for c in r}
bad = [c["id"] for c in r if c["status"] != "restored"]
print("checkpoint --all + restore --all of %s containers of %s MiB: checkpoint %s ms, restore %s ms, failed %s" % (sys.argv[5], sys.argv[6], sys.argv[3], sys.argv[4], bad or "none"))
down = sorted(dump[i] + rst.get(i, 0) for i in dump)
print("  per container dump+restore ms: min %.0f median %.0f max %.0f" % (down[0], down[len(down)//2], down[-1]))
PY
for id in $(ls "$dir/src"); do "$lkc" --root "$dir/src" delete --force "$id" >/dev/null 2>&1; done
rm -rf "$dir/images"
fi
head -c 32 /dev/urandom | base64 >"$dir/token"
chmod 600 "$dir/token"
port=$((20000 + $$ % 20000))
"$lkc" --root "$dir/dst" serve --listen "127.0.0.1:$port" --token-file "$dir/token" --bundle-dir "$dir/bundles" \
	--cgroup-parent lkc-evac-bench ${SESSIONS:+--sessions $SESSIONS} >"$dir/serve.log" 2>&1 &
serve=$!
for t in $(seq 1 100); do grep -q "listening on" "$dir/serve.log" && break; sleep 0.1; done
start
# CPU seconds of the serve (with the CRIU runs it waited for) and of the
# sender (with its CRIU runs), in clock ticks; and the host's busy time,
# which also holds the restored containers' own tasks (CRIU's restorer
# runs under their names) and whatever else runs meanwhile.
ticks() { awk '{print $14+$15+$16+$17}' "/proc/$1/stat"; }
busy() { awk '/^cpu /{print $2+$3+$4+$7+$8}' /proc/stat; }
r0=$(ticks "$serve")
b0=$(busy)
/usr/bin/time -f "%U %S" -o "$dir/cpu" "$lkc" --root "$dir/src" migrate --all --json --token-file "$dir/token" ${PARALLEL:+--parallel $PARALLEL} ${FROZEN:+--frozen $FROZEN} "$@" "127.0.0.1:$port" >"$dir/mig.json" || true
r1=$(ticks "$serve")
b1=$(busy)
python3 - "$dir/cpu" $((r1 - r0)) "$(getconf CLK_TCK)" $((b1 - b0)) <<'PY'
import sys
u, s = map(float, open(sys.argv[1]).read().split()[-2:])
hz = int(sys.argv[3])
print("  CPU: sender %.0f ms, receiver %.0f ms, host busy %.0f ms" % ((u + s) * 1000, int(sys.argv[2]) * 1000 / hz, int(sys.argv[4]) * 1000 / hz))
PY
python3 - "$dir/mig.json" "$n" "$mib" <<'PY'
import json, sys
ev = json.load(open(sys.argv[1]))
moved = [m for m in ev["moves"] if m["status"] == "moved"]
down = sorted(m["summary"]["downtime_ms"] for m in moved)
tot = sorted(m["summary"]["total_ms"] for m in moved)
net = sorted(m["summary"]["total_ms"] - m["summary"].get("wait_ms", 0) for m in moved)
print("migrate --all of %s containers of %s MiB: total %.0f ms, moved %d, largest single migration %.0f ms (%.0f less its wait for a turn to freeze), downtime min %.0f median %.0f max %.0f ms" % (
    sys.argv[2], sys.argv[3], ev["total_ms"], len(moved), tot[-1] if tot else 0, net[-1] if net else 0, down[0] if down else 0, down[len(down)//2] if down else 0, down[-1] if down else 0))
for m in ev["moves"]:
    if m["status"] != "moved":
        print("  %s %s: %s" % (m["id"], m["status"], m.get("error", "")))
PY
"$lkc" --root "$dir/src" run -d --bundle "$dir/bundle" evalone </dev/null >/dev/null 2>&1
for t in $(seq 1 300); do
	used=$("$lkc" --root "$dir/src" stats --json --no-stream evalone | jq .memoryUsed)
	[ "${used:-0}" -ge "$bytes" ] && break
	sleep 0.1
done
"$lkc" --root "$dir/src" migrate --json --token-file "$dir/token" "$@" evalone "127.0.0.1:$port" >"$dir/alone.json" || true
python3 - "$dir/mig.json" "$dir/alone.json" "$mib" <<'PY'
import json, sys
ev = json.load(open(sys.argv[1]))
try:
    alone = json.load(open(sys.argv[2]))
except ValueError:
    sys.exit("the container migrated alone failed")
tot = max([m["summary"]["total_ms"] for m in ev["moves"] if m["status"] == "moved"] or [0])
print("one container of %s MiB alone: total %.0f ms, downtime %.0f ms (%s)" % (sys.argv[3], alone["total_ms"], alone["downtime_ms"], alone["mode"]))
print("ratios: evacuation total / largest single within %.2f, / one alone %.2f" % (ev["total_ms"] / tot if tot else 0, ev["total_ms"] / alone["total_ms"]))
PY
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
