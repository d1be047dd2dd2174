package fuse

import (
	"os"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestOneRequestWakesOneWaiter: readers waiting for requests are woken one
// per request, not all (a pipe stands for /dev/fuse: both wake pollers
// from one wait queue), and stop still wakes every one.
func TestOneRequestWakesOneWaiter(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	c, err := newConn(r)
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	const readers = 4
	var woken atomic.Int32
	stopped := make(chan struct{}, readers)
	done := make(chan struct{})
	defer close(done)
	for range readers {
		wt, err := c.newWaiter()
		if err != nil {
			t.Fatal(err)
		}
		defer wt.close()
		go func() {
			for {
				n, err := unix.EpollWait(wt.epfd, wt.events[:], -1)
				if err == unix.EINTR {
					continue
				}
				for _, ev := range wt.events[:max(n, 0)] {
					if int(ev.Fd) == c.stopfd {
						stopped <- struct{}{}
						return
					}
				}
				woken.Add(1)
				<-done // a busy reader: it never takes the byte
				return
			}
		}()
	}
	time.Sleep(50 * time.Millisecond) // all wait
	if _, err := w.Write([]byte{1}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if n := woken.Load(); n != 1 {
		t.Fatalf("one request woke %d of %d waiting readers, want 1", n, readers)
	}
	c.stop()
	for i := 0; i < readers-1; i++ {
		select {
		case <-stopped:
		case <-time.After(5 * time.Second):
			t.Fatalf("stop woke %d of the %d readers still waiting", i, readers-1)
		}
	}
}
