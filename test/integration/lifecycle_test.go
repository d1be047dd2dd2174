package integration

import (
	"bufio"
	"os/exec"
	"strings"
	"syscall"
	"testing"
)

func TestRunShowsIsolation(t *testing.T) {
	e := newEnv(t)
	r := e.run([]string{"sh", "-c", "echo pid=$$; hostname; cat /proc/self/cgroup | grep -c ':/$'; ip link 2>/dev/null | grep -c '^[0-9]'"}, nil)
	if r.code != 0 {
		t.Fatalf("run: %v", r)
	}
	lines := strings.Fields(r.stdout)
	if len(lines) < 2 || lines[0] != "pid=1" || lines[1] != "lkc" {
		t.Fatalf("want pid 1 and hostname lkc, got %q", r.stdout)
	}
}

func TestRunExitCode(t *testing.T) {
	e := newEnv(t)
	if r := e.run([]string{"sh", "-c", "exit 42"}, nil); r.code != 42 {
		t.Errorf("exit 42: got %v", r)
	}
}

// startRun starts `lkc run` of a container in the background and waits
// until the container prints its first line (it must print one when ready).
func (e *env) startRun(args []string) (*exec.Cmd, string) {
	e.t.Helper()
	b := e.bundle(args, nil)
	id := e.id()
	cmd := exec.Command(lkcBinary, "--root", e.root, "run", "--bundle", b, id)
	out, err := cmd.StdoutPipe()
	if err != nil {
		e.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	if _, err := bufio.NewReader(out).ReadString('\n'); err != nil {
		e.t.Fatalf("container %s printed no ready line: %v", id, err)
	}
	return cmd, id
}

func TestRunExitCodeOfSignalDeath(t *testing.T) {
	e := newEnv(t)
	cmd, id := e.startRun([]string{"sh", "-c", "echo ready; exec sleep 100"})
	e.mustLkc("kill", id, "KILL")
	err := cmd.Wait()
	if cmd.ProcessState.ExitCode() != 137 {
		t.Fatalf("run after SIGKILL: want exit 137, got %v", err)
	}
}

func TestRunForwardsSignals(t *testing.T) {
	e := newEnv(t)
	cmd, _ := e.startRun([]string{"sh", "-c", "trap 'exit 7' TERM; echo ready; while :; do sleep 0.1; done"})
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != 7 {
		t.Fatalf("SIGTERM to lkc run: want the container's trap exit 7, got %d", code)
	}
}
