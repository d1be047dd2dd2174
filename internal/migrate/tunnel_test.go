package migrate

import (
	"bytes"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// A page connection crosses the tunnel both ways, sealed: the lazy-pages
// daemon's request reaches the page server and its pages come back, and
// neither appears on the wire in the clear. A tunnel without the
// session's secret never reaches the page server.
func TestPageTunnel(t *testing.T) {
	pages := bytes.Repeat([]byte("PAGE-CONTENT"), 100000)
	backend := listen(t)
	go func() {
		for {
			c, err := backend.Accept()
			if err != nil {
				return
			}
			req := make([]byte, 7)
			if _, err := io.ReadFull(c, req); err == nil && string(req) == "GETPAGE" {
				c.Write(pages)
			}
			c.Close()
		}
	}()
	secret := []byte("a-session-page-secret-0123456789")
	proxy := listen(t)
	var wire lockedBuffer
	var sent atomic.Int64
	spliced := make(chan struct{}, 4)
	go func() {
		for {
			c, err := proxy.Accept()
			if err != nil {
				return
			}
			go func() {
				rec := &recorder{Conn: c}
				tc := newConn(rec, 0)
				if err := tc.serverHandshake(secret); err != nil {
					c.Close()
					return
				}
				b, err := net.Dial("tcp", backend.Addr().String())
				if err != nil {
					c.Close()
					return
				}
				splice(tc, b, &sent)
				wire.Write(rec.bytes())
				spliced <- struct{}{}
			}()
		}
	}()
	port := strconv.Itoa(proxy.Addr().(*net.TCPAddr).Port)
	fetch := func(secret []byte) []byte {
		tun, err := newPageTunnel(proxy.Addr(), port, secret)
		if err != nil {
			t.Fatal(err)
		}
		defer tun.close()
		c, err := net.Dial("tcp", tun.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Write([]byte("GETPAGE"))
		got, _ := io.ReadAll(c)
		return got
	}
	if got := fetch(secret); !bytes.Equal(got, pages) {
		t.Fatalf("got %d bytes through the tunnel, want the %d of the pages", len(got), len(pages))
	}
	<-spliced
	if sent.Load() != int64(len(pages)) {
		t.Errorf("counted %d page bytes, want %d", sent.Load(), len(pages))
	}
	if w := wire.String(); len(w) < len(pages) || strings.Contains(w, "PAGE-CONTENT") {
		t.Errorf("%d bytes on the wire for %d of pages, in the clear: %v", len(w), len(pages), strings.Contains(w, "PAGE-CONTENT"))
	}
	if got := fetch([]byte("not-the-session-secret-987654321")); len(got) != 0 {
		t.Fatalf("a tunnel without the secret got %q", got[:min(len(got), 40)])
	}
	if _, err := newPageTunnel(proxy.Addr(), "99999", secret); err == nil {
		t.Error("a page server port out of range was accepted")
	}
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) {
	l.mu.Lock()
	l.b.Write(p)
	l.mu.Unlock()
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
