package integration

import (
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestProcViewAgreesWithKernel: in a container with a virtual /proc, 64
// MiB, a pids limit and a cpuset of one CPU (the host's last online one,
// so not CPU 0 where the host has two), what the files say agrees with
// what the kernel says to the container's processes: cpu/online,
// cpuinfo's processor and stat's cpuN name the CPU its affinity holds;
// btime is the boot the processes' start times count from, so init
// started (btime + field 22 of its stat) when the container did, not in
// the future; MemAvailable is within the limit; each file read in small
// pieces is whole; loadavg's last pid and stat's processes do not go back
// when the newest process exits.
func TestProcViewAgreesWithKernel(t *testing.T) {
	d := newDaemonEnv(t)
	online, err := os.ReadFile("/sys/devices/system/cpu/online")
	if err != nil {
		t.Fatal(err)
	}
	cpus := regexp.MustCompile(`\d+`).FindAllString(string(online), -1)
	cpu := cpus[len(cpus)-1]
	mem, pids := int64(64<<20), int64(100)
	b := d.bundle([]string{"sleep", "1000"}, func(s *specs.Spec) {
		s.Annotations = map[string]string{"org.lkc.proc": "virtual"}
		s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: &mem}
		s.Linux.Resources.CPU = &specs.LinuxCPU{Cpus: cpu}
		s.Linux.Resources.Pids = &specs.LinuxPids{Limit: pids}
	})
	id := d.id()
	d.mustLkc("run", "-d", "--bundle", b, id)
	t.Cleanup(func() { d.lkc("delete", "--force", id) })
	sh := func(cmd string) string {
		t.Helper()
		return d.mustLkc("exec", id, "sh", "-c", cmd)
	}
	n, _ := strconv.Atoi(cpu)
	if got, want := sh("cat /sys/devices/system/cpu/online; taskset -p $$ | sed 's/.*: //'"), fmt.Sprintf("%s\n%x\n", cpu, 1<<n); got != want {
		t.Errorf("cpu/online and the affinity mask: %q; want %q", got, want)
	}
	if got, want := sh("grep ^processor /proc/cpuinfo; grep -o '^cpu[0-9]* ' /proc/stat"), fmt.Sprintf("processor\t: %s\ncpu \ncpu%s \n", cpu, cpu); got != want {
		t.Errorf("cpuinfo's processors and stat's cpu lines: %q; want %q", got, want)
	}
	f := strings.Fields(sh("grep ^btime /proc/stat; cut -d' ' -f22 /proc/1/stat; date +%s"))
	if len(f) != 4 {
		t.Fatalf("btime, init's start, date: %q", f)
	}
	btime, _ := strconv.ParseInt(f[1], 10, 64)
	start, _ := strconv.ParseInt(f[2], 10, 64)
	date, _ := strconv.ParseInt(f[3], 10, 64)
	if started := btime + start/100; started > date || started < date-int64(settle.Seconds()) {
		t.Errorf("init started at %d by btime %d + %d ticks; the date is %d", started, btime, start, date)
	}
	meminfo := sh("cat /proc/meminfo")
	if free, avail := meminfoKB(t, meminfo, "MemFree"), meminfoKB(t, meminfo, "MemAvailable"); free > avail || avail > 65536 {
		t.Errorf("MemFree %d kB, MemAvailable %d kB; want free ≤ available ≤ 65536", free, avail)
	}
	// Read in pieces of 1 and 7 bytes (dd reads with read(2), not
	// sendfile) and from odd offsets: the whole file, in one version.
	if got := sh("dd if=/proc/meminfo bs=1 2>/dev/null | grep -c kB; dd if=/proc/stat bs=7 2>/dev/null | tail -1 | cut -c1-8; " +
		"dd if=/proc/cpuinfo bs=3 skip=1 2>/dev/null | head -c 7"); got != fmt.Sprintf("%d\nsoftirq \ncessor\t", strings.Count(meminfo, " kB\n")) {
		t.Errorf("meminfo's kB lines, stat's last line, cpuinfo from byte 3, read in small pieces: %q", got)
	}
	last := regexp.MustCompile(` (\d+)\n\D*processes (\d+)\n`)
	var was [2]int
	for i := 0; i < 3; i++ {
		m := last.FindStringSubmatch(sh("sh -c 'cat /proc/loadavg; grep ^processes /proc/stat'"))
		if m == nil {
			t.Fatalf("loadavg and processes: no match")
		}
		pid, _ := strconv.Atoi(m[1])
		forks, _ := strconv.Atoi(m[2])
		if pid < was[0] || forks < was[1] {
			t.Errorf("read %d: last pid %d, processes %d; before %d, %d: went back", i, pid, forks, was[0], was[1])
		}
		was = [2]int{pid, forks}
	}
}

// meminfoKB is the number of kB on meminfo's line key.
func meminfoKB(t *testing.T, meminfo, key string) int {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(key) + `:\s+(\d+) kB$`).FindStringSubmatch(meminfo)
	if m == nil {
		t.Fatalf("meminfo has no %s line:\n%s", key, meminfo)
	}
	v, _ := strconv.Atoi(m[1])
	return v
}
