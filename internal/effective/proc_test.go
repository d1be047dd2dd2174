package effective

import (
	"errors"
	"io/fs"
	"os"
	"strings"
	"testing"
)

func TestForPidFake(t *testing.T) {
	root := tree(t, map[string]string{
		"proc/7/cgroup": "12:name=systemd:/\n5:memory:/kube/pod/ctr\n3:cpu,cpuacct:/kube/pod/ctr\n0::/\n" +
			"2:pids:/elsewhere\n",
		"proc/self/mountinfo": "31 23 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n" +
			"35 31 0:32 /kube /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n" +
			"32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw shared:9 - cgroup cgroup rw,cpu,cpuacct\n" +
			"33 31 0:30 /kube /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n" +
			"40 31 0:37 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd\n" +
			"41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw,nsdelegate\n",
	})
	cg, err := ForPid(root, 7)
	if err != nil {
		t.Fatal(err)
	}
	want := Cgroups{
		"memory":      root + "/sys/fs/cgroup/memory/pod/ctr",
		"cpu,cpuacct": root + "/sys/fs/cgroup/cpu,cpuacct/kube/pod/ctr",
		"":            root + "/sys/fs/cgroup/unified",
	}
	if len(cg) != len(want) {
		t.Errorf("ForPid = %v; want %v", cg, want)
	}
	for k, v := range want {
		if cg[k] != v {
			t.Errorf("ForPid[%q] = %q; want %q", k, cg[k], v)
		}
	}
	if _, err := ForPid(root, 8); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ForPid of a missing process: %v; want fs.ErrNotExist", err)
	}
}

// TestForProcessSelf checks the answer for this test process on the real
// machine: its memory cgroup is the one /proc/self/cgroup names, and the
// rlimits and affinity agree with what the kernel says directly.
func TestForProcessSelf(t *testing.T) {
	p, err := ForProcess("/", os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Cgroups) == 0 {
		t.Fatal("no cgroups found for this process")
	}
	for _, dir := range p.Cgroups {
		if !isCgroup(dir) {
			t.Errorf("%s is not a cgroup", dir)
		}
	}
	if len(p.Affinity) == 0 {
		t.Error("no allowed CPUs")
	}
	var nofile *Rlimit
	for i := range p.Rlimits {
		if p.Rlimits[i].Name == "Max open files" {
			nofile = &p.Rlimits[i]
		}
	}
	if len(p.Rlimits) < 16 || nofile == nil || nofile.Unit != "files" || nofile.Soft <= 0 {
		t.Errorf("rlimits = %+v; want the kernel's 16 with Max open files", p.Rlimits)
	}
}

func TestParseRlimits(t *testing.T) {
	data, err := os.ReadFile("/proc/self/limits")
	if err != nil {
		t.Skip(err)
	}
	rl, err := ParseRlimits(string(data))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(rl) != len(lines)-1 {
		t.Fatalf("%d rlimits from %d lines", len(rl), len(lines))
	}
	for i, r := range rl {
		fields := strings.Fields(lines[i+1])
		if !strings.HasPrefix(lines[i+1], r.Name) || strings.Contains(r.Name, "  ") {
			t.Errorf("line %q: name %q", lines[i+1], r.Name)
		}
		if r.Unit != "" && fields[len(fields)-1] != r.Unit {
			t.Errorf("line %q: unit %q", lines[i+1], r.Unit)
		}
	}
	if _, err := ParseRlimits("Limit\nMax cpu time              lots                 unlimited            seconds\n"); err == nil {
		t.Error("a bad value parsed")
	}
}
