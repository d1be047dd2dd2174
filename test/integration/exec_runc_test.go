package integration

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// sessionProbe prints the shell's pid, process group and session, read
// with the shell's builtins so that /proc/self is the shell's own.
const sessionProbe = `read -r pid comm state ppid pgrp sid rest </proc/self/stat; echo "$pid $pgrp $sid"`

// TestExecOwnSession: like runc's, an exec'd process leads a session of
// its own, whether the constructor starts it (plain) or Go's init (with an
// oom score). Left in the caller's process group, a container process
// would get the signals of the caller's terminal, and its kill(0, sig)
// would reach the host processes of that group.
func TestExecOwnSession(t *testing.T) {
	e := newEnv(t)
	id, _ := e.runningPid(nil)
	process := writeProcess(t, `{"args":["sh","-c",`+strconv.Quote(sessionProbe)+`],"cwd":"/",`+
		`"env":["PATH=/bin"],"user":{"uid":0,"gid":0},"oomScoreAdj":10}`)
	for name, args := range map[string][]string{
		"plain":           {"exec", id, "sh", "-c", sessionProbe},
		"through Go init": {"exec", "--process", process, id},
	} {
		f := strings.Fields(e.mustLkc(args...))
		if len(f) != 3 || f[1] != f[0] || f[2] != f[0] {
			t.Errorf("%s: pid, process group and session %v: want all three equal", name, f)
		}
	}
}

// TestExecContainerRlimitsAndOOMScore: as in runc, `lkc exec COMMAND`
// runs with the container's process.rlimits, and every exec'd process
// whose process.json sets no oomScoreAdj gets the container's, not the
// caller's (a shim's score would make it the OOM killer's last choice).
// A plain exec sets rlimits in the nsenter constructor, which refuses a
// hard limit above the caller's before the process runs.
func TestExecContainerRlimitsAndOOMScore(t *testing.T) {
	e := newEnv(t)
	nofile := []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 321, Hard: 654}}
	id, _ := e.runningPid(func(s *specs.Spec) { s.Process.Rlimits = nofile })
	out := e.mustLkc("exec", id, "grep", "open files", "/proc/self/limits")
	if f := strings.Fields(out); len(f) != 6 || f[3] != "321" || f[4] != "654" {
		t.Errorf("exec COMMAND: want open files 321 654, got %q", out)
	}
	var host unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &host); err != nil {
		t.Fatal(err)
	}
	if !hasEffectiveCap(t, unix.CAP_SYS_RESOURCE) {
		hard := strconv.FormatUint(host.Max+10000, 10)
		process := writeProcess(t, `{"args":["true"],"cwd":"/","user":{"uid":0,"gid":0},`+
			`"rlimits":[{"type":"RLIMIT_NOFILE","soft":100,"hard":`+hard+`}]}`)
		e.failLkc(`^lkc: exec: .*RLIMIT_NOFILE hard `+hard+`.*the host's hard limit is `+
			strconv.FormatUint(host.Max, 10), "exec", "--process", process, id)
	}

	id, _ = e.runningPid(func(s *specs.Spec) {
		adj := 300
		s.Process.Rlimits, s.Process.OOMScoreAdj = nofile, &adj
	})
	out = e.mustLkc("exec", id, "sh", "-c", `grep "open files" /proc/self/limits; cat /proc/self/oom_score_adj`)
	if f := strings.Fields(out); len(f) != 7 || f[3] != "321" || f[4] != "654" || f[6] != "300" {
		t.Errorf("exec COMMAND: want open files 321 654 and oom_score_adj 300, got %q", out)
	}
	process := writeProcess(t, `{"args":["cat","/proc/self/oom_score_adj"],"cwd":"/","user":{"uid":0,"gid":0}}`)
	if out := e.mustLkc("exec", "--process", process, id); strings.TrimSpace(out) != "300" {
		t.Errorf("exec --process without oomScoreAdj: oom_score_adj %q, want the container's 300", out)
	}
}

// writeProcess writes a process.json for `lkc exec --process`.
func writeProcess(t *testing.T, json string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "process.json")
	if err := os.WriteFile(p, []byte(json), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestExecEnvWithoutEquals: --env takes NAME=VALUE; a bare name is refused
// (as runc does and as process.json's env is), not dropped in silence.
func TestExecEnvWithoutEquals(t *testing.T) {
	e := newEnv(t)
	id, _ := e.runningPid(nil)
	e.failLkc(`--env "FOO".*=`, "exec", "--env", "FOO", id, "true")
	if r := e.lkc("exec", "--env", "FOO", id, "true"); r.code != 255 {
		t.Errorf("exec --env FOO: exit %d, want 255", r.code)
	}
}
