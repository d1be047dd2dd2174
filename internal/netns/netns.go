// Package netns carries a container's network namespace across a
// checkpoint in place of CRIU: it reads the namespace's links, addresses,
// routes and the sysctls CRIU would save over netlink and /proc/sys, and
// builds an equivalent namespace for the restore, which CRIU then joins as
// an external one.
//
// CRIU saves a network namespace by running ip (addr, route, -6 route,
// rule), iptables-save, ip6tables-save and nft, and restores it with as
// many more: about 30 execs of dynamically linked tools, 2-3 ms each here,
// ~55 ms of a migration's downtime (docs/migrate.md). lkc carries only
// namespaces it can rebuild exactly: the loopback and veths whose peer is
// outside, no firewall rules of either kind, only the kernel's default
// routing rules. Any other namespace is left to CRIU (ErrNotCarried).
package netns

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/osthread"
)

// ErrNotCarried says a namespace holds something lkc does not rebuild;
// CRIU must save it.
var ErrNotCarried = errors.New("network namespace not carried by lkc")

// Snapshot is what lkc saves of a network namespace.
type Snapshot struct {
	Links  []Link   `json:"links"`
	Sysctl []Sysctl `json:"sysctl"`
	// Addrs and Routes are the RTM_NEWADDR and RTM_NEWROUTE payloads the
	// kernel dumped (header and attributes), less what it makes by itself;
	// a restore replays them, as `ip addr restore` and `ip route restore` do.
	Addrs  [][]byte `json:"addrs"`
	Routes [][]byte `json:"routes"`
}

// LoopbackUp reports whether the namespace's loopback is up.
func (s *Snapshot) LoopbackUp() bool {
	for _, l := range s.Links {
		if !l.Veth && l.Up {
			return true
		}
	}
	return false
}

// Link is a loopback or a veth of the namespace.
type Link struct {
	Index int    `json:"index"`
	Name  string `json:"name"`
	Veth  bool   `json:"veth,omitempty"`
	MAC   []byte `json:"mac,omitempty"`
	MTU   uint32 `json:"mtu"`
	Up    bool   `json:"up"`
}

// Sysctl is one value under /proc/sys/net, Key relative to it
// ("ipv4/conf/all/forwarding").
type Sysctl struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// Peer is where a restored veth's other end goes: its name in lkc's
// namespace and, when not empty, the bridge it joins.
type Peer struct {
	Name, Bridge string
}

// Run calls fn on a thread that joined the network namespace of pid.
// The thread stays locked, so the runtime retires it afterwards instead of
// reusing it in the wrong namespace.
func Run(pid int, fn func() error) error {
	return onThread(func() error {
		fd, err := unix.Open(fmt.Sprintf("/proc/%d/ns/net", pid), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("opening the network namespace of %d: %w", pid, err)
		}
		err = unix.Setns(fd, unix.CLONE_NEWNET)
		unix.Close(fd)
		if err != nil {
			return fmt.Errorf("joining the network namespace of %d: %w", pid, err)
		}
		return fn()
	})
}

// onThread runs fn on a locked thread that is never handed back, and not
// the main thread (osthread.Spare).
func onThread(fn func() error) (err error) {
	osthread.Spare(func() { err = fn() })
	return err
}

// Inode identifies the network namespace of pid, as CRIU's
// "net[inode]:key" external spelling wants it.
func Inode(pid int) (uint64, error) {
	var st unix.Stat_t
	if err := unix.Stat(fmt.Sprintf("/proc/%d/ns/net", pid), &st); err != nil {
		return 0, fmt.Errorf("network namespace of %d: %w", pid, err)
	}
	return st.Ino, nil
}

// Namespace is a network namespace Build made.
type Namespace struct {
	// File holds the namespace until CRIU's restored tasks do.
	File  *os.File
	peers []string
}

// Close lets go of lkc's hold on the namespace.
func (n *Namespace) Close() error { return n.File.Close() }

// Remove undoes Build for a restore that failed: the veth pairs go at
// once, not when the kernel gets to the namespace's cleanup, so that a
// retry can have their names.
func (n *Namespace) Remove() error {
	var err error
	if cerr := n.File.Close(); !errors.Is(cerr, os.ErrClosed) {
		err = cerr // a restore closes its hold first, then removes
	}
	c, derr := dial(unix.NETLINK_ROUTE)
	if derr != nil {
		return errors.Join(err, fmt.Errorf("removing the restore's veths: %w", derr))
	}
	defer c.close()
	for _, p := range n.peers {
		if derr := delLink(c, p); derr != nil && derr != unix.ENODEV {
			err = errors.Join(err, fmt.Errorf("removing veth %s: %w", p, derr))
		}
	}
	return err
}
