package migrate

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
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
		t.Errorf("sender with a wrong token: %v, want ErrAuth", errA)
	}
	if errB == nil {
		t.Errorf("receiver accepted a sender with a wrong token")
	}
}

// A frame altered, replayed or reordered in flight must be refused once
// the session is keyed.
func TestFrameTamper(t *testing.T) {
	ca, cb, errA, errB := pair(t, testToken, testToken)
	if errA != nil || errB != nil {
		t.Fatalf("handshake: %v %v", errA, errB)
	}
	ca.sendSeq++ // a replayed or reordered frame looks like this
	go ca.send(opOffer, offer{ID: "x"})
	if err := cb.expect(opOffer, nil); !errors.Is(err, errBadSeal) {
		t.Fatalf("tampered frame: %v, want a bad seal", err)
	}
}

// recorder keeps what one side of a connection wrote.
type recorder struct {
	net.Conn
	mu  sync.Mutex
	out bytes.Buffer
}

func (r *recorder) Write(b []byte) (int, error) {
	r.mu.Lock()
	r.out.Write(b)
	r.mu.Unlock()
	return r.Conn.Write(b)
}

func (r *recorder) bytes() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return bytes.Clone(r.out.Bytes())
}

// The receiver sends nothing that depends on its token before the sender
// has proven it holds it: facing a sender with the wrong token, receivers
// with different tokens (and the same nonce) send the same bytes, so a
// peer without the token has nothing to test guesses against.
func TestReceiverRevealsNothing(t *testing.T) {
	fixed := func(b []byte) (int, error) {
		for i := range b {
			b[i] = byte(i)
		}
		return len(b), nil
	}
	randRead = fixed
	t.Cleanup(func() { randRead = rand.Read })
	transcript := func(token []byte) []byte {
		a, b := net.Pipe()
		defer a.Close()
		rec := &recorder{Conn: b}
		errc := make(chan error, 1)
		go func() {
			errc <- newConn(rec, 5*time.Second).serverHandshake(token)
			b.Close()
		}()
		err := newConn(a, 5*time.Second).clientHandshake([]byte("the-guess-of-an-attacker-0123"))
		if !errors.Is(err, ErrAuth) || !strings.Contains(err.Error(), "refused") {
			t.Errorf("sender with a wrong token: %v, want the receiver's refusal", err)
		}
		if err := <-errc; !errors.Is(err, ErrAuth) {
			t.Errorf("receiver: %v, want ErrAuth", err)
		}
		return rec.bytes()
	}
	one, other := transcript(testToken), transcript([]byte("another-token-of-the-receiver-42"))
	if !bytes.Equal(one, other) {
		t.Fatalf("the receiver's bytes depend on its token:\n%q\n%q", one, other)
	}
}

// A file stream crosses the wire sealed: none of its content, names or
// the offer's secrets appear in the bytes sent.
func TestStreamSealed(t *testing.T) {
	a, b := net.Pipe()
	t.Cleanup(func() { a.Close(); b.Close() })
	rec := &recorder{Conn: a}
	ca, cb := newConn(rec, 5*time.Second), newConn(b, 5*time.Second)
	errc := make(chan error, 1)
	go func() { errc <- cb.serverHandshake(testToken) }()
	if err := ca.clientHandshake(testToken); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	src := t.TempDir()
	secret := "file-secret-" + strings.Repeat("S3CR3T", 50)
	if err := os.WriteFile(filepath.Join(src, "secret-name"), []byte(secret), 0o600); err != nil {
		t.Fatal(err)
	}
	go func() {
		ca.send(opOffer, offer{ID: "x", Config: []byte(`{"process":{"env":["PASSWORD=env-secret-value"]}}`)})
		errc <- ca.sendTree(src, func(int64) {})
	}()
	if err := cb.expect(opOffer, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := cb.recvTree(filepath.Join(t.TempDir(), "dst"), nil); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	wire := rec.bytes()
	for _, plain := range []string{"S3CR3T", "secret-name", "env-secret-value", `"offer"`} {
		if bytes.Contains(wire, []byte(plain)) {
			t.Errorf("%q crossed the wire in the clear", plain)
		}
	}
}

// Tokens too short or too repetitive to resist guessing are refused.
func TestCheckToken(t *testing.T) {
	for tok, ok := range map[string]bool{
		"short": false, "passwordpassword": false, "3q2+7wAAAAAAAAAAAAAAAA==": false,
		"aGVsbG8gd29ybGQgdGhpcyBpcyBhIHRlc3QgdG9rZW4=": true, string(testToken): true,
	} {
		if err := checkToken([]byte(tok)); (err == nil) != ok {
			t.Errorf("token %q: %v, want accepted %v", tok, err, ok)
		}
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

// BenchmarkFrames measures what sealing costs a stream of full frames,
// written and read (one side each): go test -bench Frames ./internal/migrate
func BenchmarkFrames(b *testing.B) {
	for _, sealed := range []bool{false, true} {
		b.Run(map[bool]string{false: "clear", true: "sealed"}[sealed], func(b *testing.B) {
			var wire bytes.Buffer
			w := newConn(&fakeConn{r: bytes.NewReader(nil), w: &wire}, 0)
			r := newConn(&fakeConn{r: &wire, w: io.Discard}, 0)
			if sealed {
				n := make([]byte, nonceSize)
				w.keyed(testToken, n, n, roleSender, roleRecv)
				r.keyed(testToken, n, n, roleRecv, roleSender)
			}
			payload, buf := make([]byte, maxFrame), make([]byte, maxFrame+sealOverhead)
			b.SetBytes(maxFrame)
			for b.Loop() {
				w.writeFrame(fData, payload)
				w.flush()
				if _, _, err := r.readFrame(buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestLargeFrameKeepsOrder: a frame too large for the write buffer goes
// out past it (writeDirect), after the smaller frames buffered before it,
// and every frame still opens in order on the other side.
func TestLargeFrameKeepsOrder(t *testing.T) {
	var wire bytes.Buffer
	w := newConn(&fakeConn{r: bytes.NewReader(nil), w: &wire}, 0)
	r := newConn(&fakeConn{r: &wire, w: io.Discard}, 0)
	n := make([]byte, nonceSize)
	w.keyed(testToken, n, n, roleSender, roleRecv)
	r.keyed(testToken, n, n, roleRecv, roleSender)
	big := bytes.Repeat([]byte{0xa5}, maxFrame)
	frames := [][]byte{[]byte("small, buffered"), big, []byte("after"), big[:w.w.Size()], []byte("last")}
	for _, f := range frames {
		if err := w.writeFrame(fData, f); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.flush(); err != nil {
		t.Fatal(err)
	}
	if w.bytesOut != int64(wire.Len()) {
		t.Fatalf("bytesOut %d, %d bytes on the wire", w.bytesOut, wire.Len())
	}
	for i, want := range frames {
		typ, got, err := r.readFrame(nil)
		if err != nil || typ != fData || !bytes.Equal(got, want) {
			t.Fatalf("frame %d: type %d, %d bytes, %v; want %d bytes", i, typ, len(got), err, len(want))
		}
	}
}
