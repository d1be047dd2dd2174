// Package procconn is a client of the kernel's process events connector
// (netlink NETLINK_CONNECTOR, CN_IDX_PROC): it subscribes, asks the kernel
// (Linux >= 6.6) to send only the event types it wants, and parses exec,
// fork, uid, gid and sid events. Its one reason to change is that wire
// protocol. The connector answers only in the initial network namespace
// (docs/daemon.md, E5), so Open says so instead of a bare ECONNREFUSED.
package procconn

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/pollwait"
)

// Event types (enum proc_cn_event in linux/cn_proc.h), also the bits of
// the 6.6 filter.
const (
	Fork uint32 = 0x1
	Exec uint32 = 0x2
	UID  uint32 = 0x4
	GID  uint32 = 0x40
	SID  uint32 = 0x80
	Exit uint32 = 0x80000000
)

// Connector ids and ops (linux/connector.h, linux/cn_proc.h).
const (
	cnIdxProc     = 1
	cnValProc     = 1
	mcastListen   = 1
	headerLen     = unix.NLMSG_HDRLEN
	cnMsgLen      = 20
	procEventHead = 16 // what, cpu, timestamp_ns
	recvBuffer    = 4 << 20
)

// ErrOverrun says the socket's buffer overflowed (ENOBUFS): events were
// lost, and the caller must rescan what it follows.
var ErrOverrun = errors.New("proc connector: events lost (receive buffer overrun)")

// Event is one process event. Pid and Tgid are the task's (for Fork, the
// child's); Parent is the forking thread group.
type Event struct {
	What   uint32
	Time   uint64 // CLOCK_MONOTONIC ns when the kernel sent it
	Pid    int
	Tgid   int
	Parent int // Fork only: the parent's tgid
}

// Conn is a subscribed connector socket.
type Conn struct {
	fd       int
	Filtered bool // the kernel filters by type (Linux >= 6.6)
	buf      []byte
	// wait parks Read in Go's poller: a recvfrom that blocks holds its
	// P, and entered again at every event it kept sysmon awake
	// (pollwait).
	wait *pollwait.Waiter
}

// Open subscribes to process events. mask selects the types; on kernels
// before 6.6 the kernel sends every type and Filtered is false (Read
// still returns only the types in mask).
func Open(mask uint32) (*Conn, error) {
	if err := initialNetNS(); err != nil {
		return nil, err
	}
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_CONNECTOR)
	if err != nil {
		return nil, fmt.Errorf("proc connector socket: %w", err)
	}
	c := &Conn{fd: fd, Filtered: filterSupported(), buf: make([]byte, 64<<10)}
	if err := c.subscribe(mask); err != nil {
		unix.Close(fd)
		return nil, err
	}
	if c.wait, err = pollwait.New(fd, "proc connector socket"); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return c, nil
}

func (c *Conn) subscribe(mask uint32) error {
	// SO_RCVBUFFORCE needs CAP_NET_ADMIN; plain SO_RCVBUF is the fallback.
	if unix.SetsockoptInt(c.fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, recvBuffer) != nil {
		unix.SetsockoptInt(c.fd, unix.SOL_SOCKET, unix.SO_RCVBUF, recvBuffer)
	}
	if err := unix.Bind(c.fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: cnIdxProc}); err != nil {
		return fmt.Errorf("proc connector bind: %w", err)
	}
	payload := binary.NativeEndian.AppendUint32(nil, mcastListen)
	if c.Filtered {
		payload = binary.NativeEndian.AppendUint32(payload, mask)
	}
	if err := unix.Sendto(c.fd, request(payload), 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		if errors.Is(err, unix.ECONNREFUSED) {
			return fmt.Errorf("proc connector listen: %w (it works only in the initial network namespace)", err)
		}
		return fmt.Errorf("proc connector listen: %w", err)
	}
	return nil
}

// request is a netlink message carrying a cn_msg to the proc connector.
func request(payload []byte) []byte {
	total := headerLen + cnMsgLen + len(payload)
	b := make([]byte, 0, total)
	b = binary.NativeEndian.AppendUint32(b, uint32(total))
	b = binary.NativeEndian.AppendUint16(b, unix.NLMSG_DONE)
	b = binary.NativeEndian.AppendUint16(b, 0)                   // flags
	b = binary.NativeEndian.AppendUint32(b, 0)                   // seq
	b = binary.NativeEndian.AppendUint32(b, uint32(os.Getpid())) // port id
	b = binary.NativeEndian.AppendUint32(b, cnIdxProc)
	b = binary.NativeEndian.AppendUint32(b, cnValProc)
	b = binary.NativeEndian.AppendUint32(b, 0) // seq
	b = binary.NativeEndian.AppendUint32(b, 0) // ack
	b = binary.NativeEndian.AppendUint16(b, uint16(len(payload)))
	b = binary.NativeEndian.AppendUint16(b, 0) // flags
	return append(b, payload...)
}

// filterSupported reports a kernel of 6.6 or later, whose LISTEN takes
// an event-type mask (an older one ignores a LISTEN of the wrong size,
// so the size must fit the kernel).
func filterSupported() bool {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return false
	}
	var major, minor int
	fmt.Sscanf(unix.ByteSliceToString(u.Release[:]), "%d.%d", &major, &minor)
	return major > 6 || major == 6 && minor >= 6
}

// initialNetNS refuses a network namespace other than PID 1's: there the
// kernel refuses LISTEN (ECONNREFUSED) or sends nothing.
func initialNetNS() error {
	var self, init unix.Stat_t
	if err := unix.Stat("/proc/self/ns/net", &self); err != nil {
		return fmt.Errorf("proc connector: own network namespace: %w", err)
	}
	if err := unix.Stat("/proc/1/ns/net", &init); err != nil {
		return nil // PID 1's is unreadable here: let the kernel decide
	}
	if self.Ino != init.Ino || self.Dev != init.Dev {
		return errors.New("proc connector: this process is not in the initial network namespace, where the kernel sends process events")
	}
	return nil
}

// Fd is the subscription's socket, for a test that breaks it on purpose
// (the rules engine's BreakEnv).
func (c *Conn) Fd() int { return c.fd }

// Close unsubscribes (closing the socket, and the poller's duplicate of
// it, ends the listen).
func (c *Conn) Close() error {
	return errors.Join(c.wait.Close(), unix.Close(c.fd))
}

// readTimeout bounds Read's wait, so that its caller notices its context
// ending.
const readTimeout = 500 * time.Millisecond

// Read waits up to readTimeout for the next datagram and returns its
// events of the types in mask (none when it timed out). ErrOverrun
// reports lost events; the Conn stays usable.
func (c *Conn) Read(mask uint32) ([]Event, error) {
	var n int
	var rerr error
	err := c.wait.Wait(time.Now().Add(readTimeout), func() bool {
		n, _, rerr = unix.Recvfrom(c.fd, c.buf, 0)
		return rerr != unix.EAGAIN && rerr != unix.EINTR
	})
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("proc connector read: %w", err)
	case errors.Is(rerr, unix.ENOBUFS):
		return nil, ErrOverrun
	case rerr != nil:
		return nil, fmt.Errorf("proc connector read: %w", rerr)
	}
	return Parse(c.buf[:n], mask), nil
}

// Parse reads the events of the types in mask from one datagram (one or
// more netlink messages, each a cn_msg with a proc_event).
func Parse(b []byte, mask uint32) []Event {
	var out []Event
	for len(b) >= headerLen {
		l := int(binary.NativeEndian.Uint32(b))
		if l < headerLen || l > len(b) {
			break
		}
		if ev, ok := parseOne(b[headerLen:l]); ok && ev.What&mask != 0 {
			out = append(out, ev)
		}
		b = b[min(len(b), (l+unix.NLMSG_ALIGNTO-1)&^(unix.NLMSG_ALIGNTO-1)):]
	}
	return out
}

func parseOne(m []byte) (Event, bool) {
	if len(m) < cnMsgLen+procEventHead+8 {
		return Event{}, false
	}
	if binary.NativeEndian.Uint32(m) != cnIdxProc || binary.NativeEndian.Uint32(m[4:]) != cnValProc {
		return Event{}, false
	}
	p := m[cnMsgLen:]
	what := binary.NativeEndian.Uint32(p)
	ts := binary.NativeEndian.Uint64(p[8:])
	d := p[procEventHead:]
	u := func(i int) int { return int(binary.NativeEndian.Uint32(d[4*i:])) }
	switch what {
	case Fork:
		if len(d) < 16 {
			return Event{}, false
		}
		return Event{What: what, Time: ts, Parent: u(1), Pid: u(2), Tgid: u(3)}, true
	case Exec, UID, GID, SID, Exit:
		return Event{What: what, Time: ts, Pid: u(0), Tgid: u(1)}, true
	}
	return Event{}, false
}
