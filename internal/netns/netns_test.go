package netns

import (
	"bytes"
	"encoding/binary"
	"errors"
	"reflect"
	"testing"

	"golang.org/x/sys/unix"
)

func TestAttrsRoundTrip(t *testing.T) {
	hdr := []byte{1, 2, 3, 4}
	b := appendAttr(append([]byte(nil), hdr...), unix.IFLA_IFNAME, cstring("eth0"))
	b = appendAttr(b, unix.IFLA_MTU, u32(1500))
	b = appendAttr(b, unix.IFLA_ADDRESS, []byte{2, 0, 0, 0, 0, 1})
	if len(b)%4 != 0 {
		t.Fatalf("attributes not padded: %d bytes", len(b))
	}
	attrs, err := parseAttrs(b, len(hdr))
	if err != nil {
		t.Fatal(err)
	}
	if len(attrs) != 3 {
		t.Fatalf("got %d attributes, want 3", len(attrs))
	}
	if v, _ := findAttr(attrs, unix.IFLA_IFNAME); unix.ByteSliceToString(v) != "eth0" {
		t.Errorf("name %q", v)
	}
	if v, _ := findAttr(attrs, unix.IFLA_MTU); binary.NativeEndian.Uint32(v) != 1500 {
		t.Errorf("mtu %v", v)
	}
	if v, _ := findAttr(attrs, unix.IFLA_ADDRESS); !bytes.Equal(v, []byte{2, 0, 0, 0, 0, 1}) {
		t.Errorf("address %v", v)
	}
	if _, err := parseAttrs(b[:len(b)-4], len(hdr)); err == nil {
		t.Error("a truncated attribute parsed")
	}
	if _, err := parseAttrs(hdr[:2], len(hdr)); err == nil {
		t.Error("a payload shorter than its header parsed")
	}
}

func rule(table byte, prio uint32, extra ...[]byte) []byte {
	b := make([]byte, sizeofRuleHdr)
	b[0], b[4], b[7] = unix.AF_INET, table, ruleActionToTbl
	b = appendAttr(b, unix.FRA_TABLE, u32(uint32(table)))
	if prio != 0 {
		b = appendAttr(b, unix.FRA_PRIORITY, u32(prio))
	}
	b = appendAttr(b, unix.FRA_SUPPRESS_PREFIXLEN, u32(^uint32(0)))
	b = appendAttr(b, unix.FRA_PROTOCOL, []byte{unix.RTPROT_KERNEL})
	for _, e := range extra {
		b = append(b, e...)
	}
	return b
}

func TestDefaultRules(t *testing.T) {
	defaults := map[[2]uint32]bool{{0, 255}: true, {32766, 254}: true, {32767, 253}: true}
	for _, r := range [][]byte{rule(255, 0), rule(254, 32766), rule(253, 32767)} {
		if !isDefaultRule(r, defaults) {
			t.Errorf("default rule %x not recognised", r)
		}
	}
	fwmark := appendAttr(nil, unix.FRA_FWMARK, u32(7))
	src := rule(254, 100)
	src[2] = 24 // from 10.0.0.0/24
	suppress := rule(254, 32766)
	binary.NativeEndian.PutUint32(suppress[sizeofRuleHdr+8+8+4:], 0)
	for name, r := range map[string][]byte{
		"other priority": rule(254, 100),
		"fwmark":         rule(254, 32766, fwmark),
		"source":         src,
		"suppress set":   suppress,
	} {
		if isDefaultRule(r, defaults) {
			t.Errorf("%s: taken for a default rule", name)
		}
	}
}

func TestRemapRoute(t *testing.T) {
	b := make([]byte, unix.SizeofRtMsg)
	b[0] = unix.AF_INET
	binary.NativeEndian.PutUint32(b[8:], unix.RTNH_F_LINKDOWN|unix.RTNH_F_ONLINK)
	b = appendAttr(b, unix.RTA_OIF, u32(7))
	nh := make([]byte, unix.SizeofRtNexthop)
	binary.NativeEndian.PutUint16(nh, unix.SizeofRtNexthop)
	nh[2] = unix.RTNH_F_DEAD
	binary.NativeEndian.PutUint32(nh[4:], 7)
	b = appendAttr(b, unix.RTA_MULTIPATH, nh)
	out, err := remapRoute(b, map[int]int{7: 3})
	if err != nil {
		t.Fatal(err)
	}
	if f := binary.NativeEndian.Uint32(out[8:]); f != unix.RTNH_F_ONLINK {
		t.Errorf("flags %#x, want only onlink left", f)
	}
	attrs, _ := parseAttrs(out, unix.SizeofRtMsg)
	if v, _ := findAttr(attrs, unix.RTA_OIF); binary.NativeEndian.Uint32(v) != 3 {
		t.Errorf("oif %v, want 3", v)
	}
	mp, _ := findAttr(attrs, unix.RTA_MULTIPATH)
	if mp[2] != 0 || binary.NativeEndian.Uint32(mp[4:]) != 3 {
		t.Errorf("next hop %v, want index 3 and no flags", mp)
	}
	if binary.NativeEndian.Uint32(b[sizeofRtmsgOIF():]) != 7 {
		t.Error("the saved route was changed in place")
	}
	if _, err := remapRoute(b, map[int]int{}); err == nil {
		t.Error("a route through an unknown link was remapped")
	}
}

// sizeofRtmsgOIF is where the RTA_OIF value sits in the test's route.
func sizeofRtmsgOIF() int { return unix.SizeofRtMsg + 4 }

func TestKernelAddr(t *testing.T) {
	addr := func(family, plen byte, ip []byte, proto int) []byte {
		b := make([]byte, unix.SizeofIfAddrmsg)
		b[0], b[1] = family, plen
		b = appendAttr(b, unix.IFA_ADDRESS, ip)
		if proto >= 0 {
			b = appendAttr(b, ifaProto, []byte{byte(proto)})
		}
		return b
	}
	ll := append([]byte{0xfe, 0x80}, make([]byte, 14)...)
	ll[15] = 9
	lo6 := make([]byte, 16)
	lo6[15] = 1
	for _, c := range []struct {
		name   string
		b      []byte
		kernel bool
	}{
		{"lo v4 with proto", addr(unix.AF_INET, 8, []byte{127, 0, 0, 1}, ifaProtoKernLo), true},
		{"link-local with proto", addr(unix.AF_INET6, 64, ll, ifaProtoKernLL), true},
		{"static v4 with proto", addr(unix.AF_INET, 24, []byte{10, 0, 0, 2}, 0), false},
		{"lo v4, old kernel", addr(unix.AF_INET, 8, []byte{127, 0, 0, 1}, -1), true},
		{"::1, old kernel", addr(unix.AF_INET6, 128, lo6, -1), true},
		{"link-local, old kernel", addr(unix.AF_INET6, 64, ll, -1), true},
		{"static v4, old kernel", addr(unix.AF_INET, 24, []byte{10, 0, 0, 2}, -1), false},
		{"127.0.0.2/32, old kernel", addr(unix.AF_INET, 32, []byte{127, 0, 0, 2}, -1), false},
	} {
		attrs, err := parseAttrs(c.b, unix.SizeofIfAddrmsg)
		if err != nil {
			t.Fatal(err)
		}
		if got := kernelAddr(c.b, attrs); got != c.kernel {
			t.Errorf("%s: kernel-made %v, want %v", c.name, got, c.kernel)
		}
	}
}

func TestSysctlOrder(t *testing.T) {
	names := []string{"rp_filter", "accept_redirects", "arp_filter", "forwarding", "mtu"}
	sortForWrite(names)
	want := []string{"forwarding", "arp_filter", "mtu", "rp_filter", "accept_redirects"}
	if !reflect.DeepEqual(names, want) {
		t.Errorf("order %v, want %v", names, want)
	}
	dirs := confDirs([]Link{{Name: "lo"}, {Name: "eth0", Veth: true}})
	wantDirs := []string{"ipv4/conf/all", "ipv6/conf/all", "ipv4/conf/default", "ipv6/conf/default",
		"ipv4/conf/lo", "ipv6/conf/lo", "ipv4/conf/eth0", "ipv6/conf/eth0"}
	if !reflect.DeepEqual(dirs, wantDirs) {
		t.Errorf("dirs %v, want %v", dirs, wantDirs)
	}
	global, perLink := splitSysctls([]Sysctl{{Key: "ipv4/conf/all/forwarding"}, {Key: "ipv6/conf/eth0/mtu"}, {Key: "ipv4/conf/default/rp_filter"}})
	if len(global) != 2 || len(perLink) != 1 || perLink[0].Key != "ipv6/conf/eth0/mtu" {
		t.Errorf("split %v / %v", global, perLink)
	}
	for key, always := range map[string]bool{
		"ipv4/conf/all/forwarding": true, "ipv4/conf/eth0/accept_redirects": true,
		"ipv6/conf/eth0/mtu": true, "ipv4/conf/eth0/rp_filter": false,
	} {
		if alwaysWritten(key) != always {
			t.Errorf("alwaysWritten(%s) = %v", key, !always)
		}
	}
}

func TestParseLink(t *testing.T) {
	link := func(typ uint16, kind string, elsewhere, master bool) []byte {
		b := ifinfomsg(2, unix.IFF_UP, 0)
		binary.NativeEndian.PutUint16(b[2:], typ)
		b = appendAttr(b, unix.IFLA_IFNAME, cstring("eth0"))
		b = appendAttr(b, unix.IFLA_MTU, u32(1400))
		b = appendAttr(b, unix.IFLA_ADDRESS, []byte{2, 0, 0, 0, 0, 7})
		if kind != "" {
			b = appendAttr(b, unix.IFLA_LINKINFO, appendAttr(nil, unix.IFLA_INFO_KIND, []byte(kind)))
		}
		if elsewhere {
			b = appendAttr(b, unix.IFLA_LINK_NETNSID, u32(0))
		}
		if master {
			b = appendAttr(b, unix.IFLA_MASTER, u32(5))
		}
		return b
	}
	l, err := parseLink(link(unix.ARPHRD_ETHER, "veth", true, false), true)
	if err != nil {
		t.Fatal(err)
	}
	want := Link{Index: 2, Name: "eth0", Veth: true, MAC: []byte{2, 0, 0, 0, 0, 7}, MTU: 1400, Up: true}
	if !reflect.DeepEqual(l, want) {
		t.Errorf("got %+v, want %+v", l, want)
	}
	if l, err := parseLink(link(unix.ARPHRD_LOOPBACK, "", false, false), false); err != nil || l.Veth || l.MAC != nil {
		t.Errorf("loopback: %+v, %v", l, err)
	}
	for name, b := range map[string][]byte{
		"veth not allowed":     link(unix.ARPHRD_ETHER, "veth", true, false),
		"veth pair inside":     link(unix.ARPHRD_ETHER, "veth", false, false),
		"veth with a master":   link(unix.ARPHRD_ETHER, "veth", true, true),
		"macvlan":              link(unix.ARPHRD_ETHER, "macvlan", true, false),
		"no kind (a physical)": link(unix.ARPHRD_ETHER, "", false, false),
	} {
		veths := name != "veth not allowed"
		if _, err := parseLink(b, veths); !errors.Is(err, ErrNotCarried) {
			t.Errorf("%s: %v, want ErrNotCarried", name, err)
		}
	}
}
