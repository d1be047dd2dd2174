package migrate

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"os"
)

const (
	magic      = "lkc-migrate"
	nonceSize  = 32
	minToken   = 16
	roleSender = "sender"
	roleRecv   = "receiver"
)

// hello is the one unauthenticated frame shape: each side's nonce, then
// each side's proof that it holds the token.
type hello struct {
	Magic   string `json:"magic,omitempty"`
	Version int    `json:"version,omitempty"`
	Nonce   []byte `json:"nonce,omitempty"`
	Proof   []byte `json:"proof,omitempty"`
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
	if len(tok) < minToken {
		return nil, fmt.Errorf("token in %s is %d bytes: use at least %d", path, len(tok), minToken)
	}
	return tok, nil
}

func proof(token []byte, label string, nc, ns []byte) []byte {
	m := hmac.New(sha256.New, token)
	m.Write([]byte(magic + " v1 " + label))
	m.Write(nc)
	m.Write(ns)
	return m.Sum(nil)
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
	if typ != fHello {
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

func nonce() []byte {
	n := make([]byte, nonceSize)
	rand.Read(n) // never fails on Linux (getrandom)
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

// clientHandshake authenticates the receiver and proves the token to it.
// Neither side trusts the other until both proofs checked; afterwards every
// frame is authenticated with keys bound to both nonces.
func (c *conn) clientHandshake(token []byte) error {
	nc := nonce()
	if err := c.sendHello(hello{Magic: magic, Version: ProtocolVersion, Nonce: nc}); err != nil {
		return err
	}
	h, err := c.readHello()
	if err != nil {
		return err
	}
	if err := checkMagic(h); err != nil {
		return err
	}
	ns := h.Nonce
	if !hmac.Equal(h.Proof, proof(token, roleRecv, nc, ns)) {
		return fmt.Errorf("%w: the receiver does not hold this token", ErrAuth)
	}
	if err := c.sendHello(hello{Proof: proof(token, roleSender, nc, ns)}); err != nil {
		return err
	}
	if h, err = c.readHello(); err != nil {
		return err
	}
	if !h.OK {
		return fmt.Errorf("%w: the receiver did not accept the handshake", ErrProtocol)
	}
	c.keyed(proof(token, "key "+roleSender, nc, ns), proof(token, "key "+roleRecv, nc, ns))
	return nil
}

// serverHandshake is the receiver's side of clientHandshake.
func (c *conn) serverHandshake(token []byte) error {
	h, err := c.readHello()
	if err != nil {
		return err
	}
	if err := checkMagic(h); err != nil {
		c.sendHello(hello{Magic: magic, Version: ProtocolVersion, Error: err.Error()})
		return err
	}
	nc, ns := h.Nonce, nonce()
	if err := c.sendHello(hello{Magic: magic, Version: ProtocolVersion, Nonce: ns, Proof: proof(token, roleRecv, nc, ns)}); err != nil {
		return err
	}
	if h, err = c.readHello(); err != nil {
		return err
	}
	if !hmac.Equal(h.Proof, proof(token, roleSender, nc, ns)) {
		c.sendHello(hello{Error: "authentication failed"})
		return fmt.Errorf("%w: the sender at %s does not hold the token", ErrAuth, c.nc.RemoteAddr())
	}
	if err := c.sendHello(hello{OK: true}); err != nil {
		return err
	}
	c.keyed(proof(token, "key "+roleRecv, nc, ns), proof(token, "key "+roleSender, nc, ns))
	return nil
}

// isAuth reports whether err is an authentication failure on either side.
func isAuth(err error) bool {
	var pe *PeerError
	return errors.Is(err, ErrAuth) || (errors.As(err, &pe) && pe.Msg == "authentication failed")
}
