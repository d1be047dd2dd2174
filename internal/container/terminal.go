package container

import (
	"os"

	"github.com/lkc-containers/lkc/internal/console"
)

// terminal is the container terminal lkc serves on its own stdio when a
// foreground run or exec wants one and no console socket was given. A nil
// *terminal (none wanted) is valid and does nothing.
type terminal struct {
	initSide, ourSide *os.File
	attached          *console.Attached
}

func newTerminal(wanted bool) (*terminal, error) {
	if !wanted {
		return nil, nil
	}
	a, b, err := console.Pair()
	if err != nil {
		return nil, err
	}
	return &terminal{initSide: a, ourSide: b}, nil
}

// initEnd is the socket init sends the pty master over (nil if none).
func (t *terminal) initEnd() *os.File {
	if t == nil {
		return nil
	}
	return t.initSide
}

// attach receives the master init sent and starts serving it.
func (t *terminal) attach() error {
	if t == nil {
		return nil
	}
	t.initSide.Close()
	master, err := console.RecvFd(int(t.ourSide.Fd()))
	if err != nil {
		return err
	}
	t.attached, err = console.Attach(master)
	if err != nil {
		master.Close()
	}
	return err
}

func (t *terminal) resize() {
	if t != nil && t.attached != nil {
		t.attached.Resize()
	}
}

// close drains the container's output and restores the caller's terminal.
func (t *terminal) close() {
	if t == nil {
		return
	}
	if t.attached != nil {
		t.attached.Close()
	}
	t.initSide.Close()
	t.ourSide.Close()
}
