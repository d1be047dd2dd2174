package integration

import (
	"os"
	"path/filepath"
	"regexp"
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
// container did not exist), or, after --leave-running, kills it. Under
// load the kill may start only after the dump ended and removed the
// container: it then finds no container, and says only that. Which of the
// two happened is read from the kill's --debug log (the line of a kill
// that found the dump under way and waits for it), so that each order is
// held to its own message; a kill that did not wait for a dump under way
// fails the test either way (it signals the frozen tasks: the kill
// succeeds, or the dump fails).
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
			waitDumping(t, dump, id, images, tc.when)
			log := filepath.Join(t.TempDir(), "kill.log")
			r := e.lkc(append(append([]string{"--debug", "--log", log}, tc.kill...), id, "KILL")...)
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
				e.checkOneLineFailure(r, killAfterDump(t, log, id), tc.kill)
			}
			e.assertIDGone(id)
		})
	}
}

// killAfterDump is the error a kill of container id, which a dump under
// way removed, must end with: naming the dump it waited for when its log
// says it found the dump under way, else (it came once the dump had
// ended) only that the container does not exist.
func killAfterDump(t *testing.T, log, id string) string {
	t.Helper()
	data, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	plain := `^lkc: kill: container does not exist: ` + regexp.QuoteMeta(id)
	if strings.Contains(string(data), "kill: container "+id+" is being checkpointed: waiting for it") {
		return plain + `: the checkpoint under way, which the kill waited for, dumped and removed it$`
	}
	t.Logf("the kill came after the dump had ended: %s", data)
	return plain + `$`
}
