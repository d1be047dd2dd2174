package fuse

import (
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestServingWakesNoReader: requests answered from memory, and renderings
// quicker than slowRender, are handled by the reader that holds the turn,
// waking no other (each request handing the device to the next reader woke
// a sleeping one, which then slept again), while a slow rendering still
// leaves the connection to the others (TestSlowContentHoldsOneReader).
// The block profile counts each wake-up of a reader that then sleeps again.
func TestServingWakesNoReader(t *testing.T) {
	dir, f := mountTest(t)
	fs := newTreeFS(map[string]func(int) ([]byte, error){"f": generations(100)})
	s := NewServer(fs)
	s.Readers = 4
	runtime.SetBlockProfileRate(1)
	defer runtime.SetBlockProfileRate(0)
	serve(t, f, s, false)
	path := filepath.Join(dir, "f")
	if _, err := readFile(path); err != nil { // renders the first version
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // every reader waits
	// FORCE_SYNC: a GETATTR each, answered from the version within
	// reuseWithin, rendered (in the same size) after it.
	statx := func() {
		var st unix.Statx_t
		if err := unix.Statx(unix.AT_FDCWD, path, unix.AT_STATX_FORCE_SYNC, unix.STATX_BASIC_STATS, &st); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		what string
		gap  time.Duration
	}{{"answered from memory", 0}, {"rendered", reuseWithin + time.Millisecond}} {
		before, renders := readerBlocks(), fs.renders.Load()
		const stats = 20
		for range stats {
			time.Sleep(c.gap)
			statx()
		}
		if c.gap > 0 && fs.renders.Load()-renders < stats/2 {
			t.Fatalf("%d GETATTRs rendered %d times, want each", stats, fs.renders.Load()-renders)
		}
		// Handing the device on woke a reader per request; a render
		// that a busy host stretches past slowRender rightly wakes one
		// now and then.
		if n := readerBlocks() - before; n >= stats/4 {
			t.Errorf("%d GETATTRs %s woke readers that slept again %d times, want (almost) none", stats, c.what, n)
		}
	}
}

// readerBlocks counts the block profile's events in the readers' loop.
func readerBlocks() int64 {
	n, _ := runtime.BlockProfile(nil)
	recs := make([]runtime.BlockProfileRecord, n+64)
	n, ok := runtime.BlockProfile(recs)
	for !ok {
		recs = make([]runtime.BlockProfileRecord, 2*n)
		n, ok = runtime.BlockProfile(recs)
	}
	var total int64
	for _, r := range recs[:n] {
		frames := runtime.CallersFrames(r.Stack())
		for more := true; more; {
			var fr runtime.Frame
			fr, more = frames.Next()
			if strings.HasSuffix(fr.Function, "fuse.(*Server).readLoop") {
				total += r.Count
				break
			}
		}
	}
	return total
}

// TestSlowContentHoldsOneReader: while one file's rendering waits, the
// other readers go on serving the connection.
func TestSlowContentHoldsOneReader(t *testing.T) {
	dir, f := mountTest(t)
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	fs := newTreeFS(map[string]func(int) ([]byte, error){
		"slow": func(int) ([]byte, error) {
			once.Do(func() { close(entered) })
			<-release
			return []byte("slow\n"), nil
		},
		"fast": static("fast\n"),
	})
	s := NewServer(fs)
	s.Readers = 4
	serve(t, f, s, false)
	slowDone := make(chan error, 1)
	go func() {
		_, err := readFile(filepath.Join(dir, "slow"))
		slowDone <- err
	}()
	defer func() {
		close(release)
		if err := <-slowDone; err != nil {
			t.Error(err)
		}
	}()
	select {
	case <-entered:
	case <-time.After(5 * time.Second):
		t.Fatal("the slow file was not rendered within 5 s")
	}
	fastDone := make(chan error, 1)
	go func() {
		got, err := readFile(filepath.Join(dir, "fast"))
		if err == nil && string(got) != "fast\n" {
			t.Errorf("fast read %q", got)
		}
		fastDone <- err
	}()
	select {
	case err := <-fastDone:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		close(release) // lets the fast read end before the test does
		release = make(chan struct{})
		<-fastDone
		t.Fatal("a read waited for another file's rendering")
	}
}
