package cr

import (
	"reflect"
	"sort"
	"strconv"
	"testing"

	"github.com/lkc-containers/lkc/internal/checkpoint"
	"github.com/lkc-containers/lkc/internal/config"
)

func TestCgroupRootsAreRelativeToEachHierarchy(t *testing.T) {
	got := cgroupRoots(map[string]string{
		"memory":      "/sys/fs/cgroup/memory/process_api/x/lkc/c2",
		"cpu,cpuacct": "/sys/fs/cgroup/cpu,cpuacct/lkc/c2",
		"bogus":       "/elsewhere/c2",
	})
	sort.Slice(got, func(i, j int) bool { return got[i].Ctrl < got[j].Ctrl })
	want := []checkpoint.CgroupRoot{{Ctrl: "cpu,cpuacct", Path: "/lkc/c2"}, {Ctrl: "memory", Path: "/process_api/x/lkc/c2"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("v1 roots: got %v, want %v", got, want)
	}
	v2 := cgroupRoots(map[string]string{"": "/sys/fs/cgroup/a/lkc/c2"})
	if !reflect.DeepEqual(v2, []checkpoint.CgroupRoot{{Ctrl: "", Path: "/a/lkc/c2"}}) {
		t.Errorf("v2 root: %v", v2)
	}
}

func TestCheckpointFlagParsing(t *testing.T) {
	if m, err := cgroupMode("strict"); err != nil || *m != checkpoint.CgroupStrict {
		t.Errorf("strict: %v %v", m, err)
	}
	if m, err := cgroupMode(""); err != nil || m != nil {
		t.Errorf(`"" must leave CRIU's default: %v %v`, m, err)
	}
	if _, err := cgroupMode("hard"); err == nil {
		t.Error("cgroup mode hard accepted")
	}
	if f, err := emptyNSFlags([]string{"network"}); err != nil || f != 0x40000000 {
		t.Errorf("empty-ns network: %#x %v", f, err)
	}
	for _, bad := range []string{"ipc", "nope"} {
		if _, err := emptyNSFlags([]string{bad}); err == nil {
			t.Errorf("empty-ns %s accepted", bad)
		}
	}
	for in, want := range map[string]string{"10.0.0.1:27": "10.0.0.1/27", "[::1]:9": "::1/9"} {
		h, p, err := splitHostPort(in)
		if err != nil || h+"/"+strconv.Itoa(p) != want {
			t.Errorf("%s: %s %d %v", in, h, p, err)
		}
	}
	for _, bad := range []string{"host", ":80", "h:0", "h:x"} {
		if _, _, err := splitHostPort(bad); err == nil {
			t.Errorf("page server %q accepted", bad)
		}
	}
}

// Bind mounts and, without a cgroup namespace, the bound cgroup
// directories are external; a restore maps them to the new paths.
func TestExternalMounts(t *testing.T) {
	cfg := &config.Config{
		Mounts: []config.Mount{
			{Source: "/srv/data", Destination: "/data", Type: "bind"},
			{Source: "proc", Destination: "/proc", Type: "proc"},
			{Source: "cgroup", Destination: "/sys/fs/cgroup", Type: "cgroup"},
		},
		MaskedPaths: []string{"/proc/kcore"},
	}
	paths := map[string]string{"memory": "/sys/fs/cgroup/memory/lkc/new"}
	got := restoreMounts(cfg, paths, "/run/lkc/c/criu-masked")
	want := []checkpoint.ExtMount{
		{Key: "/data", Val: "/srv/data"},
		{Key: "/sys/fs/cgroup/memory", Val: "/sys/fs/cgroup/memory/lkc/new"},
		{Key: "/dev/null", Val: "/dev/null"},
		{Key: maskedDirKey, Val: "/run/lkc/c/criu-masked"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("without cgroupns: got %v, want %v", got, want)
	}
	cfg.Namespaces = []config.Namespace{{Type: "cgroup"}}
	if got := restoreMounts(cfg, paths, "/m"); len(got) != 3 {
		t.Errorf("with its own cgroupns the cgroup mounts are CRIU's own: %v", got)
	}
}

func TestUnmanagedCgroupRoots(t *testing.T) {
	self := []byte("9:name=systemd:/user.slice\n4:memory:/p\n0::/u\n")
	got := unmanagedCgroupRoots(self, map[string]string{"memory": "/sys/fs/cgroup/memory/p/lkc/c"})
	want := []checkpoint.CgroupRoot{{Ctrl: "name=systemd", Path: "/user.slice"}, {Ctrl: "unified", Path: "/u"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if got := unmanagedCgroupRoots(self, map[string]string{"": "/sys/fs/cgroup/c"}); got != nil {
		t.Errorf("a v2 host has no unmanaged hierarchy: %v", got)
	}
}

func TestTmpfsMountPoints(t *testing.T) {
	info := []byte("61 60 0:52 / /proc rw,nosuid - proc proc rw\n" +
		"64 61 0:55 / /proc/acpi ro,relatime shared:5 - tmpfs tmpfs ro,size=0k\n" +
		"66 61 0:50 /null /proc/kcore rw - tmpfs tmpfs rw,mode=755\n" +
		"70 60 0:56 / /sys/firmware ro - tmpfs tmpfs ro\n")
	got := tmpfsMountPoints(info)
	want := map[string]bool{"/proc/acpi": true, "/proc/kcore": true, "/sys/firmware": true}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

// In a user namespace the device nodes are binds of the host's
// (mount.BoundDevices): external too, or CRIU refuses the dump ("doesn't
// have a proper root mount"); without one they are mknod's own.
func TestExternalDevicesInUserNS(t *testing.T) {
	cfg := &config.Config{Devices: []config.Device{{Path: "/dev/fuse", Type: 'c', Major: 10, Minor: 229}}}
	if got := externalMounts(cfg, nil); len(got) != 0 {
		t.Errorf("without a user namespace: %v", got)
	}
	cfg.Namespaces = []config.Namespace{{Type: "user"}}
	got := map[string]string{}
	for _, m := range externalMounts(cfg, nil) {
		got[m.Destination] = m.Source
	}
	for _, p := range []string{"/dev/null", "/dev/tty", "/dev/urandom", "/dev/fuse"} {
		if got[p] != p {
			t.Errorf("with a user namespace, %s: %q (all: %v)", p, got[p], got)
		}
	}
}
