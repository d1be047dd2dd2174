package spec

import (
	"errors"
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// goodSpec returns lkc's default spec with its rootfs at a fresh directory.
func goodSpec(t *testing.T) *specs.Spec {
	t.Helper()
	s := Default()
	s.Root.Path = t.TempDir()
	return s
}

func TestDefaultConverts(t *testing.T) {
	s := goodSpec(t)
	c, err := Convert(s, "ctr", "/bundle")
	if err != nil {
		t.Fatalf("Convert(Default()): %v", err)
	}
	if c.ID != "ctr" || c.Rootfs != s.Root.Path || !c.Readonly || c.Hostname != "lkc" {
		t.Errorf("config header: %+v", c)
	}
	if c.Cgroup.Path != "lkc/ctr" {
		t.Errorf("cgroup path %q, want lkc/ctr", c.Cgroup.Path)
	}
	for _, ns := range []string{"pid", "network", "ipc", "uts", "mount", "cgroup"} {
		if !c.NewNamespace(ns) {
			t.Errorf("default config lacks a new %s namespace", ns)
		}
	}
	if c.HasNamespace("user") {
		t.Error("default config has a user namespace")
	}
	p := c.Process
	if !p.NoNewPrivileges || p.Cwd != "/" || len(p.Rlimits) != 1 || p.Rlimits[0].Type != unix.RLIMIT_NOFILE {
		t.Errorf("process: %+v", p)
	}
	want := []int{unix.CAP_AUDIT_WRITE, unix.CAP_KILL, unix.CAP_NET_BIND_SERVICE}
	if !reflect.DeepEqual(p.Capabilities.Bounding, want) || !reflect.DeepEqual(p.Capabilities.Effective, want) {
		t.Errorf("capabilities %+v, want %v", p.Capabilities, want)
	}
	if len(c.Mounts) != len(s.Mounts) {
		t.Fatalf("%d mounts, want %d", len(c.Mounts), len(s.Mounts))
	}
	if m := c.Mounts[5]; m.Destination != "/sys" || m.Flags != unix.MS_NOSUID|unix.MS_NOEXEC|unix.MS_NODEV|unix.MS_RDONLY {
		t.Errorf("sysfs mount %+v", m)
	}
	devs := c.Cgroup.Resources.Devices
	if len(devs) == 0 || devs[0].Allow || devs[0].Type != 'a' || devs[0].Access != "rwm" {
		t.Fatalf("first device rule must deny all: %+v", devs)
	}
	if len(devs) != 1+len(defaultDevices) {
		t.Errorf("%d device rules, want deny-all plus %d defaults", len(devs), len(defaultDevices))
	}
	if len(c.MaskedPaths) == 0 || len(c.ReadonlyPaths) == 0 {
		t.Error("masked or read-only paths lost")
	}
}

func TestConvertRelativeRootfs(t *testing.T) {
	bundle := t.TempDir()
	s := Default()
	s.Root.Path = "."
	c, err := Convert(s, "ctr", bundle)
	if err != nil {
		t.Fatal(err)
	}
	if c.Rootfs != bundle {
		t.Errorf("rootfs %q, want %q", c.Rootfs, bundle)
	}
}

func fileMode(v os.FileMode) *os.FileMode { return &v }

// TestConvertRefuses checks that every refused config fails with ErrInvalid
// and an error naming the field at fault.
func TestConvertRefuses(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(*specs.Spec)
		want   string
	}{
		{"version 2", func(s *specs.Spec) { s.Version = "2.0.0" }, "ociVersion"},
		{"no root", func(s *specs.Spec) { s.Root = nil }, "root.path"},
		{"missing rootfs", func(s *specs.Spec) { s.Root.Path = "/nonexistent/lkc-rootfs" }, "root.path"},
		{"no linux", func(s *specs.Spec) { s.Linux = nil }, "linux section"},
		{"no process", func(s *specs.Spec) { s.Process = nil }, "process"},
		{"no args", func(s *specs.Spec) { s.Process.Args = nil }, "process.args"},
		{"relative cwd", func(s *specs.Spec) { s.Process.Cwd = "tmp" }, "process.cwd"},
		{"username", func(s *specs.Spec) { s.Process.User.Username = "root" }, "process.user.username"},
		{"unknown ns", func(s *specs.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: "bogus"})
		}, `linux.namespaces: unknown namespace type "bogus"`},
		{"duplicate ns", func(s *specs.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.PIDNamespace})
		}, "linux.namespaces: pid namespace given twice"},
		{"no mount ns", func(s *specs.Spec) { s.Linux.Namespaces = s.Linux.Namespaces[:4] }, "mount namespace"},
		{"hostname without uts", func(s *specs.Spec) { s.Linux.Namespaces = dropNS(s.Linux.Namespaces, specs.UTSNamespace) }, "hostname"},
		{"maps without userns", func(s *specs.Spec) {
			s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1000, Size: 1}}
			s.Linux.GIDMappings = s.Linux.UIDMappings
		}, "linux.uidMappings/gidMappings given without a new user namespace"},
		{"userns without maps", func(s *specs.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
		}, "linux.uidMappings and linux.gidMappings"},
		{"overlapping maps", func(s *specs.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
			s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1000, Size: 10}, {ContainerID: 5, HostID: 5000, Size: 10}}
			s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1000, Size: 10}}
		}, "linux.uidMappings[1] overlaps linux.uidMappings[0]"},
		{"overlapping host ids", func(s *specs.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
			s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1000, Size: 10}}
			s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1000, Size: 10}, {ContainerID: 100, HostID: 1009, Size: 1}}
		}, "linux.gidMappings[1] overlaps linux.gidMappings[0]"},
		{"zero-size map", func(s *specs.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
			s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1000, Size: 0}}
			s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1000, Size: 1}}
		}, "linux.uidMappings[0]: size is 0"},
		{"map overflow", func(s *specs.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
			s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 4294967295, Size: 2}}
			s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1000, Size: 1}}
		}, "linux.uidMappings[0]: range overflows"},
		{"rlimit soft>hard", func(s *specs.Spec) {
			s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 2048, Hard: 1024}}
		}, "process.rlimits: RLIMIT_NOFILE soft limit 2048 exceeds hard limit 1024"},
		{"rlimit unknown", func(s *specs.Spec) {
			s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_BOGUS"}}
		}, `process.rlimits: unknown rlimit type "RLIMIT_BOGUS"`},
		{"rlimit twice", func(s *specs.Spec) {
			s.Process.Rlimits = append(s.Process.Rlimits, s.Process.Rlimits[0])
		}, "process.rlimits: RLIMIT_NOFILE given twice"},
		{"env NUL", func(s *specs.Spec) { s.Process.Env = append(s.Process.Env, "A=b\x00c") }, `process.env[2] ("A") contains a NUL byte`},
		{"env without =", func(s *specs.Spec) { s.Process.Env = append(s.Process.Env, "JUSTNAME") }, `process.env[2] "JUSTNAME" has no '='`},
		{"env empty name", func(s *specs.Spec) { s.Process.Env = append(s.Process.Env, "=x") }, `process.env[2] "=x" has an empty name`},
		{"arg NUL", func(s *specs.Spec) { s.Process.Args = []string{"sh", "a\x00b"} }, "process.args[1] contains a NUL byte"},
		{"cwd NUL", func(s *specs.Spec) { s.Process.Cwd = "/a\x00b" }, "process.cwd contains a NUL byte"},
		{"too many groups", func(s *specs.Spec) { s.Process.User.AdditionalGids = make([]uint32, 65537) },
			"process.user.additionalGids has 65537 groups; Linux allows at most 65536"},
		{"sysctl not namespaced", func(s *specs.Spec) { s.Linux.Sysctl = map[string]string{"vm.swappiness": "1"} }, `linux.sysctl "vm.swappiness" is not namespaced`},
		{"sysctl net without netns", func(s *specs.Spec) {
			s.Linux.Namespaces = dropNS(s.Linux.Namespaces, specs.NetworkNamespace)
			s.Linux.Sysctl = map[string]string{"net.ipv4.ip_forward": "1"}
		}, `linux.sysctl "net.ipv4.ip_forward" needs a network namespace`},
		{"sysctl ipc without ipcns", func(s *specs.Spec) {
			s.Linux.Namespaces = dropNS(s.Linux.Namespaces, specs.IPCNamespace)
			s.Linux.Sysctl = map[string]string{"kernel.shmmax": "1"}
		}, `linux.sysctl "kernel.shmmax" needs a ipc namespace`},
		{"cgroupsPath ..", func(s *specs.Spec) { s.Linux.CgroupsPath = "/a/../../b" }, `linux.cgroupsPath "/a/../../b" contains '..'`},
		{"cgroupsPath systemd", func(s *specs.Spec) { s.Linux.CgroupsPath = "system.slice:lkc:ctr" }, "linux.cgroupsPath .* systemd"},
		{"cgroupsPath root", func(s *specs.Spec) { s.Linux.CgroupsPath = "/" }, "linux.cgroupsPath .* root cgroup"},
		{"relative mount dest", func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "tmp", Type: "tmpfs", Source: "tmpfs"})
		}, `mounts\[7\]: destination "tmp" is not an absolute path`},
		{"mount without type", func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/x", Source: "tmpfs"})
		}, `mounts\[7\] /x: type is missing`},
		{"missing bind source", func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/x", Type: "bind", Source: "/nonexistent/lkc-src"})
		}, `mounts\[7\] /x: bind source`},
		{"relative masked path", func(s *specs.Spec) { s.Linux.MaskedPaths = []string{"proc/kcore"} }, "linux.maskedPaths"},
		{"bad propagation", func(s *specs.Spec) { s.Linux.RootfsPropagation = "sideways" }, "linux.rootfsPropagation"},
		{"bad device type", func(s *specs.Spec) {
			s.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/x", Type: "z"}}
		}, `linux.devices\[0\] /dev/x: unknown type "z"`},
		{"relative device path", func(s *specs.Spec) {
			s.Linux.Devices = []specs.LinuxDevice{{Path: "dev/x", Type: "c"}}
		}, `linux.devices\[0\].path`},
		{"bad device rule access", func(s *specs.Spec) {
			s.Linux.Resources.Devices = []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwx"}}
		}, `linux.resources.devices\[0\]: access "rwx"`},
		{"negative memory", func(s *specs.Spec) {
			v := int64(-5)
			s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: &v}
		}, "linux.resources.memory.limit -5"},
		{"swap below memory", func(s *specs.Spec) {
			l, sw := int64(1<<30), int64(1<<20)
			s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: &l, Swap: &sw}
		}, "linux.resources.memory.swap"},
		{"tiny cpu quota", func(s *specs.Spec) {
			q := int64(10)
			s.Linux.Resources.CPU = &specs.LinuxCPU{Quota: &q}
		}, "linux.resources.cpu.quota 10"},
		{"blkio weight", func(s *specs.Spec) { s.Linux.Resources.BlockIO = &specs.LinuxBlockIO{Weight: u16(5)} }, "linux.resources.blockIO.weight 5 is outside 10-1000"},
		{"time offsets without timens", func(s *specs.Spec) {
			s.Linux.TimeOffsets = map[string]specs.LinuxTimeOffset{"monotonic": {Secs: 1}}
		}, "linux.timeOffsets"},
		{"personality flags", func(s *specs.Spec) {
			s.Linux.Personality = &specs.LinuxPersonality{Domain: specs.PerLinux, Flags: []specs.LinuxPersonalityFlag{"x"}}
		}, "linux.personality.flags"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := goodSpec(t)
			c.mutate(s)
			_, err := Convert(s, "ctr", "/bundle")
			if err == nil {
				t.Fatalf("Convert accepted it, want an error about %s", c.want)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error %q is not ErrInvalid", err)
			}
			if !matches(c.want, err.Error()) {
				t.Errorf("error %q does not name %q", err, c.want)
			}
		})
	}
}

func matches(want, got string) bool {
	if strings.Contains(got, want) {
		return true
	}
	re, err := regexp.Compile(want)
	return err == nil && re.MatchString(got)
}

func dropNS(nss []specs.LinuxNamespace, typ specs.LinuxNamespaceType) []specs.LinuxNamespace {
	var out []specs.LinuxNamespace
	for _, ns := range nss {
		if ns.Type != typ {
			out = append(out, ns)
		}
	}
	return out
}

func TestConvertAccepts(t *testing.T) {
	s := goodSpec(t)
	s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace}, specs.LinuxNamespace{Type: specs.TimeNamespace})
	s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 1}, {ContainerID: 1, HostID: 200000, Size: 10}}
	s.Linux.Sysctl = map[string]string{"net.ipv4.ip_forward": "1", "kernel.shmmax": "1", "fs.mqueue.msg_max": "10"}
	s.Linux.CgroupsPath = "/machine/ctr"
	s.Linux.TimeOffsets = map[string]specs.LinuxTimeOffset{"monotonic": {Secs: 5, Nanosecs: 7}}
	s.Process.Capabilities.Ambient = []string{"net_admin"}
	s.Mounts = append(s.Mounts, specs.Mount{Destination: "/x/../y/", Type: "bind", Source: ".", Options: []string{"rbind", "ro"}})
	bundle := t.TempDir()
	c, err := Convert(s, "ctr", bundle)
	if err != nil {
		t.Fatal(err)
	}
	if c.Cgroup.Path != "/machine/ctr" {
		t.Errorf("cgroup path %q, want /machine/ctr (from the hierarchy root)", c.Cgroup.Path)
	}
	if len(c.GIDMappings) != 2 || c.UIDMappings[0].Size != 65536 {
		t.Errorf("maps: %+v %+v", c.UIDMappings, c.GIDMappings)
	}
	if !reflect.DeepEqual(c.Process.Capabilities.Ambient, []int{unix.CAP_NET_ADMIN}) {
		t.Errorf("ambient %v", c.Process.Capabilities.Ambient)
	}
	m := c.Mounts[len(c.Mounts)-1]
	if m.Destination != "/y" || m.Type != "bind" || m.Source != bundle || m.Flags != unix.MS_BIND|unix.MS_REC|unix.MS_RDONLY {
		t.Errorf("bind mount %+v", m)
	}
	if len(c.TimeOffsets) != 1 || c.TimeOffsets[0].Secs != 5 {
		t.Errorf("time offsets %+v", c.TimeOffsets)
	}
}

// TestCgroupPath: an absolute linux.cgroupsPath stays absolute (placed from
// the hierarchy root), a relative one stays relative (beneath lkc's own
// cgroup), and none gives lkc/<id>.
func TestCgroupPath(t *testing.T) {
	cases := []struct{ in, want string }{
		{"", "lkc/ctr"},
		{"/a/b", "/a/b"},
		{"a/b", "a/b"},
		{"/a//b/", "/a/b"},
		{"/a/./b", "/a/b"},
		{"./a//b/", "a/b"},
		{"/kubepods/pod1/ctr", "/kubepods/pod1/ctr"},
	}
	for _, c := range cases {
		got, err := cgroupPath(c.in, "ctr")
		if err != nil || got != c.want {
			t.Errorf("cgroupPath(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{"..", "a/..", "../a", "/a/../b", "slice:prefix:name", "/", "."} {
		if got, err := cgroupPath(bad, "ctr"); err == nil {
			t.Errorf("cgroupPath(%q) = %q, want an error", bad, got)
		}
	}
}

func TestDeviceRules(t *testing.T) {
	s := goodSpec(t)
	maj, min := int64(8), int64(0)
	s.Linux.Resources.Devices = append(s.Linux.Resources.Devices, specs.LinuxDeviceCgroup{Allow: true, Type: "b", Major: &maj, Minor: &min, Access: "r"})
	s.Linux.Devices = []specs.LinuxDevice{
		{Path: "/dev/fuse", Type: "c", Major: 10, Minor: 229, FileMode: fileMode(0o666 | os.ModeCharDevice)},
		{Path: "/dev/fifo", Type: "p"},
	}
	c, err := Convert(s, "ctr", "/bundle")
	if err != nil {
		t.Fatal(err)
	}
	devs := c.Cgroup.Resources.Devices
	if r := devs[1]; !r.Allow || r.Type != 'b' || r.Major != 8 || r.Minor != 0 || r.Access != "r" {
		t.Errorf("config rule %+v", r)
	}
	last := devs[len(devs)-1]
	if !last.Allow || last.Type != 'c' || last.Major != 10 || last.Minor != 229 || last.Access != "rwm" {
		t.Errorf("linux.devices must be allowed after the defaults; last rule %+v", last)
	}
	if len(devs) != 2+len(defaultDevices)+1 {
		t.Errorf("%d rules: a fifo needs none", len(devs))
	}
	if c.Devices[0].FileMode != 0o666 {
		t.Errorf("file mode %o, want the permission bits 0666", c.Devices[0].FileMode)
	}
}

func TestUnknownCapabilitiesIgnored(t *testing.T) {
	s := Default()
	s.Process.Capabilities.Bounding = append(s.Process.Capabilities.Bounding, "CAP_FROM_THE_FUTURE", "cap_kill")
	s.Process.Capabilities.Effective = append(s.Process.Capabilities.Effective, "CAP_FROM_THE_FUTURE", "CAP_OTHER")
	s.Root.Path = t.TempDir()
	c, err := Convert(s, "x", t.TempDir())
	if err != nil {
		t.Fatalf("a config with unknown capabilities: %v", err)
	}
	if got := UnknownCapabilities(s.Process.Capabilities); strings.Join(got, ",") != "CAP_FROM_THE_FUTURE,CAP_OTHER" {
		t.Errorf("UnknownCapabilities: %v", got)
	}
	if n := len(c.Process.Capabilities.Bounding); n != len(Default().Process.Capabilities.Bounding)+1 {
		t.Errorf("bounding set has %d capabilities: want the defaults plus CAP_KILL", n)
	}
	if _, err := CapabilityNumbers([]string{"CAP_FROM_THE_FUTURE"}); err == nil {
		t.Error("exec --cap with an unknown name: no error")
	}
}
