package cli

import (
	"os"

	"golang.org/x/sys/unix"
)

// The few VT100/xterm sequences `lkc top` and `lkc stats` use.
const (
	escHome      = "\x1b[H"
	escClear     = "\x1b[2J"
	escAltScreen = "\x1b[?1049h" // the alternate screen, so the shell's text comes back on exit
	escMainScr   = "\x1b[?1049l"
	escHideCur   = "\x1b[?25l"
	escShowCur   = "\x1b[?25h"
)

// screen is a terminal put in the mode a full-screen view needs: keys
// arrive one at a time without echo, output goes to the alternate screen.
// Signals still work (ISIG stays), so Ctrl-C reaches the signal handler
// that restores the terminal.
type screen struct {
	in, out *os.File
	saved   *unix.Termios
}

// openScreen switches in/out to full-screen mode; restore undoes it.
func openScreen(in, out *os.File) (*screen, error) {
	saved, err := unix.IoctlGetTermios(int(in.Fd()), unix.TCGETS)
	if err != nil {
		return nil, err
	}
	raw := *saved
	raw.Lflag &^= unix.ICANON | unix.ECHO
	raw.Cc[unix.VMIN], raw.Cc[unix.VTIME] = 1, 0
	if err := unix.IoctlSetTermios(int(in.Fd()), unix.TCSETS, &raw); err != nil {
		return nil, err
	}
	out.WriteString(escAltScreen + escHideCur)
	return &screen{in: in, out: out, saved: saved}, nil
}

func (s *screen) restore() {
	s.out.WriteString(escShowCur + escMainScr)
	unix.IoctlSetTermios(int(s.in.Fd()), unix.TCSETS, s.saved)
}

// size is the terminal's rows and columns (24x80 when it does not say).
func (s *screen) size() (rows, cols int) {
	ws, err := unix.IoctlGetWinsize(int(s.out.Fd()), unix.TIOCGWINSZ)
	if err != nil || ws.Row == 0 || ws.Col == 0 {
		return 24, 80
	}
	return int(ws.Row), int(ws.Col)
}

// keys sends each byte typed until stdin ends.
func (s *screen) keys() <-chan byte {
	ch := make(chan byte, 16)
	go func() {
		defer close(ch)
		buf := make([]byte, 16)
		for {
			n, err := s.in.Read(buf)
			for _, b := range buf[:n] {
				ch <- b
			}
			if err != nil {
				return
			}
		}
	}()
	return ch
}
