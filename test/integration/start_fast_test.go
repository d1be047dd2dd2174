package integration

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"
)

// startTraced runs `lkc start` with the Go runtime's package-init trace
// on, so its stderr tells whether the Go runtime started at all.
func (e *env) startTraced(id string, global ...string) (result, bool) {
	e.t.Helper()
	args := append(append([]string{"--root", e.root}, global...), "start", id)
	cmd := exec.Command(e.bin, args...)
	cmd.Env = append(os.Environ(), "GODEBUG=inittrace=1")
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{stdout: out.String(), code: cmd.ProcessState.ExitCode()}
	if err != nil && r.code <= 0 {
		e.t.Fatalf("lkc start %s: %v", id, err)
	}
	var rest []string
	goRan := false
	for _, l := range strings.Split(strings.TrimRight(errb.String(), "\n"), "\n") {
		if strings.HasPrefix(l, "init ") {
			goRan = true
		} else if l != "" {
			rest = append(rest, l)
		}
	}
	r.stderr = strings.Join(rest, "\n")
	return r, goRan
}

// TestStartWithoutGoRuntime: a plain `lkc start` of a container `lkc
// create` made is done by the constructor, without the Go runtime
// (nsenter/start.c), and ends as Go's start does: the process runs, a
// second start is refused (by Go, whose work a refusal is), a start whose
// exec fails reports it in one line on stderr and in --log, and a
// container with poststart hooks is started by Go, which runs them.
func TestStartWithoutGoRuntime(t *testing.T) {
	e := newEnv(t)
	id := e.createdID([]string{"sleep", "1000"}, nil)
	if r, goRan := e.startTraced(id); r.code != 0 || r.stderr != "" || goRan {
		t.Fatalf("start of a created container: %v, Go runtime started %v; want exit 0, no output, no Go", r, goRan)
	}
	if st := e.state(id); st["status"] != "running" {
		t.Fatalf("container after start: %v, want running", st["status"])
	}
	if r, goRan := e.startTraced(id); r.code == 0 || !goRan || !strings.HasSuffix(r.stderr, "cannot start container "+id+": it is running") {
		t.Errorf("second start: %v, Go runtime started %v; want Go's refusal", r, goRan)
	}

	bad := e.createdID([]string{"/out/bad"}, withNoPrograms(t))
	logf := filepath.Join(t.TempDir(), "log.json")
	const want = "container %s: starting: exec /out/bad: exec format error"
	r, _ := e.startTraced(bad, "--log", logf, "--log-format", "json")
	if r.code != 1 || r.stderr != "lkc: start: "+strings.Replace(want, "%s", bad, 1) {
		t.Errorf("start whose exec fails: %v; want exit 1 and %q", r, strings.Replace(want, "%s", bad, 1))
	}
	var entry map[string]string
	data, err := os.ReadFile(logf)
	if err == nil {
		err = json.Unmarshal(data, &entry)
	}
	if err != nil || entry["level"] != "error" || !strings.HasSuffix(entry["msg"], strings.Replace(want, "%s", bad, 1)) {
		t.Errorf("--log of the failed start: %q (%v); want one error entry with the message", data, err)
	}
	if st := e.state(bad); st["status"] != "stopped" {
		t.Errorf("container after a failed start: %v, want stopped", st["status"])
	}

	marker := filepath.Join(t.TempDir(), "poststart")
	hooked := e.createdID([]string{"sleep", "1000"}, func(s *specs.Spec) {
		s.Hooks = &specs.Hooks{Poststart: []specs.Hook{shHook("touch " + marker)}}
	})
	if r, goRan := e.startTraced(hooked); r.code != 0 || !goRan {
		t.Errorf("start with a poststart hook: %v, Go runtime started %v; want exit 0 by Go", r, goRan)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Errorf("poststart hook after start: %v", err)
	}
}
