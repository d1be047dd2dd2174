package migrate

import (
	"encoding/binary"
	"fmt"
	"net"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/netns"
)

// Veth is one of the container's veth devices whose peer lives in the
// host's network namespace. CRIU recreates the pair on the target, the
// peer with the same name in the receiver's namespace, attached to the
// bridge of the same name there; that is how the container keeps its
// addresses, MAC and routes.
type Veth struct {
	Inside string `json:"inside"` // name in the container
	Peer   string `json:"peer"`   // host-side name
	Bridge string `json:"bridge,omitempty"`
}

// External is CRIU's --external spelling of the pair for restore.
func (v Veth) External() string {
	s := "veth[" + v.Inside + "]:" + v.Peer
	if v.Bridge != "" {
		s += "@" + v.Bridge
	}
	return s
}

// link is the part of an RTM_NEWLINK answer lkc needs.
type link struct {
	index, peer, master int
	loopback            bool
	name, kind          string
	peerElsewhere       bool // IFLA_LINK_NETNSID: the peer is in another namespace
}

func listLinks() ([]link, error) {
	rib, err := syscall.NetlinkRIB(unix.RTM_GETLINK, unix.AF_UNSPEC)
	if err != nil {
		return nil, fmt.Errorf("listing network links: %w", err)
	}
	msgs, err := syscall.ParseNetlinkMessage(rib)
	if err != nil {
		return nil, fmt.Errorf("listing network links: %w", err)
	}
	var out []link
	for _, m := range msgs {
		if m.Header.Type != unix.RTM_NEWLINK || len(m.Data) < unix.SizeofIfInfomsg {
			continue
		}
		attrs, err := syscall.ParseNetlinkRouteAttr(&m)
		if err != nil {
			return nil, fmt.Errorf("listing network links: %w", err)
		}
		// ifinfomsg: family, pad, type (2 bytes), index (4), flags, change.
		l := link{index: int(int32(binary.NativeEndian.Uint32(m.Data[4:8])))}
		l.loopback = binary.NativeEndian.Uint16(m.Data[2:4]) == unix.ARPHRD_LOOPBACK
		for _, a := range attrs {
			switch a.Attr.Type {
			case unix.IFLA_IFNAME:
				l.name = unix.ByteSliceToString(a.Value)
			case unix.IFLA_LINK:
				l.peer = int(binary.NativeEndian.Uint32(a.Value))
			case unix.IFLA_MASTER:
				l.master = int(binary.NativeEndian.Uint32(a.Value))
			case unix.IFLA_LINK_NETNSID:
				l.peerElsewhere = true
			case unix.IFLA_LINKINFO:
				l.kind = netns.LinkKind(a.Value)
			}
		}
		out = append(out, l)
	}
	return out, nil
}

// hostVeths finds the veths of the container whose init is pid that have
// their peer in this process's network namespace, and whether they and the
// loopback are all the links it has (only): then taking the veths off the
// network (isolate) cuts the container off entirely.
func hostVeths(pid int) (veths []Veth, only bool, err error) {
	var inside []link
	if err := netns.Run(pid, func() (err error) { inside, err = listLinks(); return err }); err != nil {
		return nil, false, err
	}
	host, err := listLinks()
	if err != nil {
		return nil, false, err
	}
	byIndex := map[int]link{}
	for _, l := range host {
		byIndex[l.index] = l
	}
	only = true
	for _, in := range inside {
		if in.kind != "veth" || !in.peerElsewhere {
			only = only && in.loopback
			continue
		}
		p, ok := byIndex[in.peer]
		if !ok || p.kind != "veth" || p.peer != in.index || !p.peerElsewhere {
			return nil, false, fmt.Errorf("the container's %s has its peer in a namespace other than this one: run lkc migrate in the namespace that holds it", in.name)
		}
		v := Veth{Inside: in.name, Peer: p.name}
		if p.master != 0 {
			v.Bridge = byIndex[p.master].name
		}
		veths = append(veths, v)
	}
	return veths, only, nil
}

// isolate takes the host side of v off the network, or (undo) back on. A
// bridged peer leaves its bridge: the container keeps its carrier, so its
// routes are not saved as LINKDOWN (which the restore's "ip route restore"
// refuses). An unbridged peer goes down.
func isolate(v Veth, undo bool) error {
	if v.Bridge == "" {
		return setLinkUp(v.Peer, undo)
	}
	req, what := uint(unix.SIOCBRDELIF), "removing %s from bridge %s: %w"
	if undo {
		req, what = unix.SIOCBRADDIF, "adding %s back to bridge %s: %w"
	}
	ifc, err := net.InterfaceByName(v.Peer)
	if err != nil {
		return fmt.Errorf(what, v.Peer, v.Bridge, err)
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf(what, v.Peer, v.Bridge, err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq(v.Bridge)
	if err != nil {
		return fmt.Errorf(what, v.Peer, v.Bridge, err)
	}
	ifr.SetUint32(uint32(ifc.Index))
	if err := unix.IoctlIfreq(fd, req, ifr); err != nil {
		return fmt.Errorf(what, v.Peer, v.Bridge, err)
	}
	return nil
}

// connect puts the host side of v on its bridge and up, for a container
// restored off the network (restoreReq.NetworkIsolated) once it runs.
func connect(v Veth) error {
	if v.Bridge == "" {
		return nil
	}
	if err := isolate(v, true); err != nil {
		return err
	}
	return setLinkUp(v.Peer, true)
}

// setLinkUp brings a host-side link up or down.
func setLinkUp(name string, up bool) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("setting %s up=%v: %w", name, up, err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return fmt.Errorf("setting %s up=%v: %w", name, up, err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("reading the flags of %s: %w", name, err)
	}
	flags := ifr.Uint16()
	if up {
		flags |= unix.IFF_UP
	} else {
		flags &^= unix.IFF_UP
	}
	ifr.SetUint16(flags)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("setting %s up=%v: %w", name, up, err)
	}
	return nil
}

// announce sends a gratuitous ARP for every IPv4 address of the container
// whose init is pid, from inside its namespace, so that switches and
// neighbours learn at once that its MAC now sits behind the target.
func announce(pid int) error {
	return netns.Run(pid, func() error {
		ifaces, err := net.Interfaces()
		if err != nil {
			return fmt.Errorf("listing the container's interfaces: %w", err)
		}
		for _, ifc := range ifaces {
			if ifc.Flags&net.FlagLoopback != 0 || ifc.Flags&net.FlagUp == 0 || len(ifc.HardwareAddr) != 6 {
				continue
			}
			addrs, err := ifc.Addrs()
			if err != nil {
				return fmt.Errorf("listing the addresses of %s: %w", ifc.Name, err)
			}
			for _, a := range addrs {
				if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil {
					if err := garp(ifc, ipn.IP.To4()); err != nil {
						return err
					}
				}
			}
		}
		return nil
	})
}

func garp(ifc net.Interface, ip net.IP) error {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("announcing %s: %w", ip, err)
	}
	defer unix.Close(fd)
	frame := make([]byte, 0, 42)
	bcast := []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	frame = append(frame, bcast...)
	frame = append(frame, ifc.HardwareAddr...)
	frame = append(frame, 0x08, 0x06)             // ARP
	frame = append(frame, 0, 1, 8, 0, 6, 4, 0, 1) // Ethernet, IPv4, request
	frame = append(frame, ifc.HardwareAddr...)    // sender MAC
	frame = append(frame, ip...)                  // sender IP
	frame = append(frame, 0, 0, 0, 0, 0, 0)       // target MAC
	frame = append(frame, ip...)                  // target IP: gratuitous
	sa := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ARP), Ifindex: ifc.Index, Halen: 6}
	copy(sa.Addr[:], bcast)
	if err := unix.Sendto(fd, frame, 0, sa); err != nil {
		return fmt.Errorf("announcing %s on %s: %w", ip, ifc.Name, err)
	}
	return nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }
