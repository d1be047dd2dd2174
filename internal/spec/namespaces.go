package spec

import (
	"math"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/lkc-containers/lkc/internal/config"
)

var namespaceTypes = map[specs.LinuxNamespaceType]string{
	specs.PIDNamespace:     "pid",
	specs.MountNamespace:   "mount",
	specs.NetworkNamespace: "network",
	specs.UTSNamespace:     "uts",
	specs.IPCNamespace:     "ipc",
	specs.UserNamespace:    "user",
	specs.CgroupNamespace:  "cgroup",
	specs.TimeNamespace:    "time",
}

// NamespaceNames lists the namespace types lkc supports, for `features`.
func NamespaceNames() []string {
	return []string{"cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"}
}

func convertNamespaces(s *specs.Spec, c *config.Config) error {
	for _, ns := range s.Linux.Namespaces {
		typ, ok := namespaceTypes[ns.Type]
		if !ok {
			return invalid("linux.namespaces: unknown namespace type %q", ns.Type)
		}
		if c.HasNamespace(typ) {
			return invalid("linux.namespaces: %s namespace given twice", typ)
		}
		c.Namespaces = append(c.Namespaces, config.Namespace{Type: typ, Path: ns.Path})
	}
	if err := convertIDMaps(s.Linux, c); err != nil {
		return err
	}
	// A joined uts namespace gets the names too, as runc sets them.
	if c.Hostname != "" && !c.HasNamespace("uts") {
		return invalid("hostname %q needs a uts namespace", c.Hostname)
	}
	if c.Domainname != "" && !c.HasNamespace("uts") {
		return invalid("domainname %q needs a uts namespace", c.Domainname)
	}
	if err := checkMountNamespace(s, c); err != nil {
		return err
	}
	return convertTimeOffsets(s.Linux, c)
}

// checkMountNamespace refuses what cannot be done with the mount namespace
// the config gives. Without one, the container shares the caller's: its
// mounts are made beneath the rootfs there, as runc does, but masking paths
// would hide them from the caller too (runc refuses it as well). A joined
// one is the container's filesystem as it stands: lkc changes nothing in a
// namespace other processes live in (a pivot_root there would move their
// root too), so every field that asks for a mount is refused.
func checkMountNamespace(s *specs.Spec, c *config.Config) error {
	l := s.Linux
	switch {
	case !c.HasNamespace("mount"):
		if len(l.MaskedPaths) > 0 || len(l.ReadonlyPaths) > 0 {
			return invalid("linux.maskedPaths/readonlyPaths need a mount namespace of the container's own (add one to linux.namespaces, or empty them)")
		}
	case !c.NewNamespace("mount"):
		var asks []string
		for _, f := range []struct {
			name string
			set  bool
		}{
			{"mounts", len(s.Mounts) > 0}, {"linux.maskedPaths", len(l.MaskedPaths) > 0},
			{"linux.readonlyPaths", len(l.ReadonlyPaths) > 0}, {"linux.devices", len(l.Devices) > 0},
			{"root.readonly", s.Root.Readonly}, {"linux.rootfsPropagation", l.RootfsPropagation != ""},
		} {
			if f.set {
				asks = append(asks, f.name)
			}
		}
		if len(asks) > 0 {
			return invalid("linux.namespaces: the mount namespace is joined, and lkc mounts nothing in it: remove %s", strings.Join(asks, ", "))
		}
	}
	return nil
}

func convertIDMaps(l *specs.Linux, c *config.Config) error {
	newUser := c.NewNamespace("user")
	hasMaps := len(l.UIDMappings) > 0 || len(l.GIDMappings) > 0
	switch {
	case newUser && (len(l.UIDMappings) == 0 || len(l.GIDMappings) == 0):
		return invalid("a new user namespace needs both linux.uidMappings and linux.gidMappings")
	case !newUser && hasMaps:
		return invalid("linux.uidMappings/gidMappings given without a new user namespace")
	}
	var err error
	if c.UIDMappings, err = convertIDMap("", "linux.uidMappings", l.UIDMappings); err != nil {
		return err
	}
	if c.GIDMappings, err = convertIDMap("", "linux.gidMappings", l.GIDMappings); err != nil {
		return err
	}
	if newUser {
		return checkMapped(c)
	}
	return nil
}

// checkMapped refuses a process user or group that a new user namespace
// does not map: setresuid, setresgid and setgroups would fail, after start.
func checkMapped(c *config.Config) error {
	p := &c.Process
	if !mapped(c.UIDMappings, p.UID) {
		return invalid("process.user.uid %d is not mapped by linux.uidMappings", p.UID)
	}
	if !mapped(c.GIDMappings, p.GID) {
		return invalid("process.user.gid %d is not mapped by linux.gidMappings", p.GID)
	}
	for _, g := range p.AdditionalGids {
		if !mapped(c.GIDMappings, g) {
			return invalid("process.user.additionalGids: %d is not mapped by linux.gidMappings", g)
		}
	}
	return nil
}

func mapped(maps []config.IDMap, id uint32) bool {
	for _, m := range maps {
		if id >= m.ContainerID && uint64(id) < uint64(m.ContainerID)+uint64(m.Size) {
			return true
		}
	}
	return false
}

// maxIDMapLines is the most lines the kernel takes in a uid_map or
// gid_map (since Linux 4.15).
const maxIDMapLines = 340

// convertIDMap checks the id mappings of field (of the object where names,
// "" for linux) as the kernel will when they are written to a user
// namespace's map, so that a refused map fails before anything is made.
func convertIDMap(where, field string, maps []specs.LinuxIDMapping) ([]config.IDMap, error) {
	if len(maps) > maxIDMapLines {
		return nil, invalid("%s%s: %d mappings, the kernel takes at most %d", where, field, len(maps), maxIDMapLines)
	}
	out := make([]config.IDMap, 0, len(maps))
	for i, m := range maps {
		if m.Size == 0 {
			return nil, invalid("%s%s[%d]: size is 0", where, field, i)
		}
		if uint64(m.ContainerID)+uint64(m.Size) > math.MaxUint32 || uint64(m.HostID)+uint64(m.Size) > math.MaxUint32 {
			return nil, invalid("%s%s[%d]: range overflows 32-bit ids", where, field, i)
		}
		for j, o := range maps[:i] {
			if overlaps(m.ContainerID, o.ContainerID, m.Size, o.Size) || overlaps(m.HostID, o.HostID, m.Size, o.Size) {
				return nil, invalid("%s%s[%d] overlaps %s[%d]", where, field, i, field, j)
			}
		}
		out = append(out, config.IDMap{ContainerID: m.ContainerID, HostID: m.HostID, Size: m.Size})
	}
	return out, nil
}

func overlaps(a, b, asize, bsize uint32) bool {
	return uint64(a) < uint64(b)+uint64(bsize) && uint64(b) < uint64(a)+uint64(asize)
}

func convertTimeOffsets(l *specs.Linux, c *config.Config) error {
	if len(l.TimeOffsets) == 0 {
		return nil
	}
	if !c.NewNamespace("time") {
		return invalid("linux.timeOffsets need a new time namespace")
	}
	for clock, off := range l.TimeOffsets {
		if clock != "monotonic" && clock != "boottime" {
			return invalid("linux.timeOffsets: unknown clock %q (monotonic or boottime)", clock)
		}
		if off.Nanosecs >= 1e9 {
			return invalid("linux.timeOffsets.%s.nanosecs %d is not below one second", clock, off.Nanosecs)
		}
		c.TimeOffsets = append(c.TimeOffsets, config.TimeOffset{Clock: clock, Secs: off.Secs, Nanos: off.Nanosecs})
	}
	return nil
}
