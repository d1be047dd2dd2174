package console

import (
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// Attached is a container terminal served on lkc's own stdio, for `run` and
// `exec` with a terminal but no console socket: the caller's terminal in raw
// mode, bytes copied both ways, window size followed.
type Attached struct {
	master  *os.File
	restore *unix.Termios // stdin's mode before raw, nil if not a terminal
	output  chan struct{} // closed once the container's output is drained
}

// Attach serves master on os.Stdin and os.Stdout until Close.
func Attach(master *os.File) (*Attached, error) {
	a := &Attached{master: master, output: make(chan struct{})}
	if t, err := unix.IoctlGetTermios(int(os.Stdin.Fd()), unix.TCGETS); err == nil {
		saved := *t
		raw := *t
		makeRaw(&raw)
		if err := unix.IoctlSetTermios(int(os.Stdin.Fd()), unix.TCSETS, &raw); err != nil {
			return nil, fmt.Errorf("setting the terminal to raw mode: %w", err)
		}
		a.restore = &saved
	}
	a.Resize()
	go io.Copy(master, os.Stdin)
	go func() {
		// Ends with EIO once every process holding the pty's slave is gone.
		io.Copy(os.Stdout, master)
		close(a.output)
	}()
	return a, nil
}

// Resize gives the container's terminal the size of the caller's.
func (a *Attached) Resize() {
	if ws, err := unix.IoctlGetWinsize(int(os.Stdin.Fd()), unix.TIOCGWINSZ); err == nil {
		unix.IoctlSetWinsize(int(a.master.Fd()), unix.TIOCSWINSZ, ws)
	}
}

// Close waits for the container's remaining output, then restores the
// caller's terminal.
func (a *Attached) Close() {
	<-a.output
	a.master.Close()
	if a.restore != nil {
		unix.IoctlSetTermios(int(os.Stdin.Fd()), unix.TCSETS, a.restore)
	}
}

// makeRaw is cfmakeraw(3).
func makeRaw(t *unix.Termios) {
	t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	t.Oflag &^= unix.OPOST
	t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	t.Cflag &^= unix.CSIZE | unix.PARENB
	t.Cflag |= unix.CS8
	t.Cc[unix.VMIN] = 1
	t.Cc[unix.VTIME] = 0
}

// Pair returns a connected socket pair to hand a terminal master over
// within lkc: the first end goes to init, the second receives.
func Pair() (*os.File, *os.File, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("console socketpair: %w", err)
	}
	return os.NewFile(uintptr(fds[0]), "console"), os.NewFile(uintptr(fds[1]), "console"), nil
}
