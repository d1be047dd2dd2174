package integration

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// consoleSocket listens on a unix socket for a console master.
func consoleSocket(t *testing.T) (*net.UnixListener, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "console.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l, path
}

// recvMaster accepts lkc's connection and receives the pty master it sends
// with SCM_RIGHTS, as a non-blocking file so reads can time out.
func recvMaster(t *testing.T, l *net.UnixListener) *os.File {
	t.Helper()
	l.SetDeadline(time.Now().Add(settle))
	conn, err := l.AcceptUnix()
	if err != nil {
		t.Fatalf("accepting lkc's console connection: %v", err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(settle))
	buf, oob := make([]byte, 4096), make([]byte, unix.CmsgSpace(4))
	_, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
	if err != nil {
		t.Fatalf("receiving the console fd: %v", err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		t.Fatalf("console message: want one control message, got %d (%v)", len(msgs), err)
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		t.Fatalf("console message: want one fd, got %v (%v)", fds, err)
	}
	if err := unix.SetNonblock(fds[0], true); err != nil {
		t.Fatal(err)
	}
	master := os.NewFile(uintptr(fds[0]), "pty-master")
	t.Cleanup(func() { master.Close() })
	return master
}

// readUntil reads the master until everything read contains want.
func readUntil(t *testing.T, master *os.File, want string) string {
	t.Helper()
	var got strings.Builder
	buf := make([]byte, 4096)
	master.SetReadDeadline(time.Now().Add(settle))
	for !strings.Contains(got.String(), want) {
		n, err := master.Read(buf)
		got.Write(buf[:n])
		if err != nil {
			t.Fatalf("reading the console for %q: %v; read %q", want, err, got.String())
		}
	}
	return got.String()
}

// createWithConsole creates a terminal container and returns its id and
// the pty master lkc handed over.
func (e *env) createWithConsole(args []string, mutate func(*specs.Spec)) (string, *os.File) {
	e.t.Helper()
	l, sock := consoleSocket(e.t)
	b := e.bundle(args, func(s *specs.Spec) {
		s.Process.Terminal = true
		if mutate != nil {
			mutate(s)
		}
	})
	id := e.id()
	e.mustLkc("create", "--console-socket", sock, "--bundle", b, id)
	return id, recvMaster(e.t, l)
}

func TestConsoleSocketInteractive(t *testing.T) {
	e := newEnv(t)
	id, master := e.createWithConsole([]string{"sh"}, nil)
	e.mustLkc("start", id)
	if _, err := master.Write([]byte("echo hi-$((1+2))\n")); err != nil {
		t.Fatal(err)
	}
	// The echoed command line holds "$((1+2))", not "hi-3": only the shell's
	// output can match.
	readUntil(t, master, "hi-3")
	master.Write([]byte("exit 3\n"))
	e.waitStatus(id, "stopped")
}

func TestConsoleSizeAndTTY(t *testing.T) {
	e := newEnv(t)
	script := `stty size; test -t 0 && test -t 1 && echo stdin-is-tty; tty; readlink /proc/self/fd/0; read x`
	id, master := e.createWithConsole([]string{"sh", "-c", script}, func(s *specs.Spec) {
		s.Process.ConsoleSize = &specs.Box{Height: 40, Width: 100}
	})
	e.mustLkc("start", id)
	// One read up to the last line: a read may return several lines at once.
	out := readUntil(t, master, "/dev/pts/0\r\n/dev/pts/0")
	if !strings.Contains(out, "40 100\r\n") || !strings.Contains(out, "stdin-is-tty") {
		t.Errorf("want stty size 40 100 and a tty on stdin, got %q", out)
	}
	master.Write([]byte("\n"))
	e.waitStatus(id, "stopped")
}

func TestConsoleTerminalWithoutSocket(t *testing.T) {
	e := newEnv(t)
	b := e.bundle([]string{"sh"}, func(s *specs.Spec) { s.Process.Terminal = true })
	id := e.id()
	e.failLkc("console-socket", "create", "--bundle", b, id)
	if r := e.lkc("state", id); r.code == 0 {
		t.Errorf("a refused create left container %s: %v", id, r)
	}
}

func TestConsoleSocketMissing(t *testing.T) {
	e := newEnv(t)
	b := e.bundle([]string{"sh"}, func(s *specs.Spec) { s.Process.Terminal = true })
	id := e.id()
	e.failLkc("console socket", "create", "--console-socket", filepath.Join(t.TempDir(), "nothing.sock"), "--bundle", b, id)
	if r := e.lkc("state", id); r.code == 0 {
		t.Errorf("a failed create left container %s: %v", id, r)
	}
}
