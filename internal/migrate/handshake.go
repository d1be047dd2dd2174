package migrate

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"time"
)

const (
	magic      = "lkc-migrate"
	nonceSize  = 32
	minToken   = 16
	roleSender = "sender"
	roleRecv   = "receiver"
)

// hello is the handshake's frame shape: each side's nonce in the clear,
// then, sealed, each side's acknowledgement that proves it holds the
// token.
type hello struct {
	Magic   string `json:"magic,omitempty"`
	Version int    `json:"version,omitempty"`
	Nonce   []byte `json:"nonce,omitempty"`
	OK      bool   `json:"ok,omitempty"`
	Error   string `json:"error,omitempty"`
}

// ReadToken reads a shared secret from path. The file must not be readable
// by group or others, as ssh insists for keys, and the secret must be at
// least 16 bytes; surrounding whitespace is dropped.
func ReadToken(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading token: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("reading token: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("token file %s is accessible by group or others (mode %04o): chmod 600 it", path, st.Mode().Perm())
	}
	data := make([]byte, 4096)
	n, err := f.Read(data)
	if err != nil {
		return nil, fmt.Errorf("reading token %s: %w", path, err)
	}
	tok := bytes.TrimSpace(data[:n])
	if err := checkToken(tok); err != nil {
		return nil, fmt.Errorf("token in %s %w", path, err)
	}
	return tok, nil
}

// minTokenBits is the least estimated strength of a token. A peer that
// poses as the receiver gets the sender's first sealed frame, against
// which it can test guesses offline: the token must be too strong to
// guess. 16 random bytes estimate at 64 bits at least (their length
// times log2 of it); `head -c 32 /dev/urandom | base64` at ~230.
const minTokenBits = 64

// checkToken refuses a token shorter than minToken bytes, or whose
// strength, estimated as its length times the entropy of its byte
// frequencies, is under minTokenBits: repetitions and small alphabets
// ("passwordpassword", a base64 of mostly zero bytes). The estimate is
// an upper bound: it cannot tell a dictionary word from random letters.
func checkToken(tok []byte) error {
	if len(tok) < minToken {
		return fmt.Errorf("is %d bytes: use at least %d random ones (head -c 32 /dev/urandom | base64)", len(tok), minToken)
	}
	var counts [256]int
	for _, b := range tok {
		counts[b]++
	}
	bits := 0.0
	for _, n := range counts {
		if n > 0 {
			p := float64(n) / float64(len(tok))
			bits -= float64(n) * math.Log2(p)
		}
	}
	if bits < minTokenBits {
		return fmt.Errorf("is too weak (about %.0f bits, want %d): use random bytes (head -c 32 /dev/urandom | base64)", bits, minTokenBits)
	}
	return nil
}

func (c *conn) sendHello(h hello) error {
	data, _ := json.Marshal(h)
	if err := c.writeFrame(fHello, data); err != nil {
		return err
	}
	return c.flush()
}

func (c *conn) readHello() (hello, error) {
	var h hello
	typ, data, err := c.readFrame(nil)
	if err != nil {
		return h, err
	}
	if typ != fHello && typ != fRefused {
		return h, fmt.Errorf("%w: got frame type %d during the handshake", ErrProtocol, typ)
	}
	if err := json.Unmarshal(data, &h); err != nil {
		return h, fmt.Errorf("%w: decoding the handshake: %v", ErrProtocol, err)
	}
	if h.Error != "" {
		return h, &PeerError{Msg: h.Error}
	}
	return h, nil
}

// randRead fills nonces; tests replace it to replay a handshake.
var randRead = rand.Read

func nonce() []byte {
	n := make([]byte, nonceSize)
	randRead(n) // never fails on Linux (getrandom)
	return n
}

func checkMagic(h hello) error {
	if h.Magic != magic {
		return fmt.Errorf("%w: the peer is not an lkc migration endpoint", ErrProtocol)
	}
	if h.Version != ProtocolVersion {
		return fmt.Errorf("%w: the peer speaks protocol version %d, this lkc speaks %d", ErrProtocol, h.Version, ProtocolVersion)
	}
	if len(h.Nonce) != nonceSize {
		return fmt.Errorf("%w: handshake nonce of %d bytes", ErrProtocol, len(h.Nonce))
	}
	return nil
}

// clientHandshake proves the token to the receiver, then checks the
// receiver's proof. Both nonces go in the clear; from them and the token
// both sides derive the session's keys (keyed), and every later frame is
// sealed with them. The sender proves first, by its first sealed frame:
// until then the receiver has sent nothing that depends on the token,
// so a peer without it learns nothing it could test guesses against.
func (c *conn) clientHandshake(token []byte) error {
	nc := nonce()
	if err := c.sendHello(hello{Magic: magic, Version: ProtocolVersion, Nonce: nc}); err != nil {
		return err
	}
	h, err := c.readHello()
	if turnedAway(err) {
		return fmt.Errorf("%w: %w", errTurnedAway, err)
	}
	if err != nil {
		return err
	}
	if err := checkMagic(h); err != nil {
		return err
	}
	if err := c.keyed(token, nc, h.Nonce, roleSender, roleRecv); err != nil {
		return err
	}
	c.refusable = true
	defer func() { c.refusable = false }()
	if err := c.sendHello(hello{OK: true}); err != nil {
		return err
	}
	h, err = c.readHello()
	switch {
	case errors.Is(err, errBadSeal):
		return fmt.Errorf("%w: the receiver does not hold this token", ErrAuth)
	case isAuth(err):
		return fmt.Errorf("%w: the receiver refused this token", ErrAuth)
	case err != nil:
		return err
	case !h.OK:
		return fmt.Errorf("%w: the receiver did not accept the handshake", ErrProtocol)
	}
	return nil
}

// serverHandshake is the receiver's side of clientHandshake: it answers
// with its nonce only, and proves the token once the sender has.
func (c *conn) serverHandshake(token []byte) error {
	h, err := c.readHello()
	if err != nil {
		return err
	}
	if err := checkMagic(h); err != nil {
		c.sendHello(hello{Magic: magic, Version: ProtocolVersion, Error: err.Error()})
		return err
	}
	ns := nonce()
	if err := c.sendHello(hello{Magic: magic, Version: ProtocolVersion, Nonce: ns}); err != nil {
		return err
	}
	if err := c.keyed(token, h.Nonce, ns, roleRecv, roleSender); err != nil {
		return err
	}
	h, err = c.readHello()
	if errors.Is(err, errBadSeal) {
		c.refuse()
		return fmt.Errorf("%w: the sender at %s does not hold the token", ErrAuth, c.nc.RemoteAddr())
	}
	if err != nil {
		return err
	}
	if !h.OK {
		return fmt.Errorf("%w: the sender did not prove the token", ErrProtocol)
	}
	return c.sendHello(hello{OK: true})
}

// refuse tells a peer that failed to prove the token so, in the clear: it
// holds no key to read anything else.
func (c *conn) refuse() {
	data, _ := json.Marshal(hello{Error: authFailed})
	c.sealer, c.opener = nil, nil
	if c.writeFrame(fRefused, data) == nil {
		c.flush()
	}
}

const authFailed = "authentication failed"

// busy is the receiver's answer, in the clear, to a connection beyond its
// bound of handshakes under way (server.go's gate): the sender tries again
// (session.connect).
const busy = "busy: too many connections in their handshake"

// turnAway answers busy on a connection the gate does not admit, reads
// what the sender sent meanwhile (its hello: closing with it unread would
// reset the connection, and the sender might never read the answer) and
// closes it, within a second. It runs on a goroutine of its own, so the
// accepting loop never waits on the peer.
func turnAway(nc net.Conn) {
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(time.Second))
	c := &conn{nc: nc, w: bufio.NewWriterSize(nc, 256)}
	data, _ := json.Marshal(hello{Error: busy})
	if c.writeFrame(fRefused, data) != nil || c.flush() != nil {
		return
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		tc.CloseWrite()
	}
	io.Copy(io.Discard, io.LimitReader(nc, 64<<10))
}

// errTurnedAway is a handshake the receiver answered busy: it had too many
// under way, and a later one may pass.
var errTurnedAway = errors.New("the receiver turned the connection away (too many connections in their handshake)")

// turnedAway says whether err, from the first read of a handshake, is the
// receiver's busy.
func turnedAway(err error) bool {
	var pe *PeerError
	return errors.As(err, &pe) && pe.Msg == busy
}

// isAuth reports whether err is an authentication failure on either side.
func isAuth(err error) bool {
	var pe *PeerError
	return errors.Is(err, ErrAuth) || (errors.As(err, &pe) && pe.Msg == authFailed)
}
