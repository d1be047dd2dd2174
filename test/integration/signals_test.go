package integration

import (
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"testing"
)

// lkcIgnoring runs lkc from a shell that ignores SIGHUP, SIGQUIT, SIGPIPE
// and SIGUSR1, as nohup or a caller ignoring SIGPIPE would start it: lkc
// inherits them ignored.
func (e *env) lkcIgnoring(args ...string) string {
	e.t.Helper()
	sh := `trap "" HUP QUIT PIPE USR1; exec "$@"`
	cmd := exec.Command("sh", append([]string{"-c", sh, "sh", e.bin, "--root", e.root}, args...)...)
	// A file, not a pipe: a created container holds lkc's stdout open.
	out := e.tempFile()
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Run(); err != nil {
		e.t.Fatalf("lkc %v: %v: %s", args, err, readAll(out))
	}
	return readAll(out)
}

var sigIgnLine = regexp.MustCompile(`(?m)^SigIgn:\s+(\S+)$`)

// TestProcessStartsWithNoSignalIgnored: signals ignored by whatever ran
// lkc are not ignored in the container's process, for run and for exec
// (execve keeps SIG_IGN; a shell cannot trap a signal ignored at its
// start, which broke a trap test run under nohup).
func TestProcessStartsWithNoSignalIgnored(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	check := func(what, status string) {
		m := sigIgnLine.FindStringSubmatch(status)
		if m == nil {
			t.Fatalf("%s: no SigIgn line in %q", what, status)
		}
		if m[1] != "0000000000000000" {
			t.Errorf("%s: the process starts with signals ignored: SigIgn %s, want none", what, m[1])
		}
	}
	check("run", e.lkcIgnoring("run", "--bundle", e.bundle([]string{"cat", "/proc/self/status"}, nil), e.id()))

	id := e.id()
	e.lkcIgnoring("create", "--bundle", e.bundle([]string{"sleep", "100"}, nil), id)
	t.Cleanup(func() { e.lkc("delete", "-f", id) })
	e.lkcIgnoring("start", id)
	init := int(e.state(id)["pid"].(float64))
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", init))
	if err != nil {
		t.Fatal(err)
	}
	check("create and start", string(status))
	check("exec", e.lkcIgnoring("exec", id, "cat", "/proc/self/status"))
}
