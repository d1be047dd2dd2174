package integration

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lkc-containers/lkc/internal/rulesengine"
)

// TestRulesResubscribeAfterReadError breaks the engine's subscription to
// process events for real (rulesengine.BreakEnv: its socket becomes
// /dev/null, so the next read fails with ENOTSOCK and no event can come
// through it any more): the same worker must log it, subscribe again,
// rescan, and go on placing new processes.
func TestRulesResubscribeAfterReadError(t *testing.T) {
	r := newRulesEnv(t, "")
	exe := filepath.Join(r.tmp, "lkc-exe-sleep")
	copyExe(t, "/bin/sleep", exe)
	r.writeRules("exe=" + r.tmp + "/lkc-exe-* -> group=one\n")
	r.mustLkc("group", "create", "one")
	marker := filepath.Join(r.tmp, "break-rules")
	t.Setenv(rulesengine.BreakEnv, marker)
	r.start()
	worker := r.rulesStatus().WorkerPid
	r.waitInGroup(r.inScope(exe, "60").Process.Pid, "one")
	if err := os.WriteFile(marker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for end := time.Now().Add(settle); ; time.Sleep(10 * time.Millisecond) {
		if _, err := os.Stat(marker); errors.Is(err, os.ErrNotExist) {
			break
		}
		if time.Now().After(end) {
			t.Fatalf("the engine never read after the marker appeared (log:\n%s)", r.log())
		}
	}
	// The socket is broken now: only a new subscription sees this exec.
	r.waitInGroup(r.inScope(exe, "60").Process.Pid, "one")
	st := r.rulesStatus()
	if st.WorkerPid != worker || st.Rules.Resubscribes != 1 {
		t.Errorf("worker %d (was %d), %d resubscriptions; want the same worker, 1", st.WorkerPid, worker, st.Rules.Resubscribes)
	}
	if log := r.log(); !strings.Contains(log, "socket operation on non-socket; subscribing again") ||
		!strings.Contains(log, "rules: subscribed again") {
		t.Errorf("the daemon's log does not tell the read error and the new subscription:\n%s", log)
	}
}
