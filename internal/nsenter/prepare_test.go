package nsenter

import (
	"testing"

	"github.com/lkc-containers/lkc/internal/config"
)

// TestPrepareRefuses runs plan.c's refusals through Prepare, as Go's init
// does: each fails before it changes anything in the process (the working
// directory is the first change).
func TestPrepareRefuses(t *testing.T) {
	cases := []struct {
		plan Plan
		want string
	}{
		{Plan{Process: &config.Process{Cwd: "/"}}, "exec plan without args or cwd"},
		{Plan{Process: &config.Process{Args: []string{"true"}, Cwd: "/"}, Seccomp: []byte{1, 2, 3}},
			"loading the seccomp filter: a program of 3 bytes"},
		{Plan{Process: &config.Process{Args: []string{"true"}, Cwd: "/nonexistent-lkc-plan"}},
			"process.cwd /nonexistent-lkc-plan: no such file or directory"},
	}
	for _, c := range cases {
		if _, err := Prepare(c.plan); err == nil || err.Error() != c.want {
			t.Errorf("Prepare(%q): %v, want %q", c.plan.Encode(), err, c.want)
		}
	}
}
