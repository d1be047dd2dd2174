package integration

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestProcViewPidsAcrossCheckpoint: a view container's loadavg last pid
// and stat's processes do not go back across a checkpoint and a restore:
// the checkpoint keeps the container's pid count with the images, the
// restore has its new pid namespace hand out pids above the kept last
// pid, and the daemon's view goes on from the kept count.
func TestProcViewPidsAcrossCheckpoint(t *testing.T) {
	requireCriu(t)
	d := newDaemonEnv(t)
	id, root := d.ckptCounter(func(s *specs.Spec) {
		s.Annotations = map[string]string{"org.lkc.proc": "virtual"}
	})
	t.Cleanup(func() { d.lkc("delete", "--force", id) })
	d.mustLkc("exec", id, "sh", "-c", "i=0; while [ $i -lt 20 ]; do /bin/true; i=$((i+1)); done")
	lastPid, processes := d.viewPids(id)
	bundle := bundleOf(d.env, id)
	images := fmt.Sprintf("%s/images", t.TempDir())
	saved := d.checkpointStops(id, root, images)
	d.restoreDetached(id, bundle, root, images, saved)
	afterPid, afterProcesses := d.viewPids(id)
	t.Logf("before the checkpoint: last pid %d, processes %d; after the restore: %d, %d", lastPid, processes, afterPid, afterProcesses)
	if afterPid < lastPid || afterProcesses < processes {
		t.Errorf("after the restore: last pid %d, processes %d; before the checkpoint: %d, %d", afterPid, afterProcesses, lastPid, processes)
	}
	// The namespace hands out pids above the kept last pid, as before.
	if pid, err := strconv.Atoi(strings.TrimSpace(d.mustLkc("exec", id, "sh", "-c", "echo $$"))); err != nil || pid <= lastPid {
		t.Errorf("an exec after the restore got pid %d (%v); the view's last pid was %d before the checkpoint", pid, err, lastPid)
	}
}
