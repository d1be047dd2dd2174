package cgroups

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Stats reads the usage counters of the container's cgroup, converted to
// runc's units (nanoseconds, memory+swap) so both hierarchies look alike.
func (m *v2) Stats() (*Stats, error) {
	s := &Stats{Hugetlb: map[string]Hugetlb{}}
	hugetlb := func(dir string, s *Stats) error { return readHugetlb(dir, s, true) }
	for _, read := range []func(string, *Stats) error{v2CPU, v2Memory, readPids, v2IO, hugetlb} {
		if err := read(m.dir, s); err != nil {
			return nil, fmt.Errorf("reading stats in %s: %w", m.dir, err)
		}
	}
	return s, nil
}

// Usage reads Manager.Usage's subset: v2 keeps it in few files, so only
// hugetlb (a glob) is left out.
func (m *v2) Usage() (*Stats, error) {
	s := &Stats{Hugetlb: map[string]Hugetlb{}}
	for _, read := range []func(string, *Stats) error{v2CPU, v2Memory, readPids, v2IO} {
		if err := read(m.dir, s); err != nil {
			return nil, fmt.Errorf("reading stats in %s: %w", m.dir, err)
		}
	}
	return s, nil
}

func v2CPU(dir string, s *Stats) error {
	stat, err := readKeyed(dir, "cpu.stat")
	if err != nil {
		return err
	}
	s.CPU.Usage = CPUUsage{
		Total:  stat["usage_usec"] * 1000,
		User:   stat["user_usec"] * 1000,
		Kernel: stat["system_usec"] * 1000,
	}
	s.CPU.Throttling = Throttling{
		Periods:          stat["nr_periods"],
		ThrottledPeriods: stat["nr_throttled"],
		ThrottledTime:    stat["throttled_usec"] * 1000,
	}
	return nil
}

func v2Memory(dir string, s *Stats) error {
	mem := &s.Memory
	raw, err := readKeyed(dir, "memory.stat")
	if err != nil {
		return err
	}
	mem.Raw, mem.Cache = raw, raw["file"]
	events, err := readKeyed(dir, "memory.events")
	if err != nil {
		return err
	}
	u := &mem.Usage
	u.Failcnt, mem.OOMKill = events["max"], events["oom_kill"]
	var swap, swapMax uint64
	err = readUints(dir, []uintFile{
		{"memory.current", &u.Usage}, {"memory.peak", &u.Max}, {"memory.max", &u.Limit},
		{"memory.swap.current", &swap}, {"memory.swap.max", &swapMax},
	})
	if err == nil && exists(filepath.Join(dir, "memory.swap.current")) {
		// v1 reports memory+swap; so does runc on v2.
		mem.Swap = MemoryEntry{Usage: u.Usage + swap, Limit: addCapped(u.Limit, swapMax)}
	}
	return err
}

// addCapped adds two limits where math.MaxUint64 means unlimited.
func addCapped(a, b uint64) uint64 {
	if a+b < a {
		return ^uint64(0)
	}
	return a + b
}

// v2IO converts io.stat ("MAJ:MIN rbytes=N wbytes=N rios=N wios=N ...") to
// runc's Read/Write entries.
func v2IO(dir string, s *Stats) error {
	f, err := os.Open(filepath.Join(dir, "io.stat"))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	ops := map[string]struct {
		list *[]BlkioEntry
		op   string
	}{
		"rbytes": {&s.Blkio.IoServiceBytesRecursive, "Read"},
		"wbytes": {&s.Blkio.IoServiceBytesRecursive, "Write"},
		"rios":   {&s.Blkio.IoServicedRecursive, "Read"},
		"wios":   {&s.Blkio.IoServicedRecursive, "Write"},
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		var major, minor uint64
		if _, err := fmt.Sscanf(fields[0], "%d:%d", &major, &minor); err != nil {
			return fmt.Errorf("io.stat: device %q: %w", fields[0], err)
		}
		for _, kv := range fields[1:] {
			k, v, _ := strings.Cut(kv, "=")
			to, ok := ops[k]
			if !ok {
				continue
			}
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return fmt.Errorf("io.stat: %s: %w", kv, err)
			}
			*to.list = append(*to.list, BlkioEntry{Major: major, Minor: minor, Op: to.op, Value: n})
		}
	}
	return sc.Err()
}
