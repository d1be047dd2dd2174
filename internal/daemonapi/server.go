package daemonapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Peer is the process at the other end of a control connection, from
// SO_PEERCRED.
type Peer struct {
	Pid int
	Uid int
}

// Handler answers one request (after hello) with a body or an error.
type Handler func(ctx context.Context, op string, body json.RawMessage, peer Peer) (any, error)

// drainGrace is how long a draining worker waits for a peer to take an
// answer (the answer to stop or upgrade itself, read at once by the CLI).
const drainGrace = time.Second

// How long a connection may wait for its peer, when Server leaves it
// unset. Every client of the protocol sends hello as it connects (Greet,
// Post) and its next request as soon as it has the answer, so a peer
// that sends nothing for this long is stuck or hostile, and without a
// deadline its connection and goroutine would last as long as the worker.
// The first request gets less: hello follows the connect at once, while
// between requests a client may do some work of its own. Idle is also how
// long an answer may wait for a peer that does not read it.
const (
	DefaultFirstRequestTimeout = 5 * time.Second
	DefaultIdleTimeout         = 30 * time.Second
)

// Server serves the control protocol on a listener.
type Server struct {
	Build  string
	Handle Handler
	// Logf records refused connections and failed requests (never nil).
	Logf func(format string, args ...any)
	// FirstRequestTimeout and IdleTimeout bound the wait for a
	// connection's first request and for each later one (and for the
	// peer to take an answer); zero means DefaultFirstRequestTimeout and
	// DefaultIdleTimeout. The connection is closed when one passes.
	FirstRequestTimeout, IdleTimeout time.Duration

	wg        sync.WaitGroup
	l         *net.UnixListener
	closeOnce sync.Once
}

// Serve accepts connections until ctx ends or l fails, then waits for the
// connections' current requests to finish. Each connection is served by
// its own goroutine.
func (s *Server) Serve(ctx context.Context, l *net.UnixListener) error {
	s.l = l
	stop := context.AfterFunc(ctx, s.StopAccepting)
	defer stop()
	defer s.wg.Wait()
	var wait time.Duration
	for {
		c, err := l.AcceptUnix()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if !outOfResources(err) {
				return fmt.Errorf("accepting control connections: %w", err)
			}
			// Clients holding every fd the worker may have must not
			// end it: the connection waits in the backlog until some go.
			if wait == 0 {
				s.Logf("accepting control connections: %v (retrying)", err)
			}
			wait = min(max(2*wait, 5*time.Millisecond), time.Second)
			select {
			case <-ctx.Done():
			case <-time.After(wait):
			}
			continue
		}
		wait = 0
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer c.Close()
			s.serveConn(ctx, c)
		}()
	}
}

// outOfResources says whether an accept failed for want of fds or
// memory, which passes once some are freed.
func outOfResources(err error) bool {
	return errors.Is(err, unix.EMFILE) || errors.Is(err, unix.ENFILE) ||
		errors.Is(err, unix.ENOBUFS) || errors.Is(err, unix.ENOMEM)
}

// StopAccepting closes the listener and returns only once this server
// can accept no more connection, so that a caller that answers after it
// (an upgrade) knows every later connection goes to another acceptor of
// the same socket. The once makes a second caller wait for the first
// close, which the listener's own Close would not. Serve's ctx must end
// too, or Serve reports the closed listener as a failure.
func (s *Server) StopAccepting() {
	s.closeOnce.Do(func() { s.l.Close() })
}

// readBufs are the connections' read buffers: one made for each
// connection was a large allocation, zeroed, at every adopt and release
// (about a tenth of the worker's CPU for a connection).
var readBufs = sync.Pool{New: func() any {
	b := make([]byte, MaxMessage+1)
	return &b
}}

// serveConn checks the peer (the daemon's own uid only: root, since the
// daemon runs as root), then answers requests until the peer's last
// request is served or ctx ends.
func (s *Server) serveConn(ctx context.Context, c *net.UnixConn) {
	// When the worker drains, a waiting read ends, but an answer being
	// computed is still written, within drainGrace: a peer that never
	// reads its answers must not keep the worker from exiting.
	stop := context.AfterFunc(ctx, func() {
		c.SetReadDeadline(time.Now())
		c.SetWriteDeadline(time.Now().Add(drainGrace))
	})
	defer stop()
	peer, err := peerOf(c)
	if me := os.Geteuid(); err == nil && peer.Uid != me {
		err = Errorf(ClassPermission, fmt.Sprintf("the lkc daemon serves uid %d only (peer pid %d has uid %d)", me, peer.Pid, peer.Uid))
	}
	bp := readBufs.Get().(*[]byte)
	defer readBufs.Put(bp)
	buf := *bp
	helloed, reset := false, false
	idle := orDefault(s.IdleTimeout, DefaultIdleTimeout)
	wait := orDefault(s.FirstRequestTimeout, DefaultFirstRequestTimeout)
	for ; ; wait = idle {
		setDeadline(ctx, c, false, wait)
		n, _, _, _, rerr := c.ReadMsgUnix(buf, nil)
		if errors.Is(rerr, os.ErrDeadlineExceeded) && ctx.Err() == nil {
			s.Logf("control connection of pid %d: no request for %v, closed", peer.Pid, wait)
			return
		}
		if errors.Is(rerr, unix.ECONNRESET) && !reset {
			// A peer that hung up with an answer unread (daemonapi.Post)
			// leaves the reset ahead of the requests it sent: the kernel
			// reports it once, then returns them.
			reset = true
			continue
		}
		if rerr != nil || n == 0 {
			return
		}
		if err != nil {
			// Refused: answer the first request (so the peer reads why
			// rather than a reset connection) and hang up.
			s.Logf("control connection refused: %v", err)
			send(c, &Response{V: Version, Error: err.Error(), Class: classOf(err)})
			return
		}
		var req Request
		if err := decode(buf, n, &req); err != nil {
			send(c, &Response{V: Version, Error: err.Error(), Class: ClassInvalid})
			return
		}
		// A peer that hung up without reading its answers (daemonapi.Post)
		// still has the requests it sent served: the send fails, the next
		// read returns them, then the end.
		resp := s.answer(ctx, &req, peer, &helloed)
		setDeadline(ctx, c, true, idle)
		if send(c, resp); resp.Class == ClassVersion || resp.Class == ClassInvalid {
			return
		}
	}
}

// setDeadline gives c's next read (or write) d from now, unless ctx has
// ended: then serveConn's drain deadlines stand (a read ends at once, a
// write gets drainGrace). The drain's deadline is set again after the
// long one, so a drain that starts meanwhile is never undone.
func setDeadline(ctx context.Context, c *net.UnixConn, write bool, d time.Duration) {
	set, drain := c.SetReadDeadline, time.Duration(0)
	if write {
		set, drain = c.SetWriteDeadline, drainGrace
	}
	set(time.Now().Add(d))
	if ctx.Err() != nil {
		set(time.Now().Add(drain))
	}
}

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// answer runs one request; hello must come first.
func (s *Server) answer(ctx context.Context, req *Request, peer Peer, helloed *bool) *Response {
	resp := &Response{V: Version, Seq: req.Seq}
	var out any
	var err error
	switch {
	case req.Op == OpHello:
		out, err = s.hello(req.Body)
		*helloed = err == nil
	case !*helloed:
		err = Errorf(ClassInvalid, errNoHello.Error())
	case common([]int{req.V}) == 0:
		err = Errorf(ClassVersion, fmt.Sprintf("unknown protocol version %d", req.V))
	default:
		out, err = s.Handle(ctx, req.Op, req.Body, peer)
	}
	if err == nil {
		resp.Body, err = body(out)
	}
	if err != nil {
		resp.Error, resp.Class = err.Error(), classOf(err)
	}
	return resp
}

func (s *Server) hello(b json.RawMessage) (any, error) {
	var h Hello
	if err := Unbody(b, &h); err != nil {
		return nil, err
	}
	v := common(h.Versions)
	if v == 0 {
		return nil, Errorf(ClassVersion, fmt.Sprintf("the running daemon speaks protocol %d, the client offers %v", Version, h.Versions))
	}
	return &HelloReply{Version: v, Build: s.Build}, nil
}

// send writes one message as one packet.
func send(c *net.UnixConn, v any) error {
	b, err := encode(v)
	if errors.Is(err, ErrTooLarge) {
		b, err = encode(&Response{V: Version, Error: "answer too large", Class: ClassInvalid})
	}
	if err != nil {
		return err
	}
	_, err = c.Write(b)
	return err
}

// peerOf reads the connecting process's credentials.
func peerOf(c *net.UnixConn) (Peer, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return Peer{}, err
	}
	var cred *unix.Ucred
	cerr := raw.Control(func(fd uintptr) {
		cred, err = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	})
	if cerr != nil {
		return Peer{}, cerr
	}
	if err != nil {
		return Peer{}, fmt.Errorf("SO_PEERCRED: %w", err)
	}
	return Peer{Pid: int(cred.Pid), Uid: int(cred.Uid)}, nil
}
