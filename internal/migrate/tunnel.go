package migrate

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// tunnelHandshake bounds a page tunnel's handshake.
const tunnelHandshake = 10 * time.Second

// splice carries a post-copy page connection through a tunnel: the bytes
// of plain (CRIU's side) go sealed over t, and back, until both
// directions end or either fails. Bytes read from plain are added to sent
// when it is not nil. Once plain's peer has sent its first bytes, its cork
// is cleared (uncorkPeer).
func splice(t *conn, plain net.Conn, sent *atomic.Int64) {
	abort := func() {
		plain.Close()
		t.nc.Close()
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, maxFrame+sealOverhead)
		for {
			typ, data, err := t.readFrame(buf)
			if err == nil && typ == fEnd {
				closeWrite(plain)
				return
			}
			if err != nil || typ != fData {
				abort()
				return
			}
			if _, err := plain.Write(data); err != nil {
				abort()
				return
			}
		}
	}()
	// Frames as large as the wire allows: each costs a seal, a header and
	// a write on this side, a read and an open on the other.
	buf := make([]byte, maxFrame)
	uncorked := false
	for {
		n, err := plain.Read(buf)
		if n > 0 && !uncorked {
			// CRIU corked its end before it sent these (uncorkPeer).
			uncorked = true
			go uncorkPeer(plain)
		}
		if n > 0 {
			if werr := t.writeFrame(fData, buf[:n]); werr != nil || t.flush() != nil {
				abort()
				break
			}
			if sent != nil {
				sent.Add(int64(n))
			}
		}
		if errors.Is(err, io.EOF) {
			if t.writeFrame(fEnd, nil) != nil || t.flush() != nil {
				abort()
			}
			break
		}
		if err != nil {
			abort()
			break
		}
	}
	<-done
	abort()
}

func closeWrite(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.CloseWrite()
	}
}

// pageTunnel is the receiver's end of the post-copy page stream: CRIU's
// lazy-pages daemon connects to it on loopback, and it carries each
// connection sealed to the sender's page proxy, keyed by the session.
type pageTunnel struct {
	ln     net.Listener
	remote string // the sender's page proxy
	secret []byte
	wg     sync.WaitGroup
	conns  connSet
}

// newPageTunnel listens on loopback for CRIU and connects to the page
// proxy at port on the sender's host (the control connection's peer: the
// sender chooses no other host to connect to).
func newPageTunnel(sender net.Addr, port string, secret []byte) (*pageTunnel, error) {
	ta, ok := sender.(*net.TCPAddr)
	if _, err := strconv.ParseUint(port, 10, 16); err != nil || !ok {
		return nil, fmt.Errorf("%w: page server port %q", ErrProtocol, port)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listening for CRIU's lazy-pages daemon: %w", err)
	}
	t := &pageTunnel{ln: ln, remote: net.JoinHostPort(ta.IP.String(), port), secret: secret}
	t.wg.Add(1)
	go t.serve()
	return t, nil
}

// Addr is what CRIU's lazy-pages daemon connects to.
func (t *pageTunnel) Addr() string { return t.ln.Addr().String() }

func (t *pageTunnel) serve() {
	defer t.wg.Done()
	for {
		local, err := t.ln.Accept()
		if err != nil {
			return
		}
		remote, err := net.DialTimeout("tcp", t.remote, tunnelHandshake)
		if err != nil {
			local.Close()
			continue
		}
		if !t.conns.track(local, remote) {
			return
		}
		t.wg.Add(1)
		go func() {
			defer t.wg.Done()
			tc := newConn(remote, 0)
			remote.SetDeadline(time.Now().Add(tunnelHandshake))
			if err := tc.clientHandshake(t.secret); err != nil {
				local.Close()
				remote.Close()
				return
			}
			remote.SetDeadline(time.Time{})
			splice(tc, local, nil)
		}()
	}
}

// drain waits until the connections under way end by themselves (CRIU's
// lazy-pages daemon has all the pages), accepting no more.
func (t *pageTunnel) drain() {
	t.ln.Close()
	t.wg.Wait()
}

func (t *pageTunnel) close() {
	if t.conns.closeAll() {
		t.ln.Close()
		t.wg.Wait()
	}
}
