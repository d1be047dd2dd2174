package integration

import (
	"os"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/lsm"
)

// TestSecLSMConfinement checks apparmorProfile, selinuxLabel and
// mountLabel: applied where the host has the module, refused at create
// (and by exec) where it has not, leaving nothing behind.
func TestSecLSMConfinement(t *testing.T) {
	t.Run("apparmorProfile", func(t *testing.T) {
		e := newEnv(t)
		if !lsm.Default.AppArmor() {
			b := e.bundle([]string{"true"}, func(s *specs.Spec) { s.Process.ApparmorProfile = "lkc-test" })
			e.failLkc(`process.apparmorProfile "lkc-test": AppArmor is not enabled on this host`, "create", "--bundle", b, e.id())
			id := e.createdID([]string{"sleep", "100"}, nil)
			e.failLkc(`process.apparmorProfile "lkc-test": AppArmor is not enabled`, "exec", "--apparmor", "lkc-test", id, "true")
			return
		}
		out := e.mustRunOut([]string{"cat", "/proc/self/attr/current"}, func(s *specs.Spec) { s.Process.ApparmorProfile = "unconfined" })
		if !strings.HasPrefix(out, "unconfined") {
			t.Errorf("apparmorProfile unconfined: the process's attr/current is %q", out)
		}
	})
	t.Run("selinuxLabel", func(t *testing.T) {
		e := newEnv(t)
		if !lsm.Default.SELinux() {
			label := "system_u:system_r:container_t:s0"
			b := e.bundle([]string{"true"}, func(s *specs.Spec) { s.Process.SelinuxLabel = label })
			e.failLkc(`process.selinuxLabel "`+label+`": SELinux is not enabled on this host`, "create", "--bundle", b, e.id())
			return
		}
		own, err := os.ReadFile("/proc/self/attr/current")
		if err != nil {
			t.Fatal(err)
		}
		label := strings.TrimRight(string(own), "\x00\n")
		out := e.mustRunOut([]string{"cat", "/proc/self/attr/current"}, func(s *specs.Spec) { s.Process.SelinuxLabel = label })
		if strings.TrimRight(out, "\x00") != label {
			t.Errorf("selinuxLabel %q: the process's attr/current is %q", label, out)
		}
	})
	t.Run("mountLabel", func(t *testing.T) {
		e := newEnv(t)
		if !lsm.Default.SELinux() {
			label := "system_u:object_r:container_file_t:s0"
			b := e.bundle([]string{"true"}, func(s *specs.Spec) { s.Linux.MountLabel = label })
			e.failLkc(`linux.mountLabel "`+label+`": SELinux is not enabled on this host`, "create", "--bundle", b, e.id())
			return
		}
		buf := make([]byte, 256)
		n, err := unix.Getxattr(rootfs, "security.selinux", buf)
		if err != nil {
			t.Fatal(err)
		}
		label := strings.TrimRight(string(buf[:n]), "\x00")
		out := e.mustRunOut([]string{"grep", " /dev/shm ", "/proc/mounts"}, func(s *specs.Spec) { s.Linux.MountLabel = label })
		if !strings.Contains(out, "context=") {
			t.Errorf("mountLabel %q: /dev/shm is mounted without it: %q", label, out)
		}
	})
}
