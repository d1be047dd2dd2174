package migrate

import (
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lkc-containers/lkc/internal/netns"
)

// pageProxy stands between CRIU's page server on the source (listening on
// loopback) and the target's page tunnel (pageTunnel), which carries the
// lazy-pages daemon's connection sealed with the session's page secret.
// It admits only the receiver's address and tunnels that prove the
// secret, counts the pages' bytes, and can abort the transfer: closing it
// disconnects CRIU, which then fails the dump instead of waiting forever
// for a target that died.
type pageProxy struct {
	ln      net.Listener
	backend string // CRIU's page server, 127.0.0.1:port
	allow   net.IP // the receiver
	// pid's network namespace is where CRIU's page server listens when
	// inNetns says so (cr.CriuInNetns), else the host's.
	pid     int
	inNetns func() bool
	secret  []byte // the session's page secret (conn.pages)
	bytes   atomic.Int64
	conns   connSet
	wg      sync.WaitGroup
}

// newPageProxy listens on host:0 (the sender's address on the control
// connection) for allow, and picks a loopback port for CRIU free both
// here and in pid's network namespace, where CRIU may run.
func newPageProxy(host string, allow net.IP, pid int, inNetns func() bool, secret []byte) (*pageProxy, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return nil, fmt.Errorf("listening for the page transfer: %w", err)
	}
	backend, err := freeLoopbackPort(pid)
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("finding a port for CRIU's page server: %w", err)
	}
	p := &pageProxy{ln: ln, backend: backend, allow: allow, pid: pid, inNetns: inNetns, secret: secret}
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
		if !p.conns.track(c) {
			return
		}
		p.wg.Add(1)
		go p.tunnel(c)
	}
}

// tunnel serves one tunnel: once it proves the page secret, CRIU's page
// server gets a connection. An unproven one never reaches CRIU, whose
// page server would end with it.
func (p *pageProxy) tunnel(c net.Conn) {
	defer p.wg.Done()
	tc := newConn(c, 0)
	c.SetDeadline(time.Now().Add(tunnelHandshake))
	if err := tc.serverHandshake(p.secret); err != nil {
		c.Close()
		return
	}
	c.SetDeadline(time.Time{})
	b, err := p.dial()
	if err != nil {
		c.Close()
		return
	}
	if !p.conns.track(b) {
		c.Close()
		return
	}
	splice(tc, b, &p.bytes)
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
	if p.conns.closeAll() {
		p.ln.Close()
		p.wg.Wait()
	}
}

// connSet holds a relay's connections, to close them all at once.
type connSet struct {
	mu     sync.Mutex
	conns  []net.Conn
	closed bool
}

// track adds cs, or closes them and returns false once the set is closed.
func (s *connSet) track(cs ...net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		for _, c := range cs {
			c.Close()
		}
		return false
	}
	s.conns = append(s.conns, cs...)
	return true
}

// closeAll closes every connection; false when it was closed already.
func (s *connSet) closeAll() bool {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return false
	}
	s.closed = true
	conns := s.conns
	s.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
	return true
}
