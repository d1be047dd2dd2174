package migrate

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// abortSession is a session between its connection and its run: what
// session.abort acts on.
func abortSession(t *testing.T) (*session, net.Conn) {
	t.Helper()
	mine, peer := net.Pipe()
	t.Cleanup(func() { mine.Close(); peer.Close() })
	s := &session{c: newConn(mine, time.Second)}
	s.dumps, s.endDumps = context.WithCancelCause(context.Background())
	return s, peer
}

// closed says whether peer's other end was closed.
func closed(peer net.Conn) bool {
	peer.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	_, err := peer.Read(make([]byte, 1))
	return errors.Is(err, io.EOF)
}

// An abort before the commit or a post-copy's take-over cuts the
// connection and stops the dump under way, naming why.
func TestAbortStopsTheDump(t *testing.T) {
	why := errors.New("a second signal")
	s, peer := abortSession(t)
	s.abort(why)
	if !s.aborted || context.Cause(s.dumps) != why {
		t.Errorf("aborted %v, the dumps' cause %v: want aborted, %v", s.aborted, context.Cause(s.dumps), why)
	}
	if !closed(peer) {
		t.Error("the connection is still open after the abort")
	}
	if s.letFinish != "" {
		t.Errorf("an obeyed abort says %q", s.letFinish)
	}
	if err := s.serve(); err == nil {
		t.Error("a post-copy aborted before its target took over went on")
	}
}

// Once the commit has begun, or a post-copy's target runs the container,
// an abort leaves the migration alone, and the summary says why.
func TestAbortLetsFinish(t *testing.T) {
	for _, tc := range []struct {
		name string
		past func(*session)
		want string
	}{
		{"commit", func(s *session) { s.commit = true }, "its commit had begun"},
		{"postcopy", func(s *session) {
			if err := s.serve(); err != nil {
				t.Fatal(err)
			}
		}, "the target ran it already"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, peer := abortSession(t)
			tc.past(s)
			s.abort(errors.New("a second signal"))
			if s.aborted || s.dumps.Err() != nil {
				t.Errorf("aborted %v, dumps %v: want neither", s.aborted, s.dumps.Err())
			}
			if closed(peer) {
				t.Error("the abort cut the connection")
			}
			if !strings.Contains(s.letFinish, "not aborted (a second signal): "+tc.want) {
				t.Errorf("let finish says %q, want %q", s.letFinish, tc.want)
			}
		})
	}
}
