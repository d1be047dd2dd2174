package registry

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/state"
)

func TestAdoptReleaseAndRebuild(t *testing.T) {
	dir, root := t.TempDir(), t.TempDir()
	for _, id := range []string{"a", "b", "c"} {
		if err := os.Mkdir(filepath.Join(root, id), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	r, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := r.Adopt(root, "a", Features{Proc: true})
	b, _ := r.Adopt(root, "b", Features{Proc: true})
	if a.Slot != 0 || b.Slot != 1 || a.Gen != 1 {
		t.Fatalf("slots %d/%d gen %d, want 0/1 gen 1", a.Slot, b.Slot, a.Gen)
	}
	if again, _ := r.Adopt(root, "a", Features{Proc: true}); again.Slot != 0 || again.Gen != 1 {
		t.Errorf("adopting a served container again moved it: %+v", again)
	}
	if _, err := r.Release(root, "a"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Release(root, "a"); !errors.Is(err, ErrNotServed) {
		t.Errorf("second release: %v, want ErrNotServed", err)
	}
	c, _ := r.Adopt(root, "c", Features{OOMPolicy: "kill-largest"})
	if c.Slot != 0 || c.Gen != 2 {
		t.Errorf("reused slot: %d gen %d, want 0 gen 2", c.Slot, c.Gen)
	}
	if r.BySlot(0, 1) != nil || r.BySlot(0, 2) != c {
		t.Error("BySlot answers for the slot's old generation")
	}
	// A crash: b's directory goes while no worker runs.
	if err := os.Remove(filepath.Join(root, "b")); err != nil {
		t.Fatal(err)
	}
	r2, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	es := r2.Entries()
	if len(es) != 1 || es[0].ID != "c" || es[0].Slot != 0 || es[0].Gen != 2 || es[0].Features.OOMPolicy != "kill-largest" {
		t.Fatalf("rebuilt entries %+v, want c in slot 0 gen 2", es)
	}
	if d, _ := r2.Adopt(root, "a", Features{Proc: true}); d.Slot != 1 || d.Gen != 2 {
		t.Errorf("b's freed slot: got %d gen %d, want 1 gen 2", d.Slot, d.Gen)
	}
}

func TestAdoptRefusesBadNames(t *testing.T) {
	r, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Adopt("relative", "a", Features{}); err == nil {
		t.Error("a relative root was adopted")
	}
	if _, err := r.Adopt("/x", "../a", Features{}); err == nil {
		t.Error("id ../a was adopted")
	}
}

// TestAdoptReadsNoState: an adopt comes while create writes the
// container's record, and nothing the registry answers needs it; reading
// it (a decode of the whole config) only delayed the answer create waits
// for. The record here is a FIFO without a writer, which a read would wait
// on for good.
func TestAdoptReadsNoState(t *testing.T) {
	dir, root := t.TempDir(), t.TempDir()
	if err := os.Mkdir(filepath.Join(root, "a"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(state.FilePath(root, "a"), 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := r.Adopt(root, "a", Features{Proc: true})
		if err == nil {
			_, err = Open(dir) // revives the served slot
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		// Let the blocked open go, or the test binary never exits.
		if f, err := os.OpenFile(state.FilePath(root, "a"), os.O_WRONLY, 0); err == nil {
			f.Close()
		}
		t.Fatal("adopt (or the registry's rebuild) read the container's state file")
	}
}

// TestSlotsWrittenInPlace: an adopt and a release rewrite the slot's file
// in place (a rename over it made ext4 write it out at once), a shorter
// record over a longer one reads back whole, and a record longer than a
// page still replaces the file.
func TestSlotsWrittenInPlace(t *testing.T) {
	dir, root := t.TempDir(), t.TempDir()
	// A root whose record is longer than a page: JSON writes each '<' as
	// \u003c.
	long := strings.Repeat(strings.Repeat("<", 200)+"/", os.Getpagesize()/1000)
	for _, d := range []string{filepath.Join(root, "a-longer-id"), filepath.Join(root, "b"), filepath.Join(root, long)} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	r, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Adopt(root, "a-longer-id", Features{Proc: true}); err != nil {
		t.Fatal(err)
	}
	// Held open: a file written in place shows the later records.
	held, err := os.Open(filepath.Join(dir, "slots", "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	if _, err := r.Release(root, "a-longer-id"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Adopt(root, "b", Features{Proc: true}); err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(held); !strings.Contains(string(b), `"id":"b"`) {
		t.Errorf("the slot's file was replaced: it still reads %q", b)
	}
	r2, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if es := r2.Entries(); len(es) != 1 || es[0].ID != "b" || es[0].Gen != 2 {
		t.Fatalf("rebuilt entries %+v, want b in gen 2", es)
	}
	if _, err := r2.Release(root, "b"); err != nil {
		t.Fatal(err)
	}
	longRoot := filepath.Join(root, long)
	if err := os.Mkdir(filepath.Join(longRoot, "c"), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := r2.Adopt(longRoot, "c", Features{Proc: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := r2.Release(longRoot, "c"); err != nil {
		t.Fatal(err)
	}
	r3, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if es := r3.Entries(); len(es) != 0 {
		t.Fatalf("entries %+v after every release", es)
	}
	c, err := r3.Adopt(root, "b", Features{Proc: true})
	if err != nil || c.Slot != 0 || c.Gen != 4 {
		t.Fatalf("adopt after a page-long record: %+v, %v; want slot 0 gen 4", c, err)
	}
}

// TestRootSpellings: one container is one entry however its root is
// spelled (the CLI sends filepath.Abs of --root; another client may not
// clean it), or it would take two slots, two /proc directories and two
// roots/ links, and a release in one spelling would leave the other.
func TestRootSpellings(t *testing.T) {
	dir, root := t.TempDir(), t.TempDir()
	if err := os.Mkdir(filepath.Join(root, "a"), 0o700); err != nil {
		t.Fatal(err)
	}
	r, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	a, err := r.Adopt(root+"/", "a", Features{Proc: true})
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := r.Adopt(root+"/./", "a", Features{Proc: true}); b == nil || b.Slot != a.Slot || a.Root != root {
		t.Errorf("adopts under %s/ and %s/./: %+v and %+v, want one entry under %s", root, root, a, b, root)
	}
	if r.Lookup(root, "a") == nil {
		t.Errorf("lookup under %s finds nothing", root)
	}
	if _, err := r.Release(root, "a"); err != nil {
		t.Errorf("release under %s: %v", root, err)
	}
	if n := len(r.Entries()); n != 0 {
		t.Errorf("%d entries left after the release", n)
	}
}
