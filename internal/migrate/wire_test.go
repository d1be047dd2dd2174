package migrate

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var testToken = []byte("0123456789abcdef-test-token")

// pair returns both ends of a session after a handshake with the given
// tokens, and each side's handshake error.
func pair(t *testing.T, senderToken, receiverToken []byte) (*conn, *conn, error, error) {
	t.Helper()
	a, b := net.Pipe()
	t.Cleanup(func() { a.Close(); b.Close() })
	ca, cb := newConn(a, 5*time.Second), newConn(b, 5*time.Second)
	errc := make(chan error, 1)
	go func() {
		err := cb.serverHandshake(receiverToken)
		if err != nil {
			b.Close()
		}
		errc <- err
	}()
	errA := ca.clientHandshake(senderToken)
	if errA != nil {
		a.Close()
	}
	return ca, cb, errA, <-errc
}

func TestHandshake(t *testing.T) {
	ca, cb, errA, errB := pair(t, testToken, testToken)
	if errA != nil || errB != nil {
		t.Fatalf("handshake: sender %v, receiver %v", errA, errB)
	}
	go ca.send(opOffer, offer{ID: "x"})
	var of offer
	if err := cb.expect(opOffer, &of); err != nil || of.ID != "x" {
		t.Fatalf("expect offer: %v %+v", err, of)
	}
}

func TestHandshakeWrongToken(t *testing.T) {
	_, _, errA, errB := pair(t, []byte("another-token-of-16-bytes"), testToken)
	if !errors.Is(errA, ErrAuth) {
		t.Errorf("sender with a wrong token: %v, want ErrAuth (the receiver's proof must not check)", errA)
	}
	if errB == nil {
		t.Errorf("receiver accepted a sender with a wrong token")
	}
}

// A frame altered in flight must be refused once the session is keyed.
func TestFrameTamper(t *testing.T) {
	ca, cb, errA, errB := pair(t, testToken, testToken)
	if errA != nil || errB != nil {
		t.Fatalf("handshake: %v %v", errA, errB)
	}
	ca.sendMAC.Reset()
	ca.sendSeq++ // a replayed or reordered frame looks like this
	go ca.send(opOffer, offer{ID: "x"})
	if err := cb.expect(opOffer, nil); !errors.Is(err, ErrProtocol) || !strings.Contains(err.Error(), "bad MAC") {
		t.Fatalf("tampered frame: %v, want a bad MAC", err)
	}
}

func TestVersionMismatch(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	cb := newConn(b, 5*time.Second)
	errc := make(chan error, 1)
	go func() { errc <- cb.serverHandshake(testToken) }()
	ca := newConn(a, 5*time.Second)
	if err := ca.sendHello(hello{Magic: magic, Version: ProtocolVersion + 1, Nonce: nonce()}); err != nil {
		t.Fatal(err)
	}
	h, err := ca.readHello()
	var pe *PeerError
	if !errors.As(err, &pe) || !strings.Contains(pe.Msg, "version") {
		t.Fatalf("reply to a newer version: %+v %v", h, err)
	}
	if err := <-errc; !errors.Is(err, ErrProtocol) {
		t.Fatalf("receiver: %v", err)
	}
}

func TestReadToken(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, mode)
		return p
	}
	if tok, err := ReadToken(write("ok", "  a-long-enough-secret\n", 0o600)); err != nil || string(tok) != "a-long-enough-secret" {
		t.Errorf("good token: %q %v", tok, err)
	}
	if _, err := ReadToken(write("short", "short\n", 0o600)); err == nil {
		t.Error("a 5-byte token was accepted")
	}
	if _, err := ReadToken(write("open", "a-long-enough-secret", 0o644)); err == nil {
		t.Error("a world-readable token file was accepted")
	}
}
