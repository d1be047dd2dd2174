package container

import (
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestWhilePeerLives checks that the context ends when the other end of
// the socket goes, not before, and that stop ends the watch either way.
func TestWhilePeerLives(t *testing.T) {
	for _, hangUp := range []bool{false, true} {
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		ctx, stop, err := whilePeerLives(fds[0])
		if err != nil {
			t.Fatal(err)
		}
		unix.Write(fds[1], []byte("a message is no hang-up"))
		if hangUp {
			unix.Close(fds[1])
			select {
			case <-ctx.Done():
			case <-time.After(5 * time.Second):
				t.Fatal("the peer hung up and the context goes on")
			}
		} else if ctx.Err() != nil || waitDone(ctx.Done(), 50*time.Millisecond) {
			t.Fatal("the context ended while the peer lives")
		}
		stop()
		unix.Close(fds[0])
		if !hangUp {
			unix.Close(fds[1])
		}
	}
}

func waitDone(done <-chan struct{}, d time.Duration) bool {
	select {
	case <-done:
		return true
	case <-time.After(d):
		return false
	}
}
