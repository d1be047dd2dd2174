package migrate

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// FuzzFrames feeds a receiver what a peer may send. The input goes as
// raw bytes to the handshake, which must fail without the token, and, cut
// into frames (type, 2-byte length, payload) sealed with a session's
// keys as a sender holding the token would send them, to the receiver's
// control-message decoding and file stream. Nothing may panic, and the
// stream may create nothing outside its own directory.
//
//	go test -run '^$' -fuzz FuzzFrames ./internal/migrate
//
// Its seeds, in testdata/fuzz/FuzzFrames, are a valid rootfs stream,
// attempts to leave it (a "../" path, an entry under a symlink, a hard
// link outside), a handshake and a peer's error.
func FuzzFrames(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		c := newConn(&fakeConn{r: bytes.NewReader(data), w: io.Discard}, 0)
		if err := c.serverHandshake(testToken); err == nil {
			t.Fatal("a handshake without the token succeeded")
		}
		var wire bytes.Buffer
		sender := newConn(&fakeConn{r: bytes.NewReader(nil), w: &wire}, 0)
		receiver := newConn(&fakeConn{r: &wire, w: io.Discard}, 0)
		nc, ns := make([]byte, nonceSize), make([]byte, nonceSize)
		if sender.keyed(testToken, nc, ns, roleSender, roleRecv) != nil || receiver.keyed(testToken, nc, ns, roleRecv, roleSender) != nil {
			t.Fatal("keying failed")
		}
		for _, fr := range splitFrames(data) {
			if err := sender.writeFrame(fr.typ, fr.payload); err != nil {
				t.Fatal(err)
			}
		}
		sender.flush()
		if _, err := receiver.next(); err != nil {
			return
		}
		base := t.TempDir()
		receiver.recvTree(filepath.Join(base, "tree"), nil)
		entries, err := os.ReadDir(base)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if e.Name() != "tree" {
				t.Fatalf("the stream created %s outside its directory", e.Name())
			}
		}
	})
}

type frame struct {
	typ     byte
	payload []byte
}

// splitFrames cuts data into frames: type, 2-byte big-endian length,
// payload (shortened to what is left).
func splitFrames(data []byte) []frame {
	var out []frame
	for len(data) >= 3 {
		n := min(int(binary.BigEndian.Uint16(data[1:3])), len(data)-3)
		out = append(out, frame{data[0], data[3 : 3+n]})
		data = data[3+n:]
	}
	return out
}

// fakeConn is a net.Conn over a reader and a writer, without deadlines.
type fakeConn struct {
	r io.Reader
	w io.Writer
}

func (c *fakeConn) Read(b []byte) (int, error)       { return c.r.Read(b) }
func (c *fakeConn) Write(b []byte) (int, error)      { return c.w.Write(b) }
func (c *fakeConn) Close() error                     { return nil }
func (c *fakeConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *fakeConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (c *fakeConn) SetDeadline(time.Time) error      { return nil }
func (c *fakeConn) SetReadDeadline(time.Time) error  { return nil }
func (c *fakeConn) SetWriteDeadline(time.Time) error { return nil }
