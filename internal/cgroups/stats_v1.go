package cgroups

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/lkc-containers/lkc/internal/cgroups/cgroupfs"
	"github.com/lkc-containers/lkc/internal/config"
)

// userHZ is the unit of cpuacct.stat: clock ticks, 100 per second on every
// Linux architecture lkc runs on.
const userHZ = 100

// v1Step reads one controller's counters from its directory.
type v1Step struct {
	ctrl string
	read func(dir string, s *Stats) error
}

// Stats reads the usage counters of every controller the container has.
func (m *v1) Stats() (*Stats, error) {
	return m.read([]v1Step{
		{"cpuacct", v1CPUAcct}, {"cpu", v1Throttling}, {"cpuset", v1CPUSet}, {"memory", v1Memory},
		{"pids", readPids}, {"blkio", v1Blkio},
		{"hugetlb", func(dir string, s *Stats) error { return readHugetlb(dir, s, false) }},
	})
}

// Usage reads Manager.Usage's subset.
func (m *v1) Usage() (*Stats, error) {
	return m.read([]v1Step{
		{"cpuacct", func(dir string, s *Stats) error {
			var err error
			s.CPU.Usage.Total, err = readUint(dir, "cpuacct.usage")
			return err
		}},
		{"memory", v1MemoryUsage}, {"pids", readPids},
		{"blkio", func(dir string, s *Stats) error {
			var err error
			s.Blkio.IoServiceBytesRecursive, err = v1BlkioFile(dir, "blkio.throttle.io_service_bytes_recursive", "blkio.throttle.io_service_bytes")
			return err
		}},
	})
}

func (m *v1) read(steps []v1Step) (*Stats, error) {
	s := &Stats{Hugetlb: map[string]Hugetlb{}}
	for _, step := range steps {
		dir, ok := m.dir(step.ctrl)
		if !ok {
			continue
		}
		if err := step.read(dir, s); err != nil {
			return nil, fmt.Errorf("reading %s stats in %s: %w", step.ctrl, dir, err)
		}
	}
	return s, nil
}

func v1CPUAcct(dir string, s *Stats) error {
	u := &s.CPU.Usage
	var err error
	if u.Total, err = readUint(dir, "cpuacct.usage"); err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		into *[]uint64
	}{
		{"cpuacct.usage_percpu", &u.Percpu},
		{"cpuacct.usage_percpu_sys", &u.PercpuKernel}, {"cpuacct.usage_percpu_user", &u.PercpuUser},
	} {
		if *f.into, err = readUintList(dir, f.name); err != nil {
			return err
		}
	}
	stat, err := readKeyed(dir, "cpuacct.stat")
	if err != nil {
		return err
	}
	u.User = stat["user"] * (1e9 / userHZ)
	u.Kernel = stat["system"] * (1e9 / userHZ)
	return nil
}

// readUintList reads a file of numbers separated by blanks; a missing
// file reads as none.
func readUintList(dir, file string) ([]uint64, error) {
	data, err := readFile(dir, file)
	if err != nil && !os.IsNotExist(err) {
		return nil, err
	}
	var out []uint64
	for _, f := range strings.Fields(data) {
		v, err := parseUint(f)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		out = append(out, v)
	}
	return out, nil
}

// v1CPUSet reads the cpuset controller's settings, as runc reports them.
func v1CPUSet(dir string, s *Stats) error {
	c := &s.CPUSet
	var err error
	for _, f := range []struct {
		name string
		into *[]uint16
	}{{"cpuset.cpus", &c.CPUs}, {"cpuset.mems", &c.Mems}} {
		if *f.into, err = readIDList(dir, f.name); err != nil {
			return err
		}
	}
	err = readUints(dir, []uintFile{
		{"cpuset.cpu_exclusive", &c.CPUExclusive}, {"cpuset.mem_hardwall", &c.MemHardwall},
		{"cpuset.mem_exclusive", &c.MemExclusive}, {"cpuset.memory_migrate", &c.MemoryMigrate},
		{"cpuset.memory_spread_page", &c.MemorySpreadPage}, {"cpuset.memory_spread_slab", &c.MemorySpreadSlab},
		{"cpuset.memory_pressure", &c.MemoryPressure}, {"cpuset.sched_load_balance", &c.SchedLoadBalance},
	})
	if err != nil {
		return err
	}
	level, err := readFile(dir, "cpuset.sched_relax_domain_level")
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	if level != "" {
		if c.SchedRelaxDomainLevel, err = strconv.ParseInt(level, 10, 64); err != nil {
			return fmt.Errorf("cpuset.sched_relax_domain_level: %w", err)
		}
	}
	return nil
}

// readIDList reads a cpuset list ("0-3,5") as its sorted ids; a missing
// file reads as none.
func readIDList(dir, file string) ([]uint16, error) {
	data, err := readFile(dir, file)
	if err != nil && !os.IsNotExist(err) {
		return nil, err
	}
	ids, err := config.ParseIDList(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	out := make([]uint16, 0, len(ids))
	for id := range ids {
		out = append(out, uint16(id))
	}
	slices.Sort(out)
	return out, nil
}

func v1Throttling(dir string, s *Stats) error {
	stat, err := readKeyed(dir, "cpu.stat")
	if err != nil {
		return err
	}
	s.CPU.Throttling = Throttling{
		Periods:          stat["nr_periods"],
		ThrottledPeriods: stat["nr_throttled"],
		ThrottledTime:    stat["throttled_time"],
	}
	return nil
}

func v1Memory(dir string, s *Stats) error {
	mem := &s.Memory
	for _, e := range []struct {
		prefix string
		into   *MemoryEntry
	}{
		{"memory", &mem.Usage}, {"memory.memsw", &mem.Swap},
		{"memory.kmem", &mem.Kernel}, {"memory.kmem.tcp", &mem.KernelTCP},
	} {
		if err := v1MemoryEntry(dir, e.prefix, e.into); err != nil {
			return err
		}
	}
	return v1MemoryStat(dir, s)
}

// v1MemoryUsage reads usage and limit only, then memory.stat and the OOM
// kills.
func v1MemoryUsage(dir string, s *Stats) error {
	u := &s.Memory.Usage
	if err := readUints(dir, []uintFile{{"memory.usage_in_bytes", &u.Usage}, {"memory.limit_in_bytes", &u.Limit}}); err != nil {
		return err
	}
	return v1MemoryStat(dir, s)
}

func v1MemoryStat(dir string, s *Stats) error {
	mem := &s.Memory
	raw, err := readKeyed(dir, "memory.stat")
	if err != nil {
		return err
	}
	mem.Raw, mem.Cache = raw, raw["cache"]
	mem.OOMKill, err = v1OOMKills(dir)
	return err
}

// v1OOMKills sums oom_kill over dir's memory cgroup and every one beneath
// it. v1 counts a kill in the victim's own cgroup only (v2's memory.events
// counts the subtree's), and `exec --cgroup` puts processes of the
// container in sub-cgroups, which may have limits of their own. A
// sub-cgroup removed takes its kills with it, as v1 keeps them nowhere
// else.
func v1OOMKills(dir string) (uint64, error) {
	control, err := readKeyed(dir, "memory.oom_control")
	if err != nil {
		return 0, err
	}
	n := control["oom_kill"]
	ents, err := os.ReadDir(dir)
	if err != nil {
		return n, nil // removed meanwhile: readKeyed found no file either
	}
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		sub, err := v1OOMKills(filepath.Join(dir, e.Name()))
		if err != nil {
			return n, err
		}
		n += sub
	}
	return n, nil
}

func v1MemoryEntry(dir, prefix string, e *MemoryEntry) error {
	return readUints(dir, []uintFile{
		{prefix + ".usage_in_bytes", &e.Usage}, {prefix + ".max_usage_in_bytes", &e.Max},
		{prefix + ".failcnt", &e.Failcnt}, {prefix + ".limit_in_bytes", &e.Limit},
	})
}

// v1Blkio reads the throttle policy's counters, which every v1 kernel keeps
// (the CFQ/BFQ ones depend on the I/O scheduler).
func v1Blkio(dir string, s *Stats) error {
	var err error
	b := &s.Blkio
	if b.IoServiceBytesRecursive, err = v1BlkioFile(dir, "blkio.throttle.io_service_bytes_recursive", "blkio.throttle.io_service_bytes"); err != nil {
		return err
	}
	b.IoServicedRecursive, err = v1BlkioFile(dir, "blkio.throttle.io_serviced_recursive", "blkio.throttle.io_serviced")
	return err
}

// v1BlkioFile parses the first of files that exists: "MAJ:MIN Op value"
// lines, skipping the "Total" line.
func v1BlkioFile(dir string, files ...string) ([]BlkioEntry, error) {
	for _, file := range files {
		data, err := cgroupfs.ReadFile(filepath.Join(dir, file))
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		return parseBlkioV1(bytes.NewReader(data), file)
	}
	return nil, nil
}

func parseBlkioV1(f io.Reader, file string) ([]BlkioEntry, error) {
	var out []BlkioEntry
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) != 3 {
			continue
		}
		var e BlkioEntry
		if _, err := fmt.Sscanf(fields[0], "%d:%d", &e.Major, &e.Minor); err != nil {
			return nil, fmt.Errorf("%s: device %q: %w", file, fields[0], err)
		}
		v, err := strconv.ParseUint(fields[2], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		e.Op, e.Value = fields[1], v
		out = append(out, e)
	}
	return out, sc.Err()
}
