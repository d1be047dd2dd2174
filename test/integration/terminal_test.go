package integration

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/lkc-containers/lkc/internal/console"
)

// onPty starts lkc with a fresh pty of 30x90 as its stdio, as a person at a
// terminal would, and returns the command and the pty master.
func (e *env) onPty(args ...string) (*exec.Cmd, *os.File) {
	e.t.Helper()
	master, slave, err := console.OpenPty()
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { master.Close() })
	defer slave.Close()
	if err := console.SetSize(master, 30, 90); err != nil {
		e.t.Fatal(err)
	}
	cmd := exec.Command(lkcBinary, append([]string{"--root", e.root}, args...)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd, master
}

func TestTerminalRunAttached(t *testing.T) {
	e := newEnv(t)
	b := e.bundle([]string{"sh"}, func(s *specs.Spec) { s.Process.Terminal = true })
	cmd, master := e.onPty("run", "--bundle", b, e.id())
	master.Write([]byte("stty size; tty; echo hi-$((1+1)); exit 3\n"))
	out := readUntil(t, master, "hi-2")
	if !strings.Contains(out, "30 90") || !strings.Contains(out, "/dev/pts/0") {
		t.Errorf("attached run: want the caller's size 30 90 and the container's /dev/pts/0, got %q", out)
	}
	cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != 3 {
		t.Fatalf("attached run: want exit 3, got %d", code)
	}
}

func TestTerminalExecAttached(t *testing.T) {
	e := newEnv(t)
	id, _ := e.runningPid(nil)
	cmd, master := e.onPty("exec", "--tty", id, "sh")
	master.Write([]byte("stty size; echo hi-$((2+2)); exit 5\n"))
	if out := readUntil(t, master, "hi-4"); !strings.Contains(out, "30 90") {
		t.Errorf("attached exec: want size 30 90, got %q", out)
	}
	cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != 5 {
		t.Fatalf("attached exec: want exit 5, got %d", code)
	}
}

func TestTerminalDetachedNeedsSocket(t *testing.T) {
	e := newEnv(t)
	b := e.bundle([]string{"sh"}, func(s *specs.Spec) { s.Process.Terminal = true })
	e.failLkc("detached container needs --console-socket", "run", "-d", "--bundle", b, e.id())
}
