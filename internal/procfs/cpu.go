package procfs

import (
	"errors"
	"math"
	"os"
	"strconv"
	"strings"

	"github.com/lkc-containers/lkc/internal/effective"
)

// visibleCPUs returns the host CPUs the container is shown: its effective
// cpuset within the CPUs online, then only the first ⌈quota/period⌉ of
// them when the CPU quota is tighter. cpuinfo, cpu/online, stat, uptime's
// idle time and sysinfo all use this one answer.
//
// The answer is kept for cacheFor: working it out walks the cpu and
// cpuset hierarchies up to their roots (a dozen files), which was a
// quarter of the server's CPU with 100 containers polling stat, and it
// changes only when the container's limits do. A limit updated shows in
// these files within cacheFor, as cpuinfo and cpu/online's freshness
// bound allows anyway (docs/procfs.md).
func (h *Host) visibleCPUs(c *Container) (cpus, allowed effective.CPUSet, err error) {
	v := &c.cpus
	v.mu.Lock()
	defer v.mu.Unlock()
	now := h.Now()
	if !v.at.IsZero() && now.Sub(v.at) < cacheFor && !now.Before(v.at) {
		// A kept answer proves nothing about the cgroup: a caller that
		// reads nothing else of it (online, cpuinfo) asks stillThere.
		return v.visible, v.allowed, nil
	}
	if cpus, allowed, err = h.readVisibleCPUs(c); err != nil {
		return nil, nil, err
	}
	v.visible, v.allowed, v.at = cpus, allowed, now
	return cpus, allowed, nil
}

// stillThere fails with fs.ErrNotExist when c's cgroup for ctrl (or, on
// v1 without it, any of c's) was deleted.
func (h *Host) stillThere(c *Container, ctrl string) error {
	dir, _, err := h.cgroupDir(c, ctrl)
	if errors.Is(err, ErrNoController) {
		for _, d := range c.Cgroups {
			dir, err = d, nil
			break
		}
	}
	if err != nil {
		return err
	}
	_, err = os.Stat(dir)
	return err
}

// readVisibleCPUs is visibleCPUs read from the cgroups.
func (h *Host) readVisibleCPUs(c *Container) (cpus, allowed effective.CPUSet, err error) {
	s, err := h.readCached("sys/devices/system/cpu/online")
	if err != nil {
		return nil, nil, err
	}
	online, err := effective.ParseCPUSet(s)
	if err != nil {
		return nil, nil, err
	}
	cg := effective.Cgroups(c.Cgroups)
	cpuset, ok, err := effective.CpusetCPUs(cg)
	if err != nil {
		return nil, nil, err
	}
	allowed = online
	if in := online.Intersect(cpuset); ok && len(in) > 0 {
		allowed = in
	}
	lim, err := effective.ReadControllers(cg, "cpu")
	if err != nil {
		return nil, nil, err
	}
	cpus = allowed
	if lim.CPUs != nil && lim.CPUs.Set {
		n := max(1, int(math.Ceil(lim.CPUs.Value)))
		cpus = allowed[:min(n, len(allowed))]
	}
	return cpus, allowed, nil
}

// visibleCPUsChecked is visibleCPUs for a file that reads nothing else
// of the cgroup: a deleted one still fails it at once.
func (h *Host) visibleCPUsChecked(c *Container) (effective.CPUSet, error) {
	cpus, _, err := h.visibleCPUs(c)
	if err != nil {
		return nil, err
	}
	if err := h.stillThere(c, "cpu"); err != nil {
		return nil, err
	}
	return cpus, nil
}

// renderOnline lists the visible CPUs by their own numbers, which are
// those sched_getaffinity and sched_setaffinity use inside the container
// too: glibc counts them for the online processors, and a program that
// pins a thread to each CPU listed must find them in its affinity.
func renderOnline(h *Host, c *Container) ([]byte, error) {
	cpus, err := h.visibleCPUsChecked(c)
	if err != nil {
		return nil, err
	}
	return []byte(cpus.String() + "\n"), nil
}

// renderCpuinfo shows the host's blocks of the visible CPUs, each under
// its own number (as cpu/online lists them), counted as one package
// (physical id 0) of n cores numbered from 0, so programs that count
// "processor" lines or read "cpu cores"/"siblings" see n, whichever
// sockets the host's CPUs are in. Blocks without a processor line (some
// architectures' trailer) are kept.
func renderCpuinfo(h *Host, c *Container) ([]byte, error) {
	cpus, err := h.visibleCPUsChecked(c)
	if err != nil {
		return nil, err
	}
	s, err := h.read("proc/cpuinfo")
	if err != nil {
		return nil, err
	}
	n := strconv.Itoa(len(cpus))
	var b strings.Builder
	next := 0
	for _, block := range strings.SplitAfter(s, "\n\n") {
		id, isCPU := cpuinfoProcessor(block)
		if isCPU {
			if _, ok := indexOf(cpus, id); !ok {
				continue
			}
			block = cpuinfoRewrite(block, map[string]string{
				"physical id": "0", "core id": strconv.Itoa(next), "siblings": n, "cpu cores": n,
			})
			next++
		}
		b.WriteString(block)
	}
	return []byte(b.String()), nil
}

func indexOf(set effective.CPUSet, cpu int) (int, bool) {
	for i, c := range set {
		if c == cpu {
			return i, true
		}
	}
	return 0, false
}

// cpuinfoField splits a "key\t: value" line.
func cpuinfoField(line string) (key, sep, value string, ok bool) {
	i := strings.Index(line, ":")
	if i < 0 {
		return "", "", "", false
	}
	key = strings.TrimRight(line[:i], " \t")
	sep = line[len(key) : i+1]
	return key, sep, strings.TrimPrefix(line[i+1:], " "), true
}

func cpuinfoProcessor(block string) (int, bool) {
	for _, line := range strings.Split(block, "\n") {
		if key, _, value, ok := cpuinfoField(line); ok && key == "processor" {
			id, err := strconv.Atoi(strings.TrimSpace(value))
			return id, err == nil
		}
	}
	return 0, false
}

// cpuinfoRewrite replaces the values of the named keys, keeping each
// line's key and separator as the host wrote them.
func cpuinfoRewrite(block string, values map[string]string) string {
	lines := strings.Split(block, "\n")
	for i, line := range lines {
		key, sep, _, ok := cpuinfoField(line)
		if v, want := values[key]; ok && want {
			lines[i] = key + sep + " " + v
		}
	}
	return strings.Join(lines, "\n")
}
