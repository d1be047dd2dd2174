// Package console allocates a container's terminal and hands its master to
// whoever asked through a console socket, with the protocol runc uses:
// one SCM_RIGHTS message over a unix socket carrying the master fd; or,
// when nobody asked, serves it on the caller's own terminal (Attach).
package console

import (
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// OpenPty opens a new pty pair from the devpts instance behind /dev/ptmx.
// The slave comes from the master itself (TIOCGPTPEER), never from a path
// under /dev/pts: in a container's tree that path could name another
// instance's pty, or, as a symlink, any file at all.
func OpenPty() (master, slave *os.File, err error) {
	fd, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, &os.PathError{Op: "open", Path: "/dev/ptmx", Err: err}
	}
	master = os.NewFile(uintptr(fd), "/dev/ptmx")
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		master.Close()
		return nil, nil, fmt.Errorf("unlocking pty: %w", err)
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		master.Close()
		return nil, nil, fmt.Errorf("getting pty number: %w", err)
	}
	peer, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.TIOCGPTPEER, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC)
	if errno != 0 {
		master.Close()
		return nil, nil, fmt.Errorf("opening the pty's slave (TIOCGPTPEER): %w", errno)
	}
	return master, os.NewFile(peer, "/dev/pts/"+strconv.Itoa(n)), nil
}

// SetSize sets a terminal's window size.
func SetSize(f *os.File, rows, cols uint16) error {
	return unix.IoctlSetWinsize(int(f.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: rows, Col: cols})
}

// SendFd sends f over the connected unix socket sock as runc does: the
// file's name as data, the fd as SCM_RIGHTS.
func SendFd(sock int, f *os.File) error {
	rights := unix.UnixRights(int(f.Fd()))
	if err := unix.Sendmsg(sock, []byte(f.Name()), rights, nil, 0); err != nil {
		return fmt.Errorf("sending console fd: %w", err)
	}
	return nil
}

// RecvFd receives one fd sent with SendFd.
func RecvFd(sock int) (*os.File, error) {
	name := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(4))
	n, oobn, _, _, err := unix.Recvmsg(sock, name, oob, unix.MSG_CMSG_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("receiving console fd: %w", err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return nil, fmt.Errorf("receiving console fd: no fd in the message")
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		return nil, fmt.Errorf("receiving console fd: bad rights message")
	}
	return os.NewFile(uintptr(fds[0]), string(name[:n])), nil
}
