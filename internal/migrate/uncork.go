package migrate

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/checkpoint"
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
	if !ok1 || !ok2 {
		return fmt.Errorf("uncorking %s: not a TCP connection", c.RemoteAddr())
	}
	netns, err := connNetns(c)
	if err != nil {
		return fmt.Errorf("uncorking %s: %w", c.RemoteAddr(), err)
	}
	// The peer's socket is in our network namespace, bound to our remote
	// address and connected to our local one. Each child's descriptors
	// are looked at directly: the namespace's TCP table
	// (/proc/<pid>/net/tcp) is a walk of the host's whole established
	// hash, ~6 ms of CPU a read here.
	for _, pid := range checkpoint.Children(0) {
		if uncorkChild(pid, netns, remote, local) {
			return nil
		}
	}
	return fmt.Errorf("uncorking %s: no child process holds its peer", c.RemoteAddr())
}

// connNetns identifies the network namespace of c's socket.
func connNetns(c net.Conn) ([2]uint64, error) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return [2]uint64{}, fmt.Errorf("no descriptor")
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return [2]uint64{}, err
	}
	var id [2]uint64
	cerr := raw.Control(func(fd uintptr) { id, err = socketNetns(int(fd)) })
	if cerr != nil {
		return id, cerr
	}
	return id, err
}

// socketNetns identifies the network namespace of socket fd by the
// device and inode of its namespace file.
func socketNetns(fd int) ([2]uint64, error) {
	ns, err := unix.IoctlRetInt(fd, unix.SIOCGSKNS)
	if err != nil {
		return [2]uint64{}, fmt.Errorf("SIOCGSKNS: %w", err)
	}
	defer unix.Close(ns)
	var st unix.Stat_t
	if err := unix.Fstat(ns, &st); err != nil {
		return [2]uint64{}, err
	}
	return [2]uint64{st.Dev, st.Ino}, nil
}

// uncorkChild clears TCP_CORK on pid's socket in netns whose local
// address is addr and whose peer is peer, and says whether it found one.
func uncorkChild(pid int, netns [2]uint64, addr, peer *net.TCPAddr) bool {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return false
	}
	defer unix.Close(pidfd)
	for _, e := range entries {
		if link, err := os.Readlink(filepath.Join(dir, e.Name())); err != nil || !strings.HasPrefix(link, "socket:") {
			continue
		}
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		sock, err := unix.PidfdGetfd(pidfd, fd, 0)
		if err != nil {
			continue
		}
		found := isSocket(sock, netns, addr, peer)
		if found {
			// Failing is harmless: the exchange is then only slow.
			unix.SetsockoptInt(sock, unix.IPPROTO_TCP, unix.TCP_CORK, 0)
		}
		unix.Close(sock)
		if found {
			return true
		}
	}
	return false
}

// isSocket says whether sock is the TCP socket in netns from addr to peer.
func isSocket(sock int, netns [2]uint64, addr, peer *net.TCPAddr) bool {
	sa, err := unix.Getsockname(sock)
	if err != nil || !sameAddr(sa, addr) {
		return false
	}
	if pa, err := unix.Getpeername(sock); err != nil || !sameAddr(pa, peer) {
		return false
	}
	ns, err := socketNetns(sock)
	return err == nil && ns == netns
}

// sameAddr says whether sa is the TCP address a.
func sameAddr(sa unix.Sockaddr, a *net.TCPAddr) bool {
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return sa.Port == a.Port && net.IP(sa.Addr[:]).Equal(a.IP)
	case *unix.SockaddrInet6:
		return sa.Port == a.Port && net.IP(sa.Addr[:]).Equal(a.IP)
	}
	return false
}
