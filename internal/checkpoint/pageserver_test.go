package checkpoint

import (
	"net"
	"testing"
	"time"
)

func listen(t *testing.T) (net.Listener, int) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return l, l.Addr().(*net.TCPAddr).Port
}

func TestDialPageServerRefused(t *testing.T) {
	l, port := listen(t)
	l.Close()
	_, err := DialPageServer("127.0.0.1", port)
	want := "page server " + l.Addr().String() + ": connection refused: nothing listens there"
	if err == nil || err.Error() != want {
		t.Fatalf("dialing a closed port: %v, want %q", err, want)
	}
}

// Gone tells a page server that closed the connection from one that
// still holds it.
func TestPageServerConnGone(t *testing.T) {
	l, port := listen(t)
	defer l.Close()
	c, err := DialPageServer("127.0.0.1", port)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	peer, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	if c.Gone() {
		t.Fatal("Gone while the page server holds the connection")
	}
	peer.Close()
	deadline := time.Now().Add(10 * time.Second)
	for !c.Gone() {
		if time.Now().After(deadline) {
			t.Fatal("not Gone after the page server closed the connection")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
