package config

import (
	"maps"
	"slices"

	"github.com/lkc-containers/lkc/internal/pack"
)

// Pack writes c for the init handshake (internal/pack says why not JSON).
// Every field is written, and Unpack reads them back in the same order;
// pack_test.go checks that none is missed or misplaced.
func (c *Config) Pack(w *pack.Writer) {
	for _, s := range []string{c.OCIVersion, c.ID, c.Bundle, c.Rootfs} {
		w.String(s)
	}
	w.Bool(c.Readonly)
	w.String(c.Hostname)
	w.String(c.Domainname)
	w.StringMap(c.Annotations)
	pack.Slice(w, c.Namespaces, func(w *pack.Writer, n *Namespace) {
		w.String(n.Type)
		w.String(n.Path)
	})
	pack.Slice(w, c.UIDMappings, packIDMap)
	pack.Slice(w, c.GIDMappings, packIDMap)
	pack.Slice(w, c.TimeOffsets, func(w *pack.Writer, t *TimeOffset) {
		w.String(t.Clock)
		pack.Num(w, t.Secs)
		pack.Num(w, t.Nanos)
	})
	pack.Num(w, c.RootPropagation)
	pack.Slice(w, c.Mounts, packMount)
	pack.Slice(w, c.Devices, packDevice)
	w.Strings(c.MaskedPaths)
	w.Strings(c.ReadonlyPaths)
	w.StringMap(c.Sysctl)
	pack.OptNum(w, c.Personality)
	w.Bool(c.NoPivot)
	w.String(c.MountLabel)
	w.Bool(c.Seccomp != nil)
	if c.Seccomp != nil {
		c.Seccomp.pack(w)
	}
	c.Process.pack(w)
	w.String(c.Cgroup.Path)
	c.Cgroup.Resources.pack(w)
	c.Hooks.pack(w)
}

// Unpack reads a Config written by Pack into c, which should be zero.
func (c *Config) Unpack(r *pack.Reader) {
	for _, s := range []*string{&c.OCIVersion, &c.ID, &c.Bundle, &c.Rootfs} {
		*s = r.String()
	}
	c.Readonly = r.Bool()
	c.Hostname = r.String()
	c.Domainname = r.String()
	c.Annotations = r.StringMap()
	c.Namespaces = pack.ReadSlice(r, func(r *pack.Reader, n *Namespace) {
		n.Type = r.String()
		n.Path = r.String()
	})
	c.UIDMappings = pack.ReadSlice(r, unpackIDMap)
	c.GIDMappings = pack.ReadSlice(r, unpackIDMap)
	c.TimeOffsets = pack.ReadSlice(r, func(r *pack.Reader, t *TimeOffset) {
		t.Clock = r.String()
		t.Secs = pack.ReadNum[int64](r)
		t.Nanos = pack.ReadNum[uint32](r)
	})
	c.RootPropagation = pack.ReadNum[uintptr](r)
	c.Mounts = pack.ReadSlice(r, unpackMount)
	c.Devices = pack.ReadSlice(r, unpackDevice)
	c.MaskedPaths = r.Strings()
	c.ReadonlyPaths = r.Strings()
	c.Sysctl = r.StringMap()
	c.Personality = pack.ReadOptNum[uint32](r)
	c.NoPivot = r.Bool()
	c.MountLabel = r.String()
	if r.Bool() {
		c.Seccomp = new(Seccomp)
		c.Seccomp.unpack(r)
	}
	c.Process.unpack(r)
	c.Cgroup.Path = r.String()
	c.Cgroup.Resources.unpack(r)
	c.Hooks.unpack(r)
}

func packIDMap(w *pack.Writer, m *IDMap) {
	pack.Num(w, m.ContainerID)
	pack.Num(w, m.HostID)
	pack.Num(w, m.Size)
}

func unpackIDMap(r *pack.Reader, m *IDMap) {
	m.ContainerID = pack.ReadNum[uint32](r)
	m.HostID = pack.ReadNum[uint32](r)
	m.Size = pack.ReadNum[uint32](r)
}

func packMount(w *pack.Writer, m *Mount) {
	w.String(m.Source)
	w.String(m.Destination)
	w.String(m.Type)
	pack.Num(w, m.Flags)
	pack.Nums(w, m.Propagation)
	w.String(m.Data)
	w.Bool(m.CopyUp)
	pack.Num(w, m.RecAttrSet)
	pack.Num(w, m.RecAttrClr)
}

func unpackMount(r *pack.Reader, m *Mount) {
	m.Source = r.String()
	m.Destination = r.String()
	m.Type = r.String()
	m.Flags = pack.ReadNum[uintptr](r)
	m.Propagation = pack.ReadNums[uintptr](r)
	m.Data = r.String()
	m.CopyUp = r.Bool()
	m.RecAttrSet = pack.ReadNum[uint64](r)
	m.RecAttrClr = pack.ReadNum[uint64](r)
}

func packDevice(w *pack.Writer, d *Device) {
	w.String(d.Path)
	pack.Num(w, d.Type)
	pack.Num(w, d.Major)
	pack.Num(w, d.Minor)
	pack.Num(w, d.FileMode)
	pack.Num(w, d.UID)
	pack.Num(w, d.GID)
}

func unpackDevice(r *pack.Reader, d *Device) {
	d.Path = r.String()
	d.Type = pack.ReadNum[rune](r)
	d.Major = pack.ReadNum[int64](r)
	d.Minor = pack.ReadNum[int64](r)
	d.FileMode = pack.ReadNum[uint32](r)
	d.UID = pack.ReadNum[uint32](r)
	d.GID = pack.ReadNum[uint32](r)
}

func (h *Hooks) pack(w *pack.Writer) {
	for _, hs := range []*[]Hook{&h.Prestart, &h.CreateRuntime, &h.CreateContainer, &h.StartContainer, &h.Poststart, &h.Poststop} {
		pack.Slice(w, *hs, func(w *pack.Writer, k *Hook) {
			w.String(k.Path)
			w.Strings(k.Args)
			w.Strings(k.Env)
			pack.Num(w, k.Timeout)
		})
	}
}

func (h *Hooks) unpack(r *pack.Reader) {
	for _, hs := range []*[]Hook{&h.Prestart, &h.CreateRuntime, &h.CreateContainer, &h.StartContainer, &h.Poststart, &h.Poststop} {
		*hs = pack.ReadSlice(r, func(r *pack.Reader, k *Hook) {
			k.Path = r.String()
			k.Args = r.Strings()
			k.Env = r.Strings()
			k.Timeout = pack.ReadNum[int](r)
		})
	}
}

func (p *Process) pack(w *pack.Writer) {
	w.Bool(p.Terminal)
	pack.Num(w, p.ConsoleHeight)
	pack.Num(w, p.ConsoleWidth)
	w.Strings(p.Args)
	w.Strings(p.Env)
	w.String(p.Cwd)
	pack.Num(w, p.UID)
	pack.Num(w, p.GID)
	pack.Nums(w, p.AdditionalGids)
	pack.OptNum(w, p.Umask)
	pack.Slice(w, p.Rlimits, func(w *pack.Writer, l *Rlimit) {
		w.String(l.Name)
		pack.Num(w, l.Type)
		pack.Num(w, l.Soft)
		pack.Num(w, l.Hard)
	})
	w.Bool(p.NoNewPrivileges)
	pack.OptNum(w, p.OOMScoreAdj)
	w.Bool(p.Capabilities != nil)
	if c := p.Capabilities; c != nil {
		for _, set := range [][]int{c.Bounding, c.Effective, c.Inheritable, c.Permitted, c.Ambient} {
			pack.Nums(w, set)
		}
	}
	w.String(p.ApparmorProfile)
	w.String(p.SelinuxLabel)
}

func (p *Process) unpack(r *pack.Reader) {
	p.Terminal = r.Bool()
	p.ConsoleHeight = pack.ReadNum[uint16](r)
	p.ConsoleWidth = pack.ReadNum[uint16](r)
	p.Args = r.Strings()
	p.Env = r.Strings()
	p.Cwd = r.String()
	p.UID = pack.ReadNum[uint32](r)
	p.GID = pack.ReadNum[uint32](r)
	p.AdditionalGids = pack.ReadNums[uint32](r)
	p.Umask = pack.ReadOptNum[uint32](r)
	p.Rlimits = pack.ReadSlice(r, func(r *pack.Reader, l *Rlimit) {
		l.Name = r.String()
		l.Type = pack.ReadNum[int](r)
		l.Soft = pack.ReadNum[uint64](r)
		l.Hard = pack.ReadNum[uint64](r)
	})
	p.NoNewPrivileges = r.Bool()
	p.OOMScoreAdj = pack.ReadOptNum[int](r)
	if r.Bool() {
		c := new(Capabilities)
		for _, set := range []*[]int{&c.Bounding, &c.Effective, &c.Inheritable, &c.Permitted, &c.Ambient} {
			*set = pack.ReadNums[int](r)
		}
		p.Capabilities = c
	}
	p.ApparmorProfile = r.String()
	p.SelinuxLabel = r.String()
}

func (s *Seccomp) pack(w *pack.Writer) {
	w.String(s.DefaultAction)
	pack.OptNum(w, s.DefaultErrnoRet)
	w.Strings(s.Architectures)
	w.Bool(s.Log)
	w.Bool(s.SpecAllow)
	w.Bool(s.WaitKillableRecv)
	w.String(s.ListenerPath)
	w.String(s.ListenerMetadata)
	pack.Slice(w, s.Syscalls, func(w *pack.Writer, rule *SeccompRule) {
		w.Strings(rule.Names)
		w.String(rule.Action)
		pack.OptNum(w, rule.ErrnoRet)
		pack.Slice(w, rule.Args, func(w *pack.Writer, a *SeccompArg) {
			pack.Num(w, a.Index)
			pack.Num(w, a.Value)
			pack.Num(w, a.ValueTwo)
			w.String(a.Op)
		})
	})
}

func (s *Seccomp) unpack(r *pack.Reader) {
	s.DefaultAction = r.String()
	s.DefaultErrnoRet = pack.ReadOptNum[uint32](r)
	s.Architectures = r.Strings()
	s.Log = r.Bool()
	s.SpecAllow = r.Bool()
	s.WaitKillableRecv = r.Bool()
	s.ListenerPath = r.String()
	s.ListenerMetadata = r.String()
	s.Syscalls = pack.ReadSlice(r, func(r *pack.Reader, rule *SeccompRule) {
		rule.Names = r.Strings()
		rule.Action = r.String()
		rule.ErrnoRet = pack.ReadOptNum[uint32](r)
		rule.Args = pack.ReadSlice(r, func(r *pack.Reader, a *SeccompArg) {
			a.Index = pack.ReadNum[uint](r)
			a.Value = pack.ReadNum[uint64](r)
			a.ValueTwo = pack.ReadNum[uint64](r)
			a.Op = r.String()
		})
	})
}

// int64s, uint64s and uint16s are the optional limits of each type, in
// the one order pack and unpack both use.
func (res *Resources) int64s() []**int64 {
	return []**int64{&res.MemoryLimit, &res.MemoryReservation, &res.MemorySwap, &res.PidsLimit, &res.CPUQuota,
		&res.KernelMemory, &res.KernelMemoryTCP, &res.CPURealtimeRuntime, &res.CPUIdle}
}

func (res *Resources) uint64s() []**uint64 {
	return []**uint64{&res.CPUShares, &res.CPUPeriod, &res.MemorySwappiness, &res.CPURealtimePeriod, &res.CPUBurst}
}

func (res *Resources) uint16s() []**uint16 {
	return []**uint16{&res.BlkioWeight, &res.BlkioLeafWeight}
}

func (res *Resources) throttles() []*[]ThrottleDevice {
	return []*[]ThrottleDevice{&res.BlkioThrottleReadBps, &res.BlkioThrottleWriteBps,
		&res.BlkioThrottleReadIOPS, &res.BlkioThrottleWriteIOPS}
}

func (res *Resources) pack(w *pack.Writer) {
	for _, p := range res.int64s() {
		pack.OptNum(w, *p)
	}
	for _, p := range res.uint64s() {
		pack.OptNum(w, *p)
	}
	for _, p := range res.uint16s() {
		pack.OptNum(w, *p)
	}
	pack.OptNum(w, res.NetClassID)
	w.String(res.CPUs)
	w.String(res.Mems)
	w.Bool(res.OOMKillDisable)
	w.Bool(res.MemoryCheckBeforeUpdate)
	w.Bool(res.MemoryUseHierarchy != nil)
	if res.MemoryUseHierarchy != nil {
		w.Bool(*res.MemoryUseHierarchy)
	}
	pack.Slice(w, res.Devices, func(w *pack.Writer, d *DeviceRule) {
		w.Bool(d.Allow)
		pack.Num(w, d.Type)
		pack.Num(w, d.Major)
		pack.Num(w, d.Minor)
		w.String(d.Access)
	})
	pack.Slice(w, res.BlkioWeightDevices, func(w *pack.Writer, d *WeightDevice) {
		pack.Num(w, d.Major)
		pack.Num(w, d.Minor)
		pack.OptNum(w, d.Weight)
		pack.OptNum(w, d.LeafWeight)
	})
	for _, t := range res.throttles() {
		pack.Slice(w, *t, func(w *pack.Writer, d *ThrottleDevice) {
			pack.Num(w, d.Major)
			pack.Num(w, d.Minor)
			pack.Num(w, d.Rate)
		})
	}
	pack.Slice(w, res.HugepageLimits, func(w *pack.Writer, h *HugepageLimit) {
		w.String(h.Pagesize)
		pack.Num(w, h.Limit)
	})
	pack.Slice(w, res.NetPriorities, func(w *pack.Writer, p *NetPriority) {
		w.String(p.Name)
		pack.Num(w, p.Priority)
	})
	w.Uint(uint64(len(res.Rdma)))
	for _, dev := range slices.Sorted(maps.Keys(res.Rdma)) {
		l := res.Rdma[dev]
		w.String(dev)
		pack.OptNum(w, l.HcaHandles)
		pack.OptNum(w, l.HcaObjects)
	}
	w.StringMap(res.Unified)
}

func (res *Resources) unpack(r *pack.Reader) {
	for _, p := range res.int64s() {
		*p = pack.ReadOptNum[int64](r)
	}
	for _, p := range res.uint64s() {
		*p = pack.ReadOptNum[uint64](r)
	}
	for _, p := range res.uint16s() {
		*p = pack.ReadOptNum[uint16](r)
	}
	res.NetClassID = pack.ReadOptNum[uint32](r)
	res.CPUs = r.String()
	res.Mems = r.String()
	res.OOMKillDisable = r.Bool()
	res.MemoryCheckBeforeUpdate = r.Bool()
	if r.Bool() {
		v := r.Bool()
		res.MemoryUseHierarchy = &v
	}
	res.Devices = pack.ReadSlice(r, func(r *pack.Reader, d *DeviceRule) {
		d.Allow = r.Bool()
		d.Type = pack.ReadNum[rune](r)
		d.Major = pack.ReadNum[int64](r)
		d.Minor = pack.ReadNum[int64](r)
		d.Access = r.String()
	})
	res.BlkioWeightDevices = pack.ReadSlice(r, func(r *pack.Reader, d *WeightDevice) {
		d.Major = pack.ReadNum[int64](r)
		d.Minor = pack.ReadNum[int64](r)
		d.Weight = pack.ReadOptNum[uint16](r)
		d.LeafWeight = pack.ReadOptNum[uint16](r)
	})
	for _, t := range res.throttles() {
		*t = pack.ReadSlice(r, func(r *pack.Reader, d *ThrottleDevice) {
			d.Major = pack.ReadNum[int64](r)
			d.Minor = pack.ReadNum[int64](r)
			d.Rate = pack.ReadNum[uint64](r)
		})
	}
	res.HugepageLimits = pack.ReadSlice(r, func(r *pack.Reader, h *HugepageLimit) {
		h.Pagesize = r.String()
		h.Limit = pack.ReadNum[uint64](r)
	})
	res.NetPriorities = pack.ReadSlice(r, func(r *pack.Reader, p *NetPriority) {
		p.Name = r.String()
		p.Priority = pack.ReadNum[uint32](r)
	})
	if n := r.Len(); n > 0 {
		res.Rdma = make(map[string]RdmaLimit, n)
		for range n {
			dev := r.String()
			var l RdmaLimit
			l.HcaHandles = pack.ReadOptNum[uint32](r)
			l.HcaObjects = pack.ReadOptNum[uint32](r)
			res.Rdma[dev] = l
		}
	}
	res.Unified = r.StringMap()
}
