package netns

import (
	"encoding/binary"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// Address protocols (IFA_PROTO, Linux 5.18): who made an address.
const (
	ifaProto        = 11 // IFA_PROTO
	ifaProtoKernLo  = 1  // IFAPROT_KERNEL_LO: the loopback's own
	ifaProtoKernLL  = 3  // IFAPROT_KERNEL_LL: an IPv6 link-local one
	vethInfoPeer    = 1  // VETH_INFO_PEER
	sizeofRuleHdr   = 12 // struct fib_rule_hdr
	sizeofNfgenmsg  = 4  // struct nfgenmsg
	ruleActionToTbl = 1  // FR_ACT_TO_TBL
)

// Capture reads the network namespace of pid, whose tasks must be frozen,
// but for its sysctls, which ReadSysctls adds. veths says whether veths
// with their peer in another namespace may be carried (the caller
// recreates their peers on restore, see Peer); without it only the
// loopback is. A namespace lkc cannot rebuild exactly gets an error
// wrapping ErrNotCarried.
func Capture(pid int, veths bool) (*Snapshot, error) {
	if err := checkLegacyTables(pid); err != nil {
		return nil, err
	}
	s := &Snapshot{}
	err := Run(pid, func() error {
		c, err := dial(unix.NETLINK_ROUTE)
		if err != nil {
			return fmt.Errorf("netlink: %w", err)
		}
		defer c.close()
		if err := s.readLinks(c, veths); err != nil {
			return err
		}
		if err := checkRules(c); err != nil {
			return err
		}
		if err := checkNftables(); err != nil {
			return err
		}
		if err := s.readAddrs(c); err != nil {
			return err
		}
		return s.readRoutes(c)
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// ReadSysctls adds the sysctls of pid's network namespace, for the links
// Capture found. Apart from Capture because it is the slow part (~300
// files), which a dump does while CRIU works; nothing in the namespace
// can change them while its tasks are frozen.
func (s *Snapshot) ReadSysctls(pid int) error {
	return Run(pid, func() (err error) {
		s.Sysctl, err = readSysctls(confDirs(s.Links))
		return err
	})
}

func notCarried(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrNotCarried, fmt.Sprintf(format, a...))
}

// checkLegacyTables refuses a namespace with iptables (legacy) tables:
// their files list the tables that exist, and are missing where the
// module is not loaded.
func checkLegacyTables(pid int) error {
	for _, f := range []string{"ip_tables_names", "ip6_tables_names"} {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/%s", pid, f))
		if err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("reading %s: %w", f, err)
		}
		if len(strings.TrimSpace(string(data))) > 0 {
			return notCarried("it has iptables tables (%s)", strings.Fields(string(data)))
		}
	}
	return nil
}

// checkNftables refuses a namespace with nftables tables (iptables-nft's
// included). Without nf_tables in the kernel there can be none.
func checkNftables() error {
	c, err := dial(unix.NETLINK_NETFILTER)
	if err == unix.EPROTONOSUPPORT {
		return nil
	}
	if err != nil {
		return fmt.Errorf("netfilter netlink: %w", err)
	}
	defer c.close()
	hdr := make([]byte, sizeofNfgenmsg) // family AF_UNSPEC, version 0, resource 0
	msgs, err := c.dump(unix.NFNL_SUBSYS_NFTABLES<<8|unix.NFT_MSG_GETTABLE, hdr)
	switch {
	case err == unix.ENOENT || err == unix.EOPNOTSUPP || err == unix.EPROTONOSUPPORT:
		return nil
	case err != nil:
		return fmt.Errorf("listing nftables tables: %w", err)
	case len(msgs) > 0:
		return notCarried("it has %d nftables table(s)", len(msgs))
	}
	return nil
}

// checkRules refuses a namespace whose routing rules are not the kernel's
// defaults: lookups of the local, main and default tables, by priority.
func checkRules(c *conn) error {
	defaults := map[[2]uint32]bool{
		{0, unix.RT_TABLE_LOCAL}: true, {32766, unix.RT_TABLE_MAIN}: true, {32767, unix.RT_TABLE_DEFAULT}: true,
	}
	for _, family := range []byte{unix.AF_INET, unix.AF_INET6} {
		hdr := make([]byte, sizeofRuleHdr)
		hdr[0] = family
		msgs, err := c.dump(unix.RTM_GETRULE, hdr)
		if err == unix.EAFNOSUPPORT {
			continue // IPv6 disabled
		}
		if err != nil {
			return fmt.Errorf("listing routing rules: %w", err)
		}
		for _, m := range msgs {
			if !isDefaultRule(m.data, defaults) {
				return notCarried("it has routing rules of its own")
			}
		}
	}
	return nil
}

// isDefaultRule says whether a fib_rule_hdr and its attributes are one of
// the kernel's default rules: no selector, a table lookup, a priority.
func isDefaultRule(b []byte, defaults map[[2]uint32]bool) bool {
	attrs, err := parseAttrs(b, sizeofRuleHdr)
	if err != nil || b[1] != 0 || b[2] != 0 || b[3] != 0 || b[7] != ruleActionToTbl || binary.NativeEndian.Uint32(b[8:]) != 0 {
		return false
	}
	table, prio := uint32(b[4]), uint32(0)
	for _, a := range attrs {
		switch a.typ {
		case unix.FRA_TABLE:
			table = binary.NativeEndian.Uint32(a.val)
		case unix.FRA_PRIORITY:
			prio = binary.NativeEndian.Uint32(a.val)
		case unix.FRA_PROTOCOL:
		case unix.FRA_SUPPRESS_PREFIXLEN, unix.FRA_SUPPRESS_IFGROUP:
			if len(a.val) != 4 || binary.NativeEndian.Uint32(a.val) != ^uint32(0) {
				return false // set: a selector of its own
			}
		default:
			return false
		}
	}
	return defaults[[2]uint32{prio, table}]
}

func (s *Snapshot) readLinks(c *conn, veths bool) error {
	msgs, err := c.dump(unix.RTM_GETLINK, make([]byte, unix.SizeofIfInfomsg))
	if err != nil {
		return fmt.Errorf("listing links: %w", err)
	}
	for _, m := range msgs {
		l, err := parseLink(m.data, veths)
		if err != nil {
			return err
		}
		s.Links = append(s.Links, l)
	}
	return nil
}

// parseLink reads one RTM_NEWLINK answer, refusing what is not the
// loopback or (with veths) a veth whose peer is in another namespace and
// which has no master in this one.
func parseLink(b []byte, veths bool) (Link, error) {
	attrs, err := parseAttrs(b, unix.SizeofIfInfomsg)
	if err != nil {
		return Link{}, err
	}
	l := Link{
		Index: int(int32(binary.NativeEndian.Uint32(b[4:]))),
		Up:    binary.NativeEndian.Uint32(b[8:])&unix.IFF_UP != 0,
	}
	loopback := binary.NativeEndian.Uint16(b[2:]) == unix.ARPHRD_LOOPBACK
	var kind string
	var elsewhere, master bool
	for _, a := range attrs {
		switch a.typ {
		case unix.IFLA_IFNAME:
			l.Name = unix.ByteSliceToString(a.val)
		case unix.IFLA_MTU:
			l.MTU = binary.NativeEndian.Uint32(a.val)
		case unix.IFLA_ADDRESS:
			l.MAC = append([]byte(nil), a.val...)
		case unix.IFLA_LINK_NETNSID:
			elsewhere = true
		case unix.IFLA_MASTER:
			master = true
		case unix.IFLA_LINKINFO:
			kind = LinkKind(a.val)
		}
	}
	switch {
	case loopback:
		l.MAC = nil
		return l, nil
	case kind == "veth" && veths && elsewhere && !master:
		l.Veth = true
		return l, nil
	}
	if kind == "" {
		kind = "unknown kind"
	}
	return Link{}, notCarried("link %s (%s)", l.Name, kind)
}

// LinkKind finds IFLA_INFO_KIND ("veth", "bridge", ...) among the
// attributes of an IFLA_LINKINFO value.
func LinkKind(b []byte) string {
	attrs, err := parseAttrs(b, 0)
	if err != nil {
		return ""
	}
	v, _ := findAttr(attrs, unix.IFLA_INFO_KIND)
	return unix.ByteSliceToString(v)
}

// readAddrs keeps the addresses the kernel did not make itself when the
// links came up (the loopback's, IPv6 link-local ones): those come back
// with the links.
func (s *Snapshot) readAddrs(c *conn) error {
	msgs, err := c.dump(unix.RTM_GETADDR, make([]byte, unix.SizeofIfAddrmsg))
	if err != nil {
		return fmt.Errorf("listing addresses: %w", err)
	}
	for _, m := range msgs {
		attrs, err := parseAttrs(m.data, unix.SizeofIfAddrmsg)
		if err != nil {
			return err
		}
		if kernelAddr(m.data, attrs) {
			continue
		}
		s.Addrs = append(s.Addrs, m.data)
	}
	return nil
}

func kernelAddr(b []byte, attrs []attr) bool {
	if p, ok := findAttr(attrs, ifaProto); ok && len(p) == 1 {
		return p[0] == ifaProtoKernLo || p[0] == ifaProtoKernLL
	}
	// Before Linux 5.18: the loopback's addresses and IPv6 link-local ones.
	addr, _ := findAttr(attrs, unix.IFA_ADDRESS)
	if b[0] == unix.AF_INET6 && len(addr) == 16 {
		return addr[0] == 0xfe && addr[1]&0xc0 == 0x80 || addr[15] == 1 && isZero(addr[:15])
	}
	return b[0] == unix.AF_INET && len(addr) == 4 && addr[0] == 127 && b[1] == 8
}

func isZero(b []byte) bool {
	for _, v := range b {
		if v != 0 {
			return false
		}
	}
	return true
}

// readRoutes keeps the routes of every table except those the kernel
// makes for addresses and links (protocol "kernel") and cached clones.
func (s *Snapshot) readRoutes(c *conn) error {
	for _, family := range []byte{unix.AF_INET, unix.AF_INET6} {
		hdr := make([]byte, unix.SizeofRtMsg)
		hdr[0] = family
		msgs, err := c.dump(unix.RTM_GETROUTE, hdr)
		if err == unix.EAFNOSUPPORT {
			continue
		}
		if err != nil {
			return fmt.Errorf("listing routes: %w", err)
		}
		for _, m := range msgs {
			if len(m.data) < unix.SizeofRtMsg {
				continue
			}
			proto, flags := m.data[5], binary.NativeEndian.Uint32(m.data[8:])
			if proto == unix.RTPROT_KERNEL || flags&unix.RTM_F_CLONED != 0 {
				continue
			}
			s.Routes = append(s.Routes, m.data)
		}
	}
	return nil
}
