package cgroups

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/lkc-containers/lkc/internal/config"
)

func setV2Memory(r *config.Resources) []setting {
	var b settings
	limit := func(key, file string, v *int64) {
		if v != nil {
			b.add(key, file, maxValue(*v))
		}
	}
	limit("memory.limit", "memory.max", r.MemoryLimit)
	limit("memory.reservation", "memory.low", r.MemoryReservation)
	if r.MemorySwap != nil {
		swap := *r.MemorySwap
		if swap > 0 && r.MemoryLimit != nil && *r.MemoryLimit > 0 {
			swap -= *r.MemoryLimit // v1 counts memory+swap, v2 swap alone
		}
		b.add("memory.swap", "memory.swap.max", maxValue(swap))
	}
	return b.s
}

// setV2CPU refuses realtime settings: v2 has no rt bandwidth control.
func setV2CPU(r *config.Resources) ([]setting, error) {
	if (r.CPURealtimeRuntime != nil && *r.CPURealtimeRuntime != 0) || (r.CPURealtimePeriod != nil && *r.CPURealtimePeriod != 0) {
		return nil, fmt.Errorf("linux.resources.cpu.realtimeRuntime/realtimePeriod: %w (cgroup v2 has no realtime group scheduling)", ErrNotSupported)
	}
	var b settings
	if r.CPUShares != nil {
		b.add("cpu.shares", "cpu.weight", utoa(sharesToWeight(*r.CPUShares)))
	}
	if r.CPUQuota != nil || r.CPUPeriod != nil {
		b.add("cpu.quota", "cpu.max", cpuMax(r.CPUQuota, r.CPUPeriod))
	}
	if r.CPUBurst != nil {
		b.add("cpu.burst", "cpu.max.burst", utoa(*r.CPUBurst))
		b.s[len(b.s)-1].optional = *r.CPUBurst == 0
	}
	// After cpu.weight: the kernel refuses a weight for an idle group.
	if r.CPUIdle != nil {
		b.add("cpu.idle", "cpu.idle", itoa(*r.CPUIdle))
		b.s[len(b.s)-1].optional = *r.CPUIdle == 0
	}
	if r.CPUs != "" {
		b.add("cpu.cpus", "cpuset.cpus", r.CPUs)
	}
	if r.Mems != "" {
		b.add("cpu.mems", "cpuset.mems", r.Mems)
	}
	return b.s, nil
}

// blkioToIOWeight maps a blkio weight [10, 1000] onto io.weight [1, 10000]
// as runc does.
func blkioToIOWeight(w uint16) uint64 {
	if w == 0 {
		return 0
	}
	return 1 + (uint64(w)-10)*9999/990
}

// setV2IO writes weights to io.bfq.weight (the blkio scale) when BFQ is
// there, else to io.weight (converted); throttles go to io.max, one line
// per device. Leaf weights have no v2 file (see Ignored).
func (m *v2) setV2IO(r *config.Resources) []setting {
	var b settings
	bfq := exists(filepath.Join(m.dir, "io.bfq.weight"))
	weight := func(key, dev string, w uint16) {
		file, v := "io.weight", blkioToIOWeight(w)
		if bfq {
			file, v = "io.bfq.weight", uint64(w)
		}
		if dev == "" {
			b.add(key, file, utoa(v))
			b.s[len(b.s)-1].restore = restoreDefaultWeight
		} else {
			b.keyed(key, file, dev+" "+utoa(v), func(dev string) string { return dev + " default" })
		}
	}
	if r.BlkioWeight != nil {
		weight("blockIO.weight", "", *r.BlkioWeight)
	}
	for _, d := range r.BlkioWeightDevices {
		if d.Weight != nil {
			weight("blockIO.weightDevice", devNum(d.Major, d.Minor), *d.Weight)
		}
	}
	for _, line := range ioMaxLines(r) {
		b.keyed("blockIO.throttle", "io.max", line, func(dev string) string {
			return dev + " rbps=max wbps=max riops=max wiops=max"
		})
	}
	return b.s
}

// restoreDefaultWeight puts back the "default N" line of io.weight or
// io.bfq.weight.
func restoreDefaultWeight(old, value string) (string, bool) {
	return restoreKeyed(nil)(old, "default "+value)
}

// ioMaxLines merges the four throttle lists into one io.max line per
// device ("8:0 rbps=1048576 wiops=100"), devices in first-mention order.
func ioMaxLines(r *config.Resources) []string {
	var order []string
	lines := map[string]string{}
	lists := []struct {
		name string
		devs []config.ThrottleDevice
	}{
		{"rbps", r.BlkioThrottleReadBps}, {"wbps", r.BlkioThrottleWriteBps},
		{"riops", r.BlkioThrottleReadIOPS}, {"wiops", r.BlkioThrottleWriteIOPS},
	}
	for _, l := range lists {
		for _, d := range l.devs {
			dev := devNum(d.Major, d.Minor)
			if _, ok := lines[dev]; !ok {
				order = append(order, dev)
				lines[dev] = dev
			}
			lines[dev] += " " + l.name + "=" + utoa(d.Rate)
		}
	}
	out := make([]string, len(order))
	for i, dev := range order {
		out[i] = lines[dev]
	}
	return out
}

func setV2Misc(r *config.Resources) []setting {
	var b settings
	if r.PidsLimit != nil {
		b.add("pids.limit", "pids.max", maxValue(*r.PidsLimit))
	}
	for _, l := range r.HugepageLimits {
		b.add("hugepageLimits", "hugetlb."+l.Pagesize+".max", utoa(l.Limit))
		b.add("hugepageLimits", "hugetlb."+l.Pagesize+".rsvd.max", utoa(l.Limit))
		b.s[len(b.s)-1].optional = true // kernels before 5.7
	}
	for _, line := range rdmaLines(r.Rdma) {
		b.keyed("rdma", "rdma.max", line, rdmaUnset)
	}
	return b.s
}

// unifiedSettings are the writes of linux.resources.unified, in key order.
// A missing file means the controller is not enabled here (or the key is
// unknown).
func unifiedSettings(u map[string]string) ([]setting, error) {
	keys := make([]string, 0, len(u))
	for k := range u {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var s []setting
	for _, k := range keys {
		if strings.Contains(k, "/") {
			return nil, fmt.Errorf("linux.resources.unified[%q]: not a file name", k)
		}
		s = append(s, setting{key: fmt.Sprintf("unified[%q]", k), file: k, value: u[k], restore: restoreUnified})
	}
	return s, nil
}

// Ignored lists the settings of r that m's Set skips, as runc skips them,
// so the caller can warn: on v2, the v1-only memory and network knobs and
// leaf weights; on v1, kernel memory where the kernel dropped its files.
func Ignored(m Manager, r *config.Resources) []error {
	var keys []string
	note := func(key string, set bool) {
		if set {
			keys = append(keys, key)
		}
	}
	switch m := m.(type) {
	case *v2:
		note("memory.kernel", r.KernelMemory != nil)
		note("memory.kernelTCP", r.KernelMemoryTCP != nil)
		note("memory.swappiness", r.MemorySwappiness != nil)
		note("memory.disableOOMKiller", r.OOMKillDisable)
		note("memory.useHierarchy", r.MemoryUseHierarchy != nil && !*r.MemoryUseHierarchy)
		note("network.classID", r.NetClassID != nil)
		note("network.priorities", len(r.NetPriorities) > 0)
		note("blockIO.leafWeight", r.BlkioLeafWeight != nil)
		leaf := false
		for _, d := range r.BlkioWeightDevices {
			leaf = leaf || d.LeafWeight != nil
		}
		note("blockIO.weightDevice[].leafWeight", leaf)
	case *v1:
		dir, ok := m.dir("memory")
		note("memory.kernel", ok && r.KernelMemory != nil && !exists(filepath.Join(dir, "memory.kmem.limit_in_bytes")))
		note("memory.kernelTCP", ok && r.KernelMemoryTCP != nil && !exists(filepath.Join(dir, "memory.kmem.tcp.limit_in_bytes")))
	}
	var out []error
	for _, k := range keys {
		out = append(out, fmt.Errorf("linux.resources.%s ignored: %w", k, ErrNotSupported))
	}
	return out
}
