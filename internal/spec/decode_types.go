package spec

import specs "github.com/opencontainers/runtime-spec/specs-go"

// The runtime-spec types (v1.2.1) as decode.go decodes them: one field per
// JSON key of the type, under the key of its json tag. decode_test.go
// fails when a field of specs.Spec is missing here.

func (d *decoder) spec(s *specs.Spec) {
	d.object(
		field{"ociVersion", func() { str(d, &s.Version) }},
		field{"process", func() { ptr(d, &s.Process, d.process) }},
		field{"root", func() {
			ptr(d, &s.Root, func(r *specs.Root) {
				d.object(
					field{"path", func() { str(d, &r.Path) }},
					field{"readonly", func() { boolean(d, &r.Readonly) }})
			})
		}},
		field{"hostname", func() { str(d, &s.Hostname) }},
		field{"domainname", func() { str(d, &s.Domainname) }},
		field{"mounts", func() { slice(d, &s.Mounts, d.mount) }},
		field{"hooks", func() { ptr(d, &s.Hooks, d.hooks) }},
		field{"annotations", func() { strMap(d, &s.Annotations) }},
		field{"linux", func() { ptr(d, &s.Linux, d.linux) }})
}

func (d *decoder) process(p *specs.Process) {
	d.object(
		field{"terminal", func() { boolean(d, &p.Terminal) }},
		field{"consoleSize", func() {
			ptr(d, &p.ConsoleSize, func(b *specs.Box) {
				d.object(
					field{"height", func() { num(d, &b.Height) }},
					field{"width", func() { num(d, &b.Width) }})
			})
		}},
		field{"user", func() { d.user(&p.User) }},
		field{"args", func() { strs(d, &p.Args) }},
		field{"commandLine", func() { str(d, &p.CommandLine) }},
		field{"env", func() { strs(d, &p.Env) }},
		field{"cwd", func() { str(d, &p.Cwd) }},
		field{"capabilities", func() { ptr(d, &p.Capabilities, d.capabilities) }},
		field{"rlimits", func() {
			slice(d, &p.Rlimits, func(l *specs.POSIXRlimit) {
				d.object(
					field{"type", func() { str(d, &l.Type) }},
					field{"hard", func() { num(d, &l.Hard) }},
					field{"soft", func() { num(d, &l.Soft) }})
			})
		}},
		field{"noNewPrivileges", func() { boolean(d, &p.NoNewPrivileges) }},
		field{"apparmorProfile", func() { str(d, &p.ApparmorProfile) }},
		field{"oomScoreAdj", func() { optNum(d, &p.OOMScoreAdj) }},
		field{"scheduler", func() { ptr(d, &p.Scheduler, d.scheduler) }},
		field{"selinuxLabel", func() { str(d, &p.SelinuxLabel) }},
		field{"ioPriority", func() {
			ptr(d, &p.IOPriority, func(io *specs.LinuxIOPriority) {
				d.object(
					field{"class", func() { str(d, &io.Class) }},
					field{"priority", func() { num(d, &io.Priority) }})
			})
		}},
		field{"execCPUAffinity", func() {
			ptr(d, &p.ExecCPUAffinity, func(a *specs.CPUAffinity) {
				d.object(
					field{"initial", func() { str(d, &a.Initial) }},
					field{"final", func() { str(d, &a.Final) }})
			})
		}})
}

func (d *decoder) user(u *specs.User) {
	d.object(
		field{"uid", func() { num(d, &u.UID) }},
		field{"gid", func() { num(d, &u.GID) }},
		field{"umask", func() { optNum(d, &u.Umask) }},
		field{"additionalGids", func() { nums(d, &u.AdditionalGids) }},
		field{"username", func() { str(d, &u.Username) }})
}

func (d *decoder) capabilities(c *specs.LinuxCapabilities) {
	d.object(
		field{"bounding", func() { strs(d, &c.Bounding) }},
		field{"effective", func() { strs(d, &c.Effective) }},
		field{"inheritable", func() { strs(d, &c.Inheritable) }},
		field{"permitted", func() { strs(d, &c.Permitted) }},
		field{"ambient", func() { strs(d, &c.Ambient) }})
}

func (d *decoder) scheduler(s *specs.Scheduler) {
	d.object(
		field{"policy", func() { str(d, &s.Policy) }},
		field{"nice", func() { num(d, &s.Nice) }},
		field{"priority", func() { num(d, &s.Priority) }},
		field{"flags", func() { strs(d, &s.Flags) }},
		field{"runtime", func() { num(d, &s.Runtime) }},
		field{"deadline", func() { num(d, &s.Deadline) }},
		field{"period", func() { num(d, &s.Period) }})
}

func (d *decoder) mount(m *specs.Mount) {
	d.object(
		field{"destination", func() { str(d, &m.Destination) }},
		field{"type", func() { str(d, &m.Type) }},
		field{"source", func() { str(d, &m.Source) }},
		field{"options", func() { strs(d, &m.Options) }},
		field{"uidMappings", func() { slice(d, &m.UIDMappings, d.idMapping) }},
		field{"gidMappings", func() { slice(d, &m.GIDMappings, d.idMapping) }})
}

func (d *decoder) idMapping(m *specs.LinuxIDMapping) {
	d.object(
		field{"containerID", func() { num(d, &m.ContainerID) }},
		field{"hostID", func() { num(d, &m.HostID) }},
		field{"size", func() { num(d, &m.Size) }})
}

func (d *decoder) hooks(h *specs.Hooks) {
	hook := func(k *specs.Hook) {
		d.object(
			field{"path", func() { str(d, &k.Path) }},
			field{"args", func() { strs(d, &k.Args) }},
			field{"env", func() { strs(d, &k.Env) }},
			field{"timeout", func() { optNum(d, &k.Timeout) }})
	}
	d.object(
		field{"prestart", func() { slice(d, &h.Prestart, hook) }},
		field{"createRuntime", func() { slice(d, &h.CreateRuntime, hook) }},
		field{"createContainer", func() { slice(d, &h.CreateContainer, hook) }},
		field{"startContainer", func() { slice(d, &h.StartContainer, hook) }},
		field{"poststart", func() { slice(d, &h.Poststart, hook) }},
		field{"poststop", func() { slice(d, &h.Poststop, hook) }})
}

func (d *decoder) linux(l *specs.Linux) {
	d.object(
		field{"uidMappings", func() { slice(d, &l.UIDMappings, d.idMapping) }},
		field{"gidMappings", func() { slice(d, &l.GIDMappings, d.idMapping) }},
		field{"sysctl", func() { strMap(d, &l.Sysctl) }},
		field{"resources", func() { ptr(d, &l.Resources, d.resources) }},
		field{"cgroupsPath", func() { str(d, &l.CgroupsPath) }},
		field{"namespaces", func() {
			slice(d, &l.Namespaces, func(n *specs.LinuxNamespace) {
				d.object(
					field{"type", func() { str(d, &n.Type) }},
					field{"path", func() { str(d, &n.Path) }})
			})
		}},
		field{"devices", func() { slice(d, &l.Devices, d.device) }},
		field{"seccomp", func() { ptr(d, &l.Seccomp, d.seccomp) }},
		field{"rootfsPropagation", func() { str(d, &l.RootfsPropagation) }},
		field{"maskedPaths", func() { strs(d, &l.MaskedPaths) }},
		field{"readonlyPaths", func() { strs(d, &l.ReadonlyPaths) }},
		field{"mountLabel", func() { str(d, &l.MountLabel) }},
		field{"intelRdt", func() { ptr(d, &l.IntelRdt, d.intelRdt) }},
		field{"personality", func() {
			ptr(d, &l.Personality, func(p *specs.LinuxPersonality) {
				d.object(
					field{"domain", func() { str(d, &p.Domain) }},
					field{"flags", func() { strs(d, &p.Flags) }})
			})
		}},
		field{"timeOffsets", func() {
			mapOf(d, &l.TimeOffsets, func(t *specs.LinuxTimeOffset) {
				d.object(
					field{"secs", func() { num(d, &t.Secs) }},
					field{"nanosecs", func() { num(d, &t.Nanosecs) }})
			})
		}})
}

func (d *decoder) device(v *specs.LinuxDevice) {
	d.object(
		field{"path", func() { str(d, &v.Path) }},
		field{"type", func() { str(d, &v.Type) }},
		field{"major", func() { num(d, &v.Major) }},
		field{"minor", func() { num(d, &v.Minor) }},
		field{"fileMode", func() { optNum(d, &v.FileMode) }},
		field{"uid", func() { optNum(d, &v.UID) }},
		field{"gid", func() { optNum(d, &v.GID) }})
}

func (d *decoder) intelRdt(r *specs.LinuxIntelRdt) {
	d.object(
		field{"closID", func() { str(d, &r.ClosID) }},
		field{"l3CacheSchema", func() { str(d, &r.L3CacheSchema) }},
		field{"memBwSchema", func() { str(d, &r.MemBwSchema) }},
		field{"enableCMT", func() { boolean(d, &r.EnableCMT) }},
		field{"enableMBM", func() { boolean(d, &r.EnableMBM) }})
}

func (d *decoder) seccomp(s *specs.LinuxSeccomp) {
	arg := func(a *specs.LinuxSeccompArg) {
		d.object(
			field{"index", func() { num(d, &a.Index) }},
			field{"value", func() { num(d, &a.Value) }},
			field{"valueTwo", func() { num(d, &a.ValueTwo) }},
			field{"op", func() { str(d, &a.Op) }})
	}
	d.object(
		field{"defaultAction", func() { str(d, &s.DefaultAction) }},
		field{"defaultErrnoRet", func() { optNum(d, &s.DefaultErrnoRet) }},
		field{"architectures", func() { strs(d, &s.Architectures) }},
		field{"flags", func() { strs(d, &s.Flags) }},
		field{"listenerPath", func() { str(d, &s.ListenerPath) }},
		field{"listenerMetadata", func() { str(d, &s.ListenerMetadata) }},
		field{"syscalls", func() {
			slice(d, &s.Syscalls, func(c *specs.LinuxSyscall) {
				d.object(
					field{"names", func() { strs(d, &c.Names) }},
					field{"action", func() { str(d, &c.Action) }},
					field{"errnoRet", func() { optNum(d, &c.ErrnoRet) }},
					field{"args", func() { slice(d, &c.Args, arg) }})
			})
		}})
}

func (d *decoder) resources(r *specs.LinuxResources) {
	d.object(
		field{"devices", func() {
			slice(d, &r.Devices, func(c *specs.LinuxDeviceCgroup) {
				d.object(
					field{"allow", func() { boolean(d, &c.Allow) }},
					field{"type", func() { str(d, &c.Type) }},
					field{"major", func() { optNum(d, &c.Major) }},
					field{"minor", func() { optNum(d, &c.Minor) }},
					field{"access", func() { str(d, &c.Access) }})
			})
		}},
		field{"memory", func() { ptr(d, &r.Memory, d.memory) }},
		field{"cpu", func() { ptr(d, &r.CPU, d.cpu) }},
		field{"pids", func() {
			ptr(d, &r.Pids, func(p *specs.LinuxPids) {
				d.object(field{"limit", func() { num(d, &p.Limit) }})
			})
		}},
		field{"blockIO", func() { ptr(d, &r.BlockIO, d.blockIO) }},
		field{"hugepageLimits", func() {
			slice(d, &r.HugepageLimits, func(h *specs.LinuxHugepageLimit) {
				d.object(
					field{"pageSize", func() { str(d, &h.Pagesize) }},
					field{"limit", func() { num(d, &h.Limit) }})
			})
		}},
		field{"network", func() { ptr(d, &r.Network, d.network) }},
		field{"rdma", func() {
			mapOf(d, &r.Rdma, func(l *specs.LinuxRdma) {
				d.object(
					field{"hcaHandles", func() { optNum(d, &l.HcaHandles) }},
					field{"hcaObjects", func() { optNum(d, &l.HcaObjects) }})
			})
		}},
		field{"unified", func() { strMap(d, &r.Unified) }})
}

func (d *decoder) memory(m *specs.LinuxMemory) {
	d.object(
		field{"limit", func() { optNum(d, &m.Limit) }},
		field{"reservation", func() { optNum(d, &m.Reservation) }},
		field{"swap", func() { optNum(d, &m.Swap) }},
		field{"kernel", func() { optNum(d, &m.Kernel) }},
		field{"kernelTCP", func() { optNum(d, &m.KernelTCP) }},
		field{"swappiness", func() { optNum(d, &m.Swappiness) }},
		field{"disableOOMKiller", func() { optBool(d, &m.DisableOOMKiller) }},
		field{"useHierarchy", func() { optBool(d, &m.UseHierarchy) }},
		field{"checkBeforeUpdate", func() { optBool(d, &m.CheckBeforeUpdate) }})
}

func (d *decoder) cpu(c *specs.LinuxCPU) {
	d.object(
		field{"shares", func() { optNum(d, &c.Shares) }},
		field{"quota", func() { optNum(d, &c.Quota) }},
		field{"burst", func() { optNum(d, &c.Burst) }},
		field{"period", func() { optNum(d, &c.Period) }},
		field{"realtimeRuntime", func() { optNum(d, &c.RealtimeRuntime) }},
		field{"realtimePeriod", func() { optNum(d, &c.RealtimePeriod) }},
		field{"cpus", func() { str(d, &c.Cpus) }},
		field{"mems", func() { str(d, &c.Mems) }},
		field{"idle", func() { optNum(d, &c.Idle) }})
}

func (d *decoder) blockIO(b *specs.LinuxBlockIO) {
	throttle := func(t *specs.LinuxThrottleDevice) {
		d.object(
			field{"major", func() { num(d, &t.Major) }},
			field{"minor", func() { num(d, &t.Minor) }},
			field{"rate", func() { num(d, &t.Rate) }})
	}
	d.object(
		field{"weight", func() { optNum(d, &b.Weight) }},
		field{"leafWeight", func() { optNum(d, &b.LeafWeight) }},
		field{"weightDevice", func() {
			slice(d, &b.WeightDevice, func(w *specs.LinuxWeightDevice) {
				d.object(
					field{"major", func() { num(d, &w.Major) }},
					field{"minor", func() { num(d, &w.Minor) }},
					field{"weight", func() { optNum(d, &w.Weight) }},
					field{"leafWeight", func() { optNum(d, &w.LeafWeight) }})
			})
		}},
		field{"throttleReadBpsDevice", func() { slice(d, &b.ThrottleReadBpsDevice, throttle) }},
		field{"throttleWriteBpsDevice", func() { slice(d, &b.ThrottleWriteBpsDevice, throttle) }},
		field{"throttleReadIOPSDevice", func() { slice(d, &b.ThrottleReadIOPSDevice, throttle) }},
		field{"throttleWriteIOPSDevice", func() { slice(d, &b.ThrottleWriteIOPSDevice, throttle) }})
}

func (d *decoder) network(n *specs.LinuxNetwork) {
	d.object(
		field{"classID", func() { optNum(d, &n.ClassID) }},
		field{"priorities", func() {
			slice(d, &n.Priorities, func(p *specs.LinuxInterfacePriority) {
				d.object(
					field{"name", func() { str(d, &p.Name) }},
					field{"priority", func() { num(d, &p.Priority) }})
			})
		}})
}
