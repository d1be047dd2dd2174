package procfs

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// now is the fake clock of every fixture.
var now = time.Date(2026, 12, 6, 3, 0, 0, 0, time.UTC)

// hostSwap is the swap the fixtures' host has (the real host may have
// none, which would hide the swap arithmetic).
const hostSwap = 1 << 30

// fixture is a fake machine: copies of this host's real /proc files (so
// renderers meet the formats of the kernel that runs the tests) with
// swap added, a cgroup tree for one container, and its threads.
type fixture struct {
	t    *testing.T
	root string
	host *Host
	c    *Container
	// elapsed is how far the host's clock has moved past now (pass).
	elapsed time.Duration
}

// pass moves the host's clock on by d: past cacheFor, a render reads the
// cgroups again rather than the container's cached CPU view.
func (f *fixture) pass(d time.Duration) { f.elapsed += d }

func (f *fixture) write(name, content string) {
	f.t.Helper()
	p := filepath.Join(f.root, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		f.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

// hostFile reads a file of the real machine.
func hostFile(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile("/" + name)
	if err != nil {
		t.Skipf("this host has no %s: %v", name, err)
	}
	return string(data)
}

var swapLine = regexp.MustCompile(`(?m)^Swap(Total|Free):\s+\d+ kB$`)

func newFixture(t *testing.T) *fixture {
	f := &fixture{t: t, root: t.TempDir()}
	f.host = &Host{Root: f.root, Now: func() time.Time { return now.Add(f.elapsed) }}
	for _, name := range []string{"proc/cpuinfo", "proc/stat", "proc/diskstats", "proc/vmstat", "sys/devices/system/cpu/online"} {
		f.write(name, hostFile(t, name))
	}
	f.write("proc/meminfo", swapLine.ReplaceAllStringFunc(hostFile(t, "proc/meminfo"), func(line string) string {
		return fmt.Sprintf("%-16s%8d kB", strings.Fields(line)[0], hostSwap>>10)
	}))
	f.write("proc/sys/vm/overcommit_ratio", "50\n")
	f.write("proc/uptime", "1000.00 1900.00\n")
	// Threads 101 (sleeping) and 102 (running, the newest: pid 7 in the
	// container's namespace), 103 blocked; 104 exited before it was read.
	f.write("proc/101/stat", statLine(101, "sh", 'S', 50000))
	f.write("proc/102/stat", statLine(102, "a) b", 'R', 60000))
	f.write("proc/102/status", "Name:\tx\nNSpid:\t102\t7\n")
	f.write("proc/103/stat", statLine(103, "io", 'D', 55000))
	f.c = &Container{Started: now.Add(-100 * time.Second), InitPid: 101}
	return f
}

// statLine is a /proc/<pid>/stat line with the given state and start time.
func statLine(pid int, comm string, state byte, start int) string {
	fields := make([]string, 52)
	for i := range fields {
		fields[i] = "0"
	}
	fields[0], fields[1], fields[2] = itoa(pid), "("+comm+")", string(state)
	fields[21] = itoa(start)
	return strings.Join(fields, " ") + "\n"
}

func itoa(i int) string { return strconv.Itoa(i) }

// firstDisk is the "major:minor" and name of the host's first block device.
func firstDisk(t *testing.T) (dev, name string) {
	for _, line := range strings.Split(hostFile(t, "proc/diskstats"), "\n") {
		if f := strings.Fields(line); len(f) > 3 {
			return f[0] + ":" + f[1], f[2]
		}
	}
	t.Skip("no block devices")
	return "", ""
}

const mib = 1 << 20

// v1 lays out a v1 container: memory 64 MiB (memsw 96 MiB) set on its
// parent, 10 MiB used and 2 MiB swapped; CPU quota 0.5; cpuset all
// online CPUs; I/O on the first disk.
func (f *fixture) v1() {
	unlimited := "9223372036854771712\n"
	dev, _ := firstDisk(f.t)
	cg := "sys/fs/cgroup/"
	for _, d := range []string{"memory", "memory/pod", "memory/pod/ctr", "cpu,cpuacct", "cpu,cpuacct/ctr",
		"cpuset", "cpuset/ctr", "blkio", "blkio/ctr", "pids", "pids/ctr"} {
		f.write(cg+d+"/cgroup.procs", "")
	}
	f.write(cg+"memory/memory.limit_in_bytes", unlimited)
	f.write(cg+"memory/memory.memsw.limit_in_bytes", unlimited)
	f.write(cg+"memory/pod/memory.limit_in_bytes", "67108864\n")
	f.write(cg+"memory/pod/memory.memsw.limit_in_bytes", "100663296\n")
	ctr := cg + "memory/pod/ctr/"
	f.write(ctr+"memory.limit_in_bytes", unlimited)
	f.write(ctr+"memory.memsw.limit_in_bytes", unlimited)
	f.write(ctr+"memory.usage_in_bytes", "10485760\n")
	f.write(ctr+"memory.memsw.usage_in_bytes", "12582912\n")
	f.write(ctr+"memory.stat", "cache 1\nrss 1\ntotal_cache 4194304\ntotal_rss 6291456\ntotal_rss_huge 2097152\n"+
		"total_shmem 1048576\ntotal_mapped_file 524288\ntotal_dirty 8192\ntotal_writeback 4096\ntotal_swap 2097152\n"+
		"total_active_anon 5242880\ntotal_inactive_anon 2097152\ntotal_active_file 2097152\ntotal_inactive_file 1048576\n"+
		"total_unevictable 0\ntotal_pgfault 5000\ntotal_pgmajfault 30\n")
	cpu := cg + "cpu,cpuacct/ctr/"
	f.write(cg+"cpu,cpuacct/cpu.cfs_quota_us", "-1\n")
	f.write(cg+"cpu,cpuacct/cpu.cfs_period_us", "100000\n")
	f.write(cpu+"cpu.cfs_quota_us", "50000\n")
	f.write(cpu+"cpu.cfs_period_us", "100000\n")
	f.write(cpu+"cpu.shares", "1024\n")
	f.write(cpu+"cpuacct.usage_percpu_user", "10000000000 20000000000 \n")
	f.write(cpu+"cpuacct.usage_percpu_sys", "1000000000 3000000000 \n")
	online := strings.TrimSpace(hostFile(f.t, "sys/devices/system/cpu/online"))
	f.write(cg+"cpuset/cpuset.cpus", online+"\n")
	f.write(cg+"cpuset/ctr/cpuset.cpus", online+"\n")
	f.write(cg+"cpuset/ctr/cpuset.effective_cpus", online+"\n")
	f.write(cg+"blkio/ctr/blkio.throttle.io_serviced_recursive",
		dev+" Read 10\n"+dev+" Write 20\n"+dev+" Sync 30\n"+dev+" Async 0\n"+dev+" Discard 0\n"+dev+" Total 30\nTotal 30\n")
	f.write(cg+"blkio/ctr/blkio.throttle.io_service_bytes_recursive",
		dev+" Read 40960\n"+dev+" Write 81920\n"+dev+" Total 122880\nTotal 122880\n")
	f.write(cg+"pids/ctr/tasks", "101\n102\n103\n104\n")
	f.write(cg+"pids/ctr/pids.max", "50\n")
	r := f.root + "/" + cg
	f.c.Cgroups = map[string]string{"memory": r + "memory/pod/ctr", "cpu,cpuacct": r + "cpu,cpuacct/ctr",
		"cpuset": r + "cpuset/ctr", "blkio": r + "blkio/ctr", "pids": r + "pids/ctr"}
}

// v2 lays out the same container on cgroup v2: memory.max 64 MiB on the
// container, swap.max 32 MiB, slab counters, cpu.max 0.5.
func (f *fixture) v2() {
	dev, _ := firstDisk(f.t)
	cg := "sys/fs/cgroup/"
	ctrls := "cpuset cpu io memory pids\n"
	f.write(cg+"cgroup.procs", "")
	f.write(cg+"cgroup.controllers", ctrls)
	f.write(cg+"ctr/cgroup.procs", "")
	f.write(cg+"ctr/cgroup.controllers", ctrls)
	ctr := cg + "ctr/"
	f.write(ctr+"memory.max", "67108864\n")
	f.write(ctr+"memory.swap.max", "33554432\n")
	f.write(ctr+"memory.current", "10485760\n")
	f.write(ctr+"memory.swap.current", "2097152\n")
	f.write(ctr+"memory.stat", "anon 6291456\nfile 4194304\nkernel_stack 65536\npagetables 131072\n"+
		"shmem 1048576\nfile_mapped 524288\nfile_dirty 8192\nfile_writeback 4096\nanon_thp 2097152\n"+
		"active_anon 5242880\ninactive_anon 2097152\nactive_file 2097152\ninactive_file 1048576\n"+
		"unevictable 0\nslab_reclaimable 3145728\nslab_unreclaimable 1048576\nslab 4194304\n"+
		"pgfault 5000\npgmajfault 30\npswpin 4\npswpout 6\n")
	f.write(ctr+"cpu.max", "50000 100000\n")
	f.write(ctr+"cpu.stat", "usage_usec 34000000\nuser_usec 30000000\nsystem_usec 4000000\n")
	f.write(ctr+"cpuset.cpus.effective", strings.TrimSpace(hostFile(f.t, "sys/devices/system/cpu/online"))+"\n")
	f.write(ctr+"io.stat", dev+" rbytes=40960 wbytes=81920 rios=10 wios=20 dbytes=0 dios=0\n")
	f.write(ctr+"cgroup.threads", "101\n102\n103\n104\n")
	f.write(ctr+"pids.max", "50\n")
	f.c.Cgroups = map[string]string{"": f.root + "/" + cg + "ctr"}
}

func (f *fixture) render(name string) string {
	f.t.Helper()
	out, err := f.host.Render(name, f.c)
	if err != nil {
		f.t.Fatalf("Render(%s): %v", name, err)
	}
	return string(out)
}
