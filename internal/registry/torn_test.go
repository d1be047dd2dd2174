package registry

import (
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestSlotReadWhileWritten: a reader of the slots (a new worker's Open at
// an upgrade, while the old one still answers an adopt or a release)
// reads each record whole, the old one or the new one, never a mix.
func TestSlotReadWhileWritten(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "slots"), 0o700); err != nil {
		t.Fatal(err)
	}
	recs := []*slotFile{
		{Gen: 1, Root: "/r", ID: "a", Features: Features{Proc: true}},
		{Gen: 2},
		{Gen: 3, Root: "/" + strings.Repeat("x", 300), ID: strings.Repeat("b", 60), Features: Features{Proc: true}},
	}
	if err := writeSlot(dir, 0, recs[0]); err != nil {
		t.Fatal(err)
	}
	var stop atomic.Bool
	done := make(chan error, 1)
	go func() {
		for i := 0; !stop.Load(); i++ {
			if err := writeSlot(dir, 0, recs[i%len(recs)]); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	defer func() {
		stop.Store(true)
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	for end := time.Now().Add(time.Second); time.Now().Before(end); {
		slots, err := readSlots(filepath.Join(dir, "slots"))
		if err != nil {
			t.Fatalf("a slot read while it is written: %v", err)
		}
		if len(slots) != 1 {
			t.Fatalf("slots %+v", slots)
		}
		s := slots[0]
		if !(s.Gen == 1 && s.ID == "a") && !(s.Gen == 2 && s.ID == "") && !(s.Gen == 3 && s.ID == recs[2].ID && s.Root == recs[2].Root) {
			t.Fatalf("a slot read while it is written: %+v", s)
		}
	}
}
