// Package config holds the container description lkc works with after the OCI
// config.json has been validated and converted at the edge (internal/spec).
// It is plain data that the runtime records in the state file as JSON and
// sends the container's init over the init handshake in a binary form
// (pack_gen.go, generated from these types), so every field must survive a
// round trip through both.
package config

import (
	"fmt"
	"strings"
)

// Config is everything needed to build and run one container.
// PackFieldsConfig (pack_gen.go) lists its fields for the init handshake.
//
//go:generate go run ../../cmd/lkc-codegen -codec pack -out pack_gen.go Config
type Config struct {
	OCIVersion  string            `json:"ociVersion"`
	ID          string            `json:"id"`
	Bundle      string            `json:"bundle"`
	Rootfs      string            `json:"rootfs"`
	Readonly    bool              `json:"readonly,omitempty"`
	Hostname    string            `json:"hostname,omitempty"`
	Domainname  string            `json:"domainname,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`

	Namespaces  []Namespace  `json:"namespaces,omitempty"`
	UIDMappings []IDMap      `json:"uidMappings,omitempty"`
	GIDMappings []IDMap      `json:"gidMappings,omitempty"`
	TimeOffsets []TimeOffset `json:"timeOffsets,omitempty"`

	// RootPropagation is the mount flag (MS_SHARED, MS_SLAVE, MS_PRIVATE,
	// MS_UNBINDABLE, possibly with MS_REC) applied to / inside the container;
	// zero means MS_SLAVE|MS_REC as runc does.
	RootPropagation uintptr           `json:"rootPropagation,omitempty"`
	Mounts          []Mount           `json:"mounts,omitempty"`
	Devices         []Device          `json:"devices,omitempty"`
	MaskedPaths     []string          `json:"maskedPaths,omitempty"`
	ReadonlyPaths   []string          `json:"readonlyPaths,omitempty"`
	Sysctl          map[string]string `json:"sysctl,omitempty"`
	Personality     *uint32           `json:"personality,omitempty"`
	NoPivot         bool              `json:"noPivot,omitempty"`
	// MountLabel is the SELinux context of the container's filesystems
	// (the context= option of its mounts); empty means none.
	MountLabel string `json:"mountLabel,omitempty"`

	// Seccomp is the system call filter of every process of the container
	// (init and exec'd ones); nil means none.
	Seccomp *Seccomp `json:"seccomp,omitempty"`

	Process Process `json:"process"`
	Cgroup  Cgroup  `json:"cgroup"`
	Hooks   Hooks   `json:"hooks"`
}

// Hooks are the OCI hooks by the point of the lifecycle they run at; see
// internal/hooks for who runs each and when.
type Hooks struct {
	Prestart        []Hook `json:"prestart,omitempty"` // deprecated by the spec, runs as CreateRuntime
	CreateRuntime   []Hook `json:"createRuntime,omitempty"`
	CreateContainer []Hook `json:"createContainer,omitempty"`
	StartContainer  []Hook `json:"startContainer,omitempty"`
	Poststart       []Hook `json:"poststart,omitempty"`
	Poststop        []Hook `json:"poststop,omitempty"`
}

// Hook is one program run at a point of the lifecycle with the container's
// OCI state on its stdin.
type Hook struct {
	Path string   `json:"path"` // absolute
	Args []string `json:"args,omitempty"`
	Env  []string `json:"env,omitempty"` // exactly the hook's environment; nil is empty
	// Timeout in seconds after which the hook is killed; zero means none.
	Timeout int `json:"timeout,omitempty"`
}

// Namespace is one namespace of the container: created when Path is empty,
// joined when it names a /proc/<pid>/ns/<type> file or a bind mount of one.
type Namespace struct {
	Type string `json:"type"` // pid, mount, network, uts, ipc, user, cgroup, time
	Path string `json:"path,omitempty"`
}

// IDMap maps a range of ids inside a user namespace to ids outside it.
type IDMap struct {
	ContainerID uint32 `json:"containerID"`
	HostID      uint32 `json:"hostID"`
	Size        uint32 `json:"size"`
}

// HostID is the host id that maps give id of the namespace, if any.
func HostID(maps []IDMap, id uint32) (uint32, bool) {
	for _, m := range maps {
		if id >= m.ContainerID && id-m.ContainerID < m.Size {
			return m.HostID + id - m.ContainerID, true
		}
	}
	return 0, false
}

// IDMapLines is maps as a user namespace's uid_map or gid_map takes them.
func IDMapLines(maps []IDMap) string {
	var b strings.Builder
	for _, m := range maps {
		fmt.Fprintf(&b, "%d %d %d\n", m.ContainerID, m.HostID, m.Size)
	}
	return b.String()
}

// TimeOffset shifts one clock (monotonic or boottime) in a time namespace.
type TimeOffset struct {
	Clock string `json:"clock"`
	Secs  int64  `json:"secs"`
	Nanos uint32 `json:"nanos"`
}

// Mount is one entry of config.json's mounts, with its options already split
// into kernel flags and filesystem data.
type Mount struct {
	Source      string  `json:"source"`
	Destination string  `json:"destination"`
	Type        string  `json:"type"`
	Flags       uintptr `json:"flags,omitempty"`
	// Propagation flags (MS_SHARED etc.) are applied by a separate mount call.
	Propagation []uintptr `json:"propagation,omitempty"`
	Data        string    `json:"data,omitempty"`
	// CopyUp (a tmpfs only) fills the new tmpfs with the contents of the
	// directory it covers: runc's "tmpcopyup" option.
	CopyUp bool `json:"copyUp,omitempty"`
	// RecAttrSet and RecAttrClr are MOUNT_ATTR_* attributes set and cleared
	// on the mount and every mount beneath it (runc's "rro" and the like).
	RecAttrSet uint64 `json:"recAttrSet,omitempty"`
	RecAttrClr uint64 `json:"recAttrClr,omitempty"`
	// IDMapping, on a bind, makes it an idmapped mount: the files of its
	// source show with their owners mapped; nil is a plain bind.
	IDMapping *MountIDMapping `json:"idMapping,omitempty"`
}

// MountIDMapping is how an idmapped bind maps the owners of its files
// (the runtime spec's uidMappings and gidMappings of a mount, runc's idmap
// and ridmap options). Each line maps the ids ContainerID.. of the source's
// file system to HostID.., as a user namespace's maps do; the container's
// own user namespace then maps those as it maps any id.
type MountIDMapping struct {
	UIDMappings []IDMap `json:"uidMappings,omitempty"`
	GIDMappings []IDMap `json:"gidMappings,omitempty"`
	// UserNS, instead of the mappings, names the user namespace (a path)
	// whose maps the mount takes: the one the container joins, when the
	// mount says idmap without mappings of its own.
	UserNS string `json:"userNS,omitempty"`
	// Recursive maps every mount of an rbind, not only its top (ridmap).
	Recursive bool `json:"recursive,omitempty"`
}

// Device is a device node created inside the container.
type Device struct {
	Path     string `json:"path"`
	Type     rune   `json:"type"` // 'c', 'b', 'u' or 'p'
	Major    int64  `json:"major"`
	Minor    int64  `json:"minor"`
	FileMode uint32 `json:"fileMode"`
	UID      uint32 `json:"uid"`
	GID      uint32 `json:"gid"`
}

// Process is what init executes once the container is started.
type Process struct {
	Terminal        bool          `json:"terminal,omitempty"`
	ConsoleHeight   uint16        `json:"consoleHeight,omitempty"`
	ConsoleWidth    uint16        `json:"consoleWidth,omitempty"`
	Args            []string      `json:"args"`
	Env             []string      `json:"env,omitempty"`
	Cwd             string        `json:"cwd"`
	UID             uint32        `json:"uid"`
	GID             uint32        `json:"gid"`
	AdditionalGids  []uint32      `json:"additionalGids,omitempty"`
	Umask           *uint32       `json:"umask,omitempty"`
	Rlimits         []Rlimit      `json:"rlimits,omitempty"`
	NoNewPrivileges bool          `json:"noNewPrivileges,omitempty"`
	OOMScoreAdj     *int          `json:"oomScoreAdj,omitempty"`
	Capabilities    *Capabilities `json:"capabilities,omitempty"`
	// ApparmorProfile and SelinuxLabel confine the process from its execve
	// on (internal/lsm); empty means unconfined by lkc.
	ApparmorProfile string `json:"apparmorProfile,omitempty"`
	SelinuxLabel    string `json:"selinuxLabel,omitempty"`
	// Scheduler and IOPriority are set on the process before it execs
	// (plan.c); nil leaves what it inherits.
	Scheduler  *Scheduler  `json:"scheduler,omitempty"`
	IOPriority *IOPriority `json:"ioPriority,omitempty"`
	// ExecCPUAffinity places an exec'd process's CPUs; nil leaves them
	// to the kernel.
	ExecCPUAffinity *CPUAffinity `json:"execCPUAffinity,omitempty"`
}

// Rlimit is one resource limit, already resolved to its RLIMIT_* number.
type Rlimit struct {
	Name string `json:"name"`
	Type int    `json:"type"`
	Soft uint64 `json:"soft"`
	Hard uint64 `json:"hard"`
}

// Capabilities holds the five capability sets as capability numbers. A nil
// Capabilities leaves the process with what it inherits (full root).
type Capabilities struct {
	Bounding    []int `json:"bounding,omitempty"`
	Effective   []int `json:"effective,omitempty"`
	Inheritable []int `json:"inheritable,omitempty"`
	Permitted   []int `json:"permitted,omitempty"`
	Ambient     []int `json:"ambient,omitempty"`
}

// CapMask returns a set of capability numbers as a bit mask, as capset(2)
// and /proc/<pid>/status have them.
func CapMask(caps []int) uint64 {
	var m uint64
	for _, c := range caps {
		m |= 1 << uint(c)
	}
	return m
}

// DefaultCgroupParent holds, beneath the caller's own cgroup, the cgroups
// of containers whose config names none ("lkc/<id>"). Delete keeps it for
// the next container, as runc keeps every parent: making and removing it
// with each container would cost a run 16 cgroup mkdir and rmdir calls on
// v1 (0.25 ms).
const DefaultCgroupParent = "lkc"

// Cgroup says where the container's cgroup is and what limits it carries.
type Cgroup struct {
	// Path is absolute ("/kubepods/pod1/c1") from the root of each cgroup
	// hierarchy, or relative ("lkc/<id>") to the cgroup of the lkc process
	// that creates the container, as in runc.
	Path      string    `json:"path"`
	Resources Resources `json:"resources"`
}

// Resources are the cgroup limits lkc applies. Nil pointers mean "leave the
// kernel default".
type Resources struct {
	MemoryLimit       *int64       `json:"memoryLimit,omitempty"`
	MemoryReservation *int64       `json:"memoryReservation,omitempty"`
	MemorySwap        *int64       `json:"memorySwap,omitempty"`
	PidsLimit         *int64       `json:"pidsLimit,omitempty"`
	CPUShares         *uint64      `json:"cpuShares,omitempty"`
	CPUQuota          *int64       `json:"cpuQuota,omitempty"`
	CPUPeriod         *uint64      `json:"cpuPeriod,omitempty"`
	CPUs              string       `json:"cpus,omitempty"`
	Mems              string       `json:"mems,omitempty"`
	Devices           []DeviceRule `json:"devices,omitempty"`

	// Memory beyond the limits above. KernelMemory and KernelMemoryTCP
	// are v1 only (kmem accounting); the other v1-only ones are ignored,
	// with a warning, on v2, as runc does. MemoryCheckBeforeUpdate makes
	// update refuse a limit below current usage.
	KernelMemory            *int64  `json:"kernelMemory,omitempty"`
	KernelMemoryTCP         *int64  `json:"kernelMemoryTCP,omitempty"`
	MemorySwappiness        *uint64 `json:"memorySwappiness,omitempty"`
	OOMKillDisable          bool    `json:"oomKillDisable,omitempty"`
	MemoryUseHierarchy      *bool   `json:"memoryUseHierarchy,omitempty"`
	MemoryCheckBeforeUpdate bool    `json:"memoryCheckBeforeUpdate,omitempty"`

	// CPU beyond shares and quota: realtime bandwidth (v1 only), the CFS
	// burst allowance in us, and SCHED_IDLE for the group (0 or 1).
	CPURealtimeRuntime *int64  `json:"cpuRealtimeRuntime,omitempty"`
	CPURealtimePeriod  *uint64 `json:"cpuRealtimePeriod,omitempty"`
	CPUBurst           *uint64 `json:"cpuBurst,omitempty"`
	CPUIdle            *int64  `json:"cpuIdle,omitempty"`

	// Block I/O: weights in the blkio range [10, 1000] (v2 converts them),
	// and per-device throttles.
	BlkioWeight            *uint16          `json:"blkioWeight,omitempty"`
	BlkioLeafWeight        *uint16          `json:"blkioLeafWeight,omitempty"`
	BlkioWeightDevices     []WeightDevice   `json:"blkioWeightDevices,omitempty"`
	BlkioThrottleReadBps   []ThrottleDevice `json:"blkioThrottleReadBps,omitempty"`
	BlkioThrottleWriteBps  []ThrottleDevice `json:"blkioThrottleWriteBps,omitempty"`
	BlkioThrottleReadIOPS  []ThrottleDevice `json:"blkioThrottleReadIOPS,omitempty"`
	BlkioThrottleWriteIOPS []ThrottleDevice `json:"blkioThrottleWriteIOPS,omitempty"`

	HugepageLimits []HugepageLimit `json:"hugepageLimits,omitempty"`
	// NetClassID and NetPriorities are v1 only (net_cls, net_prio).
	NetClassID    *uint32              `json:"netClassID,omitempty"`
	NetPriorities []NetPriority        `json:"netPriorities,omitempty"`
	Rdma          map[string]RdmaLimit `json:"rdma,omitempty"`
	// Unified is written verbatim as v2 files, after everything else; v1
	// refuses it.
	Unified map[string]string `json:"unified,omitempty"`
}

// DeviceRule allows or denies access to a class of devices.
type DeviceRule struct {
	Allow  bool   `json:"allow"`
	Type   rune   `json:"type"`  // 'a', 'c' or 'b'
	Major  int64  `json:"major"` // -1 is any
	Minor  int64  `json:"minor"` // -1 is any
	Access string `json:"access"`
}

// HasNamespace reports whether the config creates or joins a namespace of typ.
func (c *Config) HasNamespace(typ string) bool {
	for _, ns := range c.Namespaces {
		if ns.Type == typ {
			return true
		}
	}
	return false
}

// NewNamespace reports whether the config creates a fresh namespace of typ.
func (c *Config) NewNamespace(typ string) bool {
	for _, ns := range c.Namespaces {
		if ns.Type == typ && ns.Path == "" {
			return true
		}
	}
	return false
}

// WithMountLabel adds the SELinux context= option for label to the data
// of a mount; an empty label leaves data as it is.
func WithMountLabel(data, label string) string {
	if label == "" {
		return data
	}
	opt := `context="` + label + `"`
	if data == "" {
		return opt
	}
	return data + "," + opt
}
