package integration

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckpointKillDuringDump runs `kill` and `kill --all` (SIGKILL)
// while `lkc checkpoint` of the same container is under way: with the
// container frozen for CRIU to seize its tasks, and with CRIU writing
// their memory. A SIGKILL to tasks CRIU has seized makes the dump fail in
// CRIU's words, or leaves CRIU waiting on a task that never acts on it
// (TestCheckpointDeleteForceDuringDump). The kill waits for the dump
// instead: the dump succeeds whole, and the kill then fails in one line
// saying that the checkpoint removed the container (it said only that the
// container did not exist), or, after --leave-running, kills it.
func TestCheckpointKillDuringDump(t *testing.T) {
	requireCriu(t)
	for _, tc := range []struct {
		kill         []string
		when         string // waitDumping's
		leaveRunning bool
	}{
		{[]string{"kill"}, "seize", false},
		{[]string{"kill", "--all"}, "pages", false},
		{[]string{"kill", "--all"}, "pages", true},
	} {
		name := strings.Join(tc.kill, "-") + "-" + tc.when
		if tc.leaveRunning {
			name += "-leave-running"
		}
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			const size = 128 << 20
			id, _, _ := e.holder(size)
			images := filepath.Join(t.TempDir(), "images")
			args := []string{"--image-path", images}
			if tc.leaveRunning {
				args = append(args, "--leave-running")
			}
			dump := e.startDump(nil, append(args, id)...)
			waitDumping(t, id, images, tc.when)
			r := e.lkc(append(tc.kill, id, "KILL")...)
			if err := dump.wait(t); err != nil {
				t.Fatalf("checkpoint with a %s during it: %v: %s", strings.Join(tc.kill, " "), err, dump.stderr.String())
			}
			if pages := dirBytes(t, images, "pages-"); pages < size {
				t.Errorf("images hold %d bytes of pages, want at least %d", pages, size)
			}
			if tc.leaveRunning {
				if r.code != 0 {
					t.Fatalf("%s after a --leave-running dump: %v", strings.Join(tc.kill, " "), r)
				}
				e.waitStatus(id, "stopped")
				e.mustLkc("delete", id)
			} else {
				e.checkOneLineFailure(r, `kill: container does not exist: .*the checkpoint under way, which the kill waited for, dumped and removed it`, tc.kill)
			}
			e.assertIDGone(id)
		})
	}
}
