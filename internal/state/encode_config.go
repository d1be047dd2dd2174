package state

import "github.com/lkc-containers/lkc/internal/config"

// The config types as json.Marshal renders them, for encode: one line per
// field, in declaration order, under its json tag; an omitempty field is
// written only when not empty.

func appendConfig(b []byte, c *config.Config) []byte {
	o := object{b: b}
	o.str("ociVersion", c.OCIVersion)
	o.str("id", c.ID)
	o.str("bundle", c.Bundle)
	o.str("rootfs", c.Rootfs)
	o.optBool("readonly", c.Readonly)
	o.optStr("hostname", c.Hostname)
	o.optStr("domainname", c.Domainname)
	o.optStrMap("annotations", c.Annotations)
	optSlice(&o, "namespaces", c.Namespaces, func(b []byte, n *config.Namespace) []byte {
		o := object{b: b}
		o.str("type", n.Type)
		o.optStr("path", n.Path)
		return o.end()
	})
	optSlice(&o, "uidMappings", c.UIDMappings, appendIDMap)
	optSlice(&o, "gidMappings", c.GIDMappings, appendIDMap)
	optSlice(&o, "timeOffsets", c.TimeOffsets, func(b []byte, t *config.TimeOffset) []byte {
		o := object{b: b}
		o.str("clock", t.Clock)
		num(&o, "secs", t.Secs)
		num(&o, "nanos", t.Nanos)
		return o.end()
	})
	optNum(&o, "rootPropagation", c.RootPropagation)
	optSlice(&o, "mounts", c.Mounts, appendMount)
	optSlice(&o, "devices", c.Devices, appendDevice)
	o.optStrs("maskedPaths", c.MaskedPaths)
	o.optStrs("readonlyPaths", c.ReadonlyPaths)
	o.optStrMap("sysctl", c.Sysctl)
	optNumPtr(&o, "personality", c.Personality)
	o.optBool("noPivot", c.NoPivot)
	o.optStr("mountLabel", c.MountLabel)
	if c.Seccomp != nil {
		o.key("seccomp")
		o.b = appendSeccomp(o.b, c.Seccomp)
	}
	o.key("process")
	o.b = appendProcess(o.b, &c.Process)
	o.key("cgroup")
	o.b = appendCgroup(o.b, &c.Cgroup)
	o.key("hooks")
	o.b = appendHooks(o.b, &c.Hooks)
	return o.end()
}

func appendIDMap(b []byte, m *config.IDMap) []byte {
	o := object{b: b}
	num(&o, "containerID", m.ContainerID)
	num(&o, "hostID", m.HostID)
	num(&o, "size", m.Size)
	return o.end()
}

func appendMount(b []byte, m *config.Mount) []byte {
	o := object{b: b}
	o.str("source", m.Source)
	o.str("destination", m.Destination)
	o.str("type", m.Type)
	optNum(&o, "flags", m.Flags)
	optNums(&o, "propagation", m.Propagation)
	o.optStr("data", m.Data)
	o.optBool("copyUp", m.CopyUp)
	optNum(&o, "recAttrSet", m.RecAttrSet)
	optNum(&o, "recAttrClr", m.RecAttrClr)
	return o.end()
}

func appendDevice(b []byte, d *config.Device) []byte {
	o := object{b: b}
	o.str("path", d.Path)
	num(&o, "type", d.Type)
	num(&o, "major", d.Major)
	num(&o, "minor", d.Minor)
	num(&o, "fileMode", d.FileMode)
	num(&o, "uid", d.UID)
	num(&o, "gid", d.GID)
	return o.end()
}

func appendProcess(b []byte, p *config.Process) []byte {
	o := object{b: b}
	o.optBool("terminal", p.Terminal)
	optNum(&o, "consoleHeight", p.ConsoleHeight)
	optNum(&o, "consoleWidth", p.ConsoleWidth)
	o.strs("args", p.Args)
	o.optStrs("env", p.Env)
	o.str("cwd", p.Cwd)
	num(&o, "uid", p.UID)
	num(&o, "gid", p.GID)
	optNums(&o, "additionalGids", p.AdditionalGids)
	optNumPtr(&o, "umask", p.Umask)
	optSlice(&o, "rlimits", p.Rlimits, func(b []byte, l *config.Rlimit) []byte {
		o := object{b: b}
		o.str("name", l.Name)
		num(&o, "type", l.Type)
		num(&o, "soft", l.Soft)
		num(&o, "hard", l.Hard)
		return o.end()
	})
	o.optBool("noNewPrivileges", p.NoNewPrivileges)
	optNumPtr(&o, "oomScoreAdj", p.OOMScoreAdj)
	if c := p.Capabilities; c != nil {
		o.key("capabilities")
		caps := object{b: o.b}
		optNums(&caps, "bounding", c.Bounding)
		optNums(&caps, "effective", c.Effective)
		optNums(&caps, "inheritable", c.Inheritable)
		optNums(&caps, "permitted", c.Permitted)
		optNums(&caps, "ambient", c.Ambient)
		o.b = caps.end()
	}
	o.optStr("apparmorProfile", p.ApparmorProfile)
	o.optStr("selinuxLabel", p.SelinuxLabel)
	return o.end()
}

func appendHooks(b []byte, h *config.Hooks) []byte {
	hook := func(b []byte, k *config.Hook) []byte {
		o := object{b: b}
		o.str("path", k.Path)
		o.optStrs("args", k.Args)
		o.optStrs("env", k.Env)
		optNum(&o, "timeout", k.Timeout)
		return o.end()
	}
	o := object{b: b}
	optSlice(&o, "prestart", h.Prestart, hook)
	optSlice(&o, "createRuntime", h.CreateRuntime, hook)
	optSlice(&o, "createContainer", h.CreateContainer, hook)
	optSlice(&o, "startContainer", h.StartContainer, hook)
	optSlice(&o, "poststart", h.Poststart, hook)
	optSlice(&o, "poststop", h.Poststop, hook)
	return o.end()
}

func appendSeccomp(b []byte, s *config.Seccomp) []byte {
	arg := func(b []byte, a *config.SeccompArg) []byte {
		o := object{b: b}
		num(&o, "index", a.Index)
		num(&o, "value", a.Value)
		optNum(&o, "valueTwo", a.ValueTwo)
		o.str("op", a.Op)
		return o.end()
	}
	o := object{b: b}
	o.str("defaultAction", s.DefaultAction)
	optNumPtr(&o, "defaultErrnoRet", s.DefaultErrnoRet)
	o.optStrs("architectures", s.Architectures)
	o.optBool("log", s.Log)
	o.optBool("specAllow", s.SpecAllow)
	o.optBool("waitKillableRecv", s.WaitKillableRecv)
	o.optStr("listenerPath", s.ListenerPath)
	o.optStr("listenerMetadata", s.ListenerMetadata)
	optSlice(&o, "syscalls", s.Syscalls, func(b []byte, r *config.SeccompRule) []byte {
		o := object{b: b}
		o.strs("names", r.Names)
		o.str("action", r.Action)
		optNumPtr(&o, "errnoRet", r.ErrnoRet)
		optSlice(&o, "args", r.Args, arg)
		return o.end()
	})
	return o.end()
}

func appendCgroup(b []byte, c *config.Cgroup) []byte {
	o := object{b: b}
	o.str("path", c.Path)
	o.key("resources")
	o.b = appendResources(o.b, &c.Resources)
	return o.end()
}

func appendResources(b []byte, r *config.Resources) []byte {
	throttle := func(b []byte, t *config.ThrottleDevice) []byte {
		o := object{b: b}
		num(&o, "major", t.Major)
		num(&o, "minor", t.Minor)
		num(&o, "rate", t.Rate)
		return o.end()
	}
	o := object{b: b}
	optNumPtr(&o, "memoryLimit", r.MemoryLimit)
	optNumPtr(&o, "memoryReservation", r.MemoryReservation)
	optNumPtr(&o, "memorySwap", r.MemorySwap)
	optNumPtr(&o, "pidsLimit", r.PidsLimit)
	optNumPtr(&o, "cpuShares", r.CPUShares)
	optNumPtr(&o, "cpuQuota", r.CPUQuota)
	optNumPtr(&o, "cpuPeriod", r.CPUPeriod)
	o.optStr("cpus", r.CPUs)
	o.optStr("mems", r.Mems)
	optSlice(&o, "devices", r.Devices, func(b []byte, d *config.DeviceRule) []byte {
		o := object{b: b}
		o.boolean("allow", d.Allow)
		num(&o, "type", d.Type)
		num(&o, "major", d.Major)
		num(&o, "minor", d.Minor)
		o.str("access", d.Access)
		return o.end()
	})
	optNumPtr(&o, "kernelMemory", r.KernelMemory)
	optNumPtr(&o, "kernelMemoryTCP", r.KernelMemoryTCP)
	optNumPtr(&o, "memorySwappiness", r.MemorySwappiness)
	o.optBool("oomKillDisable", r.OOMKillDisable)
	o.optBoolPtr("memoryUseHierarchy", r.MemoryUseHierarchy)
	o.optBool("memoryCheckBeforeUpdate", r.MemoryCheckBeforeUpdate)
	optNumPtr(&o, "cpuRealtimeRuntime", r.CPURealtimeRuntime)
	optNumPtr(&o, "cpuRealtimePeriod", r.CPURealtimePeriod)
	optNumPtr(&o, "cpuBurst", r.CPUBurst)
	optNumPtr(&o, "cpuIdle", r.CPUIdle)
	optNumPtr(&o, "blkioWeight", r.BlkioWeight)
	optNumPtr(&o, "blkioLeafWeight", r.BlkioLeafWeight)
	optSlice(&o, "blkioWeightDevices", r.BlkioWeightDevices, func(b []byte, d *config.WeightDevice) []byte {
		o := object{b: b}
		num(&o, "major", d.Major)
		num(&o, "minor", d.Minor)
		optNumPtr(&o, "weight", d.Weight)
		optNumPtr(&o, "leafWeight", d.LeafWeight)
		return o.end()
	})
	optSlice(&o, "blkioThrottleReadBps", r.BlkioThrottleReadBps, throttle)
	optSlice(&o, "blkioThrottleWriteBps", r.BlkioThrottleWriteBps, throttle)
	optSlice(&o, "blkioThrottleReadIOPS", r.BlkioThrottleReadIOPS, throttle)
	optSlice(&o, "blkioThrottleWriteIOPS", r.BlkioThrottleWriteIOPS, throttle)
	optSlice(&o, "hugepageLimits", r.HugepageLimits, func(b []byte, h *config.HugepageLimit) []byte {
		o := object{b: b}
		o.str("pagesize", h.Pagesize)
		num(&o, "limit", h.Limit)
		return o.end()
	})
	optNumPtr(&o, "netClassID", r.NetClassID)
	optSlice(&o, "netPriorities", r.NetPriorities, func(b []byte, p *config.NetPriority) []byte {
		o := object{b: b}
		o.str("name", p.Name)
		num(&o, "priority", p.Priority)
		return o.end()
	})
	if len(r.Rdma) > 0 {
		o.key("rdma")
		devs := object{b: o.b}
		for _, dev := range sortedKeys(r.Rdma) {
			l := r.Rdma[dev]
			devs.key(dev)
			lim := object{b: devs.b}
			optNumPtr(&lim, "hcaHandles", l.HcaHandles)
			optNumPtr(&lim, "hcaObjects", l.HcaObjects)
			devs.b = lim.end()
		}
		o.b = devs.end()
	}
	o.optStrMap("unified", r.Unified)
	return o.end()
}
