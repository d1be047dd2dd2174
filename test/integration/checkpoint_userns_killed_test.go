package integration

import (
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// TestRestoreUserNSKilled: a lkc killed while CRIU restores a container
// with a user namespace leaves ACL entries on the images. The container's
// delete takes them back; so does the next restore of the same images,
// which then succeeds. An ACL lkc did not make is still refused, and left.
func TestRestoreUserNSKilled(t *testing.T) {
	requireCriu(t)
	e := newEnv(t)
	b, root := e.userNSCounter()
	id, id2 := e.id(), e.id()
	e.mustLkc("run", "-d", "--bundle", b, id)
	t.Cleanup(func() { e.lkc("delete", "--force", id); e.lkc("delete", "--force", id2) })
	waitCount(t, root, 3)
	images := filepath.Join(t.TempDir(), "images")
	saved := e.checkpointStops(id, root, images)
	before := imageModes(t, images)

	// A createRuntime hook runs at CRIU's setup-namespaces notification,
	// while CRIU restores: it tells the test, which kills lkc there.
	hookDir := t.TempDir()
	hooked := e.bundle([]string{"sh", "-c", counterScript}, func(s *specs.Spec) {
		withUserNS(root)(s)
		s.Root.Readonly = false
		s.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{shHook(`echo $$ > "$D/pid"; exec sleep 60`, "D="+hookDir)}}
	})
	killedRestore := func() {
		t.Helper()
		os.Remove(filepath.Join(hookDir, "pid"))
		restore := exec.Command(lkcBinary, "--root", e.root, "restore", "-d", "--bundle", hooked, "--image-path", images, id)
		restore.Stdout, restore.Stderr = e.tempFile(), e.tempFile()
		if err := restore.Start(); err != nil {
			t.Fatal(err)
		}
		hook, _ := strconv.Atoi(waitOutFile(t, filepath.Join(hookDir, "pid"), func(l []string) bool { return len(l) == 1 })[0])
		restore.Process.Signal(syscall.SIGKILL)
		restore.Wait()
		syscall.Kill(hook, syscall.SIGKILL)
		if _, err := unix.Getxattr(images, "system.posix_acl_access", nil); err != nil {
			t.Fatalf("%s: no access ACL while CRIU restored (%v)", images, err)
		}
	}

	killedRestore()
	e.mustLkc("delete", "--force", id)
	checkImagesClosed(t, images, before)

	foreign := filepath.Join(images, "inventory.img")
	acl := foreignACL(1234)
	if err := unix.Setxattr(foreign, "system.posix_acl_access", acl, 0); err != nil {
		t.Fatal(err)
	}
	r := e.lkc("restore", "-d", "--bundle", b, "--image-path", images, id2)
	if r.code == 0 || !strings.Contains(r.stderr, "it has an access ACL already") {
		t.Fatalf("restore of images with an ACL lkc did not make: %v; want a refusal", r)
	}
	if n, err := unix.Getxattr(foreign, "system.posix_acl_access", make([]byte, 64)); err != nil || n != len(acl) {
		t.Fatalf("%s: the refused restore changed the ACL lkc did not make", foreign)
	}
	if err := unix.Removexattr(foreign, "system.posix_acl_access"); err != nil {
		t.Fatal(err)
	}
	if err := unix.Chmod(foreign, before[foreign]); err != nil {
		t.Fatal(err)
	}
	killedRestore()
	e.restoreDetached(id2, b, root, images, saved)
	checkImagesClosed(t, images, before)
	e.mustLkc("delete", "--force", id)
	e.mustLkc("kill", id2, "KILL")
	e.waitStatus(id2, "stopped")
	e.mustLkc("delete", id2)
}

// foreignACL is the access ACL user::rw- user:uid:r-- group::r--
// mask::r-- other::---, in the kernel's xattr format.
func foreignACL(uid uint32) []byte {
	acl := binary.LittleEndian.AppendUint32(nil, 2)
	for _, e := range [][3]uint32{{0x01, 6, ^uint32(0)}, {0x02, 4, uid}, {0x04, 4, ^uint32(0)}, {0x10, 4, ^uint32(0)}, {0x20, 0, ^uint32(0)}} {
		acl = binary.LittleEndian.AppendUint16(acl, uint16(e[0]))
		acl = binary.LittleEndian.AppendUint16(acl, uint16(e[1]))
		acl = binary.LittleEndian.AppendUint32(acl, e[2])
	}
	return acl
}
