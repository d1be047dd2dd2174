package spec

import (
	"path"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/lkc-containers/lkc/internal/config"
)

// defaultDevices are the device rules every container gets on top of those
// in config.json, as runc grants them: mknod of anything, and use of the
// standard /dev nodes and ptys.
var defaultDevices = []config.DeviceRule{
	{Allow: true, Type: 'c', Major: -1, Minor: -1, Access: "m"},
	{Allow: true, Type: 'b', Major: -1, Minor: -1, Access: "m"},
	{Allow: true, Type: 'c', Major: 1, Minor: 3, Access: "rwm"},    // null
	{Allow: true, Type: 'c', Major: 1, Minor: 5, Access: "rwm"},    // zero
	{Allow: true, Type: 'c', Major: 1, Minor: 7, Access: "rwm"},    // full
	{Allow: true, Type: 'c', Major: 1, Minor: 8, Access: "rwm"},    // random
	{Allow: true, Type: 'c', Major: 1, Minor: 9, Access: "rwm"},    // urandom
	{Allow: true, Type: 'c', Major: 5, Minor: 0, Access: "rwm"},    // tty
	{Allow: true, Type: 'c', Major: 5, Minor: 2, Access: "rwm"},    // ptmx
	{Allow: true, Type: 'c', Major: 136, Minor: -1, Access: "rwm"}, // pts
	{Allow: true, Type: 'c', Major: 10, Minor: 200, Access: "rwm"}, // net/tun
}

func convertCgroup(s *specs.Spec, c *config.Config) error {
	p, err := cgroupPath(s.Linux.CgroupsPath, c.ID)
	if err != nil {
		return err
	}
	c.Cgroup.Path = p
	r := s.Linux.Resources
	if r == nil {
		r = &specs.LinuxResources{}
	}
	var h cgroupHost
	if needsHost(r) {
		h = probeCgroupHost()
	}
	if err := convertResources(r, &c.Cgroup.Resources, h); err != nil {
		return err
	}
	return convertDeviceRules(r.Devices, c)
}

// cgroupPath returns the container's cgroup path as config.Cgroup.Path
// holds it: an absolute path stays absolute (from each hierarchy's root,
// as the runtime spec says and Kubernetes' pod cgroups need), a relative
// one or none is placed beneath the cgroup of the lkc process.
func cgroupPath(p, id string) (string, error) {
	if p == "" {
		return config.DefaultCgroupParent + "/" + id, nil
	}
	if strings.Contains(p, ":") {
		return "", invalid("linux.cgroupsPath %q looks like a systemd slice path; lkc uses the cgroupfs driver", p)
	}
	for _, part := range strings.Split(p, "/") {
		if part == ".." {
			return "", invalid("linux.cgroupsPath %q contains '..'", p)
		}
	}
	clean := path.Clean("/" + p)
	if clean == "/" {
		return "", invalid("linux.cgroupsPath %q names the root cgroup", p)
	}
	if !path.IsAbs(p) {
		return clean[1:], nil
	}
	return clean, nil
}

// convertResources converts and validates linux.resources except the
// device rules, against what the host offers.
func convertResources(r *specs.LinuxResources, res *config.Resources, h cgroupHost) error {
	if m := r.Memory; m != nil {
		res.MemoryLimit, res.MemoryReservation, res.MemorySwap = m.Limit, m.Reservation, m.Swap
	}
	// 0 is unset; -1 (any negative, as runc) is unlimited, which an
	// update needs to lift a limit.
	if r.Pids != nil && r.Pids.Limit != 0 {
		limit := r.Pids.Limit
		res.PidsLimit = &limit
	}
	if cpu := r.CPU; cpu != nil {
		res.CPUShares, res.CPUQuota, res.CPUPeriod = cpu.Shares, cpu.Quota, cpu.Period
		res.CPUs, res.Mems = cpu.Cpus, cpu.Mems
	}
	if err := checkResourceValues(res); err != nil {
		return err
	}
	if err := convertMoreMemory(r.Memory, res); err != nil {
		return err
	}
	if err := convertMoreCPU(r.CPU, res, h); err != nil {
		return err
	}
	if err := convertBlockIO(r.BlockIO, res); err != nil {
		return err
	}
	if err := convertHugepages(r.HugepageLimits, res, h); err != nil {
		return err
	}
	if err := convertNetwork(r.Network, res); err != nil {
		return err
	}
	if err := convertRdma(r.Rdma, res); err != nil {
		return err
	}
	return convertUnified(r.Unified, res, h)
}

func checkResourceValues(r *config.Resources) error {
	checks := []struct {
		name string
		v    *int64
	}{
		{"memory.limit", r.MemoryLimit}, {"memory.reservation", r.MemoryReservation},
		{"memory.swap", r.MemorySwap},
	}
	for _, c := range checks {
		if c.v != nil && *c.v < -1 {
			return invalid("linux.resources.%s %d is negative", c.name, *c.v)
		}
	}
	if r.SwapBelowMemory() {
		return invalid("linux.resources.memory.swap %d is below memory.limit %d (swap counts memory plus swap)", *r.MemorySwap, *r.MemoryLimit)
	}
	if r.CPUQuota != nil && *r.CPUQuota != -1 && *r.CPUQuota < 1000 {
		return invalid("linux.resources.cpu.quota %d is below the kernel's 1000us minimum", *r.CPUQuota)
	}
	return nil
}

func convertDeviceRules(rules []specs.LinuxDeviceCgroup, c *config.Config) error {
	out := c.Cgroup.Resources.Devices[:0]
	for i, d := range rules {
		rule := config.DeviceRule{Allow: d.Allow, Type: 'a', Major: -1, Minor: -1, Access: d.Access}
		switch d.Type {
		case "", "a":
		case "c", "b":
			rule.Type = rune(d.Type[0])
		default:
			return invalid("linux.resources.devices[%d]: unknown type %q", i, d.Type)
		}
		if d.Major != nil {
			rule.Major = *d.Major
		}
		if d.Minor != nil {
			rule.Minor = *d.Minor
		}
		if rule.Access == "" {
			rule.Access = "rwm"
		}
		if strings.Trim(rule.Access, "rwm") != "" {
			return invalid("linux.resources.devices[%d]: access %q is not a combination of r, w, m", i, d.Access)
		}
		out = append(out, rule)
	}
	out = append(out, defaultDevices...)
	for _, d := range c.Devices {
		if d.Type == 'p' {
			continue
		}
		out = append(out, config.DeviceRule{Allow: true, Type: d.Type, Major: d.Major, Minor: d.Minor, Access: "rwm"})
	}
	c.Cgroup.Resources.Devices = out
	return nil
}
