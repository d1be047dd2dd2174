package integration

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// withNoPrograms binds a directory of the host at /out holding two files
// that pass every check lkc makes before execve and fail there: /out/bad,
// executable but neither a binary nor a script (ENOEXEC), and
// /out/badinterp, a script whose interpreter is missing (ENOENT).
func withNoPrograms(t *testing.T) func(*specs.Spec) {
	t.Helper()
	out := t.TempDir()
	for name, data := range map[string]string{"bad": "no program\n", "badinterp": "#!/nonexistent\necho hi\n"} {
		if err := os.WriteFile(filepath.Join(out, name), []byte(data), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return func(s *specs.Spec) {
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/out", Type: "bind", Source: out, Options: []string{"rbind", "rw"}})
	}
}

// TestExecFailingExecve: as in runc (since 1.2), `lkc exec` into a running
// container waits until its process has exec'd, so an execve that fails
// after every check before it fails the exec itself, with one line naming
// the executable and the error and exit 255: detached or not, with a
// terminal (served by lkc, or sent to --console-socket) or without, and
// it writes no --pid-file. Nothing of the process is left in the
// container. Both ways of finishing an exec are tried: the constructor's,
// and Go's init (which the container's oom score makes the exec take).
func TestExecFailingExecve(t *testing.T) {
	for _, goInit := range []bool{false, true} {
		t.Run(map[bool]string{false: "constructor", true: "go init"}[goInit], func(t *testing.T) {
			e := newEnv(t)
			noPrograms := withNoPrograms(t)
			id, init := e.runningPid(func(s *specs.Spec) {
				noPrograms(s)
				if goInit {
					oom := 100
					s.Process.OOMScoreAdj = &oom
				}
			})
			_, sock := consoleSocket(t)
			for _, c := range []struct {
				name string
				args []string
			}{
				{"foreground", nil},
				{"detached", []string{"-d"}},
				{"foreground, tty", []string{"-t"}},
				{"detached, tty", []string{"-d", "-t", "--console-socket", sock}},
			} {
				for exe, want := range map[string]string{
					"/out/bad":       "exec /out/bad: exec format error",
					"/out/badinterp": "exec /out/badinterp: no such file or directory",
				} {
					pidFile := filepath.Join(t.TempDir(), "pid")
					args := append(append([]string{"exec", "--pid-file", pidFile}, c.args...), id, exe)
					msg := "^lkc: exec: container init: " + regexp.QuoteMeta(want) + "$"
					if c.name == "foreground, tty" {
						checkFailsOnPty(e, args, msg)
					} else {
						r := e.lkc(args...)
						if r.code != 255 || r.stdout != "" {
							t.Errorf("%s %s: %v, want exit 255 and no output", c.name, exe, r)
						}
						e.checkOneLineFailure(r, msg, args)
					}
					if _, err := os.Stat(pidFile); err == nil {
						t.Errorf("%s %s: exec wrote a pid file for a process that never ran", c.name, exe)
					}
				}
			}
			var pids []int
			json.Unmarshal([]byte(e.mustLkc("ps", "--format", "json", id)), &pids)
			if !slices.Equal(pids, []int{init}) {
				t.Errorf("container processes after the failed execs: %v, want only init %d", pids, init)
			}
			if out := e.mustLkc("exec", id, "echo", "still-works"); out != "still-works\n" {
				t.Errorf("exec after the failed ones: %q", out)
			}
		})
	}
}

// checkFailsOnPty runs lkc with a terminal as its stdio and checks that
// it exits 255 with one line matching want.
func checkFailsOnPty(e *env, args []string, want string) {
	e.t.Helper()
	cmd, master := e.onPty(args...)
	cmd.Wait()
	out := strings.TrimRight(readUntil(e.t, master, "\n"), "\r\n")
	if code := cmd.ProcessState.ExitCode(); code != 255 {
		e.t.Errorf("lkc %s on a terminal: exit %d, want 255", strings.Join(args, " "), code)
	}
	if !regexp.MustCompile(want).MatchString(out) {
		e.t.Errorf("lkc %s on a terminal: %q, want one line matching %q", strings.Join(args, " "), out, want)
	}
}

// TestRunMissingExecutable: as in runc, `run` (attached or detached) and
// `create` of a container whose executable is missing fail before the
// container exists, with runc's words for it, and leave nothing behind;
// an executable that fails only in execve (ENOEXEC) fails `start` (runc
// 1.1 reports success there and leaves the error on the container's
// stderr) and leaves a stopped container that `delete` removes.
func TestRunMissingExecutable(t *testing.T) {
	e := newEnv(t)
	const want = `^lkc: %s: container init: exec "/nonexistent": stat /nonexistent: no such file or directory$`
	b := e.bundle([]string{"/nonexistent"}, nil)
	for _, args := range [][]string{{"run"}, {"run", "-d"}, {"create"}} {
		id := e.id()
		e.failLkc(strings.Replace(want, "%s", args[0], 1), append(args, "--bundle", b, id)...)
		e.failLkc("does not exist", "state", id)
	}
	id := e.id()
	e.mustLkc("create", "--bundle", e.bundle([]string{"/out/bad"}, withNoPrograms(t)), id)
	e.failLkc(`^lkc: start: container `+id+`: starting: exec /out/bad: exec format error$`, "start", id)
	if st := e.state(id); st["status"] != "stopped" {
		t.Errorf("container after a failed start: %v, want stopped", st["status"])
	}
	e.mustLkc("delete", id)
}
