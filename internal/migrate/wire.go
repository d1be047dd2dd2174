// Package migrate moves a running container to another host: the sender
// (`lkc migrate`), the receiver (`lkc serve`), the authenticated wire
// protocol between them, the bundle and rootfs stream, and the memory
// phases (pre-copy rounds or post-copy through CRIU lazy pages) built on
// container.Checkpoint and container.Restore. Any failure before the target
// confirms leaves the container running on the source and nothing on the
// target. See docs/migrate.md.
package migrate

import (
	"bufio"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"time"
)

// ProtocolVersion is the wire version; peers with another version refuse
// each other in the handshake.
const ProtocolVersion = 1

// maxFrame bounds a frame's payload, so a bad peer cannot make the other
// side allocate without limit.
const maxFrame = 1 << 20

const macSize = sha256.Size

// Frame types.
const (
	fHello   byte = 1 // handshake, unauthenticated: nonce and proof
	fControl byte = 2 // one JSON message
	fEntry   byte = 3 // a file stream entry header (JSON)
	fData    byte = 4 // file bytes of the last entry
	fEnd     byte = 5 // end of a file stream (JSON totals)
)

// ErrProtocol marks a peer that broke the protocol (bad frame, bad MAC,
// unexpected message).
var ErrProtocol = errors.New("migration protocol error")

// ErrAuth marks a peer that failed authentication.
var ErrAuth = errors.New("migration peer failed authentication")

// conn is one side of a migration session. After the handshake every frame
// carries an HMAC-SHA256 over the direction, a sequence number, the type
// and the payload, keyed with a key derived from the token and both
// nonces: a peer without the token can neither inject, replay, reorder nor
// alter frames. It does not hide them (see docs/migrate.md).
type conn struct {
	nc       net.Conn
	r        *bufio.Reader
	w        *bufio.Writer
	sendMAC  hash.Hash // nil before the handshake
	recvMAC  hash.Hash
	sendSeq  uint64
	recvSeq  uint64
	bytesIn  int64
	bytesOut int64
	timeout  time.Duration // per frame; 0 = none
	limiter  *rateLimiter  // nil = no bandwidth limit
}

func newConn(nc net.Conn, timeout time.Duration) *conn {
	return &conn{nc: nc, r: bufio.NewReaderSize(nc, 256<<10), w: bufio.NewWriterSize(nc, 256<<10), timeout: timeout}
}

// keyed starts authenticating frames with the session keys.
func (c *conn) keyed(sendKey, recvKey []byte) {
	c.sendMAC = hmac.New(sha256.New, sendKey)
	c.recvMAC = hmac.New(sha256.New, recvKey)
}

func (c *conn) deadline() {
	if c.timeout > 0 {
		c.nc.SetDeadline(time.Now().Add(c.timeout))
	}
}

func frameMAC(h hash.Hash, seq uint64, typ byte, payload []byte) []byte {
	h.Reset()
	var hdr [9]byte
	binary.BigEndian.PutUint64(hdr[:8], seq)
	hdr[8] = typ
	h.Write(hdr[:])
	h.Write(payload)
	return h.Sum(nil)
}

// writeFrame buffers one frame; flush sends what is buffered.
func (c *conn) writeFrame(typ byte, payload []byte) error {
	if len(payload) > maxFrame {
		return fmt.Errorf("%w: frame of %d bytes exceeds %d", ErrProtocol, len(payload), maxFrame)
	}
	if c.limiter != nil {
		c.limiter.wait(len(payload))
	}
	c.deadline()
	var hdr [5]byte
	hdr[0] = typ
	binary.BigEndian.PutUint32(hdr[1:], uint32(len(payload)))
	c.w.Write(hdr[:])
	_, err := c.w.Write(payload)
	if c.sendMAC != nil {
		_, err = c.w.Write(frameMAC(c.sendMAC, c.sendSeq, typ, payload))
		c.sendSeq++
	}
	c.bytesOut += int64(len(payload)) + 5
	if err != nil { // bufio keeps the first write error; this is it
		return fmt.Errorf("sending to %s: %w", c.nc.RemoteAddr(), err)
	}
	return nil
}

func (c *conn) flush() error {
	c.deadline()
	if err := c.w.Flush(); err != nil {
		return fmt.Errorf("sending to %s: %w", c.nc.RemoteAddr(), err)
	}
	return nil
}

// readFrame reads one frame into buf (grown as needed) and checks its MAC.
func (c *conn) readFrame(buf []byte) (byte, []byte, error) {
	c.deadline()
	var hdr [5]byte
	if _, err := io.ReadFull(c.r, hdr[:]); err != nil {
		return 0, nil, fmt.Errorf("receiving from %s: %w", c.nc.RemoteAddr(), err)
	}
	n := binary.BigEndian.Uint32(hdr[1:])
	if n > maxFrame {
		return 0, nil, fmt.Errorf("%w: frame of %d bytes exceeds %d", ErrProtocol, n, maxFrame)
	}
	if cap(buf) < int(n) {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(c.r, buf); err != nil {
		return 0, nil, fmt.Errorf("receiving from %s: %w", c.nc.RemoteAddr(), err)
	}
	c.bytesIn += int64(n) + 5
	if c.recvMAC == nil {
		return hdr[0], buf, nil
	}
	var mac [macSize]byte
	if _, err := io.ReadFull(c.r, mac[:]); err != nil {
		return 0, nil, fmt.Errorf("receiving from %s: %w", c.nc.RemoteAddr(), err)
	}
	if !hmac.Equal(mac[:], frameMAC(c.recvMAC, c.recvSeq, hdr[0], buf)) {
		return 0, nil, fmt.Errorf("%w: frame %d from %s has a bad MAC", ErrProtocol, c.recvSeq, c.nc.RemoteAddr())
	}
	c.recvSeq++
	return hdr[0], buf, nil
}

// message is every control message; Op says which fields matter.
type message struct {
	Op    string          `json:"op"`
	Error string          `json:"error,omitempty"`
	Body  json.RawMessage `json:"body,omitempty"`
}

// send writes one control message and flushes it.
func (c *conn) send(op string, body any) error {
	m := message{Op: op}
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("encoding %s message: %w", op, err)
		}
		m.Body = data
	}
	return c.sendMessage(m)
}

func (c *conn) sendMessage(m message) error {
	data, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("encoding %s message: %w", m.Op, err)
	}
	if err := c.writeFrame(fControl, data); err != nil {
		return err
	}
	return c.flush()
}

// sendError tells the peer why this side gives up; best effort.
func (c *conn) sendError(err error) {
	c.sendMessage(message{Op: opError, Error: err.Error()})
}

// PeerError is an error the other side reported.
type PeerError struct{ Msg string }

func (e *PeerError) Error() string { return "peer: " + e.Msg }

// expect reads one control message that must be op and decodes its body
// into body (when not nil). An error message from the peer becomes a
// *PeerError.
func (c *conn) expect(op string, body any) error {
	typ, data, err := c.readFrame(nil)
	if err != nil {
		return err
	}
	if typ != fControl {
		return fmt.Errorf("%w: got frame type %d, want the %s message", ErrProtocol, typ, op)
	}
	var m message
	if err := json.Unmarshal(data, &m); err != nil {
		return fmt.Errorf("%w: decoding the %s message: %v", ErrProtocol, op, err)
	}
	if m.Op == opError {
		return &PeerError{Msg: m.Error}
	}
	if m.Op != op {
		return fmt.Errorf("%w: got %q, want %q", ErrProtocol, m.Op, op)
	}
	if body != nil {
		if err := json.Unmarshal(m.Body, body); err != nil {
			return fmt.Errorf("%w: decoding the %s message: %v", ErrProtocol, op, err)
		}
	}
	return nil
}

// Control message ops, in session order.
const (
	opOffer     = "offer"     // sender: what moves and the source host's facts
	opAccept    = "accept"    // receiver: compatible, staging ready
	opStored    = "stored"    // receiver: a file stream is on disk
	opRestore   = "restore"   // sender: final images sent, restore now
	opRestored  = "restored"  // receiver: the container runs on the target
	opCommit    = "commit"    // sender: the source will be deleted, keep it
	opCommitted = "committed" // receiver: kept
	opError     = "error"
)
