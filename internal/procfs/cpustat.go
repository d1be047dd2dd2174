package procfs

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/lkc-containers/lkc/internal/cgroups/cgroupfs"
	"github.com/lkc-containers/lkc/internal/effective"
	"github.com/lkc-containers/lkc/internal/state"
)

// userHZ is the unit of /proc/stat's CPU times (USER_HZ, 100 on every
// architecture lkc runs on).
const userHZ = 100

// cpuTimes is a container's CPU time in nanoseconds, per visible CPU.
type cpuTimes struct {
	user, system []uint64
}

func (t *cpuTimes) total() uint64 {
	var sum uint64
	for i := range t.user {
		sum += t.user[i] + t.system[i]
	}
	return sum
}

// cpuTimes reads c's CPU time: per CPU from v1 cpuacct when every allowed
// CPU is visible (the per-CPU split is the kernel's own); otherwise, and
// on v2 which keeps no per-CPU split, the totals spread evenly over the
// visible CPUs.
func (h *Host) cpuTimes(c *Container, visible, allowed effective.CPUSet) (*cpuTimes, error) {
	var user, system []uint64 // per host CPU; nil on v2
	var userSum, systemSum uint64
	if dir, ok := cgroupfs.V2Dir(c.Cgroups); ok {
		stat, err := readKeyed(dir, "cpu.stat")
		if err != nil {
			return nil, err
		}
		userSum, systemSum = stat["user_usec"]*1000, stat["system_usec"]*1000
	} else {
		dir, _, err := h.cgroupDir(c, "cpuacct")
		if err != nil {
			return nil, err
		}
		if user, system, err = v1PerCPU(dir); err != nil {
			return nil, err
		}
		for i := range user {
			userSum, systemSum = userSum+user[i], systemSum+system[i]
		}
	}
	n := len(visible)
	t := &cpuTimes{user: make([]uint64, n), system: make([]uint64, n)}
	if user != nil && n == len(allowed) {
		for i, cpu := range visible {
			if cpu < len(user) {
				t.user[i], t.system[i] = user[cpu], system[cpu]
			}
		}
	} else {
		for i := range n {
			t.user[i], t.system[i] = share(userSum, n, i), share(systemSum, n, i)
		}
	}
	t.add(&c.Before)
	return t, nil
}

// add adds the CPU times a container used before its checkpoint: CPU by
// CPU when it sees as many CPUs as it did then, so no cpuN line goes
// back; otherwise spread evenly, as a total with no split is.
func (t *cpuTimes) add(before *state.Carried) {
	n := len(t.user)
	if len(before.UserNanos) == n && len(before.SystemNanos) == n {
		for i := range n {
			t.user[i] += before.UserNanos[i]
			t.system[i] += before.SystemNanos[i]
		}
		return
	}
	var user, system uint64
	for _, v := range before.UserNanos {
		user += v
	}
	for _, v := range before.SystemNanos {
		system += v
	}
	for i := range n {
		t.user[i] += share(user, n, i)
		t.system[i] += share(system, n, i)
	}
}

// share is the i-th of n near-equal parts of v (they add up to v).
func share(v uint64, n, i int) uint64 {
	part := v / uint64(n)
	if uint64(i) < v%uint64(n) {
		part++
	}
	return part
}

// v1PerCPU reads cpuacct's per-CPU user and system time, indexed by host
// CPU: cpuacct.usage_all ("cpu user system" lines: one file for both), or
// cpuacct.usage_percpu_user/_sys where it is missing.
func v1PerCPU(dir string) (user, system []uint64, err error) {
	all, err := readCgroupFile(dir, "cpuacct.usage_all")
	if errors.Is(err, ErrNoController) {
		user, err = readUints(dir, "cpuacct.usage_percpu_user")
		if err == nil {
			system, err = readUints(dir, "cpuacct.usage_percpu_sys")
		}
		if err == nil && len(user) != len(system) {
			err = fmt.Errorf("%s: %d CPUs' user time, %d CPUs' system time", dir, len(user), len(system))
		}
		return user, system, err
	}
	if err != nil {
		return nil, nil, err
	}
	for _, line := range strings.Split(all, "\n")[1:] {
		f := strings.Fields(line)
		if len(f) != 3 {
			continue
		}
		u, err1 := strconv.ParseUint(f[1], 10, 64)
		s, err2 := strconv.ParseUint(f[2], 10, 64)
		if err := errors.Join(err1, err2); err != nil {
			return nil, nil, fmt.Errorf("%s/cpuacct.usage_all: %q: %w", dir, line, err)
		}
		user, system = append(user, u), append(system, s)
	}
	return user, system, nil
}

// ticks converts nanoseconds to USER_HZ.
func ticks(ns uint64) uint64 { return ns / (1e9 / userHZ) }

// renderStat writes the kernel's /proc/stat layout: the container's CPU
// times per visible CPU, under its own number as cpu/online lists it
// (idle is the wall time since the container started less its use), its
// task counts; intr, ctxt and softirq are zeros with the host's number of
// fields. btime stays the boot time the container's processes count from
// (see bootSeconds).
func renderStat(h *Host, c *Container) ([]byte, error) {
	visible, allowed, err := h.visibleCPUs(c)
	if err != nil {
		return nil, err
	}
	times, err := h.cpuTimes(c, visible, allowed)
	if err != nil {
		return nil, err
	}
	_, t, err := h.currentTasks(c, true) // cpuTimes read the cgroup
	if err != nil {
		return nil, err
	}
	layout, err := h.hostStat()
	if err != nil {
		return nil, err
	}
	wall := ticks(uint64(max(0, h.Now().Sub(c.Started))))
	var sum [3]uint64
	cpus := make([]byte, 0, 64*len(visible))
	for i, cpu := range visible {
		u, s := ticks(times.user[i]), ticks(times.system[i])
		idle := wall - min(wall, u+s)
		sum[0], sum[1], sum[2] = sum[0]+u, sum[1]+s, sum[2]+idle
		cpus = fmt.Appendf(cpus, "cpu%d %d 0 %d %d 0 0 0 0 0 0\n", cpu, u, s, idle)
	}
	b := make([]byte, 0, 64+len(cpus)+len(layout.intr)+len(layout.softirq)+128)
	b = fmt.Appendf(b, "cpu  %d 0 %d %d 0 0 0 0 0 0\n", sum[0], sum[1], sum[2])
	b = append(b, cpus...)
	b = fmt.Appendf(b, "intr%s\nctxt 0\nbtime %d\nprocesses %d\nprocs_running %d\nprocs_blocked %d\nsoftirq%s\n",
		layout.intr, layout.bootSeconds(c), t.forks, t.withReader().running, t.blocked, layout.softirq)
	return b, nil
}

// statLayout is what a container's /proc/stat takes from the host's: its
// intr and softirq lines' zeros, its btime, and when it was read.
type statLayout struct {
	intr, softirq string
	btime         int64
	at            time.Time
}

// bootSeconds is btime as c's processes' own time namespace shows it: the
// host's without one; with one, the namespace's boot, which is also where
// c's uptime starts (Started: the host's boot less the namespace's
// boottime offset, as the kernel's timens_sub_boottime has it). It is
// not the start of a container without one, although its uptime is: ps,
// top and psutil add each process's start time (field 22 of
// /proc/<pid>/stat, clock ticks after that boot) to btime, and a btime
// moved to the container's start put every process in the future (lxcfs
// made that change and reverted it, lxcfs#164).
func (l *statLayout) bootSeconds(c *Container) int64 {
	if c.BootOffset == 0 {
		return l.btime
	}
	return c.Started.Unix()
}

// hostStat is the layout of the host's /proc/stat, read and parsed at
// most once per cacheFor for every container (parsing it was a sixth of
// a stat render). The result is read only.
func (h *Host) hostStat() (*statLayout, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := h.Now()
	if l := h.stat; l != nil && now.Sub(l.at) < cacheFor && !now.Before(l.at) {
		return l, nil
	}
	s, err := h.read("proc/stat")
	if err != nil {
		return nil, err
	}
	btime, err := statValue(s, "btime")
	if err != nil {
		return nil, err
	}
	h.stat = &statLayout{intr: zeros(s, "intr"), softirq: zeros(s, "softirq"), btime: btime, at: now}
	return h.stat, nil
}

// zeros returns " 0" once per number on the host's line named key, so the
// container's line has the kernel's layout (one field per interrupt).
func zeros(host, key string) string {
	for _, line := range strings.Split(host, "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && f[0] == key {
			return strings.Repeat(" 0", len(f)-1)
		}
	}
	return " 0"
}

// statValue is the number on the host's /proc/stat line named key.
func statValue(host, key string) (int64, error) {
	for _, line := range strings.Split(host, "\n") {
		if v, ok := strings.CutPrefix(line, key+" "); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("/proc/stat %s: %w", key, err)
			}
			return n, nil
		}
	}
	return 0, fmt.Errorf("/proc/stat has no %s line", key)
}

// renderUptime writes the time since the container started and the idle
// time of its visible CPUs over that time.
func renderUptime(h *Host, c *Container) ([]byte, error) {
	up, idle, err := h.uptime(c)
	if err != nil {
		return nil, err
	}
	return []byte(fmt.Sprintf("%d.%02d %d.%02d\n", up/userHZ, up%userHZ, idle/userHZ, idle%userHZ)), nil
}

// uptime returns c's uptime and idle time in USER_HZ.
func (h *Host) uptime(c *Container) (up, idle uint64, err error) {
	visible, allowed, err := h.visibleCPUs(c)
	if err != nil {
		return 0, 0, err
	}
	times, err := h.cpuTimes(c, visible, allowed)
	if err != nil {
		return 0, 0, err
	}
	up = ticks(uint64(max(0, h.Now().Sub(c.Started))))
	capacity := up * uint64(len(visible))
	return up, capacity - min(capacity, ticks(times.total())), nil
}
