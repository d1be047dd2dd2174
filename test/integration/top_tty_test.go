package integration

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// pty is a pseudo-terminal pair whose master side the test reads.
type pty struct {
	master, slave *os.File
	mu            sync.Mutex
	out           bytes.Buffer
}

func openPty(t *testing.T) *pty {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pty: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	unix.IoctlSetWinsize(int(s.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 30, Col: 200})
	p := &pty{master: m, slave: s}
	t.Cleanup(func() { m.Close(); s.Close() })
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := m.Read(buf)
			p.mu.Lock()
			p.out.Write(buf[:n])
			p.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	return p
}

// waitFor waits until the terminal's output since the mark has want.
func (p *pty) waitFor(t *testing.T, mark int, want string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		p.mu.Lock()
		got := p.out.String()[mark:]
		p.mu.Unlock()
		if strings.Contains(got, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("terminal never showed %q; it shows %q", want, got)
		}
	}
}

func (p *pty) len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.Len()
}

// TestTopLiveView: on a terminal top draws full-screen, re-sorts on a
// column's key, and gives the terminal back as it found it (echo, line
// mode, main screen, cursor) when q is typed and when it is signalled.
func TestTopLiveView(t *testing.T) {
	e := newEnv(t)
	id, _ := e.counter()
	for _, quit := range []string{"q", "SIGTERM", "SIGINT"} {
		p := openPty(t)
		before, err := unix.IoctlGetTermios(int(p.slave.Fd()), unix.TCGETS)
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(e.bin, "--root", e.root, "top", "--interval", "100ms")
		cmd.Stdin, cmd.Stdout, cmd.Stderr = p.slave, p.slave, p.slave
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		p.waitFor(t, 0, "\x1b[?1049h")
		p.waitFor(t, 0, id)
		p.waitFor(t, 0, "sort: cpu")
		mark := p.len()
		p.master.WriteString("m")
		p.waitFor(t, mark, "sort: mem")
		p.waitFor(t, mark, "[MEM USAGE / LIMIT]")
		switch quit {
		case "q":
			p.master.WriteString("q")
		case "SIGTERM":
			cmd.Process.Signal(unix.SIGTERM)
		default:
			p.master.WriteString("\x03") // Ctrl-C: the terminal's SIGINT
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("top quit by %s: %v", quit, err)
			}
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			t.Fatalf("top did not quit on %s", quit)
		}
		p.waitFor(t, mark, "\x1b[?25h\x1b[?1049l")
		after, err := unix.IoctlGetTermios(int(p.slave.Fd()), unix.TCGETS)
		if err != nil {
			t.Fatal(err)
		}
		if after.Lflag != before.Lflag || after.Cc != before.Cc {
			t.Errorf("after %s the terminal's modes are %#x %v, were %#x %v", quit, after.Lflag, after.Cc, before.Lflag, before.Cc)
		}
	}
}
