package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// mountsUnder returns the lines of the test's own mountinfo whose mount
// point is dir or beneath it.
func mountsUnder(t *testing.T, dir string) []string {
	t.Helper()
	info, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(string(info), "\n") {
		if f := strings.Fields(line); len(f) > 4 && (f[4] == dir || strings.HasPrefix(f[4], dir+"/")) {
			out = append(out, line)
		}
	}
	return out
}

// TestNamespaceMountShared checks a container without a mount namespace:
// it shares the caller's, its mounts are made beneath its rootfs there,
// its processes (exec'd ones too) see the rootfs as /, and delete (or a
// failed create) leaves no mount and the caller's / as it was.
func TestNamespaceMountShared(t *testing.T) {
	e := newEnv(t)
	rootfs := e.writableRootfs()
	if err := os.WriteFile(filepath.Join(rootfs, "marker"), []byte("in-rootfs\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, m := range mountsUnder(t, rootfs) {
			t.Errorf("leak: mount left beneath the rootfs: %s", m)
		}
	})
	hostRoot := hostRootLine(t)
	out, err := exec.Command("readlink", "/proc/self/ns/mnt").Output()
	if err != nil {
		t.Fatal(err)
	}
	hostNS := strings.TrimSpace(string(out))
	shared := func(s *specs.Spec) {
		withoutNamespace(specs.MountNamespace)(s)
		s.Root.Path = rootfs
	}
	id, pid := e.createdPid([]string{"sleep", "100"}, shared)
	if ns, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", pid)); ns != hostNS {
		t.Errorf("container without a mount namespace is in %q, want the caller's %q", ns, hostNS)
	}
	if len(mountsUnder(t, filepath.Join(rootfs, "proc"))) == 0 {
		t.Errorf("the container's /proc is not mounted beneath its rootfs in the caller's namespace: %q", mountsUnder(t, rootfs))
	}
	got := e.mustLkc("exec", id, "sh", "-c", "cat /marker; ls /proc | grep -c '^[0-9]'")
	if f := strings.Fields(got); len(f) != 2 || f[0] != "in-rootfs" {
		t.Errorf("exec in a container without a mount namespace: got %q, want the rootfs's /marker", got)
	}
	e.mustLkc("delete", "--force", id)
	if left := mountsUnder(t, rootfs); len(left) > 0 {
		t.Errorf("mounts left beneath the rootfs after delete: %q", left)
	}
	// A create that fails after the mounts are made leaves none either.
	b := e.bundle([]string{"/no-such-program"}, shared)
	e.failLkc("no-such-program", "create", "--bundle", b, e.id())
	if left := mountsUnder(t, rootfs); len(left) > 0 {
		t.Errorf("mounts left beneath the rootfs after a failed create: %q", left)
	}
	if after := hostRootLine(t); after != hostRoot {
		t.Errorf("the caller's / changed: before %q, after %q", hostRoot, after)
	}
}

// TestNamespaceMountSharedRefusesMasks checks that masked and read-only
// paths, which need a mount namespace of the container's own, are refused
// without one.
func TestNamespaceMountSharedRefusesMasks(t *testing.T) {
	e := newEnv(t)
	b := e.bundle([]string{"true"}, func(s *specs.Spec) {
		withoutNamespace(specs.MountNamespace)(s)
		s.Linux.MaskedPaths = []string{"/proc/kcore"}
	})
	e.failLkc(`maskedPaths/readonlyPaths need a mount namespace of the container's own`, "create", "--bundle", b, e.id())
}

// TestNamespaceMountJoined checks a container joining another's mount
// namespace: it sees that namespace's filesystem, not its own root.path,
// and nothing is mounted in the namespace it joined.
func TestNamespaceMountJoined(t *testing.T) {
	e := newEnv(t)
	peerRootfs := e.writableRootfs()
	if err := os.WriteFile(filepath.Join(peerRootfs, "marker"), []byte("peer\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, peer := e.createdPid([]string{"sleep", "100"}, func(s *specs.Spec) { s.Root.Path = peerRootfs })
	nsPath := fmt.Sprintf("/proc/%d/ns/mnt", peer)
	peerNS, err := os.Readlink(nsPath)
	if err != nil {
		t.Fatal(err)
	}
	mountinfo := fmt.Sprintf("/proc/%d/mountinfo", peer)
	before, err := os.ReadFile(mountinfo)
	if err != nil {
		t.Fatal(err)
	}
	joined := func(s *specs.Spec) {
		setNamespace(s, specs.MountNamespace, nsPath)
		s.Mounts, s.Linux.MaskedPaths, s.Linux.ReadonlyPaths = nil, nil, nil
		s.Root.Readonly = false
	}
	if out := e.mustRunOut([]string{"cat", "/marker"}, joined); out != "peer" {
		t.Errorf("container in %s: /marker is %q, want the peer's \"peer\"", nsPath, out)
	}
	_, pid := e.createdPid([]string{"sleep", "100"}, joined)
	if ns, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", pid)); ns != peerNS {
		t.Errorf("container joined to %s is in %q, want %q", nsPath, ns, peerNS)
	}
	if after, _ := os.ReadFile(mountinfo); string(after) != string(before) {
		t.Errorf("the joined namespace's mounts changed:\nbefore\n%s\nafter\n%s", before, after)
	}
	b := e.bundle([]string{"true"}, func(s *specs.Spec) { setNamespace(s, specs.MountNamespace, nsPath) })
	e.failLkc(`the mount namespace is joined, and lkc mounts nothing in it: remove mounts, root.readonly`,
		"create", "--bundle", b, e.id())
}

// TestNamespaceMountSharedCheckpointRefused checks that a container
// without a mount namespace of its own is refused a checkpoint (CRIU
// rebuilds mounts in a namespace of the container's), and keeps running.
func TestNamespaceMountSharedCheckpointRefused(t *testing.T) {
	requireCriu(t)
	e := newEnv(t)
	id := e.createdID([]string{"sleep", "100"}, withoutNamespace(specs.MountNamespace))
	e.mustLkc("start", id)
	e.failLkc(`checkpointing container .*: not supported on this host: the container has no mount namespace of its own`,
		"checkpoint", "--image-path", t.TempDir(), id)
	if st := e.state(id)["status"]; st != "running" {
		t.Errorf("after the refused checkpoint the container is %v, want running", st)
	}
}
