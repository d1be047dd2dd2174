package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// TestCheckpointRestoreUserNS: a counter container with a user namespace
// (and no /proc view) is checkpointed and restored, and counts on from
// where it stopped, in a user namespace with the same mappings, as the
// same child; an exec joins it.
func TestCheckpointRestoreUserNS(t *testing.T) {
	requireCriu(t)
	e := newEnv(t)
	b, root := e.userNSCounter()
	id := e.id()
	e.mustLkc("run", "-d", "--bundle", b, id)
	t.Cleanup(func() { e.lkc("delete", "--force", id) })
	waitCount(t, root, 3)
	child := strings.TrimSpace(e.mustLkc("exec", id, "cat", "/child"))
	images := filepath.Join(t.TempDir(), "images")
	saved := e.checkpointStops(id, root, images)
	before := imageModes(t, images)
	e.restoreDetached(id, b, root, images, saved)

	out := e.mustLkc("exec", id, "sh", "-c", "id -u; cat /proc/self/uid_map")
	if f := strings.Fields(out); len(f) != 4 || f[0] != "0" || f[1] != "0" || f[2] != "100000" || f[3] != "65536" {
		t.Fatalf("an exec'd process in the restored container: uid and uid_map %q; want 0 and 0 100000 65536", out)
	}
	if ps := e.mustLkc("exec", id, "ps", "-o", "pid,args"); !psHas(ps, child, "sleep 100000") {
		t.Fatalf("child %s (sleep 100000) missing after restore:\n%s", child, ps)
	}
	checkImagesClosed(t, images, before)
	// Restored, it checkpoints and restores again.
	images2 := filepath.Join(t.TempDir(), "images2")
	saved = e.checkpointStops(id, root, images2)
	e.restoreDetached(id, b, root, images2, saved)
	e.mustLkc("kill", id, "KILL")
	e.waitStatus(id, "stopped")
	e.mustLkc("delete", id)
}

// userNSCounter writes a bundle of the counter in a user namespace on a
// writable rootfs of its own, and returns it and the rootfs.
func (e *env) userNSCounter() (bundle, root string) {
	e.t.Helper()
	root = e.userNSRootfs()
	return e.bundle([]string{"sh", "-c", counterScript}, func(s *specs.Spec) {
		withUserNS(root)(s)
		s.Root.Readonly = false
	}), root
}

// imageModes returns the modes of the images directory and its files.
func imageModes(t *testing.T, images string) map[string]uint32 {
	t.Helper()
	entries, err := os.ReadDir(images)
	if err != nil {
		t.Fatal(err)
	}
	modes := map[string]uint32{}
	for _, e := range append(entries, nil) {
		p := images
		if e != nil {
			p = filepath.Join(images, e.Name())
		}
		var st unix.Stat_t
		if err := unix.Stat(p, &st); err != nil {
			t.Fatal(err)
		}
		modes[p] = st.Mode & 0o7777
	}
	return modes
}

// checkImagesClosed checks that a restore left the images as the
// checkpoint made them, before: the same modes (0700 for the directory),
// and no access ACL on any.
func checkImagesClosed(t *testing.T, images string, before map[string]uint32) {
	t.Helper()
	if before[images] != 0o700 {
		t.Errorf("%s: mode %#o after the checkpoint; want 0700", images, before[images])
	}
	for p, mode := range imageModes(t, images) {
		if was, ok := before[p]; ok && mode != was {
			t.Errorf("%s: mode %#o after the restore; %#o before", p, mode, was)
		}
		if _, err := unix.Getxattr(p, "system.posix_acl_access", nil); err != unix.ENODATA {
			t.Errorf("%s: access ACL after the restore (%v); want none", p, err)
		}
	}
}

// TestCheckpointPreDumpUserNS: a container with a user namespace,
// checkpointed on top of a pre-dump, restores: its root reads the
// pre-dump's images through the parent link, whose resolution passes the
// directory above both (mode 0700, root's), and afterwards no image nor
// that directory has an ACL left. It needs soft-dirty. The container's
// stdio is /dev/null, which CRIU reopens by its path: a file of the
// harness would need an idmapped mount of its file system, which the
// guests' kernel has not for tmpfs.
func TestCheckpointPreDumpUserNS(t *testing.T) {
	criu := requireCriu(t)
	if !softDirty(t, criu) {
		t.Skip("the kernel does not track dirty memory (soft-dirty): CRIU cannot pre-dump here")
	}
	e := newEnv(t)
	b, root := e.userNSCounter()
	id := e.id()
	// No output is read: the detached container would hold a pipe open.
	if err := exec.Command(lkcBinary, "--root", e.root, "run", "-d", "--bundle", b, id).Run(); err != nil {
		t.Fatalf("lkc run -d %s: %v", id, err)
	}
	t.Cleanup(func() { e.lkc("delete", "--force", id) })
	waitCount(t, root, 3)
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	pre, final := filepath.Join(dir, "pre"), filepath.Join(dir, "final")
	e.mustLkc("checkpoint", "--pre-dump", "--image-path", pre, id)
	saved := e.checkpointStops(id, root, final, "--parent-path", "../pre")
	beforePre, beforeFinal := imageModes(t, pre), imageModes(t, final)
	e.restoreDetached(id, b, root, final, saved)
	checkImagesClosed(t, pre, beforePre)
	checkImagesClosed(t, final, beforeFinal)
	if _, err := unix.Getxattr(dir, "system.posix_acl_access", nil); err != unix.ENODATA {
		t.Errorf("%s: access ACL after the restore (%v); want none", dir, err)
	}
	e.mustLkc("kill", id, "KILL")
	e.waitStatus(id, "stopped")
	e.mustLkc("delete", id)
}
