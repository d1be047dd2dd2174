package clients

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lkc-containers/lkc/internal/console"
)

// ttyRows and ttyCols are the test terminal's size; a client that passes
// the terminal through shows them inside the container.
const ttyRows, ttyCols = 33, 101

// terminalOutput collects what a client writes on the test's terminal.
type terminalOutput struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (o *terminalOutput) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

// runTTY runs name on a new terminal, as `podman run -it` from a shell
// would: its own session with the terminal as controlling tty and stdio.
// Once the output shows prompt, it types input; it returns everything the
// terminal showed and the exit code.
func runTTY(t *testing.T, env []string, prompt, input, name string, args ...string) (string, int) {
	t.Helper()
	master, slave, err := console.OpenPty()
	if err != nil {
		t.Fatal(err)
	}
	defer master.Close()
	if err := console.SetSize(master, ttyRows, ttyCols); err != nil {
		slave.Close()
		t.Fatal(err)
	}
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	err = cmd.Start()
	slave.Close()
	if err != nil {
		t.Fatal(err)
	}
	out, done := readTerminal(master)
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	if !waitFor(30*time.Second, func() bool { return strings.Contains(out.String(), prompt) }) {
		cmd.Process.Kill()
		<-exited
		t.Fatalf("%s %s: no %q on the terminal after 30s; it shows %q", name, strings.Join(args, " "), prompt, out.String())
	}
	if _, err := master.Write([]byte(input)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
	case <-time.After(cmdTimeout):
		cmd.Process.Kill()
		<-exited
		t.Fatalf("%s %s: still running after %v; the terminal shows %q", name, strings.Join(args, " "), cmdTimeout, out.String())
	}
	// The reader ends when the last slave fd closes, which a leftover
	// process could keep open: don't wait for it forever.
	select {
	case <-done:
	case <-time.After(2 * time.Second):
	}
	return out.String(), cmd.ProcessState.ExitCode()
}

// readTerminal collects what the terminal shows until its last slave fd
// closes (the read fails with EIO), then closes done.
func readTerminal(master *os.File) (*terminalOutput, chan struct{}) {
	out := &terminalOutput{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		b := make([]byte, 4096)
		for {
			n, err := master.Read(b)
			out.mu.Lock()
			out.buf.Write(b[:n])
			out.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	return out, done
}
