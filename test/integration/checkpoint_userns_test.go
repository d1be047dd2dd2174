package integration

import (
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestCheckpointRestoreUserNS: a counter container with a user namespace
// (and no /proc view) is checkpointed and restored, and counts on from
// where it stopped, in a user namespace with the same mappings, as the
// same child; an exec joins it.
func TestCheckpointRestoreUserNS(t *testing.T) {
	requireCriu(t)
	e := newEnv(t)
	root := e.userNSRootfs()
	b := e.bundle([]string{"sh", "-c", counterScript}, func(s *specs.Spec) {
		withUserNS(root)(s)
		s.Root.Readonly = false
	})
	id := e.id()
	e.mustLkc("run", "-d", "--bundle", b, id)
	t.Cleanup(func() { e.lkc("delete", "--force", id) })
	waitCount(t, root, 3)
	child := strings.TrimSpace(e.mustLkc("exec", id, "cat", "/child"))
	images := filepath.Join(t.TempDir(), "images")
	saved := e.checkpointStops(id, root, images)
	e.restoreDetached(id, b, root, images, saved)

	out := e.mustLkc("exec", id, "sh", "-c", "id -u; cat /proc/self/uid_map")
	if f := strings.Fields(out); len(f) != 4 || f[0] != "0" || f[1] != "0" || f[2] != "100000" || f[3] != "65536" {
		t.Fatalf("an exec'd process in the restored container: uid and uid_map %q; want 0 and 0 100000 65536", out)
	}
	if ps := e.mustLkc("exec", id, "ps", "-o", "pid,args"); !psHas(ps, child, "sleep 100000") {
		t.Fatalf("child %s (sleep 100000) missing after restore:\n%s", child, ps)
	}
	e.mustLkc("kill", id, "KILL")
	e.waitStatus(id, "stopped")
	e.mustLkc("delete", id)
}
