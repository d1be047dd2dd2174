package daemonapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/hostconf"
)

// serve starts a server with handle in a temporary directory.
func serve(t *testing.T, handle Handler) string {
	t.Helper()
	return serveWith(t, &Server{Handle: handle})
}

// serveWith is serve of s, whose Build and Logf it sets.
func serveWith(t *testing.T, s *Server) string {
	t.Helper()
	dir := t.TempDir()
	l, err := net.ListenUnix("unixpacket", &net.UnixAddr{Name: filepath.Join(dir, SocketName), Net: "unixpacket"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.Build, s.Logf = "test-build", t.Logf
	done := make(chan error)
	go func() { done <- s.Serve(ctx, l) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return dir
}

func TestCallsAndErrorClasses(t *testing.T) {
	dir := serve(t, func(_ context.Context, op string, b json.RawMessage, _ Peer) (any, error) {
		switch op {
		case OpAdopt:
			var a Adopt
			if err := Unbody(b, &a); err != nil {
				return nil, err
			}
			return &AdoptReply{Slot: 3, Gen: 2, ProcDir: a.Root + "/" + a.ID, Features: a.Features}, nil
		case OpRelease:
			return nil, fmt.Errorf("release x: %w", ErrNotExist)
		}
		return nil, Errorf(ClassNotSupported, "unknown operation "+op)
	})
	cl, err := Dial(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if cl.Version != Version || cl.Build != "test-build" {
		t.Errorf("hello: version %d build %q", cl.Version, cl.Build)
	}
	r, err := cl.Adopt("/root", "c1", hostconf.Features{Proc: true})
	if err != nil || r.Slot != 3 || r.Gen != 2 || r.ProcDir != "/root/c1" || !r.Features.Proc {
		t.Errorf("adopt: %+v, %v", r, err)
	}
	if err := cl.Release("/root", "c1", 0); !errors.Is(err, ErrNotExist) || err.Error() != "release x: does not exist" {
		t.Errorf("release: %v, want a not-exist error", err)
	}
	if err := cl.Reload(); !errors.Is(err, ErrNotSupported) {
		t.Errorf("reload: %v, want not-supported", err)
	}
	var r2 AdoptReply
	cl2, err := DialCall(dir, OpAdopt, &Adopt{Container{"/root", "c2"}, hostconf.Features{Proc: true}}, &r2)
	if err != nil || r2.ProcDir != "/root/c2" {
		t.Errorf("adopt behind the hello: %+v, %v", r2, err)
	}
	if err := cl2.Release("/root", "c2", 0); !errors.Is(err, ErrNotExist) {
		t.Errorf("release after DialCall: %v, want not-exist", err)
	}
	cl2.Close()
	cl3, err := DialCall(dir, OpRelease, &Release{Container{"/root", "c3"}, 1}, nil)
	if cl3 == nil || !errors.Is(err, ErrNotExist) {
		t.Errorf("DialCall of a failing release: %v, %v; want the client and a not-exist error", cl3, err)
	}
	if cl3 != nil {
		cl3.Close()
	}
}

// TestPostServedAfterHangUp: a request sent by a client that hung up
// without reading the answers (Post, the end of lkc run's release) is
// still served, with its body, although the answer to the hello before
// it found no one: the client is gone before the server accepts.
func TestPostServedAfterHangUp(t *testing.T) {
	dir := t.TempDir()
	l, err := net.ListenUnix("unixpacket", &net.UnixAddr{Name: filepath.Join(dir, SocketName), Net: "unixpacket"})
	if err != nil {
		t.Fatal(err)
	}
	if err := Post(dir, OpRelease, &Release{Container{"/root", "c1"}, 7}); err != nil {
		t.Fatal(err)
	}
	got := make(chan Release, 1)
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{Build: "test-build", Logf: t.Logf, Handle: func(_ context.Context, op string, b json.RawMessage, _ Peer) (any, error) {
		var r Release
		if err := Unbody(b, &r); err != nil || op != OpRelease {
			t.Errorf("request %s %s: %v", op, b, err)
		}
		got <- r
		return nil, nil
	}}
	done := make(chan error)
	go func() { done <- s.Serve(ctx, l) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	select {
	case r := <-got:
		if r.Root != "/root" || r.ID != "c1" || r.Gen != 7 {
			t.Errorf("served %+v, want /root c1 gen 7", r)
		}
	case <-time.After(5 * time.Second):
		t.Error("the request of a client that hung up was not served")
	}
	if err := Post(t.TempDir(), OpRelease, &Release{}); err == nil {
		t.Error("Post without a daemon: no error")
	}
}

// TestRequestsServedPastReset: a client that sends hello and a request
// and hangs up once the answer to its hello is in its queue, unread (Post
// racing the server), leaves the server's socket with ECONNRESET ahead of
// the request; the request is served all the same.
func TestRequestsServedPastReset(t *testing.T) {
	got := make(chan Release, 1)
	dir := serve(t, func(_ context.Context, op string, b json.RawMessage, _ Peer) (any, error) {
		var r Release
		if err := Unbody(b, &r); err != nil || op != OpRelease {
			t.Errorf("request %s %s: %v", op, b, err)
		}
		got <- r
		return nil, nil
	})
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Connect(fd, &unix.SockaddrUnix{Name: filepath.Join(dir, SocketName)}); err != nil {
		unix.Close(fd)
		t.Fatal(err)
	}
	hello, err := request(OpHello, 1, &Hello{Versions: Versions})
	if err != nil {
		t.Fatal(err)
	}
	// The request goes in only once the server answered hello: it then
	// sits behind the reset the close below makes.
	if _, err := unix.Write(fd, hello); err != nil {
		t.Fatal(err)
	}
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	if n, err := unix.Poll(pfd, 5000); n != 1 || err != nil {
		t.Fatalf("no answer to hello: %d, %v", n, err)
	}
	msg, err := request(OpRelease, 2, &Release{Container{"/root", "c1"}, 7})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := unix.Write(fd, msg); err != nil {
		t.Fatal(err)
	}
	unix.Close(fd)
	select {
	case r := <-got:
		if r.Root != "/root" || r.ID != "c1" || r.Gen != 7 {
			t.Errorf("served %+v, want /root c1 gen 7", r)
		}
	case <-time.After(5 * time.Second):
		t.Error("the request behind the reset was not served")
	}
}

func TestNotRunning(t *testing.T) {
	if _, err := Dial(t.TempDir()); !errors.Is(err, ErrNotRunning) {
		t.Errorf("Dial of an empty directory: %v, want ErrNotRunning", err)
	}
}

// raw sends one packet without hello's help and returns the answer.
func raw(t *testing.T, dir string, packets ...[]byte) []Response {
	t.Helper()
	c, err := net.DialUnix("unixpacket", nil, &net.UnixAddr{Name: filepath.Join(dir, SocketName), Net: "unixpacket"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var out []Response
	buf := make([]byte, MaxMessage+1)
	for _, p := range packets {
		if _, err := c.Write(p); err != nil {
			t.Fatal(err)
		}
		n, err := c.Read(buf)
		if err != nil || n == 0 {
			t.Fatalf("no answer to %.40q: %v", p, err)
		}
		var r Response
		if err := json.Unmarshal(buf[:n], &r); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

func TestProtocolRefusals(t *testing.T) {
	dir := serve(t, func(context.Context, string, json.RawMessage, Peer) (any, error) { return "ok", nil })
	hello := []byte(`{"v":1,"op":"hello","seq":1,"body":{"versions":[1]}}`)
	for _, tc := range []struct {
		name    string
		packets [][]byte
		class   string
		msg     string
	}{
		{"unknown version offered", [][]byte{[]byte(`{"v":1,"op":"hello","seq":1,"body":{"versions":[7,9]}}`)}, ClassVersion, "speaks protocol 1, the client offers [7 9]"},
		{"request of an unknown version", [][]byte{hello, []byte(`{"v":2,"op":"status","seq":2}`)}, ClassVersion, "unknown protocol version 2"},
		{"no hello", [][]byte{[]byte(`{"v":1,"op":"status","seq":1}`)}, ClassInvalid, "first request must be hello"},
		{"not JSON", [][]byte{[]byte(`{"v":`)}, ClassInvalid, "malformed message"},
		{"oversized", [][]byte{hello, []byte(`{"v":1,"op":"status","seq":2,"body":"` + strings.Repeat("x", MaxMessage) + `"}`)}, ClassInvalid, "larger than 65536"},
	} {
		rs := raw(t, dir, tc.packets...)
		last := rs[len(rs)-1]
		if last.Class != tc.class || !strings.Contains(last.Error, tc.msg) {
			t.Errorf("%s: answer %+v, want class %s and %q", tc.name, last, tc.class, tc.msg)
		}
	}
	if rs := raw(t, dir, hello, []byte(`{"v":1,"op":"status","seq":5}`)); rs[1].Seq != 5 || string(rs[1].Body) != `"ok"` {
		t.Errorf("a good exchange: %+v", rs)
	}
}

func TestClientRefusesOversizedRequest(t *testing.T) {
	dir := serve(t, func(context.Context, string, json.RawMessage, Peer) (any, error) { return nil, nil })
	cl, err := Dial(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	err = cl.Call(OpAdopt, &Adopt{Container: Container{Root: strings.Repeat("r", MaxMessage)}}, nil)
	if !errors.Is(err, ErrTooLarge) {
		t.Errorf("oversized adopt: %v, want ErrTooLarge", err)
	}
}

// TestDialToDyingDaemonIsNotRunning: a connection made in the backlog of a
// daemon whose listener then closes (both processes killed, or a stop
// draining) is reset before any answer: the daemon is not running, so
// Ensure may start one, rather than an error of the call.
func TestDialToDyingDaemonIsNotRunning(t *testing.T) {
	dir := t.TempDir()
	l, err := net.ListenUnix("unixpacket", &net.UnixAddr{Name: filepath.Join(dir, SocketName), Net: "unixpacket"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	cl, err := Connect(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	l.Close()
	if hello, _ := cl.Greet(OpStatus, nil, nil); !errors.Is(hello, ErrNotRunning) {
		t.Fatalf("hello to a daemon that went away: %v, want ErrNotRunning", hello)
	}
}
