package migrate

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// At start the receiver removes the bundles of uncommitted migrations and
// the bundles it made whose container is gone, and nothing else: not a
// bundle it did not make, not one whose id merely ends in ".pending".
func TestSweep(t *testing.T) {
	root, dir := t.TempDir(), t.TempDir()
	mk := func(path ...string) {
		t.Helper()
		p := filepath.Join(append([]string{dir}, path...)...)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	mk("uncommitted", "config.json")
	mk(pendingDir, "uncommitted")
	mk("orphan", ownerMark)
	mk("orphan", "rootfs", "file")
	mk("foreign", "config.json")
	mk("foo.pending", "config.json")
	mk("foo", "config.json")
	if err := sweep(root, dir); err != nil {
		t.Fatal(err)
	}
	for name, keep := range map[string]bool{"uncommitted": false, pendingDir + "/uncommitted": false, "orphan": false,
		"foreign": true, "foo.pending": true, "foo": true} {
		_, err := os.Lstat(filepath.Join(dir, name))
		if kept := err == nil; kept != keep {
			t.Errorf("%s kept: %v, want %v (%v)", name, kept, keep, err)
		}
	}
}

// serveForTest starts a receiver on loopback and returns its address.
func serveForTest(t *testing.T, o ServeOptions) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o.Root, o.BundleDir = t.TempDir(), t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ln, o) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return ln.Addr().String()
}

// An idle connection does not hold the receiver: another peer
// authenticates at once, and the idle one is cut after the handshake
// deadline. Connections beyond the bound per peer are refused at once.
func TestServeIdleConnections(t *testing.T) {
	addr := serveForTest(t, ServeOptions{Token: testToken, Timeout: 30 * time.Second})
	idle, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	start := time.Now()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	c := newConn(nc, 3*time.Second)
	if err := c.clientHandshake(testToken); err != nil {
		t.Fatalf("handshake beside an idle connection: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("the handshake waited %v for the idle connection", d)
	}
	idle.SetReadDeadline(time.Now().Add(15 * time.Second))
	if _, err := idle.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("idle connection: %v, want it closed by the receiver", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("the idle connection was cut after %v", d)
	}
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for range maxHandshakesPerPeer {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	time.Sleep(100 * time.Millisecond) // all accepted
	extra, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	err = newConn(extra, 2*time.Second).clientHandshake(testToken)
	if !errors.Is(err, errTurnedAway) {
		t.Fatalf("a connection beyond the bound: %v, want it turned away at once", err)
	}
	// A sender's connect tries again until a handshake slot is free.
	s := &session{o: Options{Target: addr, Token: testToken}}
	s.o.defaults()
	done := make(chan error, 1)
	go func() { done <- s.connect(context.Background()) }()
	time.Sleep(300 * time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("connect while the receiver is at its bound returned %v, want it to wait", err)
	default:
	}
	held[0].Close()
	if err := <-done; err != nil {
		t.Fatalf("connect once a slot is free: %v", err)
	}
	s.c.nc.Close()
}

// Twenty senders connecting at once, more than a peer may have in their
// handshake, all get through: those turned away try again.
func TestServeManySendersAtOnce(t *testing.T) {
	addr := serveForTest(t, ServeOptions{Token: testToken, Timeout: 30 * time.Second})
	errs := make(chan error, 20)
	for range 20 {
		go func() {
			s := &session{o: Options{Target: addr, Token: testToken}}
			s.o.defaults()
			err := s.connect(context.Background())
			if err == nil {
				s.c.nc.Close()
			}
			errs <- err
		}()
	}
	for range 20 {
		if err := <-errs; err != nil {
			t.Errorf("a sender among twenty: %v", err)
		}
	}
}
