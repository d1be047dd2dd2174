package daemonapi

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/lkc-containers/lkc/internal/hostconf"
)

// ErrNotRunning says no daemon listens in the directory.
var ErrNotRunning = errors.New("lkc daemon is not running")

// Client is one control connection, after hello.
type Client struct {
	c       *net.UnixConn
	seq     uint64
	Version int    // the version both speak
	Build   string // the daemon's build
	// Timeout bounds each call (DefaultTimeout when zero): a connection
	// made while no worker runs waits in the socket's backlog for the
	// next one, so a daemon whose workers cannot start must not hang the
	// CLI.
	Timeout time.Duration
}

// DefaultTimeout bounds a call when Client.Timeout is zero.
const DefaultTimeout = 30 * time.Second

// Dial connects to the daemon in dir and says hello.
func Dial(dir string) (*Client, error) { return DialCall(dir, "", nil, nil) }

// DialCall is Dial, then Call of op (unless "") with the request sent
// right behind the hello: one round trip to the daemon, not two. When
// only op fails, the client comes back with op's error.
func DialCall(dir, op string, in, out any) (*Client, error) {
	cl, err := Connect(dir)
	if err != nil {
		return nil, err
	}
	hello, err := cl.Greet(op, in, out)
	if hello != nil {
		cl.Close()
		return nil, hello
	}
	return cl, err
}

// Connect connects to the daemon in dir; Greet says hello. A connection
// is made at once while the daemon runs (its holder keeps the socket
// listening across worker restarts), so a caller learns that it runs
// without waiting for it to answer.
func Connect(dir string) (*Client, error) {
	path := filepath.Join(dir, SocketName)
	c, err := net.DialUnix("unixpacket", nil, &net.UnixAddr{Name: path, Net: "unixpacket"})
	if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) {
		return nil, fmt.Errorf("%w (no one listens on %s)", ErrNotRunning, path)
	}
	if err != nil {
		return nil, fmt.Errorf("connecting to lkc daemon: %w", err)
	}
	return &Client{c: c, Timeout: 10 * time.Second}, nil
}

// Greet says hello on a new connection and calls op (unless "") with the
// request sent right behind the hello. It returns hello's error (the
// connection is unusable) and op's.
func (cl *Client) Greet(op string, in, out any) (hello, call error) {
	var h HelloReply
	err := cl.send(OpHello, &Hello{Versions: Versions})
	if err == nil && op != "" {
		err = cl.send(op, in)
	}
	if err == nil {
		err = cl.receive(OpHello, 1, &h)
	}
	if errors.Is(err, ErrVersion) {
		return fmt.Errorf("%w: this lkc speaks protocol %v: run lkc daemon upgrade", err, Versions), nil
	}
	if gone(err) {
		// The connection was made in the backlog of a daemon that died
		// or stopped, whose last copy of the listener closed since.
		return fmt.Errorf("%w (it went away as lkc connected: %v)", ErrNotRunning, err), nil
	}
	if err != nil {
		return err, nil
	}
	cl.Version, cl.Build, cl.Timeout = h.Version, h.Build, 0
	if op != "" {
		return nil, cl.receive(op, cl.seq, out)
	}
	return nil, nil
}

// errClosed is an answer's read that found the connection closed.
var errClosed = errors.New("connection closed")

// gone says whether err, from a new connection's hello, means that nobody
// will ever answer it: the daemon hangs up only after an answer (even a
// refusal), so a reset or a close before the first one is its end.
func gone(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, errClosed)
}

// Close hangs up.
func (cl *Client) Close() error { return cl.c.Close() }

// Call sends one request and decodes its answer's body into out (which
// may be nil). An error answer comes back as an *Error of its class.
func (cl *Client) Call(op string, in, out any) error {
	if err := cl.send(op, in); err != nil {
		return err
	}
	return cl.receive(op, cl.seq, out)
}

// send writes the next request.
func (cl *Client) send(op string, in any) error {
	cl.seq++
	cl.c.SetDeadline(time.Now().Add(cl.timeout()))
	msg, err := request(op, cl.seq, in)
	if err != nil {
		return err
	}
	if _, err := cl.c.Write(msg); err != nil {
		return fmt.Errorf("%s: sending to lkc daemon: %w", op, err)
	}
	return nil
}

// receive reads the answer to request seq of op into out.
func (cl *Client) receive(op string, seq uint64, out any) error {
	buf := make([]byte, MaxMessage+1)
	n, _, _, _, err := cl.c.ReadMsgUnix(buf, nil)
	if err == nil && n == 0 {
		err = errClosed
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return fmt.Errorf("%s: lkc daemon did not answer within %v (its log says why)", op, cl.timeout())
	}
	if err != nil {
		return fmt.Errorf("%s: reading lkc daemon's answer: %w", op, err)
	}
	var resp Response
	if err := decodeResponse(buf, n, &resp); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if resp.Error != "" {
		return &Error{Class: resp.Class, Msg: resp.Error}
	}
	if resp.Seq != seq {
		return fmt.Errorf("%s: answer to request %d, want %d", op, resp.Seq, seq)
	}
	if out == nil || len(resp.Body) == 0 {
		return nil
	}
	if err := decodeBody(resp.Body, out); err != nil {
		return fmt.Errorf("%s: malformed answer: %w", op, err)
	}
	return nil
}

func (cl *Client) timeout() time.Duration {
	if cl.Timeout == 0 {
		return DefaultTimeout
	}
	return cl.Timeout
}

// Status asks for the daemon's state, every page of its containers.
func (cl *Client) Status() (*Status, error) {
	var s Status
	if err := cl.Call(OpStatus, nil, &s); err != nil {
		return &s, err
	}
	for from := 0; s.Next > from; {
		from = s.Next
		var page Status
		if err := cl.Call(OpStatus, &StatusPage{From: from}, &page); err != nil {
			return &s, err
		}
		s.Containers, s.Next = append(s.Containers, page.Containers...), page.Next
	}
	return &s, nil
}

// Adopt asks the daemon to serve a container with features f.
func (cl *Client) Adopt(root, id string, f hostconf.Features) (*AdoptReply, error) {
	var r AdoptReply
	return &r, cl.Call(OpAdopt, &Adopt{Container{root, id}, f}, &r)
}

// Release tells the daemon to stop serving a container (gen: see Release).
func (cl *Client) Release(root, id string, gen uint64) error {
	return cl.Call(OpRelease, &Release{Container{root, id}, gen}, nil)
}

// Post sends one request to the daemon in dir, after hello, and hangs up
// without waiting for the answers: the daemon serves the requests a
// client sent before it hung up. For a request whose outcome nobody
// waits for (a release at the end of `lkc run`); without a daemon it
// does nothing.
func Post(dir, op string, in any) error {
	path := filepath.Join(dir, SocketName)
	c, err := net.DialUnix("unixpacket", nil, &net.UnixAddr{Name: path, Net: "unixpacket"})
	if err != nil {
		return fmt.Errorf("connecting to lkc daemon: %w", err)
	}
	defer c.Close()
	hello, err := request(OpHello, 1, &Hello{Versions: Versions})
	if err != nil {
		return err
	}
	msg, err := request(op, 2, in)
	if err != nil {
		return err
	}
	for _, m := range [][]byte{hello, msg} {
		if _, err := c.Write(m); err != nil {
			return fmt.Errorf("%s: sending to lkc daemon: %w", op, err)
		}
	}
	return nil
}

// Reload makes the daemon read lkc.conf again.
func (cl *Client) Reload() error { return cl.Call(OpReload, nil, nil) }

// Explain asks the rules engine which rule placed process pid.
func (cl *Client) Explain(pid int) (*ExplainReply, error) {
	var r ExplainReply
	return &r, cl.Call(OpExplain, &Explain{Pid: pid}, &r)
}

// Upgrade replaces the daemon's binary with exe; it returns once a worker
// of exe serves.
func (cl *Client) Upgrade(exe string) (*UpgradeReply, error) {
	var r UpgradeReply
	return &r, cl.Call(OpUpgrade, &Upgrade{Exe: exe}, &r)
}

// Stop ends the daemon; it returns the pids that are exiting.
func (cl *Client) Stop() (*StopReply, error) {
	var r StopReply
	return &r, cl.Call(OpStop, nil, &r)
}
