package daemonapi

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"testing"
	"time"
)

// serveConns counts the goroutines serving a control connection.
func serveConns() int {
	var b strings.Builder
	pprof.Lookup("goroutine").WriteTo(&b, 1)
	return strings.Count(b.String(), "daemonapi.(*Server).serveConn")
}

// waitServeConns waits until n connections are served, and fails the test
// when that does not come within wait.
func waitServeConns(t *testing.T, n int, wait time.Duration, what string) {
	t.Helper()
	for end := time.Now().Add(wait); serveConns() != n; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("%s: %d connections still served after %v, want %d", what, serveConns(), wait, n)
		}
	}
}

// TestIdleConnectionsClosed: a peer that connects and sends nothing, or
// stops sending between requests, is hung up on once the first-request or
// the idle timeout passes, and its goroutine ends; a client that keeps
// within them, or waits for a slow answer, is served.
func TestIdleConnectionsClosed(t *testing.T) {
	// Wide enough that a loaded machine's scheduling (CI runs the unit
	// tests beside two emulated guests) never spans the idle timeout
	// between a reply and the next request.
	const first, idle = 300 * time.Millisecond, 2 * time.Second
	dir := serveWith(t, &Server{FirstRequestTimeout: first, IdleTimeout: idle,
		Handle: func(_ context.Context, op string, _ json.RawMessage, _ Peer) (any, error) {
			if op == OpReload {
				time.Sleep(2 * idle) // an answer slower than the idle timeout
			}
			return &Status{Build: op}, nil
		}})
	base := serveConns()

	c, err := net.DialUnix("unixpacket", nil, &net.UnixAddr{Name: filepath.Join(dir, SocketName), Net: "unixpacket"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	waitServeConns(t, base+1, 5*time.Second, "a silent peer connected")
	start := time.Now()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := c.Read(make([]byte, 64)); n != 0 || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a silent peer read %d bytes, %v; want the connection closed", n, err)
	}
	if waited := time.Since(start); waited > first+2*time.Second {
		t.Errorf("a silent peer was closed after %v, want about %v", waited, first)
	}
	waitServeConns(t, base, 2*time.Second, "a silent peer closed")

	cl, err := Dial(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	time.Sleep(idle / 2) // past the first-request timeout, within the idle one
	if err := cl.Call(OpStatus, nil, nil); err != nil {
		t.Fatalf("a request after %v between requests: %v", idle/2, err)
	}
	if err := cl.Call(OpReload, nil, nil); err != nil {
		t.Fatalf("a request answered after %v: %v", 2*idle, err)
	}
	time.Sleep(idle + idle/2)
	waitServeConns(t, base, 5*time.Second, "a client idle past the idle timeout")
	if err := cl.Call(OpStatus, nil, nil); err == nil {
		t.Error("a client idle past the idle timeout was still served")
	}
}
