package netns

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path"

	"golang.org/x/sys/unix"
)

// Build makes a new network namespace like the one s describes. Each veth
// gets its other end in lkc's namespace as peers names it (by the veth's
// name in the container): on the peer's bridge and up when it names one,
// down otherwise, for the caller to connect once the container runs. The
// caller hands Namespace.File to CRIU and closes it, or calls Remove when
// the restore fails.
func (s *Snapshot) Build(peers map[string]Peer) (*Namespace, error) {
	for _, l := range s.Links {
		if _, ok := peers[l.Name]; l.Veth && !ok {
			return nil, fmt.Errorf("veth %s: no name given for its peer on this host", l.Name)
		}
	}
	ns := &Namespace{}
	err := onThread(func() error {
		host, err := dial(unix.NETLINK_ROUTE)
		if err != nil {
			return fmt.Errorf("netlink: %w", err)
		}
		defer host.close()
		hostFd, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("opening lkc's network namespace: %w", err)
		}
		defer unix.Close(hostFd)
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("creating a network namespace: %w", err)
		}
		if ns.File, err = os.Open("/proc/thread-self/ns/net"); err != nil {
			return fmt.Errorf("opening the new network namespace: %w", err)
		}
		return s.populate(host, hostFd, peers, ns)
	})
	if err != nil {
		if ns.File != nil {
			err = errors.Join(err, ns.Remove())
		}
		return nil, fmt.Errorf("rebuilding the network namespace: %w", err)
	}
	return ns, nil
}

// populate fills the calling thread's new namespace, in the order the
// kernel needs: "all" and "default" values before the veths that copy
// them, links up before their addresses, addresses before the routes
// through them.
func (s *Snapshot) populate(host *conn, hostFd int, peers map[string]Peer, ns *Namespace) error {
	var loopbacks []Link
	veths := map[string]bool{}
	for _, l := range s.Links {
		if l.Veth {
			veths[l.Name] = true
		} else {
			loopbacks = append(loopbacks, l)
		}
	}
	base, err := readSysctls(confDirs(loopbacks))
	if err != nil {
		return err
	}
	global, perLink := splitSysctls(s.Sysctl)
	if err := applySysctls(global, sysctlMap(base), nil); err != nil {
		return err
	}
	c, err := dial(unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("netlink: %w", err)
	}
	defer c.close()
	index, err := s.makeLinks(c, host, hostFd, peers, ns)
	if err != nil {
		return err
	}
	if err := applySysctls(perLink, sysctlMap(base), veths); err != nil {
		return err
	}
	for _, l := range s.Links {
		if err := setLink(c, index[l.Index], l.Up, l.MTU); err != nil {
			return fmt.Errorf("setting up %s: %w", l.Name, err)
		}
	}
	for _, a := range s.Addrs {
		if err := replayAddr(c, a, index, vethIndexes(s.Links)); err != nil {
			return err
		}
	}
	return replayRoutes(c, s.Routes, index)
}

func sysctlMap(list []Sysctl) map[string]string {
	m := make(map[string]string, len(list))
	for _, s := range list {
		m[s.Key] = s.Value
	}
	return m
}

// splitSysctls separates the "all" and "default" values from the links'.
func splitSysctls(list []Sysctl) (global, perLink []Sysctl) {
	for _, s := range list {
		dir, _ := sysctlDir(s.Key)
		if dev := path.Base(dir); dev == "all" || dev == "default" {
			global = append(global, s)
		} else {
			perLink = append(perLink, s)
		}
	}
	return global, perLink
}

// makeLinks creates the veths, with the index each had where possible (an
// application may have recorded it: an IPv6 link-local peer's scope id),
// and returns the new index of every saved one.
func (s *Snapshot) makeLinks(c, host *conn, hostFd int, peers map[string]Peer, ns *Namespace) (map[int]int, error) {
	index := map[int]int{}
	for _, l := range s.Links {
		if !l.Veth {
			n, err := linkIndex(c, l.Name)
			if err != nil {
				return nil, fmt.Errorf("finding %s: %w", l.Name, err)
			}
			index[l.Index] = n
			continue
		}
		p := peers[l.Name]
		err := addVeth(c, l, l.Index, p.Name, hostFd)
		if err == unix.EBUSY {
			err = addVeth(c, l, 0, p.Name, hostFd) // the index is taken here
		}
		if err != nil {
			return nil, fmt.Errorf("creating veth %s (peer %s): %w", l.Name, p.Name, err)
		}
		ns.peers = append(ns.peers, p.Name)
		n, err := linkIndex(c, l.Name)
		if err != nil {
			return nil, fmt.Errorf("finding %s: %w", l.Name, err)
		}
		index[l.Index] = n
		if p.Bridge != "" {
			if err := bridge(host, p); err != nil {
				return nil, err
			}
		}
	}
	return index, nil
}

// ifinfomsg is the fixed header of a link request.
func ifinfomsg(index int, flags, change uint32) []byte {
	b := make([]byte, unix.SizeofIfInfomsg)
	binary.NativeEndian.PutUint32(b[4:], uint32(index))
	binary.NativeEndian.PutUint32(b[8:], flags)
	binary.NativeEndian.PutUint32(b[12:], change)
	return b
}

// addVeth creates veth l in the calling thread's namespace, with its peer
// in the namespace hostFd refers to.
func addVeth(c *conn, l Link, index int, peer string, hostFd int) error {
	peerMsg := ifinfomsg(0, 0, 0)
	peerMsg = appendAttr(peerMsg, unix.IFLA_IFNAME, cstring(peer))
	peerMsg = appendAttr(peerMsg, unix.IFLA_NET_NS_FD, u32(uint32(hostFd)))
	peerMsg = appendAttr(peerMsg, unix.IFLA_MTU, u32(l.MTU))
	data := appendAttr(nil, vethInfoPeer, peerMsg)
	info := appendAttr(nil, unix.IFLA_INFO_KIND, []byte("veth"))
	info = appendAttr(info, unix.IFLA_INFO_DATA, data)
	b := ifinfomsg(index, 0, 0)
	b = appendAttr(b, unix.IFLA_IFNAME, cstring(l.Name))
	b = appendAttr(b, unix.IFLA_MTU, u32(l.MTU))
	if len(l.MAC) > 0 {
		b = appendAttr(b, unix.IFLA_ADDRESS, l.MAC)
	}
	b = appendAttr(b, unix.IFLA_LINKINFO, info)
	return c.do(unix.RTM_NEWLINK, unix.NLM_F_CREATE|unix.NLM_F_EXCL, b)
}

func linkIndex(c *conn, name string) (int, error) {
	b := appendAttr(ifinfomsg(0, 0, 0), unix.IFLA_IFNAME, cstring(name))
	msgs, err := c.request(unix.RTM_GETLINK, unix.NLM_F_ACK, b, false)
	if err != nil {
		return 0, err
	}
	if len(msgs) == 0 || len(msgs[0].data) < unix.SizeofIfInfomsg {
		return 0, unix.ENODEV
	}
	return int(int32(binary.NativeEndian.Uint32(msgs[0].data[4:]))), nil
}

// setLink sets a link's MTU and brings it up or leaves it down.
func setLink(c *conn, index int, up bool, mtu uint32) error {
	var flags uint32
	if up {
		flags = unix.IFF_UP
	}
	b := appendAttr(ifinfomsg(index, flags, unix.IFF_UP), unix.IFLA_MTU, u32(mtu))
	return c.do(unix.RTM_NEWLINK, 0, b)
}

// bridge puts a peer on its bridge and brings it up, in lkc's namespace.
func bridge(host *conn, p Peer) error {
	br, err := linkIndex(host, p.Bridge)
	if err != nil {
		return fmt.Errorf("finding bridge %s: %w", p.Bridge, err)
	}
	b := appendAttr(ifinfomsg(0, unix.IFF_UP, unix.IFF_UP), unix.IFLA_IFNAME, cstring(p.Name))
	b = appendAttr(b, unix.IFLA_MASTER, u32(uint32(br)))
	if err := host.do(unix.RTM_NEWLINK, 0, b); err != nil {
		return fmt.Errorf("putting %s on bridge %s: %w", p.Name, p.Bridge, err)
	}
	return nil
}

func delLink(c *conn, name string) error {
	b := appendAttr(ifinfomsg(0, 0, 0), unix.IFLA_IFNAME, cstring(name))
	return c.do(unix.RTM_DELLINK, 0, b)
}

// replayAddr adds a saved address on the link's new index. An IPv6
// address of a veth skips duplicate address detection: it is this
// container's, and tentative for a second it could not be used (the
// loopback does no detection, so its addresses stay as they were).
func replayAddr(c *conn, saved []byte, index map[int]int, veths map[int]bool) error {
	b := append([]byte(nil), saved...)
	attrs, err := parseAttrs(b, unix.SizeofIfAddrmsg)
	if err != nil {
		return err
	}
	old := int(binary.NativeEndian.Uint32(b[4:]))
	n, ok := index[old]
	if !ok {
		return fmt.Errorf("an address of link %d, which is not carried", old)
	}
	binary.NativeEndian.PutUint32(b[4:], uint32(n))
	if b[0] == unix.AF_INET6 && veths[old] {
		b[2] |= unix.IFA_F_NODAD
		if v, ok := findAttr(attrs, unix.IFA_FLAGS); ok && len(v) == 4 {
			binary.NativeEndian.PutUint32(v, binary.NativeEndian.Uint32(v)|unix.IFA_F_NODAD)
		}
	}
	if err := c.do(unix.RTM_NEWADDR, unix.NLM_F_CREATE|unix.NLM_F_EXCL, b); err != nil && err != unix.EEXIST {
		return fmt.Errorf("adding an address to link %d: %w", n, err)
	}
	return nil
}

// vethIndexes are the saved indexes of the veths.
func vethIndexes(links []Link) map[int]bool {
	m := map[int]bool{}
	for _, l := range links {
		m[l.Index] = l.Veth
	}
	return m
}

// replayRoutes adds the saved routes, again and again while some succeed:
// a route whose gateway is reached through another saved route must come
// after it, which the dump's order need not respect.
func replayRoutes(c *conn, saved [][]byte, index map[int]int) error {
	pending := saved
	for len(pending) > 0 {
		var failed [][]byte
		var lastErr error
		for _, r := range pending {
			b, err := remapRoute(r, index)
			if err != nil {
				return err
			}
			err = c.do(unix.RTM_NEWROUTE, unix.NLM_F_CREATE|unix.NLM_F_EXCL, b)
			if err != nil && err != unix.EEXIST {
				failed, lastErr = append(failed, r), err
			}
		}
		if len(failed) == len(pending) {
			return fmt.Errorf("adding %d route(s): %w", len(failed), lastErr)
		}
		pending = failed
	}
	return nil
}

// remapRoute copies a saved route with its links' new indexes and without
// the dead and linkdown flags of the moment of the dump, which the kernel
// refuses in a request.
func remapRoute(saved []byte, index map[int]int) ([]byte, error) {
	b := append([]byte(nil), saved...)
	attrs, err := parseAttrs(b, unix.SizeofRtMsg)
	if err != nil {
		return nil, err
	}
	const stale = unix.RTNH_F_DEAD | unix.RTNH_F_LINKDOWN
	binary.NativeEndian.PutUint32(b[8:], binary.NativeEndian.Uint32(b[8:])&^stale)
	for _, a := range attrs {
		switch a.typ {
		case unix.RTA_OIF, unix.RTA_IIF:
			if err := remapIndex(a.val, index); err != nil {
				return nil, err
			}
		case unix.RTA_MULTIPATH:
			for nh := a.val; len(nh) >= unix.SizeofRtNexthop; {
				n := int(binary.NativeEndian.Uint16(nh))
				if n < unix.SizeofRtNexthop || n > len(nh) {
					return nil, errors.New("netlink: truncated next hop")
				}
				nh[2] &^= stale
				if err := remapIndex(nh[4:8], index); err != nil {
					return nil, err
				}
				nh = nh[min(rtaAlign(n), len(nh)):]
			}
		}
	}
	return b, nil
}

func remapIndex(v []byte, index map[int]int) error {
	if len(v) != 4 {
		return errors.New("netlink: bad link index attribute")
	}
	old := int(binary.NativeEndian.Uint32(v))
	n, ok := index[old]
	if !ok {
		return fmt.Errorf("a route through link %d, which is not carried", old)
	}
	binary.NativeEndian.PutUint32(v, uint32(n))
	return nil
}
