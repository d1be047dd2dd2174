package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// idmapVolume makes a host directory beneath dir (mode 0755, owned by uid
// 0) holding own0 (owned by 0:0) and own1000 (1000:1000).
func idmapVolume(t *testing.T, dir string) string {
	t.Helper()
	vol := filepath.Join(dir, "vol")
	if err := os.Mkdir(vol, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, id := range map[string]int{"own0": 0, "own1000": 1000} {
		p := filepath.Join(vol, name)
		if err := os.WriteFile(p, []byte(name), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(p, id, id); err != nil {
			t.Fatal(err)
		}
	}
	return vol
}

// hostOwner is the uid:gid of path as the host sees it.
func hostOwner(t *testing.T, path string) string {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%d:%d", st.Uid, st.Gid)
}

// checkLines compares the container's output with want, line by line.
func checkLines(t *testing.T, out string, want []string) {
	t.Helper()
	got := strings.Split(out, "\n")
	if len(got) != len(want) {
		t.Fatalf("container output %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("line %d: %q, want %q", i, got[i], want[i])
		}
	}
}

// TestIDMappedMount: in a container whose user namespace maps 0 to host
// 100000, an idmap bind (the container's maps) shows a host directory's
// files owned by 0 and 1000 as 0 and 1000, and the files the container
// makes there belong on the host to the ids it made them with; a plain bind
// of the same directory shows them unmapped (nobody), and a bind with maps
// of its own (1000 as 100000) shows the file of 1000 as root.
func TestIDMappedMount(t *testing.T) {
	e := newEnv(t)
	vol := idmapVolume(t, t.TempDir())
	own := []specs.LinuxIDMapping{{ContainerID: 1000, HostID: 100000, Size: 1}}
	mutate := func(s *specs.Spec) {
		withUserNS(e.userNSRootfs())(s)
		c := s.Process.Capabilities
		c.Bounding, c.Effective, c.Permitted = append(c.Bounding, "CAP_CHOWN"), append(c.Effective, "CAP_CHOWN"), append(c.Permitted, "CAP_CHOWN")
		s.Mounts = append(s.Mounts,
			specs.Mount{Destination: "/vol", Type: "bind", Source: vol, Options: []string{"rbind", "idmap"}},
			specs.Mount{Destination: "/plain", Type: "bind", Source: vol, Options: []string{"rbind"}},
			specs.Mount{Destination: "/own", Type: "bind", Source: vol, Options: []string{"bind", "ro"}, UIDMappings: own, GIDMappings: own})
	}
	script := "stat -c %u:%g /vol/own0 /vol/own1000 /plain/own0 /own/own1000 /own/own0; " +
		"touch /vol/made0 && touch /vol/made1000 && chown 1000:1000 /vol/made1000 && echo made; " +
		"touch /own/x 2>/dev/null || echo read-only"
	out := e.mustRunOut([]string{"sh", "-c", script}, mutate)
	checkLines(t, out, []string{"0:0", "1000:1000", "65534:65534", "0:0", "65534:65534", "made", "read-only"})
	if got := hostOwner(t, filepath.Join(vol, "made0")); got != "0:0" {
		t.Errorf("file the container's root made: host owner %s, want 0:0", got)
	}
	if got := hostOwner(t, filepath.Join(vol, "made1000")); got != "1000:1000" {
		t.Errorf("file the container chowned to 1000: host owner %s, want 1000:1000", got)
	}
}

// TestIDMappedMountNoUserNS: a bind with maps of its own needs no user
// namespace (runc 1.2): host uid 1000 shows as root, and root's new file
// belongs to 1000 on the host. (The directory is 1000's: root may not
// write in one whose owner the mount leaves unmapped.)
func TestIDMappedMountNoUserNS(t *testing.T) {
	e := newEnv(t)
	vol := idmapVolume(t, t.TempDir())
	if err := os.Chown(vol, 1000, 1000); err != nil { // root's, through the mount
		t.Fatal(err)
	}
	m := []specs.LinuxIDMapping{{ContainerID: 1000, HostID: 0, Size: 1}}
	out := e.mustRunOut([]string{"sh", "-c", "stat -c %u:%g /vol/own1000 /vol/own0; touch /vol/made && echo made"}, func(s *specs.Spec) {
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/vol", Type: "bind", Source: vol, UIDMappings: m, GIDMappings: m})
	})
	checkLines(t, out, []string{"0:0", "65534:65534", "made"})
	if got := hostOwner(t, filepath.Join(vol, "made")); got != "1000:1000" {
		t.Errorf("file root made through the mount: host owner %s, want 1000:1000", got)
	}
}

// TestIDMappedMountCallerNS: a container without a mount namespace gets
// its idmapped mount beneath its rootfs in the caller's namespace, and the
// delete that ends `run` leaves no mount there.
func TestIDMappedMountCallerNS(t *testing.T) {
	e := newEnv(t)
	vol := idmapVolume(t, t.TempDir())
	rootfs := e.writableRootfs()
	m := []specs.LinuxIDMapping{{ContainerID: 1000, HostID: 0, Size: 1}}
	out := e.mustRunOut([]string{"stat", "-c", "%u:%g", "/vol/own1000"}, func(s *specs.Spec) {
		withoutNamespace(specs.MountNamespace)(s)
		s.Root.Path = rootfs
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/vol", Type: "bind", Source: vol, UIDMappings: m, GIDMappings: m})
	})
	checkLines(t, out, []string{"0:0"})
	for _, m := range mountsUnder(t, rootfs) {
		t.Errorf("leak: mount left beneath the rootfs: %s", m)
	}
}

// TestIDMappedMountRecursive: with a tmpfs mounted beneath the source, an
// rbind with ridmap maps the tmpfs's files too; with idmap only the top
// mount is mapped, and the tmpfs's file of 1000 shows unmapped.
func TestIDMappedMountRecursive(t *testing.T) {
	e := newEnv(t)
	vol := idmapVolume(t, t.TempDir())
	sub := filepath.Join(vol, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", sub, "tmpfs", 0, "mode=755"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(sub, unix.MNT_DETACH) })
	f := filepath.Join(sub, "own1000")
	if err := os.WriteFile(f, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(f, 1000, 1000); err != nil {
		t.Fatal(err)
	}
	rootfs := e.userNSRootfs()
	for option, want := range map[string]string{"ridmap": "1000:1000", "idmap": "65534:65534"} {
		out := e.mustRunOut([]string{"stat", "-c", "%u:%g", "/vol/sub/own1000", "/vol/own1000"}, func(s *specs.Spec) {
			withUserNS(rootfs)(s)
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/vol", Type: "bind", Source: vol, Options: []string{"rbind", option}})
		})
		checkLines(t, out, []string{want, "1000:1000"})
	}
}

// TestIDMappedMountRefused: a file system the kernel cannot idmap (procfs)
// fails create in one line naming the mount, after the helper that made
// the user namespace, and leaves nothing: no state, cgroup, mount or
// process, the helper included.
func TestIDMappedMountRefused(t *testing.T) {
	e := newEnv(t)
	id := e.id()
	b := e.bundle([]string{"true"}, func(s *specs.Spec) {
		withUserNS(e.userNSRootfs())(s)
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/hostproc", Type: "bind", Source: "/proc", Options: []string{"bind", "idmap"}})
	})
	e.failLkc(`^lkc: create: mount /proc on /hostproc: mount_setattr\(/proc, MOUNT_ATTR_IDMAP\): invalid argument: its file system does not support idmapped mounts`, "create", "--bundle", b, id)
	e.assertIDGone(id)
	if pids := userNSHelpers(); len(pids) > 0 {
		t.Errorf("user namespace helpers left: %v", pids)
	}
}

// userNSHelpers lists the processes named as lkc's user namespace helper.
func userNSHelpers() []string {
	var pids []string
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		cmd, err := os.ReadFile(filepath.Join("/proc", d.Name(), "cmdline"))
		if err == nil && strings.HasPrefix(string(cmd), "lkc-userns\x00") {
			pids = append(pids, d.Name())
		}
	}
	return pids
}

// TestIDMappedMountJoinedUserNS: idmap in a container that joins another's
// user namespace takes that namespace's maps.
func TestIDMappedMountJoinedUserNS(t *testing.T) {
	e := newEnv(t)
	vol := idmapVolume(t, t.TempDir())
	rootfs := e.userNSRootfs()
	_, pid := e.createdPid([]string{"true"}, withUserNS(rootfs))
	out := e.mustRunOut([]string{"stat", "-c", "%u:%g", "/vol/own0", "/vol/own1000"}, func(s *specs.Spec) {
		s.Root.Path = rootfs
		setNamespace(s, specs.UserNamespace, fmt.Sprintf("/proc/%d/ns/user", pid))
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/vol", Type: "bind", Source: vol, Options: []string{"rbind", "idmap"}})
	})
	checkLines(t, out, []string{"0:0", "1000:1000"})
}

// TestIDMappedMountNotShared: an idmapped bind of a shared mount is a
// slave of it in the container, never its peer, so nothing the container
// mounts there reaches the host (the host's binds reach the container).
func TestIDMappedMountNotShared(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "mode=755"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	if err := unix.Mount("", dir, "", unix.MS_SHARED, ""); err != nil {
		t.Fatal(err)
	}
	vol := idmapVolume(t, dir)
	m := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 0, Size: 65536}}
	id, pid := e.createdPid([]string{"true"}, func(s *specs.Spec) {
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/vol", Type: "bind", Source: vol, UIDMappings: m, GIDMappings: m})
	})
	defer e.lkc("delete", "--force", id)
	info, err := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(info), "\n") {
		if f := strings.Fields(line); len(f) > 6 && f[4] == "/vol" {
			if !strings.Contains(line, " master:") || strings.Contains(line, " shared:") {
				t.Errorf("idmapped bind of a shared mount: %q, want a slave (master:N) and no peer", line)
			}
			return
		}
	}
	t.Fatalf("no /vol in the container's mounts:\n%s", info)
}

// TestIDMappedMountCheckpointRefused: CRIU would restore an idmapped
// mount as a plain bind, so checkpoint and restore refuse the container in
// one line, and the container keeps running.
func TestIDMappedMountCheckpointRefused(t *testing.T) {
	criu := requireCriu(t)
	e := newEnv(t)
	vol := idmapVolume(t, t.TempDir())
	m := []specs.LinuxIDMapping{{ContainerID: 1000, HostID: 0, Size: 1}}
	b := e.bundle([]string{"sleep", "100"}, func(s *specs.Spec) {
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/vol", Type: "bind", Source: vol, UIDMappings: m, GIDMappings: m})
	})
	id := e.id()
	e.mustLkc("create", "--bundle", b, id)
	e.mustLkc("start", id)
	images := filepath.Join(t.TempDir(), "images")
	want := `mounts\[\d+\] /vol is an idmapped mount, which CRIU would restore as a plain bind`
	e.failLkc(want, "--criu", criu, "checkpoint", "--image-path", images, id)
	e.failLkc(want, "--criu", criu, "restore", "-d", "--bundle", b, "--image-path", t.TempDir(), "new-"+id)
	if _, err := os.Stat(images); !os.IsNotExist(err) {
		t.Errorf("refused checkpoint left %s (%v)", images, err)
	}
	if st := e.state(id); st["status"] != "running" {
		t.Errorf("container is %v after the refused checkpoint", st["status"])
	}
	e.assertIDGone("new-" + id)
	e.mustLkc("delete", "--force", id)
}
