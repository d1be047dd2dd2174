package container

import (
	"context"
	"fmt"

	"golang.org/x/sys/unix"
)

// whilePeerLives returns a context that is cancelled once the other end of
// the socket sock hangs up (the process holding it died), and the stop
// that ends the watch; stop returns once the watching goroutine is gone.
func whilePeerLives(sock int) (context.Context, func(), error) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		return nil, nil, fmt.Errorf("pipe: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer unix.Close(p[0])
		// Without POLLIN: a message is no hang-up. POLLHUP and POLLERR
		// are reported whatever is asked.
		fds := []unix.PollFd{{Fd: int32(sock), Events: unix.POLLRDHUP}, {Fd: int32(p[0]), Events: unix.POLLIN}}
		for {
			_, err := unix.Poll(fds, -1)
			if err == unix.EINTR {
				continue
			}
			// A poll that fails loses the watch, not the hooks.
			if err == nil && fds[0].Revents != 0 {
				cancel()
			}
			return
		}
	}()
	stop := func() {
		unix.Close(p[1]) // the read end polls POLLHUP
		<-done
		cancel()
	}
	return ctx, stop, nil
}
