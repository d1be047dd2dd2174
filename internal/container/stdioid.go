package container

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// A container's stdio is what lkc handed its init as fds 0-2 (or a restore
// handed the restored tasks). The tasks may move those files to other fds
// at any moment: a shell running `echo > f` keeps its stdout at fd 10 while
// fd 1 is f. A checkpoint that read init's fds 0-2 at that moment would
// take f for stdout and miss the caller's file at fd 10, which CRIU then
// cannot dump. So lkc records each file's identity when it hands it over
// (State.Stdio) and looks for it among all the container's fds when it
// needs it (Handle.StdioFds).

// fileID is the identity of an open file: its mount's id and its inode, in
// hex (CRIU's spelling of an external file, file[mnt:ino]); "" when fd is
// not open.
func fileID(fdinfo, fd string) string {
	mnt, err := mountID(fdinfo)
	var st unix.Stat_t
	if err != nil || unix.Stat(fd, &st) != nil {
		return ""
	}
	return fmt.Sprintf("%x:%x", mnt, st.Ino)
}

// mountID reads the id of the mount an fd's file is on from its fdinfo.
func mountID(fdinfo string) (int, error) {
	info, err := os.ReadFile(fdinfo)
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(info), "\n") {
		if v, ok := strings.CutPrefix(line, "mnt_id:"); ok {
			return strconv.Atoi(strings.TrimSpace(v))
		}
	}
	return 0, fmt.Errorf("%s has no mnt_id", fdinfo)
}

// stdioIDs returns the identities of fds, lkc's own, that become the
// container's fds 0-2.
func stdioIDs(fds [3]uintptr) []string {
	ids := make([]string, 3)
	for i, fd := range fds {
		ids[i] = fileID(fmt.Sprintf("/proc/self/fdinfo/%d", fd), fmt.Sprintf("/proc/self/fd/%d", fd))
	}
	return ids
}

// RecordStdio records files, lkc's, as what the container's tasks hold for
// their fds 0-2; nil entries are lkc's own fd of that number.
func (b *Build) RecordStdio(files [3]*os.File) {
	fds := [3]uintptr{0, 1, 2}
	for i, f := range files {
		if f != nil {
			fds[i] = f.Fd()
		}
	}
	b.st.Stdio = stdioIDs(fds)
}

// StdioFd is where a process of the container holds one of its stdio
// files; Pid 0 when none does.
type StdioFd struct{ Pid, Fd int }

// Path is the fd's link in /proc.
func (s StdioFd) Path() string { return fmt.Sprintf("/proc/%d/fd/%d", s.Pid, s.Fd) }

// Mount is the id of the mount the fd's file is on.
func (s StdioFd) Mount() (int, error) {
	return mountID(fmt.Sprintf("/proc/%d/fdinfo/%d", s.Pid, s.Fd))
}

// StdioFds says where the container's stdio files are open now: for each
// of fds 0-2, init's own fd if it still holds that file, else the first
// fd of init's, then of its other processes, that does. A container
// recorded without them (one with a terminal, whose init opens its own, or
// one made by an older lkc) and a file nobody holds any more answer init's
// fd of that number.
func (h *Handle) StdioFds() [3]StdioFd {
	pid := h.Pid()
	out := [3]StdioFd{{pid, 0}, {pid, 1}, {pid, 2}}
	want := h.c.st.Stdio
	if len(want) != 3 {
		return out
	}
	id := func(p, fd int) string {
		return fileID(fmt.Sprintf("/proc/%d/fdinfo/%d", p, fd), fmt.Sprintf("/proc/%d/fd/%d", p, fd))
	}
	var found [3]bool
	for i := range out {
		found[i] = want[i] == "" || id(pid, i) == want[i]
	}
	if found == [3]bool{true, true, true} {
		return out
	}
	check := func(p, fd int) {
		got := id(p, fd)
		for i, w := range want {
			if !found[i] && w == got {
				out[i], found[i] = StdioFd{p, fd}, true
			}
		}
	}
	pids, _ := h.Cgroup().Procs()
	pids = slices.DeleteFunc(pids, func(p int) bool { return p == pid })
	for _, p := range append([]int{pid}, pids...) {
		for _, fd := range openFds(p) {
			check(p, fd)
		}
	}
	return out
}

// openFds lists the fds pid has open, in order.
func openFds(pid int) []int {
	entries, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return nil
	}
	var fds []int
	for _, e := range entries {
		if fd, err := strconv.Atoi(e.Name()); err == nil {
			fds = append(fds, fd)
		}
	}
	slices.Sort(fds)
	return fds
}

// HostTerminal returns the first of stdio, the container's, that is a
// terminal, and its link; -1 when none is. For a container without a
// terminal of its own that is one of the host's (`lkc run -d` typed in a
// shell, not redirected): CRIU dumps it, but no restore can give its
// tasks a terminal back (a pty slave without its master).
func HostTerminal(stdio [3]StdioFd) (int, string) {
	for i, at := range stdio {
		var st unix.Stat_t
		if unix.Stat(at.Path(), &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR {
			continue
		}
		// The kernel's tty majors: 4 (tty, ttyS), 5 (tty, console, ptmx),
		// 136-143 (pty slaves).
		if m := unix.Major(st.Rdev); m == 4 || m == 5 || m >= 136 && m <= 143 {
			link, _ := os.Readlink(at.Path())
			return i, link
		}
	}
	return -1, ""
}
