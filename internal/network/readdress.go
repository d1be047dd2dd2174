package network

import (
	"encoding/binary"
	"net"
	"os"

	"github.com/containernetworking/cni/libcni"
	current "github.com/containernetworking/cni/pkg/types/100"
	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/osthread"
)

// giveBackAddrs puts back on the container's interface, in the pinned
// namespace, the addresses its cached ADD result names that it no longer
// has: the config's net.ipv6.conf.all.disable_ipv6, written after ADD as
// runc does, or root in the container with CAP_NET_ADMIN removes them,
// and the bridge plugin's DEL removes the masquerade rules of the
// addresses the interface has then only, leaving the others' for good.
// Best effort: DEL runs all the same.
func giveBackAddrs(cni *libcni.CNIConfig, list *libcni.NetworkConfigList, rt *libcni.RuntimeConf) {
	if rt.NetNS == "" {
		return
	}
	res, err := cni.GetNetworkListCachedResult(list, rt)
	if err != nil || res == nil {
		return
	}
	cur, err := current.NewResultFromResult(res)
	if err != nil {
		return
	}
	var want []net.IPNet
	for _, ip := range cur.IPs {
		if ip.Interface == nil || *ip.Interface >= len(cur.Interfaces) || cur.Interfaces[*ip.Interface].Name == rt.IfName {
			want = append(want, ip.Address)
		}
	}
	f, err := os.Open(rt.NetNS)
	if err != nil || len(want) == 0 {
		return
	}
	defer f.Close()
	osthread.Spare(func() {
		if unix.Setns(int(f.Fd()), unix.CLONE_NEWNET) != nil {
			return
		}
		readdIn(rt.IfName, want)
	})
}

// readdIn adds the addresses of want that ifName lacks, in the calling
// thread's network namespace, enabling IPv6 on it first when one of them
// is IPv6.
func readdIn(ifName string, want []net.IPNet) {
	ifc, err := net.InterfaceByName(ifName)
	if err != nil {
		return
	}
	have, _ := interfaceAddrs(ifName)
	for _, w := range want {
		if hasAddr(have, w.IP) {
			continue
		}
		if w.IP.To4() == nil {
			os.WriteFile("/proc/sys/net/ipv6/conf/"+ifName+"/disable_ipv6", []byte("0"), 0)
		}
		addAddr(ifc.Index, w)
	}
}

func hasAddr(list []net.IPNet, ip net.IP) bool {
	for _, a := range list {
		if a.IP.Equal(ip) {
			return true
		}
	}
	return false
}

// addAddr adds a to link index (RTM_NEWADDR), without duplicate address
// detection: the address was the container's a moment ago.
func addAddr(index int, a net.IPNet) error {
	family, ip := unix.AF_INET6, a.IP.To16()
	if v4 := a.IP.To4(); v4 != nil {
		family, ip = unix.AF_INET, v4
	}
	ones, _ := a.Mask.Size()
	body := []byte{byte(family), byte(ones), 0, unix.RT_SCOPE_UNIVERSE, 0, 0, 0, 0}
	binary.NativeEndian.PutUint32(body[4:], uint32(index))
	body = appendAttr(body, unix.IFA_LOCAL, ip)
	body = appendAttr(body, unix.IFA_ADDRESS, ip)
	body = appendAttr(body, unix.IFA_FLAGS, binary.NativeEndian.AppendUint32(nil, unix.IFA_F_NODAD))
	return netlinkDo(unix.RTM_NEWADDR, unix.NLM_F_CREATE|unix.NLM_F_EXCL, body)
}

// appendAttr appends a netlink attribute (struct rtattr and data, padded
// to 4 bytes).
func appendAttr(b []byte, typ uint16, data []byte) []byte {
	b = binary.NativeEndian.AppendUint16(b, uint16(unix.SizeofRtAttr+len(data)))
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = append(b, data...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}
