package cgroups

import (
	"path/filepath"
	"sort"

	"github.com/lkc-containers/lkc/internal/config"
)

// settings collects the writes of one controller.
type settings struct {
	ctrl string
	s    []setting
}

func (b *settings) add(key, file, value string) {
	b.s = append(b.s, setting{key: key, ctrl: b.ctrl, file: file, value: value})
}

// keyed adds a write to a file of one line per key (a device), which
// unset(key) clears when the key had no line before.
func (b *settings) keyed(key, file, value string, unset func(string) string) {
	b.add(key, file, value)
	b.s[len(b.s)-1].restore = restoreKeyed(unset)
}

// zeroUnset clears a v1 per-device weight or throttle: 0 removes it.
func zeroUnset(dev string) string { return dev + " 0" }

// rdmaUnset lifts both rdma limits of a device.
func rdmaUnset(dev string) string { return dev + " hca_handle=max hca_object=max" }

func (b *settings) int(key, file string, v *int64) {
	if v != nil {
		b.add(key, file, itoa(*v))
	}
}

func (b *settings) uint(key, file string, v *uint64) {
	if v != nil {
		b.add(key, file, utoa(*v))
	}
}

// setV1Memory: the limit goes before memsw, which must stay above it.
// Kernel memory is skipped where the kernel has dropped the files.
func setV1Memory(r *config.Resources) []setting {
	b := settings{ctrl: "memory"}
	b.int("memory.limit", "memory.limit_in_bytes", r.MemoryLimit)
	b.int("memory.reservation", "memory.soft_limit_in_bytes", r.MemoryReservation)
	b.int("memory.swap", "memory.memsw.limit_in_bytes", r.MemorySwap)
	b.int("memory.kernel", "memory.kmem.limit_in_bytes", r.KernelMemory)
	b.int("memory.kernelTCP", "memory.kmem.tcp.limit_in_bytes", r.KernelMemoryTCP)
	for i := range b.s {
		if b.s[i].key == "memory.kernel" || b.s[i].key == "memory.kernelTCP" {
			b.s[i].optional = true
		}
	}
	b.uint("memory.swappiness", "memory.swappiness", r.MemorySwappiness)
	if r.OOMKillDisable {
		b.add("memory.disableOOMKiller", "memory.oom_control", "1")
		b.s[len(b.s)-1].restore = restoreFlag("oom_kill_disable")
	}
	if r.MemoryUseHierarchy != nil {
		b.add("memory.useHierarchy", "memory.use_hierarchy", boolValue(*r.MemoryUseHierarchy))
	}
	return b.s
}

// setV1CPU: the period before the quota and the quota before the burst, each
// bounded by the one before; rt period before rt runtime likewise.
func setV1CPU(r *config.Resources) []setting {
	b := settings{ctrl: "cpu"}
	b.uint("cpu.shares", "cpu.shares", r.CPUShares)
	b.uint("cpu.period", "cpu.cfs_period_us", r.CPUPeriod)
	b.int("cpu.quota", "cpu.cfs_quota_us", r.CPUQuota)
	if r.CPUBurst != nil {
		b.add("cpu.burst", "cpu.cfs_burst_us", utoa(*r.CPUBurst))
		b.s[len(b.s)-1].optional = *r.CPUBurst == 0
	}
	b.uint("cpu.realtimePeriod", "cpu.rt_period_us", r.CPURealtimePeriod)
	b.int("cpu.realtimeRuntime", "cpu.rt_runtime_us", r.CPURealtimeRuntime)
	if r.CPUIdle != nil {
		b.add("cpu.idle", "cpu.idle", itoa(*r.CPUIdle))
		b.s[len(b.s)-1].optional = *r.CPUIdle == 0
	}
	cs := settings{ctrl: "cpuset"}
	if r.CPUs != "" {
		cs.add("cpu.cpus", "cpuset.cpus", r.CPUs)
	}
	if r.Mems != "" {
		cs.add("cpu.mems", "cpuset.mems", r.Mems)
	}
	return append(b.s, cs.s...)
}

// setV1Misc: pids, devices, hugetlb, net_cls, net_prio and rdma.
func setV1Misc(r *config.Resources) []setting {
	var s []setting
	pids := settings{ctrl: "pids"}
	if r.PidsLimit != nil {
		// pids.max takes "max", not -1, for no limit (v1 and v2 alike).
		pids.add("pids.limit", "pids.max", maxValue(*r.PidsLimit))
	}
	s = append(s, pids.s...)
	for _, d := range r.Devices {
		file := "devices.deny"
		if d.Allow {
			file = "devices.allow"
		}
		s = append(s, setting{key: "devices", ctrl: "devices", file: file, value: deviceRule(d), final: true})
	}
	huge := settings{ctrl: "hugetlb"}
	for _, l := range r.HugepageLimits {
		huge.add("hugepageLimits", "hugetlb."+l.Pagesize+".limit_in_bytes", utoa(l.Limit))
		huge.add("hugepageLimits", "hugetlb."+l.Pagesize+".rsvd.limit_in_bytes", utoa(l.Limit))
		huge.s[len(huge.s)-1].optional = true // kernels before 5.7
	}
	s = append(s, huge.s...)
	if r.NetClassID != nil {
		s = append(s, setting{key: "network.classID", ctrl: "net_cls", file: "net_cls.classid", value: utoa(uint64(*r.NetClassID))})
	}
	for _, p := range r.NetPriorities {
		s = append(s, setting{key: "network.priorities", ctrl: "net_prio", file: "net_prio.ifpriomap", value: p.Name + " " + utoa(uint64(p.Priority)),
			restore: restoreKeyed(nil)})
	}
	for _, line := range rdmaLines(r.Rdma) {
		s = append(s, setting{key: "rdma", ctrl: "rdma", file: "rdma.max", value: line, restore: restoreKeyed(rdmaUnset)})
	}
	return s
}

// rdmaLines are the rdma.max writes, one per device, in name order; an
// unset count is left as it is.
func rdmaLines(rdma map[string]config.RdmaLimit) []string {
	devs := make([]string, 0, len(rdma))
	for d := range rdma {
		devs = append(devs, d)
	}
	sort.Strings(devs)
	var lines []string
	for _, d := range devs {
		line, l := d, rdma[d]
		if l.HcaHandles != nil {
			line += " hca_handle=" + utoa(uint64(*l.HcaHandles))
		}
		if l.HcaObjects != nil {
			line += " hca_object=" + utoa(uint64(*l.HcaObjects))
		}
		lines = append(lines, line)
	}
	return lines
}

// setV1Blkio writes weights to the CFQ files (blkio.weight) where the kernel
// has them, else to BFQ's (blkio.bfq.weight), as runc does; leaf weights
// exist only with CFQ.
func (m *v1) setV1Blkio(r *config.Resources) []setting {
	b := settings{ctrl: "blkio"}
	weight, weightDevice := "blkio.weight", "blkio.weight_device"
	if dir, ok := m.dir("blkio"); ok && !exists(filepath.Join(dir, weight)) && exists(filepath.Join(dir, "blkio.bfq.weight")) {
		weight, weightDevice = "blkio.bfq.weight", "blkio.bfq.weight_device"
	}
	if r.BlkioWeight != nil {
		b.add("blockIO.weight", weight, utoa(uint64(*r.BlkioWeight)))
	}
	if r.BlkioLeafWeight != nil {
		b.add("blockIO.leafWeight", "blkio.leaf_weight", utoa(uint64(*r.BlkioLeafWeight)))
	}
	for _, d := range r.BlkioWeightDevices {
		if d.Weight != nil {
			b.keyed("blockIO.weightDevice", weightDevice, devNum(d.Major, d.Minor)+" "+utoa(uint64(*d.Weight)), zeroUnset)
		}
		if d.LeafWeight != nil {
			b.keyed("blockIO.weightDevice", "blkio.leaf_weight_device", devNum(d.Major, d.Minor)+" "+utoa(uint64(*d.LeafWeight)), zeroUnset)
		}
	}
	throttles := []struct {
		key, file string
		devs      []config.ThrottleDevice
	}{
		{"blockIO.throttleReadBpsDevice", "blkio.throttle.read_bps_device", r.BlkioThrottleReadBps},
		{"blockIO.throttleWriteBpsDevice", "blkio.throttle.write_bps_device", r.BlkioThrottleWriteBps},
		{"blockIO.throttleReadIOPSDevice", "blkio.throttle.read_iops_device", r.BlkioThrottleReadIOPS},
		{"blockIO.throttleWriteIOPSDevice", "blkio.throttle.write_iops_device", r.BlkioThrottleWriteIOPS},
	}
	for _, t := range throttles {
		for _, d := range t.devs {
			b.keyed(t.key, t.file, devNum(d.Major, d.Minor)+" "+utoa(d.Rate), zeroUnset)
		}
	}
	return b.s
}
