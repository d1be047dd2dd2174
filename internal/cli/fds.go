package cli

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// checkPreserved checks that fds 3 to 3+n-1, which --preserve-fds (and
// socket activation) pass to the container's process, are ones lkc was
// started with. Every fd lkc opens itself is close-on-exec, and no fd a
// process inherits through execve can be: without the check, a count
// beyond the fds given would hand the container lkc's own, such as the
// handle of its state directory, a way out of the container's root.
// runc's exec stats the fds instead, which tells an fd of its own from
// none only until it opens one.
func checkPreserved(n int) error {
	for fd := 3; fd < 3+n; fd++ {
		flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
		if err != nil || flags&unix.FD_CLOEXEC != 0 {
			return fmt.Errorf("--preserve-fds %d: fd %d was not passed to lkc", n, fd)
		}
	}
	return nil
}
