package pollwait

import (
	"errors"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// pipe returns a pipe's ends, closed when the test ends, and a Waiter of
// its read end.
func pipe(t *testing.T) (r, w int, wait *Waiter) {
	t.Helper()
	fds := make([]int, 2)
	if err := unix.Pipe2(fds, unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fds[0]); unix.Close(fds[1]) })
	wait, err := New(fds[0], "pipe")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { wait.Close() })
	return fds[0], fds[1], wait
}

func TestWaitReadsWhenReadable(t *testing.T) {
	r, wr, w := pipe(t)
	go func() {
		time.Sleep(20 * time.Millisecond)
		unix.Write(wr, []byte("x"))
	}()
	var buf [8]byte
	var n, tries int
	err := w.Wait(time.Time{}, func() bool {
		tries++
		var rerr error
		n, rerr = unix.Read(r, buf[:])
		return rerr != unix.EAGAIN
	})
	if err != nil || n != 1 || buf[0] != 'x' {
		t.Fatalf("Wait: err %v, read %d %q", err, n, buf[:n])
	}
	if tries < 2 {
		t.Errorf("try ran %d times: the first read should have found nothing", tries)
	}
}

func TestWaitDeadlineAndClose(t *testing.T) {
	_, _, w := pipe(t)
	never := func() bool { return false }
	if err := w.Wait(time.Now().Add(10*time.Millisecond), never); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Wait past its deadline: %v, want os.ErrDeadlineExceeded", err)
	}
	go func() {
		time.Sleep(20 * time.Millisecond)
		w.Close()
	}()
	if err := w.Wait(time.Time{}, never); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("Wait across Close: %v, want os.ErrClosed", err)
	}
}

func TestNewRefusesAFileThePollerCannotWait(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "regular")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if w, err := New(int(f.Fd()), "regular file"); err == nil {
		w.Close()
		t.Fatal("New took a regular file, which epoll refuses")
	}
}
