package migrate

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
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
	s := &session{o: Options{ID: "c1"}, c: newConn(mine, time.Second)}
	s.o.defaults()
	s.dumps, s.endDumps = context.WithCancelCause(context.Background())
	return s, peer
}

// closed says whether peer's other end was closed.
func closed(peer net.Conn) bool {
	peer.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	_, err := peer.Read(make([]byte, 1))
	return errors.Is(err, io.EOF)
}

// An abort before the commit cuts the connection, stops the dump under
// way, naming why, and keeps the commit from leaving: the source
// resumes.
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
	if err := s.handOver(); err == nil || errors.Is(err, ErrInDoubt) {
		t.Errorf("the commit after the abort: %v, want refused, not in doubt", err)
	}
	if s.handedOver() {
		t.Error("an abort before the commit keeps the source paused")
	}
}

// The commit the target confirms hands the container over: the source
// never resumes its copy, and an abort after it leaves the move alone.
func TestHandOver(t *testing.T) {
	s, peer := abortSession(t)
	target := newConn(peer, time.Second)
	got := make(chan error, 1)
	go func() {
		if err := target.expect(opCommit, nil); err != nil {
			got <- err
			return
		}
		got <- target.send(opCommitted, nil)
	}()
	if err := s.handOver(); err != nil {
		t.Fatal(err)
	}
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	if !s.handedOver() {
		t.Error("the source may resume after the target confirmed the commit")
	}
	s.abort(errors.New("a second signal"))
	if s.aborted || s.letFinish != "not aborted (a second signal): the target ran it already" {
		t.Errorf("aborted %v, let finish %q: want let finish", s.aborted, s.letFinish)
	}
}

// Once the target runs the container, or the commit has begun, an abort
// leaves the migration alone, and the summary says why.
func TestAbortLetsFinish(t *testing.T) {
	for _, tc := range []struct {
		name string
		past func(*session)
		want string
	}{
		{"commit", func(s *session) { s.commit = true }, "its commit had begun"},
		{"postcopy", func(s *session) {
			s.mode, s.commit, s.running = ModePostcopy, true, true
		}, "the target ran it already, its memory still coming from here"},
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
			if !s.handedOver() {
				t.Error("the source may resume")
			}
		})
	}
}

// A commit the target does not confirm leaves the migration in doubt, the
// source copy paused (the target may run the container), and the error
// says how to resolve it.
func TestCommitUnconfirmed(t *testing.T) {
	s, peer := abortSession(t)
	peer.Close()
	err := s.handOver()
	if !errors.Is(err, ErrInDoubt) || !strings.Contains(err.Error(), "the target did not confirm the commit") {
		t.Errorf("a commit over a closed connection: %v, want in doubt", err)
	}
	if err != nil && !strings.Contains(err.Error(), "`lkc state c1` there") {
		t.Errorf("an in-doubt error does not say how to resolve it: %v", err)
	}
	if !s.handedOver() {
		t.Error("the source may resume after the commit began")
	}
}

// receiverSession is a receiver staged for container c1, its sender at
// the returned end of a pipe.
func receiverSession(t *testing.T) (*receiver, *conn) {
	t.Helper()
	mine, peer := net.Pipe()
	t.Cleanup(func() { mine.Close(); peer.Close() })
	dir := t.TempDir()
	r := &receiver{o: ServeOptions{Root: t.TempDir(), BundleDir: dir}, c: newConn(mine, time.Second), of: offer{ID: "c1"}}
	r.o.defaults()
	if err := os.MkdirAll(filepath.Join(dir, pendingDir), 0o700); err != nil {
		t.Fatal(err)
	}
	r.of.Config = json.RawMessage(`{"root": {"path": "rootfs"}}`)
	if err := r.stage(); err != nil {
		t.Fatal(err)
	}
	return r, newConn(peer, time.Second)
}

// A receiver that fails before the commit deletes its copy, which never
// ran, and tells the sender, whose copy is the container again.
func TestReceiverFailGivesBack(t *testing.T) {
	r, sender := receiverSession(t)
	r.restored = true
	got := make(chan error, 1)
	go func() { got <- sender.expect(opRestored, nil) }()
	r.fail(errors.New("connecting veth: no bridge br0"))
	var refused *PeerError
	if err := <-got; !errors.As(err, &refused) {
		t.Errorf("the sender got %v, want the receiver's error", err)
	}
	if _, err := os.Lstat(filepath.Join(r.o.BundleDir, "c1")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the bundle stays after the failure: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(r.o.BundleDir, pendingDir, "c1")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the pending mark stays after the failure: %v", err)
	}
}

// Once the receiver owns the container (it let it run on the commit), a
// failure keeps it, with its bundle, and tells the sender nothing that
// would make it resume its copy; a commit before the restore is a
// protocol error.
func TestReceiverKeepsWhatItOwns(t *testing.T) {
	r, sender := receiverSession(t)
	if err := r.commit(); !errors.Is(err, ErrProtocol) {
		t.Errorf("a commit before the restore: %v, want a protocol error", err)
	}
	r.restored = true
	if err := r.own(); err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() { got <- sender.expect(opRestored, nil) }()
	r.fail(errors.New("receiving from the sender: EOF"))
	r.c.nc.Close()
	var refused *PeerError
	if err := <-got; errors.As(err, &refused) {
		t.Errorf("the sender was told %v", err)
	}
	if _, err := os.Lstat(filepath.Join(r.o.BundleDir, "c1", "config.json")); err != nil {
		t.Errorf("the owned container's bundle is gone: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(r.o.BundleDir, pendingDir, "c1")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a restarted receiver would delete the owned container: its pending mark stays (%v)", err)
	}
}
