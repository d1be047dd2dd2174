// Package migrate moves a running container to another host: the sender
// (`lkc migrate`), the receiver (`lkc serve`), the authenticated and
// encrypted wire protocol between them, the bundle and rootfs stream, and the memory
// phases (pre-copy rounds or post-copy through CRIU lazy pages) built on
// cr.CheckpointTuned and cr.RestoreTuned. Any failure before the commit
// leaves the container running on the source and nothing on the target;
// the target's copy runs only on the commit. See docs/migrate.md.
package migrate

import (
	"bufio"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// ProtocolVersion is the wire version; peers with another version refuse
// each other in the handshake.
const ProtocolVersion = 2

// maxFrame bounds a frame's payload, so a bad peer cannot make the other
// side allocate without limit.
const maxFrame = 1 << 20

// sealOverhead is what sealing adds to a payload (the AES-GCM tag).
const sealOverhead = 16

// Frame types.
const (
	fHello   byte = 1 // handshake: nonces in the clear, then sealed proofs
	fControl byte = 2 // one JSON message
	fEntry   byte = 3 // a file stream entry header (JSON)
	fData    byte = 4 // file bytes of the last entry; a tunnel's bytes
	fEnd     byte = 5 // end of a file stream (JSON totals); of a tunnel direction
	fRefused byte = 6 // the receiver's refusal of a wrong token, in the clear
)

// ErrProtocol marks a peer that broke the protocol (bad frame, bad seal,
// unexpected message).
var ErrProtocol = errors.New("migration protocol error")

// ErrAuth marks a peer that failed authentication.
var ErrAuth = errors.New("migration peer failed authentication")

// errBadSeal marks a frame that does not open with the session's key: a
// peer without the token, or a frame altered, replayed or reordered.
var errBadSeal = fmt.Errorf("%w: a frame does not open with the session key", ErrProtocol)

// conn is one side of a migration session, or of a post-copy page tunnel.
// After the handshake every frame's payload is sealed with AES-256-GCM
// under a key per direction derived from the token and both nonces, with
// the frame's sequence number as the nonce and its header as associated
// data: a peer without the token can neither read, inject, replay,
// reorder nor alter frames. Frame types and lengths stay visible.
type conn struct {
	nc       net.Conn
	r        *bufio.Reader
	w        *bufio.Writer
	sealer   cipher.AEAD // nil before the handshake
	opener   cipher.AEAD
	sendSeq  uint64
	recvSeq  uint64
	pages    []byte // the session's secret for its page tunnels
	sealed   []byte // the last sealed payload
	bytesIn  int64
	bytesOut int64
	timeout  time.Duration // per frame; 0 = none
	limiter  *rateLimiter  // nil = no bandwidth limit
	// refusable admits an fRefused frame in the clear, while the
	// handshake waits for the receiver's verdict on the sender's proof.
	refusable bool
}

func newConn(nc net.Conn, timeout time.Duration) *conn {
	return &conn{nc: nc, r: bufio.NewReaderSize(nc, 256<<10), w: bufio.NewWriterSize(nc, 256<<10), timeout: timeout}
}

// keyed derives the session's keys from token and both nonces (HKDF-SHA256)
// and seals every later frame: mine names this side's direction, theirs
// the peer's.
func (c *conn) keyed(token, nc, ns []byte, mine, theirs string) error {
	salt := append(append([]byte{}, nc...), ns...)
	var err error
	if c.sealer, err = sessionAEAD(token, salt, mine); err != nil {
		return err
	}
	if c.opener, err = sessionAEAD(token, salt, theirs); err != nil {
		return err
	}
	c.pages, err = hkdf.Key(sha256.New, token, salt, magic+" v2 pages", 32)
	return err
}

func sessionAEAD(token, salt []byte, role string) (cipher.AEAD, error) {
	key, err := hkdf.Key(sha256.New, token, salt, magic+" v2 key "+role, 32)
	if err != nil {
		return nil, fmt.Errorf("deriving the session key: %w", err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

func (c *conn) deadline() {
	if c.timeout > 0 {
		c.nc.SetDeadline(time.Now().Add(c.timeout))
	}
}

// seqNonce is the GCM nonce of frame seq: each key seals each number once.
func seqNonce(seq uint64) []byte {
	var n [12]byte
	binary.BigEndian.PutUint64(n[4:], seq)
	return n[:]
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
	body := payload
	if c.sealer != nil {
		binary.BigEndian.PutUint32(hdr[1:], uint32(len(payload)+sealOverhead))
		c.sealed = c.sealer.Seal(c.sealed[:0], seqNonce(c.sendSeq), payload, hdr[:])
		c.sendSeq++
		body = c.sealed
	} else {
		binary.BigEndian.PutUint32(hdr[1:], uint32(len(payload)))
	}
	c.bytesOut += int64(len(body)) + 5
	if len(body) >= c.w.Available() {
		return c.writeDirect(hdr[:], body)
	}
	c.w.Write(hdr[:])
	if _, err := c.w.Write(body); err != nil { // bufio keeps the first write error; this is it
		return fmt.Errorf("sending to %s: %w", c.nc.RemoteAddr(), err)
	}
	return nil
}

// writeDirect sends what is buffered, then hdr and a body too large for
// the buffer in one writev: bufio would copy the body into its buffer and
// send it in two writes, the frame's tail in a segment of its own.
func (c *conn) writeDirect(hdr, body []byte) error {
	if err := c.w.Flush(); err != nil {
		return fmt.Errorf("sending to %s: %w", c.nc.RemoteAddr(), err)
	}
	bufs := net.Buffers{hdr, body}
	if _, err := bufs.WriteTo(c.nc); err != nil {
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

// readFrame reads one frame into buf (grown as needed; maxFrame +
// sealOverhead holds any) and opens it.
func (c *conn) readFrame(buf []byte) (byte, []byte, error) {
	c.deadline()
	var hdr [5]byte
	if _, err := io.ReadFull(c.r, hdr[:]); err != nil {
		return 0, nil, fmt.Errorf("receiving from %s: %w", c.nc.RemoteAddr(), err)
	}
	n := binary.BigEndian.Uint32(hdr[1:])
	if n > maxFrame+sealOverhead {
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
	if c.opener == nil || hdr[0] == fRefused && c.refusable {
		if n > maxFrame {
			return 0, nil, fmt.Errorf("%w: frame of %d bytes exceeds %d", ErrProtocol, n, maxFrame)
		}
		return hdr[0], buf, nil
	}
	data, err := c.opener.Open(buf[:0], seqNonce(c.recvSeq), buf, hdr[:])
	if err != nil {
		return 0, nil, fmt.Errorf("%w (frame %d from %s)", errBadSeal, c.recvSeq, c.nc.RemoteAddr())
	}
	c.recvSeq++
	return hdr[0], data, nil
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
	opRestored  = "restored"  // receiver: restored, paused, never run
	opCommit    = "commit"    // sender: yours: run it; the source will be deleted
	opCommitted = "committed" // receiver: it runs here
	opError     = "error"
)
