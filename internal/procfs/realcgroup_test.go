package procfs

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lkc-containers/lkc/internal/cgroups/cgroupfs"
	"github.com/lkc-containers/lkc/internal/effective"
	"github.com/lkc-containers/lkc/internal/testutil"
)

// realContainer makes a cgroup beneath this test's own (in every v1
// hierarchy it needs, or in its v2 cgroup when the controllers are
// delegated to it) with 64 MiB and half a CPU, starts a sleep in it, and
// removes both at the end.
func realContainer(t testing.TB) *Container {
	testutil.RequiresRoot(t)
	own, err := effective.ForPid("/", os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("lkc-procfs-%d", time.Now().UnixNano())
	c := &Container{Cgroups: map[string]string{}, Started: time.Now()}
	limits := map[string]map[string]string{}
	if dir, ok := cgroupfs.V2Dir(own); ok || own["memory"] == "" {
		if !ok {
			t.Skip("no memory cgroup")
		}
		sub, _ := os.ReadFile(filepath.Join(dir, "cgroup.subtree_control"))
		for _, ctrl := range []string{"memory", "cpu", "pids"} {
			if !strings.Contains(string(sub), ctrl) {
				t.Skipf("the %s controller is not delegated to this test's cgroup %s", ctrl, dir)
			}
		}
		c.Cgroups[""] = filepath.Join(dir, name)
		limits[""] = map[string]string{"memory.max": "67108864", "cpu.max": "50000 100000"}
	} else {
		for h, dir := range own {
			for _, ctrl := range strings.Split(h, ",") {
				switch ctrl {
				case "memory", "pids", "blkio", "cpuacct":
					c.Cgroups[h] = filepath.Join(dir, name)
				case "cpu":
					c.Cgroups[h] = filepath.Join(dir, name)
					limits[h] = map[string]string{"cpu.cfs_quota_us": "50000"}
				case "cpuset":
					c.Cgroups[h] = filepath.Join(dir, name)
					limits[h] = map[string]string{"cpuset.cpus": read(t, dir, "cpuset.cpus"), "cpuset.mems": read(t, dir, "cpuset.mems")}
				}
			}
		}
		limits["memory"] = map[string]string{"memory.limit_in_bytes": "67108864"}
	}
	for h, dir := range c.Cgroups {
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { testutil.RemoveCgroupTree(t, dir) })
		for file, v := range limits[h] {
			if err := os.WriteFile(filepath.Join(dir, file), []byte(v), 0o644); err != nil {
				t.Fatalf("%s/%s: %v", dir, file, err)
			}
		}
	}
	sleep := exec.Command("sleep", "60")
	sleep.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := sleep.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sleep.Process.Kill(); sleep.Wait() })
	for _, dir := range c.Cgroups {
		if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(fmt.Sprint(sleep.Process.Pid)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	c.InitPid = sleep.Process.Pid
	return c
}

func read(t testing.TB, dir, file string) string {
	data, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(data))
}

// TestRenderRealCgroup renders every file from a real cgroup of this
// kernel: the counters' files parse, and the limits show.
func TestRenderRealCgroup(t *testing.T) {
	c := realContainer(t)
	for _, name := range Files {
		out, err := Render(name, c)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		t.Logf("%s:\n%s", name, out)
		switch name {
		case "proc/meminfo":
			if !strings.HasPrefix(string(out), "MemTotal:          65536 kB\n") {
				t.Errorf("meminfo starts %.40q; want MemTotal 65536 kB", out)
			}
		case "sys/devices/system/cpu/online":
			if string(out) != "0\n" {
				t.Errorf("online = %q; want 0", out)
			}
		case "proc/loadavg":
			if !strings.HasSuffix(string(out), fmt.Sprintf(" %d\n", c.InitPid)) {
				t.Errorf("loadavg = %q; want the sleep's pid last (no pid namespace)", out)
			}
		}
	}
}

// BenchmarkRender measures each file rendered from a real cgroup (the
// daemon renders once per open).
func BenchmarkRender(b *testing.B) {
	c := realContainer(b)
	for _, name := range Files {
		b.Run(filepath.Base(name), func(b *testing.B) {
			for range b.N {
				if _, err := Render(name, c); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
