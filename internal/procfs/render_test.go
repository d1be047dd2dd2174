package procfs

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/config"
	"github.com/lkc-containers/lkc/internal/state"
)

var meminfoLine = regexp.MustCompile(`^([^:]+):( +)(\d+)( kB)?$`)

// meminfoValues checks that rendered has the layout of the host's file
// (same fields in the same order, same units, values ending in the same
// column) and returns its values.
func meminfoValues(t *testing.T, host, rendered string) map[string]uint64 {
	t.Helper()
	hl, rl := strings.Split(host, "\n"), strings.Split(rendered, "\n")
	if len(hl) != len(rl) {
		t.Fatalf("%d lines rendered; the host has %d", len(rl), len(hl))
	}
	out := map[string]uint64{}
	for i := range hl {
		if hl[i] == "" && rl[i] == "" {
			continue
		}
		h, r := meminfoLine.FindStringSubmatch(hl[i]), meminfoLine.FindStringSubmatch(rl[i])
		if h == nil || r == nil || h[1] != r[1] || h[4] != r[4] {
			t.Fatalf("line %d: %q; the host's is %q", i, rl[i], hl[i])
		}
		if len(h[3]) <= 8 && len(r[3]) <= 8 && len(hl[i]) != len(rl[i]) {
			t.Errorf("line %d: %q is not aligned as the host's %q", i, rl[i], hl[i])
		}
		out[r[1]], _ = strconv.ParseUint(r[3], 10, 64)
	}
	return out
}

func checkValues(t *testing.T, got map[string]uint64, want map[string]uint64) {
	t.Helper()
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %d; want %d", k, got[k], v)
		}
	}
}

// TestMeminfoV1 reads the limits the kernel states in memory.stat
// (hierarchical_*), and walks the ancestors' files where it does not.
func TestMeminfoV1(t *testing.T) {
	for _, hierarchical := range []bool{true, false} {
		f := newFixture(t)
		f.v1()
		if hierarchical {
			stat, _ := os.ReadFile(f.root + "/sys/fs/cgroup/memory/pod/ctr/memory.stat")
			f.write("sys/fs/cgroup/memory/pod/ctr/memory.stat", string(stat)+
				"hierarchical_memory_limit 67108864\nhierarchical_memsw_limit 100663296\n")
			f.write("sys/fs/cgroup/memory/pod/memory.limit_in_bytes", "1\n")
		}
		checkMeminfoV1(t, f)
	}
}

func checkMeminfoV1(t *testing.T, f *fixture) {
	host, _ := os.ReadFile(f.root + "/proc/meminfo")
	got := meminfoValues(t, string(host), f.render("proc/meminfo"))
	checkValues(t, got, map[string]uint64{
		"MemTotal": 65536, "MemFree": 55296, "MemAvailable": 57344, "Buffers": 0, "Cached": 4096,
		"Active": 7168, "Inactive": 3072, "Active(anon)": 5120, "Inactive(anon)": 2048,
		"Active(file)": 2048, "Inactive(file)": 1024, "Shmem": 1024, "AnonPages": 6144, "Mapped": 512,
		"Dirty": 8, "Writeback": 4, "AnonHugePages": 2048, "SwapTotal": 32768, "SwapFree": 30720,
		"CommitLimit": 65536, "Committed_AS": 8192, "KReclaimable": 0, "Slab": 0, "VmallocTotal": hostValue(t, string(host), "VmallocTotal"),
	})
}

func TestMeminfoV2(t *testing.T) {
	f := newFixture(t)
	f.v2()
	host, _ := os.ReadFile(f.root + "/proc/meminfo")
	got := meminfoValues(t, string(host), f.render("proc/meminfo"))
	checkValues(t, got, map[string]uint64{
		"MemTotal": 65536, "MemFree": 55296, "MemAvailable": 60416, "Cached": 4096, "Shmem": 1024,
		"KReclaimable": 3072, "Slab": 4096, "SReclaimable": 3072, "SUnreclaim": 1024,
		"KernelStack": 64, "PageTables": 128, "SwapTotal": 32768, "SwapFree": 30720,
		"CommitLimit": 65536, "Committed_AS": 8192,
	})
}

// TestHostMeminfoKeptForCacheFor: the host's meminfo is read and parsed
// at most once per cacheFor for every container; a change of it (here
// VmallocTotal, a field kept from the host) shows after it, while the
// container's own numbers are read on every render.
func TestHostMeminfoKeptForCacheFor(t *testing.T) {
	f := newFixture(t)
	f.v1()
	host, _ := os.ReadFile(f.root + "/proc/meminfo")
	was := hostValue(t, string(host), "VmallocTotal")
	changed := regexp.MustCompile(`(?m)^VmallocTotal:\s+\d+ kB$`).ReplaceAllString(string(host), fmt.Sprintf("VmallocTotal:   %8d kB", was+1))
	if got := meminfoValues(t, string(host), f.render("proc/meminfo"))["VmallocTotal"]; got != was {
		t.Fatalf("VmallocTotal = %d kB; want the host's %d", got, was)
	}
	f.write("proc/meminfo", changed)
	f.write("sys/fs/cgroup/memory/pod/ctr/memory.usage_in_bytes", "20971520\n")
	got := meminfoValues(t, string(host), f.render("proc/meminfo"))
	if got["VmallocTotal"] != was {
		t.Errorf("within cacheFor: VmallocTotal = %d kB; want the kept %d", got["VmallocTotal"], was)
	}
	if got["MemFree"] != 65536-20480 {
		t.Errorf("within cacheFor: MemFree = %d kB; want %d, the container's usage read again", got["MemFree"], 65536-20480)
	}
	f.pass(cacheFor)
	if got := meminfoValues(t, changed, f.render("proc/meminfo"))["VmallocTotal"]; got != was+1 {
		t.Errorf("after cacheFor: VmallocTotal = %d kB; want %d", got, was+1)
	}
}

// TestMeminfoNoHostLeak checks lxcfs's bug (issue 16): KReclaimable,
// Committed_AS and CommitLimit keep the host's values there. Here no
// field but the address-space ones may show the host's number when the
// container's differs: the fixture's container has values unlike any
// host's, so a host value showing through is caught.
func TestMeminfoNoHostLeak(t *testing.T) {
	for _, layout := range []string{"v1", "v2"} {
		f := newFixture(t)
		map[string]func(){"v1": f.v1, "v2": f.v2}[layout]()
		host, _ := os.ReadFile(f.root + "/proc/meminfo")
		got := meminfoValues(t, string(host), f.render("proc/meminfo"))
		for _, k := range []string{"KReclaimable", "Committed_AS", "CommitLimit", "MemTotal", "MemFree", "MemAvailable", "Cached", "Active", "Inactive"} {
			if hv := hostValue(t, string(host), k); got[k] == hv && hv != 0 {
				t.Errorf("%s: %s shows the host's %d kB", layout, k, hv)
			}
		}
		for k, v := range got {
			if !hostKept[k] && v > 65536+32768 {
				t.Errorf("%s: %s = %d kB, more than the container's memory and swap", layout, k, v)
			}
		}
	}
}

// TestMeminfoLimitAboveHost: a container without a memory limit, or with
// one above the host's memory, shows the host's MemTotal and no more free
// or available than the host has, as does one whose limit leaves more
// than the host has free; VmallocUsed and DirectMap* (the host kernel's
// own) are 0.
func TestMeminfoLimitAboveHost(t *testing.T) {
	for _, limit := range []string{"9223372036854771712", "1099511627776000", "67108864"} {
		f := newFixture(t)
		f.v1()
		host, _ := os.ReadFile(f.root + "/proc/meminfo")
		hostFree := uint64(4096)
		if limit != "67108864" {
			hostFree = hostValue(t, string(host), "MemFree")
		} else {
			host = regexp.MustCompile(`(?m)^MemFree:\s+\d+ kB$`).ReplaceAll(host, []byte(fmt.Sprintf("MemFree:        %8d kB", hostFree)))
			host = regexp.MustCompile(`(?m)^MemAvailable:\s+\d+ kB$`).ReplaceAll(host, []byte("MemAvailable:       6144 kB"))
			f.write("proc/meminfo", string(host))
		}
		f.write("sys/fs/cgroup/memory/pod/memory.limit_in_bytes", limit+"\n")
		f.write("sys/fs/cgroup/memory/pod/memory.memsw.limit_in_bytes", "9223372036854771712\n")
		got := meminfoValues(t, string(host), f.render("proc/meminfo"))
		wantTotal := min(hostValue(t, string(host), "MemTotal"), 65536)
		if limit != "67108864" {
			wantTotal = hostValue(t, string(host), "MemTotal")
		}
		if got["MemTotal"] != wantTotal || got["MemFree"] != hostFree || got["MemAvailable"] > hostValue(t, string(host), "MemAvailable") {
			t.Errorf("limit %s: MemTotal %d, MemFree %d, MemAvailable %d kB; want %d, %d (the host's free), at most the host's %d",
				limit, got["MemTotal"], got["MemFree"], got["MemAvailable"], wantTotal, hostFree, hostValue(t, string(host), "MemAvailable"))
		}
		for _, k := range []string{"VmallocUsed", "DirectMap4k", "DirectMap2M", "DirectMap1G"} {
			if v, ok := got[k]; ok && v != 0 {
				t.Errorf("limit %s: %s = %d kB, the host kernel's; want 0", limit, k, v)
			}
		}
		var si unix.Sysinfo_t
		if err := f.host.Sysinfo(f.c, &si); err != nil || si.Freeram != got["MemFree"]<<10 || si.Totalram != got["MemTotal"]<<10 {
			t.Errorf("limit %s: sysinfo %+v, %v; want meminfo's total and free", limit, si, err)
		}
	}
}

// TestVmstat: the host's counters in its order, with the container's
// memory in pages, its faults and swap-ins (v2 only) and the kB it read
// and wrote; every other counter 0.
func TestVmstat(t *testing.T) {
	host := hostFile(t, "proc/vmstat")
	var keys []string
	for _, line := range strings.Split(strings.TrimSpace(host), "\n") {
		keys = append(keys, strings.Fields(line)[0])
	}
	page := uint64(os.Getpagesize()) >> 10
	for _, layout := range []string{"v1", "v2"} {
		f := newFixture(t)
		map[string]func(){"v1": f.v1, "v2": f.v2}[layout]()
		want := map[string]uint64{"nr_free_pages": 55296 / page, "nr_file_pages": 4096 / page, "nr_active_anon": 5120 / page,
			"nr_shmem": 1024 / page, "pgpgin": 40, "pgpgout": 80, "pgfault": 5000, "pgmajfault": 30}
		if layout == "v2" {
			want["pswpin"], want["pswpout"], want["nr_slab_reclaimable"], want["nr_kernel_stack"] = 4, 6, 3072/page, 64
		}
		var got []string
		for _, line := range strings.Split(strings.TrimSpace(f.render("proc/vmstat")), "\n") {
			fields := strings.Fields(line)
			if len(fields) != 2 {
				t.Fatalf("%s: line %q", layout, line)
			}
			got = append(got, fields[0])
			v, err := strconv.ParseUint(fields[1], 10, 64)
			if w, ok := want[fields[0]]; err != nil || (ok && v != w) || (!ok && v != 0 && !vmstatShown(fields[0])) {
				t.Errorf("%s: %s = %s; want %d", layout, fields[0], fields[1], w)
			}
		}
		if strings.Join(got, " ") != strings.Join(keys, " ") {
			t.Errorf("%s: the counters differ from the host's, or their order", layout)
		}
	}
}

// vmstatShown says whether renderVmstat shows the container's own value
// of the counter.
func vmstatShown(key string) bool {
	_, page := vmstatPages[key]
	_, event := vmstatEvents[key]
	return page || event || key == "nr_kernel_stack"
}

func hostValue(t *testing.T, meminfo, key string) uint64 {
	for _, line := range strings.Split(meminfo, "\n") {
		if m := meminfoLine.FindStringSubmatch(line); m != nil && m[1] == key {
			v, _ := strconv.ParseUint(m[3], 10, 64)
			return v
		}
	}
	return 0
}

func TestCpuinfoAndOnline(t *testing.T) {
	for _, layout := range []string{"v1", "v2"} {
		f := newFixture(t)
		map[string]func(){"v1": f.v1, "v2": f.v2}[layout]()
		if got := f.render("sys/devices/system/cpu/online"); got != "0\n" {
			t.Errorf("%s: online = %q; want 0 (quota 0.5 CPU)", layout, got)
		}
		info := f.render("proc/cpuinfo")
		if n := strings.Count(info, "processor\t: "); n != 1 || !strings.HasPrefix(info, "processor\t: 0\n") {
			t.Errorf("%s: cpuinfo has %d processors; want one, numbered 0:\n%s", layout, n, info)
		}
		for _, want := range []string{"\nsiblings\t: 1\n", "\ncpu cores\t: 1\n"} {
			if strings.Contains(hostFile(t, "proc/cpuinfo"), strings.Split(want, ":")[0]) && !strings.Contains(info, want) {
				t.Errorf("%s: cpuinfo lacks %q", layout, want)
			}
		}
		host := strings.SplitAfter(hostFile(t, "proc/cpuinfo"), "\n\n")[0]
		if strings.Count(info, "\n") != strings.Count(host, "\n") {
			t.Errorf("%s: the CPU's block has %d lines; the host's %d", layout, strings.Count(info, "\n"), strings.Count(host, "\n"))
		}
	}
}

// twoCPUFixture is a v1 container with no CPU quota on a host with CPUs
// 0-1 online (others skip).
func twoCPUFixture(t *testing.T) *fixture {
	f := newFixture(t)
	f.v1()
	online := strings.TrimSpace(hostFile(t, "sys/devices/system/cpu/online"))
	if online != "0-1" {
		t.Skipf("needs 2 CPUs online; this host has %s", online)
	}
	f.write("sys/fs/cgroup/cpu,cpuacct/ctr/cpu.cfs_quota_us", "-1\n")
	return f
}

// TestCpusetVisible shows every CPU of the cpuset, with cpuacct's own
// per-CPU split, when no quota narrows it.
func TestCpusetVisible(t *testing.T) {
	f := twoCPUFixture(t)
	if got := f.render("sys/devices/system/cpu/online"); got != "0-1\n" {
		t.Errorf("online = %q; want 0-1", got)
	}
	stat := f.render("proc/stat")
	for _, want := range []string{"cpu0 1000 0 100 8900 ", "cpu1 2000 0 300 7700 ", "cpu  3000 0 400 16600 "} {
		if !strings.Contains(stat, want) {
			t.Errorf("stat lacks %q:\n%s", want, stat)
		}
	}
	f.write("sys/fs/cgroup/cpuset/ctr/cpuset.cpus", "1\n")
	f.write("sys/fs/cgroup/cpuset/ctr/cpuset.effective_cpus", "1\n")
	f.pass(cacheFor)
	if got := f.render("sys/devices/system/cpu/online"); got != "1\n" {
		t.Errorf("cpuset 1: online = %q; want 1, the number the container's affinity has", got)
	}
	info, stat := f.render("proc/cpuinfo"), f.render("proc/stat")
	if strings.Count(info, "processor") != 1 || !strings.HasPrefix(info, "processor\t: 1\n") {
		t.Errorf("cpuset 1: cpuinfo does not show processor 1 alone:\n%s", info)
	}
	if !strings.Contains(stat, "\ncpu1 2000 0 300 ") || strings.Contains(stat, "\ncpu0 ") {
		t.Errorf("cpuset 1: stat does not show cpu1 alone:\n%s", stat)
	}
}

// TestCpusetWithHoles: a cpuset "0,2-3" shows CPUs 0, 2 and 3 under
// their own numbers in cpu/online, cpuinfo and stat (each with its own
// CPU time), and a quota of 1.5 CPUs the first two of them.
func TestCpusetWithHoles(t *testing.T) {
	f := newFixture(t)
	f.v1()
	block := strings.SplitAfter(hostFile(t, "proc/cpuinfo"), "\n\n")[0]
	if !strings.HasPrefix(block, "processor\t: 0\n") {
		t.Skipf("this host's cpuinfo does not start with processor 0: %.40q", block)
	}
	var info strings.Builder
	for cpu := range 4 {
		info.WriteString(strings.Replace(block, "processor\t: 0\n", fmt.Sprintf("processor\t: %d\n", cpu), 1))
	}
	f.write("proc/cpuinfo", info.String())
	f.write("sys/devices/system/cpu/online", "0-3\n")
	cg := "sys/fs/cgroup/"
	f.write(cg+"cpuset/cpuset.cpus", "0-3\n")
	f.write(cg+"cpuset/ctr/cpuset.cpus", "0,2-3\n")
	f.write(cg+"cpuset/ctr/cpuset.effective_cpus", "0,2-3\n")
	f.write(cg+"cpu,cpuacct/ctr/cpu.cfs_quota_us", "-1\n")
	f.write(cg+"cpu,cpuacct/ctr/cpuacct.usage_all", "cpu user system\n0 0 0\n1 0 0\n2 10000000000 0\n3 0 0\n")
	for _, c := range []struct {
		quota, online string
		cpus          []string
	}{{"-1", "0,2-3", []string{"0", "2", "3"}}, {"150000", "0,2", []string{"0", "2"}}} {
		f.write(cg+"cpu,cpuacct/ctr/cpu.cfs_quota_us", c.quota+"\n")
		f.pass(cacheFor)
		if got := f.render("sys/devices/system/cpu/online"); got != c.online+"\n" {
			t.Errorf("quota %s: online = %q; want %s", c.quota, got, c.online)
		}
		procs := regexp.MustCompile(`(?m)^processor\t: (\d+)$`).FindAllStringSubmatch(f.render("proc/cpuinfo"), -1)
		stat := regexp.MustCompile(`(?m)^cpu(\d+) `).FindAllStringSubmatch(f.render("proc/stat"), -1)
		if fmt.Sprint(column(procs)) != fmt.Sprint(c.cpus) || fmt.Sprint(column(stat)) != fmt.Sprint(c.cpus) {
			t.Errorf("quota %s: cpuinfo's processors %v, stat's cpuN %v; want %v", c.quota, column(procs), column(stat), c.cpus)
		}
		if stat := f.render("proc/stat"); c.quota == "-1" && !strings.Contains(stat, "\ncpu2 1000 0 0 ") {
			t.Errorf("host CPU 2's time is not on cpu2:\n%s", stat)
		}
	}
}

// column is the first group of each regexp match.
func column(matches [][]string) []string {
	var out []string
	for _, m := range matches {
		out = append(out, m[1])
	}
	return out
}

// TestCPUViewKeptForCacheFor: the visible CPUs are worked out from the
// cgroups at most once per cacheFor, and a change of the limits shows
// after it.
func TestCPUViewKeptForCacheFor(t *testing.T) {
	f := twoCPUFixture(t)
	if got := f.render("sys/devices/system/cpu/online"); got != "0-1\n" {
		t.Fatalf("online = %q; want 0-1", got)
	}
	f.write("sys/fs/cgroup/cpu,cpuacct/ctr/cpu.cfs_quota_us", "50000\n")
	f.pass(cacheFor / 2)
	if got := f.render("sys/devices/system/cpu/online"); got != "0-1\n" {
		t.Errorf("within cacheFor of the last answer: online = %q; want 0-1, the kept view", got)
	}
	if strings.Count(f.render("proc/cpuinfo"), "processor") != 2 {
		t.Errorf("within cacheFor: cpuinfo does not show the kept view's 2 CPUs")
	}
	f.pass(cacheFor / 2)
	if got := f.render("sys/devices/system/cpu/online"); got != "0\n" {
		t.Errorf("after cacheFor: online = %q; want 0 (quota 0.5 CPU)", got)
	}
	if !strings.HasPrefix(f.render("proc/stat"), "cpu  ") || strings.Contains(f.render("proc/stat"), "\ncpu1 ") {
		t.Errorf("after cacheFor: stat still shows cpu1")
	}
}

func TestStat(t *testing.T) {
	hostStat := hostFile(t, "proc/stat")
	for _, layout := range []string{"v1", "v2"} {
		f := newFixture(t)
		map[string]func(){"v1": f.v1, "v2": f.v2}[layout]()
		stat := f.render("proc/stat")
		want := fmt.Sprintf("cpu  3000 0 400 6600 0 0 0 0 0 0\ncpu0 3000 0 400 6600 0 0 0 0 0 0\n")
		if !strings.HasPrefix(stat, want) {
			t.Errorf("%s: stat starts %q; want %q", layout, stat[:min(len(stat), 80)], want)
		}
		for _, line := range []string{fmt.Sprintf("btime %d", hostBtime(t)),
			"processes 7", "procs_running 2", "procs_blocked 1", "ctxt 0"} {
			if !strings.Contains(stat, "\n"+line+"\n") {
				t.Errorf("%s: stat lacks %q", layout, line)
			}
		}
		checkFieldCounts(t, hostStat, stat)
	}
}

// hostBtime is the btime of this host's /proc/stat, which the fixtures
// copy.
func hostBtime(t *testing.T) int64 {
	t.Helper()
	btime, err := statValue(hostFile(t, "proc/stat"), "btime")
	if err != nil {
		t.Fatal(err)
	}
	return btime
}

// TestStatBtimeOfProcesses: btime is the boot time the container's
// processes' start times count from, not the container's start: the
// host's, or with a time namespace the host's boot (1000 s ago) less its
// boottime offset (-500.5 s puts it 500.5 s later), so ps shows when each
// process started. The namespace's boot is then also where uptime starts:
// its CLOCK_BOOTTIME (host uptime 1000 s + the offset), whatever the
// state carried from a checkpoint, as CRIU's restore sets the offset so
// that the clock goes on.
func TestStatBtimeOfProcesses(t *testing.T) {
	f := newFixture(t)
	f.v1()
	f.write("proc/101/timens_offsets", "monotonic           0         0\nboottime         -501 500000000\n")
	timens := &config.Config{Namespaces: []config.Namespace{{Type: "pid"}, {Type: "time"}}}
	carried := &state.Carried{RanNanos: int64(time.Hour)}
	c, err := f.host.ContainerFromState(&state.State{ID: "c", InitPid: 101, InitStart: 50000, CgroupPaths: f.c.Cgroups, Config: timens, Carried: carried})
	if err != nil {
		t.Fatal(err)
	}
	if c.BootOffset != -500500*time.Millisecond {
		t.Errorf("boot offset %v; want -500.5s", c.BootOffset)
	}
	f.c = c
	if want := fmt.Sprintf("\nbtime %d\n", now.Add(-499500*time.Millisecond).Unix()); !strings.Contains(f.render("proc/stat"), want) {
		t.Errorf("stat lacks %q", want)
	}
	if got := f.render("proc/uptime"); !strings.HasPrefix(got, "499.50 ") {
		t.Errorf("uptime %q; want the namespace's 499.50", got)
	}
}

// TestContainerFromStateWithoutTimens: a container without a time
// namespace counts from its init's start (50000 ticks: 500 s after the
// boot 1000 s ago), less what it ran before its checkpoint, and its
// btime is the host's; with one, an init whose offsets cannot be read is
// an error, not the host's clock.
func TestContainerFromStateWithoutTimens(t *testing.T) {
	f := newFixture(t)
	f.v1()
	carried := &state.Carried{RanNanos: int64(20 * time.Second)}
	c, err := f.host.ContainerFromState(&state.State{ID: "c", InitPid: 101, InitStart: 50000, CgroupPaths: f.c.Cgroups, Config: &config.Config{}, Carried: carried})
	if err != nil {
		t.Fatal(err)
	}
	if want := now.Add(-520 * time.Second); !c.Started.Equal(want) || c.BootOffset != 0 {
		t.Errorf("started %v, boot offset %v; want %v, 0", c.Started, c.BootOffset, want)
	}
	timens := &config.Config{Namespaces: []config.Namespace{{Type: "time"}}}
	if _, err := f.host.ContainerFromState(&state.State{ID: "c", InitPid: 101, CgroupPaths: f.c.Cgroups, Config: timens}); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("time namespace without offsets: %v; want ErrNotExist", err)
	}
}

// TestStatV1UsageAll: on v1, cpuacct.usage_all gives both CPU times in one
// read; the per-CPU user and system files serve only a kernel without it.
func TestStatV1UsageAll(t *testing.T) {
	f := newFixture(t)
	f.v1()
	f.write("sys/fs/cgroup/cpu,cpuacct/ctr/cpuacct.usage_all",
		"cpu user system\n0 20000000000 2000000000\n1 30000000000 4000000000\n")
	want := "cpu  5000 0 600 4400 0 0 0 0 0 0\ncpu0 5000 0 600 4400 0 0 0 0 0 0\n"
	if stat := f.render("proc/stat"); !strings.HasPrefix(stat, want) {
		t.Errorf("stat starts %q; want %q, usage_all's times", stat[:min(len(stat), 80)], want)
	}
}

// checkFieldCounts compares the number of fields of each line with the
// host's line of the same name (cpuN with cpu0).
func checkFieldCounts(t *testing.T, host, rendered string) {
	t.Helper()
	counts := map[string]int{}
	name := func(f string) string {
		if strings.HasPrefix(f, "cpu") && f != "cpu" {
			return "cpuN"
		}
		return f
	}
	var order []string
	for _, line := range strings.Split(strings.TrimSpace(host), "\n") {
		f := strings.Fields(line)
		if _, seen := counts[name(f[0])]; !seen {
			order = append(order, name(f[0]))
		}
		counts[name(f[0])] = len(f)
	}
	var got []string
	for _, line := range strings.Split(strings.TrimSpace(rendered), "\n") {
		f := strings.Fields(line)
		if n, ok := counts[name(f[0])]; !ok || n != len(f) {
			t.Errorf("line %.40q: %d fields; the host's %s line has %d", line, len(f), f[0], n)
		}
		if len(got) == 0 || got[len(got)-1] != name(f[0]) {
			got = append(got, name(f[0]))
		}
	}
	if strings.Join(got, " ") != strings.Join(order, " ") {
		t.Errorf("lines in order %v; the host's %v", got, order)
	}
}

func TestUptimeAndLoadavg(t *testing.T) {
	for _, layout := range []string{"v1", "v2"} {
		f := newFixture(t)
		map[string]func(){"v1": f.v1, "v2": f.v2}[layout]()
		if got := f.render("proc/uptime"); got != "100.00 66.00\n" {
			t.Errorf("%s: uptime = %q; want 100.00 66.00", layout, got)
		}
		if got := f.render("proc/loadavg"); got != "0.00 0.00 0.00 2/3 7\n" {
			t.Errorf("%s: loadavg = %q; want 0.00 0.00 0.00 2/3 7 (the running thread and the reader; no host pid)", layout, got)
		}
	}
}

// TestLoadavgCountsReader: the reader of loadavg and stat counts as
// running, as the kernel's nr_running() counts it: a container whose
// only thread sleeps (the reader, waiting for the render) shows 1/1, one
// whose threads all run shows no more running than it has threads, and
// one with no thread left shows 0/0.
func TestLoadavgCountsReader(t *testing.T) {
	for _, c := range []struct {
		threads, loadavg, running string
	}{
		{"101\n", " 1/1 0\n", "procs_running 1\n"},
		{"102\n", " 1/1 7\n", "procs_running 1\n"},
		{"", " 0/0 0\n", "procs_running 0\n"},
	} {
		f := newFixture(t)
		f.v1()
		f.write("sys/fs/cgroup/pids/ctr/tasks", c.threads)
		if got := f.render("proc/loadavg"); !strings.HasSuffix(got, c.loadavg) {
			t.Errorf("threads %q: loadavg %q; want it to end %q", c.threads, got, c.loadavg)
		}
		if got := f.render("proc/stat"); !strings.Contains(got, "\n"+c.running) {
			t.Errorf("threads %q: stat lacks %q", c.threads, c.running)
		}
	}
}

// TestLoadSampling feeds 5 minutes of samples of 2 active tasks (1
// running, 1 blocked): the averages follow the kernel's curves
// 2·(1−e^(−t/τ)); then a 15-minute gap in sampling with no active task
// decays them by e^(−15min/τ), as if sampled all along.
func TestLoadSampling(t *testing.T) {
	f := newFixture(t)
	f.v1()
	f.c.Load = &Load{}
	at := now
	for i := 0; i < 60; i++ {
		if err := f.host.Sample(f.c.Load, f.c, at); err != nil {
			t.Fatal(err)
		}
		at = at.Add(5 * time.Second)
	}
	taus := []float64{60, 300, 900}
	var want [3]float64
	for i, tau := range taus {
		want[i] = 2 * (1 - math.Exp(-300/tau))
	}
	f.host.Now = func() time.Time { return at }
	checkLoad(t, "after 5 minutes at 2", f.render("proc/loadavg"), want, " 2/3 7\n")
	f.write("sys/fs/cgroup/pids/ctr/tasks", "101\n")
	later := at.Add(15 * time.Minute)
	if err := f.host.Sample(f.c.Load, f.c, later); err != nil {
		t.Fatal(err)
	}
	for i, tau := range taus {
		want[i] *= math.Exp(-900 / tau)
	}
	f.host.Now = func() time.Time { return later }
	checkLoad(t, "after 15 idle minutes", f.render("proc/loadavg"), want, " 1/1 7\n")
}

// TestLastPidNeverGoesBack: loadavg's last pid and stat's processes
// follow the newest thread seen, not the newest living one: they stay
// when it exits, move on with a newer thread, and count on when the
// namespace's pids wrap.
func TestLastPidNeverGoesBack(t *testing.T) {
	f := newFixture(t)
	f.v1()
	tasks := "sys/fs/cgroup/pids/ctr/tasks"
	check := func(when string, last, forks int) {
		t.Helper()
		if got := f.render("proc/loadavg"); !strings.HasSuffix(got, fmt.Sprintf(" %d\n", last)) {
			t.Errorf("%s: loadavg %q; want last pid %d", when, got, last)
		}
		if got := f.render("proc/stat"); !strings.Contains(got, fmt.Sprintf("\nprocesses %d\n", forks)) {
			t.Errorf("%s: stat lacks processes %d", when, forks)
		}
	}
	check("at first", 7, 7)
	f.write("proc/103/status", "NSpid:\t103\t5\n")
	f.write(tasks, "101\n103\n")
	check("the newest thread gone", 7, 7)
	f.write("proc/105/stat", statLine(105, "new", 'S', 70000))
	f.write("proc/105/status", "NSpid:\t105\t9\n")
	f.write(tasks, "101\n105\n")
	check("a newer thread", 9, 9)
	f.write("proc/106/stat", statLine(106, "wrapped", 'S', 80000))
	f.write("proc/106/status", "NSpid:\t106\t2\n")
	f.write(tasks, "101\n106\n")
	check("after the pids wrapped", 2, 11)
}

func checkLoad(t *testing.T, when, got string, want [3]float64, tail string) {
	t.Helper()
	f := strings.Fields(got)
	for i := range want {
		v, err := strconv.ParseFloat(f[i], 64)
		if err != nil || math.Abs(v-want[i]) > 0.03 {
			t.Errorf("%s: loadavg %q; want about %.2f %.2f %.2f", when, got, want[0], want[1], want[2])
			return
		}
	}
	if !strings.HasSuffix(got, tail) {
		t.Errorf("%s: loadavg %q; want it to end %q", when, got, tail)
	}
}

func TestDiskstats(t *testing.T) {
	dev, name := firstDisk(t)
	major, minor, _ := strings.Cut(dev, ":")
	for _, layout := range []string{"v1", "v2"} {
		f := newFixture(t)
		map[string]func(){"v1": f.v1, "v2": f.v2}[layout]()
		got := f.render("proc/diskstats")
		var hostLine string
		for _, l := range strings.Split(hostFile(t, "proc/diskstats"), "\n") {
			if strings.HasPrefix(l, fmt.Sprintf("%4s %7s %s ", major, minor, name)) {
				hostLine = l
			}
		}
		prefix := fmt.Sprintf("%4s %7s %s 10 0 80 0 20 0 160 0 0 0 0", major, minor, name)
		if !strings.HasPrefix(got, prefix) || strings.Count(got, "\n") != 1 ||
			len(strings.Fields(got)) != len(strings.Fields(hostLine)) {
			t.Errorf("%s: diskstats = %q; want one line %q... with the host's %d fields", layout, got, prefix, len(strings.Fields(hostLine)))
		}
	}
}

func TestSwaps(t *testing.T) {
	f := newFixture(t)
	f.v2()
	want := swapsHeader + "none                                    virtual\t\t32768\t\t2048\t\t-1\n"
	got := f.render("proc/swaps")
	if got != want {
		t.Errorf("swaps = %q; want %q", got, want)
	}
	// The kernel's columns line up under the header at tab stops of 8.
	lines := strings.Split(expandTabs(got), "\n")
	for _, col := range []struct{ head, value string }{{"Size", "32768"}, {"Used", "2048"}, {"Priority", "-1"}} {
		if h, v := strings.Index(lines[0], col.head), strings.Index(lines[1], col.value); h != v {
			t.Errorf("swaps: %s at column %d, its value at %d:\n%s", col.head, h, v, got)
		}
	}
	f.write("sys/fs/cgroup/ctr/memory.swap.max", "0\n")
	if got := f.render("proc/swaps"); got != swapsHeader {
		t.Errorf("no swap: swaps = %q; want the header alone", got)
	}
	if host := hostFile(t, "proc/swaps"); !strings.HasPrefix(host, swapsHeader) {
		t.Errorf("the host's /proc/swaps header %q is not %q", strings.SplitAfter(host, "\n")[0], swapsHeader)
	}
}

// expandTabs expands tabs to stops of 8 columns, as a terminal shows them.
func expandTabs(s string) string {
	var b strings.Builder
	col := 0
	for _, r := range s {
		switch r {
		case '\t':
			for n := 8 - col%8; n > 0; n-- {
				b.WriteByte(' ')
			}
			col += 8 - col%8
		case '\n':
			b.WriteRune(r)
			col = 0
		default:
			b.WriteRune(r)
			col++
		}
	}
	return b.String()
}

func TestSysinfo(t *testing.T) {
	f := newFixture(t)
	f.v1()
	var si unix.Sysinfo_t
	if err := f.host.Sysinfo(f.c, &si); err != nil {
		t.Fatal(err)
	}
	want := unix.Sysinfo_t{Uptime: 100, Totalram: 64 * mib, Freeram: 54 * mib, Sharedram: mib,
		Totalswap: 32 * mib, Freeswap: 30 * mib, Procs: 3, Unit: 1}
	if si != want {
		t.Errorf("sysinfo = %+v; want %+v", si, want)
	}
}

// TestRenderErrors: a cgroup deleted mid-read and a missing controller are
// errors the caller can tell apart, and an unknown file is fs.ErrNotExist.
func TestRenderErrors(t *testing.T) {
	f := newFixture(t)
	f.v1()
	delete(f.c.Cgroups, "memory")
	if _, err := f.host.Render("proc/meminfo", f.c); !errors.Is(err, ErrNoController) {
		t.Errorf("meminfo without memory: %v; want ErrNoController", err)
	}
	if _, err := f.host.Render("proc/swaps", f.c); !errors.Is(err, ErrNoController) {
		t.Errorf("swaps without memory: %v; want ErrNoController", err)
	}
	if err := f.host.Sysinfo(f.c, &unix.Sysinfo_t{}); !errors.Is(err, ErrNoController) {
		t.Errorf("sysinfo without memory: %v; want ErrNoController", err)
	}
	f = newFixture(t)
	f.v2()
	f.c.Load = &Load{}
	if err := f.host.Sample(f.c.Load, f.c, now); err != nil {
		t.Fatal(err)
	}
	for _, name := range Files { // what renders keep must not outlive the cgroup
		f.render(name)
	}
	if err := os.RemoveAll(f.c.Cgroups[""]); err != nil {
		t.Fatal(err)
	}
	for _, name := range Files {
		if _, err := f.host.Render(name, f.c); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s of a deleted cgroup: %v; want fs.ErrNotExist", name, err)
		}
	}
	if _, err := f.host.Render("proc/version", f.c); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("an unknown file: %v; want fs.ErrNotExist", err)
	}
}

// TestCgroupDirKeptForCacheFor: which directory serves a controller is
// found at most once per cacheFor (a deleted cgroup still fails at once:
// TestRenderErrors).
func TestCgroupDirKeptForCacheFor(t *testing.T) {
	f := newFixture(t)
	f.v1()
	f.render("proc/meminfo")
	delete(f.c.Cgroups, "memory")
	if _, err := f.host.Render("proc/meminfo", f.c); err != nil {
		t.Errorf("within cacheFor: %v; want the kept directory's meminfo", err)
	}
	f.pass(cacheFor)
	if _, err := f.host.Render("proc/meminfo", f.c); !errors.Is(err, ErrNoController) {
		t.Errorf("after cacheFor: %v; want ErrNoController", err)
	}
}

func TestContainerFromState(t *testing.T) {
	f := newFixture(t)
	f.v1()
	for _, initStart := range []uint64{50000, 0} {
		c, err := f.host.ContainerFromState(&state.State{ID: "c", InitPid: 101, InitStart: initStart, CgroupPaths: f.c.Cgroups})
		if err != nil {
			t.Fatal(err)
		}
		if want := now.Add(-500 * time.Second); !c.Started.Equal(want) || c.InitPid != 101 {
			t.Errorf("InitStart %d: started %v, init %d; want %v, 101", initStart, c.Started, c.InitPid, want)
		}
	}
	if _, err := f.host.ContainerFromState(&state.State{ID: "c", InitPid: 999}); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a dead init: %v; want fs.ErrNotExist", err)
	}
}

// TestOneLineFormats checks the one-line files against the pattern of the
// kernel's format, which this host's own files must match too (so the
// pattern is the kernel's, not the renderer's).
func TestOneLineFormats(t *testing.T) {
	f := newFixture(t)
	f.v2()
	for name, pattern := range map[string]string{
		"proc/loadavg":                  `^\d+\.\d\d \d+\.\d\d \d+\.\d\d \d+/\d+ \d+\n$`,
		"proc/uptime":                   `^\d+\.\d\d \d+\.\d\d\n$`,
		"sys/devices/system/cpu/online": `^\d+(-\d+)?(,\d+(-\d+)?)*\n$`,
	} {
		re := regexp.MustCompile(pattern)
		if host := hostFile(t, name); !re.MatchString(host) {
			t.Errorf("the host's %s %q does not match %s", name, host, pattern)
		}
		if got := f.render(name); !re.MatchString(got) {
			t.Errorf("%s %q does not match %s", name, got, pattern)
		}
	}
}

// TestRenderAllocations bounds what a render allocates, which the server
// then collects: each read into a buffer of its own, copied into a string
// at once, and each output built twice, was half of it.
func TestRenderAllocations(t *testing.T) {
	f := newFixture(t)
	f.v1()
	for name, most := range map[string]uint64{"proc/meminfo": 52 << 10, "proc/stat": 20 << 10} {
		f.render(name) // the kept host files and answers
		var before, after runtime.MemStats
		const n = 50
		runtime.ReadMemStats(&before)
		for range n {
			f.render(name)
		}
		runtime.ReadMemStats(&after)
		per := (after.TotalAlloc - before.TotalAlloc) / n
		if per > most {
			t.Errorf("a render of %s allocates %d bytes, want at most %d", name, per, most)
		}
	}
}

// TestMeminfoKernelWidths: the kernel prints most meminfo fields as a
// 16-column name and an 8-column number (show_val_kb), but the hugetlb
// counts and HardwareCorrupted as a 19-column name and a 5-column number
// (hugetlb_report_meminfo, meminfo_proc_show); each line must keep its
// own layout whatever its value's length.
func TestMeminfoKernelWidths(t *testing.T) {
	f := newFixture(t)
	f.v1()
	host, _ := os.ReadFile(f.root + "/proc/meminfo")
	hp := regexp.MustCompile(`(?m)^HugePages_Total:.*$`)
	lines := hp.ReplaceAllString(string(host), "HugePages_Total:   123456")
	if !hp.MatchString(string(host)) {
		lines += "HugePages_Total:   123456\n"
	}
	f.write("proc/meminfo", lines+"HardwareCorrupted:     4 kB\n")
	got := "\n" + f.render("proc/meminfo")
	for _, want := range []string{"\nHugePages_Total:   123456\n", "\nHardwareCorrupted:     0 kB\n", "\nMemTotal:          65536 kB\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("no line %q in\n%s", strings.Trim(want, "\n"), got)
		}
	}
}

// TestTasksInNestedCgroups: a container that makes cgroups of its own (a
// systemd inside it, which on v2 must leave its own cgroup without
// processes) still counts the threads in them: the thread lists of the
// container's cgroup and of every cgroup beneath it.
func TestTasksInNestedCgroups(t *testing.T) {
	for _, layout := range []string{"v1", "v2"} {
		f := newFixture(t)
		map[string]func(){"v1": f.v1, "v2": f.v2}[layout]()
		dir, file := f.c.Cgroups["pids"], "tasks"
		if layout == "v2" {
			dir, file = f.c.Cgroups[""], "cgroup.threads"
		}
		rel := strings.TrimPrefix(dir, f.root+"/")
		f.write(rel+"/"+file, "")
		f.write(rel+"/init.scope/cgroup.procs", "")
		f.write(rel+"/init.scope/"+file, "101\n")
		f.write(rel+"/system.slice/cgroup.procs", "")
		f.write(rel+"/system.slice/"+file, "")
		f.write(rel+"/system.slice/app.service/cgroup.procs", "")
		f.write(rel+"/system.slice/app.service/"+file, "102\n103\n104\n")
		if got := f.render("proc/loadavg"); got != "0.00 0.00 0.00 2/3 7\n" {
			t.Errorf("%s: loadavg = %q; want 0.00 0.00 0.00 2/3 7: the threads of the nested cgroups", layout, got)
		}
		var si unix.Sysinfo_t
		if err := f.host.Sysinfo(f.c, &si); err != nil || si.Procs != 3 {
			t.Errorf("%s: sysinfo procs = %d (%v); want 3", layout, si.Procs, err)
		}
	}
}

// TestCpuinfoOnePackage: the container's CPUs are shown as one package of
// n cores, also when the host's lie in several sockets: otherwise a
// program that multiplies the distinct "physical id"s by "cpu cores"
// counts n cores per socket.
func TestCpuinfoOnePackage(t *testing.T) {
	f := twoCPUFixture(t)
	blocks := strings.SplitAfter(hostFile(t, "proc/cpuinfo"), "\n\n")
	if !strings.Contains(blocks[0], "physical id") || len(blocks) < 2 {
		t.Skip("this host's cpuinfo has no physical id")
	}
	socket1 := regexp.MustCompile(`(?m)^physical id(\s*): \d+$`).ReplaceAllString(blocks[1], "physical id${1}: 1")
	f.write("proc/cpuinfo", blocks[0]+socket1+strings.Join(blocks[2:], ""))
	info := f.render("proc/cpuinfo")
	ids := regexp.MustCompile(`(?m)^physical id\s*: (\d+)$`).FindAllStringSubmatch(info, -1)
	if len(ids) != 2 || ids[0][1] != "0" || ids[1][1] != "0" {
		t.Errorf("physical ids %v; want both 0 (one package of 2 cores):\n%s", ids, info)
	}
}

// TestSysinfoUptimeRoundsUp: the kernel's sysinfo(2) counts a second
// begun as a whole one (tv_sec + 1 when tv_nsec is not 0), so a
// container 100.5 s old is up 101 s, and one just started is up 1 s.
func TestSysinfoUptimeRoundsUp(t *testing.T) {
	f := newFixture(t)
	f.v1()
	for _, c := range []struct {
		age  time.Duration
		want int64
	}{{100*time.Second + 500*time.Millisecond, 101}, {time.Millisecond, 1}, {100 * time.Second, 100}} {
		f.c.Started = now.Add(-c.age)
		var si unix.Sysinfo_t
		if err := f.host.Sysinfo(f.c, &si); err != nil || si.Uptime != c.want {
			t.Errorf("up %v: sysinfo uptime %d (%v); want %d", c.age, si.Uptime, err, c.want)
		}
	}
}

// TestSwapV2WithoutAccounting: a v2 kernel without swap accounting
// (cgroup.memory=noswap) has no memory.swap.* files; the container then
// swaps as the host does and its use is unknown, so it is shown the
// host's swap, SwapFree included, as on v1 without memsw.
func TestSwapV2WithoutAccounting(t *testing.T) {
	f := newFixture(t)
	f.v2()
	host, _ := os.ReadFile(f.root + "/proc/meminfo")
	used := regexp.MustCompile(`(?m)^SwapFree:.*$`).ReplaceAllString(string(host), fmt.Sprintf("%-16s%8d kB", "SwapFree:", hostSwap>>11))
	f.write("proc/meminfo", used)
	for _, name := range []string{"memory.swap.max", "memory.swap.current"} {
		if err := os.Remove(f.c.Cgroups[""] + "/" + name); err != nil {
			t.Fatal(err)
		}
	}
	got := meminfoValues(t, used, f.render("proc/meminfo"))
	checkValues(t, got, map[string]uint64{"SwapTotal": hostSwap >> 10, "SwapFree": hostSwap >> 11})
}

// TestExitedTask: a task that exits between the open of its stat and the
// read fails the read with ESRCH; counting the container's tasks skips
// it as one gone before the open, instead of failing the whole render
// (and sysinfo falling back to the host's values).
func TestExitedTask(t *testing.T) {
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd.Process.Kill()
	cmd.Wait()
	_, err = f.Read(make([]byte, 512))
	for _, c := range []struct {
		err  error
		gone bool
	}{
		{err, true},
		{&fs.PathError{Op: "open", Path: "/proc/1/stat", Err: unix.ENOENT}, true},
		{&fs.PathError{Op: "read", Path: "/proc/1/stat", Err: unix.EACCES}, false},
		{nil, false},
	} {
		if exited(c.err) != c.gone {
			t.Errorf("exited(%v) = %v, want %v", c.err, !c.gone, c.gone)
		}
	}
}
