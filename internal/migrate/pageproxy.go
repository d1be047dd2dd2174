package migrate

import (
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"

	"github.com/lkc-containers/lkc/internal/netns"
)

// pageProxy stands between CRIU's page server on the source (listening on
// loopback) and the target's lazy-pages daemon. It admits only the
// receiver's address, counts the pages' bytes, and can abort the transfer:
// closing it disconnects CRIU, which then fails the dump instead of
// waiting forever for a target that died.
type pageProxy struct {
	ln      net.Listener
	backend string // CRIU's page server, 127.0.0.1:port
	allow   net.IP // the receiver
	// pid's network namespace is where CRIU's page server listens when
	// inNetns says so (container.CriuInNetns), else the host's.
	pid     int
	inNetns func() bool
	bytes   atomic.Int64
	mu      sync.Mutex
	conns   []net.Conn
	closed  bool
	wg      sync.WaitGroup
}

// newPageProxy listens on host:0 (the sender's address on the control
// connection) for allow, and picks a loopback port for CRIU free both
// here and in pid's network namespace, where CRIU may run.
func newPageProxy(host string, allow net.IP, pid int, inNetns func() bool) (*pageProxy, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return nil, fmt.Errorf("listening for the page transfer: %w", err)
	}
	backend, err := freeLoopbackPort(pid)
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("finding a port for CRIU's page server: %w", err)
	}
	p := &pageProxy{ln: ln, backend: backend, allow: allow, pid: pid, inNetns: inNetns}
	p.wg.Add(1)
	go p.serve()
	return p, nil
}

// freeLoopbackPort returns a 127.0.0.1 address whose port is free here
// and in pid's network namespace.
func freeLoopbackPort(pid int) (string, error) {
	var err error
	for try := 0; try < 8; try++ {
		var free net.Listener
		if free, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			return "", err
		}
		addr := free.Addr().String()
		free.Close()
		err = netns.Run(pid, func() error {
			l, err := net.Listen("tcp", addr)
			if err == nil {
				l.Close()
			}
			return err
		})
		if err == nil {
			return addr, nil
		}
	}
	return "", err
}

// dial connects to CRIU's page server, in the namespace it listens in.
func (p *pageProxy) dial() (net.Conn, error) {
	if !p.inNetns() {
		return net.Dial("tcp", p.backend)
	}
	var c net.Conn
	err := netns.Run(p.pid, func() (err error) {
		c, err = net.Dial("tcp", p.backend)
		return err
	})
	return c, err
}

// Addr is what the target's lazy-pages daemon dials.
func (p *pageProxy) Addr() string { return p.ln.Addr().String() }

func (p *pageProxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if ta, ok := c.RemoteAddr().(*net.TCPAddr); !ok || !ta.IP.Equal(p.allow) {
			c.Close()
			continue
		}
		b, err := p.dial()
		if err != nil {
			c.Close()
			continue
		}
		if !p.track(c, b) {
			return
		}
		p.wg.Add(2)
		go p.pipe(c, b, true) // pages: CRIU to the target
		go p.pipe(b, c, false)
	}
}

func (p *pageProxy) track(cs ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		for _, c := range cs {
			c.Close()
		}
		return false
	}
	p.conns = append(p.conns, cs...)
	return true
}

// pipe copies src to dst; count marks the direction that carries pages.
func (p *pageProxy) pipe(dst, src net.Conn, count bool) {
	defer p.wg.Done()
	var w io.Writer = dst
	if count {
		w = &countingWriter{w: dst, n: &p.bytes}
	}
	io.Copy(w, src)
	if tc, ok := dst.(*net.TCPConn); ok {
		tc.CloseWrite()
	}
}

// abort unblocks a CRIU page server that no target ever reached: it
// connects and hangs up, so CRIU's accept returns and the dump ends.
func (p *pageProxy) abort() {
	if c, err := p.dial(); err == nil {
		c.Close()
	}
	p.close()
}

func (p *pageProxy) close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	conns := p.conns
	p.mu.Unlock()
	p.ln.Close()
	for _, c := range conns {
		c.Close()
	}
	p.wg.Wait()
}

type countingWriter struct {
	w io.Writer
	n *atomic.Int64
}

func (c *countingWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n.Add(int64(n))
	return n, err
}
