package cgroups

import (
	"context"
	"math"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	mustMkdir(t, dir)
	for name, data := range files {
		mustWrite(t, filepath.Join(dir, name), data)
	}
}

func TestV1StatsFromFakeFiles(t *testing.T) {
	dir := t.TempDir()
	m := &v1{dirs: map[string]string{
		"cpu,cpuacct": filepath.Join(dir, "cpu"), "memory": filepath.Join(dir, "memory"),
		"pids": filepath.Join(dir, "pids"), "blkio": filepath.Join(dir, "blkio"),
		"cpuset": filepath.Join(dir, "cpuset"),
	}}
	writeFiles(t, m.dirs["cpu,cpuacct"], map[string]string{
		"cpuacct.usage":             "3000000000\n",
		"cpuacct.usage_percpu":      "1000000000 2000000000 \n",
		"cpuacct.usage_percpu_sys":  "100 200 \n",
		"cpuacct.usage_percpu_user": "300 400 \n",
		"cpuacct.stat":              "user 150\nsystem 50\n",
		"cpu.stat":                  "nr_periods 10\nnr_throttled 3\nthrottled_time 7000\n",
	})
	writeFiles(t, m.dirs["cpuset"], map[string]string{
		"cpuset.cpus": "0-2,5\n", "cpuset.mems": "0\n", "cpuset.sched_load_balance": "1\n",
		"cpuset.sched_relax_domain_level": "-1\n", "cpuset.memory_pressure": "7\n",
	})
	writeFiles(t, m.dirs["memory"], map[string]string{
		"memory.usage_in_bytes": "4096\n", "memory.max_usage_in_bytes": "8192\n",
		"memory.failcnt": "2\n", "memory.limit_in_bytes": "33554432\n",
		"memory.memsw.usage_in_bytes": "5000\n", "memory.memsw.limit_in_bytes": "9223372036854771712\n",
		"memory.stat":        "cache 1024\nrss 3072\n",
		"memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n",
	})
	writeFiles(t, m.dirs["pids"], map[string]string{"pids.current": "3\n", "pids.max": "max\n"})
	writeFiles(t, m.dirs["blkio"], map[string]string{
		"blkio.throttle.io_service_bytes": "8:0 Read 100\n8:0 Write 200\nTotal 300\n",
	})
	s, err := m.Stats()
	if err != nil {
		t.Fatal(err)
	}
	want := &Stats{
		CPU: CPU{
			Usage: CPUUsage{Total: 3e9, Percpu: []uint64{1e9, 2e9}, PercpuKernel: []uint64{100, 200},
				PercpuUser: []uint64{300, 400}, User: 1.5e9, Kernel: 0.5e9},
			Throttling: Throttling{Periods: 10, ThrottledPeriods: 3, ThrottledTime: 7000},
		},
		CPUSet: CPUSet{CPUs: []uint16{0, 1, 2, 5}, Mems: []uint16{0}, SchedLoadBalance: 1,
			SchedRelaxDomainLevel: -1, MemoryPressure: 7},
		Memory: Memory{
			Cache:   1024,
			OOMKill: 3,
			Usage:   MemoryEntry{Usage: 4096, Max: 8192, Failcnt: 2, Limit: 32 << 20},
			Swap:    MemoryEntry{Usage: 5000, Limit: 9223372036854771712},
			Raw:     map[string]uint64{"cache": 1024, "rss": 3072},
		},
		Pids: Pids{Current: 3},
		Blkio: Blkio{IoServiceBytesRecursive: []BlkioEntry{
			{Major: 8, Op: "Read", Value: 100}, {Major: 8, Op: "Write", Value: 200},
		}},
		Hugetlb: map[string]Hugetlb{},
	}
	if !reflect.DeepEqual(s, want) {
		t.Errorf("stats\n got %+v\nwant %+v", s, want)
	}
}

func TestV2StatsFromFakeFiles(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"cpu.stat":            "usage_usec 3000\nuser_usec 2000\nsystem_usec 1000\nnr_periods 4\nnr_throttled 1\nthrottled_usec 5\n",
		"memory.current":      "4096\n",
		"memory.peak":         "8192\n",
		"memory.max":          "max\n",
		"memory.swap.current": "100\n",
		"memory.swap.max":     "1000\n",
		"memory.events":       "low 0\nhigh 0\nmax 7\noom 1\noom_kill 1\n",
		"memory.stat":         "anon 3072\nfile 1024\n",
		"pids.current":        "2\n",
		"pids.max":            "64\n",
		"io.stat":             "259:0 rbytes=10 wbytes=20 rios=1 wios=2 dbytes=0 dios=0\n",
	})
	s, err := (&v2{dir: dir}).Stats()
	if err != nil {
		t.Fatal(err)
	}
	want := &Stats{
		CPU: CPU{
			Usage:      CPUUsage{Total: 3e6, User: 2e6, Kernel: 1e6},
			Throttling: Throttling{Periods: 4, ThrottledPeriods: 1, ThrottledTime: 5000},
		},
		Memory: Memory{
			Cache:   1024,
			OOMKill: 1,
			Usage:   MemoryEntry{Usage: 4096, Max: 8192, Failcnt: 7, Limit: math.MaxUint64},
			Swap:    MemoryEntry{Usage: 4196, Limit: math.MaxUint64},
			Raw:     map[string]uint64{"anon": 3072, "file": 1024},
		},
		Pids: Pids{Current: 2, Limit: 64},
		Blkio: Blkio{
			IoServiceBytesRecursive: []BlkioEntry{{Major: 259, Op: "Read", Value: 10}, {Major: 259, Op: "Write", Value: 20}},
			IoServicedRecursive:     []BlkioEntry{{Major: 259, Op: "Read", Value: 1}, {Major: 259, Op: "Write", Value: 2}},
		},
		Hugetlb: map[string]Hugetlb{},
	}
	if !reflect.DeepEqual(s, want) {
		t.Errorf("stats\n got %+v\nwant %+v", s, want)
	}
}

// A cgroup without controllers' files (or a kernel without them) gives
// zeros, not an error.
func TestStatsMissingFiles(t *testing.T) {
	dir := t.TempDir()
	if _, err := (&v2{dir: dir}).Stats(); err != nil {
		t.Errorf("v2: %v", err)
	}
	if _, err := (&v1{dirs: map[string]string{"memory": dir, "pids": dir}}).Stats(); err != nil {
		t.Errorf("v1: %v", err)
	}
	writeFiles(t, dir, map[string]string{"pids.current": "x\n"})
	if _, err := (&v2{dir: dir}).Stats(); err == nil {
		t.Error("v2: garbage in pids.current is not an error")
	}
}

// TestV2OOMEventsOnFakeFile drives the inotify watcher with a plain file:
// each rise of oom_kill is one event, other changes none.
func TestV2OOMEventsOnFakeFile(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "memory.events")
	mustWrite(t, file, "oom 0\noom_kill 2\n")
	ctx, cancel := context.WithCancel(context.Background())
	ch, err := (&v2{dir: dir}).OOMEvents(ctx)
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, file, "oom 1\noom_kill 2\n")
	mustWrite(t, file, "oom 2\noom_kill 4\n")
	for i := 0; i < 2; i++ {
		select {
		case <-ch:
		case <-time.After(5 * time.Second):
			t.Fatalf("event %d never came", i+1)
		}
	}
	select {
	case <-ch:
		t.Fatal("a third event for two kills")
	case <-time.After(50 * time.Millisecond):
	}
	cancel()
	select {
	case _, ok := <-ch:
		if ok {
			t.Fatal("event after cancel")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("channel not closed after cancel")
	}
}

func TestInotifyGone(t *testing.T) {
	ev := func(mask uint32, name string) []byte {
		b := make([]byte, 16+len(name))
		b[4], b[5], b[6], b[7] = byte(mask), byte(mask>>8), byte(mask>>16), byte(mask>>24)
		b[12] = byte(len(name))
		copy(b[16:], name)
		return b
	}
	if inotifyGone(ev(0x2, "")) {
		t.Error("IN_MODIFY taken for gone")
	}
	if !inotifyGone(append(ev(0x2, "abcd"), ev(0x8000, "")...)) {
		t.Error("IN_IGNORED after a named event not seen")
	}
}

// Usage reads the counters lkc stats shows with the values Stats gives.
func TestUsageAgreesWithStats(t *testing.T) {
	dir := t.TempDir()
	m1 := &v1{dirs: map[string]string{
		"cpu,cpuacct": filepath.Join(dir, "cpu"), "memory": filepath.Join(dir, "memory"),
		"pids": filepath.Join(dir, "pids"), "blkio": filepath.Join(dir, "blkio"),
	}}
	writeFiles(t, m1.dirs["cpu,cpuacct"], map[string]string{"cpuacct.usage": "3000\n", "cpuacct.stat": "user 1\n"})
	writeFiles(t, m1.dirs["memory"], map[string]string{
		"memory.usage_in_bytes": "4096\n", "memory.limit_in_bytes": "8192\n", "memory.kmem.usage_in_bytes": "7\n",
		"memory.stat": "cache 1024\ntotal_inactive_file 100\n", "memory.oom_control": "oom_kill 2\n",
	})
	writeFiles(t, m1.dirs["pids"], map[string]string{"pids.current": "3\n", "pids.max": "9\n"})
	writeFiles(t, m1.dirs["blkio"], map[string]string{"blkio.throttle.io_service_bytes_recursive": "8:0 Read 100\n8:0 Write 200\nTotal 300\n"})
	v2dir := filepath.Join(dir, "v2")
	writeFiles(t, v2dir, map[string]string{
		"cpu.stat": "usage_usec 3\n", "memory.current": "4096\n", "memory.max": "8192\n",
		"memory.stat": "file 1024\ninactive_file 100\n", "memory.events": "oom_kill 2\n",
		"pids.current": "3\n", "pids.max": "9\n", "io.stat": "8:0 rbytes=100 wbytes=200\n",
	})
	for _, m := range []Manager{m1, &v2{dir: v2dir}} {
		full, err := m.Stats()
		if err != nil {
			t.Fatal(err)
		}
		part, err := m.Usage()
		if err != nil {
			t.Fatal(err)
		}
		if part.CPU.Usage.Total != full.CPU.Usage.Total || part.CPU.Usage.Total == 0 ||
			part.Memory.Usage.Usage != full.Memory.Usage.Usage || part.Memory.Usage.Limit != 8192 ||
			part.Memory.Cache != 1024 || part.Memory.OOMKill != 2 || !reflect.DeepEqual(part.Memory.Raw, full.Memory.Raw) ||
			part.Pids != full.Pids || part.Pids.Limit != 9 ||
			!reflect.DeepEqual(part.Blkio.IoServiceBytesRecursive, full.Blkio.IoServiceBytesRecursive) ||
			len(part.Blkio.IoServiceBytesRecursive) != 2 {
			t.Errorf("%T: usage %+v\ndoes not agree with stats %+v", m, part, full)
		}
	}
}

// v1 counts an OOM kill in the victim's own memory cgroup only: the
// container's count adds its sub-cgroups' (exec --cgroup), at any depth,
// in Stats and in Usage.
func TestV1OOMKillsCountSubCgroups(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "memory")
	m := &v1{dirs: map[string]string{"memory": dir}}
	writeFiles(t, dir, map[string]string{
		"memory.usage_in_bytes": "4096\n", "memory.limit_in_bytes": "8192\n", "memory.stat": "cache 0\n",
		"memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n",
	})
	writeFiles(t, filepath.Join(dir, "a"), map[string]string{"memory.oom_control": "oom_kill 2\n"})
	writeFiles(t, filepath.Join(dir, "a", "b"), map[string]string{"memory.oom_control": "oom_kill 1\n"})
	writeFiles(t, filepath.Join(dir, "c"), map[string]string{"memory.oom_control": "oom_kill 0\n"})
	full, err := m.Stats()
	if err != nil {
		t.Fatal(err)
	}
	part, err := m.Usage()
	if err != nil {
		t.Fatal(err)
	}
	if full.Memory.OOMKill != 6 || part.Memory.OOMKill != 6 {
		t.Errorf("oom_kill: Stats %d, Usage %d; want 6 (3 + 2 + 1 in sub-cgroups)", full.Memory.OOMKill, part.Memory.OOMKill)
	}
}
