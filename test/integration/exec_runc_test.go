package integration

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
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
	process := filepath.Join(t.TempDir(), "process.json")
	err := os.WriteFile(process, []byte(`{"args":["sh","-c",`+strconv.Quote(sessionProbe)+`],"cwd":"/",`+
		`"env":["PATH=/bin"],"user":{"uid":0,"gid":0},"oomScoreAdj":10}`), 0o644)
	if err != nil {
		t.Fatal(err)
	}
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
