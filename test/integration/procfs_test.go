package integration

import (
	"errors"
	"io/fs"
	"os"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/procfs"
	"github.com/lkc-containers/lkc/internal/state"
)

// TestProcfsRenderContainer renders every virtual file and sysinfo for a
// container lkc ran with 64 MiB and half a CPU, from its real cgroup (v1
// here, v2 in the VM): its limits show, its uptime is its own, loadavg
// names a pid of its own namespace (its init, 1), never a host pid; once
// the container is deleted, rendering fails cleanly with fs.ErrNotExist.
func TestProcfsRenderContainer(t *testing.T) {
	e := newEnv(t)
	mem, quota, period := int64(64<<20), int64(50000), uint64(100000)
	b := e.bundle([]string{"sleep", "100"}, func(s *specs.Spec) {
		s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: &mem}
		s.Linux.Resources.CPU = &specs.LinuxCPU{Quota: &quota, Period: &period}
	})
	id := e.id()
	e.mustLkc("run", "-d", "--bundle", b, id)
	d, err := state.Peek(e.root, id)
	if err != nil {
		t.Fatal(err)
	}
	s, err := d.Load()
	d.Close()
	if err != nil {
		t.Fatal(err)
	}
	c, err := procfs.ContainerFromState(s)
	if err != nil {
		t.Fatal(err)
	}
	if age := time.Since(c.Started); age < 0 || age > time.Minute {
		t.Errorf("started %v ago; want just now", age)
	}
	c.Load = &procfs.Load{}
	if err := c.Load.Sample(c, time.Now()); err != nil {
		t.Fatal(err)
	}
	want := map[string]func(string) bool{
		"proc/meminfo":                  func(s string) bool { return strings.HasPrefix(s, "MemTotal:          65536 kB\n") },
		"sys/devices/system/cpu/online": func(s string) bool { return s == "0\n" },
		"proc/cpuinfo": func(s string) bool {
			return strings.Count(s, "\nprocessor") == 0 && strings.HasPrefix(s, "processor\t: 0\n")
		},
		"proc/uptime":  func(s string) bool { f := strings.Fields(s); return len(f) == 2 && len(f[0]) <= 5 },
		"proc/loadavg": func(s string) bool { return strings.HasSuffix(s, "/1 1\n") },
		"proc/stat": func(s string) bool {
			return strings.HasPrefix(s, "cpu  ") && strings.Contains(s, "\ncpu0 ") && !strings.Contains(s, "\ncpu1 ")
		},
		"proc/swaps":     func(s string) bool { return strings.HasPrefix(s, "Filename\t") },
		"proc/diskstats": sameFieldCount("/proc/diskstats"),
		"proc/vmstat":    sameFieldCount("/proc/vmstat"),
	}
	for _, name := range procfs.Files {
		out, err := procfs.Render(name, c)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if !want[name](string(out)) {
			t.Errorf("%s:\n%s", name, out)
		}
	}
	var si unix.Sysinfo_t
	if err := procfs.Sysinfo(c, &si); err != nil || si.Totalram != 64<<20 || si.Procs != 1 || si.Uptime > 60 {
		t.Errorf("sysinfo: %+v, %v; want 64 MiB, 1 task, its own uptime", si, err)
	}
	e.mustLkc("delete", "--force", id)
	for _, name := range procfs.Files {
		if _, err := procfs.Render(name, c); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s of a deleted container: %v; want fs.ErrNotExist", name, err)
		}
	}
}

// sameFieldCount checks that every line has as many fields as the host
// file's first line.
func sameFieldCount(host string) func(string) bool {
	return func(s string) bool {
		data, err := os.ReadFile(host)
		first, _, _ := strings.Cut(string(data), "\n")
		for _, line := range strings.Split(strings.TrimSpace(s), "\n") {
			if line != "" && (err != nil || len(strings.Fields(line)) != len(strings.Fields(first))) {
				return false
			}
		}
		return true
	}
}
