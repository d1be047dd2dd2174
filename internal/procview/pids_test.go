package procview

import (
	"testing"

	"github.com/lkc-containers/lkc/internal/procfs"
)

// TestPidBook: a count stored by one worker is what the next one, which
// maps the same run directory's book, loads for the slot's generation,
// and not for the slot's next container.
func TestPidBook(t *testing.T) {
	dir := t.TempDir()
	b, err := openPidBook(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := b.record(3, 7).Load(); ok {
		t.Fatal("a new book has a record")
	}
	want := procfs.PidCount{Pid: 4194304, Start: 123456, Forks: 1 << 40}
	b.record(3, 7).Store(want)
	next, err := openPidBook(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := next.record(3, 7).Load(); !ok || got != want {
		t.Errorf("after reopening: %+v %v; want %+v", got, ok, want)
	}
	if _, ok := next.record(3, 8).Load(); ok {
		t.Error("the slot's next generation loads its predecessor's count")
	}
	if next.record(bookSlots, 1) != nil || (*pidBook)(nil).record(0, 1) != nil {
		t.Error("a slot beyond the book, or no book, has a record")
	}
}
