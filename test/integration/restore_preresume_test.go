package integration

import (
	"path/filepath"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/lkc-containers/lkc/internal/cr"
)

// TestRestorePreResumeFailureRunsNothing: when a step of CRIU's
// pre-resume fails (forced here by cr.PreResumeFailEnv), the restore fails
// in one line, leaves no container, and the restored tasks never ran:
// CRIU only logs a failed pre-resume and lets them go, so lkc kills them
// while CRIU still holds them. The container counts as fast as it can;
// its count stays where the dump left it.
func TestRestorePreResumeFailureRunsNothing(t *testing.T) {
	requireCriu(t)
	e := newEnv(t)
	root := e.writableRootfs()
	bundle := e.bundle([]string{"sh", "-c", `i=0; while :; do i=$((i+1)); echo $i > /count.tmp; mv /count.tmp /count; done`}, func(s *specs.Spec) {
		s.Root.Path, s.Root.Readonly = root, false
	})
	id := e.id()
	e.mustLkc("run", "-d", "--bundle", bundle, id)
	waitCount(t, root, 3)
	images := filepath.Join(t.TempDir(), "images")
	e.mustLkc("checkpoint", "--image-path", images, id)
	n := readCount(t, root)
	t.Setenv(cr.PreResumeFailEnv, "1")
	e.failLkc(`restore: restoring container `+id+`: .*pre-resume failed`, "restore", "-d", "--bundle", bundle, "--image-path", images, id)
	if r := e.lkc("state", id); r.code == 0 {
		t.Errorf("the failed restore left container %s: %v", id, r)
	}
	time.Sleep(200 * time.Millisecond)
	if m := readCount(t, root); m != n {
		t.Errorf("the count went from %d at the dump to %d after the failed restore: its tasks ran", n, m)
	}
	if pids := processesIn(id); len(pids) != 0 {
		t.Errorf("processes of %s left after the failed restore: %v", id, pids)
	}
}
