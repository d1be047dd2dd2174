package spec

import (
	"reflect"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/lkc-containers/lkc/internal/config"
)

var hostMaps = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}

// withUserNS gives s a new user namespace mapping 0 to 100000.
func withUserNS(s *specs.Spec) {
	s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
	s.Linux.UIDMappings, s.Linux.GIDMappings = hostMaps, hostMaps
}

// idmapped is the last mount of s, converted.
func idmapped(t *testing.T, s *specs.Spec) config.Mount {
	t.Helper()
	c, err := Convert(s, "ctr", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return c.Mounts[len(c.Mounts)-1]
}

func TestIDMappedMountConverts(t *testing.T) {
	own := []specs.LinuxIDMapping{{ContainerID: 1000, HostID: 0, Size: 1}}
	cases := []struct {
		name   string
		userNS bool
		mount  specs.Mount
		want   config.MountIDMapping
	}{
		{"idmap takes the container's maps", true,
			specs.Mount{Destination: "/d", Source: "/", Options: []string{"rbind", "idmap"}},
			config.MountIDMapping{UIDMappings: []config.IDMap{{ContainerID: 0, HostID: 100000, Size: 65536}}, GIDMappings: []config.IDMap{{ContainerID: 0, HostID: 100000, Size: 65536}}}},
		{"ridmap is recursive", true,
			specs.Mount{Destination: "/d", Source: "/", Options: []string{"rbind", "ridmap"}},
			config.MountIDMapping{UIDMappings: []config.IDMap{{ContainerID: 0, HostID: 100000, Size: 65536}}, GIDMappings: []config.IDMap{{ContainerID: 0, HostID: 100000, Size: 65536}}, Recursive: true}},
		{"the last option wins", true,
			specs.Mount{Destination: "/d", Source: "/", Options: []string{"rbind", "ridmap", "idmap"}},
			config.MountIDMapping{UIDMappings: []config.IDMap{{ContainerID: 0, HostID: 100000, Size: 65536}}, GIDMappings: []config.IDMap{{ContainerID: 0, HostID: 100000, Size: 65536}}}},
		{"own maps need no user namespace", false,
			specs.Mount{Destination: "/d", Source: "/", Type: "bind", UIDMappings: own, GIDMappings: own},
			config.MountIDMapping{UIDMappings: []config.IDMap{{ContainerID: 1000, HostID: 0, Size: 1}}, GIDMappings: []config.IDMap{{ContainerID: 1000, HostID: 0, Size: 1}}}},
		{"own maps win over the container's", true,
			specs.Mount{Destination: "/d", Source: "/", Options: []string{"bind", "ridmap"}, UIDMappings: own, GIDMappings: own},
			config.MountIDMapping{UIDMappings: []config.IDMap{{ContainerID: 1000, HostID: 0, Size: 1}}, GIDMappings: []config.IDMap{{ContainerID: 1000, HostID: 0, Size: 1}}, Recursive: true}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := goodSpec(t)
			if c.userNS {
				withUserNS(s)
			}
			s.Mounts = append(s.Mounts, c.mount)
			m := idmapped(t, s)
			if m.IDMapping == nil || !reflect.DeepEqual(*m.IDMapping, c.want) {
				t.Errorf("idmapping %+v, want %+v", m.IDMapping, c.want)
			}
			if m.Data != "" {
				t.Errorf("data %q: idmap options reached the kernel", m.Data)
			}
		})
	}
}

func TestIDMappedMountJoinedUserNS(t *testing.T) {
	s := goodSpec(t)
	s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace, Path: "/proc/self/ns/user"})
	s.Mounts = append(s.Mounts, specs.Mount{Destination: "/d", Source: "/", Options: []string{"rbind", "idmap"}})
	if m := idmapped(t, s); m.IDMapping == nil || m.IDMapping.UserNS != "/proc/self/ns/user" || len(m.IDMapping.UIDMappings) != 0 {
		t.Errorf("idmapping %+v, want the joined namespace's", m.IDMapping)
	}
}

func TestPlainBindIsNotIDMapped(t *testing.T) {
	s := goodSpec(t)
	withUserNS(s)
	s.Mounts = append(s.Mounts, specs.Mount{Destination: "/d", Source: "/", Options: []string{"rbind"}})
	if m := idmapped(t, s); m.IDMapping != nil {
		t.Errorf("plain bind got idmapping %+v", m.IDMapping)
	}
}

func TestIDMappedMountRefused(t *testing.T) {
	maps := func(uids, gids []specs.LinuxIDMapping) specs.Mount {
		return specs.Mount{Destination: "/d", Source: "/", Type: "bind", UIDMappings: uids, GIDMappings: gids}
	}
	one := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1000, Size: 1}}
	cases := []struct {
		name  string
		mount specs.Mount
		want  string
	}{
		{"tmpfs", specs.Mount{Destination: "/d", Source: "tmpfs", Type: "tmpfs", Options: []string{"idmap"}},
			`mounts\[\d+\] /d: idmapped mounts .* binds only, not of type "tmpfs"`},
		{"tmpfs with maps", specs.Mount{Destination: "/d", Source: "tmpfs", Type: "tmpfs", UIDMappings: one, GIDMappings: one},
			`mounts\[\d+\] /d: idmapped mounts .* binds only`},
		{"idmap without a user namespace", specs.Mount{Destination: "/d", Source: "/", Options: []string{"rbind", "idmap"}},
			`mounts\[\d+\] /d: option "idmap" without uidMappings and gidMappings .* the container has none`},
		{"uid maps only", maps(one, nil), `mounts\[\d+\] /d: an idmapped mount needs both uidMappings and gidMappings`},
		{"gid maps only", maps(nil, one), `mounts\[\d+\] /d: an idmapped mount needs both uidMappings and gidMappings`},
		{"size 0", maps([]specs.LinuxIDMapping{{ContainerID: 0, HostID: 1000, Size: 0}}, one), `mounts\[\d+\] /d: uidMappings\[0\]: size is 0`},
		{"overflow", maps(one, []specs.LinuxIDMapping{{ContainerID: 4294967000, HostID: 0, Size: 1000}}), `mounts\[\d+\] /d: gidMappings\[0\]: range overflows 32-bit ids`},
		{"overlap", maps([]specs.LinuxIDMapping{{ContainerID: 0, HostID: 1000, Size: 10}, {ContainerID: 5, HostID: 5000, Size: 1}}, one),
			`mounts\[\d+\] /d: uidMappings\[1\] overlaps uidMappings\[0\]`},
		{"too many lines", maps(manyMaps(maxIDMapLines+1), one), `mounts\[\d+\] /d: uidMappings: 341 mappings, the kernel takes at most 340`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := goodSpec(t)
			s.Mounts = append(s.Mounts, c.mount)
			_, err := Convert(s, "ctr", t.TempDir())
			if err == nil || !matches(c.want, err.Error()) {
				t.Errorf("error %v, want %q", err, c.want)
			}
		})
	}
}

func manyMaps(n int) []specs.LinuxIDMapping {
	out := make([]specs.LinuxIDMapping, n)
	for i := range out {
		out[i] = specs.LinuxIDMapping{ContainerID: uint32(i), HostID: uint32(100000 + i), Size: 1}
	}
	return out
}

func TestFeaturesIDMap(t *testing.T) {
	f := Features()
	if e := f.Linux.MountExtensions.IDMap.Enabled; e == nil || !*e {
		t.Error("features: mountExtensions.idmap.enabled is not true")
	}
}
