package effective

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Limits are a cgroup's effective limits. A nil field means the cgroup has
// no such controller (or, for MemSwap and Swap, no swap accounting).
type Limits struct {
	// Memory is in bytes: v1 memory.limit_in_bytes, v2 memory.max.
	Memory *Limit[uint64] `json:"memory,omitempty"`
	// MemSwap is v1's memory.memsw.limit_in_bytes: memory and swap together.
	MemSwap *Limit[uint64] `json:"memorySwap,omitempty"`
	// Swap is v2's memory.swap.max: swap alone.
	Swap *Limit[uint64] `json:"swap,omitempty"`
	// CPUs is the CFS bandwidth as a number of CPUs (quota / period).
	CPUs *Limit[float64] `json:"cpus,omitempty"`
	// Shares is v1 cpu.shares, Weight v2 cpu.weight: relative to siblings,
	// so Value is the cgroup's own (At is the cgroup), never a minimum.
	Shares *Limit[uint64] `json:"cpuShares,omitempty"`
	Weight *Limit[uint64] `json:"cpuWeight,omitempty"`
	// Cpuset is the CPUs the cgroup may run on.
	Cpuset *CPUs `json:"cpuset,omitempty"`
	// Pids is pids.max.
	Pids *Limit[uint64] `json:"pids,omitempty"`
	// IO lists the I/O throttles, per device and kind.
	IO []IOLimit `json:"io,omitempty"`
}

// Read returns the effective limits of the cgroup cg. A directory that is
// gone (the container was deleted) is an error wrapping fs.ErrNotExist; a
// controller the cgroup lacks leaves its field nil.
func Read(cg Cgroups) (*Limits, error) {
	return ReadControllers(cg, "memory", "cpu", "cpuset", "pids", "io")
}

// ReadControllers is Read limited to some controllers ("memory", "cpu",
// "cpuset", "pids", "io": v1's blkio is "io" too), for a caller that
// needs one answer often (a /proc file rendered on every open).
func ReadControllers(cg Cgroups, ctrls ...string) (*Limits, error) {
	l := &Limits{}
	for _, ctrl := range ctrls {
		read := readers[ctrl]
		dir, v2, ok, err := cg.Dir(ctrl)
		if err == nil && !ok && ctrl == "io" {
			dir, v2, ok, err = cg.Dir("blkio")
		}
		if err != nil {
			return nil, err
		}
		if !ok || read == nil {
			continue
		}
		if err := read(l, dir, v2); err != nil {
			return nil, fmt.Errorf("reading %s limits of %s: %w", ctrl, dir, err)
		}
	}
	return l, nil
}

var readers = map[string]func(l *Limits, dir string, v2 bool) error{
	"memory": readMemory, "cpu": readCPU, "cpuset": readCpuset, "pids": readPidsMax, "io": readIO,
}

// v1Unlimited is where v1 byte limits stop meaning anything: "unlimited"
// reads as PAGE_COUNTER_MAX pages, just under 2^63 bytes.
const v1Unlimited = 1 << 62

func bytesLimit(file string, v2 bool) func(dir string) (uint64, bool, error) {
	return func(dir string) (uint64, bool, error) {
		s, err := readValue(dir, file)
		if err != nil || s == "max" {
			return 0, false, err
		}
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return 0, false, fmt.Errorf("%s/%s: %w", dir, file, err)
		}
		if !v2 && v >= v1Unlimited {
			return 0, false, nil
		}
		return v, true, nil
	}
}

func readMemory(l *Limits, dir string, v2 bool) error {
	var err error
	if v2 {
		if l.Memory, err = walk(dir, bytesLimit("memory.max", true)); err != nil {
			return err
		}
		l.Swap, err = walk(dir, bytesLimit("memory.swap.max", true))
		return err
	}
	if l.Memory, err = walk(dir, bytesLimit("memory.limit_in_bytes", false)); err != nil {
		return err
	}
	l.MemSwap, err = walk(dir, bytesLimit("memory.memsw.limit_in_bytes", false))
	return err
}

func readPidsMax(l *Limits, dir string, v2 bool) error {
	var err error
	l.Pids, err = walk(dir, bytesLimit("pids.max", true))
	return err
}

// readCPU reads the bandwidth limit (v1 cpu.cfs_quota_us and
// cpu.cfs_period_us, v2 cpu.max "quota period") and the weight.
func readCPU(l *Limits, dir string, v2 bool) error {
	var err error
	if v2 {
		if l.CPUs, err = walk(dir, cpuMaxV2); err != nil {
			return err
		}
		l.Weight, err = own(dir, "cpu.weight")
		return err
	}
	if l.CPUs, err = walk(dir, cpuQuotaV1); err != nil {
		return err
	}
	l.Shares, err = own(dir, "cpu.shares")
	return err
}

func cpuMaxV2(dir string) (float64, bool, error) {
	s, err := readValue(dir, "cpu.max")
	if err != nil {
		return 0, false, err
	}
	quota, period, _ := strings.Cut(s, " ")
	return cpus(dir, quota, period)
}

func cpuQuotaV1(dir string) (float64, bool, error) {
	quota, err := readValue(dir, "cpu.cfs_quota_us")
	if err != nil || quota == "-1" {
		return 0, false, err
	}
	period, err := readValue(dir, "cpu.cfs_period_us")
	if err != nil {
		return 0, false, err
	}
	return cpus(dir, quota, period)
}

func cpus(dir, quota, period string) (float64, bool, error) {
	if quota == "max" || quota == "-1" {
		return 0, false, nil
	}
	q, err := strconv.ParseUint(quota, 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("cpu quota %q in %s: %w", quota, dir, err)
	}
	p, err := strconv.ParseUint(period, 10, 64)
	if err != nil || p == 0 {
		return 0, false, fmt.Errorf("cpu period %q in %s: bad value", period, dir)
	}
	return float64(q) / float64(p), true, nil
}

// own reads a relative setting (a weight) of dir alone.
func own(dir, file string) (*Limit[uint64], error) {
	v, set, err := bytesLimit(file, true)(dir)
	if errors.Is(err, errNoFile) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &Limit[uint64]{Value: v, Set: set, At: dir, Levels: []Level[uint64]{{dir, v, set}}}, nil
}
