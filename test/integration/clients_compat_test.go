package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestClientsHelpExitsZero: clients probe for a command with
// "<runtime> <command> --help" and take exit 0 as "supported" (Podman
// refuses to checkpoint otherwise: "configured runtime does not support
// checkpoint/restore"), so every command answers --help and -h with its
// usage on stdout and exit 0, as runc does.
func TestClientsHelpExitsZero(t *testing.T) {
	e := newEnv(t)
	top := e.lkc("--help")
	if top.code != 0 || !strings.HasPrefix(top.stdout, "usage: lkc") || top.stderr != "" {
		t.Fatalf("lkc --help: %v; want exit 0 and the usage on stdout", top)
	}
	var cmds []string
	for _, l := range strings.Split(top.stdout, "\n") {
		if strings.HasPrefix(l, "  ") {
			cmds = append(cmds, strings.TrimSuffix(strings.Fields(l)[0], ":"))
		}
	}
	for _, want := range []string{"checkpoint", "restore", "create", "exec", "state"} {
		if !strings.Contains(" "+strings.Join(cmds, " ")+" ", " "+want+" ") {
			t.Errorf("lkc --help lists no %s: %v", want, cmds)
		}
	}
	for _, cmd := range cmds {
		for _, flag := range []string{"--help", "-h"} {
			r := e.lkc(cmd, flag)
			if r.code != 0 || !strings.HasPrefix(r.stdout, "usage: lkc "+cmd) || r.stderr != "" {
				t.Errorf("lkc %s %s: %v; want exit 0 and its usage on stdout", cmd, flag, r)
			}
		}
	}
	// Help is not a way around a bad flag: that still fails in one line.
	e.failLkc(`^lkc: kill: flag provided but not defined: -bogus`, "kill", "--bogus", "x")
}

// TestClientsZeroBlockIOWeightIsUnset: Docker always sends
// linux.resources.blockIO.weight, 0 when the user set none, and device
// weights with leafWeight 0; runc reads 0 as "not set". lkc must run such
// a config and leave the cgroup's weight at its default.
func TestClientsZeroBlockIOWeightIsUnset(t *testing.T) {
	e := newEnv(t)
	major, minor := blockDevice(t)
	zero := uint16(0)
	id, _ := e.runningPid(func(s *specs.Spec) {
		s.Linux.Resources = &specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{
			Weight: &zero, LeafWeight: &zero,
			WeightDevice: []specs.LinuxWeightDevice{{
				LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: major, Minor: minor},
				Weight:             &zero, LeafWeight: &zero,
			}},
		}}
	})
	for _, dir := range cgroupDirs(id) {
		for _, f := range []string{"blkio.weight", "blkio.bfq.weight", "io.weight", "io.bfq.weight"} {
			data, err := os.ReadFile(filepath.Join(dir, f))
			if err != nil {
				continue
			}
			if v := strings.Fields(string(data)); len(v) > 0 && (v[len(v)-1] == "0" || v[0] == "0") {
				t.Errorf("%s/%s is %q after a config with weight 0: 0 was written, want it left unset", dir, f, data)
			}
		}
	}
	e.mustLkc("delete", "-f", id)
	// A weight that is set must still be in range.
	bad := uint16(5)
	b := e.bundle([]string{"true"}, func(s *specs.Spec) {
		s.Linux.Resources = &specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{Weight: &bad}}
	})
	e.failLkc(`blockIO.weight 5 is outside 10-1000`, "run", "--bundle", b, e.id())
}

// TestClientsTmpfsCopyUp: Podman puts runc's "tmpcopyup" option on the
// tmpfs mounts of --tmpfs and --read-only; the option is not for the
// kernel, and the new tmpfs starts with the contents of the directory it
// covers (files, symlinks, their modes and owners), while "notmpcopyup"
// leaves it empty.
func TestClientsTmpfsCopyUp(t *testing.T) {
	e := newEnv(t)
	tmpfs := func(dest string, opts ...string) specs.Mount {
		return specs.Mount{Destination: dest, Type: "tmpfs", Source: "tmpfs", Options: append([]string{"nosuid"}, opts...)}
	}
	script := `set -e
grep -c '^root:' /etc/passwd
grep -E ' /(etc|bin|root) ' /proc/mounts | cut -d' ' -f1-3 | sort
readlink /bin/sh
stat -c '%a %U' /etc/passwd /bin
touch /etc/new /bin/new
ls -A /root | wc -l`
	r := e.run([]string{"/bin/sh", "-c", script}, func(s *specs.Spec) {
		s.Mounts = append(s.Mounts, tmpfs("/etc", "tmpcopyup", "mode=755"), tmpfs("/bin", "tmpcopyup"),
			tmpfs("/root", "tmpcopyup", "notmpcopyup"))
	})
	// The contents are copied, and a tmpfs without mode= takes the mode of
	// the directory it covers (runc since 1.1.8, crun): /bin stays 755.
	want := "1\ntmpfs /bin tmpfs\ntmpfs /etc tmpfs\ntmpfs /root tmpfs\nbusybox\n644 root\n755 root\n0\n"
	if r.code != 0 || r.stdout != want {
		t.Errorf("%v; want stdout %q", r, want)
	}
}

// TestClientsNewNetnsLoopbackUp: runc brings lo up in a network namespace
// it creates, so `podman run --network none` and `ctr run` containers reach
// 127.0.0.1; lkc does the same.
func TestClientsNewNetnsLoopbackUp(t *testing.T) {
	e := newEnv(t)
	r := e.run([]string{"cat", "/sys/class/net/lo/flags"}, nil)
	if r.code != 0 || strings.TrimSpace(r.stdout) != "0x9" { // IFF_UP|IFF_LOOPBACK; RUNNING is not a flag here
		t.Errorf("%v; want lo flags 0x9 (up)", r)
	}
}

// dockerUpdateJSON is what `docker update --memory 128m --memory-swap 256m
// --pids-limit 40 --cpu-shares 256` hands to the runtime's
// `update --resources -` (Docker 20.10, captured): every limit it knows,
// 0 for the ones the user did not set.
const dockerUpdateJSON = `{"memory":{"limit":134217728,"reservation":0,"swap":268435456,"kernel":0},
"cpu":{"shares":256,"quota":0,"period":0},"pids":{"limit":40},"blockIO":{"weight":0}}`

// TestClientsUpdateZeroIsUnchanged: as in runc update, a 0 in --resources
// leaves that limit as it was.
func TestClientsUpdateZeroIsUnchanged(t *testing.T) {
	e := newEnv(t)
	limit, quota, period := int64(64<<20), int64(50000), uint64(100000)
	id, _ := e.runningPid(func(s *specs.Spec) {
		s.Linux.Resources = &specs.LinuxResources{
			Memory: &specs.LinuxMemory{Limit: &limit},
			CPU:    &specs.LinuxCPU{Quota: &quota, Period: &period},
		}
	})
	file := filepath.Join(t.TempDir(), "resources.json")
	if err := os.WriteFile(file, []byte(dockerUpdateJSON), 0o644); err != nil {
		t.Fatal(err)
	}
	e.mustLkc("update", "--resources", file, id)
	want := map[string]string{
		"memory/memory.limit_in_bytes":      "134217728",
		"memory/memory.soft_limit_in_bytes": "9223372036854771712", // unchanged: no reservation
		"pids/pids.max":                     "40",
		"cpu/cpu.shares":                    "256",
		"cpu/cpu.cfs_quota_us":              "50000", // unchanged: quota 0
		"cpu/cpu.cfs_period_us":             "100000",
	}
	checked := 0
	for _, dir := range cgroupDirs(id) {
		for key, v := range want {
			ctrl, file, _ := strings.Cut(key, "/")
			if !strings.Contains(dir, "/"+ctrl+"/") {
				continue
			}
			checked++
			data, err := os.ReadFile(filepath.Join(dir, file))
			if err != nil || strings.TrimSpace(string(data)) != v {
				t.Errorf("%s/%s = %q, %v after the update; want %s", dir, file, data, err, v)
			}
		}
	}
	if checked == 0 {
		t.Skip("no cgroup v1 memory, pids and cpu hierarchies here (the v2 files are checked by the update tests)")
	}
}

// TestClientsKillStoppedContainer: containerd's runc shim kills a task
// whose init has exited with `kill --all <id> KILL` (the CRI plugin does so
// for every container exit, to reap what is left in its cgroup) and needs
// exit 0 there, as runc gives; and it reads a kill refused because the
// container is stopped by runc's words "container not running" (its
// "process already finished"). Otherwise the CRI plugin retries the exit
// forever and the pod's container never leaves RUNNING.
func TestClientsKillStoppedContainer(t *testing.T) {
	e := newEnv(t)
	id := e.id()
	if r := e.lkc("run", "--keep", "--bundle", e.bundle([]string{"true"}, nil), id); r.code != 0 {
		t.Fatalf("run --keep: %v", r)
	}
	if r := e.lkc("kill", "--all", id, "KILL"); r.code != 0 {
		t.Errorf("kill --all of a stopped container: %v; want exit 0, as runc", r)
	}
	e.failLkc(`^lkc: kill: .*container not running.*: it is stopped$`, "kill", id, "KILL")
	e.mustLkc("delete", id)
	e.assertIDGone(id)
}
