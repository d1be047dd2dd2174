package migrate

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// uncorkPeer clears TCP_CORK on the socket at the other end of c, when
// that end belongs to a child of this process (CRIU's page server on the
// source, its lazy-pages daemon on the target).
//
// CRIU corks both ends of a lazy-pages connection and pushes each page
// request and reply with TCP_NODELAY, but not the last exchange: the
// daemon's close request and the page server's status answer each wait
// out the kernel's 200 ms cork ceiling. That is 400 ms at the end of
// every post-copy, on a sender that waits for its dump to end before it
// commits, and in an evacuation on a receiver's session slot. CRIU sets
// the cork before it sends anything, so once the first bytes came from
// the peer, clearing it (on a copy of the peer's descriptor taken with
// pidfd_getfd) makes every later send go at once. Failing is harmless:
// the exchange is then only slow.
func uncorkPeer(c net.Conn) error {
	local, ok1 := c.LocalAddr().(*net.TCPAddr)
	remote, ok2 := c.RemoteAddr().(*net.TCPAddr)
	if !ok1 || !ok2 || local.IP.To4() == nil || remote.IP.To4() == nil {
		return fmt.Errorf("uncorking %s: not an IPv4 TCP connection", c.RemoteAddr())
	}
	// The peer's socket is bound to our remote address and connected to
	// our local one.
	want := procTCPAddr(remote) + " " + procTCPAddr(local)
	for _, pid := range childPids() {
		inode, err := socketInode(pid, want)
		if err != nil || inode == "" {
			continue
		}
		fd, err := socketFd(pid, inode)
		if err != nil || fd < 0 {
			continue
		}
		return uncorkFd(pid, fd)
	}
	return fmt.Errorf("uncorking %s: no child process holds its peer", c.RemoteAddr())
}

// procTCPAddr writes a as /proc/net/tcp shows it: the address's bytes as
// one native-endian word in hex, the port in hex.
func procTCPAddr(a *net.TCPAddr) string {
	ip := a.IP.To4()
	return fmt.Sprintf("%02X%02X%02X%02X:%04X", ip[3], ip[2], ip[1], ip[0], a.Port)
}

// childPids lists the children of every thread of this process.
func childPids() []int {
	files, _ := filepath.Glob("/proc/self/task/*/children")
	var pids []int
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, s := range strings.Fields(string(data)) {
			if pid, err := strconv.Atoi(s); err == nil {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

// socketInode finds, in the TCP table of pid's network namespace, the
// socket whose local and remote addresses are addrs ("local remote") and
// returns its inode; "" when there is none.
func socketInode(pid int, addrs string) (string, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/net/tcp", pid))
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// sl local rem st tx:rx tr:when retrnsmt uid timeout inode ...
		fields := strings.Fields(sc.Text())
		if len(fields) > 9 && fields[1]+" "+fields[2] == addrs {
			return fields[9], nil
		}
	}
	return "", sc.Err()
}

// socketFd returns the number of pid's descriptor on socket inode, or -1.
func socketFd(pid int, inode string) (int, error) {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return -1, err
	}
	want := "socket:[" + inode + "]"
	for _, e := range entries {
		if link, err := os.Readlink(filepath.Join(dir, e.Name())); err == nil && link == want {
			return strconv.Atoi(e.Name())
		}
	}
	return -1, nil
}

// uncorkFd clears TCP_CORK on descriptor fd of process pid.
func uncorkFd(pid, fd int) error {
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return fmt.Errorf("pidfd_open %d: %w", pid, err)
	}
	defer unix.Close(pidfd)
	sock, err := unix.PidfdGetfd(pidfd, fd, 0)
	if err != nil {
		return fmt.Errorf("pidfd_getfd %d fd %d: %w", pid, fd, err)
	}
	defer unix.Close(sock)
	if err := unix.SetsockoptInt(sock, unix.IPPROTO_TCP, unix.TCP_CORK, 0); err != nil {
		return fmt.Errorf("clearing TCP_CORK on %d fd %d: %w", pid, fd, err)
	}
	return nil
}
