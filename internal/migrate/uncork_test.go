package migrate

import (
	"bufio"
	"encoding/binary"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestMain lets the test binary play CRIU's ends of a lazy-pages
// connection (corkedPeer), as a child process of the test.
func TestMain(m *testing.M) {
	if role := os.Getenv("LKC_TEST_CORKED_PEER"); role != "" {
		if err := corkedPeer(role, os.Getenv("LKC_TEST_CORKED_ADDR")); err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// CRIU's page-server commands, as corkedPeer uses them.
const (
	psGet   = 1
	psClose = 2
)

// corkedPeer does what CRIU does on its end of a lazy-pages connection:
// the page server ("server", listening on addr) and the lazy-pages daemon
// ("daemon", connecting to addr) cork their sockets, push each page
// request and reply with TCP_NODELAY, and not the close request and its
// status answer. The daemon prints how long that last exchange took, in
// milliseconds.
func corkedPeer(role, addr string) error {
	var c net.Conn
	if role == "server" {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return err
		}
		os.Stdout.WriteString("ready\n")
		if c, err = ln.Accept(); err != nil {
			return err
		}
	} else {
		var err error
		if c, err = net.Dial("tcp", addr); err != nil {
			return err
		}
	}
	raw, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		return err
	}
	sockopt := func(opt, v int) {
		raw.Control(func(fd uintptr) { unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, opt, v) })
	}
	// Go's sockets start with TCP_NODELAY; CRIU's start corked.
	sockopt(unix.TCP_NODELAY, 0)
	sockopt(unix.TCP_CORK, 1)
	hdr := make([]byte, 24)
	if role == "server" {
		for {
			if _, err := io.ReadFull(c, hdr); err != nil {
				return err
			}
			if binary.LittleEndian.Uint32(hdr) == psClose {
				c.Write([]byte{0, 0, 0, 0})
				io.Copy(io.Discard, c)
				return nil
			}
			c.Write(append(hdr, make([]byte, 4096)...))
			sockopt(unix.TCP_NODELAY, 1)
		}
	}
	binary.LittleEndian.PutUint32(hdr, psGet)
	c.Write(hdr)
	sockopt(unix.TCP_NODELAY, 1)
	if _, err := io.ReadFull(c, make([]byte, 24+4096)); err != nil {
		return err
	}
	start := time.Now()
	binary.LittleEndian.PutUint32(hdr, psClose)
	c.Write(hdr)
	if _, err := io.ReadFull(c, make([]byte, 4)); err != nil {
		return err
	}
	os.Stdout.WriteString(strconv.FormatInt(time.Since(start).Milliseconds(), 10) + "\n")
	return c.Close()
}

// The last exchange of a post-copy (the lazy-pages daemon's close request
// and the page server's answer) crosses the page tunnel at once, though
// CRIU's processes on both sides corked their sockets: it used to wait
// out the kernel's 200 ms cork ceiling on each side.
func TestPageTunnelUncorksCRIU(t *testing.T) {
	if fd, err := unix.PidfdOpen(os.Getpid(), 0); err != nil {
		t.Skipf("no pidfd_open here: %v", err)
	} else if dup, err := unix.PidfdGetfd(fd, 0, 0); err != nil {
		unix.Close(fd)
		t.Skipf("no pidfd_getfd here: %v", err)
	} else {
		unix.Close(dup)
		unix.Close(fd)
	}
	backend := listen(t)
	addr := backend.Addr().String()
	backend.Close()
	server := startPeer(t, "server", addr)
	line, err := bufio.NewReader(server).ReadString('\n')
	if err != nil || line != "ready\n" {
		t.Fatalf("the page server did not start: %q %v", line, err)
	}
	secret := []byte("a-session-page-secret-0123456789")
	proxy := listen(t)
	go func() {
		c, err := proxy.Accept()
		if err != nil {
			return
		}
		tc := newConn(c, 0)
		if err := tc.serverHandshake(secret); err != nil {
			c.Close()
			return
		}
		b, err := net.Dial("tcp", addr)
		if err != nil {
			c.Close()
			return
		}
		splice(tc, b, nil)
	}()
	tun, err := newPageTunnel(proxy.Addr(), strconv.Itoa(proxy.Addr().(*net.TCPAddr).Port), secret)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tun.close)
	out, err := io.ReadAll(startPeer(t, "daemon", tun.Addr()))
	ms, perr := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil || perr != nil {
		t.Fatalf("the lazy-pages daemon said %q: %v %v", out, err, perr)
	}
	if ms >= 150 {
		t.Errorf("the close request and its answer took %d ms through the tunnel, want them uncorked (under 150)", ms)
	}
}

// startPeer runs corkedPeer(role, addr) in a child process and returns
// its stdout.
func startPeer(t *testing.T, role, addr string) io.Reader {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "LKC_TEST_CORKED_PEER="+role, "LKC_TEST_CORKED_ADDR="+addr)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return out
}
