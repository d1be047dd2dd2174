package fuse

import (
	"strings"
	"testing"
	"time"
)

// TestEvictionKeepsVersionsInUse: when the versions kept reach
// versionsMax, those left long unused are dropped, but never the version
// of a file being rendered (it has no rendering yet): the READs after
// that GETATTR must be served from the rendering whose size the kernel
// was told, not from a second one.
func TestEvictionKeepsVersionsInUse(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	fs := newTreeFS(map[string]func(int) ([]byte, error){"f": func(n int) ([]byte, error) {
		if n == 1 {
			close(started)
			<-release
		}
		return []byte(time.Now().String()[:n+10]), nil
	}})
	fs.fresh = time.Second
	s := NewServer(fs)
	node, _ := fs.node("f")
	done := make(chan Attr)
	go func() {
		a, err := fs.Getattr(node)
		if err == nil {
			_, err = s.current(&a, askPath, nil)
		}
		if err != nil {
			t.Error(err)
		}
		done <- a
	}()
	<-started
	old := time.Now().Add(-2 * versionsKeep)
	s.versions.mu.Lock()
	for i := range versionsMax {
		v := &version{}
		v.cur.Store(&rendering{content: []byte("x"), keep: true, at: old})
		s.versions.nodes[uint64(1000+i)] = v
	}
	s.versions.mu.Unlock()
	s.versions.get(1, time.Now()) // a new node: the map is full
	close(release)
	a := <-done
	out, err := s.read(request{Node: node, Body: readBody(0, 0, 4096)})
	if err != nil || uint64(len(out)) != a.Size || fs.renders.Load() != 1 {
		t.Errorf("READ after the GETATTR: %q (%v), %d renderings; want the one rendering of %d bytes",
			out, err, fs.renders.Load(), a.Size)
	}
	if _, ok := s.versions.nodes[1000]; ok {
		t.Error("a version unused for longer than versionsKeep was kept")
	}
}

// TestPushOnlyInPlaceWhenSafe: on a connection with EXPLICIT_INVAL_DATA a
// new version is stored over the old pages (FUSE_NOTIFY_STORE alone, the
// answer then applied) only when every answer told since the last
// barrier told its length; the first version, and one whose length
// differs, go behind FUSE_NOTIFY_INVAL_INODE. A connection whose mode is
// unknown always puts the barrier first; one with AUTO_INVAL_DATA
// notifies only a longer version, as before.
func TestPushOnlyInPlaceWhenSafe(t *testing.T) {
	lengths := []int{3000, 3000, 5000, 900, 900, 900}
	want := map[Inval][]string{
		InvalExplicit: {"inval store", "store", "inval store", "inval store", "store", "store"},
		InvalUnknown:  {"inval store", "inval store", "inval store", "inval store", "inval store", "inval store"},
		InvalAuto:     {"inval store", "", "inval store", "", "", ""},
	}
	for mode, want := range want {
		fs := newTreeFS(map[string]func(int) ([]byte, error){"f": func(n int) ([]byte, error) {
			return generations(lengths[(n-1)%len(lengths)])(n)
		}})
		s := NewServer(fs)
		s.SetInval(mode)
		var sent []string
		s.notify = func(b []byte) error {
			sent = append(sent, map[uint32]string{notifyInvalInode: "inval", notifyStore: "store"}[ne.Uint32(b[4:])])
			return nil
		}
		node, _ := fs.node("f")
		var got []string
		for i := range lengths {
			time.Sleep(2 * reuseWithin) // Fresh 0: each GETATTR renders
			sent = nil
			a, err := fs.Getattr(node)
			if err == nil {
				_, err = s.current(&a, askPath, nil)
			}
			if err != nil || a.Size < uint64(lengths[i]) {
				t.Fatalf("mode %d, GETATTR %d: size %d, %v", mode, i, a.Size, err)
			}
			got = append(got, strings.Join(sent, " "))
		}
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("mode %d: notifications %q, want %q", mode, got, want)
		}
	}
}
