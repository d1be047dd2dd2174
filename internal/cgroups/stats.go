package cgroups

import (
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/lkc-containers/lkc/internal/cgroups/cgroupfs"
)

// Stats is a container's resource usage in the shape of runc's
// types.Stats, the "data" of a `runc events` stats event, so tools reading
// runc's output read lkc's unchanged. Zero values mean the controller or
// file is absent.
type Stats struct {
	CPU     CPU                `json:"cpu"`
	CPUSet  CPUSet             `json:"cpuset"`
	Memory  Memory             `json:"memory"`
	Pids    Pids               `json:"pids"`
	Blkio   Blkio              `json:"blkio"`
	Hugetlb map[string]Hugetlb `json:"hugetlb"`
}

// CPU is CPU time used and time throttled, in nanoseconds.
type CPU struct {
	Usage      CPUUsage   `json:"usage,omitempty"`
	Throttling Throttling `json:"throttling,omitempty"`
}

// CPUUsage is CPU time in nanoseconds; the per-CPU lists are empty on
// v2.
type CPUUsage struct {
	Total        uint64   `json:"total,omitempty"`
	Percpu       []uint64 `json:"percpu,omitempty"`
	PercpuKernel []uint64 `json:"percpu_kernel,omitempty"`
	PercpuUser   []uint64 `json:"percpu_user,omitempty"`
	Kernel       uint64   `json:"kernel"`
	User         uint64   `json:"user"`
}

// CPUSet is the v1 cpuset controller's settings of the cgroup, which runc
// reports on v1 only (zero on v2, as there).
type CPUSet struct {
	CPUs                  []uint16 `json:"cpus,omitempty"`
	CPUExclusive          uint64   `json:"cpu_exclusive"`
	Mems                  []uint16 `json:"mems,omitempty"`
	MemHardwall           uint64   `json:"mem_hardwall"`
	MemExclusive          uint64   `json:"mem_exclusive"`
	MemoryMigrate         uint64   `json:"memory_migrate"`
	MemorySpreadPage      uint64   `json:"memory_spread_page"`
	MemorySpreadSlab      uint64   `json:"memory_spread_slab"`
	MemoryPressure        uint64   `json:"memory_pressure"`
	SchedLoadBalance      uint64   `json:"sched_load_balance"`
	SchedRelaxDomainLevel int64    `json:"sched_relax_domain_level"`
}

// Throttling counts CFS periods and the time the quota held the cgroup back.
type Throttling struct {
	Periods          uint64 `json:"periods,omitempty"`
	ThrottledPeriods uint64 `json:"throttledPeriods,omitempty"`
	ThrottledTime    uint64 `json:"throttledTime,omitempty"`
}

// MemoryEntry is one memory counter; Limit is math.MaxUint64 when unlimited
// on v2 (v1 reports the kernel's own large number).
type MemoryEntry struct {
	Limit   uint64 `json:"limit"`
	Usage   uint64 `json:"usage,omitempty"`
	Max     uint64 `json:"max,omitempty"`
	Failcnt uint64 `json:"failcnt"`
}

// Memory is memory use. Swap counts memory plus swap on both hierarchies, as
// runc reports it. Raw is memory.stat. OOMKill counts the kernel's OOM
// kills in the cgroup (v1 memory.oom_control, v2 memory.events), which
// `lkc stats` and /metrics show; runc's shape has no such field.
type Memory struct {
	Cache     uint64            `json:"cache,omitempty"`
	OOMKill   uint64            `json:"oomKill,omitempty"`
	Usage     MemoryEntry       `json:"usage,omitempty"`
	Swap      MemoryEntry       `json:"swap,omitempty"`
	Kernel    MemoryEntry       `json:"kernel,omitempty"`
	KernelTCP MemoryEntry       `json:"kernelTCP,omitempty"`
	Raw       map[string]uint64 `json:"raw,omitempty"`
}

// Pids is the number of tasks and the limit (0: unlimited).
type Pids struct {
	Current uint64 `json:"current,omitempty"`
	Limit   uint64 `json:"limit,omitempty"`
}

// BlkioEntry is one device's counter for one operation (Read, Write, ...).
type BlkioEntry struct {
	Major uint64 `json:"major,omitempty"`
	Minor uint64 `json:"minor,omitempty"`
	Op    string `json:"op,omitempty"`
	Value uint64 `json:"value,omitempty"`
}

// Blkio is block I/O in bytes and operations, per device.
type Blkio struct {
	IoServiceBytesRecursive []BlkioEntry `json:"ioServiceBytesRecursive,omitempty"`
	IoServicedRecursive     []BlkioEntry `json:"ioServicedRecursive,omitempty"`
}

// Hugetlb is one huge page size's use.
type Hugetlb struct {
	Usage   uint64 `json:"usage,omitempty"`
	Max     uint64 `json:"max,omitempty"`
	Failcnt uint64 `json:"failcnt"`
}

// readUint reads a file holding one number; "max" reads as math.MaxUint64.
// A missing file reads as 0 with no error: controllers and kernels differ in
// which files they offer.
func readUint(dir, file string) (uint64, error) {
	s, err := readFile(dir, file)
	if os.IsNotExist(err) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return parseUint(s)
}

func parseUint(s string) (uint64, error) {
	if s == "max" {
		return math.MaxUint64, nil
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		// Some counters go negative transiently (v1 usage under races).
		if i, ierr := strconv.ParseInt(s, 10, 64); ierr == nil && i < 0 {
			return 0, nil
		}
		return 0, err
	}
	return v, nil
}

// readKeyed reads a "key value" per line file (memory.stat, cpu.stat,
// memory.events). A missing file reads as an empty map.
func readKeyed(dir, file string) (map[string]uint64, error) {
	data, err := cgroupfs.ReadFile(filepath.Join(dir, file))
	if os.IsNotExist(err) {
		return map[string]uint64{}, nil
	}
	if err != nil {
		return nil, err
	}
	out := make(map[string]uint64, 8)
	for rest := string(data); rest != ""; {
		var line string
		line, rest, _ = strings.Cut(rest, "\n")
		k, v, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		if n, err := parseUint(strings.TrimSpace(v)); err == nil {
			out[k] = n
		}
	}
	return out, nil
}

// uintFile names a one-number file and where its value goes.
type uintFile struct {
	file string
	into *uint64
}

func readUints(dir string, files []uintFile) error {
	for _, f := range files {
		v, err := readUint(dir, f.file)
		if err != nil {
			return err
		}
		*f.into = v
	}
	return nil
}

// readPids reads the pids controller, whose files v1 and v2 name alike.
func readPids(dir string, s *Stats) error {
	var err error
	if s.Pids.Current, err = readUint(dir, "pids.current"); err != nil {
		return err
	}
	max, err := readUint(dir, "pids.max")
	if max != ^uint64(0) {
		s.Pids.Limit = max
	}
	return err
}

// readHugetlb reads every huge page size the controller offers in dir, named
// by its files (hugetlb.2MB.<usage>): v1 usage_in_bytes, max_usage_in_bytes
// and failcnt; v2 current and the "max" count of events.
func readHugetlb(dir string, s *Stats, v2 bool) error {
	usage := "usage_in_bytes"
	if v2 {
		usage = "current"
	}
	files, _ := filepath.Glob(filepath.Join(dir, "hugetlb.*."+usage))
	for _, f := range files {
		size := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(f), "hugetlb."), "."+usage)
		if strings.Contains(size, ".") {
			continue // hugetlb.<size>.rsvd.*: reservations, not use
		}
		var h Hugetlb
		var err error
		if h.Usage, err = readUint(dir, "hugetlb."+size+"."+usage); err != nil {
			return err
		}
		if v2 {
			events, err := readKeyed(dir, "hugetlb."+size+".events")
			if err != nil {
				return err
			}
			h.Failcnt = events["max"]
		} else {
			err = readUints(dir, []uintFile{
				{"hugetlb." + size + ".max_usage_in_bytes", &h.Max}, {"hugetlb." + size + ".failcnt", &h.Failcnt},
			})
			if err != nil {
				return err
			}
		}
		s.Hugetlb[size] = h
	}
	return nil
}
