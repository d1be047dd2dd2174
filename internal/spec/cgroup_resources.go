package spec

import (
	"sort"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/lkc-containers/lkc/internal/config"
)

// convertMoreMemory copies the memory settings beyond the three limits.
func convertMoreMemory(m *specs.LinuxMemory, res *config.Resources) error {
	if m == nil {
		return nil
	}
	for name, v := range map[string]*int64{"kernel": m.Kernel, "kernelTCP": m.KernelTCP} {
		if v != nil && *v < -1 {
			return invalid("linux.resources.memory.%s %d is negative", name, *v)
		}
	}
	if m.Swappiness != nil && *m.Swappiness > 100 {
		return invalid("linux.resources.memory.swappiness %d is outside 0-100", *m.Swappiness)
	}
	res.KernelMemory, res.KernelMemoryTCP = m.Kernel, m.KernelTCP
	res.MemorySwappiness, res.MemoryUseHierarchy = m.Swappiness, m.UseHierarchy
	res.OOMKillDisable = m.DisableOOMKiller != nil && *m.DisableOOMKiller
	res.MemoryCheckBeforeUpdate = m.CheckBeforeUpdate != nil && *m.CheckBeforeUpdate
	return nil
}

// convertMoreCPU copies the CPU settings beyond shares and quota and checks
// the cpuset lists against the host.
func convertMoreCPU(cpu *specs.LinuxCPU, res *config.Resources, h cgroupHost) error {
	if cpu == nil {
		return nil
	}
	if cpu.Idle != nil && *cpu.Idle != 0 && *cpu.Idle != 1 {
		return invalid("linux.resources.cpu.idle %d is neither 0 nor 1", *cpu.Idle)
	}
	if cpu.RealtimeRuntime != nil && *cpu.RealtimeRuntime < -1 {
		return invalid("linux.resources.cpu.realtimeRuntime %d is negative", *cpu.RealtimeRuntime)
	}
	if h.unified && (nonZero(cpu.RealtimeRuntime) || (cpu.RealtimePeriod != nil && *cpu.RealtimePeriod != 0)) {
		return invalid("linux.resources.cpu.realtimeRuntime/realtimePeriod: cgroup v2 has no realtime group scheduling")
	}
	if err := checkIDs("linux.resources.cpu.cpus", cpu.Cpus, h.cpus); err != nil {
		return err
	}
	if err := checkIDs("linux.resources.cpu.mems", cpu.Mems, h.mems); err != nil {
		return err
	}
	res.CPURealtimeRuntime, res.CPURealtimePeriod = cpu.RealtimeRuntime, cpu.RealtimePeriod
	res.CPUBurst, res.CPUIdle = cpu.Burst, cpu.Idle
	return nil
}

func nonZero(v *int64) bool { return v != nil && *v != 0 }

// checkIDs checks the syntax of the id list of field key and that every
// id is online.
func checkIDs(key, list string, online map[int]bool) error {
	if list == "" {
		return nil
	}
	ids, err := parseIDList(list)
	if err != nil {
		return invalid("%s: %v", key, strings.TrimPrefix(err.Error(), ErrInvalid.Error()+": "))
	}
	if online == nil {
		return nil
	}
	var missing []int
	for id := range ids {
		if !online[id] {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 {
		sort.Ints(missing)
		return invalid("%s %q names %v, which the host does not have online", key, list, missing)
	}
	return nil
}

// convertBlockIO copies linux.resources.blockIO, checking weights against
// the blkio range [10, 1000].
func convertBlockIO(b *specs.LinuxBlockIO, res *config.Resources) error {
	if b == nil {
		return nil
	}
	weight, leafWeight := unsetIfZero(b.Weight), unsetIfZero(b.LeafWeight)
	if err := checkWeight("blockIO.weight", weight); err != nil {
		return err
	}
	if err := checkWeight("blockIO.leafWeight", leafWeight); err != nil {
		return err
	}
	res.BlkioWeight, res.BlkioLeafWeight = weight, leafWeight
	for i, d := range b.WeightDevice {
		key := "blockIO.weightDevice[" + strconv.Itoa(i) + "]"
		if err := checkDevice(key, d.Major, d.Minor); err != nil {
			return err
		}
		weight, leafWeight := unsetIfZero(d.Weight), unsetIfZero(d.LeafWeight)
		if err := checkWeight(key+".weight", weight); err != nil {
			return err
		}
		if err := checkWeight(key+".leafWeight", leafWeight); err != nil {
			return err
		}
		if weight == nil && leafWeight == nil {
			continue
		}
		res.BlkioWeightDevices = append(res.BlkioWeightDevices, config.WeightDevice{
			Major: d.Major, Minor: d.Minor, Weight: weight, LeafWeight: leafWeight,
		})
	}
	throttles := []struct {
		key string
		in  []specs.LinuxThrottleDevice
		out *[]config.ThrottleDevice
	}{
		{"throttleReadBpsDevice", b.ThrottleReadBpsDevice, &res.BlkioThrottleReadBps},
		{"throttleWriteBpsDevice", b.ThrottleWriteBpsDevice, &res.BlkioThrottleWriteBps},
		{"throttleReadIOPSDevice", b.ThrottleReadIOPSDevice, &res.BlkioThrottleReadIOPS},
		{"throttleWriteIOPSDevice", b.ThrottleWriteIOPSDevice, &res.BlkioThrottleWriteIOPS},
	}
	for _, t := range throttles {
		for i, d := range t.in {
			if err := checkDevice("blockIO."+t.key+"["+strconv.Itoa(i)+"]", d.Major, d.Minor); err != nil {
				return err
			}
			*t.out = append(*t.out, config.ThrottleDevice{Major: d.Major, Minor: d.Minor, Rate: d.Rate})
		}
	}
	return nil
}

// unsetIfZero reads a weight of 0 as "not set", as runc does: Docker
// always sends blockIO.weight, 0 when the user gave none, and a device
// weight with leafWeight 0.
func unsetIfZero(w *uint16) *uint16 {
	if w != nil && *w == 0 {
		return nil
	}
	return w
}

func checkWeight(key string, w *uint16) error {
	if w != nil && (*w < 10 || *w > 1000) {
		return invalid("linux.resources.%s %d is outside 10-1000", key, *w)
	}
	return nil
}

func checkDevice(key string, major, minor int64) error {
	if major < 0 || minor < 0 {
		return invalid("linux.resources.%s: device %d:%d is negative", key, major, minor)
	}
	return nil
}

func convertHugepages(limits []specs.LinuxHugepageLimit, res *config.Resources, h cgroupHost) error {
	for i, l := range limits {
		if !h.pagesizes[l.Pagesize] {
			return invalid("linux.resources.hugepageLimits[%d]: the host has no %q huge pages (it has %s)", i, l.Pagesize, sizesOf(h))
		}
		res.HugepageLimits = append(res.HugepageLimits, config.HugepageLimit{Pagesize: l.Pagesize, Limit: l.Limit})
	}
	return nil
}

func sizesOf(h cgroupHost) string {
	var out []string
	for s := range h.pagesizes {
		out = append(out, s)
	}
	sort.Strings(out)
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, ", ")
}

func convertNetwork(n *specs.LinuxNetwork, res *config.Resources) error {
	if n == nil {
		return nil
	}
	res.NetClassID = n.ClassID
	for i, p := range n.Priorities {
		if p.Name == "" || strings.ContainsAny(p.Name, " \t\n/") {
			return invalid("linux.resources.network.priorities[%d]: interface name %q is empty or malformed", i, p.Name)
		}
		res.NetPriorities = append(res.NetPriorities, config.NetPriority{Name: p.Name, Priority: p.Priority})
	}
	return nil
}

func convertRdma(rdma map[string]specs.LinuxRdma, res *config.Resources) error {
	for dev, l := range rdma {
		if dev == "" || strings.ContainsAny(dev, " \t\n") {
			return invalid("linux.resources.rdma: device name %q is empty or malformed", dev)
		}
		if res.Rdma == nil {
			res.Rdma = map[string]config.RdmaLimit{}
		}
		res.Rdma[dev] = config.RdmaLimit{HcaHandles: l.HcaHandles, HcaObjects: l.HcaObjects}
	}
	return nil
}

// convertUnified checks linux.resources.unified: v2 only, as in runc, and
// every key a file name of the form controller.parameter.
func convertUnified(u map[string]string, res *config.Resources, h cgroupHost) error {
	if len(u) == 0 {
		return nil
	}
	keys := make([]string, 0, len(u))
	for k := range u {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if !h.unified {
		return invalid("linux.resources.unified[%q]: the host does not run cgroup v2 (unified mode)", keys[0])
	}
	for _, k := range keys {
		ctrl, param, ok := strings.Cut(k, ".")
		if !ok || ctrl == "" || param == "" || strings.Contains(k, "/") {
			return invalid("linux.resources.unified[%q]: not a cgroup file name of the form controller.parameter", k)
		}
	}
	res.Unified = u
	return nil
}
